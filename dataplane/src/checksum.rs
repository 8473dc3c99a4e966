//! The Internet checksum (RFC 1071), its pseudo-headers, its incremental update (RFC 1624), and a
//! description of what a NIC can compute for us instead.
//!
//! Vocabulary used throughout:
//! - a *sum* is the ones'-complement sum of 16-bit big-endian words, folded to 16 bits and **not**
//!   complemented (what [`sum`] and the `pseudo_*` functions return; sums combine with [`add`]);
//! - a *checksum* is the complemented sum, the value that goes into a header field
//!   (what [`checksum`] and [`finish`] return).
//!
//! Emitted headers get full sums; NAT rewrites use [`update16`], [`update32`], [`update_addr4`] and
//! [`update_addr16`], which cost a few adds instead of a pass over the payload. UDP over IPv4 may
//! carry a zero checksum meaning "none" (RFC 768); [`udp_update16`] and friends leave it alone, and
//! [`udp_finish`] never emits zero.
//!
//! Nothing here allocates, panics, or branches on packet contents beyond a loop bound.

use crate::flow::Addr;

/// Folds a wide ones'-complement accumulator to 16 bits (end-around carry).
#[inline]
///
/// 64 → 32 bits with one add and its carry (the sum of the halves plus the carry cannot
/// overflow); 32 → 16 bits by adding the word to itself rotated by 16, whose top half is the
/// end-around sum of the halves. Zero only for zero, like the textbook four-step fold.
pub fn fold(acc: u64) -> u16 {
    let (sum, carry) = (acc as u32).overflowing_add((acc >> 32) as u32);
    let x = sum + u32::from(carry);
    (x.wrapping_add(x.rotate_right(16)) >> 16) as u16
}

/// The ones'-complement sum of `data` as big-endian 16-bit words; an odd last byte is padded with zero.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    fold(accumulate(data))
}

/// The unfolded sum of `data`: 8 bytes at a time, carries kept in the top half of two lanes.
#[inline]
fn accumulate(data: &[u8]) -> u64 {
    let mut lo: u64 = 0;
    let mut hi: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // Adding 32-bit halves into 64-bit lanes cannot overflow below 2^32 chunks.
        lo += w & 0xffff_ffff;
        hi += w >> 32;
    }
    let mut acc = lo + hi;
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Ones'-complement addition of two sums.
#[inline]
pub fn add(a: u16, b: u16) -> u16 {
    let s = u32::from(a) + u32::from(b);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// Turns a sum into the checksum field value.
#[inline]
pub fn finish(sum: u16) -> u16 {
    !sum
}

/// The checksum of `data` (complemented sum), ready to store in a header.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// True if `data`, checksum field included, sums to all ones (the RFC 1071 receive check).
#[inline]
pub fn verify(data: &[u8]) -> bool {
    sum(data) == 0xffff
}

/// The sum of the IPv4 pseudo-header (RFC 793 §3.1): addresses, protocol and L4 length.
#[inline]
pub fn pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, l4_len: u16) -> u16 {
    let acc = u64::from(u32::from_be_bytes(src))
        + u64::from(u32::from_be_bytes(dst))
        + u64::from(proto)
        + u64::from(l4_len);
    fold(acc)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1): addresses, upper-layer length, next header.
#[inline]
pub fn pseudo_v6(src: &[u8; 16], dst: &[u8; 16], proto: u8, l4_len: u32) -> u16 {
    let acc = accumulate(src) + accumulate(dst) + u64::from(l4_len) + u64::from(proto);
    fold(acc)
}

/// The pseudo-header sum for either family ([`Addr::is_v4`] decides; both must be the same family).
#[inline]
pub fn pseudo(src: &Addr, dst: &Addr, proto: u8, l4_len: u16) -> u16 {
    if src.is_v4() {
        pseudo_v4(src.v4_octets(), dst.v4_octets(), proto, l4_len)
    } else {
        pseudo_v6(&src.0, &dst.0, proto, u32::from(l4_len))
    }
}

/// The checksum of a TCP/UDP/ICMPv6 segment (its checksum field zeroed) under a pseudo-header sum.
#[inline]
pub fn l4_checksum(pseudo_sum: u16, segment: &[u8]) -> u16 {
    !add(pseudo_sum, sum(segment))
}

/// Maps a computed UDP checksum of zero to `0xffff`, since zero on the wire means "no checksum".
#[inline]
pub fn udp_finish(csum: u16) -> u16 {
    if csum == 0 {
        0xffff
    } else {
        csum
    }
}

/// RFC 1624 eqn. 3: the checksum after one 16-bit word of the covered data changes from `old` to `new`.
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    // HC' = ~(~HC + ~m + m')
    !add(add(!csum, !old), new)
}

/// The checksum after a 32-bit (word-aligned) field changes from `old` to `new`.
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let acc = u64::from(!csum)
        + u64::from(!(old >> 16) & 0xffff)
        + u64::from(!old & 0xffff)
        + u64::from(new >> 16)
        + u64::from(new & 0xffff);
    !fold(acc)
}

/// The checksum after an IPv4 address (word-aligned) changes from `old` to `new`.
#[inline]
pub fn update_addr4(csum: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    update32(csum, u32::from_be_bytes(old), u32::from_be_bytes(new))
}

/// The checksum after an IPv6 address (word-aligned) changes from `old` to `new`.
#[inline]
pub fn update_addr16(csum: u16, old: &[u8; 16], new: &[u8; 16]) -> u16 {
    // ~old summed word-wise is the complement of old's sum (ones'-complement negation is linear).
    let acc = u64::from(!csum) + u64::from(!sum(old)) + accumulate(new);
    !fold(acc)
}

/// The checksum after an address of either family changes; v4 addresses touch only 4 bytes.
#[inline]
pub fn update_addr(csum: u16, old: &Addr, new: &Addr) -> u16 {
    if old.is_v4() && new.is_v4() {
        update_addr4(csum, old.v4_octets(), new.v4_octets())
    } else {
        update_addr16(csum, &old.0, &new.0)
    }
}

/// The RFC 1624 terms of a 16-bit word changing from `old` to `new`, to be summed with other
/// deltas and applied once with [`apply_delta`].
#[inline]
pub fn delta16(old: u16, new: u16) -> u64 {
    u64::from(!old) + u64::from(new)
}

/// The terms of a 32-bit (word-aligned) field changing from `old` to `new` (see [`delta16`]).
#[inline]
pub fn delta32(old: u32, new: u32) -> u64 {
    u64::from(!(old >> 16) & 0xffff)
        + u64::from(!old & 0xffff)
        + u64::from(new >> 16)
        + u64::from(new & 0xffff)
}

/// The terms of an address of either family changing, the same ones [`update_addr`] adds.
#[inline]
pub fn delta_addr(old: &Addr, new: &Addr) -> u64 {
    if old.is_v4() && new.is_v4() {
        delta32(
            u32::from_be_bytes(old.v4_octets()),
            u32::from_be_bytes(new.v4_octets()),
        )
    } else {
        u64::from(!sum(&old.0)) + accumulate(&new.0)
    }
}

/// The terms of a 32-bit word read in native byte order changing from `old` to `new`, nothing
/// when it does not change (the IPv4 rewrites sum these; see [`apply_delta`]).
#[inline(always)]
pub fn term32(old: u32, new: u32) -> u64 {
    if old == new {
        0
    } else {
        u64::from(!old) + u64::from(new)
    }
}

/// [`term32`] for a 16-bit word.
#[inline(always)]
pub fn term16(old: u16, new: u16) -> u64 {
    if old == new {
        0
    } else {
        delta16(old, new)
    }
}

/// The folded sum of the changes that undo those `sum` folds (each change from `new` back to
/// `old`): its ones' complement negation, zero staying zero (no change) and `0xffff` (changes
/// that cancel out) staying `0xffff`.
#[inline(always)]
pub fn negate_sum(sum: u16) -> u16 {
    match sum {
        0 | 0xffff => sum,
        s => !s,
    }
}

/// `csum` after the changes whose deltas were summed into `delta`: bit for bit what applying
/// [`update16`], [`update32`] and [`update_addr`] one change after the other gives (ones'
/// complement addition is associative, and a fold is zero only when every term is), for the
/// price of one fold. A sum of fewer than 2^40 deltas cannot overflow.
#[inline]
pub fn apply_delta(csum: u16, delta: u64) -> u16 {
    !fold(u64::from(!csum) + delta)
}

/// [`update16`] for a UDP checksum: a zero checksum (none, over IPv4) stays zero; a result of zero
/// is sent as `0xffff`.
#[inline]
pub fn udp_update16(csum: u16, old: u16, new: u16) -> u16 {
    if csum == 0 {
        0
    } else {
        udp_finish(update16(csum, old, new))
    }
}

/// [`update_addr`] for a UDP checksum, with the zero-checksum rules of [`udp_update16`].
#[inline]
pub fn udp_update_addr(csum: u16, old: &Addr, new: &Addr) -> u16 {
    if csum == 0 {
        0
    } else {
        udp_finish(update_addr(csum, old, new))
    }
}

/// Checksum work a port's NIC can do on transmit, read once from the device capabilities.
///
/// These mirror DPDK's `RTE_ETH_TX_OFFLOAD_*_CKSUM` capability bits. The forwarder consults them
/// once per frame to choose between a software sum and an offload request ([`TxCsum`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxCsumCaps {
    /// The NIC fills the IPv4 header checksum (`IPV4_CKSUM`).
    pub ipv4: bool,
    /// The NIC fills the TCP checksum, given a pseudo-header seed (`TCP_CKSUM`).
    pub tcp: bool,
    /// The NIC fills the UDP checksum, given a pseudo-header seed (`UDP_CKSUM`).
    pub udp: bool,
    /// The NIC fills the outer IPv4 header checksum of a tunnel (`OUTER_IPV4_CKSUM`).
    pub outer_ipv4: bool,
}

/// Which L4 checksum a frame asks the NIC to fill.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum L4Offload {
    /// Software computed it (or there is none).
    #[default]
    None,
    /// TCP: the checksum field must hold the pseudo-header sum (see [`offload_seed`]).
    Tcp,
    /// UDP: the checksum field must hold the pseudo-header sum (see [`offload_seed`]).
    Udp,
}

/// The offload request for one frame, which the driver layer copies into the mbuf
/// (`ol_flags`, `l2_len`, `l3_len`, `outer_l2_len`, `outer_l3_len`).
///
/// Contract with the NIC (DPDK's): when `ipv4` is set the IPv4 checksum field must be zero; when
/// `l4` is set the L4 checksum field must hold [`offload_seed`] of the (inner) packet. For a tunnel
/// (`outer_l3_len != 0`), `l2_len`/`l3_len` describe the inner headers and the `outer_*` fields the
/// outer ones; `outer_ipv4` asks for the outer IPv4 header checksum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxCsum {
    /// Fill the (inner) IPv4 header checksum.
    pub ipv4: bool,
    /// Fill the (inner) L4 checksum.
    pub l4: L4Offload,
    /// Fill the outer IPv4 header checksum of a tunnel.
    pub outer_ipv4: bool,
    /// Length of the (inner) L2 header; for IPIP this is 0 (the inner IP follows the outer IP).
    pub l2_len: u16,
    /// Length of the (inner) L3 header including options/extension headers.
    pub l3_len: u16,
    /// Length of the outer L2 header, 0 without a tunnel.
    pub outer_l2_len: u16,
    /// Length of the outer L3 header, 0 without a tunnel.
    pub outer_l3_len: u16,
}

impl TxCsum {
    /// True if the NIC is asked to do anything for this frame.
    #[inline]
    pub fn any(&self) -> bool {
        self.ipv4 || self.outer_ipv4 || self.l4 != L4Offload::None
    }
}

/// The value to leave in the L4 checksum field when the NIC fills it: the pseudo-header sum, not
/// complemented (what DPDK's `rte_ipv4_phdr_cksum`/`rte_ipv6_phdr_cksum` return).
#[inline]
pub fn offload_seed(src: &Addr, dst: &Addr, proto: u8, l4_len: u16) -> u16 {
    pseudo(src, dst, proto, l4_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bit-by-bit reference: 16-bit words, end-around carry after every add.
    fn reference_sum(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for (i, b) in data.iter().enumerate() {
            s += if i % 2 == 0 {
                u32::from(*b) << 8
            } else {
                u32::from(*b)
            };
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn test_rfc1071_example() {
        // RFC 1071 §3: words 0001 f203 f4f5 f6f7 sum to ddf2 (after end-around carry).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), 0x220d);
    }

    #[test]
    fn test_ipv4_header_checksum() {
        // A real IPv4 header (192.168.0.1 -> 192.168.0.199, UDP) with checksum 0xb861.
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr), 0xb861);
        hdr[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert!(verify(&hdr));
        hdr[8] = 0x3f;
        assert!(!verify(&hdr));
    }

    #[test]
    fn test_odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12]), 0x1200);
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn test_udp_zero_rules() {
        assert_eq!(udp_finish(0), 0xffff);
        assert_eq!(udp_finish(0x1234), 0x1234);
        assert_eq!(udp_update16(0, 1, 2), 0);
        let v4 = Addr::v4([10, 0, 0, 1]);
        assert_eq!(udp_update_addr(0, &v4, &Addr::v4([10, 0, 0, 2])), 0);
        // ~(~0x1234 + ~0x0000 + 0x1234) = ~0xffff = 0: a UDP sender must put 0xffff instead.
        assert_eq!(update16(0x1234, 0x0000, 0x1234), 0);
        assert_eq!(udp_update16(0x1234, 0x0000, 0x1234), 0xffff);
        assert_eq!(update16(0xfffe, 0x0000, 0x0001), 0xfffd);
        assert_eq!(udp_update16(0xfffe, 0x0000, 0x0001), 0xfffd);
    }

    #[test]
    fn test_pseudo_v6_matches_flat_sum() {
        let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let mut flat = Vec::new();
        flat.extend_from_slice(&src);
        flat.extend_from_slice(&dst);
        flat.extend_from_slice(&1000u32.to_be_bytes());
        flat.extend_from_slice(&[0, 0, 0, 6]);
        assert_eq!(pseudo_v6(&src, &dst, 6, 1000), reference_sum(&flat));
        assert_eq!(
            pseudo(&Addr::v6(src), &Addr::v6(dst), 6, 1000),
            reference_sum(&flat)
        );
        let flat4 = [10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0x01, 0x00];
        assert_eq!(
            pseudo_v4([10, 0, 0, 1], [10, 0, 0, 2], 17, 256),
            reference_sum(&flat4)
        );
    }

    #[test]
    fn test_tx_csum_any() {
        assert!(!TxCsum::default().any());
        let t = TxCsum {
            l4: L4Offload::Tcp,
            ..TxCsum::default()
        };
        assert!(t.any());
    }

    /// Equality of checksums modulo the two zeros of ones'-complement arithmetic.
    fn same(a: u16, b: u16) -> bool {
        a == b || (a == 0 || a == 0xffff) && (b == 0 || b == 0xffff)
    }

    /// The textbook fold: end-around carry twice at 32 bits, twice at 16.
    fn reference_fold(mut acc: u64) -> u16 {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
        acc = (acc & 0xffff_ffff) + (acc >> 32);
        acc = (acc & 0xffff) + (acc >> 16);
        acc = (acc & 0xffff) + (acc >> 16);
        acc as u16
    }

    #[test]
    fn test_fold_edges() {
        for acc in [
            0,
            1,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_ffff,
            0xffff_0000_ffff,
            u64::MAX,
            u64::MAX - 1,
        ] {
            assert_eq!(fold(acc), reference_fold(acc), "{acc:#x}");
        }
    }

    proptest! {
        /// Bit for bit the textbook fold, zero only for zero.
        #[test]
        fn prop_fold_matches_reference(acc in any::<u64>(), small in any::<u32>()) {
            prop_assert_eq!(fold(acc), reference_fold(acc));
            prop_assert_eq!(fold(u64::from(small)), reference_fold(u64::from(small)));
        }

        #[test]
        fn prop_sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(sum(&data), reference_sum(&data));
        }

        #[test]
        fn prop_apply_delta_matches_sequential_updates(
            csum in any::<u16>(),
            words in proptest::collection::vec((any::<u16>(), any::<u16>()), 0..4),
            a4 in proptest::collection::vec((any::<u32>(), any::<u32>()), 0..3),
            a16 in proptest::collection::vec((any::<[u8; 16]>(), any::<[u8; 16]>()), 0..3),
        ) {
            let (mut seq, mut delta) = (csum, 0u64);
            for &(o, n) in &words {
                seq = update16(seq, o, n);
                delta += delta16(o, n);
            }
            for &(o, n) in &a4 {
                seq = update_addr(seq, &Addr::v4(o.to_be_bytes()), &Addr::v4(n.to_be_bytes()));
                delta += delta_addr(&Addr::v4(o.to_be_bytes()), &Addr::v4(n.to_be_bytes()));
                seq = update32(seq, n, o);
                delta += delta32(n, o);
            }
            for (o, n) in &a16 {
                seq = update_addr(seq, &Addr::v6(*o), &Addr::v6(*n));
                delta += delta_addr(&Addr::v6(*o), &Addr::v6(*n));
            }
            prop_assert_eq!(apply_delta(csum, delta), seq);
        }

        #[test]
        fn prop_update16_matches_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 2..200),
            word in any::<prop::sample::Index>(),
            new in any::<u16>(),
        ) {
            let n = data.len() / 2;
            let i = word.index(n) * 2;
            let before = checksum(&data);
            let old = u16::from_be_bytes([data[i], data[i + 1]]);
            data[i..i + 2].copy_from_slice(&new.to_be_bytes());
            prop_assert!(same(update16(before, old, new), checksum(&data)));
        }

        #[test]
        fn prop_update32_and_addr4_match_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 4..200),
            word in any::<prop::sample::Index>(),
            new in any::<[u8; 4]>(),
        ) {
            let i = word.index(data.len() / 2 - 1) * 2;
            let before = checksum(&data);
            let old = [data[i], data[i + 1], data[i + 2], data[i + 3]];
            data[i..i + 4].copy_from_slice(&new);
            let after = checksum(&data);
            prop_assert!(same(update_addr4(before, old, new), after));
            prop_assert!(same(
                update32(before, u32::from_be_bytes(old), u32::from_be_bytes(new)),
                after
            ));
        }

        #[test]
        fn prop_update_addr16_matches_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 16..200),
            word in any::<prop::sample::Index>(),
            new in any::<[u8; 16]>(),
        ) {
            let i = word.index(data.len() / 2 - 7) * 2;
            let before = checksum(&data);
            let mut old = [0u8; 16];
            old.copy_from_slice(&data[i..i + 16]);
            data[i..i + 16].copy_from_slice(&new);
            prop_assert!(same(update_addr16(before, &old, &new), checksum(&data)));
            prop_assert!(same(
                update_addr(before, &Addr::v6(old), &Addr::v6(new)),
                checksum(&data)
            ));
        }

        #[test]
        fn prop_l4_checksum_verifies(
            payload in proptest::collection::vec(any::<u8>(), 8..100),
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
        ) {
            let mut seg = payload.clone();
            seg[6] = 0;
            seg[7] = 0;
            let ps = pseudo_v4(src, dst, 17, seg.len() as u16);
            let c = l4_checksum(ps, &seg);
            seg[6..8].copy_from_slice(&c.to_be_bytes());
            prop_assert_eq!(add(ps, sum(&seg)), 0xffff);
        }
    }
}
