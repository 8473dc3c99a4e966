//! The per-core forwarder: packet classification, connection lookup and creation, counters.
//!
//! Transmit (the per-mode rewrites and the egress decision) lives in `xmit.rs`, ICMP error relay
//! in `icmp.rs`.

use std::sync::Arc;

use super::hop::{Hop, HopStamp};
use super::laddr::{LocalPorts, PortRange};
use super::snapshot::{AddrRole, SnapDest, Snapshot};
use super::stats::FwdStats;
use super::xmit::xmit;
use super::{DropReason, Topology, Verdict, BURST};
use crate::buf::PacketBuf;
use crate::conn::{
    tcp_flags, ConnId, ConnState, ConnTable, ConnTableConfig, Dir, Expired, InsertError, NewConn,
};
use crate::conn::{NewTemplate, TemplateKey};
use crate::flow::{Addr, FlowKey, Proto};
use crate::model::FwdMode;
use crate::rss::{RetaMap, Toeplitz};
use crate::sched::{schedule, DestId, SchedInput, SchedState};
use crate::wire::{ip_proto, parse_frame, Frag, L3Kind, ParsedFrame};

/// Where replies to this core's FullNAT connections must arrive: the NIC's RSS hash and
/// redirection table, and this core's receive queue.
#[derive(Debug, Clone)]
pub struct RssTarget {
    /// The NIC's Toeplitz hasher (its RSS key).
    pub toeplitz: Arc<Toeplitz>,
    /// The NIC's redirection table (a power-of-two size).
    pub reta: Arc<RetaMap>,
    /// This core's receive queue.
    pub queue: u16,
}

/// Sizes and settings of one core's forwarder.
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    /// The connection table (its `dest_capacity` also sizes the per-real-server counters).
    pub table: ConnTableConfig,
    /// Service slots to count (slots at or above are served but not counted).
    pub service_capacity: u32,
    /// FullNAT local ports.
    pub ports: PortRange,
    /// RSS steering of FullNAT replies; `None` when the port has a single queue.
    pub rss: Option<RssTarget>,
}

impl Default for ForwarderConfig {
    fn default() -> Self {
        ForwarderConfig {
            table: ConnTableConfig::default(),
            service_capacity: 1024,
            ports: PortRange::default(),
            rss: None,
        }
    }
}

/// Room for an ICMP error being built (RFC 1812: at most 576 bytes; IPv6: 1280).
const SCRATCH_LEN: usize = 1280;

/// Reply aliases one burst may queue for other cores before [`Forwarder::drain_aliases`].
const OUTBOX_CAP: usize = 64;

/// A NAT connection whose replies RSS will hand to another core: that core must index the reply
/// direction before the real server answers ([`Forwarder::accept_alias`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AliasMsg {
    /// The receive queue (= worker) the replies land on.
    pub queue: u16,
    /// The queue of the core that owns the connection.
    pub owner: u16,
    /// The connection.
    pub conn: NewConn,
}

/// One worker core's forwarding state; see the module documentation of [`crate::fwd`].
pub struct Forwarder {
    pub(super) conns: ConnTable,
    sched: Vec<SchedState>,
    sched_slots: Vec<u32>,
    pub(super) generation: u64,
    /// Per real server slot: the egress towards it (see [`crate::fwd::Topology::epoch`]).
    pub(super) hops: Box<[Hop]>,
    /// What `hops` are valid under, refreshed when `process` or `process_burst` starts.
    pub(super) hop_stamp: HopStamp,
    /// The real-server slots whose hop is marked mixed (`hop.rs`); usually none.
    pub(super) mixed: Vec<DestId>,
    pub(super) lports: LocalPorts,
    pub(super) stats: Arc<FwdStats>,
    ip_id: u16,
    pub(super) scratch: Box<[u8]>,
    /// The full parse of a burst's uncommon frames (see `burst.rs`), by position in the burst:
    /// kept here, written only for the frames that need it, rather than cleared on the stack
    /// for every burst.
    pub(super) parsed: Box<[ParsedFrame; BURST]>,
    reply_rss: Option<RssTarget>,
    outbox: Vec<AliasMsg>,
}

impl Forwarder {
    /// Allocates everything the core needs (table, counters, port pools are sized here).
    pub fn new(cfg: ForwarderConfig) -> Forwarder {
        let stats = FwdStats::new(
            cfg.service_capacity as usize,
            cfg.table.dest_capacity as usize,
        );
        let reply_rss = cfg.rss.clone();
        let rss = cfg.rss.map(|r| (r.toeplitz, r.reta, r.queue));
        Forwarder {
            conns: ConnTable::new(cfg.table),
            sched: Vec::new(),
            sched_slots: Vec::new(),
            generation: 0,
            // One slot per real server, and the last for replies' next hop (see `xmit.rs`).
            hops: vec![Hop::NONE; cfg.table.dest_capacity as usize + 1].into_boxed_slice(),
            hop_stamp: HopStamp::new(),
            mixed: Vec::new(),
            lports: LocalPorts::new(cfg.ports, rss),
            stats: Arc::new(stats),
            ip_id: (cfg.table.core).wrapping_mul(0x9e37),
            scratch: vec![0u8; SCRATCH_LEN].into_boxed_slice(),
            parsed: Box::new([ParsedFrame::EMPTY; BURST]),
            reply_rss,
            outbox: Vec::with_capacity(OUTBOX_CAP),
        }
    }

    /// Takes the reply aliases queued since the last call; the worker passes each to the core
    /// serving `msg.queue` before transmitting the burst that created them.
    pub fn drain_aliases(&mut self) -> std::vec::Drain<'_, AliasMsg> {
        self.outbox.drain(..)
    }

    /// Indexes the reply direction of a NAT connection owned by another core, so that its
    /// replies, which RSS hands to this core, are rewritten here.
    pub fn accept_alias(&mut self, msg: &AliasMsg, now_ms: u64) -> bool {
        match self
            .conns
            .insert_alias(msg.conn, msg.owner, crate::conn::ConnState::SynRecv, now_ms)
        {
            Ok(_) => {
                self.stats.aliases_accepted.inc();
                true
            }
            Err(_) => {
                self.stats.aliases_refused.inc();
                false
            }
        }
    }

    /// The counters (share the `Arc` with the control plane).
    pub fn stats(&self) -> &Arc<FwdStats> {
        &self.stats
    }

    /// The connection table (for listings).
    pub fn conns(&self) -> &ConnTable {
        &self.conns
    }

    /// The FullNAT port allocator.
    pub fn local_ports(&self) -> &LocalPorts {
        &self.lports
    }

    /// Prepares per-core state for `snap`: scheduler state per service (kept across snapshots by
    /// service slot), real server thresholds, timeouts, local address pools. Allocates; call it
    /// off the packet path when a snapshot is published ([`Forwarder::process`] calls it lazily
    /// if a burst brings a snapshot it has not seen).
    #[cold]
    #[inline(never)]
    pub fn install(&mut self, snap: &Snapshot) {
        let mut old: Vec<(u32, SchedState)> = self
            .sched_slots
            .drain(..)
            .zip(self.sched.drain(..))
            .collect();
        for s in snap.services() {
            let st = match old.iter().position(|(slot, _)| *slot == s.slot) {
                Some(i) => {
                    let (_, mut st) = old.swap_remove(i);
                    st.prepare(&s.plan);
                    st
                }
                None => SchedState::new(&s.plan),
            };
            self.sched.push(st);
            self.sched_slots.push(s.slot);
            for d in s.dests.iter() {
                if let Some(l) = self.conns.loads_mut().get_mut(d.id.index()) {
                    l.set_thresholds(d.upper, d.lower);
                }
            }
        }
        self.bind_dests(snap);
        self.conns.set_timeouts(*snap.timeouts());
        self.lports.set_addrs(snap.local_addrs());
        self.generation = snap.generation();
    }

    /// Handles one received frame: rewrites it in place and says where it goes.
    #[inline]
    pub fn process<B: PacketBuf + ?Sized, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        in_port: u16,
        buf: &mut B,
        now_ms: u64,
    ) -> Verdict {
        if snap.generation() != self.generation {
            self.install(snap);
        }
        self.hop_stamp.refresh(self.generation, topo.epoch());
        let Ok(pf) = parse_frame(buf.frame()) else {
            self.stats.count_drop(DropReason::Malformed);
            return Verdict::Drop(DropReason::Malformed);
        };
        // One frame: nothing to overlap, so no probe; the full lookup gives the same answer.
        let look = self.first_look(&pf);
        let key = look.key(&pf);
        let found = key.and_then(|k| self.conns.lookup_hashed(look.hash, &k));
        let key = key.map(|k| (k, look.hash));
        let v = self.finish(snap, topo, in_port, buf, &pf, key, found, now_ms);
        self.count(v);
        v
    }

    /// Counts a verdict in the forwarder's statistics.
    #[inline(always)]
    pub(super) fn count(&self, v: Verdict) {
        match v {
            Verdict::Forward { .. } | Verdict::Resolve { .. } => self.stats.forwarded.inc(),
            Verdict::Kernel => self.stats.kernel.inc(),
            Verdict::Drop(r) => self.stats.count_drop(r),
        }
    }

    /// Removes at most `budget` expired connections (freeing FullNAT ports); call it from the
    /// worker loop between bursts.
    pub fn expire(&mut self, now_ms: u64, budget: usize) -> Expired {
        let lports = &mut self.lports;
        let stats = &self.stats;
        let expired = self.conns.expire(now_ms, budget, |_, c| {
            if c.mode == FwdMode::FullNat && !c.is_template() && !c.is_alias() {
                lports.free(&c.local, c.lport);
            }
            if !c.is_template() {
                stats.expired.inc();
            }
        });
        if !self.mixed.is_empty() {
            self.refresh_mixed();
        }
        expired
    }

    /// The next IPv4 identification for a header we emit.
    #[inline]
    pub(super) fn next_ip_id(&mut self) -> u16 {
        self.ip_id = self.ip_id.wrapping_add(1);
        self.ip_id
    }

    /// Frames that are not TCP or UDP with known ports: ARP, ICMP, other protocols, later
    /// fragments, malformed frames.
    #[cold]
    #[inline(never)]
    pub(super) fn classify_other<B: PacketBuf + ?Sized, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        in_port: u16,
        buf: &mut B,
    ) -> Verdict {
        let Ok(pf) = parse_frame(buf.frame()) else {
            return Verdict::Drop(DropReason::Malformed);
        };
        match (pf.l3, pf.proto) {
            (L3Kind::Arp, _) => Verdict::Kernel,
            (L3Kind::Ipv4, ip_proto::ICMP) | (L3Kind::Ipv6, ip_proto::ICMPV6)
                if pf.frag == Frag::None =>
            {
                self.icmp(snap, topo, in_port, buf, &pf)
            }
            (_, ip_proto::TCP | ip_proto::UDP) => not_ours(snap, &pf, DropReason::Fragment),
            _ => not_ours(snap, &pf, DropReason::UnsupportedProto),
        }
    }

    /// A client reusing the ports of a connection that is closing opens a new connection (IPVS
    /// `conn_reuse_mode = 1`): the old entry goes, and the SYN is scheduled afresh.
    #[cold]
    pub(super) fn retire_if_closing(&mut self, id: ConnId) -> bool {
        let Some(c) = self.conns.get(id) else {
            return false;
        };
        if !matches!(
            c.state(),
            ConnState::FinWait
                | ConnState::TimeWait
                | ConnState::Close
                | ConnState::CloseWait
                | ConnState::LastAck
        ) {
            return false;
        }
        let (mode, local, lport) = (c.mode, c.local, c.lport);
        if !self.conns.remove(id) {
            return false;
        }
        if mode == FwdMode::FullNat {
            self.lports.free(&local, lport);
        }
        self.stats.reused.inc();
        true
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn established<B: PacketBuf + ?Sized, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        in_port: u16,
        buf: &mut B,
        pf: &ParsedFrame,
        id: ConnId,
        dir: Dir,
        now_ms: u64,
    ) -> Verdict {
        // Lookups never return templates: `None` means the entry is not live.
        if self
            .conns
            .on_packet(id, dir, pf.tcp_flags, now_ms)
            .is_none()
        {
            return Verdict::Drop(DropReason::NoConnection);
        }
        let Some(c) = self.conns.get(id) else {
            return Verdict::Drop(DropReason::NoConnection);
        };
        self.stats
            .traffic(c.svc, c.dest.0, dir, u64::from(pf.ip_len));
        if (c.mode, dir) == (FwdMode::Tun, Dir::Original) {
            let (dest, real) = (c.dest, c.real);
            return self.xmit_tun(snap, topo, in_port, buf, pf, dest, &real);
        }
        xmit(
            &mut self.hops,
            self.hop_stamp.current(),
            topo,
            buf.frame_mut(),
            pf,
            c,
            dir,
        )
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub(super) fn new_conn<B: PacketBuf + ?Sized, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        in_port: u16,
        buf: &mut B,
        pf: &ParsedFrame,
        key: FlowKey,
        hash: u64,
        now_ms: u64,
    ) -> Verdict {
        let Some(si) = snap.find_service(key.proto, &key.daddr, key.dport) else {
            if snap.is_reply_source(key.proto, &key.saddr, key.sport) {
                return Verdict::Drop(DropReason::ReplyMiss);
            }
            return not_ours(snap, pf, DropReason::NoService);
        };
        let Some(svc) = snap.service(si) else {
            return Verdict::Drop(DropReason::NoService);
        };
        // IPVS schedules TCP only on a connection-opening SYN.
        if key.proto == Proto::Tcp
            && pf.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST) != tcp_flags::SYN
        {
            return Verdict::Drop(DropReason::NoConnection);
        }
        let loads = self.conns.loads();
        let usable =
            |d: &SnapDest| d.weight > 0 && !loads.get(d.id.index()).is_some_and(|l| l.overloaded);
        // Persistence: a live template of the client's network picks the same server if usable.
        let mut template = None;
        let mut dest = None;
        let tkey = svc.persistence.map(|p| {
            let port = if svc.port == 0 { 0 } else { key.dport };
            TemplateKey::new(svc.slot, key.saddr, p.prefix_len, port)
        });
        if let Some(tk) = &tkey {
            if let Some(t) = self.conns.find_template(tk) {
                let tdest = self.conns.get(t).map(|c| c.dest);
                match tdest
                    .and_then(|id| svc.dest_by_id(id))
                    .filter(|d| usable(d))
                {
                    Some(d) => {
                        dest = Some(*d);
                        template = Some(t);
                    }
                    None => {
                        self.conns.remove(t);
                    }
                }
            }
        }
        let d = match dest {
            Some(d) => d,
            None => {
                let input = SchedInput {
                    saddr: key.saddr,
                    sport: key.sport,
                    daddr: key.daddr,
                    dport: key.dport,
                    now_ms,
                };
                let Some(st) = self.sched.get_mut(si) else {
                    return Verdict::Drop(DropReason::NoDest);
                };
                let picked = schedule(st, &svc.plan, self.conns.loads(), &input);
                match picked.and_then(|i| svc.dests.get(i)) {
                    Some(d) => *d,
                    None => return Verdict::Drop(DropReason::NoDest),
                }
            }
        };
        // Ports are not rewritten in DR and TUN; a real server port of 0 means "the same".
        let rport = if d.port == 0 || matches!(d.mode, FwdMode::Dr | FwdMode::Tun) {
            key.dport
        } else {
            d.port
        };
        let v4 = pf.l3 == L3Kind::Ipv4;
        if d.mode == FwdMode::Tun && !(v4 && d.addr.is_v4()) {
            return Verdict::Drop(DropReason::TunnelFamily);
        }
        if d.mode != FwdMode::Tun && d.addr.is_v4() != v4 {
            return Verdict::Drop(DropReason::FamilyMismatch);
        }
        if d.mode != FwdMode::Dr && pf.ttl <= 1 {
            return Verdict::Drop(DropReason::TtlExceeded);
        }
        if let (Some(p), Some(tk), None) = (svc.persistence, tkey, template) {
            let t = NewTemplate {
                key: tk,
                proto: key.proto,
                vip: svc.vip,
                dest: d.id,
                real: d.addr,
                rport,
                mode: d.mode,
                timeout_s: p.timeout,
            };
            match self.conns.insert_template(t, now_ms) {
                Ok(t) => template = Some(t),
                Err(_) => return Verdict::Drop(DropReason::TableFull),
            }
        }
        // One-packet scheduling (`ipvsadm -o`): each UDP datagram without a connection is
        // scheduled on its own and sent without a connection entry, as IPVS never hashes its
        // IP_VS_CONN_F_ONE_PACKET connections. It counts as a connection of its server (IPVS
        // counts one per datagram) but binds no load, so least-connection schedulers see none.
        // A persistence template, if any, is still kept (IPVS `ip_vs_sched_persist`). NAT and
        // FullNAT need an entry to rewrite replies: the control plane refuses them with the
        // flag, and should one get here anyway it is tracked as a normal connection.
        if svc.flags.one_packet
            && key.proto == Proto::Udp
            && matches!(d.mode, FwdMode::Dr | FwdMode::Tun)
        {
            self.stats.new_conn(svc.slot, d.id.0);
            self.stats
                .traffic(svc.slot, d.id.0, Dir::Original, u64::from(pf.ip_len));
            return self.xmit_stateless(snap, topo, in_port, buf, pf, &d);
        }
        let n = NewConn {
            proto: key.proto,
            client: key.saddr,
            cport: key.sport,
            vip: key.daddr,
            vport: key.dport,
            local: Addr::UNSPECIFIED,
            lport: 0,
            real: d.addr,
            rport,
            mode: d.mode,
            dest: d.id,
            svc: svc.slot,
            template,
        };
        // `hash` is the frame's key's, which is the new connection's original key.
        let inserted = if d.mode == FwdMode::FullNat {
            self.insert_fullnat(n, hash, now_ms)
        } else {
            self.conns
                .insert_hashed(n, hash, now_ms)
                .map(|id| (id, n))
                .map_err(|_| DropReason::TableFull)
        };
        let (id, n) = match inserted {
            Ok(got) => got,
            Err(reason) => return Verdict::Drop(reason),
        };
        self.stats.new_conn(svc.slot, d.id.0);
        if d.mode == FwdMode::Nat {
            self.steer_reply(&n);
        }
        self.established(snap, topo, in_port, buf, pf, id, Dir::Original, now_ms)
    }
}

impl Forwarder {
    /// Inserts a FullNAT connection with a local address and port whose reply tuple lands on
    /// this core. The insert's own check of the reply key is the only lookup of that tuple:
    /// a port whose tuple is taken (an alias, a stale entry) is given back and another tried,
    /// at most four times.
    fn insert_fullnat(
        &mut self,
        mut n: NewConn,
        orig_hash: u64,
        now_ms: u64,
    ) -> Result<(ConnId, NewConn), DropReason> {
        for _ in 0..4 {
            let (local, lport) = self
                .lports
                .alloc(&n.real, n.rport, |_, _| false)
                .ok_or(DropReason::NoLocalPort)?;
            (n.local, n.lport) = (local, lport);
            match self.conns.insert_hashed(n, orig_hash, now_ms) {
                Ok(id) => return Ok((id, n)),
                Err(e) => {
                    self.lports.free(&local, lport);
                    if e != InsertError::Exists {
                        return Err(DropReason::TableFull);
                    }
                }
            }
        }
        Err(DropReason::NoLocalPort)
    }
}

impl Forwarder {
    /// NAT replies come from the real server to the client, a tuple the client chose: when RSS
    /// hands it to another core, queue an alias for that core.
    fn steer_reply(&mut self, n: &NewConn) {
        let Some(rss) = &self.reply_rss else {
            return;
        };
        let reply = FlowKey {
            saddr: n.real,
            daddr: n.client,
            sport: n.rport,
            dport: n.cport,
            proto: n.proto,
        };
        let queue = rss.reta.queue(rss.toeplitz.hash_flow(&reply));
        if queue == rss.queue {
            return;
        }
        if self.outbox.len() < OUTBOX_CAP {
            self.outbox.push(AliasMsg {
                queue,
                owner: rss.queue,
                conn: *n,
            });
            self.stats.aliases_sent.inc();
        } else {
            self.stats.alias_overflow.inc();
        }
    }
}

/// The verdict for a packet no connection or service claims: dropped with `reason` when it is
/// addressed to a VIP or local address of ours, handed to the kernel otherwise.
#[inline]
fn not_ours(snap: &Snapshot, pf: &ParsedFrame, reason: DropReason) -> Verdict {
    match snap.role(&pf.dst) {
        Some(AddrRole::Vip) => Verdict::Drop(reason),
        Some(AddrRole::Local) if reason == DropReason::NoService => {
            Verdict::Drop(DropReason::NoConnection)
        }
        Some(AddrRole::Local) => Verdict::Drop(reason),
        None => Verdict::Kernel,
    }
}
