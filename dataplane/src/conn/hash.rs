//! A fast seeded hash of flow keys for the connection index.
//!
//! Folded 64×64→128-bit multiplies (the wyhash construction): one multiply for an IPv4 5-tuple,
//! three for an IPv6 one, no per-byte loop. Each table draws its own seed so that an outsider cannot aim many flows at one
//! bucket of every core. The hash is not a MAC; it only has to spread keys and hide the seed.

use crate::flow::{Addr, FlowKey, Proto};

const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K1: u64 = 0xd6e8_feb8_6659_fd93;
const K2: u64 = 0xa076_1d64_78bd_642f;

/// Multiplies and folds the 128-bit product into 64 bits.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

#[inline(always)]
fn halves(a: &Addr) -> (u64, u64) {
    let [b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15] = a.0;
    (
        u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]),
        u64::from_le_bytes([b8, b9, b10, b11, b12, b13, b14, b15]),
    )
}

/// Hashes a directed 5-tuple with `seed`; an IPv4 key (both addresses IPv4-mapped) hashes as
/// `hash_flow_v4` does.
#[inline]
pub fn hash_flow(seed: u64, k: &FlowKey) -> u64 {
    hash_flow_keyed(seed, v4_prefix(seed), k)
}

/// [`hash_flow`] with `prefix` = [`v4_prefix`]`(seed)` computed beforehand (a table keeps it),
/// so that an IPv4 key costs one multiply, not two.
#[inline]
pub fn hash_flow_keyed(seed: u64, prefix: u64, k: &FlowKey) -> u64 {
    if k.saddr.is_v4() && k.daddr.is_v4() {
        let addrs = (k.saddr.v4_octets(), k.daddr.v4_octets());
        return hash_flow_v4(seed, prefix, addrs, (k.sport, k.dport), k.proto);
    }
    let (s0, s1) = halves(&k.saddr);
    let (d0, d1) = halves(&k.daddr);
    let ports = (u64::from(k.sport) << 32) | (u64::from(k.dport) << 16) | k.proto as u64;
    let a = fold(s0 ^ seed, d0 ^ K0);
    let b = fold(s1 ^ K1, d1 ^ seed);
    fold(a ^ ports ^ K2, b ^ K0)
}

/// The second key of [`hash_flow_v4`], derived from `seed`; a table computes it once.
pub fn v4_prefix(seed: u64) -> u64 {
    fold(seed, K0)
}

/// [`hash_flow`] of an IPv4 5-tuple, with `prefix` = [`v4_prefix`]`(seed)`: the two addresses
/// fill one 64-bit word and ports and protocol another, each keyed, and one multiply folds
/// them (wyhash's final mix), so the fast path hashes in a handful of instructions.
#[inline(always)]
pub fn hash_flow_v4(
    seed: u64,
    prefix: u64,
    (src, dst): ([u8; 4], [u8; 4]),
    (sport, dport): (u16, u16),
    proto: Proto,
) -> u64 {
    let addrs = u64::from(u32::from_le_bytes(src)) | (u64::from(u32::from_le_bytes(dst)) << 32);
    let ports = (u64::from(sport) << 32) | (u64::from(dport) << 16) | proto as u64;
    fold(addrs ^ seed, ports ^ prefix)
}

/// Hashes a persistence template key (service slot, masked client, port) with `seed`; domain
/// separated from [`hash_flow`].
#[inline]
pub fn hash_template(seed: u64, svc: u32, client: &Addr, port: u16) -> u64 {
    let (c0, c1) = halves(client);
    let tail = (u64::from(svc) << 16) | u64::from(port);
    let a = fold(c0 ^ seed ^ K2, c1 ^ K1);
    fold(a ^ tail, seed ^ K0)
}

/// A seed that differs from table to table and from run to run (drawn from the standard
/// library's per-process random hasher keys).
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(i: u32) -> FlowKey {
        let c = i.to_be_bytes();
        FlowKey {
            saddr: Addr::v4([10, c[1], c[2], c[3]]),
            daddr: Addr::v4([192, 0, 2, 1]),
            sport: 1024 + (i % 7) as u16,
            dport: 80,
            proto: Proto::Tcp,
        }
    }

    #[test]
    fn test_spreads_sequential_keys() {
        const BUCKETS: usize = 1024;
        let mut count = vec![0u32; BUCKETS];
        for i in 0..10_240 {
            let h = hash_flow(0x1234, &key(i));
            count[((u64::from(h as u32) * BUCKETS as u64) >> 32) as usize] += 1;
        }
        // Mean 10 per bucket; a uniform hash keeps the maximum near 25.
        let max = *count.iter().max().unwrap();
        let empty = count.iter().filter(|&&c| c == 0).count();
        assert!(max <= 30, "max bucket {max}");
        assert!(empty <= 5, "{empty} empty buckets");
    }

    #[test]
    fn test_seed_direction_and_domain_matter() {
        let k = key(7);
        assert_ne!(hash_flow(1, &k), hash_flow(2, &k));
        assert_ne!(hash_flow(1, &k), hash_flow(1, &k.reversed()));
        assert_eq!(hash_flow(9, &k), hash_flow(9, &key(7)));
        let mut udp = k;
        udp.proto = Proto::Udp;
        assert_ne!(hash_flow(1, &k), hash_flow(1, &udp));
        assert_ne!(
            hash_template(1, 3, &k.saddr, 80),
            hash_template(1, 4, &k.saddr, 80)
        );
        assert_ne!(random_seed(), random_seed());
    }

    proptest! {
        /// The IPv4 shortcut hashes exactly as the general hash (one index serves both).
        #[test]
        fn prop_v4_hash_matches_general(
            seed in any::<u64>(),
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            sport in any::<u16>(),
            dport in any::<u16>(),
            udp in any::<bool>(),
        ) {
            let proto = if udp { Proto::Udp } else { Proto::Tcp };
            let k = FlowKey { saddr: Addr::v4(src), daddr: Addr::v4(dst), sport, dport, proto };
            let fast = hash_flow_v4(seed, v4_prefix(seed), (src, dst), (sport, dport), proto);
            prop_assert_eq!(fast, hash_flow(seed, &k));
        }
    }
}
