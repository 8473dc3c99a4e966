//! The forwarding pipeline alone (no DPDK), for instruction counts under callgrind.
//!
//! Builds what a worker forwards by — one TCP service with four real servers, the routing table
//! of a two-port director and a neighbour cache holding the real servers' and the gateway's
//! MACs (the same `Topology` as the daemon's worker) — opens `flows` connections with a full
//! handshake, then forwards `packets` pre-built 64-byte TCP ACKs (60 bytes + FCS on the wire)
//! of those established flows through [`Forwarder::process_burst`] (as the daemon's worker does),
//! round robin over the flows, in bursts of [`dataplane::fwd::BURST`] (64) with the clock
//! advancing 1 ms per burst. Each frame is copied into one of 64 reused [`VecBuf`]s (no
//! allocation).
//!
//! Run it twice with different packet counts: everything but the per-packet work is identical, so
//! `(Ir(M) − Ir(N)) / (M − N)` is the instructions per packet, independent of machine noise
//! (`benches/callgrind/run.sh` does that for every mode and prints the table). `harness` runs
//! the same loop without `process_burst`, so its count is the copy-and-check overhead included in
//! every other row.
//!
//! ```text
//! pipeline <mode> <flows> <packets> [no-epoch]
//!     mode: dr nat fullnat tun nat-reply fullnat-reply fullnat-syn dr-syn harness; `no-epoch`:
//!     the topology offers no epoch, so the forwarder looks up route and neighbour for every
//!     packet; `*-syn`: every packet a SYN of a new tuple (packets ≤ flows), none opened before
//! pipeline check [flows]   verifies every output frame of every mode (etherparse)
//! ```

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use dataplane::buf::{PacketBuf, VecBuf};
use dataplane::conn::ConnTableConfig;
use dataplane::flow::{Addr, FlowKey, Proto};
use dataplane::fwd::{
    Forwarder, ForwarderConfig, Route, RoutedTopology, Snapshot, SnapshotBuilder, Topology,
};
use dataplane::fwd::{Verdict, DEFAULT_MTU};
use dataplane::model::{
    FwdMode, LocalAddr, RealServer, RealServerKey, SchedulerKind, Service, ServiceFlags, ServiceKey,
};
use dataplane::neigh::{NeighCache, NeighConfig};
use dataplane::route::{RouteTable, StaticRoute};
use dataplane::sched::DestId;
use dataplane::wire::MacAddr;
use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use ironvs::prefetch::CpuPrefetch;

/// Frames per burst (the worker's RX burst).
const BURST: usize = dataplane::fwd::BURST;
/// The frame without FCS: 54 bytes of headers and 6 of Ethernet padding.
const FRAME_LEN: usize = 60;

const VIP: [u8; 4] = [198, 51, 100, 10];
const VPORT: u16 = 80;
/// Port 0 faces the clients (via a gateway), port 1 the real servers' subnet.
const CLIENT_PORT: u16 = 0;
const SERVER_PORT: u16 = 1;
const OUR_CLIENT_SIDE: [u8; 4] = [192, 0, 2, 1];
const GATEWAY: [u8; 4] = [192, 0, 2, 254];
const OUR_SERVER_SIDE: [u8; 4] = [10, 1, 0, 254];
const REAL_SERVERS: u8 = 4;
const PORT_MACS: [MacAddr; 2] = [
    MacAddr([0x02, 0, 0, 0, 0, 0x01]),
    MacAddr([0x02, 0, 0, 0, 1, 0x01]),
];
const GATEWAY_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xfe]);

/// A real server's address and MAC.
fn real(i: u8) -> ([u8; 4], MacAddr) {
    ([10, 1, 0, 1 + i], MacAddr([0x02, 0, 0, 0, 2, 1 + i]))
}

/// A topology without an epoch: the forwarder caches no egress, and looks route and neighbour
/// up for every packet (the *no epoch* rows).
struct NoEpoch<T>(T);

impl<T: Topology> Topology for NoEpoch<T> {
    #[inline]
    fn route(&self, dst: &Addr) -> Option<Route> {
        self.0.route(dst)
    }

    #[inline]
    fn neighbour(&self, port: u16, ip: &Addr) -> Option<MacAddr> {
        self.0.neighbour(port, ip)
    }
}

/// The daemon's topology (`RoutedTopology`, as `src/worker/mod.rs` builds it): routing table,
/// per-port MACs, neighbour cache, and the cache's version as the epoch.
fn topo<'a>(routes: &'a RouteTable, neigh: &'a NeighCache<VecBuf>) -> RoutedTopology<'a, VecBuf> {
    RoutedTopology {
        routes,
        macs: &PORT_MACS,
        neigh,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Dr,
    Nat,
    FullNat,
    Tun,
    NatReply,
    FullNatReply,
    /// Every packet a SYN of a new tuple, FullNAT: the new-connection path.
    FullNatSyn,
    /// The same in DR.
    DrSyn,
    Harness,
}

impl Mode {
    const ALL: [Mode; 9] = [
        Mode::Dr,
        Mode::Nat,
        Mode::FullNat,
        Mode::Tun,
        Mode::NatReply,
        Mode::FullNatReply,
        Mode::FullNatSyn,
        Mode::DrSyn,
        Mode::Harness,
    ];

    fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == s)
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Dr => "dr",
            Mode::Nat => "nat",
            Mode::FullNat => "fullnat",
            Mode::Tun => "tun",
            Mode::NatReply => "nat-reply",
            Mode::FullNatReply => "fullnat-reply",
            Mode::FullNatSyn => "fullnat-syn",
            Mode::DrSyn => "dr-syn",
            Mode::Harness => "harness",
        }
    }

    /// Every packet a SYN of a new tuple.
    fn is_syn(self) -> bool {
        matches!(self, Mode::FullNatSyn | Mode::DrSyn)
    }

    fn fwd_mode(self) -> FwdMode {
        match self {
            Mode::Dr | Mode::DrSyn | Mode::Harness => FwdMode::Dr,
            Mode::Nat | Mode::NatReply => FwdMode::Nat,
            Mode::FullNat | Mode::FullNatReply | Mode::FullNatSyn => FwdMode::FullNat,
            Mode::Tun => FwdMode::Tun,
        }
    }
}

fn snapshot(mode: FwdMode, flows: u32) -> Snapshot {
    let mut b = SnapshotBuilder::new();
    let svc = Service {
        key: ServiceKey {
            proto: Proto::Tcp,
            vip: IpAddr::V4(Ipv4Addr::from(VIP)),
            port: VPORT,
        },
        scheduler: SchedulerKind::Wlc,
        persistence: None,
        flags: ServiceFlags::default(),
    };
    let dests: Vec<(DestId, RealServer)> = (0..REAL_SERVERS)
        .map(|i| {
            let rs = RealServer {
                key: RealServerKey {
                    addr: IpAddr::V4(Ipv4Addr::from(real(i).0)),
                    port: 8080,
                },
                weight: 1,
                mode,
                upper_threshold: 0,
                lower_threshold: 0,
            };
            (DestId(u32::from(i)), rs)
        })
        .collect();
    b.service(0, &svc, &dests).expect("service");
    // FullNAT local addresses on the servers' subnet, enough ports for every flow.
    for i in 0..=(flows / 50_000) as u8 {
        b.local_addr(LocalAddr {
            addr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 200 + i)),
        });
    }
    b.port(
        CLIENT_PORT,
        &[Ipv4Addr::from(OUR_CLIENT_SIDE).into()],
        DEFAULT_MTU,
    );
    b.port(
        SERVER_PORT,
        &[Ipv4Addr::from(OUR_SERVER_SIDE).into()],
        DEFAULT_MTU,
    );
    b.build()
}

fn routes() -> RouteTable {
    RouteTable::builder()
        .address(CLIENT_PORT, Addr::v4(OUR_CLIENT_SIDE), 24)
        .address(SERVER_PORT, Addr::v4(OUR_SERVER_SIDE), 24)
        .route(StaticRoute::via(
            Addr::v4([0, 0, 0, 0]),
            0,
            Addr::v4(GATEWAY),
        ))
        .build()
        .expect("routes")
}

/// A neighbour cache that knows the gateway and every real server (resolved, then learned).
fn neighbours() -> NeighCache<VecBuf> {
    let mut n = NeighCache::new(NeighConfig::default());
    let mut known = vec![(CLIENT_PORT, GATEWAY, GATEWAY_MAC, OUR_CLIENT_SIDE)];
    known.extend((0..REAL_SERVERS).map(|i| (SERVER_PORT, real(i).0, real(i).1, OUR_SERVER_SIDE)));
    for (port, ip, mac, src) in known {
        n.resolve(port, Addr::v4(ip), Addr::v4(src), 0);
        let _ = n.learn(port, &Addr::v4(ip), mac, 0);
        assert_eq!(n.get(port, &Addr::v4(ip)), Some(mac));
    }
    n
}

/// Flow `i`'s client: 100.64.0.0/10 + i / 16, port 10000 + i % 16.
fn client(i: u32) -> (Addr, u16) {
    let a = (100u32 << 24 | 64 << 16) + (i >> 4);
    (Addr::v4(a.to_be_bytes()), 10_000 + (i & 15) as u16)
}

/// An Ethernet/IPv4/TCP frame with valid checksums, padded to 60 bytes.
fn frame(src: (Addr, u16), dst: (Addr, u16), syn: bool, ack: bool) -> [u8; FRAME_LEN] {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 9, 9], PORT_MACS[0].0)
        .ipv4(src.0.v4_octets(), dst.0.v4_octets(), 64)
        .tcp(src.1, dst.1, 1000, 64_240);
    let b = if syn { b.syn() } else { b };
    let b = if ack { b.ack(1) } else { b };
    let mut v = Vec::with_capacity(FRAME_LEN);
    b.write(&mut v, &[]).expect("frame");
    let mut f = [0u8; FRAME_LEN];
    f[..v.len()].copy_from_slice(&v);
    f
}

/// One flow's measured frame and what the forwarder must make of it.
struct Flow {
    frame: [u8; FRAME_LEN],
    port: u16,
    /// Expected (source, destination) after rewriting (TUN: of the inner packet), and the new
    /// Ethernet destination.
    out: ((Addr, u16), (Addr, u16), MacAddr),
    /// TUN: the outer destination.
    tunnel_to: Option<Addr>,
}

/// Everything the measured loop uses.
struct Bench {
    snap: Snapshot,
    routes: RouteTable,
    neigh: NeighCache<VecBuf>,
    fwd: Forwarder,
    now: u64,
}

fn forward<const EPOCH: bool>(b: &mut Bench, buf: &mut VecBuf, f: &[u8; FRAME_LEN]) -> Verdict {
    buf.reset(f, VecBuf::DEFAULT_HEADROOM);
    let topo = topo(&b.routes, &b.neigh);
    if EPOCH {
        b.fwd.process(&b.snap, &topo, CLIENT_PORT, buf, b.now)
    } else {
        b.fwd
            .process(&b.snap, &NoEpoch(topo), CLIENT_PORT, buf, b.now)
    }
}

/// Opens `flows` connections with a full handshake and pre-builds the measured frames.
fn setup(mode: Mode, flows: u32) -> (Bench, Vec<Flow>) {
    let fm = mode.fwd_mode();
    let capacity = (flows + flows / 4).next_multiple_of(4).max(64);
    let mut b = Bench {
        snap: snapshot(fm, flows),
        routes: routes(),
        neigh: neighbours(),
        fwd: Forwarder::new(ForwarderConfig {
            table: ConnTableConfig {
                capacity,
                dest_capacity: 64,
                seed: Some(1),
                ..ConnTableConfig::default()
            },
            service_capacity: 4,
            ..ForwarderConfig::default()
        }),
        now: 1_000,
    };
    let mut buf = VecBuf::new(&[0u8; FRAME_LEN]);
    let mut out = Vec::with_capacity(flows as usize);
    let vip = (Addr::v4(VIP), VPORT);
    if mode.is_syn() {
        // No connection opened: each flow's SYN is measured once, and opens one. Only the
        // verdict's port is checked (`run`); `out` is a placeholder, as the scheduler picks the
        // server.
        for i in 0..flows {
            out.push(Flow {
                frame: frame(client(i), vip, true, false),
                port: SERVER_PORT,
                out: (client(i), vip, GATEWAY_MAC),
                tunnel_to: None,
            });
        }
        return (b, out);
    }
    let fwd_ok = |v: Verdict| matches!(v, Verdict::Forward { .. });
    for i in 0..flows {
        let c = client(i);
        let v = forward::<true>(&mut b, &mut buf, &frame(c, vip, true, false));
        assert!(fwd_ok(v), "SYN of flow {i}: {v:?}");
        let key = FlowKey {
            saddr: c.0,
            daddr: vip.0,
            sport: c.1,
            dport: vip.1,
            proto: Proto::Tcp,
        };
        let (id, _) = b.fwd.conns().lookup(&key).expect("connection");
        let conn = *b.fwd.conns().get(id).expect("live");
        let rmac = (0..REAL_SERVERS)
            .map(real)
            .find(|(a, _)| Addr::v4(*a) == conn.real)
            .expect("a real server")
            .1;
        // The server's side of the connection: to the client (NAT) or the local address.
        let towards = match fm {
            FwdMode::FullNat => (conn.local, conn.lport),
            _ => c,
        };
        let server = (conn.real, conn.rport);
        if matches!(fm, FwdMode::Nat | FwdMode::FullNat) {
            let v = forward::<true>(&mut b, &mut buf, &frame(server, towards, true, true));
            assert!(fwd_ok(v), "SYN-ACK of flow {i}: {v:?}");
        }
        let ack = frame(c, vip, false, true);
        let v = forward::<true>(&mut b, &mut buf, &ack);
        assert!(fwd_ok(v), "ACK of flow {i}: {v:?}");
        let flow = match (mode, fm) {
            (Mode::NatReply | Mode::FullNatReply, _) => Flow {
                frame: frame(server, towards, false, true),
                port: CLIENT_PORT,
                out: (vip, c, GATEWAY_MAC),
                tunnel_to: None,
            },
            (_, FwdMode::FullNat) => Flow {
                frame: ack,
                port: SERVER_PORT,
                out: ((conn.local, conn.lport), server, rmac),
                tunnel_to: None,
            },
            (_, FwdMode::Nat) => Flow {
                frame: ack,
                port: SERVER_PORT,
                out: (c, server, rmac),
                tunnel_to: None,
            },
            _ => Flow {
                frame: ack,
                port: SERVER_PORT,
                out: (c, vip, rmac),
                tunnel_to: (fm == FwdMode::Tun).then_some(conn.real),
            },
        };
        out.push(flow);
    }
    let est = b
        .fwd
        .conns()
        .iter()
        .filter(|(_, c)| c.state() == dataplane::conn::ConnState::Established)
        .count();
    assert_eq!(est, flows as usize, "every flow is ESTABLISHED");
    (b, out)
}

/// Forwards `packets` frames round robin over the flows; returns the packets not forwarded to
/// their expected port.
fn run<const EPOCH: bool>(b: &mut Bench, flows: &[Flow], mode: Mode, packets: u64) -> u64 {
    let mut bufs: Vec<VecBuf> = (0..BURST).map(|_| VecBuf::new(&[0u8; FRAME_LEN])).collect();
    let mut verdicts = [Verdict::Kernel; BURST];
    let mut expected = [Verdict::Kernel; BURST];
    let mut wrong = 0u64;
    let mut next = 0usize;
    let mut sent = 0u64;
    while sent < packets {
        let n = (packets - sent).min(BURST as u64) as usize;
        for (buf, want) in bufs.iter_mut().zip(expected.iter_mut()).take(n) {
            let Some(flow) = flows.get(next) else {
                break;
            };
            buf.reset(&flow.frame, VecBuf::DEFAULT_HEADROOM);
            *want = Verdict::Forward { port: flow.port };
            next += 1;
            if next == flows.len() {
                next = 0;
            }
        }
        if mode == Mode::Harness {
            verdicts[..n].copy_from_slice(black_box(&expected[..n]));
        } else {
            let (bufs, verdicts) = (&mut bufs[..n], &mut verdicts[..n]);
            let topo = topo(&b.routes, &b.neigh);
            if EPOCH {
                let t = &topo;
                b.fwd
                    .process_burst(&b.snap, t, &CpuPrefetch, CLIENT_PORT, bufs, verdicts, b.now);
            } else {
                let t = &NoEpoch(topo);
                b.fwd
                    .process_burst(&b.snap, t, &CpuPrefetch, CLIENT_PORT, bufs, verdicts, b.now);
            }
        }
        for (v, want) in verdicts.iter().zip(&expected).take(n) {
            wrong += u64::from(v != want);
        }
        black_box(&bufs);
        sent += n as u64;
        b.now += 1;
    }
    wrong
}

/// Forwards every flow's frame once and checks the result with an independent parser.
fn check(mode: Mode, flows: u32) -> Result<(), String> {
    let (mut b, flows) = setup(mode, flows);
    let mut buf = VecBuf::new(&[0u8; FRAME_LEN]);
    let name = mode.name();
    for (i, flow) in flows.iter().enumerate() {
        let v = forward::<true>(&mut b, &mut buf, &flow.frame);
        if v != (Verdict::Forward { port: flow.port }) {
            return Err(format!("{name} flow {i}: {v:?}"));
        }
        let out = buf.frame();
        let h = PacketHeaders::from_ethernet_slice(out).map_err(|e| format!("{e:?}"))?;
        let Some(etherparse::LinkHeader::Ethernet2(eth)) = h.link else {
            return Err(format!("{name} flow {i}: no Ethernet header"));
        };
        let (ip, tcp) = match (h.net, h.transport) {
            (Some(NetHeaders::Ipv4(ip, _)), t) => (ip, t),
            _ => return Err(format!("{name} flow {i}: not IPv4")),
        };
        let (ip, tcp) = match flow.tunnel_to {
            Some(rip) => {
                let want = (OUR_SERVER_SIDE, rip.v4_octets(), 4);
                if (ip.source, ip.destination, ip.protocol.0) != want
                    || ip.header_checksum != ip.calc_header_checksum()
                {
                    return Err(format!("{name} flow {i}: outer header {ip:?}"));
                }
                let inner =
                    PacketHeaders::from_ip_slice(&out[34..]).map_err(|e| format!("{e:?}"))?;
                match (inner.net, inner.transport) {
                    (Some(NetHeaders::Ipv4(ip, _)), t) => (ip, t),
                    _ => return Err(format!("{name} flow {i}: no inner IPv4 header")),
                }
            }
            None => (ip, tcp),
        };
        let Some(TransportHeader::Tcp(tcp)) = tcp else {
            return Err(format!("{name} flow {i}: no TCP header"));
        };
        let (src, dst, mac) = flow.out;
        let want_ttl = if mode == Mode::Dr { 64 } else { 63 };
        let ok = eth.destination == mac.0
            && eth.source == PORT_MACS[usize::from(flow.port)].0
            && ip.header_checksum == ip.calc_header_checksum()
            && ip.time_to_live == want_ttl
            && (Addr::v4(ip.source), tcp.source_port) == src
            && (Addr::v4(ip.destination), tcp.destination_port) == dst
            && Ok(tcp.checksum) == tcp.calc_checksum_ipv4(&ip, &[]);
        if !ok {
            return Err(format!(
                "{name} flow {i}: {eth:?} {ip:?} {tcp:?}, want {src:?} → {dst:?} at {mac:?}"
            ));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [m, flows, packets] | [m, flows, packets, "no-epoch"] => {
            let (Some(mode), Ok(flows), Ok(packets)) =
                (Mode::parse(m), flows.parse::<u32>(), packets.parse::<u64>())
            else {
                eprintln!("usage: pipeline <mode> <flows> <packets> [no-epoch]");
                return ExitCode::from(2);
            };
            let (mut b, flows) = setup(mode, flows.max(1));
            if mode.is_syn() && packets > flows.len() as u64 {
                eprintln!(
                    "{}: packets must not exceed flows (each SYN a new tuple)",
                    mode.name()
                );
                return ExitCode::from(2);
            }
            let mut wrong = if args.len() == 4 {
                run::<false>(&mut b, &flows, mode, packets)
            } else {
                run::<true>(&mut b, &flows, mode, packets)
            };
            if mode.is_syn() {
                // Every SYN opened its own connection.
                wrong += (packets as usize).abs_diff(b.fwd.conns().len()) as u64;
            }
            if wrong != 0 {
                eprintln!("{}: {wrong} packets not forwarded as expected", mode.name());
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        // `cargo bench` passes `--bench`: verify every mode's output instead of timing.
        [] | ["--bench", ..] | ["check"] | ["check", _] => {
            let flows = match args.as_slice() {
                ["check", n] => n.parse().unwrap_or(1000),
                _ => 1000,
            };
            // The SYN mode's output depends on the scheduler's picks; `run` checks its verdicts
            // and that each SYN opened a connection.
            let measured = |m: &Mode| *m != Mode::Harness && !m.is_syn();
            for mode in Mode::ALL.into_iter().filter(measured) {
                if let Err(e) = check(mode, flows) {
                    eprintln!("check failed: {e}");
                    return ExitCode::FAILURE;
                }
                println!(
                    "{:<14} {flows} flows: every frame rewritten correctly",
                    mode.name()
                );
            }
            println!("instruction counts: benches/callgrind/run.sh");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "usage: pipeline <mode> <flows> <packets> [no-epoch] | pipeline check [flows]"
            );
            ExitCode::from(2)
        }
    }
}
