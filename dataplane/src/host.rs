//! The director as a host on each port: it answers ARP and IPv6 neighbour solicitations for its
//! own addresses and echo requests (ping) sent to them, in place, out of the port they came in on.
//!
//! Everything else is `NotForHost`: load-balanced traffic goes to the forwarder, the rest to the
//! kernel or a drop counter. Nothing here allocates or panics on packet data.

use std::net::IpAddr;

use crate::buf::PacketBuf;
use crate::flow::Addr;
use crate::wire::arp::{self, ArpPacket};
use crate::wire::ethernet::EthernetFrame;
use crate::wire::icmpv6::types as icmp6;
use crate::wire::{icmpv4, icmpv6, ip_proto, ndp, parse_frame, L3Kind, MacAddr, ParsedFrame};

/// TTL / hop limit of replies the director originates.
pub const REPLY_TTL: u8 = 64;

/// Size of a neighbour advertisement with a target link-layer address option.
const NA_LEN: usize = 32;
/// Ethernet + IPv6 + advertisement.
const NA_FRAME_LEN: usize = 14 + 40 + NA_LEN;

/// The director's identity on one port: its MAC and its addresses there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostIface {
    mac: MacAddr,
    addrs: Vec<(Addr, u8)>,
}

/// What [`handle`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostVerdict {
    /// The frame was turned into a reply: send it out of the port it came in on.
    Reply,
    /// Not addressed to the director as a host.
    NotForHost,
    /// Could not be parsed.
    Malformed,
}

impl HostIface {
    /// The director's MAC and addresses (with prefix length) on one port.
    pub fn new(mac: MacAddr, addrs: impl IntoIterator<Item = (IpAddr, u8)>) -> HostIface {
        HostIface {
            mac,
            addrs: addrs.into_iter().map(|(a, p)| (Addr::from(a), p)).collect(),
        }
    }

    /// The port's MAC.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The director's addresses on this port, with prefix lengths.
    pub fn addrs(&self) -> impl Iterator<Item = (Addr, u8)> + '_ {
        self.addrs.iter().copied()
    }

    /// True if `addr` is one of the director's addresses on this port.
    #[inline]
    pub fn owns(&self, addr: &Addr) -> bool {
        self.addrs.iter().any(|(a, _)| a == addr)
    }

    /// The first address of the given family, if any (the source of packets the director emits).
    pub fn primary(&self, v4: bool) -> Option<Addr> {
        self.addrs.iter().map(|(a, _)| *a).find(|a| a.is_v4() == v4)
    }
}

/// Parses a frame and answers it if it is for the director as a host.
pub fn handle<B: PacketBuf>(buf: &mut B, iface: &HostIface) -> HostVerdict {
    match parse_frame(buf.frame()) {
        Ok(pf) => handle_parsed(buf, &pf, iface),
        Err(_) => HostVerdict::Malformed,
    }
}

/// Answers a frame already parsed into `pf` if it is for the director as a host.
pub fn handle_parsed<B: PacketBuf>(
    buf: &mut B,
    pf: &ParsedFrame,
    iface: &HostIface,
) -> HostVerdict {
    let Ok(eth) = EthernetFrame::new_checked(buf.frame()) else {
        return HostVerdict::Malformed;
    };
    let dst_mac = eth.dst();
    if !dst_mac.is_multicast() && dst_mac != iface.mac {
        return HostVerdict::NotForHost;
    }
    let result = match pf.l3 {
        L3Kind::Arp => arp_request(buf, pf, iface),
        L3Kind::Ipv4
            if pf.proto == ip_proto::ICMP && pf.icmp_type == icmpv4::types::ECHO_REQUEST =>
        {
            if !iface.owns(&pf.dst) || pf.is_fragment() {
                return HostVerdict::NotForHost;
            }
            icmpv4::echo_reply_in_place(buf.frame_mut(), pf, REPLY_TTL).is_ok()
        }
        L3Kind::Ipv6 if pf.proto == ip_proto::ICMPV6 => match pf.icmp_type {
            icmp6::ECHO_REQUEST => {
                if !iface.owns(&pf.dst) || pf.is_fragment() {
                    return HostVerdict::NotForHost;
                }
                icmpv6::echo_reply_in_place(buf.frame_mut(), pf, REPLY_TTL).is_ok()
            }
            icmp6::NEIGHBOR_SOLICIT => return neighbour_solicitation(buf, pf, iface),
            _ => return HostVerdict::NotForHost,
        },
        _ => return HostVerdict::NotForHost,
    };
    if result {
        HostVerdict::Reply
    } else {
        HostVerdict::NotForHost
    }
}

fn arp_request<B: PacketBuf>(buf: &mut B, pf: &ParsedFrame, iface: &HostIface) -> bool {
    let l3 = usize::from(pf.l3_off);
    let Some(Ok(req)) = buf.frame().get(l3..).map(ArpPacket::new_checked) else {
        return false;
    };
    if req.operation() != arp::OP_REQUEST || !iface.owns(&Addr::v4(req.target_ip())) {
        return false;
    }
    arp::reply_in_place(buf.frame_mut(), l3, iface.mac).is_ok()
}

/// RFC 4861 §7.2.4: answer a solicitation for one of our addresses with an advertisement carrying
/// our MAC (to all nodes for a duplicate-address probe), written over the solicitation's buffer.
fn neighbour_solicitation<B: PacketBuf>(
    buf: &mut B,
    pf: &ParsedFrame,
    iface: &HostIface,
) -> HostVerdict {
    // Solicitations come with hop limit 255 (they never crossed a router).
    if pf.ttl != 255 {
        return HostVerdict::NotForHost;
    }
    let frame = buf.frame();
    let Some(ns) = frame
        .get(usize::from(pf.l4_off)..pf.l3_end())
        .and_then(ndp::parse_solicit)
    else {
        return HostVerdict::Malformed;
    };
    if !iface.owns(&Addr::v6(ns.target)) {
        return HostVerdict::NotForHost;
    }
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return HostVerdict::Malformed;
    };
    let requester = eth.src();
    let have = buf.len();
    let resized = if have < NA_FRAME_LEN {
        buf.append(NA_FRAME_LEN - have)
    } else {
        buf.trim_back(have - NA_FRAME_LEN)
    };
    if resized.is_err() {
        return HostVerdict::Malformed;
    }
    match ndp::answer(buf.frame_mut(), pf, requester, &ns, iface.mac) {
        Ok(_) => HostVerdict::Reply,
        Err(_) => HostVerdict::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use crate::checksum;
    use etherparse::{
        EtherType, Icmpv4Type, Icmpv6Type, LinkSlice, NetSlice, SlicedPacket, TransportSlice,
    };

    const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 1]);
    const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

    fn iface() -> HostIface {
        HostIface::new(
            OUR_MAC,
            [
                ("192.0.2.1".parse().unwrap(), 24),
                ("2001:db8::1".parse().unwrap(), 64),
            ],
        )
    }

    fn arp_request(target: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&PEER_MAC);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&PEER_MAC);
        f.extend_from_slice(&[192, 0, 2, 2]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target);
        f.resize(60, 0);
        f
    }

    #[test]
    fn test_arp_request_for_our_address_is_answered() {
        let mut b = VecBuf::new(&arp_request([192, 0, 2, 1]));
        assert_eq!(handle(&mut b, &iface()), HostVerdict::Reply);
        let f = b.frame();
        assert_eq!(&f[0..6], &PEER_MAC);
        assert_eq!(&f[6..12], &OUR_MAC.0);
        assert_eq!(&f[20..22], &[0, 2], "operation = reply");
        assert_eq!(&f[22..28], &OUR_MAC.0, "sender MAC = ours");
        assert_eq!(&f[28..32], &[192, 0, 2, 1], "sender IP = the asked address");
        assert_eq!(&f[32..38], &PEER_MAC);
        assert_eq!(&f[38..42], &[192, 0, 2, 2]);
    }

    #[test]
    fn test_arp_for_other_address_is_not_ours() {
        let mut b = VecBuf::new(&arp_request([192, 0, 2, 9]));
        let before = b.frame().to_vec();
        assert_eq!(handle(&mut b, &iface()), HostVerdict::NotForHost);
        assert_eq!(b.frame(), &before[..]);
    }

    fn echo_v4(dst: [u8; 4], dst_mac: MacAddr) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ethernet2(PEER_MAC, dst_mac.0)
            .ipv4([192, 0, 2, 2], dst, 63)
            .icmpv4_echo_request(0x1234, 7);
        let payload = b"ironvs ping";
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn test_echo_v4_reply_verifies_in_etherparse() {
        let mut b = VecBuf::new(&echo_v4([192, 0, 2, 1], OUR_MAC));
        assert_eq!(handle(&mut b, &iface()), HostVerdict::Reply);
        let p = SlicedPacket::from_ethernet(b.frame()).unwrap();
        let Some(LinkSlice::Ethernet2(eth)) = p.link else {
            panic!()
        };
        assert_eq!(eth.destination(), PEER_MAC);
        assert_eq!(eth.source(), OUR_MAC.0);
        let Some(NetSlice::Ipv4(ip)) = p.net else {
            panic!()
        };
        assert_eq!(ip.header().source(), [192, 0, 2, 1]);
        assert_eq!(ip.header().destination(), [192, 0, 2, 2]);
        assert_eq!(ip.header().ttl(), REPLY_TTL);
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        let Some(TransportSlice::Icmpv4(icmp)) = p.transport else {
            panic!()
        };
        assert!(
            matches!(icmp.icmp_type(), Icmpv4Type::EchoReply(e) if e.id == 0x1234 && e.seq == 7)
        );
        assert_eq!(icmp.payload(), b"ironvs ping");
        let mut reb = icmp.header();
        reb.update_checksum(icmp.payload());
        assert_eq!(reb.checksum, icmp.checksum());
    }

    #[test]
    fn test_echo_to_other_address_or_mac_is_not_ours() {
        let mut b = VecBuf::new(&echo_v4([192, 0, 2, 77], OUR_MAC));
        assert_eq!(handle(&mut b, &iface()), HostVerdict::NotForHost);
        let mut b = VecBuf::new(&echo_v4([192, 0, 2, 1], MacAddr([0x02, 9, 9, 9, 9, 9])));
        assert_eq!(handle(&mut b, &iface()), HostVerdict::NotForHost);
    }

    #[test]
    fn test_echo_v6_reply_verifies_in_etherparse() {
        let src: [u8; 16] = "2001:db8::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        let dst: [u8; 16] = "2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2(PEER_MAC, OUR_MAC.0)
            .ipv6(src, dst, 64)
            .icmpv6_echo_request(9, 1)
            .write(&mut out, b"v6")
            .unwrap();
        let mut b = VecBuf::new(&out);
        assert_eq!(handle(&mut b, &iface()), HostVerdict::Reply);
        let p = SlicedPacket::from_ethernet(b.frame()).unwrap();
        let Some(NetSlice::Ipv6(ip)) = p.net.clone() else {
            panic!()
        };
        assert_eq!(ip.header().source(), dst);
        assert_eq!(ip.header().destination(), src);
        let Some(TransportSlice::Icmpv6(icmp)) = p.transport else {
            panic!()
        };
        assert!(matches!(icmp.icmp_type(), Icmpv6Type::EchoReply(_)));
        let expect = icmp
            .header()
            .icmp_type
            .calc_checksum(dst, src, icmp.payload())
            .unwrap();
        assert_eq!(icmp.checksum(), expect);
    }

    fn neighbour_solicit(src: [u8; 16], with_option: bool) -> Vec<u8> {
        let target: [u8; 16] = "2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&target);
        if with_option {
            icmp.extend_from_slice(&[1, 1]);
            icmp.extend_from_slice(&PEER_MAC);
        }
        // solicited-node multicast ff02::1:ff00:1
        let mut dst = [0u8; 16];
        dst[0] = 0xff;
        dst[1] = 0x02;
        dst[11] = 1;
        dst[12] = 0xff;
        dst[15] = 1;
        let pseudo = checksum::pseudo_v6(&src, &dst, 58, icmp.len() as u32);
        let c = checksum::l4_checksum(pseudo, &icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut f = vec![0x33, 0x33, 0xff, 0, 0, 1];
        f.extend_from_slice(&PEER_MAC);
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
        f.extend_from_slice(&[58, 255]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&icmp);
        f
    }

    #[test]
    fn test_neighbour_solicitation_gets_advertisement() {
        let src: [u8; 16] = "2001:db8::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        let mut b = VecBuf::new(&neighbour_solicit(src, true));
        assert_eq!(handle(&mut b, &iface()), HostVerdict::Reply);
        let p = SlicedPacket::from_ethernet(b.frame()).unwrap();
        let Some(LinkSlice::Ethernet2(eth)) = p.link.clone() else {
            panic!()
        };
        assert_eq!(eth.destination(), PEER_MAC);
        assert_eq!(eth.ether_type(), EtherType::IPV6);
        let Some(NetSlice::Ipv6(ip)) = p.net.clone() else {
            panic!()
        };
        let us: [u8; 16] = "2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        assert_eq!(ip.header().source(), us);
        assert_eq!(ip.header().destination(), src);
        assert_eq!(ip.header().hop_limit(), 255);
        let Some(TransportSlice::Icmpv6(icmp)) = p.transport else {
            panic!()
        };
        let bytes = icmp.slice();
        assert_eq!(bytes.len(), NA_LEN);
        assert_eq!(bytes[0], 136);
        assert_eq!(bytes[4], 0x60, "solicited + override");
        assert_eq!(&bytes[8..24], &us);
        assert_eq!(&bytes[24..26], &[2, 1]);
        assert_eq!(&bytes[26..32], &OUR_MAC.0);
        let expect = icmp
            .header()
            .icmp_type
            .calc_checksum(us, src, icmp.payload())
            .unwrap();
        assert_eq!(icmp.checksum(), expect);
    }

    #[test]
    fn test_duplicate_address_probe_answered_to_all_nodes() {
        let mut b = VecBuf::new(&neighbour_solicit([0; 16], false));
        assert_eq!(handle(&mut b, &iface()), HostVerdict::Reply);
        let f = b.frame();
        assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(
            f.len(),
            14 + 40 + NA_LEN,
            "grown to carry the target MAC option"
        );
        assert_eq!(f[14 + 40 + 4], 0x20, "override only, not solicited");
    }

    #[test]
    fn test_truncated_frames_never_panic() {
        let frames = [
            arp_request([192, 0, 2, 1]),
            echo_v4([192, 0, 2, 1], OUR_MAC),
            neighbour_solicit([0; 16], true),
        ];
        for f in &frames {
            for n in 0..f.len() {
                let mut b = VecBuf::new(&f[..n]);
                let _ = handle(&mut b, &iface());
            }
        }
    }
}
