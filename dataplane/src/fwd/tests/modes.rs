//! IPv4 fixtures for DR, NAT, TUN and FullNAT in both directions.

use super::*;
use crate::conn::ConnState;
use crate::fwd::{AliasMsg, DropReason};

#[test]
fn test_dr_rewrites_macs_only() {
    let snap = snapshot(Proto::Tcp, VIP, 80, None, &[rs(5, rip(1), 80, FwdMode::Dr)]);
    let mut f = forwarder();
    let (v, out) = run(&mut f, &snap, 0, &syn_in(), 1000);
    assert_eq!(v, Verdict::Forward { port: 1 });
    let want = frame(rs_mac(1), MAC_P1, CLIENT, VIP, 64, tcp(40000, 80, SYN), b"");
    assert_eq!(out, want);
    assert_etherparse_valid(&out);
    // TTL 1 is not decremented in DR.
    let ack = frame(
        MAC_P0,
        MAC_ROUTER,
        CLIENT,
        VIP,
        1,
        tcp(40000, 80, ACK),
        b"data",
    );
    let (v, out) = run(&mut f, &snap, 0, &ack, 1001);
    assert_eq!(v, Verdict::Forward { port: 1 });
    assert_eq!(
        out,
        frame(
            rs_mac(1),
            MAC_P1,
            CLIENT,
            VIP,
            1,
            tcp(40000, 80, ACK),
            b"data"
        )
    );
    let st = f.stats();
    let d = st.dest(5).unwrap();
    assert_eq!((d.conns.get(), d.inpkts(), d.inbytes()), (1, 2, 40 + 44));
    assert_eq!(d.outpkts(), 0);
    assert_eq!(st.service(3).unwrap().conns.get(), 1);
    assert_eq!(f.conns().len(), 1);
    let (_, c) = f.conns().iter().next().unwrap();
    assert_eq!(c.state(), ConnState::Established);
}

#[test]
fn test_nat_both_directions() {
    let snap = snapshot(
        Proto::Tcp,
        VIP,
        80,
        None,
        &[rs(2, rip(2), 8080, FwdMode::Nat)],
    );
    let mut f = forwarder();
    let (v, out) = run(&mut f, &snap, 0, &syn_in(), 1000);
    assert_eq!(v, Verdict::Forward { port: 1 });
    let want = frame(
        rs_mac(2),
        MAC_P1,
        CLIENT,
        rip(2),
        63,
        tcp(40000, 8080, SYN),
        b"",
    );
    assert_eq!(out, want);
    assert_etherparse_valid(&out);

    let reply = frame(
        MAC_P1,
        rs_mac(2),
        rip(2),
        CLIENT,
        64,
        tcp(8080, 40000, SYN_ACK),
        b"",
    );
    let (v, out) = run(&mut f, &snap, 1, &reply, 1001);
    assert_eq!(v, Verdict::Forward { port: 0 });
    let want = frame(
        MAC_ROUTER,
        MAC_P0,
        VIP,
        CLIENT,
        63,
        tcp(80, 40000, SYN_ACK),
        b"",
    );
    assert_eq!(out, want);
    assert_etherparse_valid(&out);

    let ack = frame(
        MAC_P0,
        MAC_ROUTER,
        CLIENT,
        VIP,
        64,
        tcp(40000, 80, ACK),
        b"GET /",
    );
    let (_, out) = run(&mut f, &snap, 0, &ack, 1002);
    let want = frame(
        rs_mac(2),
        MAC_P1,
        CLIENT,
        rip(2),
        63,
        tcp(40000, 8080, ACK),
        b"GET /",
    );
    assert_eq!(out, want);
    let d = f.stats().dest(2).unwrap();
    assert_eq!((d.inpkts(), d.inbytes()), (2, 40 + 45));
    assert_eq!((d.outpkts(), d.outbytes()), (1, 40));
    let (_, c) = f.conns().iter().next().unwrap();
    assert_eq!(c.state(), ConnState::Established);
}

#[test]
fn test_nat_udp_keeps_zero_checksum() {
    let snap = snapshot(
        Proto::Udp,
        VIP,
        53,
        None,
        &[rs(2, rip(2), 5300, FwdMode::Nat)],
    );
    let mut f = forwarder();
    let mut q = frame(
        MAC_P0,
        MAC_ROUTER,
        CLIENT,
        VIP,
        64,
        L4::Udp {
            sport: 5353,
            dport: 53,
        },
        b"query",
    );
    q[40..42].copy_from_slice(&[0, 0]);
    let (v, out) = run(&mut f, &snap, 0, &q, 1000);
    assert_eq!(v, Verdict::Forward { port: 1 });
    let mut want = frame(
        rs_mac(2),
        MAC_P1,
        CLIENT,
        rip(2),
        63,
        L4::Udp {
            sport: 5353,
            dport: 5300,
        },
        b"query",
    );
    want[40..42].copy_from_slice(&[0, 0]);
    assert_eq!(out, want);
    assert_etherparse_valid(&out);
    // A reply with a real checksum comes back with a correct one.
    let r = frame(
        MAC_P1,
        rs_mac(2),
        rip(2),
        CLIENT,
        64,
        L4::Udp {
            sport: 5300,
            dport: 5353,
        },
        b"answer",
    );
    let (v, out) = run(&mut f, &snap, 1, &r, 1001);
    assert_eq!(v, Verdict::Forward { port: 0 });
    let want = frame(
        MAC_ROUTER,
        MAC_P0,
        VIP,
        CLIENT,
        63,
        L4::Udp {
            sport: 53,
            dport: 5353,
        },
        b"answer",
    );
    assert_eq!(out, want);
}

#[test]
fn test_fullnat_both_directions_and_port_release() {
    let snap = fullnat_snapshot();
    let mut f = forwarder();
    let (v, out) = run(&mut f, &snap, 0, &syn_in(), 1000);
    assert_eq!(v, Verdict::Forward { port: 1 });
    let (_, c) = f.conns().iter().next().unwrap();
    let lport = c.lport;
    assert_eq!(c.local, LIP);
    assert!(lport >= 1024);
    let tz = Toeplitz::new(&MS_DEFAULT_KEY);
    let reta = RetaMap::new(128, 4).unwrap();
    let h = tz.hash_v4(rip(4).v4_octets(), LIP.v4_octets(), 9000, lport);
    assert_eq!(reta.queue(h), 1, "the reply must reach this core's queue");
    let want = frame(
        rs_mac(4),
        MAC_P1,
        LIP,
        rip(4),
        63,
        tcp(lport, 9000, SYN),
        b"",
    );
    assert_eq!(out, want);
    assert_etherparse_valid(&out);

    let reply = frame(
        MAC_P1,
        rs_mac(4),
        rip(4),
        LIP,
        64,
        tcp(9000, lport, SYN_ACK),
        b"hi",
    );
    let (v, out) = run(&mut f, &snap, 1, &reply, 1001);
    assert_eq!(v, Verdict::Forward { port: 0 });
    let want = frame(
        MAC_ROUTER,
        MAC_P0,
        VIP,
        CLIENT,
        63,
        tcp(80, 40000, SYN_ACK),
        b"hi",
    );
    assert_eq!(out, want);
    assert_etherparse_valid(&out);

    // The SYN_RECV connection expires after its timeout and gives its port back.
    assert_eq!(f.local_ports().in_use(&LIP), 1);
    let r = f.expire(1001 + 3_600_000, 64);
    assert_eq!(r.removed, 1);
    assert_eq!(f.local_ports().in_use(&LIP), 0);
    assert_eq!(f.stats().expired.get(), 1);
}

#[test]
fn test_fullnat_many_clients_unique_ports_on_queue() {
    let snap = fullnat_snapshot();
    let mut f = forwarder();
    let tz = Toeplitz::new(&MS_DEFAULT_KEY);
    let reta = RetaMap::new(128, 4).unwrap();
    for i in 0..500u16 {
        let syn = frame(
            MAC_P0,
            MAC_ROUTER,
            CLIENT,
            VIP,
            64,
            tcp(10000 + i, 80, SYN),
            b"",
        );
        assert_eq!(
            run(&mut f, &snap, 0, &syn, 1000).0,
            Verdict::Forward { port: 1 }
        );
    }
    let mut ports = std::collections::HashSet::new();
    for (_, c) in f.conns().iter() {
        assert!(ports.insert(c.lport));
        let h = tz.hash_v4(c.real.v4_octets(), c.local.v4_octets(), c.rport, c.lport);
        assert_eq!(reta.queue(h), 1);
    }
    assert_eq!(ports.len(), 500);
}

/// The TUN output: Ethernet, the outer header built field by field, the inner packet with TTL − 1.
fn tun_want(inner: &[u8], id: u16, df: bool) -> Vec<u8> {
    let mut w = Vec::new();
    w.extend_from_slice(&rs_mac(3));
    w.extend_from_slice(&MAC_P1);
    w.extend_from_slice(&[0x08, 0x00, 0x45, 0x00]);
    w.extend_from_slice(&((20 + inner.len()) as u16).to_be_bytes());
    w.extend_from_slice(&id.to_be_bytes());
    w.extend_from_slice(&[if df { 0x40 } else { 0 }, 0, 64, 4, 0, 0]);
    w.extend_from_slice(&DIP1.v4_octets());
    w.extend_from_slice(&rip(3).v4_octets());
    w.extend_from_slice(inner);
    fill_checksums(&mut w);
    w
}

#[test]
fn test_tun_encapsulates_with_outer_header() {
    let snap = snapshot(
        Proto::Tcp,
        VIP,
        80,
        None,
        &[rs(6, rip(3), 80, FwdMode::Tun)],
    );
    let mut f = forwarder();
    let (v, out) = run(&mut f, &snap, 0, &syn_in(), 1000);
    assert_eq!(v, Verdict::Forward { port: 1 });
    let inner = frame(rs_mac(3), MAC_P1, CLIENT, VIP, 63, tcp(40000, 80, SYN), b"");
    assert_eq!(out, tun_want(ip_of(&inner), 1, true));
    assert_etherparse_valid(&out);
    // The inner packet verifies on its own.
    let mut alone = out[..14].to_vec();
    alone.extend_from_slice(&out[34..]);
    assert_eq!(alone, inner);
    assert_etherparse_valid(&alone);
    // The next packet gets the next identification.
    let ack = frame(
        MAC_P0,
        MAC_ROUTER,
        CLIENT,
        VIP,
        9,
        tcp(40000, 80, ACK),
        b"x",
    );
    let (_, out) = run(&mut f, &snap, 0, &ack, 1001);
    let inner = frame(rs_mac(3), MAC_P1, CLIENT, VIP, 8, tcp(40000, 80, ACK), b"x");
    assert_eq!(out, tun_want(ip_of(&inner), 2, true));
}

#[test]
fn test_tun_too_big_sends_frag_needed() {
    let snap = snapshot(
        Proto::Tcp,
        VIP,
        80,
        None,
        &[rs(6, rip(3), 80, FwdMode::Tun)],
    );
    for df in [true, false] {
        let mut f = forwarder();
        assert_eq!(
            run(&mut f, &snap, 0, &syn_in(), 1000).0,
            Verdict::Forward { port: 1 }
        );
        let mut big = frame(
            MAC_P0,
            MAC_ROUTER,
            CLIENT,
            VIP,
            64,
            tcp(40000, 80, ACK),
            &[0xab; 1460],
        );
        if !df {
            big[20] = 0;
            fill_checksums(&mut big);
        }
        let (v, out) = run(&mut f, &snap, 0, &big, 1001);
        assert_eq!(v, Verdict::Forward { port: 0 });
        let quote = &ip_of(&big)[..548];
        let icmp = L4::Icmp {
            ty: 3,
            code: 4,
            rest: 1480,
        };
        let mut want = frame(MAC_ROUTER, MAC_P0, DIP0, CLIENT, 64, icmp, quote);
        want[15] = 0xc0; // TOS of ICMP errors
        want[18..22].copy_from_slice(&[0, 2, 0, 0]); // next ID after the SYN's; no DF
        fill_checksums(&mut want);
        assert_eq!(out, want);
        assert_etherparse_valid(&out);
        assert_eq!(f.stats().frag_needed_sent.get(), 1);
    }
}

#[test]
fn test_ttl_exceeded_and_unresolved_neighbour() {
    let snap = snapshot(
        Proto::Tcp,
        VIP,
        80,
        None,
        &[rs(2, rip(9), 8080, FwdMode::Nat)],
    );
    let mut f = forwarder();
    let dying = frame(MAC_P0, MAC_ROUTER, CLIENT, VIP, 1, tcp(40000, 80, SYN), b"");
    assert_eq!(
        run(&mut f, &snap, 0, &dying, 1000).0,
        Verdict::Drop(DropReason::TtlExceeded)
    );
    assert_eq!(
        f.conns().len(),
        0,
        "no connection for a packet that dies here"
    );
    assert_eq!(f.stats().drops(DropReason::TtlExceeded), 1);
    // Real server 9's MAC is unknown: L3 is rewritten, the worker must resolve it.
    let (v, out) = run(&mut f, &snap, 0, &syn_in(), 1000);
    assert_eq!(
        v,
        Verdict::Resolve {
            port: 1,
            next_hop: rip(9)
        }
    );
    let want = frame(
        MAC_P0,
        MAC_P1,
        CLIENT,
        rip(9),
        63,
        tcp(40000, 8080, SYN),
        b"",
    );
    assert_eq!(out, want);
    assert_eq!(f.stats().forwarded.get(), 1);
}

/// A forwarder like [`forwarder`] on another receive queue of the same 4.
fn forwarder_on(queue: u16) -> Forwarder {
    Forwarder::new(ForwarderConfig {
        table: ConnTableConfig {
            capacity: 1024,
            dest_capacity: 64,
            seed: Some(9),
            ..ConnTableConfig::default()
        },
        service_capacity: 16,
        rss: Some(RssTarget {
            toeplitz: Arc::new(Toeplitz::new(&MS_DEFAULT_KEY)),
            reta: Arc::new(RetaMap::new(128, 4).unwrap()),
            queue,
        }),
        ..ForwarderConfig::default()
    })
}

#[test]
fn test_nat_reply_alias_for_the_core_rss_picks() {
    let snap = snapshot(
        Proto::Tcp,
        VIP,
        80,
        None,
        &[rs(2, rip(2), 8080, FwdMode::Nat)],
    );
    let tz = Toeplitz::new(&MS_DEFAULT_KEY);
    let reta = RetaMap::new(128, 4).unwrap();
    let queue_of =
        |cport: u16| reta.queue(tz.hash_v4(rip(2).v4_octets(), CLIENT.v4_octets(), 8080, cport));
    // One client port whose replies stay on queue 1, one whose replies go elsewhere.
    let home = (30000..31000).find(|&p| queue_of(p) == 1).unwrap();
    let away = (30000..31000).find(|&p| queue_of(p) != 1).unwrap();
    let mut owner = forwarder();
    for cport in [home, away] {
        let syn = frame(
            MAC_P0,
            MAC_ROUTER,
            CLIENT,
            VIP,
            64,
            tcp(cport, 80, SYN),
            b"",
        );
        assert_eq!(
            run(&mut owner, &snap, 0, &syn, 1000).0,
            Verdict::Forward { port: 1 }
        );
    }
    let msgs: Vec<AliasMsg> = owner.drain_aliases().collect();
    assert_eq!(
        msgs.len(),
        1,
        "only the connection whose replies leave queue 1"
    );
    assert_eq!((msgs[0].queue, msgs[0].owner), (queue_of(away), 1));
    assert_eq!(msgs[0].conn.cport, away);
    assert_eq!(owner.stats().aliases_sent.get(), 1);
    assert_eq!(owner.drain_aliases().count(), 0);

    // The other core indexes the reply direction and rewrites the real server's answer.
    let mut other = forwarder_on(msgs[0].queue);
    other.install(&snap);
    let reply = frame(
        MAC_P1,
        rs_mac(2),
        rip(2),
        CLIENT,
        64,
        tcp(8080, away, SYN_ACK),
        b"",
    );
    assert_eq!(
        run(&mut other, &snap, 1, &reply, 1001).0,
        Verdict::Drop(DropReason::ReplyMiss),
        "without the alias the reply is a miss"
    );
    assert!(other.accept_alias(&msgs[0], 1001));
    let (v, out) = run(&mut other, &snap, 1, &reply, 1002);
    assert_eq!(v, Verdict::Forward { port: 0 });
    let want = frame(
        MAC_ROUTER,
        MAC_P0,
        VIP,
        CLIENT,
        63,
        tcp(80, away, SYN_ACK),
        b"",
    );
    assert_eq!(out, want);
    assert_etherparse_valid(&out);
    assert_eq!(other.stats().aliases_accepted.get(), 1);
    assert_eq!(
        other.conns().loads()[2].conns(),
        0,
        "an alias is not counted as a connection"
    );
}

#[test]
fn test_syn_on_closing_connection_is_scheduled_afresh() {
    let snap = snapshot(
        Proto::Tcp,
        VIP,
        80,
        None,
        &[
            rs(5, rip(1), 80, FwdMode::Dr),
            rs(6, rip(2), 80, FwdMode::Dr),
        ],
    );
    let mut f = forwarder();
    let to = |out: &[u8]| out[0..6].to_vec();
    let (_, first) = run(&mut f, &snap, 0, &syn_in(), 1000);
    let ack = frame(
        MAC_P0,
        MAC_ROUTER,
        CLIENT,
        VIP,
        64,
        tcp(40000, 80, ACK),
        b"",
    );
    run(&mut f, &snap, 0, &ack, 1001);
    // A SYN retransmitted on an open connection stays with it.
    let (_, again) = run(&mut f, &snap, 0, &syn_in(), 1002);
    assert_eq!(to(&again), to(&first));
    assert_eq!(f.stats().service(3).unwrap().conns.get(), 1);
    // The client closes; a new SYN on the same ports is a new connection (rr: the other server).
    let fin = frame(
        MAC_P0,
        MAC_ROUTER,
        CLIENT,
        VIP,
        64,
        tcp(40000, 80, 0x11),
        b"",
    );
    run(&mut f, &snap, 0, &fin, 1003);
    let (_, c) = f.conns().iter().next().unwrap();
    assert!(
        matches!(
            c.state(),
            ConnState::FinWait | ConnState::CloseWait | ConnState::TimeWait
        ),
        "{:?}",
        c.state()
    );
    let (v, reopened) = run(&mut f, &snap, 0, &syn_in(), 1004);
    assert_eq!(v, Verdict::Forward { port: 1 });
    assert_ne!(to(&reopened), to(&first));
    assert_eq!(f.stats().service(3).unwrap().conns.get(), 2);
    assert_eq!(f.stats().reused.get(), 1);
    assert_eq!(f.conns().len(), 1);
    let (_, c) = f.conns().iter().next().unwrap();
    assert_eq!(c.state(), ConnState::SynRecv);
}
