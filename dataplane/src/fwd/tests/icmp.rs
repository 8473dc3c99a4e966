//! ICMP errors relayed through NAT and FullNAT connections, both ways.

use super::*;

fn unreach(code: u8, rest: u32) -> L4 {
    L4::Icmp { ty: 3, code, rest }
}

#[test]
fn test_nat_error_from_server_side_goes_to_client() {
    let snap = snapshot(
        Proto::Tcp,
        VIP,
        80,
        None,
        &[rs(2, rip(2), 8080, FwdMode::Nat)],
    );
    let mut f = forwarder();
    let syn = syn_in();
    let (_, sent) = run(&mut f, &snap, 0, &syn, 1000);
    // As the client sent it, seen one hop later.
    let orig = frame(
        MAC_P0,
        MAC_ROUTER,
        CLIENT,
        VIP,
        63,
        tcp(40000, 80, SYN),
        b"",
    );
    for quote_len in [40, 28] {
        let err = frame(
            MAC_P1,
            rs_mac(2),
            rip(2),
            CLIENT,
            64,
            unreach(3, 0),
            &ip_of(&sent)[..quote_len],
        );
        let (v, out) = run(&mut f, &snap, 1, &err, 1001);
        assert_eq!(v, Verdict::Forward { port: 0 });
        let want = frame(
            MAC_ROUTER,
            MAC_P0,
            VIP,
            CLIENT,
            63,
            unreach(3, 0),
            &ip_of(&orig)[..quote_len],
        );
        assert_eq!(out, want, "quote of {quote_len} bytes");
        assert_etherparse_valid(&out);
    }
    assert_eq!(f.stats().icmp_relayed.get(), 2);
}

#[test]
fn test_fullnat_errors_both_ways() {
    let snap = fullnat_snapshot();
    let mut f = forwarder();
    let syn = syn_in();
    let (_, sent) = run(&mut f, &snap, 0, &syn, 1000);
    let lport = f.conns().iter().next().unwrap().1.lport;
    let reply = frame(
        MAC_P1,
        rs_mac(4),
        rip(4),
        LIP,
        64,
        tcp(9000, lport, SYN_ACK),
        b"",
    );
    let (_, sent_reply) = run(&mut f, &snap, 1, &reply, 1001);

    // A router on the client path cannot forward our reply: the error goes to the server.
    let err = frame(
        MAC_P0,
        MAC_ROUTER,
        ROUTER,
        VIP,
        64,
        unreach(4, 1400),
        ip_of(&sent_reply),
    );
    let (v, out) = run(&mut f, &snap, 0, &err, 1002);
    assert_eq!(v, Verdict::Forward { port: 1 });
    let as_server_sent = frame(
        MAC_P1,
        rs_mac(4),
        rip(4),
        LIP,
        63,
        tcp(9000, lport, SYN_ACK),
        b"",
    );
    let want = frame(
        rs_mac(4),
        MAC_P1,
        LIP,
        rip(4),
        63,
        unreach(4, 1400),
        ip_of(&as_server_sent),
    );
    assert_eq!(out, want);
    assert_etherparse_valid(&out);

    // The server's side rejects our SYN: the error goes to the client.
    let err = frame(
        MAC_P1,
        rs_mac(4),
        rip(4),
        LIP,
        64,
        unreach(3, 0),
        ip_of(&sent),
    );
    let (v, out) = run(&mut f, &snap, 1, &err, 1003);
    assert_eq!(v, Verdict::Forward { port: 0 });
    let orig = frame(
        MAC_P0,
        MAC_ROUTER,
        CLIENT,
        VIP,
        63,
        tcp(40000, 80, SYN),
        b"",
    );
    let want = frame(
        MAC_ROUTER,
        MAC_P0,
        VIP,
        CLIENT,
        63,
        unreach(3, 0),
        ip_of(&orig),
    );
    assert_eq!(out, want);
    assert_etherparse_valid(&out);
}

#[test]
fn test_unknown_errors_and_echo_go_to_kernel() {
    let snap = snapshot(
        Proto::Tcp,
        VIP,
        80,
        None,
        &[rs(2, rip(2), 8080, FwdMode::Nat)],
    );
    let mut f = forwarder();
    let stray = frame(MAC_P0, MAC_ROUTER, CLIENT, VIP, 64, tcp(1, 80, SYN), b"");
    let err = frame(
        MAC_P0,
        MAC_ROUTER,
        ROUTER,
        VIP,
        64,
        unreach(3, 0),
        ip_of(&stray),
    );
    assert_eq!(run(&mut f, &snap, 0, &err, 1000).0, Verdict::Kernel);
    let echo = L4::Icmp {
        ty: 8,
        code: 0,
        rest: 0x0001_0001,
    };
    let ping = frame(MAC_P0, MAC_ROUTER, CLIENT, VIP, 64, echo, b"ping");
    let (v, out) = run(&mut f, &snap, 0, &ping, 1000);
    assert_eq!((v, out), (Verdict::Kernel, ping));
    assert_eq!(f.stats().kernel.get(), 2);
}
