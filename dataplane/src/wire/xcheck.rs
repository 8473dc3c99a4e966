//! Cross-checks against an independent parser (`etherparse`) and no-panic property tests.

use super::fixtures;
use super::icmpv4::{self, Icmpv4Packet};
use super::icmpv6::{self, Icmpv6Packet};
use super::ipv4::{Ipv4Packet, Ipv4Repr};
use super::ipv6::{walk_ext, Ipv6Packet};
use super::tcp::{TcpOptions, TcpPacket};
use super::udp::UdpPacket;
use super::{arp::ArpPacket, parse_frame, EthernetFrame, Frag, L3Kind};
use crate::checksum;
use crate::flow::Addr;
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TcpOptionElement, TransportSlice, VlanId};
use proptest::prelude::*;

const MAC_A: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
const MAC_B: [u8; 6] = [0x52, 0x54, 0, 0xab, 0xcd, 0xef];
const V6_A: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
];
const V6_B: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80,
];

fn sliced(frame: &[u8]) -> SlicedPacket<'_> {
    SlicedPacket::from_ethernet(frame).expect("etherparse rejects the frame")
}

/// Checks every checksum in an IPv4/IPv6 frame with etherparse's own arithmetic.
fn etherparse_checksums_ok(frame: &[u8]) -> bool {
    let p = sliced(frame);
    match (p.net, p.transport) {
        (Some(NetSlice::Ipv4(ip)), t) => {
            let h = ip.header();
            let hdr = h.to_header();
            if hdr.calc_header_checksum() != h.header_checksum() {
                return false;
            }
            let (s, d) = (hdr.source, hdr.destination);
            match t {
                Some(TransportSlice::Tcp(tcp)) => {
                    tcp.calc_checksum_ipv4(s, d).unwrap() == tcp.checksum()
                }
                Some(TransportSlice::Udp(udp)) => {
                    let c = udp
                        .to_header()
                        .calc_checksum_ipv4_raw(s, d, udp.payload())
                        .unwrap();
                    udp.checksum() == 0 || c == udp.checksum()
                }
                Some(TransportSlice::Icmpv4(icmp)) => {
                    icmp.icmp_type().calc_checksum(icmp.payload()) == icmp.checksum()
                }
                _ => true,
            }
        }
        (Some(NetSlice::Ipv6(ip)), t) => {
            let h = ip.header().to_header();
            let (s, d) = (h.source, h.destination);
            match t {
                Some(TransportSlice::Tcp(tcp)) => {
                    tcp.calc_checksum_ipv6(s, d).unwrap() == tcp.checksum()
                }
                Some(TransportSlice::Udp(udp)) => {
                    udp.to_header()
                        .calc_checksum_ipv6_raw(s, d, udp.payload())
                        .unwrap()
                        == udp.checksum()
                }
                Some(TransportSlice::Icmpv6(icmp)) => icmp.is_checksum_valid(s, d),
                _ => true,
            }
        }
        _ => false,
    }
}

#[test]
fn test_fixture_checksums_verify_in_etherparse() {
    assert!(etherparse_checksums_ok(&fixtures::ETH_IPV4_TCP_SYN));
    assert!(etherparse_checksums_ok(&fixtures::ETH_VLAN_IPV4_UDP_PADDED));
    assert!(etherparse_checksums_ok(
        &fixtures::ETH_IPV4_ICMP_FRAG_NEEDED
    ));
    // Also with our own arithmetic.
    let f = &fixtures::ETH_IPV4_TCP_SYN;
    let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
    assert!(ip.verify_checksum());
    let ps = checksum::pseudo_v4(ip.src(), ip.dst(), 6, 40);
    assert!(TcpPacket::new_checked(ip.payload())
        .unwrap()
        .verify_checksum(ps));
}

#[test]
fn test_fixture_fields_match_etherparse() {
    let f = &fixtures::ETH_IPV6_HBH_FRAG_UDP;
    let p = sliced(f);
    let ours = parse_frame(f).unwrap();
    let Some(NetSlice::Ipv6(ip)) = p.net else {
        panic!("not IPv6")
    };
    assert!(ip.payload().fragmented);
    assert_eq!(ip.payload().ip_number.0, ours.proto);
    assert_eq!(Addr::from(ip.header().source_addr()), ours.src);
    assert_eq!(
        usize::from(ours.l4_off),
        f.len() - ip.payload().payload.len()
    );
    assert_eq!(ours.frag, Frag::First);

    let f = &fixtures::ETH_VLAN_IPV4_UDP_PADDED;
    let p = sliced(f);
    let ours = parse_frame(f).unwrap();
    let Some(etherparse::VlanSlice::SingleVlan(v)) = p.vlan else {
        panic!("no vlan")
    };
    assert_eq!(
        Some(v.vlan_identifier().value()),
        ours.vlan_tci.map(|t| t & 0xfff)
    );
    let Some(TransportSlice::Udp(u)) = p.transport else {
        panic!("not udp")
    };
    assert_eq!(
        (u.source_port(), u.destination_port()),
        (ours.sport, ours.dport)
    );
    assert_eq!(u.payload().len(), usize::from(ours.payload_len));
}

/// Builds Ethernet/IPv4/TCP with etherparse and compares every field our views read.
#[test]
fn test_etherparse_tcp_v4_parses_identically() {
    let payload = b"GET / HTTP/1.1\r\n\r\n";
    let builder = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .single_vlan(VlanId::try_new(42).unwrap())
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 33)
        .tcp(51000, 443, 0xdead_beef, 29200)
        .ack(0x0102_0304)
        .psh()
        .options(&[
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Timestamp(7, 9),
        ])
        .unwrap();
    let mut frame = Vec::new();
    builder.write(&mut frame, payload).unwrap();

    let pf = parse_frame(&frame).unwrap();
    assert_eq!(pf.vlan_tci.map(|t| t & 0xfff), Some(42));
    assert_eq!((pf.l3_off, pf.l4_off), (18, 38));
    assert_eq!(
        (pf.src, pf.dst),
        (Addr::v4([10, 0, 0, 1]), Addr::v4([10, 0, 0, 2]))
    );
    assert_eq!((pf.sport, pf.dport, pf.ttl), (51000, 443, 33));
    assert_eq!(
        pf.tcp_flags,
        super::tcp::flags::ACK | super::tcp::flags::PSH
    );
    assert_eq!(usize::from(pf.payload_len), payload.len());

    let ip = Ipv4Packet::new_checked(&frame[18..]).unwrap();
    assert!(ip.verify_checksum());
    let t = TcpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((t.seq_number(), t.ack_number()), (0xdead_beef, 0x0102_0304));
    assert_eq!(t.window(), 29200);
    assert_eq!(t.payload(), payload);
    let ps = checksum::pseudo_v4(ip.src(), ip.dst(), 6, ip.payload().len() as u16);
    assert!(t.verify_checksum(ps));
    let opts: Vec<_> = t.options().collect();
    assert!(opts.contains(&super::tcp::TcpOption::Timestamps { tsval: 7, tsecr: 9 }));
}

#[test]
fn test_etherparse_udp_and_icmp_v6_parse_identically() {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(V6_A, V6_B, 17)
        .udp(5000, 6000)
        .write(&mut frame, &[1, 2, 3])
        .unwrap();
    let pf = parse_frame(&frame).unwrap();
    assert_eq!(pf.l3, L3Kind::Ipv6);
    assert_eq!(
        (pf.sport, pf.dport, pf.payload_len, pf.ttl),
        (5000, 6000, 3, 17)
    );
    let ip = Ipv6Packet::new_checked(&frame[14..]).unwrap();
    let u = UdpPacket::new_checked(ip.payload()).unwrap();
    assert!(u.verify_checksum(checksum::pseudo_v6(&V6_A, &V6_B, 17, 11)));

    let mut frame = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(V6_A, V6_B, 64)
        .icmpv6_echo_request(0x77, 3)
        .write(&mut frame, b"ping")
        .unwrap();
    let pf = parse_frame(&frame).unwrap();
    assert_eq!((pf.proto, pf.icmp_type, pf.icmp_code), (58, 128, 0));
    let m = Icmpv6Packet::new_checked(&frame[usize::from(pf.l4_off)..]).unwrap();
    assert_eq!((m.echo_ident(), m.echo_seq()), (0x77, 3));
    assert!(m.verify_checksum(checksum::pseudo_v6(&V6_A, &V6_B, 58, 12)));

    // Echo reply in place; etherparse must agree the result is a valid reply.
    icmpv6::echo_reply_in_place(&mut frame, &pf, 64).unwrap();
    let p = sliced(&frame);
    let Some(TransportSlice::Icmpv6(r)) = &p.transport else {
        panic!("not icmpv6")
    };
    assert_eq!(r.type_u8(), 129);
    assert!(r.is_checksum_valid(V6_B, V6_A));
    assert_eq!(
        EthernetFrame::new_checked(&frame[..]).unwrap().dst().0,
        MAC_A
    );
}

#[test]
fn test_icmpv4_echo_reply_verifies_in_etherparse() {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([192, 0, 2, 1], [192, 0, 2, 10], 57)
        .icmpv4_echo_request(0x1234, 9)
        .write(&mut frame, &[0xab; 56])
        .unwrap();
    let pf = parse_frame(&frame).unwrap();
    assert_eq!((pf.icmp_type, pf.payload_len), (8, 56));
    icmpv4::echo_reply_in_place(&mut frame, &pf, 64).unwrap();
    assert!(etherparse_checksums_ok(&frame));
    let pf2 = parse_frame(&frame).unwrap();
    assert_eq!((pf2.icmp_type, pf2.ttl), (0, 64));
    assert_eq!((pf2.src, pf2.dst), (pf.dst, pf.src));
    // A second call is refused: it is a reply now.
    assert_eq!(
        icmpv4::echo_reply_in_place(&mut frame, &pf2, 64),
        Err(super::EmitError::NotApplicable)
    );
}

/// Our emitted headers verify in etherparse: IPv4 + ICMP frag-needed and ICMPv6 packet-too-big.
#[test]
fn test_emitted_errors_verify_in_etherparse() {
    let orig = &fixtures::ETH_IPV4_TCP_SYN[14..];
    let mut out = vec![0u8; 14 + 600];
    super::ethernet::emit(
        &mut out,
        super::MacAddr(MAC_A),
        super::MacAddr(MAC_B),
        0x0800,
    )
    .unwrap();
    let n = icmpv4::emit_frag_needed(&mut out[14..], [203, 0, 113, 1], 1, 1400, orig).unwrap();
    out.truncate(14 + n);
    assert!(etherparse_checksums_ok(&out));
    let p = sliced(&out);
    let Some(TransportSlice::Icmpv4(m)) = &p.transport else {
        panic!("not icmp")
    };
    assert_eq!(
        m.icmp_type(),
        etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 }
        )
    );

    let mut orig6 = Vec::new();
    PacketBuilder::ipv6(V6_A, V6_B, 64)
        .tcp(40000, 80, 1, 1000)
        .write(&mut orig6, &[0u8; 1400])
        .unwrap();
    let mut out = vec![0u8; 14 + 1280];
    super::ethernet::emit(
        &mut out,
        super::MacAddr(MAC_A),
        super::MacAddr(MAC_B),
        0x86dd,
    )
    .unwrap();
    let src = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe,
    ];
    let n = icmpv6::emit_packet_too_big(&mut out[14..], &src, 1280, &orig6).unwrap();
    assert_eq!(n, 1280);
    assert!(etherparse_checksums_ok(&out));
    let p = sliced(&out);
    let Some(TransportSlice::Icmpv6(m)) = &p.transport else {
        panic!("not icmpv6")
    };
    assert_eq!(
        m.icmp_type(),
        etherparse::Icmpv6Type::PacketTooBig { mtu: 1280 }
    );
}

/// A neighbor advertisement we emit verifies in etherparse.
#[test]
fn test_emitted_neighbor_advert_verifies_in_etherparse() {
    let mut out = [0u8; 86];
    let target = V6_B;
    super::ndp::emit_advert(
        &mut out,
        super::MacAddr(MAC_B),
        &target,
        super::MacAddr(MAC_A),
        &V6_A,
        true,
    )
    .unwrap();
    assert!(etherparse_checksums_ok(&out));
    let p = sliced(&out);
    let Some(TransportSlice::Icmpv6(m)) = &p.transport else {
        panic!("not icmpv6")
    };
    assert_eq!(m.type_u8(), 136);
}

/// An IPv4 header we emit (with options-less layout) reads back identically in etherparse.
#[test]
fn test_emitted_ipv4_header_matches_etherparse() {
    let mut hdr = [0u8; 20];
    Ipv4Repr {
        src: [10, 9, 8, 7],
        dst: [1, 2, 3, 4],
        protocol: 4,
        ttl: 17,
        tos: 0x10,
        ident: 0xbeef,
        dont_frag: true,
        payload_len: 0,
    }
    .emit(&mut hdr)
    .unwrap();
    let (h, _) = etherparse::Ipv4Header::from_slice(&hdr).unwrap();
    assert_eq!(h.calc_header_checksum(), h.header_checksum);
    assert_eq!((h.source, h.destination), ([10, 9, 8, 7], [1, 2, 3, 4]));
    assert_eq!(
        (h.time_to_live, h.identification, h.dont_fragment),
        (17, 0xbeef, true)
    );
    assert_eq!(h.protocol.0, 4);
}

/// Touches every accessor of every view that accepted `data`: none may panic.
fn exercise_views(data: &[u8]) {
    if let Ok(e) = EthernetFrame::new_checked(data) {
        let _ = (
            e.dst(),
            e.src(),
            e.ethertype(),
            e.vlan_id(),
            e.payload().len(),
        );
    }
    if let Ok(a) = ArpPacket::new_checked(data) {
        let _ = (
            a.operation(),
            a.sender_mac(),
            a.target_ip(),
            a.is_gratuitous(),
        );
    }
    if let Ok(p) = Ipv4Packet::new_checked(data) {
        let _ = (
            p.options().len(),
            p.payload().len(),
            p.verify_checksum(),
            p.frag_offset(),
        );
        let _ = (p.src_addr(), p.tos(), p.ident(), p.is_fragment());
        let _ = icmpv4::error_allowed(&p);
        let mut out = [0u8; 600];
        let _ = icmpv4::emit_frag_needed(&mut out, [1, 1, 1, 1], 0, 1280, data);
    }
    if let Ok(p) = Ipv6Packet::new_checked(data) {
        let _ = (
            p.payload().len(),
            p.upper_layer(),
            p.flow_label(),
            p.traffic_class(),
        );
        let _ = icmpv6::error_allowed(&p, icmpv6::types::PACKET_TOO_BIG);
        let mut out = [0u8; 1280];
        let _ = icmpv6::emit_packet_too_big(&mut out, &V6_A, 1280, data);
    }
    let _ = walk_ext(data, data.first().copied().unwrap_or(0), 1);
    if let Ok(t) = TcpPacket::new_checked(data) {
        let _ = (
            t.options().count(),
            t.mss(),
            t.payload().len(),
            t.flags(),
            t.urgent(),
        );
    }
    let _ = TcpOptions::new(data).count();
    if let Ok(u) = UdpPacket::new_checked(data) {
        let _ = (u.payload().len(), u.verify_checksum(0), u.is_empty());
    }
    if let Ok(m) = Icmpv4Packet::new_checked(data) {
        let _ = (
            m.quoted(),
            m.is_error(),
            m.next_hop_mtu(),
            m.verify_checksum(),
        );
    }
    if let Ok(m) = Icmpv6Packet::new_checked(data) {
        let _ = (m.quoted(), m.mtu(), m.echo_seq());
    }
}

/// Random bytes placed after a valid Ethernet + IP prefix, so the parse gets deep.
fn frame_with_prefix(prefix: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..160).prop_map(move |tail| {
        let mut f = prefix.to_vec();
        f.extend_from_slice(&tail);
        f
    })
}

proptest! {
    #[test]
    fn prop_random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_frame(&data);
        exercise_views(&data);
    }

    #[test]
    fn prop_fuzzed_headers_never_panic(
        frame in prop_oneof![
            frame_with_prefix(&fixtures::ETH_IPV4_TCP_SYN[..14]),
            frame_with_prefix(&fixtures::ETH_IPV6_HBH_FRAG_UDP[..14]),
            frame_with_prefix(&fixtures::ETH_VLAN_IPV4_UDP_PADDED[..18]),
        ],
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut frame = frame;
        for (i, v) in flips {
            let n = frame.len();
            frame[i.index(n)] = v;
        }
        if let Ok(pf) = parse_frame(&frame) {
            // Offsets are consistent with the buffer whenever parsing succeeds.
            prop_assert!(pf.l3_end() <= frame.len());
            prop_assert!(usize::from(pf.l4_off) <= pf.l3_end());
            prop_assert!(usize::from(pf.payload_len) <= pf.l4_len());
        }
        exercise_views(&frame);
        exercise_views(frame.get(14..).unwrap_or(&[]));
    }

    #[test]
    fn prop_truncated_fixtures_error_not_panic(cut in 0usize..200, which in 0usize..5) {
        let all: [&[u8]; 5] = [
            &fixtures::ETH_IPV4_TCP_SYN,
            &fixtures::ETH_IPV6_HBH_FRAG_UDP,
            &fixtures::ETH_VLAN_IPV4_UDP_PADDED,
            &fixtures::ETH_IPV4_ICMP_FRAG_NEEDED,
            &fixtures::ETH_ARP_REQUEST,
        ];
        let f = all[which];
        let full = parse_frame(f).unwrap();
        let cut = cut.min(f.len());
        match parse_frame(&f[..cut]) {
            // Only cutting Ethernet padding keeps a frame valid.
            Ok(pf) => {
                prop_assert!(cut >= full.l3_end());
                prop_assert_eq!(pf, full);
            }
            Err(_) => prop_assert!(cut < full.l3_end()),
        }
        exercise_views(&f[..cut]);
    }

    /// Frames etherparse builds from random fields parse to the same fields.
    #[test]
    fn prop_etherparse_built_frames_agree(
        src in any::<[u8; 4]>(),
        dst in any::<[u8; 4]>(),
        sport in any::<u16>(),
        dport in any::<u16>(),
        ttl in any::<u8>(),
        udp in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let b = PacketBuilder::ethernet2(MAC_A, MAC_B).ipv4(src, dst, ttl);
        let mut frame = Vec::new();
        if udp {
            b.udp(sport, dport).write(&mut frame, &payload).unwrap();
        } else {
            b.tcp(sport, dport, 1, 100).syn().write(&mut frame, &payload).unwrap();
        }
        let pf = parse_frame(&frame).unwrap();
        prop_assert_eq!((pf.src, pf.dst), (Addr::v4(src), Addr::v4(dst)));
        prop_assert_eq!((pf.sport, pf.dport, pf.ttl), (sport, dport, ttl));
        prop_assert_eq!(pf.proto, if udp { 17 } else { 6 });
        prop_assert_eq!(usize::from(pf.payload_len), payload.len());
        // Our checksum arithmetic agrees with what etherparse wrote.
        let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        prop_assert!(ip.verify_checksum());
        let ps = checksum::pseudo_v4(src, dst, pf.proto, ip.payload().len() as u16);
        prop_assert_eq!(checksum::add(ps, checksum::sum(ip.payload())), 0xffff);
    }

    /// NAT-style rewrites with incremental updates still verify in etherparse.
    #[test]
    fn prop_incremental_nat_verifies_in_etherparse(
        new_dst in any::<[u8; 4]>(),
        new_dport in any::<u16>(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4([192, 0, 2, 1], [198, 51, 100, 10], 64)
            .tcp(40000, 80, 1, 100)
            .write(&mut frame, &payload)
            .unwrap();
        let mut ip = Ipv4Packet::new_checked(&mut frame[14..]).unwrap();
        let old_dst = ip.rewrite_dst(new_dst);
        let mut t = TcpPacket::new_checked(ip.payload_mut()).unwrap();
        t.rewrite_dst_port(new_dport);
        let c = checksum::update_addr4(t.checksum(), old_dst, new_dst);
        t.set_checksum(c);
        prop_assert!(etherparse_checksums_ok(&frame));
    }
}
