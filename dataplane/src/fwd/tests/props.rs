//! Persistence, quiescing, configuration changes, every drop reason, and a no-panic property.

use super::*;
use crate::flow::FlowKey;
use crate::fwd::{AliasMsg, DropReason, PortRange};
use crate::prefetch::NoPrefetch;
use proptest::prelude::*;

pub(super) fn syn_from(client: Addr, sport: u16, dport: u16) -> Vec<u8> {
    frame(
        MAC_P0,
        MAC_ROUTER,
        client,
        VIP,
        64,
        tcp(sport, dport, SYN),
        b"",
    )
}

/// The real server a NAT SYN was sent to (its destination address).
fn sent_to(out: &[u8]) -> Addr {
    Addr::v4([out[30], out[31], out[32], out[33]])
}

#[test]
fn test_persistence_keeps_client_network_on_one_server() {
    let p = Persistence {
        timeout: 300,
        prefix_len: 24,
    };
    let dests = [
        rs(1, rip(1), 80, FwdMode::Nat),
        rs(2, rip(2), 80, FwdMode::Nat),
        rs(3, rip(3), 80, FwdMode::Nat),
    ];
    let snap = snapshot(Proto::Tcp, VIP, 80, Some(p), &dests);
    let mut f = forwarder();
    let (_, a) = run(&mut f, &snap, 0, &syn_from(CLIENT, 40000, 80), 1000);
    let first = sent_to(&a);
    // Same /24, other ports and hosts: same server although rr would move on.
    for (host, port) in [(1, 40001), (77, 5000), (200, 6000)] {
        let (_, o) = run(
            &mut f,
            &snap,
            0,
            &syn_from(Addr::v4([192, 0, 2, host]), port, 80),
            1001,
        );
        assert_eq!(sent_to(&o), first);
    }
    // Another network is scheduled (rr moves to the next server).
    let (_, o) = run(
        &mut f,
        &snap,
        0,
        &syn_from(Addr::v4([198, 18, 0, 1]), 1, 80),
        1002,
    );
    assert_ne!(sent_to(&o), first);
    let templates = f.conns().iter().filter(|(_, c)| c.is_template()).count();
    assert_eq!(templates, 2);
    // The template's server quiesced: the network is rescheduled, never to it.
    let quiesced: Vec<Rs> = dests
        .iter()
        .map(|r| Rs {
            weight: if r.addr == first { 0 } else { 1 },
            ..*r
        })
        .collect();
    let snap2 = snapshot(Proto::Tcp, VIP, 80, Some(p), &quiesced);
    let (_, o) = run(&mut f, &snap2, 0, &syn_from(CLIENT, 40100, 80), 1003);
    assert_ne!(sent_to(&o), first);
    let (_, o2) = run(
        &mut f,
        &snap2,
        0,
        &syn_from(Addr::v4([192, 0, 2, 9]), 7, 80),
        1004,
    );
    assert_eq!(sent_to(&o2), sent_to(&o), "the new template holds");
}

#[test]
fn test_quiesced_or_removed_server_keeps_existing_flow() {
    let both = [
        rs(1, rip(1), 8080, FwdMode::Nat),
        rs(2, rip(2), 8080, FwdMode::Nat),
    ];
    let snap = snapshot(Proto::Tcp, VIP, 80, None, &both);
    let mut f = forwarder();
    let (_, o) = run(&mut f, &snap, 0, &syn_from(CLIENT, 40000, 80), 1000);
    assert_eq!(sent_to(&o), rip(1));
    let ack = frame(
        MAC_P0,
        MAC_ROUTER,
        CLIENT,
        VIP,
        64,
        tcp(40000, 80, ACK),
        b"more",
    );
    let want = frame(
        rs_mac(1),
        MAC_P1,
        CLIENT,
        rip(1),
        63,
        tcp(40000, 8080, ACK),
        b"more",
    );
    let quiesced = snapshot(
        Proto::Tcp,
        VIP,
        80,
        None,
        &[
            Rs {
                weight: 0,
                ..both[0]
            },
            both[1],
        ],
    );
    let removed = snapshot(Proto::Tcp, VIP, 80, None, &both[1..]);
    for snap in [&quiesced, &removed] {
        let (v, out) = run(&mut f, snap, 0, &ack, 1001);
        assert_eq!(v, Verdict::Forward { port: 1 });
        assert_eq!(out, want);
        for i in 0..3 {
            let (_, o) = run(&mut f, snap, 0, &syn_from(CLIENT, 50000 + i, 80), 1002);
            assert_eq!(
                sent_to(&o),
                rip(2),
                "no new connection to the quiesced server"
            );
        }
    }
}

#[test]
fn test_every_drop_reason_is_counted() {
    let snap = snapshot(
        Proto::Tcp,
        VIP,
        80,
        None,
        &[rs(2, rip(2), 8080, FwdMode::Nat)],
    );
    let mut f = forwarder();
    let expect = |f: &mut Forwarder, snap: &Snapshot, frame: &[u8], want: Verdict| {
        assert_eq!(run(f, snap, 0, frame, 1000).0, want);
    };
    use DropReason::*;
    expect(
        &mut f,
        &snap,
        &syn_from(CLIENT, 1, 81),
        Verdict::Drop(NoService),
    );
    let ack = frame(MAC_P0, MAC_ROUTER, CLIENT, VIP, 64, tcp(1, 80, ACK), b"");
    expect(&mut f, &snap, &ack, Verdict::Drop(NoConnection));
    expect(
        &mut f,
        &snap,
        &syn_from(CLIENT, 1, 80)[..40],
        Verdict::Drop(Malformed),
    );
    let mut later = syn_from(CLIENT, 2, 80);
    later[20..22].copy_from_slice(&[0, 0x10]); // fragment offset 128
    fill_checksums(&mut later);
    expect(&mut f, &snap, &later, Verdict::Drop(Fragment));
    let mut gre = syn_from(CLIENT, 3, 80);
    gre[23] = 47;
    expect(&mut f, &snap, &gre, Verdict::Drop(UnsupportedProto));
    // Not ours: to the director itself, or passing by.
    let mine = frame(MAC_P0, MAC_ROUTER, CLIENT, DIP0, 64, tcp(1, 22, SYN), b"");
    expect(&mut f, &snap, &mine, Verdict::Kernel);
    let mut gre_by = mine.clone();
    gre_by[23] = 47;
    expect(&mut f, &snap, &gre_by, Verdict::Kernel);
    // A real server's answer without a connection (a reply that missed its core, or stale).
    let stale = frame(
        MAC_P1,
        rs_mac(2),
        rip(2),
        LIP,
        64,
        tcp(8080, 3000, ACK),
        b"",
    );
    expect(&mut f, &snap, &stale, Verdict::Drop(ReplyMiss));
    // To a local address without a connection, from elsewhere.
    let stray = frame(
        MAC_P1,
        rs_mac(3),
        rip(3),
        LIP,
        64,
        tcp(8080, 3000, ACK),
        b"",
    );
    expect(&mut f, &snap, &stray, Verdict::Drop(NoConnection));

    let none = snapshot(
        Proto::Tcp,
        VIP,
        80,
        None,
        &[Rs {
            weight: 0,
            ..rs(2, rip(2), 8080, FwdMode::Nat)
        }],
    );
    expect(
        &mut f,
        &none,
        &syn_from(CLIENT, 4, 80),
        Verdict::Drop(NoDest),
    );
    let unroutable = snapshot(
        Proto::Tcp,
        VIP,
        80,
        None,
        &[rs(2, Addr::v4([203, 0, 113, 99]), 80, FwdMode::Nat)],
    );
    expect(
        &mut f,
        &unroutable,
        &syn_from(CLIENT, 5, 80),
        Verdict::Drop(NoRoute),
    );
    for r in [
        NoService,
        NoConnection,
        Malformed,
        Fragment,
        UnsupportedProto,
        NoDest,
        NoRoute,
        ReplyMiss,
    ] {
        let n = if r == NoConnection { 2 } else { 1 };
        assert_eq!(f.stats().drops(r), n, "{}", r.name());
    }
    assert_eq!(f.stats().total_drops(), 9);
}

/// A forwarder configuration with room for `capacity` connections and the local ports
/// `first..=last`.
fn small_fullnat(capacity: u32, first: u16, last: u16) -> ForwarderConfig {
    ForwarderConfig {
        table: ConnTableConfig {
            capacity,
            dest_capacity: 8,
            seed: Some(1),
            ..ConnTableConfig::default()
        },
        ports: PortRange { first, last },
        ..ForwarderConfig::default()
    }
}

#[test]
fn test_table_full_and_no_local_port() {
    let snap = fullnat_snapshot();
    let mut cfg = small_fullnat(4, 3000, 3999);
    let mut f = Forwarder::new(cfg.clone());
    for i in 0..4 {
        assert_eq!(
            run(&mut f, &snap, 0, &syn_from(CLIENT, i, 80), 1000).0,
            Verdict::Forward { port: 1 }
        );
    }
    let v = run(&mut f, &snap, 0, &syn_from(CLIENT, 9, 80), 1000).0;
    assert_eq!(v, Verdict::Drop(DropReason::TableFull));
    assert_eq!(
        f.local_ports().in_use(&LIP),
        4,
        "the port of the failed insert is back"
    );

    cfg.table.capacity = 64;
    cfg.ports = PortRange {
        first: 3000,
        last: 3001,
    };
    let mut f = Forwarder::new(cfg);
    for i in 0..2 {
        assert_eq!(
            run(&mut f, &snap, 0, &syn_from(CLIENT, i, 80), 1000).0,
            Verdict::Forward { port: 1 }
        );
    }
    let v = run(&mut f, &snap, 0, &syn_from(CLIENT, 7, 80), 1000).0;
    assert_eq!(v, Verdict::Drop(DropReason::NoLocalPort));
    assert_eq!(f.stats().drops(DropReason::NoLocalPort), 1);
}

/// A local port whose reply tuple another entry holds (here a NAT alias whose client is the
/// local address) is given back and the next one taken; with every free port's tuple taken,
/// the SYN is dropped for want of a local port, and the taken tuple's entry stays.
#[test]
fn test_fullnat_skips_a_port_whose_reply_tuple_is_taken() {
    let snap = fullnat_snapshot();
    let mut f = Forwarder::new(small_fullnat(16, 3000, 3001));
    f.install(&snap);
    // Reply key rip(4):9000 → LIP:3000, the tuple of the first port the pool hands out.
    let squatter = crate::conn::NewConn {
        proto: Proto::Tcp,
        client: LIP,
        cport: 3000,
        vip: VIP,
        vport: 80,
        local: Addr::UNSPECIFIED,
        lport: 0,
        real: rip(4),
        rport: 9000,
        mode: FwdMode::Nat,
        dest: DestId(4),
        svc: 0,
        template: None,
    };
    let alias = AliasMsg {
        queue: 0,
        owner: 1,
        conn: squatter,
    };
    assert!(f.accept_alias(&alias, 1000));
    let (v, out) = run(&mut f, &snap, 0, &syn_from(CLIENT, 40000, 80), 1000);
    assert_eq!(v, Verdict::Forward { port: 1 });
    assert_eq!(
        (&out[26..30], u16::from_be_bytes([out[34], out[35]])),
        (&LIP.v4_octets()[..], 3001),
        "the SYN leaves from the second port"
    );
    assert_eq!(f.local_ports().in_use(&LIP), 1);
    assert_eq!(f.conns().len(), 2);

    // Only port 3000 is free, and its tuple is still taken.
    let v = run(&mut f, &snap, 0, &syn_from(CLIENT, 40001, 80), 1000).0;
    assert_eq!(v, Verdict::Drop(DropReason::NoLocalPort));
    assert_eq!(f.local_ports().in_use(&LIP), 1, "the tried port is back");
    assert_eq!(f.conns().len(), 2);
    let reply = FlowKey {
        saddr: rip(4),
        daddr: LIP,
        sport: 9000,
        dport: 3000,
        proto: Proto::Tcp,
    };
    let (id, _) = f.conns().lookup(&reply).expect("the alias stays");
    assert!(f.conns().get(id).is_some_and(|c| c.is_alias()));
}

#[test]
fn test_burst_matches_single_calls() {
    let snap = snapshot(
        Proto::Tcp,
        VIP,
        80,
        None,
        &[rs(2, rip(2), 8080, FwdMode::Nat)],
    );
    let mut f = forwarder();
    let mut bufs: Vec<VecBuf> = (0..4)
        .map(|i| VecBuf::new(&syn_from(CLIENT, 100 + i, 80)))
        .collect();
    bufs.push(VecBuf::new(&syn_from(CLIENT, 1, 81)));
    let mut v = [Verdict::Kernel; 5];
    f.process_burst(&snap, &Topo, &NoPrefetch, 0, &mut bufs, &mut v, 1000);
    assert_eq!(&v[..4], &[Verdict::Forward { port: 1 }; 4]);
    assert_eq!(v[4], Verdict::Drop(DropReason::NoService));
    let want = frame(
        rs_mac(2),
        MAC_P1,
        CLIENT,
        rip(2),
        63,
        tcp(102, 8080, SYN),
        b"",
    );
    assert_eq!(bufs[2].frame(), &want[..]);
}

/// A valid frame of some kind for the mutation strategy.
fn seed(kind: u8) -> Vec<u8> {
    match kind % 4 {
        0 => syn_from(CLIENT, 40000, 80),
        1 => frame(
            MAC_P1,
            rs_mac(4),
            rip(4),
            LIP,
            64,
            tcp(9000, 1500, SYN_ACK),
            b"x",
        ),
        2 => {
            let inner = syn_from(CLIENT, 40000, 80);
            frame(
                MAC_P1,
                rs_mac(4),
                rip(4),
                CLIENT,
                64,
                L4::Icmp {
                    ty: 3,
                    code: 3,
                    rest: 0,
                },
                ip_of(&inner),
            )
        }
        _ => frame(
            MAC_P0,
            MAC_ROUTER,
            CLIENT6,
            VIP6,
            64,
            L4::Udp {
                sport: 1,
                dport: 80,
            },
            b"q",
        ),
    }
}

fn all_modes() -> Vec<Snapshot> {
    FwdMode::ALL
        .iter()
        .map(|&m| {
            snapshot(
                Proto::Tcp,
                VIP,
                80,
                None,
                &[rs(4, rip(4), 9000, m), rs(5, rip(9), 80, m)],
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn prop_random_frames_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let snaps = all_modes();
        let mut f = forwarder();
        for s in &snaps {
            let mut b = VecBuf::new(&bytes);
            let v = f.process(s, &Topo, 0, &mut b, 1000);
            let bad = matches!(v, Verdict::Forward { port } if port > 1);
            prop_assert!(!bad, "verdict {:?}", v);
        }
    }

    #[test]
    fn prop_mutated_and_truncated_frames_never_panic(
        kind in any::<u8>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let snaps = all_modes();
        let mut f = forwarder();
        let mut fr = seed(kind);
        for (i, x) in flips {
            let j = i.index(fr.len());
            fr[j] ^= x;
        }
        let n = cut.index(fr.len() + 1);
        for s in &snaps {
            // Establish a flow first so mutated packets can hit connections.
            let _ = run(&mut f, s, 0, &syn_from(CLIENT, 40000, 80), 1000);
            for frame in [&fr[..], &fr[..n]] {
                let mut b = VecBuf::with_room(frame, 20, 256);
                let v = f.process(s, &Topo, 0, &mut b, 1001);
                match v {
                    Verdict::Forward { port } | Verdict::Resolve { port, .. } => prop_assert!(port <= 1),
                    Verdict::Kernel | Verdict::Drop(_) => {}
                }
            }
        }
        let s = f.stats();
        let total = s.forwarded.get() + s.kernel.get() + s.total_drops();
        prop_assert_eq!(total, 4 * 3);
    }

    /// A burst gives exactly what the same frames one by one give, also when a frame of the
    /// burst opens, closes, reuses or answers a connection another frame of the burst hits
    /// (the probes of the staged passes go stale and must be redone).
    #[test]
    fn prop_burst_equals_one_by_one(
        mode in 0usize..4,
        seq in prop::collection::vec((0u16..5, 0usize..6), 1..80),
    ) {
        let snap = two_servers(FwdMode::ALL[mode]);
        let frames: Vec<Vec<u8>> = seq
            .iter()
            .map(|&(flow, kind)| {
                let cport = 40000 + flow;
                match kind {
                    0 | 1 => syn_from(CLIENT, cport, 80),
                    2 => frame(MAC_P0, MAC_ROUTER, CLIENT, VIP, 64, tcp(cport, 80, ACK), b"x"),
                    3 => frame(MAC_P0, MAC_ROUTER, CLIENT, VIP, 64, tcp(cport, 80, 0x11), b""),
                    4 => frame(MAC_P0, MAC_ROUTER, CLIENT, VIP, 64, tcp(cport, 80, 0x04), b""),
                    // A NAT reply of real server 4 (a miss in other modes or for server 5).
                    _ => frame(MAC_P1, rs_mac(4), rip(4), CLIENT, 64, tcp(9000, cport, SYN_ACK), b""),
                }
            })
            .collect();
        let (one, single) = one_by_one(&snap, &frames);
        let mut burst = forwarder();
        let mut bufs: Vec<VecBuf> = frames.iter().map(|f| VecBuf::new(f)).collect();
        let mut v = vec![Verdict::Kernel; frames.len()];
        burst.process_burst(&snap, &Topo, &NoPrefetch, 1, &mut bufs, &mut v, 1000);
        same_as_one_by_one(&single, (&v, &bufs), (&one, &burst))?;
    }

    /// On established connections of every mode (the burst's fast path), a burst gives exactly
    /// what the same frames one by one give: client data, FIN and RST, server replies, a bare
    /// SYN reusing the ports, an expiring TTL, with and without the egress cache.
    #[test]
    fn prop_burst_equals_one_by_one_established(
        mode in 0usize..4,
        cached in any::<bool>(),
        seq in prop::collection::vec((0u16..4, 0usize..7), 1..80),
    ) {
        let snap = two_servers(FwdMode::ALL[mode]);
        let topo = Epoch(cached.then_some(1));
        let (mut one, mut burst) = (forwarder(), forwarder());
        for cport in 40000..40004 {
            for f in [&syn_from(CLIENT, cport, 80), &client(cport, ACK, 64)] {
                for fwd in [&mut one, &mut burst] {
                    fwd.process(&snap, &topo, 0, &mut VecBuf::new(f), 1000);
                }
            }
        }
        let frames: Vec<Vec<u8>> = seq
            .iter()
            .map(|&(flow, kind)| {
                let cport = 40000 + flow;
                let c = one
                    .conns()
                    .iter()
                    .map(|(_, c)| *c)
                    .find(|c| c.cport == cport)
                    .unwrap();
                let (to, to_port) = if c.mode == FwdMode::FullNat {
                    (c.local, c.lport)
                } else {
                    (CLIENT, cport)
                };
                let reply = |flags| {
                    frame(MAC_P1, rs_mac(4), c.real, to, 64, tcp(c.rport, to_port, flags), b"r")
                };
                match kind {
                    0 => client(cport, ACK, 64),
                    1 => client(cport, 0x11, 64),
                    2 => client(cport, 0x04, 64),
                    3 => reply(ACK),
                    4 => reply(0x11),
                    5 => syn_from(CLIENT, cport, 80),
                    _ => client(cport, ACK, 1),
                }
            })
            .collect();
        let mut single = Vec::new();
        for f in &frames {
            let mut b = VecBuf::with_room(f, 20, 256);
            let v = one.process(&snap, &topo, 1, &mut b, 1001);
            single.push((v, b.frame().to_vec()));
        }
        let mut bufs: Vec<VecBuf> = frames.iter().map(|f| VecBuf::with_room(f, 20, 256)).collect();
        let mut v = vec![Verdict::Kernel; frames.len()];
        burst.process_burst(&snap, &topo, &NoPrefetch, 1, &mut bufs, &mut v, 1001);
        same_as_one_by_one(&single, (&v, &bufs), (&one, &burst))?;
        let list = |f: &Forwarder| {
            let mut l: Vec<_> = f.conns().iter().map(|(_, c)| (*c, c.state())).collect();
            l.sort_by_key(|(c, _)| (c.cport, c.is_template()));
            l
        };
        prop_assert_eq!(list(&one), list(&burst));
        let (a, b) = (one.stats(), burst.stats());
        let traffic = |s: &crate::fwd::FwdStats| {
            [s.service(3), s.dest(4), s.dest(5)].map(|t| {
                t.map(|t| [t.conns.get(), t.inpkts(), t.outpkts(), t.inbytes(), t.outbytes()])
            })
        };
        prop_assert_eq!(traffic(a), traffic(b));
    }
}

/// The test service with real servers 4 and 5 (port 9000) in `mode`.
pub(super) fn two_servers(mode: FwdMode) -> Snapshot {
    let dests = [rs(4, rip(4), 9000, mode), rs(5, rip(5), 9000, mode)];
    snapshot(Proto::Tcp, VIP, 80, None, &dests)
}

/// A client packet of flow `cport` with `flags` and `ttl`.
pub(super) fn client(cport: u16, flags: u8, ttl: u8) -> Vec<u8> {
    frame(
        MAC_P0,
        MAC_ROUTER,
        CLIENT,
        VIP,
        ttl,
        tcp(cport, 80, flags),
        b"x",
    )
}

/// The test topology with an epoch (`Some`: the egress cache is used).
struct Epoch(Option<u64>);

impl Topology for Epoch {
    fn route(&self, dst: &Addr) -> Option<Route> {
        Topo.route(dst)
    }

    fn neighbour(&self, port: u16, ip: &Addr) -> Option<MacAddr> {
        Topo.neighbour(port, ip)
    }

    fn epoch(&self) -> Option<u64> {
        self.0
    }
}

/// An established connection's packet with no TTL to spare leaves the fast path (every common
/// frame has some) and gets the general path's verdict through a burst: the routed modes drop
/// it as TTL exceeded, DR, which does not route, forwards it; the connection stays.
#[test]
fn test_established_packet_without_ttl_to_spare() {
    for mode in FwdMode::ALL {
        let snap = two_servers(mode);
        let mut f = forwarder();
        for frame in [syn_from(CLIENT, 40000, 80), client(40000, ACK, 64)] {
            f.process(&snap, &Topo, 0, &mut VecBuf::new(&frame), 1000);
        }
        let mut bufs = vec![
            VecBuf::new(&client(40000, ACK, 1)),
            VecBuf::new(&client(40000, ACK, 64)),
        ];
        let mut v = [Verdict::Kernel; 2];
        f.process_burst(&snap, &Topo, &NoPrefetch, 0, &mut bufs, &mut v, 1001);
        let dying = match mode {
            FwdMode::Dr => Verdict::Forward { port: 1 },
            _ => Verdict::Drop(DropReason::TtlExceeded),
        };
        assert_eq!(v, [dying, Verdict::Forward { port: 1 }], "{mode:?}");
        let exceeded = u64::from(mode != FwdMode::Dr);
        assert_eq!(
            f.stats().drops(DropReason::TtlExceeded),
            exceeded,
            "{mode:?}"
        );
        assert_eq!(f.conns().len(), 1, "{mode:?}");
    }
}
