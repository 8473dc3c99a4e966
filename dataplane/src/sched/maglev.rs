//! Maglev hashing (mh), as in `ip_vs_mh.c` and the Maglev paper (NSDI '16, §3.4).
//!
//! Each server derives a permutation of the table positions from a hash of its address and port
//! (an offset and a skip; the table size is prime, so every skip visits every position). The
//! servers then take turns claiming their next free preferred position until the table is full.
//! A server claims `weight / gcd` positions per turn, reduced like IPVS to at most 6 significant
//! bits (weights 1:2 give shares 1:2; 100:1 give 50:1). Because preferences depend only on the
//! server itself, adding or removing one server moves about `1/N` of the keys.
//!
//! A client (address, and port with the port flag) hashes to one position. If its server is
//! quiesced or overloaded there is no server, unless the fallback flag is set: then the table is
//! probed onwards from that position to the first usable server, which spreads the displaced
//! clients over the others in proportion to their shares.
//!
//! Hashes here are our own (64-bit mixes of the whole address), not the kernel's hsiphash: the
//! table is as balanced, but a client need not map to the server an IPVS director would pick.

use super::{usable, Dest, DestLoad, SchedInput, SchedPlan};
use crate::flow::Addr;

/// Table entry of no server (only in a table no server has claimed).
const EMPTY: u32 = u32::MAX;
/// Significant bits kept of `weight / gcd` (IPVS's `IP_VS_MH_TAB_BITS`).
const WEIGHT_BITS: u32 = 6;
const SEED_OFFSET: u64 = 0x9E37_79B9_7F4A_7C15;
const SEED_SKIP: u64 = 0xC2B2_AE3D_27D4_EB4F;
const SEED_KEY: u64 = 0x1656_67B1_9E37_79F9;

/// True when `n` is prime.
pub(super) fn is_prime(n: u32) -> bool {
    let n = u64::from(n);
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

/// The splitmix64 finalizer: a cheap 64-bit bijection with full avalanche.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of an address and port under `seed`.
#[inline]
pub(super) fn hash(addr: &Addr, port: u16, seed: u64) -> u64 {
    let [a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7] = addr.0;
    let a = u64::from_be_bytes([a0, a1, a2, a3, a4, a5, a6, a7]);
    let b = u64::from_be_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
    mix(mix(mix(a ^ seed) ^ b) ^ u64::from(port))
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// One server's walk through its permutation while the table is filled.
struct Walk {
    next: u32,
    skip: u32,
    turns: u32,
}

/// Builds the lookup table of prime size `m` (> number of servers); empty when no server has
/// a weight.
pub(super) fn build(dests: &[Dest], m: u32) -> Box<[u32]> {
    let g = dests.iter().map(|d| d.weight).fold(0, gcd);
    if g == 0 || m < 2 {
        return Box::new([]);
    }
    let max = dests.iter().map(|d| d.weight / g).max().unwrap_or(0);
    let shift = (u32::BITS - max.leading_zeros()).saturating_sub(WEIGHT_BITS);
    let mut walks: Vec<Walk> = dests
        .iter()
        .map(|d| Walk {
            next: (hash(&d.addr, d.port, SEED_OFFSET) % u64::from(m)) as u32,
            skip: (hash(&d.addr, d.port, SEED_SKIP) % u64::from(m - 1)) as u32 + 1,
            turns: match (d.weight / g) >> shift {
                0 => u32::from(d.weight > 0),
                t => t,
            },
        })
        .collect();
    let mut table = vec![EMPTY; m as usize];
    let mut filled = 0u32;
    // Every permutation covers all m positions, so each claim finds a free one.
    while filled < m {
        for (i, w) in walks.iter_mut().enumerate() {
            for _ in 0..w.turns {
                while table[w.next as usize] != EMPTY {
                    w.next += w.skip;
                    if w.next >= m {
                        w.next -= m;
                    }
                }
                table[w.next as usize] = i as u32;
                filled += 1;
                if filled == m {
                    return table.into_boxed_slice();
                }
            }
        }
    }
    table.into_boxed_slice()
}

/// Maglev hashing of the client, with the optional port hashing and fallback flags.
pub(super) fn mh(plan: &SchedPlan, load: &[DestLoad], input: &SchedInput) -> Option<usize> {
    let (table, dests, flags) = (plan.maglev(), plan.dests(), plan.flags());
    let m = table.len();
    if m == 0 {
        return None;
    }
    let port = if flags.hash_port { input.sport } else { 0 };
    let h = (hash(&input.saddr, port, SEED_KEY) % m as u64) as usize;
    let ok = |j: usize| -> Option<usize> {
        let i = *table.get(j)? as usize;
        dests.get(i).filter(|d| usable(d, load)).map(|_| i)
    };
    if let Some(i) = ok(h) {
        return Some(i);
    }
    // Every server of positive weight owns entries: without a usable one, skip the walk.
    if !flags.fallback || !dests.iter().any(|d| usable(d, load)) {
        return None;
    }
    (1..m).find_map(|k| ok((h + k) % m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SchedulerKind, ServiceFlags};
    use crate::sched::{schedule, DestId, SchedConfig, SchedState};

    fn dest(id: u32, weight: u32) -> Dest {
        Dest {
            id: DestId(id),
            addr: Addr::v4([10, 1, (id >> 8) as u8, id as u8]),
            port: 8080,
            weight,
        }
    }

    fn client(i: u32) -> SchedInput {
        let b = i.to_be_bytes();
        SchedInput {
            saddr: Addr::v4([b[0] ^ 100, b[1], b[2], b[3]]),
            sport: (i % 60000) as u16 + 1024,
            daddr: Addr::v4([192, 0, 2, 1]),
            dport: 80,
            now_ms: 0,
        }
    }

    fn plan(dests: Vec<Dest>, flags: ServiceFlags) -> SchedPlan {
        SchedPlan::new(SchedulerKind::Mh, flags, dests)
    }

    /// The DestId each of `keys` clients maps to.
    fn mapping(p: &SchedPlan, load: &[DestLoad], keys: u32) -> Vec<Option<DestId>> {
        let mut st = SchedState::new(p);
        (0..keys)
            .map(|k| schedule(&mut st, p, load, &client(k)).map(|i| p.dests()[i].id))
            .collect()
    }

    fn moved(a: &[Option<DestId>], b: &[Option<DestId>]) -> f64 {
        let n = a.iter().zip(b).filter(|(x, y)| x != y).count();
        n as f64 / a.len() as f64
    }

    #[test]
    fn test_is_prime() {
        let primes: Vec<u32> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(65537) && is_prime(4093) && !is_prime(65535));
    }

    #[test]
    fn test_weights_1_2_share_table_1_2() {
        let p = plan(vec![dest(0, 1), dest(1, 2)], ServiceFlags::default());
        // Rounds of 1 + 2 claims: 65537 = 3 * 21845 + 2, the last round gives one to each.
        assert_eq!(p.mh_shares(), [21846, 43691]);
        // Weights are reduced by their gcd and to 6 significant bits.
        let p = plan(vec![dest(0, 100), dest(1, 1)], ServiceFlags::default());
        let s = p.mh_shares();
        assert_eq!(s[0] / s[1], 50);
        let p = plan(
            vec![dest(0, 0), dest(1, 3), dest(2, 3)],
            ServiceFlags::default(),
        );
        assert_eq!(p.mh_shares(), [0, 32769, 32768]);
    }

    #[test]
    fn test_equal_weights_balance() {
        let ds: Vec<_> = (0..10).map(|i| dest(i, 1)).collect();
        let p = plan(ds, ServiceFlags::default());
        for s in p.mh_shares() {
            assert!((6553..=6554).contains(&s), "{s}");
        }
    }

    #[test]
    fn test_remove_and_add_move_about_one_nth() {
        const KEYS: u32 = 100_000;
        let ten: Vec<_> = (0..10).map(|i| dest(i, 1)).collect();
        let base = mapping(&plan(ten.clone(), ServiceFlags::default()), &[], KEYS);
        // Remove a server from the middle of the list (indexes shift; ids do not).
        let mut nine = ten.clone();
        nine.remove(4);
        let after = mapping(&plan(nine, ServiceFlags::default()), &[], KEYS);
        let f = moved(&base, &after);
        assert!((0.09..=0.10 + 0.02).contains(&f), "removal moved {f}");
        for (b, a) in base.iter().zip(&after) {
            if *b == Some(DestId(4)) {
                assert_ne!(a, b);
            }
        }
        // Add an eleventh server.
        let mut eleven = ten;
        eleven.push(dest(10, 1));
        let after = mapping(&plan(eleven, ServiceFlags::default()), &[], KEYS);
        let f = moved(&base, &after);
        assert!(
            (0.08..=1.0 / 11.0 + 0.02).contains(&f),
            "addition moved {f}"
        );
    }

    #[test]
    fn test_quiesced_server_keys_only_move() {
        // Quiescing one of ten (weight 0) drops its table entries: its keys and few others move.
        const KEYS: u32 = 50_000;
        let ten: Vec<_> = (0..10).map(|i| dest(i, 1)).collect();
        let base = mapping(&plan(ten.clone(), ServiceFlags::default()), &[], KEYS);
        let mut q = ten;
        q[2].weight = 0;
        let after = mapping(&plan(q, ServiceFlags::default()), &[], KEYS);
        assert!(after.iter().all(|a| a.is_some() && *a != Some(DestId(2))));
        assert!(moved(&base, &after) <= 0.12);
    }

    #[test]
    fn test_overloaded_server_without_and_with_fallback() {
        const KEYS: u32 = 20_000;
        let ds: Vec<_> = (0..4).map(|i| dest(i, 1)).collect();
        let mut load = vec![DestLoad::default(); 4];
        let base = mapping(&plan(ds.clone(), ServiceFlags::default()), &load, KEYS);
        load[1].overloaded = true;
        let strict = mapping(&plan(ds.clone(), ServiceFlags::default()), &load, KEYS);
        let fb = ServiceFlags {
            fallback: true,
            ..ServiceFlags::default()
        };
        let fallback = mapping(&plan(ds, fb), &load, KEYS);
        let mut spread = [0u32; 4];
        for ((b, s), f) in base.iter().zip(&strict).zip(&fallback) {
            if *b == Some(DestId(1)) {
                assert_eq!(*s, None);
                let f = f.unwrap();
                assert_ne!(f, DestId(1));
                spread[f.index()] += 1;
            } else {
                assert_eq!((s, f), (b, b));
            }
        }
        // The displaced clients land on every other server.
        assert!(
            spread[0] > 1000 && spread[2] > 1000 && spread[3] > 1000,
            "{spread:?}"
        );
    }

    #[test]
    fn test_port_flag() {
        let ds: Vec<_> = (0..8).map(|i| dest(i, 1)).collect();
        let by_port = ServiceFlags {
            hash_port: true,
            ..ServiceFlags::default()
        };
        for (flags, expect_one) in [(ServiceFlags::default(), true), (by_port, false)] {
            let p = plan(ds.clone(), flags);
            let mut st = SchedState::new(&p);
            let mut seen = std::collections::BTreeSet::new();
            for port in 1000..1064 {
                let mut inp = client(42);
                inp.sport = port;
                seen.insert(schedule(&mut st, &p, &[], &inp).unwrap());
            }
            assert_eq!(seen.len() == 1, expect_one, "{seen:?}");
        }
    }

    #[test]
    fn test_small_table_config() {
        let cfg = SchedConfig {
            mh_table_size: 251,
            ..SchedConfig::default()
        };
        let ds: Vec<_> = (0..5).map(|i| dest(i, 1)).collect();
        let p =
            SchedPlan::with_config(SchedulerKind::Mh, ServiceFlags::default(), ds, cfg).unwrap();
        assert_eq!(p.mh_shares().iter().sum::<u32>(), 251);
        assert!(p.mh_shares().iter().all(|&s| s == 50 || s == 51));
    }
}
