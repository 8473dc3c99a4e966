//! The established fast path: a packet of a known connection in the common frame (untagged
//! IPv4 without options, TCP, unfragmented) is forwarded from its [`Ipv4TcpHead`], read at fixed
//! offsets, without a [`crate::wire::ParsedFrame`]: the same state update, counters, rewrite and
//! verdict as [`Forwarder::established`] (property-tested against it), in fewer instructions.

use super::forwarder::Forwarder;
use super::xmit::{cached_hop, rewritten, to_real_into, xmit_ipv4_tcp};
use super::{DropReason, Snapshot, Topology, Verdict};
use crate::buf::PacketBuf;
use crate::conn::{tcp_flags, ConnId, Dir, EstablishedTouch};
use crate::flow::Addr;
use crate::model::FwdMode;
use crate::sched::DestId;
use crate::wire::ipip::{encapsulate_common, OVERHEAD};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::{EmitError, Ipv4TcpHead};

impl Forwarder {
    /// Forwards the frame `h` describes on connection `id` travelling in `dir`, writing its
    /// verdict to `v`, or returns false, having changed nothing, for the one case
    /// [`Forwarder::finish`] must see: a bare SYN from a client, which may reuse a closing
    /// connection. (The verdict goes straight to its slot: returned, it would be copied twice.)
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn established_ipv4_tcp<B: PacketBuf + ?Sized, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        in_port: u16,
        buf: &mut B,
        h: &Ipv4TcpHead,
        (id, dir): (ConnId, Dir),
        now_ms: u64,
        v: &mut Verdict,
    ) -> bool {
        // The common packet moves no state; anything else, a client's bare SYN (which may reuse
        // a closing connection, see `finish`) aside, goes through the transition table.
        let c = match self.conns.touch(id, h.tcp_flags, now_ms) {
            Some(c) => c,
            None => {
                let opening = tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST;
                if dir == Dir::Original && h.tcp_flags & opening == tcp_flags::SYN {
                    return false;
                }
                let live = self.conns.on_packet(id, dir, h.tcp_flags, now_ms).is_some();
                match self.conns.get(id).filter(|_| live) {
                    Some(c) => c,
                    None => {
                        *v = Verdict::Drop(DropReason::NoConnection);
                        return true;
                    }
                }
            }
        };
        let inbound = dir == Dir::Original;
        self.stats
            .traffic(c.svc, c.dest.0, dir, u64::from(h.ip_len));
        if c.mode == FwdMode::Tun && inbound {
            let (dest, real) = (c.dest, c.real);
            *v = self.tun_from_head(snap, topo, in_port, buf, h, dest, &real);
            return true;
        }
        let frame = buf.frame_mut();
        xmit_ipv4_tcp(
            &mut self.hops,
            self.hop_stamp.current(),
            topo,
            frame,
            h,
            c,
            dir,
            v,
        );
        true
    }

    /// The common case of [`Forwarder::established_ipv4_tcp`] in one step, for a frame that
    /// [`Ipv4TcpHead::read`] took: a plain ACK of an ESTABLISHED connection that `candidate` (a
    /// probe's [`crate::conn::Probe::candidate`], possibly stale) names, found, touched and
    /// forwarded with one read of its entry ([`crate::conn::ConnTable::touch_v4`]). False, having changed nothing,
    /// for anything else, which the two-step path handles.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn touched_ipv4_tcp<B: PacketBuf + ?Sized, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        in_port: u16,
        buf: &mut B,
        candidate: u32,
        touch: EstablishedTouch,
        v: &mut Verdict,
    ) -> bool {
        let frame = buf.frame_mut();
        let Some(h) = Ipv4TcpHead::read_known(frame) else {
            return false;
        };
        let Some((_, dir, c)) = self.conns.touch_v4(candidate, &h, touch) else {
            return false;
        };
        let inbound = dir == Dir::Original;
        // Read again here rather than kept from the head: one load, where a copy held across
        // the lookup is a spill and a reload.
        let ip_len = Ipv4TcpHead::ip_len_of(frame).unwrap_or(h.ip_len);
        self.stats.traffic(c.svc, c.dest.0, dir, u64::from(ip_len));
        // One jump on the mode (FullNAT's client packets in an arm of their own make the
        // compiler build it, which saved DR and FullNAT three and six instructions). A DR
        // connection indexes no reply key, so its packets are the client's: its arm does not
        // test the direction.
        debug_assert!(inbound || c.mode != FwdMode::Dr);
        let (hops, stamp) = (&mut self.hops, self.hop_stamp.current());
        match (c.mode, inbound) {
            (FwdMode::Dr, _) => to_real_into(hops, stamp, topo, frame, c.dest, &c.real, v),
            (FwdMode::FullNat, true) => rewritten(hops, stamp, topo, frame, &h, c, dir, v),
            (FwdMode::Tun, true) => {
                let (dest, real) = (c.dest, c.real);
                *v = self.tun_from_frame(snap, topo, in_port, buf, dest, &real);
            }
            _ => rewritten(hops, stamp, topo, frame, &h, c, dir, v),
        }
        true
    }

    /// [`Forwarder::xmit_tun`] for a frame [`Ipv4TcpHead::read`] took, towards a real server
    /// whose hop is cached and with room under the egress MTU: the same checks in the same
    /// order, bytes and verdict, from the frame's fixed offsets and without a
    /// [`crate::wire::ParsedFrame`]. `None`, having changed nothing, for the rest (no cached
    /// hop, too big, no address on the port, TTL spent), which `xmit_tun` handles.
    #[inline(always)]
    fn tun_cached_ipv4<B: PacketBuf + ?Sized, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        buf: &mut B,
        dest: DestId,
        real: &Addr,
    ) -> Option<Verdict> {
        let h = Ipv4TcpHead::read_known(buf.frame())?;
        // `Ipv4TcpHead::read` takes only frames with TTL to spare.
        debug_assert!(h.ttl > 1);
        if !real.is_v4() {
            return None;
        }
        let hop = cached_hop(&self.hops, self.hop_stamp.current(), topo, dest, real)?;
        if usize::from(h.ip_len) + OVERHEAD > usize::from(snap.mtu(hop.port())) {
            return None;
        }
        let dip = snap.port_addr(hop.port(), true)?;
        // Committed: from here on, exactly what `xmit_tun` does.
        let inner = buf.frame_mut().get_mut(Ipv4TcpHead::L3_OFF..)?;
        Ipv4Packet::new_unchecked(inner).decrement_ttl();
        let ident = self.next_ip_id();
        Some(
            match encapsulate_common(buf, dip.v4_octets(), real.v4_octets(), 64, ident) {
                Ok(()) => {
                    hop.set_macs(buf.frame_mut());
                    Verdict::Forward { port: hop.port() }
                }
                Err(EmitError::BufferTooShort) => Verdict::Drop(DropReason::NoHeadroom),
                Err(_) => Verdict::Drop(DropReason::Malformed),
            },
        )
    }

    /// [`Forwarder::tun_from_head`] for a frame [`Ipv4TcpHead::read`] took, reading its head
    /// again here so that the caller's copy stays in registers; the common case goes through
    /// [`Forwarder::tun_cached_ipv4`].
    #[inline(never)]
    fn tun_from_frame<B: PacketBuf + ?Sized, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        in_port: u16,
        buf: &mut B,
        dest: DestId,
        real: &Addr,
    ) -> Verdict {
        if let Some(v) = self.tun_cached_ipv4(snap, topo, buf, dest, real) {
            return v;
        }
        match Ipv4TcpHead::read_known(buf.frame()) {
            Some(h) => self.tun_from_head(snap, topo, in_port, buf, &h, dest, real),
            None => Verdict::Drop(DropReason::Malformed),
        }
    }

    /// [`Forwarder::xmit_tun`] from a head; out of line, like every full
    /// [`crate::wire::ParsedFrame`] the fast path needs (see `burst.rs`).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn tun_from_head<B: PacketBuf + ?Sized, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        in_port: u16,
        buf: &mut B,
        h: &Ipv4TcpHead,
        dest: DestId,
        real: &Addr,
    ) -> Verdict {
        let pf = h.parsed();
        self.xmit_tun(snap, topo, in_port, buf, &pf, dest, real)
    }
}
