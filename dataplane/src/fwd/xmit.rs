//! Transmit per forwarding mode: the rewrite of a frame of a known connection and the egress
//! decision (route, MACs, or a neighbour to resolve), as IPVS's `ip_vs_*_xmit` functions do.

use super::forwarder::Forwarder;
use super::hop::{Hop, HopStamp};
use super::rewrite::{fullnat_head_v4_summed, nat, nat_head_v4_summed, set_macs};
use super::snapshot::{SnapDest, Snapshot};
use super::{DropReason, Route, Topology, Verdict};
use crate::buf::PacketBuf;
use crate::conn::{Conn, Dir};
use crate::flow::Addr;
use crate::model::FwdMode;
use crate::sched::DestId;
use crate::wire::icmpv4::emit_frag_needed;
use crate::wire::ipip::{encapsulate, OVERHEAD};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::{EmitError, Ipv4TcpHead, L3Kind, MacAddr, ParsedFrame};

/// The first 12 bytes of an Ethernet header: `dst` then `src`.
fn mac_pair(dst: MacAddr, src: MacAddr) -> [u8; 12] {
    let mut m = [0; 12];
    m[..6].copy_from_slice(&dst.0);
    m[6..].copy_from_slice(&src.0);
    m
}

/// Sets the MACs for `route` and picks the verdict: forward, or resolve the next hop first.
#[inline(always)]
pub(super) fn egress<T: Topology + ?Sized>(topo: &T, frame: &mut [u8], route: &Route) -> Verdict {
    egress_via(frame, route, topo.neighbour(route.port, &route.next_hop))
}

/// [`egress`] with the next hop's MAC already looked up (`None`: not resolved yet).
#[inline(always)]
fn egress_via(frame: &mut [u8], route: &Route, next_hop_mac: Option<MacAddr>) -> Verdict {
    match next_hop_mac {
        Some(mac) => {
            set_macs(frame, mac, route.mac);
            Verdict::Forward { port: route.port }
        }
        None => {
            if let Some(src) = frame.get_mut(6..12) {
                src.copy_from_slice(&route.mac.0);
            }
            Verdict::Resolve {
                port: route.port,
                next_hop: route.next_hop,
            }
        }
    }
}

/// Routes towards `dst` and finishes the frame for it.
#[inline(always)]
pub(super) fn route_to<T: Topology + ?Sized>(topo: &T, frame: &mut [u8], dst: &Addr) -> Verdict {
    match topo.route(dst) {
        Some(r) => egress(topo, frame, &r),
        None => Verdict::Drop(DropReason::NoRoute),
    }
}

/// Rewrites and routes a packet of connection `c` travelling in `dir`, for every mode but TUN
/// in the original direction (that one needs the forwarder: [`Forwarder::xmit_tun`]). `hops`
/// and `stamp` are the forwarder's egress cache and its [`HopStamp`].
#[inline(always)]
pub(super) fn xmit<T: Topology + ?Sized>(
    hops: &mut [Hop],
    stamp: u64,
    topo: &T,
    frame: &mut [u8],
    pf: &ParsedFrame,
    c: &Conn,
    dir: Dir,
) -> Verdict {
    let packet = (pf.l3 == L3Kind::Ipv4, pf.ttl);
    xmit_with(
        hops,
        stamp,
        topo,
        frame,
        packet,
        c,
        dir,
        |frame, src, dst| nat(frame, pf, src, dst, true),
    )
}

/// [`xmit`] for the frame an [`Ipv4TcpHead`] describes (the established fast path): the same
/// checks in the same order, decisions and bytes, with the rewrite at the head's fixed offsets
/// and the connection's address changes summed once, when it was created
/// ([`Conn::nat_sum`]).
/// Each mode's rewrite is its own call, so that which legs change is known where it is inlined;
/// the verdict goes straight to `v` (see [`reply_to_into`]).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn xmit_ipv4_tcp<T: Topology + ?Sized>(
    hops: &mut [Hop],
    stamp: u64,
    topo: &T,
    frame: &mut [u8],
    h: &Ipv4TcpHead,
    c: &Conn,
    dir: Dir,
    v: &mut Verdict,
) {
    if (c.mode, dir) == (FwdMode::Dr, Dir::Original) {
        return to_real_into(hops, stamp, topo, frame, c.dest, &c.real, v);
    }
    rewritten(hops, stamp, topo, frame, h, c, dir, v);
}

/// [`xmit_ipv4_tcp`] past DR's client packets: the rewrite ([`rewrite_ipv4_tcp`]), then the
/// egress through the hop cache ([`egress_rewritten`]). The fast path calls it from its own
/// dispatch on the mode.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn rewritten<T: Topology + ?Sized>(
    hops: &mut [Hop],
    stamp: u64,
    topo: &T,
    frame: &mut [u8],
    h: &Ipv4TcpHead,
    c: &Conn,
    dir: Dir,
    v: &mut Verdict,
) {
    match rewrite_ipv4_tcp(frame, h, c, dir) {
        Ok(()) => egress_rewritten(hops, stamp, topo, frame, c, dir, v),
        Err(e) => *v = e,
    }
}

/// The egress of a packet [`rewrite_ipv4_tcp`] rewrote: towards the real server, or the client.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn egress_rewritten<T: Topology + ?Sized>(
    hops: &mut [Hop],
    stamp: u64,
    topo: &T,
    frame: &mut [u8],
    c: &Conn,
    dir: Dir,
    v: &mut Verdict,
) {
    match dir {
        Dir::Original => to_real_into(hops, stamp, topo, frame, c.dest, &c.real, v),
        Dir::Reply => reply_to_into(hops, stamp, topo, frame, &c.client, v),
    }
}

/// The rewrite [`xmit_ipv4_tcp`] makes (for every mode but DR and TUN client packets), apart
/// from the egress: a caller that needs no cache until after it can then read the cache's
/// address after the frame's writes, rather than hold it across them.
#[inline(always)]
fn rewrite_ipv4_tcp(frame: &mut [u8], h: &Ipv4TcpHead, c: &Conn, dir: Dir) -> Result<(), Verdict> {
    let leg = |a: &Addr, port: u16| Some((a.v4_octets(), port));
    match (c.mode, dir) {
        (FwdMode::Nat, Dir::Original) => routable_v4(frame, h, &c.real, None)
            .map(|head| nat_head_v4_summed(head, None, leg(&c.real, c.rport), c.nat_sum())),
        (FwdMode::Nat, Dir::Reply) => routable_v4(frame, h, &c.client, Some(&c.vip))
            .map(|head| nat_head_v4_summed(head, leg(&c.vip, c.vport), None, c.reply_nat_sum())),
        (FwdMode::FullNat, Dir::Original) => {
            routable_v4(frame, h, &c.real, Some(&c.local)).map(|head| {
                let addrs = (c.local.v4_octets(), c.real.v4_octets());
                let ports = wire_ports(c.lport, c.rport);
                fullnat_head_v4_summed(head, addrs, ports, c.nat_sum())
            })
        }
        (FwdMode::FullNat, Dir::Reply) => {
            routable_v4(frame, h, &c.client, Some(&c.vip)).map(|head| {
                let addrs = (c.vip.v4_octets(), c.client.v4_octets());
                let ports = wire_ports(c.vport, c.cport);
                fullnat_head_v4_summed(head, addrs, ports, c.reply_nat_sum())
            })
        }
        // DR client packets are not rewritten (the caller sends them first); DR and TUN
        // replies bypass the director, so their reply keys are never indexed.
        (FwdMode::Dr, Dir::Original) => Ok(()),
        (FwdMode::Dr | FwdMode::Tun, Dir::Reply) | (FwdMode::Tun, Dir::Original) => {
            Err(Verdict::Drop(DropReason::NoConnection))
        }
    }
}

/// A source and a destination port as the wire has them, one after the other.
#[inline(always)]
fn wire_ports(sport: u16, dport: u16) -> [u8; 4] {
    // Built as a client packet's pair lies in its entry (`lport` then `rport`), then rotated:
    // the compiler loads that pair as one word.
    let pair = u32::from(sport) | (u32::from(dport) << 16);
    pair.rotate_left(16).to_be_bytes()
}

/// The checks [`xmit_with`] makes before a rewrite, for the common frame: the packet has TTL
/// to spare and its 54-byte head is there to rewrite. `xmit_with`'s family check (the packet
/// goes `toward` an IPv4 address from IPv4 `src`) holds by construction here: the packet's
/// addresses matched the connection's IPv4 key, and a connection's addresses share one family
/// (`Forwarder::new_conn` refuses a real server of the other family, and `LocalPorts::alloc`
/// takes a local address of the real server's).
#[inline(always)]
fn routable_v4<'f>(
    frame: &'f mut [u8],
    h: &Ipv4TcpHead,
    toward: &Addr,
    src: Option<&Addr>,
) -> Result<&'f mut [u8; 54], Verdict> {
    debug_assert!(toward.is_v4() && src.is_none_or(Addr::is_v4));
    // `Ipv4TcpHead::read` takes only frames with TTL to spare.
    debug_assert!(h.ttl > 1);
    frame
        .first_chunk_mut::<54>()
        .ok_or(Verdict::Drop(DropReason::Malformed))
}

/// The body of [`xmit`]: `(v4, ttl)` describe the packet, and `rewrite(frame, src, dst)` sets
/// its new source and/or destination address:port and decrements its TTL (false: the frame is
/// too short).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn xmit_with<T: Topology + ?Sized>(
    hops: &mut [Hop],
    stamp: u64,
    topo: &T,
    frame: &mut [u8],
    (v4, ttl): (bool, u8),
    c: &Conn,
    dir: Dir,
    rewrite: impl FnOnce(&mut [u8], Option<(Addr, u16)>, Option<(Addr, u16)>) -> bool,
) -> Verdict {
    let (src, dst, toward) = match (c.mode, dir) {
        (FwdMode::Dr, Dir::Original) => return to_real(hops, stamp, topo, frame, c.dest, &c.real),
        (FwdMode::Nat, Dir::Original) => (None, Some((c.real, c.rport)), c.real),
        (FwdMode::Nat, Dir::Reply) => (Some((c.vip, c.vport)), None, c.client),
        (FwdMode::FullNat, Dir::Original) => {
            (Some((c.local, c.lport)), Some((c.real, c.rport)), c.real)
        }
        (FwdMode::FullNat, Dir::Reply) => {
            (Some((c.vip, c.vport)), Some((c.client, c.cport)), c.client)
        }
        // DR and TUN replies bypass the director; their reply keys are never indexed.
        (FwdMode::Dr | FwdMode::Tun, Dir::Reply) | (FwdMode::Tun, Dir::Original) => {
            return Verdict::Drop(DropReason::NoConnection)
        }
    };
    if toward.is_v4() != v4 || src.is_some_and(|(a, _)| a.is_v4() != v4) {
        return Verdict::Drop(DropReason::FamilyMismatch);
    }
    if ttl <= 1 {
        return Verdict::Drop(DropReason::TtlExceeded);
    }
    if !rewrite(frame, src, dst) {
        return Verdict::Drop(DropReason::Malformed);
    }
    match dir {
        Dir::Original => to_real(hops, stamp, topo, frame, c.dest, &toward),
        Dir::Reply => reply_to(hops, stamp, topo, frame, &toward),
    }
}

/// [`route_to`] for a reply towards client `dst`. The route is looked up (clients are many),
/// but its next hop's MACs come from the last slot of `hops` while the stamp (snapshot
/// generation and topology epoch), the next hop and the port are those recorded there: replies mostly
/// leave through one gateway, whose neighbour lookup this saves.
#[inline(always)]
fn reply_to<T: Topology + ?Sized>(
    hops: &mut [Hop],
    stamp: u64,
    topo: &T,
    frame: &mut [u8],
    dst: &Addr,
) -> Verdict {
    let mut v = Verdict::Kernel;
    reply_to_into(hops, stamp, topo, frame, dst, &mut v);
    v
}

/// [`reply_to`] writing its verdict to `v`: the cached case stores a `Forward` verdict's two
/// fields and no more (a returned verdict is built whole on the stack and copied).
#[inline(always)]
fn reply_to_into<T: Topology + ?Sized>(
    hops: &mut [Hop],
    stamp: u64,
    topo: &T,
    frame: &mut [u8],
    dst: &Addr,
    v: &mut Verdict,
) {
    let Some(route) = topo.route(dst) else {
        *v = Verdict::Drop(DropReason::NoRoute);
        return;
    };
    if let (Some(_), Some(m)) = (topo.epoch(), hops.last()) {
        if m.holds_for(stamp, &route.next_hop) && m.port == route.port {
            m.set_macs(frame);
            *v = Verdict::Forward { port: m.port };
            return;
        }
    }
    let next_hop = route.next_hop;
    *v = egress_recording(hops.last_mut(), stamp, topo, frame, next_hop, &route);
}

/// [`route_to`] the real server `real` in slot `dest`, through the slot's cached hop when the
/// topology allows caching; a forwarded packet refreshes the cache.
#[inline(always)]
fn to_real<T: Topology + ?Sized>(
    hops: &mut [Hop],
    stamp: u64,
    topo: &T,
    frame: &mut [u8],
    dest: DestId,
    real: &Addr,
) -> Verdict {
    let mut v = Verdict::Kernel;
    to_real_into(hops, stamp, topo, frame, dest, real, &mut v);
    v
}

/// [`to_real`] writing its verdict to `v` (see [`reply_to_into`]).
#[inline(always)]
pub(super) fn to_real_into<T: Topology + ?Sized>(
    hops: &mut [Hop],
    stamp: u64,
    topo: &T,
    frame: &mut [u8],
    dest: DestId,
    real: &Addr,
    v: &mut Verdict,
) {
    if let Some(h) = cached_hop(hops, stamp, topo, dest, real) {
        h.set_macs(frame);
        *v = Verdict::Forward { port: h.port };
        return;
    }
    *v = to_real_uncached(hops, stamp, topo, frame, dest, real);
}

/// [`to_real`] without a cached hop: out of line, so that the cached case, every packet but
/// the first of an epoch, keeps its registers (and writes only a `Forward` verdict).
#[cold]
#[inline(never)]
fn to_real_uncached<T: Topology + ?Sized>(
    hops: &mut [Hop],
    stamp: u64,
    topo: &T,
    frame: &mut [u8],
    dest: DestId,
    real: &Addr,
) -> Verdict {
    if let Some(h) = mixed_hop(hops, stamp, topo, dest, real) {
        h.set_macs(frame);
        return Verdict::Forward { port: h.port };
    }
    match topo.route(real) {
        Some(route) => egress_to_real(hops, stamp, topo, frame, dest, real, &route),
        None => Verdict::Drop(DropReason::NoRoute),
    }
}

/// How a packet leaves towards a real server: through its cached hop, or along a route just
/// looked up.
enum Way {
    Cached(Hop),
    Route(Route),
}

/// The hop of slot `dest` if `holds` accepts it. (`topo` only says whether it caches at all,
/// which for a given topology type is known when this is compiled: the check costs nothing.)
#[inline(always)]
fn slot_hop<T: Topology + ?Sized>(
    hops: &[Hop],
    topo: &T,
    dest: DestId,
    holds: impl FnOnce(&Hop) -> bool,
) -> Option<Hop> {
    topo.epoch()?;
    let h = hops.get(dest.index())?;
    holds(h).then_some(*h)
}

/// The cached egress towards real server `real` in slot `dest`, if it was recorded under
/// `stamp`: by the slot's address, which is `real`'s unless the slot is mixed, whose hop never
/// matches here (see [`mixed_hop`]).
#[inline(always)]
pub(super) fn cached_hop<T: Topology + ?Sized>(
    hops: &[Hop],
    stamp: u64,
    topo: &T,
    dest: DestId,
    real: &Addr,
) -> Option<Hop> {
    slot_hop(hops, topo, dest, |h| {
        let hit = h.holds(stamp);
        debug_assert!(
            !hit || h.addr == *real,
            "slot {dest:?}: hop for {:?}, not {real:?}",
            h.addr
        );
        hit
    })
}

/// The cached egress towards real server `real` in slot `dest` while the slot is mixed
/// (`hop.rs`): recorded for that address under `stamp`. Out-of-line paths only.
fn mixed_hop<T: Topology + ?Sized>(
    hops: &[Hop],
    stamp: u64,
    topo: &T,
    dest: DestId,
    real: &Addr,
) -> Option<Hop> {
    slot_hop(hops, topo, dest, |h| h.holds_mixed(stamp, real))
}

/// [`egress`] along `route` towards real server `real` in slot `dest`, recording the hop in
/// the cache when the topology allows caching and the next hop's MAC is known.
#[inline(always)]
fn egress_to_real<T: Topology + ?Sized>(
    hops: &mut [Hop],
    stamp: u64,
    topo: &T,
    frame: &mut [u8],
    dest: DestId,
    real: &Addr,
    route: &Route,
) -> Verdict {
    egress_recording(hops.get_mut(dest.index()), stamp, topo, frame, *real, route)
}

/// [`egress`] along `route`, recording in `slot` the hop for `addr` (a real server, or the next
/// hop of replies) when the topology allows caching and the next hop's MAC is known. Out of
/// line: it runs when the cache misses.
#[inline(never)]
fn egress_recording<T: Topology + ?Sized>(
    slot: Option<&mut Hop>,
    stamp: u64,
    topo: &T,
    frame: &mut [u8],
    addr: Addr,
    route: &Route,
) -> Verdict {
    let mac = topo.neighbour(route.port, &route.next_hop);
    // `topo.epoch()` as well as the stamp: for a topology type that never caches, this is
    // known when it is compiled, and the recording goes.
    let caching = topo.epoch().is_some() && stamp != HopStamp::OFF;
    if let (Some(mac), Some(h), true) = (mac, slot, caching) {
        *h = Hop {
            stamp: h.stamp_to_record(stamp),
            addr,
            port: route.port,
            macs: mac_pair(mac, route.mac),
        };
    }
    egress_via(frame, route, mac)
}

impl Forwarder {
    /// Sends a packet that has no connection (one-packet scheduling) to real server `d`: DR
    /// re-addresses the frame to the server's MAC, TUN encapsulates it; neither rewrites the
    /// packet, so nothing is needed from a connection entry. Other modes are refused.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub(super) fn xmit_stateless<B: PacketBuf + ?Sized, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        in_port: u16,
        buf: &mut B,
        pf: &ParsedFrame,
        d: &SnapDest,
    ) -> Verdict {
        match d.mode {
            FwdMode::Dr => {
                let (hops, stamp) = (&mut self.hops, self.hop_stamp.current());
                to_real(hops, stamp, topo, buf.frame_mut(), d.id, &d.addr)
            }
            FwdMode::Tun => self.xmit_tun(snap, topo, in_port, buf, pf, d.id, &d.addr),
            FwdMode::Nat | FwdMode::FullNat => Verdict::Drop(DropReason::NoConnection),
        }
    }

    /// IPVS "tunnel": IPv4-in-IPv4 from the director's address on the egress port to `real`.
    /// A packet that would exceed the egress MTU once encapsulated is answered with ICMP
    /// fragmentation-needed (next-hop MTU = MTU − 20) whether or not DF is set: the director does
    /// not fragment, and a sender without DF still lowers its path MTU on that error.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub(super) fn xmit_tun<B: PacketBuf + ?Sized, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        in_port: u16,
        buf: &mut B,
        pf: &ParsedFrame,
        dest: DestId,
        real: &Addr,
    ) -> Verdict {
        if pf.l3 != L3Kind::Ipv4 || !real.is_v4() {
            return Verdict::Drop(DropReason::TunnelFamily);
        }
        if pf.ttl <= 1 {
            return Verdict::Drop(DropReason::TtlExceeded);
        }
        // The cached hop spares the route and neighbour lookups, as for the other modes.
        let (hops, stamp) = (&self.hops, self.hop_stamp.current());
        let hop = cached_hop(hops, stamp, topo, dest, real);
        let way = match hop.or_else(|| mixed_hop(hops, stamp, topo, dest, real)) {
            Some(h) => Way::Cached(h),
            None => match topo.route(real) {
                Some(r) => Way::Route(r),
                None => return Verdict::Drop(DropReason::NoRoute),
            },
        };
        let port = match &way {
            Way::Cached(h) => h.port,
            Way::Route(r) => r.port,
        };
        let mtu = usize::from(snap.mtu(port));
        if usize::from(pf.ip_len) + OVERHEAD > mtu {
            let next_mtu = mtu.saturating_sub(OVERHEAD) as u16;
            return self.frag_needed(snap, topo, in_port, buf, pf, next_mtu);
        }
        let Some(dip) = snap.port_addr(port, true) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        let l3 = usize::from(pf.l3_off);
        match buf.frame_mut().get_mut(l3..).map(Ipv4Packet::new_checked) {
            Some(Ok(mut ip)) => {
                ip.decrement_ttl();
            }
            _ => return Verdict::Drop(DropReason::Malformed),
        }
        let ident = self.next_ip_id();
        match encapsulate(buf, l3, dip.v4_octets(), real.v4_octets(), 64, ident, false) {
            Ok(()) => match way {
                Way::Cached(h) => {
                    h.set_macs(buf.frame_mut());
                    Verdict::Forward { port: h.port }
                }
                Way::Route(r) => {
                    let (hops, stamp) = (&mut self.hops, self.hop_stamp.current());
                    egress_to_real(hops, stamp, topo, buf.frame_mut(), dest, real, &r)
                }
            },
            Err(EmitError::BufferTooShort) => Verdict::Drop(DropReason::NoHeadroom),
            Err(_) => Verdict::Drop(DropReason::Malformed),
        }
    }

    /// Replaces the frame with an ICMP fragmentation-needed error about it, sent back to its
    /// source from the director's address on `in_port` (or the packet's destination).
    fn frag_needed<B: PacketBuf + ?Sized, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        in_port: u16,
        buf: &mut B,
        pf: &ParsedFrame,
        mtu: u16,
    ) -> Verdict {
        let Some(route) = topo.route(&pf.src) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        let src = snap
            .port_addr(in_port, true)
            .or_else(|| snap.port_addr(route.port, true))
            .unwrap_or(pf.dst);
        let l3 = usize::from(pf.l3_off);
        let ident = self.next_ip_id();
        let n = {
            let Some(orig) = buf.frame().get(l3..pf.l3_end()) else {
                return Verdict::Drop(DropReason::Malformed);
            };
            match emit_frag_needed(&mut self.scratch[..], src.v4_octets(), ident, mtu, orig) {
                Ok(n) => n,
                Err(_) => return Verdict::Drop(DropReason::TooBig),
            }
        };
        let want = l3 + n;
        let have = buf.len();
        let resized = if want > have {
            buf.append(want - have)
        } else {
            buf.trim_back(have - want)
        };
        if resized.is_err() {
            return Verdict::Drop(DropReason::TooBig);
        }
        let frame = buf.frame_mut();
        let (Some(dst), Some(msg)) = (frame.get_mut(l3..want), self.scratch.get(..n)) else {
            return Verdict::Drop(DropReason::TooBig);
        };
        dst.copy_from_slice(msg);
        self.stats.frag_needed_sent.inc();
        egress(topo, frame, &route)
    }
}
