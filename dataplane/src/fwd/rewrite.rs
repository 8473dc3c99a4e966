//! In-place header rewrites on a parsed frame: MAC addresses, NAT of addresses and ports with
//! RFC 1624 incremental checksums, TTL/hop-limit decrement.
//!
//! Every function takes the frame together with the [`ParsedFrame`] that `parse_frame` returned
//! for it; it re-checks the few lengths it relies on, so a mismatched pair cannot panic (it
//! returns `false` and leaves the frame unchanged).

use crate::checksum;
use crate::flow::Addr;
use crate::wire::{get16, ip_proto, set16, Frag, L3Kind, MacAddr, ParsedFrame};

/// Sets the Ethernet destination and source MACs.
#[inline]
pub(super) fn set_macs(frame: &mut [u8], dst: MacAddr, src: MacAddr) {
    if let Some(h) = frame.get_mut(..12) {
        h[..6].copy_from_slice(&dst.0);
        h[6..].copy_from_slice(&src.0);
    }
}

/// Offset of the source address field within an IP header.
#[inline]
pub(super) fn src_off(v4: bool) -> usize {
    if v4 {
        12
    } else {
        8
    }
}

/// Offset of the destination address field within an IP header.
#[inline]
pub(super) fn dst_off(v4: bool) -> usize {
    if v4 {
        16
    } else {
        24
    }
}

/// Writes `a` (4 or 16 bytes by family) at `off`.
#[inline]
pub(super) fn put_addr(frame: &mut [u8], off: usize, v4: bool, a: &Addr) {
    if v4 {
        if let Some(d) = frame.get_mut(off..off + 4) {
            d.copy_from_slice(&a.0[12..]);
        }
    } else if let Some(d) = frame.get_mut(off..off + 16) {
        d.copy_from_slice(&a.0);
    }
}

/// Where the L4 checksum of a TCP/UDP header lives, relative to the header, and whether it
/// follows UDP's zero rule.
#[inline]
pub(super) fn l4_csum_field(proto: u8) -> Option<(usize, bool)> {
    match proto {
        ip_proto::TCP => Some((16, false)),
        ip_proto::UDP => Some((6, true)),
        _ => None,
    }
}

/// Folds an address change into an L4 checksum.
#[inline]
pub(super) fn l4_addr(c: u16, udp: bool, old: &Addr, new: &Addr) -> u16 {
    if udp {
        checksum::udp_update_addr(c, old, new)
    } else {
        checksum::update_addr(c, old, new)
    }
}

/// Folds a 16-bit change into an L4 checksum.
#[inline]
pub(super) fn l4_word(c: u16, udp: bool, old: u16, new: u16) -> u16 {
    if udp {
        checksum::udp_update16(c, old, new)
    } else {
        checksum::update16(c, old, new)
    }
}

/// Rewrites source and/or destination address:port of a TCP/UDP packet, updating the IPv4
/// header checksum and the L4 checksum incrementally, and decrements the TTL/hop limit when
/// `route` is set. Ports of a later fragment (no L4 header) are left alone.
///
/// The changes are summed as RFC 1624 deltas and each checksum is folded once at the end, which
/// gives the same bits as updating it change by change ([`checksum::apply_delta`]).
#[inline(always)]
pub(super) fn nat(
    frame: &mut [u8],
    pf: &ParsedFrame,
    src: Option<(Addr, u16)>,
    dst: Option<(Addr, u16)>,
    route: bool,
) -> bool {
    let l3 = usize::from(pf.l3_off);
    let l4 = usize::from(pf.l4_off);
    let v4 = pf.l3 == L3Kind::Ipv4;
    let field = if pf.frag == Frag::Later {
        None
    } else {
        l4_csum_field(pf.proto)
    };
    let ip_end = l3 + if v4 { 20 } else { 40 };
    let need = match field {
        Some((off, _)) => (l4 + off + 2).max(ip_end),
        None => ip_end,
    };
    if frame.len() < need {
        return false;
    }
    if let (true, Some((off, udp))) = (v4, field) {
        let old = (pf.src.v4_octets(), pf.dst.v4_octets());
        if let Some(done) = nat_v4(frame, old, (l3, l4, off, udp), src, dst, route) {
            return done;
        }
    }
    nat_any(frame, pf, (l3, l4, v4, field), src, dst, route)
}

/// [`nat`] for every case; its lengths are checked.
#[inline(always)]
fn nat_any(
    frame: &mut [u8],
    pf: &ParsedFrame,
    (l3, l4, v4, field): (usize, usize, bool, Option<(usize, bool)>),
    src: Option<(Addr, u16)>,
    dst: Option<(Addr, u16)>,
    route: bool,
) -> bool {
    let ports = field.is_some();
    // Deltas for the IPv4 header checksum (addresses, TTL) and the L4 one (addresses, ports).
    let mut ip_d = 0u64;
    let mut l4_d = 0u64;
    if let Some(new) = src {
        l4_d += leg(
            frame,
            v4,
            l3 + src_off(v4),
            ports.then_some(l4),
            &pf.src,
            new,
            &mut ip_d,
        );
    }
    if let Some(new) = dst {
        let poff = ports.then_some(l4 + 2);
        l4_d += leg(frame, v4, l3 + dst_off(v4), poff, &pf.dst, new, &mut ip_d);
    }
    if route {
        if v4 {
            let old = get16(frame, l3 + 8);
            frame[l3 + 8] = frame[l3 + 8].saturating_sub(1);
            ip_d += checksum::delta16(old, get16(frame, l3 + 8));
        } else {
            frame[l3 + 7] = frame[l3 + 7].saturating_sub(1);
        }
    }
    if v4 {
        let ipc = get16(frame, l3 + 10);
        set16(frame, l3 + 10, checksum::apply_delta(ipc, ip_d));
    }
    if let Some((off, udp)) = field {
        let c = get16(frame, l4 + off);
        // A zero UDP checksum (IPv4: none) stays zero; a computed zero is sent as all ones.
        let c = match (udp, c) {
            (true, 0) => 0,
            (true, c) => checksum::udp_finish(checksum::apply_delta(c, l4_d)),
            (false, c) => checksum::apply_delta(c, l4_d),
        };
        set16(frame, l4 + off, c);
    }
    true
}

/// [`nat`] for TCP/UDP over IPv4 with IPv4 addresses, on fixed-size views of the two headers:
/// the same bytes, without the family and length cases. `None` when the packet is not that
/// (the general code handles it). `old` is the packet's (source, destination) address, `at`
/// (IP offset, L4 offset, L4 checksum offset, UDP).
///
/// The sums run on words read in native byte order: the ones' complement sum of byte-swapped
/// words is the byte-swapped sum (RFC 1071 §2 B), and a 32-bit word adds as its two halves do,
/// so no field is swapped and an address changes in one add.
#[inline(always)]
pub(super) fn nat_v4(
    frame: &mut [u8],
    (old_src, old_dst): ([u8; 4], [u8; 4]),
    (l3, l4, off, udp): (usize, usize, usize, bool),
    src: Option<(Addr, u16)>,
    dst: Option<(Addr, u16)>,
    route: bool,
) -> Option<bool> {
    if src.is_some_and(|(a, _)| !a.is_v4()) || dst.is_some_and(|(a, _)| !a.is_v4()) {
        return None;
    }
    let (head, l4h) = frame.split_at_mut_checked(l4)?;
    let ip: &mut [u8; 20] = head.get_mut(l3..l3.checked_add(20)?)?.try_into().ok()?;
    // Ports at 0..4; the checksum at 16 (TCP) or 6 (UDP).
    let l4h: &mut [u8; 18] = match l4h.get_mut(..18) {
        Some(h) => h.try_into().ok()?,
        None => return None,
    };
    if off + 2 > l4h.len() {
        return None;
    }
    let octets = |leg: Option<(Addr, u16)>| leg.map(|(a, p)| (a.v4_octets(), p));
    let old = (old_src, old_dst);
    rewrite_v4(ip, l4h, (off, udp), old, octets(src), octets(dst), route);
    Some(true)
}

/// The IPv4 header and the first 18 bytes of the TCP header of the common frame's 54-byte
/// head. The lengths are constant: it never returns `None`, and the compiler drops the checks.
#[inline(always)]
fn head_views(head: &mut [u8; 54]) -> Option<(&mut [u8; 20], &mut [u8; 18])> {
    let (_, l3) = head.split_first_chunk_mut::<14>()?;
    let (ip, l4) = l3.split_first_chunk_mut::<20>()?;
    Some((ip, l4.first_chunk_mut::<18>()?))
}

/// [`nat_v4`] for the common frame (IPv4 without options at 14, TCP at 34) given as its first
/// 54 bytes, routed (TTL decremented): every offset is fixed, so nothing is left to check.
/// `src` and `dst` are the new IPv4 source and destination with their ports. The reference
/// [`nat_head_v4_summed`] is tested against.
#[cfg(test)]
pub(super) fn nat_head_v4(
    head: &mut [u8; 54],
    src: Option<([u8; 4], u16)>,
    dst: Option<([u8; 4], u16)>,
) {
    let Some((ip, l4h)) = head_views(head) else {
        return;
    };
    let old = (
        [ip[12], ip[13], ip[14], ip[15]],
        [ip[16], ip[17], ip[18], ip[19]],
    );
    rewrite_v4(ip, l4h, (16, false), old, src, dst, true);
}

/// The body of [`nat_v4`] and [`nat_head_v4`] on the IPv4 header and the first 18 bytes of the
/// L4 header, whose checksum is at `off` (`udp`: with UDP's zero rule, `off` ≤ 16); `old` is
/// the packet's (source, destination) address.
#[inline(always)]
fn rewrite_v4(
    ip: &mut [u8; 20],
    l4h: &mut [u8; 18],
    (off, udp): (usize, bool),
    (old_src, old_dst): ([u8; 4], [u8; 4]),
    src: Option<([u8; 4], u16)>,
    dst: Option<([u8; 4], u16)>,
    route: bool,
) {
    let (src_ip, src_l4) = leg_v4(ip, l4h, src, old_src, 12, 0);
    let (dst_ip, dst_l4) = leg_v4(ip, l4h, dst, old_dst, 16, 2);
    let mut ip_d = src_ip + dst_ip;
    let l4_d = src_l4 + dst_l4;
    if route {
        let old = u16::from_ne_bytes([ip[8], ip[9]]);
        ip[8] = ip[8].saturating_sub(1);
        ip_d += checksum::delta16(old, u16::from_ne_bytes([ip[8], ip[9]]));
    }
    let ipc = checksum::apply_delta(u16::from_ne_bytes([ip[10], ip[11]]), ip_d);
    ip[10..12].copy_from_slice(&ipc.to_ne_bytes());
    let Some(field) = l4h.get_mut(off..off + 2) else {
        return;
    };
    let c = u16::from_ne_bytes([field[0], field[1]]);
    let c = match (udp, c) {
        (true, 0) => 0,
        (true, c) => checksum::udp_finish(checksum::apply_delta(c, l4_d)),
        (false, c) => checksum::apply_delta(c, l4_d),
    };
    field.copy_from_slice(&c.to_ne_bytes());
}

/// One side of [`nat_v4`]: writes the new address (at `aoff` in the IP header) and port (at
/// `poff` in the L4 header) if there is one, and returns the native-order checksum terms of the
/// change for the IP header and for the L4 checksum.
#[inline(always)]
fn leg_v4(
    ip: &mut [u8; 20],
    l4h: &mut [u8; 18],
    new: Option<([u8; 4], u16)>,
    old: [u8; 4],
    aoff: usize,
    poff: usize,
) -> (u64, u64) {
    let Some((addr, port)) = new else {
        return (0, 0);
    };
    let (o, n) = (u32::from_ne_bytes(old), u32::from_ne_bytes(addr));
    if let Some(a) = ip.get_mut(aoff..aoff + 4) {
        a.copy_from_slice(&n.to_ne_bytes());
    }
    let addr_d = checksum::term32(o, n);
    (addr_d, addr_d + port_v4(l4h, port, poff))
}

/// Writes `port` at `poff` of the L4 header and returns the checksum terms of the change.
#[inline(always)]
fn port_v4(l4h: &mut [u8; 18], port: u16, poff: usize) -> u64 {
    put_port_v4(l4h, port, poff).map_or(0, |(op, np)| checksum::term16(op, np))
}

/// Writes `port` at `poff` of the L4 header; the old and the new port as native-order words.
#[inline(always)]
fn put_port_v4(l4h: &mut [u8; 18], port: u16, poff: usize) -> Option<(u16, u16)> {
    let p = l4h.get_mut(poff..poff + 2)?;
    let (op, np) = (
        u16::from_ne_bytes([p[0], p[1]]),
        u16::from_ne_bytes(port.to_be_bytes()),
    );
    p.copy_from_slice(&np.to_ne_bytes());
    Some((op, np))
}

/// [`port_v4`] without its "unchanged" test: the terms of an unchanged port are a negative zero,
/// which changes a nonzero sum's fold in nothing (see [`nat_head_v4_summed`]).
#[inline(always)]
fn port_v4_changed(l4h: &mut [u8; 18], port: u16, poff: usize) -> u64 {
    put_port_v4(l4h, port, poff).map_or(0, |(op, np)| checksum::delta16(op, np))
}

/// [`nat_head_v4`] for a packet of a connection whose address changes were summed when it was
/// created ([`crate::conn::Conn::nat_sum`]), with a TTL above 1: the addresses are written, not
/// summed again, and only the ports' changes are. Bit for bit what [`nat_head_v4`] writes, as
/// long as `addr_sum` folds the terms of this packet's address changes and is not zero (NAT
/// always changes an address, VIP to real server or back): both checksums are ones' complement
/// sums of the same terms, a fold is zero only when every term is, and so an unchanged port's
/// terms (a negative zero) need no test. (With no address changed, a checksum could come out
/// as 0x0000 where [`nat_head_v4`] gives 0xffff: the same value, as valid.)
#[inline(always)]
pub(super) fn nat_head_v4_summed(
    head: &mut [u8; 54],
    src: Option<([u8; 4], u16)>,
    dst: Option<([u8; 4], u16)>,
    addr_sum: u16,
) {
    let Some((ip, l4h)) = head_views(head) else {
        return;
    };
    let mut l4_d = u64::from(addr_sum);
    if let Some((addr, port)) = src {
        ip[12..16].copy_from_slice(&addr);
        l4_d += port_v4_changed(l4h, port, 0);
    }
    if let Some((addr, port)) = dst {
        ip[16..20].copy_from_slice(&addr);
        l4_d += port_v4_changed(l4h, port, 2);
    }
    route_summed_v4(ip, l4h, addr_sum, l4_d);
}

/// The end of both summed head rewrites: the TTL goes down by one (the caller checked it is
/// above 1), the IP checksum takes `addr_sum` and the TTL's terms, the TCP checksum `l4_d`.
#[inline(always)]
fn route_summed_v4(ip: &mut [u8; 20], l4h: &mut [u8; 18], addr_sum: u16, l4_d: u64) {
    // The word holding the TTL, read in native order, goes down by d = from_ne_bytes([1, 0]),
    // whose terms are !w + (w − d) = 0xffff − d whatever the word (0xfffe on a little-endian
    // machine).
    const TTL_TERMS: u64 = 0xffff - u16::from_ne_bytes([1, 0]) as u64;
    debug_assert!(ip[8] > 1);
    ip[8] = ip[8].wrapping_sub(1);
    let ip_d = u64::from(addr_sum) + TTL_TERMS;
    let ipc = checksum::apply_delta(u16::from_ne_bytes([ip[10], ip[11]]), ip_d);
    ip[10..12].copy_from_slice(&ipc.to_ne_bytes());
    let c = checksum::apply_delta(u16::from_ne_bytes([l4h[16], l4h[17]]), l4_d);
    l4h[16..18].copy_from_slice(&c.to_ne_bytes());
}

/// [`nat_head_v4_summed`] for FullNAT, which changes both addresses and both ports: `ports` are
/// the new source and destination port as the wire has them, written as one word, and their
/// checksum terms are that word's. No "unchanged" test is needed: FullNAT changes an address
/// (client to local address, VIP to real server), so `addr_sum` is not zero (a fold is zero
/// only when every term is) and neither is the sum, and the terms of an unchanged word (a
/// negative zero) then change nothing. So the bytes are those per-port terms give, bit for bit.
/// (Were neither address to change, a checksum could come out as 0x0000 where per-port terms
/// give 0xffff: the same ones' complement value, and as valid.)
#[inline(always)]
pub(super) fn fullnat_head_v4_summed(
    head: &mut [u8; 54],
    (src, dst): ([u8; 4], [u8; 4]),
    ports: [u8; 4],
    addr_sum: u16,
) {
    let Some((ip, l4h)) = head_views(head) else {
        return;
    };
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let (old, new) = (
        u32::from_ne_bytes([l4h[0], l4h[1], l4h[2], l4h[3]]),
        u32::from_ne_bytes(ports),
    );
    l4h[0..4].copy_from_slice(&ports);
    let l4_d = u64::from(addr_sum) + u64::from(!old) + u64::from(new);
    route_summed_v4(ip, l4h, addr_sum, l4_d);
}

/// Writes one side's new address (at `aoff`) and port (at `poff`, if the packet has ports) and
/// returns the L4 checksum delta, adding the address part to `ip_d`. Lengths are checked by the
/// caller.
#[inline(always)]
fn leg(
    frame: &mut [u8],
    v4: bool,
    aoff: usize,
    poff: Option<usize>,
    old: &Addr,
    (addr, port): (Addr, u16),
    ip_d: &mut u64,
) -> u64 {
    let mut d = 0;
    if addr != *old {
        put_addr(frame, aoff, v4, &addr);
        d = checksum::delta_addr(old, &addr);
        if v4 {
            // The same terms as `d` for two IPv4 addresses (the compiler shares them).
            let (o, n) = (old.v4_octets(), addr.v4_octets());
            *ip_d += checksum::delta32(u32::from_be_bytes(o), u32::from_be_bytes(n));
        }
    }
    if let Some(p) = poff {
        let old_port = get16(frame, p);
        if old_port != port {
            set16(frame, p, port);
            d += checksum::delta16(old_port, port);
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_frame;
    use etherparse::PacketBuilder;

    fn udp_v4(csum_zero: bool) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([192, 0, 2, 1], [198, 51, 100, 10], 64)
            .udp(40000, 53);
        let mut f = Vec::new();
        b.write(&mut f, &[1, 2, 3, 4, 5]).unwrap();
        if csum_zero {
            f[14 + 20 + 6] = 0;
            f[14 + 20 + 7] = 0;
        }
        f
    }

    #[test]
    fn test_nat_matches_etherparse_rebuild() {
        let mut f = udp_v4(false);
        let pf = parse_frame(&f).unwrap();
        let rip = Addr::v4([10, 1, 0, 5]);
        assert!(nat(&mut f, &pf, None, Some((rip, 8053)), true));
        let mut want = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([192, 0, 2, 1], [10, 1, 0, 5], 63)
            .udp(40000, 8053)
            .write(&mut want, &[1, 2, 3, 4, 5])
            .unwrap();
        assert_eq!(f, want);
    }

    #[test]
    fn test_udp_zero_checksum_stays_zero() {
        let mut f = udp_v4(true);
        let pf = parse_frame(&f).unwrap();
        let a = Addr::v4([10, 2, 0, 1]);
        assert!(nat(&mut f, &pf, Some((a, 1)), None, false));
        assert_eq!(&f[40..42], &[0, 0]);
        assert_eq!(&f[26..30], &[10, 2, 0, 1]);
    }

    proptest::proptest! {
        /// The IPv4 shortcut writes the same bytes as the general rewrite.
        #[test]
        fn prop_v4_shortcut_matches_general(
            udp in proptest::bool::ANY,
            zero in proptest::bool::ANY,
            src in proptest::option::of((proptest::prelude::any::<[u8; 4]>(), 0u16..4)),
            dst in proptest::option::of((proptest::prelude::any::<[u8; 4]>(), 0u16..4)),
            route in proptest::bool::ANY,
            ttl in 0u8..3,
        ) {
            let mut f = if udp {
                // Ethernet padding up to the 60-byte minimum frame.
                let mut f = udp_v4(zero);
                f.resize(60, 0);
                f
            } else {
                let mut f = Vec::new();
                PacketBuilder::ethernet2([1; 6], [2; 6])
                    .ipv4([192, 0, 2, 1], [198, 51, 100, 10], 64)
                    .tcp(40000, 80, 7, 1000)
                    .write(&mut f, &[9; 7])
                    .unwrap();
                f
            };
            f[22] = ttl;
            let pf = parse_frame(&f).unwrap();
            // Ports 0..3 hit "unchanged" (the fixture's ports are not in that range) and
            // "changed"; addresses are random, or the packet's own.
            let same = |a: [u8; 4], i: u16, own: Addr| {
                if i == 0 { own } else { Addr::v4(a) }
            };
            let src = src.map(|(a, p)| (same(a, p, pf.src), p));
            let dst = dst.map(|(a, p)| (same(a, p, pf.dst), p));
            let field = l4_csum_field(pf.proto);
            let at = (14, 34, field.unwrap().0, udp);
            let (mut a, mut b) = (f.clone(), f.clone());
            proptest::prop_assert_eq!(nat_v4(&mut a, (pf.src.v4_octets(), pf.dst.v4_octets()), at, src, dst, route), Some(true));
            proptest::prop_assert!(nat_any(&mut b, &pf, (14, 34, true, field), src, dst, route));
            proptest::prop_assert_eq!(a, b);
        }
    }

    /// An Ethernet/IPv4/TCP frame from `addrs` and `ports` whose IP and TCP checksum fields
    /// hold `csums` (`special` 0), both 0xffff (1) or both 0 (2): the rewrites must carry any
    /// value they find there.
    fn tcp_v4_with_checksums(
        addrs: ([u8; 4], [u8; 4]),
        ports: (u16, u16),
        ttl: u8,
        csums: (u16, u16),
        special: u8,
    ) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(addrs.0, addrs.1, ttl)
            .tcp(ports.0, ports.1, 7, 1000)
            .write(&mut f, &[])
            .unwrap();
        let (ip_csum, tcp_csum) = match special {
            0 => csums,
            1 => (0xffff, 0xffff),
            _ => (0, 0),
        };
        f[24..26].copy_from_slice(&ip_csum.to_be_bytes());
        f[50..52].copy_from_slice(&tcp_csum.to_be_bytes());
        f
    }

    proptest::proptest! {
        /// With the connection's address changes summed beforehand (as `Conn::nat_sum` does),
        /// the head rewrite writes the same bytes as summing them per packet, whatever the
        /// checksums in the frame (0xffff included) and whether a port changes, as long as an
        /// address does.
        #[test]
        fn prop_summed_head_rewrite_matches_per_packet(
            src in proptest::option::of((proptest::prelude::any::<[u8; 4]>(), 0u16..4)),
            dst in proptest::option::of((proptest::prelude::any::<[u8; 4]>(), 0u16..4)),
            ttl in 2u8..=255,
            ip_csum in proptest::prelude::any::<u16>(),
            tcp_csum in proptest::prelude::any::<u16>(),
            special in 0u8..3,
        ) {
            let old = ([192, 0, 2, 1], [198, 51, 100, 10]);
            let f = tcp_v4_with_checksums(old, (40000, 80), ttl, (ip_csum, tcp_csum), special);
            // Port 0: the packet's own address and port; 3: a new address, the same port;
            // 1, 2: both new.
            let pick = |leg: Option<([u8; 4], u16)>, own: [u8; 4], own_port: u16| {
                leg.map(|(a, p)| match p {
                    0 => (own, own_port),
                    3 => (a, own_port),
                    _ => (a, p),
                })
            };
            let (src, dst) = (pick(src, old.0, 40000), pick(dst, old.1, 80));
            let ne = u32::from_ne_bytes;
            let term = |o: [u8; 4], leg: Option<([u8; 4], u16)>| {
                leg.map_or(0, |(n, _)| checksum::term32(ne(o), ne(n)))
            };
            let sum = checksum::fold(term(old.0, src) + term(old.1, dst));
            // NAT changes an address (VIP to real server or back), so the sum is not zero.
            proptest::prop_assume!(sum != 0);
            let (mut a, mut b) = (f.clone(), f.clone());
            nat_head_v4(a.first_chunk_mut::<54>().unwrap(), src, dst);
            nat_head_v4_summed(b.first_chunk_mut::<54>().unwrap(), src, dst, sum);
            proptest::prop_assert_eq!(a, b);
        }

        /// FullNAT's one-word port rewrite writes the same bytes as per-port terms, whatever
        /// the checksums (0 and 0xffff included) and the ports (unchanged, 0 and 0xffff
        /// included), as long as an address changes, as FullNAT's do.
        #[test]
        fn prop_fullnat_word_rewrite_matches_per_port(
            src in proptest::prelude::any::<[u8; 4]>(),
            dst in proptest::prelude::any::<[u8; 4]>(),
            sport in proptest::prelude::any::<u16>(),
            dport in proptest::prelude::any::<u16>(),
            old_ports in (proptest::prelude::any::<u16>(), proptest::prelude::any::<u16>()),
            kind in 0u8..6,
            ttl in 2u8..=255,
            ip_csum in proptest::prelude::any::<u16>(),
            tcp_csum in proptest::prelude::any::<u16>(),
            special in 0u8..3,
            keep in 0u8..3,
        ) {
            let old = ([192, 0, 2, 1], [198, 51, 100, 10]);
            // One address may stay (0: neither, 1: the source, 2: the destination).
            let (src, dst) = match keep {
                1 => (old.0, dst),
                2 => (src, old.1),
                _ => (src, dst),
            };
            proptest::prop_assume!(src != old.0 || dst != old.1);
            // Ports: random, unchanged, or the edges of the native-order words.
            let (osp, odp, sport, dport) = match kind {
                0 => (old_ports.0, old_ports.1, sport, dport),
                1 => (old_ports.0, old_ports.1, old_ports.0, old_ports.1),
                2 => (old_ports.0, 0xffff, old_ports.0, 0),
                3 => (0xffff, 0xffff, 0, 0),
                4 => (0, 0, 0xffff, 0xffff),
                _ => (old_ports.0, old_ports.1, old_ports.0, dport),
            };
            let f = tcp_v4_with_checksums(old, (osp, odp), ttl, (ip_csum, tcp_csum), special);
            let ne = u32::from_ne_bytes;
            let sum = checksum::fold(
                checksum::term32(ne(old.0), ne(src)) + checksum::term32(ne(old.1), ne(dst)),
            );
            let (mut a, mut b) = (f.clone(), f.clone());
            nat_head_v4(a.first_chunk_mut::<54>().unwrap(), Some((src, sport)), Some((dst, dport)));
            let (s, d) = (sport.to_be_bytes(), dport.to_be_bytes());
            fullnat_head_v4_summed(
                b.first_chunk_mut::<54>().unwrap(),
                (src, dst),
                [s[0], s[1], d[0], d[1]],
                sum,
            );
            proptest::prop_assert_eq!(a, b);
        }

        /// A reply's summed changes (new back to old) are the negation `Conn::reply_nat_sum`
        /// takes of the client packet's.
        #[test]
        fn prop_reply_sum_is_negation(
            o1 in proptest::prelude::any::<u32>(),
            n1 in proptest::prelude::any::<u32>(),
            o2 in proptest::prelude::any::<u32>(),
            n2 in proptest::prelude::any::<u32>(),
            same in 0u8..4,
        ) {
            let n1 = if same & 1 != 0 { o1 } else { n1 };
            let n2 = if same & 2 != 0 { o2 } else { n2 };
            let there = checksum::fold(checksum::term32(o1, n1) + checksum::term32(o2, n2));
            let back = checksum::fold(checksum::term32(n1, o1) + checksum::term32(n2, o2));
            proptest::prop_assert_eq!(checksum::negate_sum(there), back);
        }
    }

    #[test]
    fn test_short_frame_is_refused() {
        let f = udp_v4(false);
        let pf = parse_frame(&f).unwrap();
        let mut short = f[..30].to_vec();
        assert!(!nat(&mut short, &pf, None, None, true));
        assert_eq!(short, f[..30]);
    }
}
