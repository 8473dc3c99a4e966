//! The per-frame parse: Ethernet (+ one VLAN tag) → IPv4/IPv6/ARP → TCP/UDP/ICMP, once.
//!
//! [`parse_frame`] validates every length it relies on and records offsets and fields in a
//! [`ParsedFrame`], so later stages (connection lookup, scheduling, rewriting) index the frame
//! directly. It does not verify checksums (the NIC usually has; see [`crate::checksum`]) and does
//! not follow tunnels or ICMP quotes (see [`super::icmpv4::Icmpv4Packet::quoted`]).
//!
//! What is rejected: anything shorter than its headers, IPv4 with IHL < 5 or a total length
//! outside `[IHL×4, buffer]`, IPv6 whose payload length overruns the buffer or whose extension
//! chain is malformed, TCP with data offset < 5, unfragmented UDP whose length field is not in
//! `[8, IP payload]`, a first fragment too short for its L4 ports, ethertypes other than
//! IPv4/IPv6/ARP. Unknown upper-layer protocols are accepted with ports 0.

use super::arp::{self, ArpPacket};
use super::ethernet::{EtherType, EthernetFrame};
use super::icmpv4::Icmpv4Packet;
use super::ip_proto;
use super::ipv4::Ipv4Packet;
use super::ipv6::Ipv6Packet;
use super::tcp::TcpPacket;
use super::udp::{self, UdpPacket};
use super::{get16, Frag, ParseError};
use crate::flow::{Addr, FlowKey, Proto};

/// The network layer of a parsed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L3Kind {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// ARP (Ethernet/IPv4); `src`/`dst` are the sender/target protocol addresses.
    Arp,
}

/// Everything later stages need from a frame's headers; offsets are from the frame start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedFrame {
    /// Source address (ARP: sender IP).
    pub src: Addr,
    /// Destination address (ARP: target IP).
    pub dst: Addr,
    /// The network layer.
    pub l3: L3Kind,
    /// The 802.1Q tag control information, if tagged.
    pub vlan_tci: Option<u16>,
    /// Ethertype after the tag, if any.
    pub ethertype: u16,
    /// Offset of the L3 header (= the L2 header length: 14 or 18).
    pub l3_off: u16,
    /// Offset of the L4 header (IPv6: after extension headers; later fragment: the fragment data).
    pub l4_off: u16,
    /// L3 length: IPv4 total length, IPv6 40 + payload length, ARP 28 (Ethernet padding excluded).
    pub ip_len: u16,
    /// Upper-layer protocol (IPv6: after extension headers); 0 for ARP.
    pub proto: u8,
    /// TTL or hop limit; 0 for ARP.
    pub ttl: u8,
    /// Fragment status.
    pub frag: Frag,
    /// TCP/UDP source port, 0 otherwise (or for a later fragment).
    pub sport: u16,
    /// TCP/UDP destination port, 0 otherwise.
    pub dport: u16,
    /// TCP flags (see [`super::tcp::flags`]), 0 for other protocols.
    pub tcp_flags: u8,
    /// ICMP/ICMPv6 type, 0 for other protocols.
    pub icmp_type: u8,
    /// ICMP/ICMPv6 code, 0 for other protocols.
    pub icmp_code: u8,
    /// Bytes after the L4 header (TCP options, UDP and ICMP headers excluded) within the IP packet.
    pub payload_len: u16,
}

impl ParsedFrame {
    /// A placeholder (all zero, IPv4) for arrays of frames not parsed yet.
    pub const EMPTY: ParsedFrame = ParsedFrame {
        src: Addr::UNSPECIFIED,
        dst: Addr::UNSPECIFIED,
        l3: L3Kind::Ipv4,
        vlan_tci: None,
        ethertype: 0,
        l3_off: 0,
        l4_off: 0,
        ip_len: 0,
        proto: 0,
        ttl: 0,
        frag: Frag::None,
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        icmp_type: 0,
        icmp_code: 0,
        payload_len: 0,
    };

    /// Length of the L2 header (14, or 18 with a VLAN tag).
    #[inline]
    pub fn l2_len(&self) -> usize {
        usize::from(self.l3_off)
    }

    /// Bytes from the L4 header to the end of the IP packet.
    #[inline]
    pub fn l4_len(&self) -> usize {
        self.l3_end().saturating_sub(usize::from(self.l4_off))
    }

    /// Offset one past the IP packet (where Ethernet padding, if any, starts).
    #[inline]
    pub fn l3_end(&self) -> usize {
        usize::from(self.l3_off) + usize::from(self.ip_len)
    }

    /// 4 or 6 for IP, 0 for ARP.
    #[inline]
    pub fn ip_version(&self) -> u8 {
        match self.l3 {
            L3Kind::Ipv4 => 4,
            L3Kind::Ipv6 => 6,
            L3Kind::Arp => 0,
        }
    }

    /// True if the packet is a fragment (first or later).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.frag != Frag::None
    }

    /// The 5-tuple for TCP/UDP with known ports (not a later fragment).
    #[inline]
    pub fn flow_key(&self) -> Option<FlowKey> {
        if self.frag == Frag::Later || self.l3 == L3Kind::Arp {
            return None;
        }
        Proto::from_ip_proto(self.proto).map(|proto| FlowKey {
            saddr: self.src,
            daddr: self.dst,
            sport: self.sport,
            dport: self.dport,
            proto,
        })
    }
}

/// Parses a frame's headers once; see the module doc for what is rejected.
#[inline(always)]
pub fn parse_frame(frame: &[u8]) -> Result<ParsedFrame, ParseError> {
    let mut pf = ParsedFrame::EMPTY;
    parse_frame_into(frame, &mut pf).map(|()| pf)
}

/// [`parse_frame`] into `out`, which the common case fills in place (no copy of the result);
/// `out` is unchanged on error.
#[inline(always)]
pub fn parse_frame_into(frame: &[u8], out: &mut ParsedFrame) -> Result<(), ParseError> {
    if parse_ipv4_tcp(frame, out) {
        return Ok(());
    }
    *out = parse_any(frame)?;
    Ok(())
}

/// [`parse_frame_into`] for a frame [`Ipv4TcpHead::read`] has already declined: the general
/// parse alone, without trying the common case again. Out of line, so that the first pass's
/// registers serve the common frame.
#[inline(never)]
pub fn parse_uncommon_into(frame: &[u8], out: &mut ParsedFrame) -> Result<(), ParseError> {
    *out = parse_any(frame)?;
    Ok(())
}

/// The common case in a few compares: an untagged, unfragmented IPv4 packet without options
/// carrying TCP. Writes exactly what [`parse_any`] returns for such a frame and returns true;
/// returns false for anything else (which [`parse_any`] then handles, errors included).
#[inline(always)]
fn parse_ipv4_tcp(frame: &[u8], out: &mut ParsedFrame) -> bool {
    match Ipv4TcpHead::read(frame) {
        Some(h) => {
            *out = h.parsed();
            true
        }
        None => false,
    }
}

/// The headers of the common frame, an untagged, unfragmented IPv4 packet without options
/// carrying TCP, read at fixed offsets (IP at 14, TCP at 34): what the established fast path
/// needs, without filling a whole [`ParsedFrame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4TcpHead {
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// TCP source port.
    pub sport: u16,
    /// TCP destination port.
    pub dport: u16,
    /// IPv4 total length.
    pub ip_len: u16,
    /// TCP header length in bytes.
    pub tcp_len: u16,
    /// Time to live.
    pub ttl: u8,
    /// TCP flags.
    pub tcp_flags: u8,
}

impl Ipv4TcpHead {
    /// Offset of the IPv4 header.
    pub const L3_OFF: usize = 14;
    /// Offset of the TCP header.
    pub const L4_OFF: usize = 34;

    /// The head of `frame` if it is that frame with every length [`parse_frame`] checks valid
    /// and a TTL above 1; `None` for anything else (which [`parse_frame`] handles). The TTL
    /// test makes every common frame one a router may forward, so that the forwarder's fast
    /// path needs no test of its own (a frame whose TTL runs out takes the general path).
    #[inline(always)]
    pub fn read(frame: &[u8]) -> Option<Ipv4TcpHead> {
        // Ethernet (14) + IPv4 without options (20) + TCP (20): every offset below is in bounds.
        let h = frame.first_chunk::<54>()?;
        // Two masked words: ethertype IPv4 and version 4 with IHL 5 (bytes 12..15, not the
        // TOS); neither MF nor a fragment offset, and protocol TCP (bytes 20..24, not the TTL).
        // (Whole-word loads: built from bytes, the masked-out byte's load would be dropped and
        // the rest read piecemeal.)
        let word = |at: usize| {
            let w: [u8; 4] = h[at..at + 4].try_into().unwrap_or_default();
            u32::from_le_bytes(w)
        };
        let eth_ver = word(12) & 0x00ff_ffff;
        let frag_proto = word(20) & 0xff00_ff3f;
        if eth_ver != u32::from_le_bytes([0x08, 0x00, 0x45, 0])
            || frag_proto != u32::from_le_bytes([0, 0, 0, ip_proto::TCP])
            || h[22] <= 1
        {
            return None;
        }
        let ip_len = u16::from_be_bytes([h[16], h[17]]);
        let tcp_len = u16::from(h[46] >> 4) * 4;
        // The TCP header is at least 20 bytes, the total length covers both headers (so it is at
        // least 40) and fits the frame.
        if tcp_len < 20 || ip_len < 20 + tcp_len || usize::from(ip_len) > frame.len() - 14 {
            return None;
        }
        Some(Ipv4TcpHead::fields(h))
    }

    /// The head of a frame [`Ipv4TcpHead::read`] took, read again without its checks (`None`
    /// only for a frame shorter than the head): what a later pass over the same, unchanged
    /// bytes needs, in loads alone.
    #[inline(always)]
    pub fn read_known(frame: &[u8]) -> Option<Ipv4TcpHead> {
        let h = frame.first_chunk::<54>()?;
        Some(Ipv4TcpHead::fields(h))
    }

    /// The IPv4 total length of a frame [`Ipv4TcpHead::read`] took (`None` for a frame shorter
    /// than the head), on its own.
    #[inline(always)]
    pub fn ip_len_of(frame: &[u8]) -> Option<u16> {
        let h = frame.first_chunk::<54>()?;
        Some(u16::from_be_bytes([h[16], h[17]]))
    }

    /// The fields at their fixed offsets.
    #[inline(always)]
    fn fields(h: &[u8; 54]) -> Ipv4TcpHead {
        // Both ports in one load and one byte swap (they are adjacent on the wire).
        let ports = u32::from_be_bytes([h[34], h[35], h[36], h[37]]);
        Ipv4TcpHead {
            src: [h[26], h[27], h[28], h[29]],
            dst: [h[30], h[31], h[32], h[33]],
            sport: (ports >> 16) as u16,
            dport: ports as u16,
            ip_len: u16::from_be_bytes([h[16], h[17]]),
            tcp_len: u16::from(h[46] >> 4) * 4,
            ttl: h[22],
            tcp_flags: h[47],
        }
    }

    /// The flow key (client → VIP for a client packet).
    #[inline(always)]
    pub fn flow_key(&self) -> FlowKey {
        FlowKey {
            saddr: Addr::v4(self.src),
            daddr: Addr::v4(self.dst),
            sport: self.sport,
            dport: self.dport,
            proto: Proto::Tcp,
        }
    }

    /// What [`parse_frame`] returns for the frame.
    #[inline(always)]
    pub fn parsed(&self) -> ParsedFrame {
        ParsedFrame {
            src: Addr::v4(self.src),
            dst: Addr::v4(self.dst),
            l3: L3Kind::Ipv4,
            vlan_tci: None,
            ethertype: EtherType::IPV4,
            l3_off: Self::L3_OFF as u16,
            l4_off: Self::L4_OFF as u16,
            ip_len: self.ip_len,
            proto: ip_proto::TCP,
            ttl: self.ttl,
            frag: Frag::None,
            sport: self.sport,
            dport: self.dport,
            tcp_flags: self.tcp_flags,
            icmp_type: 0,
            icmp_code: 0,
            payload_len: self.ip_len - 20 - self.tcp_len,
        }
    }
}

/// The general parse: any ethertype, VLAN tag, IP options, IPv6 extension headers, fragments.
#[inline]
fn parse_any(frame: &[u8]) -> Result<ParsedFrame, ParseError> {
    let eth = EthernetFrame::new_checked(frame)?;
    let l3_off = eth.header_len();
    let ethertype = eth.ethertype();
    let mut pf = ParsedFrame {
        vlan_tci: eth.vlan_tci(),
        ethertype,
        // The Ethernet header is 14 or 18 bytes.
        l3_off: l3_off as u16,
        ..ParsedFrame::EMPTY
    };
    let l3 = frame.get(l3_off..).ok_or(ParseError::Truncated)?;
    match ethertype {
        EtherType::IPV4 => parse_ipv4(&mut pf, l3)?,
        EtherType::IPV6 => parse_ipv6(&mut pf, l3)?,
        EtherType::ARP => parse_arp(&mut pf, l3)?,
        _ => return Err(ParseError::UnsupportedEthertype),
    }
    Ok(pf)
}

#[inline]
fn parse_ipv4(pf: &mut ParsedFrame, l3: &[u8]) -> Result<(), ParseError> {
    let ip = Ipv4Packet::new_checked(l3)?;
    let hlen = ip.header_len();
    pf.src = ip.src_addr();
    pf.dst = ip.dst_addr();
    pf.proto = ip.protocol();
    pf.ttl = ip.ttl();
    pf.ip_len = ip.total_len();
    pf.frag = if ip.frag_offset() != 0 {
        Frag::Later
    } else if ip.more_frags() {
        Frag::First
    } else {
        Frag::None
    };
    // IHL × 4 <= 60, so this fits.
    pf.l4_off = pf.l3_off + hlen as u16;
    parse_l4(pf, ip.payload())
}

#[inline]
fn parse_ipv6(pf: &mut ParsedFrame, l3: &[u8]) -> Result<(), ParseError> {
    let ip = Ipv6Packet::new_checked(l3)?;
    let ip_len = u16::try_from(ip.total_len()).map_err(|_| ParseError::BadTotalLength)?;
    let up = ip.upper_layer()?;
    pf.l3 = L3Kind::Ipv6;
    pf.src = ip.src_addr();
    pf.dst = ip.dst_addr();
    // An `Addr` holds an IPv4 address IPv4-mapped: such an IPv6 address would pass for one.
    if pf.src.is_v4() || pf.dst.is_v4() {
        return Err(ParseError::MappedAddress);
    }
    pf.proto = up.proto;
    pf.ttl = ip.hop_limit();
    pf.ip_len = ip_len;
    pf.frag = up.frag;
    // up.offset <= total_len <= u16::MAX (checked above); l3_off + offset fits unless the IPv6
    // packet nearly fills 64 KiB, which the checked add rejects.
    pf.l4_off = pf
        .l3_off
        .checked_add(up.offset as u16)
        .ok_or(ParseError::BadTotalLength)?;
    let l4 = ip.packet().get(up.offset..).ok_or(ParseError::Truncated)?;
    parse_l4(pf, l4)
}

#[inline]
fn parse_arp(pf: &mut ParsedFrame, l3: &[u8]) -> Result<(), ParseError> {
    let a = ArpPacket::new_checked(l3)?;
    pf.l3 = L3Kind::Arp;
    pf.src = Addr::v4(a.sender_ip());
    pf.dst = Addr::v4(a.target_ip());
    pf.ip_len = arp::PACKET_LEN as u16;
    pf.l4_off = pf.l3_off + arp::PACKET_LEN as u16;
    Ok(())
}

/// Fills ports, flags and payload length from the L4 bytes (bounded at the end of the IP packet).
#[inline]
fn parse_l4(pf: &mut ParsedFrame, l4: &[u8]) -> Result<(), ParseError> {
    // l4 is a sub-slice of an IP packet whose length fits in u16.
    let l4_len = l4.len() as u16;
    if pf.frag == Frag::Later {
        pf.payload_len = l4_len;
        return Ok(());
    }
    match pf.proto {
        ip_proto::TCP => {
            let t = TcpPacket::new_checked(l4)?;
            pf.sport = t.src_port();
            pf.dport = t.dst_port();
            pf.tcp_flags = t.flags();
            pf.payload_len = l4_len - t.header_len() as u16;
        }
        ip_proto::UDP => {
            if pf.frag == Frag::First {
                // The length field covers the reassembled datagram; only the ports are here.
                if l4.len() < udp::HEADER_LEN {
                    return Err(ParseError::Truncated);
                }
                pf.sport = get16(l4, 0);
                pf.dport = get16(l4, 2);
                pf.payload_len = l4_len - udp::HEADER_LEN as u16;
            } else {
                let u = UdpPacket::new_checked(l4)?;
                pf.sport = u.src_port();
                pf.dport = u.dst_port();
                pf.payload_len = u.len() - udp::HEADER_LEN as u16;
            }
        }
        ip_proto::ICMP | ip_proto::ICMPV6 => {
            // ICMPv4 and ICMPv6 share the 8-byte type/code/checksum/rest layout.
            let m = Icmpv4Packet::new_checked(l4)?;
            pf.icmp_type = m.msg_type();
            pf.icmp_code = m.code();
            pf.payload_len = l4_len - 8;
        }
        _ => pf.payload_len = l4_len,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures;
    use crate::wire::icmpv4::Icmpv4Packet;
    use crate::wire::tcp::flags;
    use proptest::prelude::*;

    #[test]
    fn test_parse_ipv4_tcp_syn() {
        let f = &fixtures::ETH_IPV4_TCP_SYN;
        let pf = parse_frame(f).unwrap();
        assert_eq!(pf.l3, L3Kind::Ipv4);
        assert_eq!(pf.ip_version(), 4);
        assert_eq!((pf.l2_len(), pf.l3_off, pf.l4_off), (14, 14, 34));
        assert_eq!(pf.vlan_tci, None);
        assert_eq!(pf.ethertype, 0x0800);
        assert_eq!(pf.src, Addr::v4([192, 0, 2, 1]));
        assert_eq!(pf.dst, Addr::v4([198, 51, 100, 10]));
        assert_eq!((pf.proto, pf.sport, pf.dport), (6, 40000, 80));
        assert_eq!(pf.tcp_flags, flags::SYN);
        assert_eq!((pf.ip_len, pf.l4_len(), pf.payload_len), (60, 40, 0));
        assert_eq!(pf.ttl, 64);
        assert_eq!(pf.frag, Frag::None);
        let key = pf.flow_key().unwrap();
        assert_eq!((key.proto, key.sport, key.dport), (Proto::Tcp, 40000, 80));
    }

    #[test]
    fn test_parse_vlan_and_padding() {
        let f = &fixtures::ETH_VLAN_IPV4_UDP_PADDED;
        let pf = parse_frame(f).unwrap();
        assert_eq!(pf.vlan_tci, Some(0x0064));
        assert_eq!((pf.l3_off, pf.l4_off), (18, 38));
        assert_eq!((pf.proto, pf.sport, pf.dport), (17, 5353, 53));
        assert_eq!((pf.ip_len, pf.payload_len), (32, 4));
        assert_eq!(pf.l3_end(), 50);
        assert_eq!(f.len(), 64);
    }

    #[test]
    fn test_parse_ipv6_ext_first_fragment() {
        let pf = parse_frame(&fixtures::ETH_IPV6_HBH_FRAG_UDP).unwrap();
        assert_eq!(pf.l3, L3Kind::Ipv6);
        assert_eq!((pf.l3_off, pf.l4_off), (14, 14 + 40 + 8 + 8));
        assert_eq!(pf.frag, Frag::First);
        assert_eq!((pf.proto, pf.sport, pf.dport), (17, 546, 547));
        assert_eq!(pf.ttl, 1);
        assert_eq!(pf.payload_len, 8);
        assert!(pf.is_fragment());
        assert!(pf.flow_key().is_some());
        assert_eq!(pf.dst.to_string(), "2001:db8::80");
    }

    /// An IPv6 packet with an IPv4-mapped source or destination is refused: as an `Addr` it
    /// would read as IPv4. The IPv4-compatible form (::a.b.c.d, no ffff) is just IPv6.
    #[test]
    fn test_parse_ipv6_refuses_mapped_addresses() {
        let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1];
        for at in [14 + 8, 14 + 24] {
            let mut f = fixtures::ETH_IPV6_HBH_FRAG_UDP.to_vec();
            f[at..at + 16].copy_from_slice(&mapped);
            assert_eq!(parse_frame(&f), Err(ParseError::MappedAddress), "at {at}");
            f[at + 10..at + 12].copy_from_slice(&[0, 0]);
            let pf = parse_frame(&f).unwrap();
            assert!(!pf.src.is_v4() && !pf.dst.is_v4());
        }
    }

    #[test]
    fn test_parse_later_fragment_has_no_ports() {
        let mut f = fixtures::ETH_IPV6_HBH_FRAG_UDP.to_vec();
        f[14 + 48 + 3] = 0xb8; // offset 23 * 8 = 184, M=0
        let pf = parse_frame(&f).unwrap();
        assert_eq!(pf.frag, Frag::Later);
        assert_eq!((pf.proto, pf.sport, pf.dport), (17, 0, 0));
        assert_eq!(pf.payload_len, 16);
        assert_eq!(pf.flow_key(), None);
    }

    #[test]
    fn test_parse_icmp_frag_needed() {
        let f = &fixtures::ETH_IPV4_ICMP_FRAG_NEEDED;
        let pf = parse_frame(f).unwrap();
        assert_eq!((pf.proto, pf.icmp_type, pf.icmp_code), (1, 3, 4));
        assert_eq!(pf.flow_key(), None);
        let m = Icmpv4Packet::new_checked(&f[usize::from(pf.l4_off)..pf.l3_end()]).unwrap();
        assert!(m.verify_checksum());
        assert_eq!(m.next_hop_mtu(), 1400);
        let q = m.quoted().unwrap();
        assert_eq!(
            (q.src, q.dst),
            (Addr::v4([198, 51, 100, 10]), Addr::v4([192, 0, 2, 1]))
        );
        assert_eq!((q.proto, q.sport, q.dport), (6, 80, 40000));
    }

    #[test]
    fn test_parse_arp() {
        let pf = parse_frame(&fixtures::ETH_ARP_REQUEST).unwrap();
        assert_eq!(pf.l3, L3Kind::Arp);
        assert_eq!(pf.ip_version(), 0);
        assert_eq!(
            (pf.src, pf.dst),
            (Addr::v4([192, 0, 2, 1]), Addr::v4([192, 0, 2, 10]))
        );
        assert_eq!(pf.flow_key(), None);
    }

    proptest! {
        /// The IPv4/TCP shortcut agrees with the general parse on frames near its edges.
        #[test]
        fn prop_ipv4_tcp_shortcut_matches_general_parse(
            edits in proptest::collection::vec((12usize..60, any::<u8>()), 0..4),
            len in 40usize..80,
            pick in proptest::collection::vec(
                prop::sample::select(vec![0x00u8, 0x05, 0x06, 0x08, 0x20, 0x28, 0x40, 0x45, 0x46, 0x50, 0x60, 0xf0]),
                0..3,
            ),
            at in proptest::collection::vec(
                prop::sample::select(vec![12usize, 13, 14, 15, 16, 17, 20, 21, 22, 23, 46]),
                0..3,
            ),
        ) {
            let mut f = fixtures::ETH_IPV4_TCP_SYN.to_vec();
            f.resize(len, 0);
            for (i, b) in edits {
                if let Some(x) = f.get_mut(i) {
                    *x = b;
                }
            }
            for (i, b) in at.into_iter().zip(pick) {
                if let Some(x) = f.get_mut(i) {
                    *x = b;
                }
            }
            prop_assert_eq!(parse_frame(&f), parse_any(&f));
            if let Some(pf) = shortcut(&f) {
                prop_assert_eq!(Ok(pf), parse_any(&f));
                let head = Ipv4TcpHead::read(&f).map(|h| h.flow_key());
                prop_assert_eq!(head, pf.flow_key());
            }
        }
    }

    /// What the IPv4/TCP shortcut alone makes of `f`.
    fn shortcut(f: &[u8]) -> Option<ParsedFrame> {
        let mut pf = ParsedFrame::EMPTY;
        parse_ipv4_tcp(f, &mut pf).then_some(pf)
    }

    #[test]
    fn test_ipv4_tcp_shortcut_taken() {
        let f = &fixtures::ETH_IPV4_TCP_SYN;
        assert_eq!(shortcut(f).map(Ok), Some(parse_any(f)));
        // Options, a fragment, UDP, a tag and a TTL with no hop left all take the general parse.
        for (i, b) in [(14, 0x46), (21, 1), (23, 17), (12, 0x81), (22, 1), (22, 0)] {
            let mut g = f.to_vec();
            g[i] = b;
            assert_eq!(shortcut(&g), None, "byte {i} = {b:#x}");
        }
    }

    #[test]
    fn test_truncated() {
        let f = &fixtures::ETH_IPV4_TCP_SYN;
        assert_eq!(parse_frame(&f[..13]), Err(ParseError::Truncated));
        assert_eq!(parse_frame(&f[..33]), Err(ParseError::Truncated));
        // IP header intact but the total length now exceeds the buffer.
        assert_eq!(parse_frame(&f[..73]), Err(ParseError::BadTotalLength));
        let mut short = f.to_vec();
        short[17] = 40; // total length 40: TCP header claims 40 bytes but only 20 remain
        assert_eq!(parse_frame(&short), Err(ParseError::Truncated));
        let mut qinq = f.to_vec();
        qinq[12..14].copy_from_slice(&[0x88, 0xa8]);
        assert_eq!(parse_frame(&qinq), Err(ParseError::UnsupportedEthertype));
        let mut v6_in_v4 = f.to_vec();
        v6_in_v4[14] = 0x65;
        assert_eq!(parse_frame(&v6_in_v4), Err(ParseError::BadVersion));
        let mut bad_udp = fixtures::ETH_VLAN_IPV4_UDP_PADDED.to_vec();
        bad_udp[18 + 20 + 5] = 13; // UDP length 13 > 12-byte IP payload
        assert_eq!(parse_frame(&bad_udp), Err(ParseError::BadL4Length));
        let mut tiny_frag = fixtures::ETH_IPV6_HBH_FRAG_UDP.to_vec();
        tiny_frag.truncate(14 + 40 + 16 + 4);
        tiny_frag[14 + 5] = 20; // payload length 20: ends inside the UDP header
        assert_eq!(parse_frame(&tiny_frag), Err(ParseError::Truncated));
    }
}
