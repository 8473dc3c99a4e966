//! One-packet scheduling (`ipvsadm -o`): every UDP datagram scheduled on its own, no entry.

use super::*;

const OPS: ServiceFlags = ServiceFlags {
    fallback: false,
    hash_port: false,
    one_packet: true,
};

/// Real servers 1 and 2 on port 53 in `mode`, slots 1 and 2.
fn two(mode: FwdMode) -> [Rs; 2] {
    [rs(1, rip(1), 53, mode), rs(2, rip(2), 53, mode)]
}

/// A DNS query from the client, always from the same port.
fn query(ttl: u8) -> Vec<u8> {
    let udp = L4::Udp {
        sport: 40000,
        dport: 53,
    };
    frame(MAC_P0, MAC_ROUTER, CLIENT, VIP, ttl, udp, b"query")
}

/// Sends ten queries of one tuple; returns the real server (last address byte) of each.
fn ten_queries(f: &mut Forwarder, snap: &Snapshot, tun: bool) -> Vec<u8> {
    (0..10u64)
        .map(|i| {
            let (v, out) = run(f, snap, 0, &query(64), 1000 + i);
            assert_eq!(v, Verdict::Forward { port: 1 });
            assert_etherparse_valid(&out);
            let server = out[5];
            assert_eq!(out[..6], rs_mac(server));
            if tun {
                // Outer destination = the real server; the inner packet is the query, TTL − 1.
                assert_eq!(out[30..34], rip(server).v4_octets());
                assert_eq!(out[34..], *ip_of(&query(63)));
            } else {
                // DR: only the MACs change.
                assert_eq!(out[6..12], MAC_P1);
                assert_eq!(out[12..], query(64)[12..]);
            }
            server
        })
        .collect()
}

fn assert_no_load(f: &Forwarder) {
    for l in &f.conns().loads()[..3] {
        assert_eq!((l.active, l.inactive, l.persistent), (0, 0, 0));
    }
}

#[test]
fn test_ops_dr_spreads_every_datagram() {
    let snap = snapshot_flags(Proto::Udp, VIP, 53, None, OPS, &two(FwdMode::Dr));
    let mut f = forwarder();
    assert_eq!(
        ten_queries(&mut f, &snap, false),
        [1, 2, 1, 2, 1, 2, 1, 2, 1, 2]
    );
    assert_eq!(f.conns().len(), 0);
    assert_no_load(&f);
    let s = f.stats();
    let svc = s.service(3).unwrap();
    assert_eq!((svc.inpkts(), svc.conns.get()), (10, 10));
    assert_eq!(svc.inbytes(), 10 * (20 + 8 + 5));
    for d in [1, 2] {
        let c = s.dest(d).unwrap();
        assert_eq!((c.inpkts(), c.conns.get()), (5, 5));
    }
    assert_eq!((s.forwarded.get(), s.new_conns.get()), (10, 10));
}

#[test]
fn test_without_ops_one_tuple_sticks_to_one_server() {
    let snap = snapshot(Proto::Udp, VIP, 53, None, &two(FwdMode::Dr));
    let mut f = forwarder();
    assert_eq!(ten_queries(&mut f, &snap, false), [1; 10]);
    assert_eq!(f.conns().len(), 1);
    let svc = f.stats().service(3).unwrap();
    assert_eq!((svc.inpkts(), svc.conns.get()), (10, 1));
}

#[test]
fn test_ops_tun_spreads_every_datagram() {
    let snap = snapshot_flags(Proto::Udp, VIP, 53, None, OPS, &two(FwdMode::Tun));
    let mut f = forwarder();
    assert_eq!(
        ten_queries(&mut f, &snap, true),
        [1, 2, 1, 2, 1, 2, 1, 2, 1, 2]
    );
    assert_eq!(f.conns().len(), 0);
    assert_no_load(&f);
    assert_eq!(f.stats().service(3).unwrap().inpkts(), 10);
    // Without the flag: one server, one entry.
    let snap = snapshot(Proto::Udp, VIP, 53, None, &two(FwdMode::Tun));
    let mut f = forwarder();
    assert_eq!(ten_queries(&mut f, &snap, true), [1; 10]);
    assert_eq!(f.conns().len(), 1);
}

#[test]
fn test_ops_with_persistence_keeps_only_the_template() {
    let p = Persistence {
        timeout: 300,
        prefix_len: 24,
    };
    let snap = snapshot_flags(Proto::Udp, VIP, 53, Some(p), OPS, &two(FwdMode::Dr));
    let mut f = forwarder();
    // As in IPVS the template still pins the client network; no connection is kept.
    assert_eq!(ten_queries(&mut f, &snap, false), [1; 10]);
    assert_eq!(f.conns().len(), 1);
    assert!(f.conns().iter().all(|(_, c)| c.is_template()));
    assert_eq!(f.conns().loads()[1].persistent, 1);
    assert_eq!(f.conns().loads()[2].persistent, 0);
    assert_eq!(f.stats().service(3).unwrap().conns.get(), 10);
    // The template expires on its own timeout: nothing holds it.
    f.expire(1000 + 301_000, 16);
    assert_eq!(f.conns().len(), 0);
    assert_no_load(&f);
}

#[test]
fn test_ops_with_nat_falls_back_to_a_connection() {
    let snap = snapshot_flags(Proto::Udp, VIP, 53, None, OPS, &two(FwdMode::Nat));
    let mut f = forwarder();
    let servers: Vec<Addr> = (0..4u64)
        .map(|i| {
            let (v, out) = run(&mut f, &snap, 0, &query(64), 1000 + i);
            assert_eq!(v, Verdict::Forward { port: 1 });
            Addr::v4([out[30], out[31], out[32], out[33]])
        })
        .collect();
    assert_eq!(servers, [rip(1); 4]);
    assert_eq!(f.conns().len(), 1);
}

#[test]
fn test_ops_ignores_tcp() {
    let dests = [
        rs(1, rip(1), 80, FwdMode::Dr),
        rs(2, rip(2), 80, FwdMode::Dr),
    ];
    let snap = snapshot_flags(Proto::Tcp, VIP, 80, None, OPS, &dests);
    let mut f = forwarder();
    let syn = syn_in();
    let (v, out) = run(&mut f, &snap, 0, &syn, 1000);
    assert_eq!(v, Verdict::Forward { port: 1 });
    assert_eq!(out[..6], rs_mac(1));
    assert_eq!(f.conns().len(), 1);
}
