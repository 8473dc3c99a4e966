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

    #[test]
    fn test_short_frame_is_refused() {
        let f = udp_v4(false);
        let pf = parse_frame(&f).unwrap();
        let mut short = f[..30].to_vec();
        assert!(!nat(&mut short, &pf, None, None, true));
        assert_eq!(short, f[..30]);
    }
}
