//! ICMP errors about connections: found through the quoted header, rewritten and relayed to the
//! side that sent the quoted packet (IPVS's `ip_vs_in_icmp`/`ip_vs_out_icmp`).
//!
//! ```text
//! quoted packet           found as            relayed to  rewrite
//! client|LIP → RIP        reply key (Reply)   client      inner src ← client:cport (FullNAT),
//!                                                         inner dst ← VIP:vport,
//!                                                         outer src ← VIP, outer dst ← client
//! VIP → client            original (Original) real server inner src ← RIP:rport, inner dst ←
//!                                                         LIP:lport (FullNAT), outer dst ← RIP,
//!                                                         outer src ← LIP (FullNAT);
//!                                                         DR/TUN: forwarded/tunnelled as is
//! ```
//! Handled types: IPv4 destination-unreachable (incl. fragmentation-needed), source-quench,
//! time-exceeded, parameter-problem; ICMPv6 destination-unreachable, packet-too-big,
//! time-exceeded, parameter-problem. Anything else, and errors about unknown flows, go to the
//! kernel. This is the rare path: the quoted headers are patched incrementally where they are
//! complete, and the outer IPv4 and ICMP checksums are recomputed.

use super::forwarder::Forwarder;
use super::rewrite::{dst_off, l4_addr, l4_csum_field, l4_word, put_addr, src_off};
use super::snapshot::Snapshot;
use super::xmit::route_to;
use super::{DropReason, Topology, Verdict};
use crate::buf::PacketBuf;
use crate::checksum;
use crate::conn::Dir;
use crate::flow::{Addr, FlowKey, Proto};
use crate::model::FwdMode;
use crate::wire::icmpv4::{self, Icmpv4Packet, Quoted};
use crate::wire::icmpv6::{self, Icmpv6Packet};
use crate::wire::{get16, ip_proto, set16, Frag, L3Kind, ParsedFrame};

/// New addresses for the outer header and the quoted packet.
struct Plan {
    outer_src: Option<Addr>,
    outer_dst: Option<Addr>,
    inner_src: Option<(Addr, u16)>,
    inner_dst: Option<(Addr, u16)>,
}

impl Forwarder {
    /// Relays an ICMP error about a known connection; other ICMP goes to the kernel.
    #[inline(never)]
    pub(super) fn icmp<B: PacketBuf + ?Sized, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        in_port: u16,
        buf: &mut B,
        pf: &ParsedFrame,
    ) -> Verdict {
        let v4 = pf.l3 == L3Kind::Ipv4;
        let is_error = if v4 {
            matches!(
                pf.icmp_type,
                icmpv4::types::DEST_UNREACH
                    | icmpv4::types::SOURCE_QUENCH
                    | icmpv4::types::TIME_EXCEEDED
                    | icmpv4::types::PARAM_PROBLEM
            )
        } else {
            matches!(
                pf.icmp_type,
                icmpv6::types::DEST_UNREACH
                    | icmpv6::types::PACKET_TOO_BIG
                    | icmpv6::types::TIME_EXCEEDED
                    | icmpv6::types::PARAM_PROBLEM
            )
        };
        if !is_error {
            return Verdict::Kernel;
        }
        let (l4, end) = (usize::from(pf.l4_off), pf.l3_end());
        let Some(msg) = buf.frame().get(l4..end) else {
            return Verdict::Drop(DropReason::Malformed);
        };
        let quoted = if v4 {
            Icmpv4Packet::new_checked(msg).and_then(|m| m.quoted())
        } else {
            Icmpv6Packet::new_checked(msg).and_then(|m| m.quoted())
        };
        let Ok(q) = quoted else {
            return Verdict::Kernel;
        };
        let Some(proto) = Proto::from_ip_proto(q.proto) else {
            return Verdict::Kernel;
        };
        if q.frag == Frag::Later || q.src.is_v4() != v4 {
            return Verdict::Kernel;
        }
        let key = FlowKey {
            saddr: q.dst,
            daddr: q.src,
            sport: q.dport,
            dport: q.sport,
            proto,
        };
        let Some((id, dir)) = self.conns.lookup(&key) else {
            return Verdict::Kernel;
        };
        let Some(&c) = self.conns.get(id) else {
            return Verdict::Kernel;
        };
        let full = c.mode == FwdMode::FullNat;
        let (plan, toward) = match (dir, c.mode) {
            (Dir::Reply, _) => (
                Plan {
                    outer_src: Some(c.vip),
                    outer_dst: Some(c.client),
                    inner_src: full.then_some((c.client, c.cport)),
                    inner_dst: Some((c.vip, c.vport)),
                },
                c.client,
            ),
            (Dir::Original, FwdMode::Nat | FwdMode::FullNat) => (
                Plan {
                    outer_src: full.then_some(c.local),
                    outer_dst: Some(c.real),
                    inner_src: Some((c.real, c.rport)),
                    inner_dst: full.then_some((c.local, c.lport)),
                },
                c.real,
            ),
            (Dir::Original, FwdMode::Dr) => {
                self.stats.icmp_relayed.inc();
                return route_to(topo, buf.frame_mut(), &c.real);
            }
            (Dir::Original, FwdMode::Tun) => {
                let v = self.xmit_tun(snap, topo, in_port, buf, pf, c.dest, &c.real);
                if matches!(v, Verdict::Forward { .. } | Verdict::Resolve { .. }) {
                    self.stats.icmp_relayed.inc();
                }
                return v;
            }
        };
        if pf.ttl <= 1 {
            return Verdict::Drop(DropReason::TtlExceeded);
        }
        let frame = buf.frame_mut();
        if !apply(frame, pf, &q, &plan) {
            return Verdict::Drop(DropReason::Malformed);
        }
        self.stats.icmp_relayed.inc();
        route_to(topo, frame, &toward)
    }
}

/// Rewrites the quoted packet, then the outer header (TTL − 1), then the ICMP checksum.
fn apply(frame: &mut [u8], pf: &ParsedFrame, q: &Quoted, plan: &Plan) -> bool {
    let v4 = pf.l3 == L3Kind::Ipv4;
    let (l3, l4, end) = (usize::from(pf.l3_off), usize::from(pf.l4_off), pf.l3_end());
    if frame.len() < end || end < l4 + 8 {
        return false;
    }
    // The quoted packet.
    let ip = l4 + q.ip_off;
    let ql4 = l4 + q.l4_off;
    if ip + if v4 { 20 } else { 40 } > end || ql4 + 4 > end {
        return false;
    }
    let field = l4_csum_field(q.proto).filter(|(off, _)| ql4 + off + 2 <= end);
    let udp = field.is_some_and(|f| f.1);
    let mut l4c = field.map(|(off, _)| get16(frame, ql4 + off));
    for (new, old, aoff, poff) in [
        (plan.inner_src, q.src, src_off(v4), 0),
        (plan.inner_dst, q.dst, dst_off(v4), 2),
    ] {
        let Some((addr, port)) = new else { continue };
        put_addr(frame, ip + aoff, v4, &addr);
        l4c = l4c.map(|c| l4_addr(c, udp, &old, &addr));
        let old_port = get16(frame, ql4 + poff);
        set16(frame, ql4 + poff, port);
        l4c = l4c.map(|c| l4_word(c, udp, old_port, port));
    }
    if let (Some((off, _)), Some(c)) = (field, l4c) {
        set16(frame, ql4 + off, c);
    }
    if v4 {
        let hlen = usize::from(frame[ip] & 0x0f) * 4;
        if hlen >= 20 && ip + hlen <= end {
            set16(frame, ip + 10, 0);
            let c = checksum::checksum(&frame[ip..ip + hlen]);
            set16(frame, ip + 10, c);
        }
    }
    // The outer header.
    let mut src = pf.src;
    let mut dst = pf.dst;
    if let Some(a) = plan.outer_src {
        put_addr(frame, l3 + src_off(v4), v4, &a);
        src = a;
    }
    if let Some(a) = plan.outer_dst {
        put_addr(frame, l3 + dst_off(v4), v4, &a);
        dst = a;
    }
    if v4 {
        frame[l3 + 8] = frame[l3 + 8].saturating_sub(1);
        let hlen = usize::from(pf.l4_off - pf.l3_off);
        set16(frame, l3 + 10, 0);
        let c = checksum::checksum(&frame[l3..l3 + hlen]);
        set16(frame, l3 + 10, c);
    } else {
        frame[l3 + 7] = frame[l3 + 7].saturating_sub(1);
    }
    // The ICMP checksum over the rewritten message.
    set16(frame, l4 + 2, 0);
    let c = if v4 {
        checksum::checksum(&frame[l4..end])
    } else {
        let ps = checksum::pseudo_v6(&src.0, &dst.0, ip_proto::ICMPV6, (end - l4) as u32);
        checksum::l4_checksum(ps, &frame[l4..end])
    };
    set16(frame, l4 + 2, c);
    true
}
