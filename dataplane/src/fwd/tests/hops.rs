//! The per-real-server egress cache: used while (snapshot generation, topology epoch) holds,
//! refreshed when either changes, never used without an epoch, never used for a slot shared by
//! two real servers' connections.

use std::cell::Cell;

use super::*;
use crate::conn::tcp_flags;
use crate::fwd::DropReason;
use crate::prefetch::NoPrefetch;

/// The test topology with a neighbour table that can change, and an epoch.
struct Changing {
    /// The MAC of real server 1 (`None`: unresolved).
    mac: Cell<Option<[u8; 6]>>,
    /// Real server 1's egress port.
    port: Cell<u16>,
    epoch: Cell<Option<u64>>,
}

impl Topology for Changing {
    fn route(&self, dst: &Addr) -> Option<Route> {
        let r = Topo.route(dst)?;
        Some(if *dst == rip(1) {
            Route {
                port: self.port.get(),
                ..r
            }
        } else {
            r
        })
    }

    fn neighbour(&self, port: u16, ip: &Addr) -> Option<MacAddr> {
        if *ip == rip(1) {
            return self.mac.get().map(MacAddr);
        }
        Topo.neighbour(port, ip)
    }

    fn epoch(&self) -> Option<u64> {
        self.epoch.get()
    }
}

/// The client's packet from port `sport` to the VIP with TCP flags `flags`.
fn packet(sport: u16, flags: u8) -> Vec<u8> {
    frame(
        MAC_P0,
        MAC_ROUTER,
        CLIENT,
        VIP,
        64,
        tcp(sport, 80, flags),
        b"",
    )
}

fn ack(sport: u16) -> Vec<u8> {
    packet(sport, ACK)
}

fn syn(sport: u16) -> Vec<u8> {
    packet(sport, SYN)
}

/// Forwards `f` and returns the verdict and the destination MAC written.
fn send<T: Topology>(
    f: &mut Forwarder,
    snap: &Snapshot,
    t: &T,
    frame: &[u8],
) -> (Verdict, [u8; 6]) {
    let mut b = VecBuf::new(frame);
    let v = f.process(snap, t, 0, &mut b, 1000);
    let mut mac = [0; 6];
    mac.copy_from_slice(&b.frame()[..6]);
    (v, mac)
}

#[test]
fn test_cached_hop_follows_epoch_and_generation() {
    let dests = [rs(5, rip(1), 80, FwdMode::Dr)];
    let snap = snapshot(Proto::Tcp, VIP, 80, None, &dests);
    let t = Changing {
        mac: Cell::new(Some(rs_mac(1))),
        port: Cell::new(1),
        epoch: Cell::new(Some(7)),
    };
    let mut f = forwarder();
    let fwd1 = Verdict::Forward { port: 1 };
    assert_eq!(send(&mut f, &snap, &t, &syn(1000)), (fwd1, rs_mac(1)));
    // The neighbour changes but the epoch says nothing did: the cached hop is used.
    t.mac.set(Some([2, 0, 0, 0, 9, 9]));
    assert_eq!(send(&mut f, &snap, &t, &ack(1000)), (fwd1, rs_mac(1)));
    // A new epoch: looked up again.
    t.epoch.set(Some(8));
    assert_eq!(
        send(&mut f, &snap, &t, &ack(1000)),
        (fwd1, [2, 0, 0, 0, 9, 9])
    );
    // Unresolved: resolve, and nothing is cached (the next packet looks up again).
    t.mac.set(None);
    t.epoch.set(Some(9));
    let resolve = Verdict::Resolve {
        port: 1,
        next_hop: rip(1),
    };
    assert_eq!(send(&mut f, &snap, &t, &ack(1000)).0, resolve);
    t.mac.set(Some(rs_mac(1)));
    assert_eq!(send(&mut f, &snap, &t, &ack(1000)), (fwd1, rs_mac(1)));
    // A route change comes with a new snapshot: the same configuration, a new generation.
    t.port.set(2);
    assert_eq!(send(&mut f, &snap, &t, &ack(1000)), (fwd1, rs_mac(1)));
    let snap2 = snapshot(Proto::Tcp, VIP, 80, None, &dests);
    assert_eq!(
        send(&mut f, &snap2, &t, &ack(1000)),
        (Verdict::Forward { port: 2 }, rs_mac(1))
    );
    assert_eq!(f.stats().drops(DropReason::NoRoute), 0);
}

#[test]
fn test_no_epoch_no_cache() {
    let snap = snapshot(Proto::Tcp, VIP, 80, None, &[rs(5, rip(1), 80, FwdMode::Dr)]);
    let t = Changing {
        mac: Cell::new(Some(rs_mac(1))),
        port: Cell::new(1),
        epoch: Cell::new(None),
    };
    let mut f = forwarder();
    assert_eq!(send(&mut f, &snap, &t, &syn(1000)).1, rs_mac(1));
    t.mac.set(Some([2, 0, 0, 0, 9, 9]));
    assert_eq!(send(&mut f, &snap, &t, &ack(1000)).1, [2, 0, 0, 0, 9, 9]);
}

#[test]
fn test_cached_and_uncached_frames_are_identical() {
    for mode in [FwdMode::Dr, FwdMode::Nat, FwdMode::FullNat, FwdMode::Tun] {
        let snap = snapshot(Proto::Tcp, VIP, 80, None, &[rs(5, rip(1), 8080, mode)]);
        let (mut a, mut b) = (forwarder(), forwarder());
        let cached = Changing {
            mac: Cell::new(Some(rs_mac(1))),
            port: Cell::new(1),
            epoch: Cell::new(Some(1)),
        };
        for i in 0..6u16 {
            let f = if i % 3 == 0 {
                syn(2000 + i / 3)
            } else {
                ack(2000 + i / 3)
            };
            let (mut x, mut y) = (VecBuf::new(&f), VecBuf::new(&f));
            let va = a.process(&snap, &cached, 0, &mut x, 1000);
            let vb = b.process(&snap, &Topo, 0, &mut y, 1000);
            assert_eq!((va, x.frame()), (vb, y.frame()), "{mode} packet {i}");
            assert_eq!(va, Verdict::Forward { port: 1 });
        }
    }
}

/// A NAT reply of real server 1 to the client, for the connection `syn(sport)` opened.
fn nat_reply(sport: u16) -> Vec<u8> {
    frame(
        MAC_P1,
        rs_mac(1),
        rip(1),
        CLIENT,
        64,
        tcp(80, sport, ACK),
        b"",
    )
}

/// The test topology whose gateway (`ROUTER`, the clients' next hop) changes MAC, with an epoch.
struct Gateway {
    mac: Cell<Option<[u8; 6]>>,
    epoch: Cell<Option<u64>>,
}

impl Topology for Gateway {
    fn route(&self, dst: &Addr) -> Option<Route> {
        Topo.route(dst)
    }

    fn neighbour(&self, port: u16, ip: &Addr) -> Option<MacAddr> {
        if *ip == ROUTER {
            return self.mac.get().map(MacAddr);
        }
        Topo.neighbour(port, ip)
    }

    fn epoch(&self) -> Option<u64> {
        self.epoch.get()
    }
}

#[test]
fn test_reply_next_hop_follows_epoch_and_generation() {
    let dests = [rs(5, rip(1), 80, FwdMode::Nat)];
    let snap = snapshot(Proto::Tcp, VIP, 80, None, &dests);
    let t = Gateway {
        mac: Cell::new(Some(MAC_ROUTER)),
        epoch: Cell::new(Some(7)),
    };
    let mut f = forwarder();
    let reply = |f: &mut Forwarder, snap: &Snapshot, sport: u16| {
        let mut b = VecBuf::new(&nat_reply(sport));
        let v = f.process(snap, &t, 1, &mut b, 1000);
        let mut macs = [0; 12];
        macs.copy_from_slice(&b.frame()[..12]);
        (v, macs)
    };
    let fwd0 = Verdict::Forward { port: 0 };
    let via = |mac: [u8; 6]| {
        let mut m = [0; 12];
        m[..6].copy_from_slice(&mac);
        m[6..].copy_from_slice(&MAC_P0);
        m
    };
    for sport in [1000, 1001] {
        let mut b = VecBuf::new(&syn(sport));
        f.process(&snap, &t, 0, &mut b, 1000);
    }
    assert_eq!(reply(&mut f, &snap, 1000), (fwd0, via(MAC_ROUTER)));
    // Another connection's reply, the same gateway: remembered while the epoch holds.
    t.mac.set(Some([2, 0, 0, 0, 9, 9]));
    assert_eq!(reply(&mut f, &snap, 1001), (fwd0, via(MAC_ROUTER)));
    t.epoch.set(Some(8));
    assert_eq!(reply(&mut f, &snap, 1001), (fwd0, via([2, 0, 0, 0, 9, 9])));
    // Unresolved: resolve, remember nothing; resolved again under a new epoch: its new MAC.
    t.mac.set(None);
    t.epoch.set(Some(9));
    let resolve = Verdict::Resolve {
        port: 0,
        next_hop: ROUTER,
    };
    assert_eq!(reply(&mut f, &snap, 1000).0, resolve);
    t.mac.set(Some(MAC_ROUTER));
    assert_eq!(reply(&mut f, &snap, 1000), (fwd0, via(MAC_ROUTER)));
    // A new snapshot (a new generation) looks up again, even under the same epoch.
    t.mac.set(Some([2, 0, 0, 0, 7, 7]));
    let snap2 = snapshot(Proto::Tcp, VIP, 80, None, &dests);
    assert_eq!(reply(&mut f, &snap2, 1000), (fwd0, via([2, 0, 0, 0, 7, 7])));
    // Without an epoch nothing is remembered.
    t.epoch.set(None);
    t.mac.set(Some(MAC_ROUTER));
    assert_eq!(reply(&mut f, &snap2, 1001), (fwd0, via(MAC_ROUTER)));
}

/// The test topology with real server 2's MAC changeable, under one epoch.
struct Moving {
    mac2: Cell<[u8; 6]>,
}

impl Topology for Moving {
    fn route(&self, dst: &Addr) -> Option<Route> {
        Topo.route(dst)
    }

    fn neighbour(&self, port: u16, ip: &Addr) -> Option<MacAddr> {
        if *ip == rip(2) {
            return Some(MacAddr(self.mac2.get()));
        }
        Topo.neighbour(port, ip)
    }

    fn epoch(&self) -> Option<u64> {
        Some(1)
    }
}

/// A slot handed to another real server while a connection of the previous one lives on: each
/// connection's packets still reach its own server, one by one and in bursts; the slot's hop
/// is checked by address until the old connection is gone, then by its stamp alone.
#[test]
fn test_slot_given_to_another_server_while_connections_live() {
    let t = Moving {
        mac2: Cell::new(rs_mac(2)),
    };
    let send = |f: &mut Forwarder, snap: &Snapshot, frame: &[u8]| send(f, snap, &t, frame);
    let fwd1 = Verdict::Forward { port: 1 };
    let mut f = forwarder();
    let before = snapshot(Proto::Tcp, VIP, 80, None, &[rs(5, rip(1), 80, FwdMode::Dr)]);
    assert_eq!(send(&mut f, &before, &packet(1000, SYN)), (fwd1, rs_mac(1)));
    assert!(f.mixed_dests().is_empty());
    // Slot 5 goes to real server 2; the connection to server 1 stays.
    let after = snapshot(Proto::Tcp, VIP, 80, None, &[rs(5, rip(2), 80, FwdMode::Dr)]);
    assert_eq!(send(&mut f, &after, &packet(1000, ACK)), (fwd1, rs_mac(1)));
    assert_eq!(f.mixed_dests(), [DestId(5)]);
    assert_eq!(send(&mut f, &after, &packet(1001, SYN)), (fwd1, rs_mac(2)));
    let frames = [1000, 1001, 1000, 1001, 1001, 1000].map(|p| packet(p, ACK));
    let mut bufs: Vec<VecBuf> = frames.iter().map(|fr| VecBuf::new(fr)).collect();
    let mut v = [Verdict::Drop(DropReason::Malformed); 6];
    f.process_burst(&after, &t, &NoPrefetch, 0, &mut bufs, &mut v, 1000);
    let macs: Vec<&[u8]> = bufs.iter().map(|b| &b.frame()[..6]).collect();
    let (one, two) = (&rs_mac(1)[..], &rs_mac(2)[..]);
    assert_eq!(macs, [one, two, one, two, two, one]);
    assert!(v.iter().all(|v| *v == fwd1));
    // While the slot is mixed, its hop is cached for one address at a time and checked by
    // address: server 2's MAC changes unseen while its hop holds (the epoch has not moved) ...
    assert_eq!(send(&mut f, &after, &packet(1001, ACK)).1, rs_mac(2));
    t.mac2.set([2, 0, 0, 0, 9, 9]);
    assert_eq!(send(&mut f, &after, &packet(1001, ACK)).1, rs_mac(2));
    // ... and a packet of server 1 takes the hop over, so server 2's is looked up again.
    assert_eq!(send(&mut f, &after, &packet(1000, ACK)).1, rs_mac(1));
    let moved = [2, 0, 0, 0, 9, 9];
    assert_eq!(send(&mut f, &after, &packet(1001, ACK)).1, moved);
    t.mac2.set(rs_mac(2));
    // The old connection resets and expires (CLOSE: 10 s); the new one is established.
    assert_eq!(
        send(&mut f, &after, &packet(1000, tcp_flags::RST)).1,
        rs_mac(1)
    );
    f.expire(1000 + 11_000, 16);
    assert_eq!(f.conns().len(), 1);
    assert!(f.mixed_dests().is_empty());
    // The slot is no longer mixed: its hop is recorded by the next packet, then kept while the
    // epoch and the generation hold.
    assert_eq!(send(&mut f, &after, &packet(1001, ACK)), (fwd1, rs_mac(2)));
    t.mac2.set([2, 0, 0, 0, 9, 9]);
    assert_eq!(send(&mut f, &after, &packet(1001, ACK)), (fwd1, rs_mac(2)));
}
