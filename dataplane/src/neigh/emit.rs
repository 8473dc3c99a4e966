//! Frames the neighbour machinery sends: ARP requests and neighbour solicitations asked for by
//! [`super::NeighCache::poll`], and announcements (gratuitous ARP, unsolicited neighbour
//! advertisement) of the director's addresses and VIPs at start and when they change.
//!
//! Every helper writes a whole untagged Ethernet frame into the front of `out`, returns its
//! length, and fails with [`EmitError::BufferTooShort`] rather than panic. ARP frames are padded
//! to the 60-byte Ethernet minimum (not every NIC pads); NDP frames carry hop limit 255 and a
//! full ICMPv6 checksum (RFC 4861 §7.1).

use super::Request;
use crate::buf::PacketBuf;
use crate::checksum;
use crate::flow::Addr;
use crate::wire::arp::{self, ArpRepr};
use crate::wire::ethernet::{self, EtherType};
use crate::wire::icmpv6::{types, Icmpv6Packet};
use crate::wire::ipv6::{self, Ipv6Repr};
use crate::wire::{ip_proto, ndp, EmitError, MacAddr};

/// Length of an emitted ARP frame (Ethernet minimum without FCS).
pub const ARP_FRAME_LEN: usize = 60;
/// Length of a neighbour solicitation with a source link-layer address option.
const NS_LEN: usize = 32;
/// Length of an emitted neighbour solicitation frame.
pub const NS_FRAME_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + NS_LEN;
/// Length of an emitted neighbour advertisement frame.
pub const NA_FRAME_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + 32;
/// Option type: source link-layer address.
const OPT_SOURCE_LLA: u8 = 1;

/// The solicited-node multicast group of `target`: `ff02::1:ffXX:XXXX` (RFC 4291 §2.7.1).
pub fn solicited_node(target: &[u8; 16]) -> [u8; 16] {
    let mut g = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0];
    g[13..].copy_from_slice(&target[13..]);
    g
}

/// The Ethernet address of an IPv6 multicast group: `33:33` and its last 32 bits (RFC 2464 §7).
pub fn multicast_mac(group: &[u8; 16]) -> MacAddr {
    MacAddr([0x33, 0x33, group[12], group[13], group[14], group[15]])
}

fn arp_frame(
    out: &mut [u8],
    dst: MacAddr,
    our_mac: MacAddr,
    a: &ArpRepr,
) -> Result<usize, EmitError> {
    let frame = out
        .get_mut(..ARP_FRAME_LEN)
        .ok_or(EmitError::BufferTooShort)?;
    ethernet::emit(frame, dst, our_mac, EtherType::ARP)?;
    let body = &mut frame[ethernet::HEADER_LEN..];
    a.emit(body)?;
    body[arp::PACKET_LEN..].fill(0);
    Ok(ARP_FRAME_LEN)
}

/// An ARP request for `target` from `src` at `our_mac`: broadcast, or unicast to a known MAC
/// for a refresh probe (target hardware address zero either way, as Linux sends it).
pub fn arp_request(
    out: &mut [u8],
    our_mac: MacAddr,
    src: [u8; 4],
    target: [u8; 4],
    unicast_to: Option<MacAddr>,
) -> Result<usize, EmitError> {
    let repr = ArpRepr {
        op: arp::OP_REQUEST,
        sender_mac: our_mac,
        sender_ip: src,
        target_mac: MacAddr::ZERO,
        target_ip: target,
    };
    arp_frame(
        out,
        unicast_to.unwrap_or(MacAddr::BROADCAST),
        our_mac,
        &repr,
    )
}

/// A gratuitous ARP request announcing that `ip` is at `our_mac`, broadcast.
pub fn gratuitous_arp(out: &mut [u8], our_mac: MacAddr, ip: [u8; 4]) -> Result<usize, EmitError> {
    arp_frame(
        out,
        MacAddr::BROADCAST,
        our_mac,
        &ArpRepr::gratuitous(our_mac, ip),
    )
}

/// A neighbour solicitation for `target` from `src` at `our_mac` with a source link-layer
/// address option: to the solicited-node group, or to `target` itself at a known MAC for a
/// refresh probe (RFC 4861 §7.2.2, §7.3.3).
pub fn neighbour_solicit(
    out: &mut [u8],
    our_mac: MacAddr,
    src: &[u8; 16],
    target: &[u8; 16],
    unicast_to: Option<MacAddr>,
) -> Result<usize, EmitError> {
    let (dst_ip, dst_mac) = match unicast_to {
        Some(mac) => (*target, mac),
        None => {
            let g = solicited_node(target);
            (g, multicast_mac(&g))
        }
    };
    let frame = out
        .get_mut(..NS_FRAME_LEN)
        .ok_or(EmitError::BufferTooShort)?;
    ethernet::emit(frame, dst_mac, our_mac, EtherType::IPV6)?;
    Ipv6Repr {
        src: *src,
        dst: dst_ip,
        next_header: ip_proto::ICMPV6,
        hop_limit: 255,
        traffic_class: 0,
        flow_label: 0,
        payload_len: NS_LEN as u16,
    }
    .emit(&mut frame[ethernet::HEADER_LEN..])?;
    let msg = &mut frame[ethernet::HEADER_LEN + ipv6::HEADER_LEN..];
    msg[4..8].fill(0);
    msg[8..24].copy_from_slice(target);
    msg[24] = OPT_SOURCE_LLA;
    msg[25] = 1;
    msg[26..32].copy_from_slice(&our_mac.0);
    let mut m = Icmpv6Packet::new_unchecked(msg);
    m.set_msg_type(types::NEIGHBOR_SOLICIT);
    m.set_code(0);
    m.fill_checksum(checksum::pseudo_v6(
        src,
        &dst_ip,
        ip_proto::ICMPV6,
        NS_LEN as u32,
    ));
    Ok(NS_FRAME_LEN)
}

/// An unsolicited neighbour advertisement (override set) of `ip` at `our_mac` to all nodes
/// (RFC 4861 §7.2.6).
pub fn unsolicited_na(out: &mut [u8], our_mac: MacAddr, ip: &[u8; 16]) -> Result<usize, EmitError> {
    ndp::emit_advert(
        out,
        our_mac,
        ip,
        multicast_mac(&ndp::ALL_NODES),
        &ndp::ALL_NODES,
        false,
    )
}

/// The frame for a [`Request`] from [`super::NeighCache::poll`]: ARP or NS by the target's
/// family; [`EmitError::NotApplicable`] if `src` is of the other family.
pub fn request(out: &mut [u8], our_mac: MacAddr, req: &Request) -> Result<usize, EmitError> {
    match (req.target.is_v4(), req.src.is_v4()) {
        (true, true) => arp_request(
            out,
            our_mac,
            req.src.v4_octets(),
            req.target.v4_octets(),
            req.unicast_to,
        ),
        (false, false) => {
            neighbour_solicit(out, our_mac, &req.src.0, &req.target.0, req.unicast_to)
        }
        _ => Err(EmitError::NotApplicable),
    }
}

/// The announcement of one of our addresses: gratuitous ARP or unsolicited NA.
pub fn announce(out: &mut [u8], our_mac: MacAddr, addr: &Addr) -> Result<usize, EmitError> {
    if addr.is_v4() {
        gratuitous_arp(out, our_mac, addr.v4_octets())
    } else {
        unsolicited_na(out, our_mac, &addr.0)
    }
}

/// Writes a frame into a (fresh) packet buffer: the frame is sized to `len` bytes, `write`
/// fills it and returns the length it used, and the buffer is trimmed to that.
pub fn into_buf<B: PacketBuf>(
    buf: &mut B,
    len: usize,
    write: impl FnOnce(&mut [u8]) -> Result<usize, EmitError>,
) -> Result<(), EmitError> {
    let have = buf.len();
    let sized = if have < len {
        buf.append(len - have)
    } else {
        buf.trim_back(have - len)
    };
    sized.map_err(|_| EmitError::BufferTooShort)?;
    let used = write(buf.frame_mut())?;
    buf.trim_back(len.saturating_sub(used))
        .map_err(|_| EmitError::BufferTooShort)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use crate::wire::arp::ArpPacket;
    use crate::wire::parse_frame;
    use etherparse::{Ethernet2Header, Icmpv6Slice, Ipv6Header};

    const OUR: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 1]);
    const PEER: MacAddr = MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]);

    fn v6(s: &str) -> [u8; 16] {
        s.parse::<std::net::Ipv6Addr>().unwrap().octets()
    }

    #[test]
    fn test_arp_request_bytes() {
        let mut out = [0xaau8; 64];
        let n = arp_request(&mut out, OUR, [192, 0, 2, 1], [192, 0, 2, 10], None).unwrap();
        assert_eq!(n, 60);
        let expected = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x06, //
            0, 1, 0x08, 0, 6, 4, 0, 1, //
            0x02, 0, 0, 0, 0, 1, 192, 0, 2, 1, //
            0, 0, 0, 0, 0, 0, 192, 0, 2, 10,
        ];
        assert_eq!(&out[..42], &expected);
        assert_eq!(&out[42..60], &[0; 18], "padding zeroed");
        assert_eq!(out[60], 0xaa, "nothing written past the frame");
        let (eth, _) = Ethernet2Header::from_slice(&out[..n]).unwrap();
        assert_eq!(eth.destination, [0xff; 6]);
        assert_eq!(eth.source, OUR.0);
        assert_eq!(eth.ether_type, etherparse::EtherType::ARP);
        // Unicast refresh probe: only the Ethernet destination differs.
        let mut probe = [0u8; 60];
        arp_request(&mut probe, OUR, [192, 0, 2, 1], [192, 0, 2, 10], Some(PEER)).unwrap();
        assert_eq!(&probe[..6], &PEER.0);
        assert_eq!(&probe[6..], &out[6..60]);
    }

    #[test]
    fn test_gratuitous_arp() {
        let mut out = [0u8; 60];
        assert_eq!(gratuitous_arp(&mut out, OUR, [198, 51, 100, 7]), Ok(60));
        assert_eq!(&out[..6], &[0xff; 6]);
        let p = ArpPacket::new_checked(&out[14..]).unwrap();
        assert!(p.is_gratuitous());
        assert_eq!((p.sender_mac(), p.sender_ip()), (OUR, [198, 51, 100, 7]));
        assert_eq!(
            (p.operation(), p.target_mac()),
            (arp::OP_REQUEST, MacAddr::ZERO)
        );
        let mut again = [0u8; 60];
        announce(&mut again, OUR, &Addr::v4([198, 51, 100, 7])).unwrap();
        assert_eq!(again, out);
    }

    /// Checks Ethernet, IPv6 (hop limit 255) and the ICMPv6 checksum with etherparse; returns
    /// the ICMPv6 message.
    fn check_ndp(frame: &[u8], dst_mac: MacAddr, src: [u8; 16], dst: [u8; 16]) -> Vec<u8> {
        let (eth, rest) = Ethernet2Header::from_slice(frame).unwrap();
        assert_eq!((eth.destination, eth.source), (dst_mac.0, OUR.0));
        assert_eq!(eth.ether_type, etherparse::EtherType::IPV6);
        let (ip, rest) = Ipv6Header::from_slice(rest).unwrap();
        assert_eq!((ip.source, ip.destination), (src, dst));
        assert_eq!((ip.hop_limit, ip.payload_length), (255, 32));
        assert_eq!(ip.next_header, etherparse::IpNumber::IPV6_ICMP);
        let icmp = Icmpv6Slice::from_slice(rest).unwrap();
        let expect = icmp
            .header()
            .icmp_type
            .calc_checksum(src, dst, icmp.payload())
            .unwrap();
        assert_eq!(icmp.checksum(), expect);
        rest.to_vec()
    }

    #[test]
    fn test_neighbour_solicit_to_solicited_node_group() {
        let (src, target) = (v6("2001:db8::1"), v6("2001:db8::12:3480"));
        let mut out = [0u8; 100];
        let n = neighbour_solicit(&mut out, OUR, &src, &target, None).unwrap();
        assert_eq!(n, 86);
        let group = v6("ff02::1:ff12:3480");
        assert_eq!(solicited_node(&target), group);
        let mac = MacAddr([0x33, 0x33, 0xff, 0x12, 0x34, 0x80]);
        let msg = check_ndp(&out[..n], mac, src, group);
        assert_eq!(&msg[..2], &[135, 0]);
        assert_eq!(&msg[4..8], &[0; 4]);
        assert_eq!(&msg[8..24], &target);
        assert_eq!(&msg[24..32], &[1, 1, 0x02, 0, 0, 0, 0, 1]);
        // Our own parser agrees.
        let pf = parse_frame(&out[..n]).unwrap();
        let ns = ndp::parse_solicit(&out[usize::from(pf.l4_off)..pf.l3_end()]).unwrap();
        assert_eq!((ns.target, ns.source_mac), (target, Some(OUR)));
    }

    #[test]
    fn test_neighbour_solicit_unicast_probe() {
        let (src, target) = (v6("2001:db8::1"), v6("2001:db8::80"));
        let mut out = [0u8; 86];
        neighbour_solicit(&mut out, OUR, &src, &target, Some(PEER)).unwrap();
        let msg = check_ndp(&out, PEER, src, target);
        assert_eq!(&msg[8..24], &target);
    }

    #[test]
    fn test_unsolicited_na_to_all_nodes() {
        let ip = v6("2001:db8::80");
        let mut out = [0u8; 86];
        assert_eq!(unsolicited_na(&mut out, OUR, &ip), Ok(NA_FRAME_LEN));
        let msg = check_ndp(&out, MacAddr([0x33, 0x33, 0, 0, 0, 1]), ip, ndp::ALL_NODES);
        assert_eq!(&msg[..2], &[136, 0]);
        assert_eq!(msg[4], 0x20, "override, not solicited");
        assert_eq!(&msg[8..24], &ip);
        assert_eq!(&msg[24..32], &[2, 1, 0x02, 0, 0, 0, 0, 1]);
        let mut again = [0u8; 86];
        announce(&mut again, OUR, &Addr::v6(ip)).unwrap();
        assert_eq!(again, out);
    }

    #[test]
    fn test_request_dispatch_and_short_buffers() {
        let v4 = Request {
            port: 0,
            target: Addr::v4([192, 0, 2, 10]),
            src: Addr::v4([192, 0, 2, 1]),
            unicast_to: None,
        };
        let v6r = Request {
            port: 0,
            target: Addr::v6(v6("2001:db8::80")),
            src: Addr::v6(v6("2001:db8::1")),
            unicast_to: Some(PEER),
        };
        let mut out = [0u8; 86];
        assert_eq!(request(&mut out, OUR, &v4), Ok(ARP_FRAME_LEN));
        assert_eq!(&out[38..42], &[192, 0, 2, 10]);
        assert_eq!(request(&mut out, OUR, &v6r), Ok(NS_FRAME_LEN));
        assert_eq!(&out[..6], &PEER.0);
        let mixed = Request { src: v4.src, ..v6r };
        assert_eq!(
            request(&mut out, OUR, &mixed),
            Err(EmitError::NotApplicable)
        );
        assert_eq!(
            request(&mut out[..59], OUR, &v4),
            Err(EmitError::BufferTooShort)
        );
        assert_eq!(
            request(&mut out[..85], OUR, &v6r),
            Err(EmitError::BufferTooShort)
        );
        assert_eq!(
            announce(&mut out[..85], OUR, &v6r.src),
            Err(EmitError::BufferTooShort)
        );
    }

    #[test]
    fn test_into_buf_sizes_the_frame() {
        let mut direct = [0u8; 60];
        gratuitous_arp(&mut direct, OUR, [192, 0, 2, 1]).unwrap();
        for start in [&[][..], &[7u8; 200][..]] {
            let mut b = VecBuf::new(start);
            into_buf(&mut b, ARP_FRAME_LEN, |f| {
                gratuitous_arp(f, OUR, [192, 0, 2, 1])
            })
            .unwrap();
            assert_eq!(b.frame(), &direct[..]);
        }
        // The writer may use less than asked for.
        let mut b = VecBuf::new(&[]);
        into_buf(&mut b, 100, |f| unsolicited_na(f, OUR, &v6("2001:db8::1"))).unwrap();
        assert_eq!(b.len(), NA_FRAME_LEN);
        let mut tiny = VecBuf::with_room(&[], 0, 10);
        assert_eq!(
            into_buf(&mut tiny, 60, |f| gratuitous_arp(f, OUR, [1, 2, 3, 4])),
            Err(EmitError::BufferTooShort)
        );
    }
}
