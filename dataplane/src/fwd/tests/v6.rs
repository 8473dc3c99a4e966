//! IPv6 fixtures: DR, NAT and FullNAT both ways, TUN refused, ICMPv6 relay.

use super::*;
use crate::fwd::DropReason;

fn syn6() -> Vec<u8> {
    frame(
        MAC_P0,
        MAC_ROUTER,
        CLIENT6,
        VIP6,
        64,
        tcp(40000, 80, SYN),
        b"",
    )
}

#[test]
fn test_dr_v6() {
    let snap = snapshot(
        Proto::Tcp,
        VIP6,
        80,
        None,
        &[rs(1, rip6(1), 80, FwdMode::Dr)],
    );
    let mut f = forwarder();
    let (v, out) = run(&mut f, &snap, 0, &syn6(), 1000);
    assert_eq!(v, Verdict::Forward { port: 1 });
    assert_eq!(
        out,
        frame(
            rs_mac(1),
            MAC_P1,
            CLIENT6,
            VIP6,
            64,
            tcp(40000, 80, SYN),
            b""
        )
    );
    assert_etherparse_valid(&out);
}

#[test]
fn test_nat_v6_both_directions() {
    let snap = snapshot(
        Proto::Tcp,
        VIP6,
        80,
        None,
        &[rs(2, rip6(2), 8080, FwdMode::Nat)],
    );
    let mut f = forwarder();
    let (v, out) = run(&mut f, &snap, 0, &syn6(), 1000);
    assert_eq!(v, Verdict::Forward { port: 1 });
    let want = frame(
        rs_mac(2),
        MAC_P1,
        CLIENT6,
        rip6(2),
        63,
        tcp(40000, 8080, SYN),
        b"",
    );
    assert_eq!(out, want);
    assert_etherparse_valid(&out);
    let reply = frame(
        MAC_P1,
        rs_mac(2),
        rip6(2),
        CLIENT6,
        64,
        tcp(8080, 40000, SYN_ACK),
        b"ok",
    );
    let (v, out) = run(&mut f, &snap, 1, &reply, 1001);
    assert_eq!(v, Verdict::Forward { port: 0 });
    let want = frame(
        MAC_ROUTER,
        MAC_P0,
        VIP6,
        CLIENT6,
        63,
        tcp(80, 40000, SYN_ACK),
        b"ok",
    );
    assert_eq!(out, want);
    assert_etherparse_valid(&out);
}

#[test]
fn test_fullnat_v6_udp_both_directions() {
    let snap = snapshot(
        Proto::Udp,
        VIP6,
        53,
        None,
        &[rs(4, rip6(4), 5300, FwdMode::FullNat)],
    );
    let mut f = forwarder();
    let q = L4::Udp {
        sport: 5353,
        dport: 53,
    };
    let query = frame(MAC_P0, MAC_ROUTER, CLIENT6, VIP6, 64, q, b"query");
    let (v, out) = run(&mut f, &snap, 0, &query, 1000);
    assert_eq!(v, Verdict::Forward { port: 1 });
    let (_, c) = f.conns().iter().next().unwrap();
    let lport = c.lport;
    assert_eq!(c.local, LIP6);
    let tz = Toeplitz::new(&MS_DEFAULT_KEY);
    let h = tz.hash_v6(&rip6(4).0, &LIP6.0, 5300, lport);
    assert_eq!(RetaMap::new(128, 4).unwrap().queue(h), 1);
    let fwd = L4::Udp {
        sport: lport,
        dport: 5300,
    };
    assert_eq!(
        out,
        frame(rs_mac(4), MAC_P1, LIP6, rip6(4), 63, fwd, b"query")
    );
    assert_etherparse_valid(&out);
    let back = L4::Udp {
        sport: 5300,
        dport: lport,
    };
    let answer = frame(MAC_P1, rs_mac(4), rip6(4), LIP6, 64, back, b"answer");
    let (v, out) = run(&mut f, &snap, 1, &answer, 1001);
    assert_eq!(v, Verdict::Forward { port: 0 });
    let to_client = L4::Udp {
        sport: 53,
        dport: 5353,
    };
    assert_eq!(
        out,
        frame(MAC_ROUTER, MAC_P0, VIP6, CLIENT6, 63, to_client, b"answer")
    );
    assert_etherparse_valid(&out);
}

#[test]
fn test_tun_v6_is_refused() {
    let snap = snapshot(
        Proto::Tcp,
        VIP6,
        80,
        None,
        &[rs(6, rip(3), 80, FwdMode::Tun)],
    );
    let mut f = forwarder();
    let (v, out) = run(&mut f, &snap, 0, &syn6(), 1000);
    assert_eq!(v, Verdict::Drop(DropReason::TunnelFamily));
    assert_eq!(out, syn6());
    assert_eq!(f.stats().drops(DropReason::TunnelFamily), 1);
}

#[test]
fn test_icmpv6_error_relayed_to_client() {
    let snap = snapshot(
        Proto::Tcp,
        VIP6,
        80,
        None,
        &[rs(2, rip6(2), 8080, FwdMode::Nat)],
    );
    let mut f = forwarder();
    let (_, sent) = run(&mut f, &snap, 0, &syn6(), 1000);
    let unreach = L4::Icmp {
        ty: 1,
        code: 4,
        rest: 0,
    };
    let err = frame(
        MAC_P1,
        rs_mac(2),
        rip6(2),
        CLIENT6,
        64,
        unreach,
        ip_of(&sent),
    );
    let (v, out) = run(&mut f, &snap, 1, &err, 1001);
    assert_eq!(v, Verdict::Forward { port: 0 });
    let orig = frame(
        MAC_P0,
        MAC_ROUTER,
        CLIENT6,
        VIP6,
        63,
        tcp(40000, 80, SYN),
        b"",
    );
    let want = frame(MAC_ROUTER, MAC_P0, VIP6, CLIENT6, 63, unreach, ip_of(&orig));
    assert_eq!(out, want);
    assert_etherparse_valid(&out);
}
