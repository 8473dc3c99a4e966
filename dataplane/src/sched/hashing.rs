//! Source hashing (sh) and destination hashing (dh), as in `ip_vs_sh.c` and `ip_vs_dh.c`.
//!
//! Both map an address to one of 256 buckets, each naming a server. sh fills the buckets in list
//! order, giving each server as many consecutive buckets as its weight (so weights steer the
//! share of clients, but weights summing past 256 starve the servers at the end of the list, as
//! in IPVS); dh gives the buckets to the servers in turn, ignoring weights. The hash functions are
//! the kernel's, so a client maps to the same server as on an IPVS director with the same server
//! order: sh uses the golden-ratio `hash_32(addr + port)`, dh keeps the low byte of
//! `addr * 2654435761` (only the last octet of an IPv4 destination matters, as in IPVS). IPv6
//! addresses are folded by XOR of their four 32-bit words first.
//!
//! A chosen server that is quiesced or overloaded yields no server, unless sh has the fallback
//! flag: then the buckets are walked from the hashed one to the next usable server.

use super::{usable, Dest, DestLoad, SchedInput, SchedPlan};
use crate::flow::Addr;

/// Buckets of the sh and dh tables (`CONFIG_IP_VS_SH_TAB_BITS` = 8).
const TAB_SIZE: usize = 256;
const TAB_MASK: usize = TAB_SIZE - 1;

/// An address folded to 32 bits, as IPVS does (IPv4 value, or XOR of the IPv6 words).
#[inline]
pub(super) fn fold(addr: &Addr) -> u32 {
    if addr.is_v4() {
        u32::from_be_bytes(addr.v4_octets())
    } else {
        addr.0
            .chunks_exact(4)
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
            .fold(0, |a, w| a ^ w)
    }
}

/// The kernel's `hash_32(val, 8)`: multiply by the 32-bit golden ratio, keep the top bits.
#[inline]
fn hash_32(val: u32) -> usize {
    (val.wrapping_mul(0x61C8_8647) >> (32 - 8)) as usize
}

/// sh's table: each server fills `max(weight, 1)` consecutive buckets, cycling through the list.
pub(super) fn sh_table(dests: &[Dest]) -> Box<[u32]> {
    if dests.is_empty() {
        return Box::new([]);
    }
    let mut table = Vec::with_capacity(TAB_SIZE);
    let (mut p, mut count) = (0usize, 0u32);
    for _ in 0..TAB_SIZE {
        table.push(p as u32);
        count += 1;
        if count >= dests.get(p).map_or(0, |d| d.weight) {
            p = (p + 1) % dests.len();
            count = 0;
        }
    }
    table.into_boxed_slice()
}

/// dh's table: bucket `i` belongs to server `i mod n`.
pub(super) fn dh_table(dests: &[Dest]) -> Box<[u32]> {
    if dests.is_empty() {
        return Box::new([]);
    }
    (0..TAB_SIZE).map(|i| (i % dests.len()) as u32).collect()
}

/// The server of bucket `b` if it may take the connection.
#[inline]
fn pick(plan: &SchedPlan, load: &[DestLoad], b: usize) -> Option<usize> {
    let i = *plan.buckets().get(b)? as usize;
    plan.dests().get(i).filter(|d| usable(d, load)).map(|_| i)
}

/// Source hashing, with the optional port hashing and fallback flags.
pub(super) fn sh(plan: &SchedPlan, load: &[DestLoad], input: &SchedInput) -> Option<usize> {
    let flags = plan.flags();
    let port = if flags.hash_port { input.sport } else { 0 };
    let h = hash_32(fold(&input.saddr).wrapping_add(u32::from(port)));
    if let Some(i) = pick(plan, load, h) {
        return Some(i);
    }
    if !flags.fallback {
        return None;
    }
    // IPVS's walk: offset k probes bucket (2h + k) mod 256.
    (0..TAB_SIZE).find_map(|k| pick(plan, load, (2 * h + k) & TAB_MASK))
}

/// Destination hashing.
pub(super) fn dh(plan: &SchedPlan, load: &[DestLoad], input: &SchedInput) -> Option<usize> {
    let h = fold(&input.daddr).wrapping_mul(2_654_435_761) as usize & TAB_MASK;
    pick(plan, load, h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SchedulerKind, ServiceFlags};
    use crate::sched::{schedule, DestId, SchedState};

    fn plan(kind: SchedulerKind, weights: &[u32], flags: ServiceFlags) -> SchedPlan {
        let dests = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Dest {
                id: DestId(i as u32),
                addr: Addr::v4([10, 0, 0, i as u8]),
                port: 80,
                weight: w,
            })
            .collect();
        SchedPlan::new(kind, flags, dests)
    }

    fn input(saddr: Addr, sport: u16, daddr: Addr) -> SchedInput {
        SchedInput {
            saddr,
            sport,
            daddr,
            dport: 80,
            now_ms: 0,
        }
    }

    fn client(i: u32) -> Addr {
        let b = i.to_be_bytes();
        Addr::v4([100, b[1], b[2], b[3]])
    }

    #[test]
    fn test_fold_and_kernel_hash() {
        assert_eq!(fold(&Addr::v4([192, 168, 1, 10])), 0xC0A8_010A);
        let v6: std::net::Ipv6Addr = "2001:db8::1:2".parse().unwrap();
        assert_eq!(fold(&Addr::from(v6)), 0x2001_0db8 ^ 0x0001_0002);
        // 0xC0A8010A * 0x61C88647 mod 2^32 = 0xF8F3_85C6 (worked out separately): bucket 0xF8.
        assert_eq!(hash_32(0xC0A8_010A), 0xF8);
    }

    #[test]
    fn test_sh_table_follows_weights() {
        let p = plan(SchedulerKind::Sh, &[2, 1], ServiceFlags::default());
        assert_eq!(&p.buckets()[..6], &[0, 0, 1, 0, 0, 1]);
        let zeros = p.buckets().iter().filter(|&&b| b == 0).count();
        assert_eq!((zeros, 256 - zeros), (171, 85));
        // A quiesced server still holds one bucket (its clients get no server, as in IPVS).
        let p = plan(SchedulerKind::Sh, &[1, 0, 1], ServiceFlags::default());
        assert_eq!(&p.buckets()[..4], &[0, 1, 2, 0]);
    }

    #[test]
    fn test_sh_one_client_one_server_and_spread() {
        let p = plan(SchedulerKind::Sh, &[1, 1, 1, 1], ServiceFlags::default());
        let mut st = SchedState::new(&p);
        let mut counts = [0u32; 4];
        for c in 0..4000 {
            let first = schedule(&mut st, &p, &[], &input(client(c), 1000, client(0))).unwrap();
            for port in [1001, 2000, 65535] {
                let again = schedule(&mut st, &p, &[], &input(client(c), port, client(0)));
                assert_eq!(again, Some(first));
            }
            counts[first] += 1;
        }
        for n in counts {
            assert!((800..=1200).contains(&n), "{counts:?}");
        }
    }

    #[test]
    fn test_sh_port_flag_spreads_one_client() {
        let flags = ServiceFlags {
            hash_port: true,
            ..ServiceFlags::default()
        };
        let p = plan(SchedulerKind::Sh, &[1, 1, 1, 1], flags);
        let mut st = SchedState::new(&p);
        let mut seen = [false; 4];
        for port in 1024..1100 {
            let i = schedule(&mut st, &p, &[], &input(client(7), port, client(0))).unwrap();
            seen[i] = true;
            let again = schedule(&mut st, &p, &[], &input(client(7), port, client(0)));
            assert_eq!(again, Some(i));
        }
        assert_eq!(seen, [true; 4]);
    }

    #[test]
    fn test_sh_fallback_only_with_flag() {
        let mut load = vec![DestLoad::default(); 2];
        load[0].overloaded = true;
        let strict = plan(SchedulerKind::Sh, &[1, 1], ServiceFlags::default());
        let fb_flags = ServiceFlags {
            fallback: true,
            ..ServiceFlags::default()
        };
        let fallback = plan(SchedulerKind::Sh, &[1, 1], fb_flags);
        let mut st = SchedState::new(&strict);
        let (mut dropped, mut moved) = (0, 0);
        for c in 0..200 {
            let inp = input(client(c), 0, client(0));
            let home = strict.buckets()[hash_32(fold(&inp.saddr))];
            let s = schedule(&mut st, &strict, &load, &inp);
            let f = schedule(&mut st, &fallback, &load, &inp);
            if home == 0 {
                assert_eq!((s, f), (None, Some(1)));
                dropped += 1;
            } else {
                assert_eq!((s, f), (Some(1), Some(1)));
                moved += 1;
            }
        }
        assert!(dropped > 50 && moved > 50, "{dropped} {moved}");
    }

    #[test]
    fn test_dh_one_destination_one_server() {
        let p = plan(SchedulerKind::Dh, &[1, 5, 1], ServiceFlags::default());
        let mut st = SchedState::new(&p);
        let mut counts = [0u32; 3];
        for last in 0..=255u8 {
            let dst = Addr::v4([172, 16, 3, last]);
            let first = schedule(&mut st, &p, &[], &input(client(1), 1, dst)).unwrap();
            for c in 2..6 {
                assert_eq!(
                    schedule(&mut st, &p, &[], &input(client(c), 9, dst)),
                    Some(first)
                );
            }
            counts[first] += 1;
        }
        // dh ignores weights: 256 buckets over 3 servers, every last octet a distinct bucket.
        assert_eq!(counts, [86, 85, 85]);
    }
}
