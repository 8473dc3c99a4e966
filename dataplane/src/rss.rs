//! Software Toeplitz hash: the RSS hash a NIC computes to pick a receive queue.
//!
//! A worker that opens connections towards real servers (FULLNAT/SNAT) must pick a local port
//! whose *reply* lands on its own queue; it does so by computing here what the NIC will compute
//! there. The hash input is laid out as NICs and DPDK's `rte_softrss` do: source address,
//! destination address, then (optionally) source port and destination port, all big-endian.
//!
//! Speed: [`Toeplitz::new`] expands the 40-byte key once into one 256-entry table per input byte,
//! so hashing costs one table lookup and XOR per input byte. Toeplitz is linear over XOR, so a
//! port scan can hash the fixed part once and add only the port bytes ([`Toeplitz::dport_base_v4`]).
//!
//! Queue mapping ([`RetaMap`]) assumes the redirection table DPDK PMDs install by default:
//! `reta[i] = i % nb_queues`, entry chosen by `hash % reta_size`. A port whose RETA was
//! reprogrammed must build the map from the actual table with [`RetaMap::from_table`].

use crate::flow::FlowKey;

/// Length of an RSS key in bytes (the common 40-byte Toeplitz key).
pub const KEY_LEN: usize = 40;

/// Longest input the key covers: 40 bytes of key minus the 4-byte window (IPv6 + ports = 36).
pub const MAX_INPUT: usize = KEY_LEN - 4;

/// Microsoft's default RSS key, used by most NIC drivers and DPDK examples.
pub const MS_DEFAULT_KEY: [u8; KEY_LEN] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// A Toeplitz hasher for one key, with per-byte lookup tables (36 KiB, built once).
#[derive(Clone)]
pub struct Toeplitz {
    key: [u8; KEY_LEN],
    tables: Box<[[u32; 256]; MAX_INPUT]>,
}

impl std::fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toeplitz").field("key", &self.key).finish()
    }
}

impl Toeplitz {
    /// Builds the lookup tables for `key`.
    pub fn new(key: &[u8; KEY_LEN]) -> Toeplitz {
        // The 32-bit key window starting at bit `k` (bit 0 = MSB of key[0]).
        let window = |k: usize| -> u32 {
            let byte = k / 8;
            let mut w: u64 = 0;
            for i in 0..5 {
                w = (w << 8) | u64::from(key.get(byte + i).copied().unwrap_or(0));
            }
            (w >> (8 - k % 8)) as u32
        };
        let mut tables = Box::new([[0u32; 256]; MAX_INPUT]);
        for (pos, table) in tables.iter_mut().enumerate() {
            let bits: [u32; 8] = std::array::from_fn(|j| window(pos * 8 + j));
            for (value, slot) in table.iter_mut().enumerate() {
                *slot = (0..8)
                    .filter(|j| value & (0x80 >> j) != 0)
                    .fold(0, |acc, j| acc ^ bits[j]);
            }
        }
        Toeplitz { key: *key, tables }
    }

    /// The key these tables were built from.
    pub fn key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// The hash of `input` placed at byte position `start`; bytes past [`MAX_INPUT`] are ignored.
    #[inline]
    fn hash_at(&self, start: usize, input: &[u8]) -> u32 {
        self.tables
            .iter()
            .skip(start)
            .zip(input)
            .fold(0, |acc, (t, &b)| acc ^ t[usize::from(b)])
    }

    /// The hash of a raw input (at most [`MAX_INPUT`] bytes are used).
    #[inline]
    pub fn hash(&self, input: &[u8]) -> u32 {
        self.hash_at(0, input)
    }

    /// IPv4 addresses only (NIC hash type `IPV4`).
    #[inline]
    pub fn hash_v4_addrs(&self, src: [u8; 4], dst: [u8; 4]) -> u32 {
        self.hash_at(0, &src) ^ self.hash_at(4, &dst)
    }

    /// IPv4 addresses and TCP/UDP ports (NIC hash types `NONFRAG_IPV4_TCP/UDP`).
    #[inline]
    pub fn hash_v4(&self, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> u32 {
        let [s0, s1] = sport.to_be_bytes();
        let [d0, d1] = dport.to_be_bytes();
        let input = [
            src[0], src[1], src[2], src[3], dst[0], dst[1], dst[2], dst[3], s0, s1, d0, d1,
        ];
        self.hash_at(0, &input)
    }

    /// IPv6 addresses only (NIC hash type `IPV6`).
    #[inline]
    pub fn hash_v6_addrs(&self, src: &[u8; 16], dst: &[u8; 16]) -> u32 {
        self.hash_at(0, src) ^ self.hash_at(16, dst)
    }

    /// IPv6 addresses and TCP/UDP ports (NIC hash types `NONFRAG_IPV6_TCP/UDP`).
    #[inline]
    pub fn hash_v6(&self, src: &[u8; 16], dst: &[u8; 16], sport: u16, dport: u16) -> u32 {
        self.hash_v6_addrs(src, dst)
            ^ self.hash_at(32, &sport.to_be_bytes())
            ^ self.hash_at(34, &dport.to_be_bytes())
    }

    /// The hash of a flow with its ports, in the family of its addresses.
    #[inline]
    pub fn hash_flow(&self, key: &FlowKey) -> u32 {
        if key.saddr.is_v4() {
            self.hash_v4(
                key.saddr.v4_octets(),
                key.daddr.v4_octets(),
                key.sport,
                key.dport,
            )
        } else {
            self.hash_v6(&key.saddr.0, &key.daddr.0, key.sport, key.dport)
        }
    }

    /// The hash of a flow's addresses only (what a NIC uses for fragments and non-TCP/UDP).
    #[inline]
    pub fn hash_flow_addrs(&self, key: &FlowKey) -> u32 {
        if key.saddr.is_v4() {
            self.hash_v4_addrs(key.saddr.v4_octets(), key.daddr.v4_octets())
        } else {
            self.hash_v6_addrs(&key.saddr.0, &key.daddr.0)
        }
    }

    /// Everything but the destination port of a v4 flow; finish with [`DportHash::hash`].
    #[inline]
    pub fn dport_base_v4(&self, src: [u8; 4], dst: [u8; 4], sport: u16) -> DportHash<'_> {
        DportHash {
            base: self.hash_v4_addrs(src, dst) ^ self.hash_at(8, &sport.to_be_bytes()),
            hi: &self.tables[10],
            lo: &self.tables[11],
        }
    }

    /// Everything but the destination port of a v6 flow; finish with [`DportHash::hash`].
    #[inline]
    pub fn dport_base_v6(&self, src: &[u8; 16], dst: &[u8; 16], sport: u16) -> DportHash<'_> {
        DportHash {
            base: self.hash_v6_addrs(src, dst) ^ self.hash_at(32, &sport.to_be_bytes()),
            hi: &self.tables[34],
            lo: &self.tables[35],
        }
    }

    /// [`Toeplitz::dport_base_v4`]/[`Toeplitz::dport_base_v6`] for a flow (its `dport` is ignored).
    #[inline]
    pub fn dport_base(&self, key: &FlowKey) -> DportHash<'_> {
        if key.saddr.is_v4() {
            self.dport_base_v4(key.saddr.v4_octets(), key.daddr.v4_octets(), key.sport)
        } else {
            self.dport_base_v6(&key.saddr.0, &key.daddr.0, key.sport)
        }
    }
}

/// A flow hash with the destination port still open: two lookups per candidate port.
#[derive(Clone, Copy, Debug)]
pub struct DportHash<'a> {
    base: u32,
    hi: &'a [u32; 256],
    lo: &'a [u32; 256],
}

impl DportHash<'_> {
    /// The full hash with destination port `dport`.
    #[inline]
    pub fn hash(&self, dport: u16) -> u32 {
        let [h, l] = dport.to_be_bytes();
        self.base ^ self.hi[usize::from(h)] ^ self.lo[usize::from(l)]
    }
}

/// Why a redirection table could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetaError {
    /// The table has no entries.
    EmptyTable,
    /// No queues to spread over.
    NoQueues,
}

/// Maps an RSS hash to a receive queue through a redirection table (RETA).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetaMap {
    reta: Box<[u16]>,
}

impl RetaMap {
    /// The table DPDK PMDs install by default: `reta[i] = i % nb_queues`.
    pub fn new(reta_size: usize, nb_queues: u16) -> Result<RetaMap, RetaError> {
        if nb_queues == 0 {
            return Err(RetaError::NoQueues);
        }
        // i % nb_queues < nb_queues <= u16::MAX, so the narrowing is lossless.
        let reta: Box<[u16]> = (0..reta_size)
            .map(|i| (i % usize::from(nb_queues)) as u16)
            .collect();
        Self::from_table(reta.into_vec())
    }

    /// A map over a table read from (or programmed into) the device.
    pub fn from_table(reta: Vec<u16>) -> Result<RetaMap, RetaError> {
        if reta.is_empty() {
            return Err(RetaError::EmptyTable);
        }
        Ok(RetaMap {
            reta: reta.into_boxed_slice(),
        })
    }

    /// Number of table entries.
    pub fn len(&self) -> usize {
        self.reta.len()
    }

    /// Always false: an empty table cannot be built.
    pub fn is_empty(&self) -> bool {
        self.reta.is_empty()
    }

    /// The queue a packet with this hash is delivered to: `reta[hash % reta_size]`.
    #[inline]
    pub fn queue(&self, hash: u32) -> u16 {
        // from_table guarantees a non-empty table, so the index is in range.
        let i = hash as usize % self.reta.len();
        self.reta.get(i).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Addr, Proto};
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Bit-serial Toeplitz straight from the definition, to check the tables.
    fn reference(key: &[u8; KEY_LEN], input: &[u8]) -> u32 {
        let mut result = 0u32;
        let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
        let mut next = 32usize;
        for &b in input {
            for bit in (0..8).rev() {
                if b & (1 << bit) != 0 {
                    result ^= window;
                }
                let kb = key.get(next / 8).map_or(0, |k| (k >> (7 - next % 8)) & 1);
                window = (window << 1) | u32::from(kb);
                next += 1;
            }
        }
        result
    }

    fn v4(s: &str) -> [u8; 4] {
        s.parse::<Ipv4Addr>().unwrap().octets()
    }

    fn v6(s: &str) -> [u8; 16] {
        s.parse::<Ipv6Addr>().unwrap().octets()
    }

    // Microsoft "Verifying the RSS Hash Calculation" vectors:
    // (destination, dport, source, sport, addresses-only hash, with-ports hash).
    const MS_V4: [(&str, u16, &str, u16, u32, u32); 5] = [
        (
            "161.142.100.80",
            1766,
            "66.9.149.187",
            2794,
            0x323e8fc2,
            0x51ccc178,
        ),
        (
            "65.69.140.83",
            4739,
            "199.92.111.2",
            14230,
            0xd718262a,
            0xc626b0ea,
        ),
        (
            "12.22.207.184",
            38024,
            "24.19.198.95",
            12898,
            0xd2d0a5de,
            0x5c2b394a,
        ),
        (
            "209.142.163.6",
            2217,
            "38.27.205.30",
            48228,
            0x82989176,
            0xafc7327f,
        ),
        (
            "202.188.127.2",
            1303,
            "153.39.163.191",
            44251,
            0x5d1809c5,
            0x10e828a2,
        ),
    ];

    const MS_V6: [(&str, u16, &str, u16, u32, u32); 3] = [
        (
            "3ffe:2501:200:3::1",
            1766,
            "3ffe:2501:200:1fff::7",
            2794,
            0x2cc18cd5,
            0x40207d3d,
        ),
        (
            "ff02::1",
            4739,
            "3ffe:501:8::260:97ff:fe40:efab",
            14230,
            0x0f0c461c,
            0xdde51bbf,
        ),
        (
            "fe80::200:f8ff:fe21:67cf",
            38024,
            "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
            44251,
            0x4b61e985,
            0x02d1feef,
        ),
    ];

    #[test]
    fn test_microsoft_vectors_v4() {
        let t = Toeplitz::new(&MS_DEFAULT_KEY);
        for (dst, dport, src, sport, addrs, ports) in MS_V4 {
            assert_eq!(t.hash_v4_addrs(v4(src), v4(dst)), addrs, "{src} -> {dst}");
            assert_eq!(
                t.hash_v4(v4(src), v4(dst), sport, dport),
                ports,
                "{src} -> {dst}"
            );
            let key = FlowKey {
                saddr: Addr::v4(v4(src)),
                daddr: Addr::v4(v4(dst)),
                sport,
                dport,
                proto: Proto::Tcp,
            };
            assert_eq!(t.hash_flow(&key), ports);
            assert_eq!(t.hash_flow_addrs(&key), addrs);
            assert_eq!(t.dport_base(&key).hash(dport), ports);
        }
    }

    #[test]
    fn test_microsoft_vectors_v6() {
        let t = Toeplitz::new(&MS_DEFAULT_KEY);
        for (dst, dport, src, sport, addrs, ports) in MS_V6 {
            assert_eq!(t.hash_v6_addrs(&v6(src), &v6(dst)), addrs, "{src} -> {dst}");
            assert_eq!(
                t.hash_v6(&v6(src), &v6(dst), sport, dport),
                ports,
                "{src} -> {dst}"
            );
            let key = FlowKey {
                saddr: Addr::v6(v6(src)),
                daddr: Addr::v6(v6(dst)),
                sport,
                dport,
                proto: Proto::Udp,
            };
            assert_eq!(t.hash_flow(&key), ports);
            assert_eq!(t.hash_flow_addrs(&key), addrs);
            assert_eq!(t.dport_base(&key).hash(dport), ports);
        }
    }

    #[test]
    fn test_tables_match_bit_serial_reference() {
        let mut key = [0u8; KEY_LEN];
        for (i, k) in key.iter_mut().enumerate() {
            *k = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        let t = Toeplitz::new(&key);
        let input: Vec<u8> = (0..MAX_INPUT as u8)
            .map(|i| i.wrapping_mul(91) ^ 0x5a)
            .collect();
        for n in [0, 1, 7, 12, 36] {
            assert_eq!(t.hash(&input[..n]), reference(&key, &input[..n]), "len {n}");
        }
        assert_eq!(t.key(), &key);
    }

    #[test]
    fn test_input_longer_than_key_is_truncated() {
        let t = Toeplitz::new(&MS_DEFAULT_KEY);
        let long = [0xa5u8; 50];
        assert_eq!(t.hash(&long), t.hash(&long[..MAX_INPUT]));
    }

    #[test]
    fn test_dport_base_scan_matches_full_hash() {
        let t = Toeplitz::new(&MS_DEFAULT_KEY);
        let base = t.dport_base_v4([10, 0, 0, 1], [10, 0, 0, 2], 80);
        for dport in [0u16, 1, 1024, 40000, 65535] {
            assert_eq!(
                base.hash(dport),
                t.hash_v4([10, 0, 0, 1], [10, 0, 0, 2], 80, dport)
            );
        }
        let (a, b) = (v6("2001:db8::1"), v6("2001:db8::2"));
        let base6 = t.dport_base_v6(&a, &b, 443);
        assert_eq!(base6.hash(33000), t.hash_v6(&a, &b, 443, 33000));
    }

    #[test]
    fn test_reta_default_spread() {
        let m = RetaMap::new(128, 3).unwrap();
        assert_eq!(m.len(), 128);
        assert_eq!(m.queue(0), 0);
        assert_eq!(m.queue(1), 1);
        assert_eq!(m.queue(5), 2);
        // 130 % 128 = 2 -> reta[2] = 2; 127 -> 127 % 3 = 1.
        assert_eq!(m.queue(130), 2);
        assert_eq!(m.queue(127), 1);
        assert_eq!(m.queue(u32::MAX), (127 % 3) as u16);
        let mut counts = [0u32; 3];
        for h in 0..128u32 {
            counts[usize::from(m.queue(h))] += 1;
        }
        assert_eq!(counts, [43, 43, 42]);
    }

    #[test]
    fn test_reta_errors_and_custom_table() {
        assert_eq!(RetaMap::new(128, 0), Err(RetaError::NoQueues));
        assert_eq!(RetaMap::new(0, 4), Err(RetaError::EmptyTable));
        let m = RetaMap::from_table(vec![3, 3, 1]).unwrap();
        assert_eq!(m.queue(4), 3);
        assert_eq!(m.queue(5), 1);
        assert!(!m.is_empty());
    }
}
