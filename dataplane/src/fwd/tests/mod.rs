//! Forwarding tests: byte-exact fixtures per mode and direction, cross-checked with `etherparse`;
//! ICMP relay; IPv6; persistence and quiescing; one-packet scheduling; drop reasons; a no-panic
//! property test.
//!
//! Fixtures are built field by field by [`frame`]; their checksums are filled with etherparse's
//! own arithmetic ([`fill_checksums`]), so expected outputs never come from our checksum code.

mod hops;
mod icmp;
mod mixed;
mod modes;
mod ops;
mod props;
mod v6;

use std::sync::Arc;

use super::{
    Forwarder, ForwarderConfig, Route, RssTarget, Snapshot, SnapshotBuilder, Topology, Verdict,
};
use crate::buf::{PacketBuf, VecBuf};
use crate::conn::ConnTableConfig;
use crate::flow::{Addr, Proto};
use crate::model::{
    FwdMode, LocalAddr, Persistence, RealServer, RealServerKey, SchedulerKind, Service,
    ServiceFlags, ServiceKey,
};
use crate::rss::{RetaMap, Toeplitz, MS_DEFAULT_KEY};
use crate::sched::DestId;
use crate::wire::MacAddr;
use etherparse::{
    Icmpv4Slice, Icmpv6Slice, Ipv4HeaderSlice, NetSlice, SlicedPacket, TcpHeaderSlice,
    TransportSlice, UdpHeader,
};

pub(super) const CLIENT: Addr = Addr::v4([192, 0, 2, 1]);
pub(super) const VIP: Addr = Addr::v4([198, 51, 100, 10]);
pub(super) const LIP: Addr = Addr::v4([10, 1, 0, 200]);
pub(super) const DIP0: Addr = Addr::v4([192, 0, 2, 254]);
pub(super) const DIP1: Addr = Addr::v4([10, 1, 0, 254]);
pub(super) const ROUTER: Addr = Addr::v4([192, 0, 2, 253]);

pub(super) const fn v6(last: u16, net: u16) -> Addr {
    let [a, b] = net.to_be_bytes();
    let [c, d] = last.to_be_bytes();
    Addr::v6([0x20, 0x01, 0x0d, 0xb8, 0, 0, a, b, 0, 0, 0, 0, 0, 0, c, d])
}
pub(super) const CLIENT6: Addr = v6(1, 0xc);
pub(super) const VIP6: Addr = v6(0x80, 0xa);
pub(super) const LIP6: Addr = v6(0x200, 1);
pub(super) const ROUTER6: Addr = v6(0xfd, 0xc);

pub(super) const MAC_P0: [u8; 6] = [2, 0, 0, 0, 0, 0xa0];
pub(super) const MAC_P1: [u8; 6] = [2, 0, 0, 0, 0, 0xa1];
pub(super) const MAC_ROUTER: [u8; 6] = [2, 0, 0, 0, 0, 0xfd];

/// Real server `i` (v4 10.1.0.i, v6 2001:db8:0:1::i).
pub(super) fn rip(i: u8) -> Addr {
    Addr::v4([10, 1, 0, i])
}
pub(super) fn rip6(i: u8) -> Addr {
    v6(u16::from(i), 1)
}
pub(super) fn rs_mac(i: u8) -> [u8; 6] {
    [2, 0, 0, 0, 1, i]
}

/// Port 0 faces clients (default route via ROUTER), port 1 the real servers (on-link 1..=9, the
/// local addresses' subnet); real server 9 has no resolved MAC.
pub(super) struct Topo;

impl Topology for Topo {
    fn route(&self, dst: &Addr) -> Option<Route> {
        let server_side = if dst.is_v4() {
            dst.0[12..15] == [10, 1, 0]
        } else {
            dst.0[..8] == v6(0, 1).0[..8]
        };
        if server_side {
            return Some(Route {
                port: 1,
                next_hop: *dst,
                mac: MacAddr(MAC_P1),
            });
        }
        if *dst == Addr::v4([203, 0, 113, 99]) {
            return None;
        }
        Some(Route {
            port: 0,
            next_hop: if dst.is_v4() { ROUTER } else { ROUTER6 },
            mac: MacAddr(MAC_P0),
        })
    }

    fn neighbour(&self, port: u16, ip: &Addr) -> Option<MacAddr> {
        match port {
            0 if *ip == ROUTER || *ip == ROUTER6 => Some(MacAddr(MAC_ROUTER)),
            1 => {
                let last = ip.0[15];
                (last != 9 && (1..=9).contains(&last)).then(|| MacAddr(rs_mac(last)))
            }
            _ => None,
        }
    }
}

/// A real server entry for [`snapshot`].
#[derive(Clone, Copy)]
pub(super) struct Rs {
    pub id: u32,
    pub addr: Addr,
    pub port: u16,
    pub mode: FwdMode,
    pub weight: u32,
}

pub(super) fn rs(id: u32, addr: Addr, port: u16, mode: FwdMode) -> Rs {
    Rs {
        id,
        addr,
        port,
        mode,
        weight: 1,
    }
}

/// A snapshot with one service in slot 3 and the test topology's ports and local addresses.
pub(super) fn snapshot(
    proto: Proto,
    vip: Addr,
    vport: u16,
    persistence: Option<Persistence>,
    dests: &[Rs],
) -> Snapshot {
    snapshot_flags(
        proto,
        vip,
        vport,
        persistence,
        ServiceFlags::default(),
        dests,
    )
}

/// The one-server FullNAT service of the FullNAT tests: TCP VIP:80 → rip(4):9000.
pub(super) fn fullnat_snapshot() -> Snapshot {
    snapshot(
        Proto::Tcp,
        VIP,
        80,
        None,
        &[rs(4, rip(4), 9000, FwdMode::FullNat)],
    )
}

/// [`snapshot`] with the service's scheduler flags.
pub(super) fn snapshot_flags(
    proto: Proto,
    vip: Addr,
    vport: u16,
    persistence: Option<Persistence>,
    flags: ServiceFlags,
    dests: &[Rs],
) -> Snapshot {
    let mut b = SnapshotBuilder::new();
    let svc = Service {
        key: ServiceKey {
            proto,
            vip: vip.to_ip(),
            port: vport,
        },
        scheduler: SchedulerKind::Rr,
        persistence,
        flags,
    };
    let ds: Vec<(DestId, RealServer)> = dests
        .iter()
        .map(|r| {
            (
                DestId(r.id),
                RealServer {
                    key: RealServerKey {
                        addr: r.addr.to_ip(),
                        port: r.port,
                    },
                    weight: r.weight,
                    mode: r.mode,
                    upper_threshold: 0,
                    lower_threshold: 0,
                },
            )
        })
        .collect();
    b.service(3, &svc, &ds).unwrap();
    for l in [LIP, LIP6] {
        b.local_addr(LocalAddr { addr: l.to_ip() });
    }
    b.port(0, &[DIP0.to_ip(), v6(0xfe, 0xc).to_ip()], 1500);
    b.port(1, &[DIP1.to_ip(), v6(0xfe, 1).to_ip()], 1500);
    b.build()
}

/// A forwarder on core 0, queue 1 of 4 (128-entry RETA, Microsoft key).
pub(super) fn forwarder() -> Forwarder {
    Forwarder::new(ForwarderConfig {
        table: ConnTableConfig {
            capacity: 1024,
            dest_capacity: 64,
            seed: Some(7),
            ..ConnTableConfig::default()
        },
        service_capacity: 16,
        rss: Some(RssTarget {
            toeplitz: Arc::new(Toeplitz::new(&MS_DEFAULT_KEY)),
            reta: Arc::new(RetaMap::new(128, 4).unwrap()),
            queue: 1,
        }),
        ..ForwarderConfig::default()
    })
}

/// The client's SYN to the test service (port 40000 → VIP:80), as it arrives on port 0.
pub(super) fn syn_in() -> Vec<u8> {
    frame(
        MAC_P0,
        MAC_ROUTER,
        CLIENT,
        VIP,
        64,
        tcp(40000, 80, SYN),
        b"",
    )
}

/// The transport part of a fixture.
#[derive(Clone, Copy)]
pub(super) enum L4 {
    Tcp { sport: u16, dport: u16, flags: u8 },
    Udp { sport: u16, dport: u16 },
    Icmp { ty: u8, code: u8, rest: u32 },
}

pub(super) const SYN: u8 = 0x02;
pub(super) const ACK: u8 = 0x10;
pub(super) const SYN_ACK: u8 = 0x12;

pub(super) fn tcp(sport: u16, dport: u16, flags: u8) -> L4 {
    L4::Tcp {
        sport,
        dport,
        flags,
    }
}

/// An Ethernet frame written field by field (IPv4: ID 0x1234, DF; TCP: fixed seq/ack, window
/// 0xffff), checksums filled by etherparse.
pub(super) fn frame(
    dmac: [u8; 6],
    smac: [u8; 6],
    src: Addr,
    dst: Addr,
    ttl: u8,
    l4: L4,
    payload: &[u8],
) -> Vec<u8> {
    let mut seg = Vec::new();
    let proto = match l4 {
        L4::Tcp {
            sport,
            dport,
            flags,
        } => {
            seg.extend_from_slice(&sport.to_be_bytes());
            seg.extend_from_slice(&dport.to_be_bytes());
            seg.extend_from_slice(&[1, 2, 3, 4, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
            if flags & ACK != 0 {
                seg[8..12].copy_from_slice(&[0x0a, 0x0b, 0x0c, 0x0d]);
            }
            6
        }
        L4::Udp { sport, dport } => {
            seg.extend_from_slice(&sport.to_be_bytes());
            seg.extend_from_slice(&dport.to_be_bytes());
            seg.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            seg.extend_from_slice(&[0, 0]);
            17
        }
        L4::Icmp { ty, code, rest } => {
            seg.extend_from_slice(&[ty, code, 0, 0]);
            seg.extend_from_slice(&rest.to_be_bytes());
            if src.is_v4() {
                1
            } else {
                58
            }
        }
    };
    seg.extend_from_slice(payload);
    let mut f = Vec::new();
    f.extend_from_slice(&dmac);
    f.extend_from_slice(&smac);
    if src.is_v4() {
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0x00]);
        f.extend_from_slice(&((20 + seg.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, ttl, proto, 0, 0]);
        f.extend_from_slice(&src.v4_octets());
        f.extend_from_slice(&dst.v4_octets());
    } else {
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&(seg.len() as u16).to_be_bytes());
        f.extend_from_slice(&[proto, ttl]);
        f.extend_from_slice(&src.0);
        f.extend_from_slice(&dst.0);
    }
    f.extend_from_slice(&seg);
    fill_checksums(&mut f);
    f
}

/// The IP packet of a frame (after the 14-byte Ethernet header).
pub(super) fn ip_of(f: &[u8]) -> &[u8] {
    &f[14..]
}

/// Fills the IPv4 header and TCP/UDP/ICMP checksums of an untagged frame with etherparse.
pub(super) fn fill_checksums(f: &mut [u8]) {
    let v4 = f[12..14] == [0x08, 0x00];
    let (l4, proto, src4, dst4, src6, dst6) = if v4 {
        let h = Ipv4HeaderSlice::from_slice(&f[14..]).unwrap().to_header();
        let c = h.calc_header_checksum();
        f[24..26].copy_from_slice(&c.to_be_bytes());
        (34, f[23], h.source, h.destination, [0; 16], [0; 16])
    } else {
        let mut s = [0u8; 16];
        let mut d = [0u8; 16];
        s.copy_from_slice(&f[22..38]);
        d.copy_from_slice(&f[38..54]);
        (54, f[20], [0; 4], [0; 4], s, d)
    };
    match proto {
        6 => {
            let hlen = usize::from(f[l4 + 12] >> 4) * 4;
            let t = TcpHeaderSlice::from_slice(&f[l4..]).unwrap();
            let payload = &f[l4 + hlen..];
            let c = if v4 {
                t.calc_checksum_ipv4_raw(src4, dst4, payload).unwrap()
            } else {
                t.calc_checksum_ipv6_raw(src6, dst6, payload).unwrap()
            };
            f[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        }
        17 => {
            let (u, payload) = UdpHeader::from_slice(&f[l4..]).unwrap();
            let c = if v4 {
                u.calc_checksum_ipv4_raw(src4, dst4, payload).unwrap()
            } else {
                u.calc_checksum_ipv6_raw(src6, dst6, payload).unwrap()
            };
            f[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
        }
        1 => {
            let m = Icmpv4Slice::from_slice(&f[l4..]).unwrap();
            let c = m.icmp_type().calc_checksum(m.payload());
            f[l4 + 2..l4 + 4].copy_from_slice(&c.to_be_bytes());
        }
        58 => {
            let m = Icmpv6Slice::from_slice(&f[l4..]).unwrap();
            let c = m
                .icmp_type()
                .calc_checksum(src6, dst6, m.payload())
                .unwrap();
            f[l4 + 2..l4 + 4].copy_from_slice(&c.to_be_bytes());
        }
        _ => {}
    }
}

/// Asserts that etherparse parses the frame and that every checksum in it verifies (a zero
/// IPv4 UDP checksum counts as "none").
pub(super) fn assert_etherparse_valid(f: &[u8]) {
    let p = SlicedPacket::from_ethernet(f).expect("etherparse rejects the frame");
    match (p.net, p.transport) {
        (Some(NetSlice::Ipv4(ip)), t) => {
            let h = ip.header().to_header();
            assert_eq!(h.calc_header_checksum(), h.header_checksum, "IPv4 header");
            let (s, d) = (h.source, h.destination);
            match t {
                Some(TransportSlice::Tcp(tcp)) => {
                    assert_eq!(tcp.calc_checksum_ipv4(s, d).unwrap(), tcp.checksum(), "TCP")
                }
                Some(TransportSlice::Udp(udp)) => {
                    let c = udp
                        .to_header()
                        .calc_checksum_ipv4_raw(s, d, udp.payload())
                        .unwrap();
                    assert!(udp.checksum() == 0 || c == udp.checksum(), "UDP");
                }
                Some(TransportSlice::Icmpv4(m)) => {
                    assert_eq!(
                        m.icmp_type().calc_checksum(m.payload()),
                        m.checksum(),
                        "ICMP"
                    )
                }
                None => {}
                Some(_) => panic!("unexpected transport"),
            }
        }
        (Some(NetSlice::Ipv6(ip)), t) => {
            let h = ip.header().to_header();
            let (s, d) = (h.source, h.destination);
            match t {
                Some(TransportSlice::Tcp(tcp)) => {
                    assert_eq!(tcp.calc_checksum_ipv6(s, d).unwrap(), tcp.checksum(), "TCP")
                }
                Some(TransportSlice::Udp(udp)) => {
                    let c = udp
                        .to_header()
                        .calc_checksum_ipv6_raw(s, d, udp.payload())
                        .unwrap();
                    assert_eq!(c, udp.checksum(), "UDP");
                }
                Some(TransportSlice::Icmpv6(m)) => assert!(m.is_checksum_valid(s, d), "ICMPv6"),
                None => {}
                Some(_) => panic!("unexpected transport"),
            }
        }
        _ => panic!("not IP"),
    }
}

/// Runs one frame through `f` at time `now`; returns the verdict and the output frame.
pub(super) fn run(
    f: &mut Forwarder,
    snap: &Snapshot,
    in_port: u16,
    frame: &[u8],
    now: u64,
) -> (Verdict, Vec<u8>) {
    let mut b = VecBuf::new(frame);
    let v = f.process(snap, &Topo, in_port, &mut b, now);
    (v, b.frame().to_vec())
}

/// `frames` through a fresh forwarder one at a time (port 1, at 1 s): the forwarder, and each
/// frame's verdict and bytes.
pub(super) fn one_by_one(
    snap: &Snapshot,
    frames: &[Vec<u8>],
) -> (Forwarder, Vec<(Verdict, Vec<u8>)>) {
    let mut one = forwarder();
    let single = frames
        .iter()
        .map(|f| {
            let mut b = VecBuf::new(f);
            let v = one.process(snap, &Topo, 1, &mut b, 1000);
            (v, b.frame().to_vec())
        })
        .collect();
    (one, single)
}

/// Checks a burst run against the one-by-one run of the same frames: each frame's verdict and
/// bytes (`single` against `v` and `bufs`), the table's size and the forwarding counters.
pub(super) fn same_as_one_by_one(
    single: &[(Verdict, Vec<u8>)],
    (v, bufs): (&[Verdict], &[VecBuf]),
    (one, burst): (&Forwarder, &Forwarder),
) -> Result<(), proptest::test_runner::TestCaseError> {
    for (i, ((sv, sf), (bv, bb))) in single.iter().zip(v.iter().zip(bufs)).enumerate() {
        proptest::prop_assert_eq!(sv, bv, "frame {}", i);
        proptest::prop_assert_eq!(&sf[..], bb.frame(), "frame {}", i);
    }
    proptest::prop_assert_eq!(one.conns().len(), burst.conns().len());
    let (a, b) = (one.stats(), burst.stats());
    proptest::prop_assert_eq!(a.new_conns.get(), b.new_conns.get());
    proptest::prop_assert_eq!(a.reused.get(), b.reused.get());
    proptest::prop_assert_eq!(a.forwarded.get(), b.forwarded.get());
    proptest::prop_assert_eq!(a.kernel.get(), b.kernel.get());
    proptest::prop_assert_eq!(a.total_drops(), b.total_drops());
    Ok(())
}

#[test]
fn test_fixture_builder_is_valid() {
    let f = frame(
        MAC_P0,
        MAC_ROUTER,
        CLIENT,
        VIP,
        64,
        tcp(40000, 80, SYN),
        b"hello",
    );
    assert_eq!(f.len(), 14 + 20 + 20 + 5);
    assert_eq!(
        &f[14..26],
        &[0x45, 0, 0, 45, 0x12, 0x34, 0x40, 0, 64, 6, f[24], f[25]]
    );
    assert_etherparse_valid(&f);
    let f6 = frame(
        MAC_P0,
        MAC_ROUTER,
        CLIENT6,
        VIP6,
        64,
        L4::Udp { sport: 1, dport: 2 },
        b"x",
    );
    assert_etherparse_valid(&f6);
}
