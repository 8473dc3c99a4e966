//! The poll loop of one worker lcore. It owns RX/TX queue `i` of every data port and of every
//! kernel (exception-path) interface, its own forwarder (connection table, schedulers, counters)
//! and its own neighbour cache. Per loop: install a new configuration if one was published,
//! read its inboxes, receive bursts, forward, transmit, and every millisecond run the timers.
//! Data ports are not polled before the daemon says the initial configuration is in place
//! (`ready`), so no VIP packet is treated as "not ours" in the first milliseconds after a start.
//!
//! Nothing here takes a lock or allocates per packet; everything it writes is its own, except
//! the inboxes of other workers (lock-free queues) and the software-steering rings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use control_api::ConnEntry;
use dataplane::flow::Addr;
use dataplane::fwd::{DropReason, Forwarder, RoutedTopology, Verdict};
use dataplane::neigh::{self, Request as NeighRequest};
use dataplane::rss::{RetaMap, Toeplitz};
use dataplane::wire::parse_frame;
use dpdk_bindings::port::{RxQueue, TxQueue};
use dpdk_bindings::{Clock, Mbuf, MbufBurst, Mempool, Port, QueueId, Ring};

mod ceiling;
mod counters;
mod neighbours;
mod tx;

use tx::flush;

pub use counters::{WorkerCounters, WorkerDrop};
pub use neighbours::{neigh_cache, Neighbours, HOLD_PER_NEIGHBOUR};

use crate::mailbox::{drain, Mailbox, Request};
use crate::ports::Steering;
use crate::prefetch::CpuPrefetch;
use crate::state::{Published, Shared};

/// Frames per RX/TX burst: the forwarder's group ([`dataplane::fwd::BURST`]), so that one RX
/// burst is one pass group.
pub const BURST: usize = dataplane::fwd::BURST;

/// Expired connections removed per timer run (bounds the work of one loop iteration).
const EXPIRE_BUDGET: usize = 1024;

/// How often a worker publishes what every real-server slot holds ([`WorkerCounters::held`]),
/// besides at every configuration install: a slot's count only falls once its server is gone,
/// so a late figure only keeps a slot from reuse a little longer.
pub const HELD_PUBLISH_MS: u64 = 256;

/// One data port as a worker sees it.
pub struct WorkerPort {
    /// The port (each worker uses its own queue).
    pub port: Arc<Port>,
    /// Its kernel interface, if the exception path is configured.
    pub kernel: Option<Arc<Port>>,
    /// How flows reach their worker.
    pub steering: Steering,
    /// The worker's RX queue on `port`, leased for good (`None`: polled through the per-burst
    /// flag instead).
    pub rx: Option<RxQueue>,
    /// Its TX queue on `port`, the same way.
    pub tx: Option<TxQueue>,
    /// Its RX queue on `kernel`.
    pub kernel_rx: Option<RxQueue>,
    /// Its TX queue on `kernel`.
    pub kernel_tx: Option<TxQueue>,
}

/// Software steering: `rings[from][to]` carries frames worker `from` received for worker `to`.
pub struct SteerRings {
    /// The rings, single producer and single consumer each.
    pub rings: Vec<Vec<Option<Ring>>>,
    /// The hash NICs use, with IronVS's key (shared with the forwarders).
    pub toeplitz: Arc<Toeplitz>,
    /// Hash → worker.
    pub reta: Arc<RetaMap>,
}

/// Everything a worker owns, moved onto its lcore.
pub struct Worker {
    /// Worker index = queue index.
    pub index: u16,
    /// Data ports.
    pub ports: Vec<WorkerPort>,
    /// DPDK port id → index in `ports`.
    pub port_index: Vec<Option<u16>>,
    /// The published configuration and acknowledgements.
    pub shared: Arc<Shared>,
    /// Every worker's inboxes.
    pub mailboxes: Arc<[Mailbox]>,
    /// Software steering rings, when a port needs them.
    pub steer: Option<Arc<SteerRings>>,
    /// For ARP/NDP requests and announcements.
    pub pool: Mempool,
    /// This worker's counters.
    pub counters: Arc<WorkerCounters>,
    /// Connection table, schedulers, forwarding counters.
    pub fwd: Forwarder,
    /// Next-hop MAC addresses.
    pub neigh: Neighbours,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// Set once the initial configuration (the configuration file's or the saved services) is
    /// published; data ports are polled only from then on.
    pub ready: Arc<AtomicBool>,
}

/// Routing and neighbour lookups for the forwarder, over this worker's view.
type Topo<'a> = RoutedTopology<'a, Mbuf, HOLD_PER_NEIGHBOUR>;

/// The view of configuration `snap` and neighbour cache `neigh`.
fn topo<'a>(snap: &'a Published, neigh: &'a Neighbours) -> Topo<'a> {
    RoutedTopology {
        routes: &snap.routes,
        macs: &snap.macs,
        neigh,
    }
}

/// Where the frames of a burst came in.
#[derive(Debug, Clone, Copy)]
enum InPort {
    /// All on data port `pi` (an RX burst).
    All(usize),
    /// Each on the port its mbuf names (frames steered from other workers).
    Each,
}

/// Per-loop transmit and steering buffers.
struct Bursts {
    tx: Vec<MbufBurst<BURST>>,
    kernel: Vec<MbufBurst<BURST>>,
    steer: Vec<MbufBurst<BURST>>,
    requests: Vec<NeighRequest>,
}

impl Worker {
    /// Runs the poll loop until `stop` is set.
    pub fn run(mut self) {
        let Some(clock) = Clock::new() else {
            log::error!("worker {}: no TSC frequency; not starting", self.index);
            return;
        };
        let shared = Arc::clone(&self.shared);
        let mut cache = arc_swap::Cache::new(&shared.current);
        let steer = self.steer.clone();
        let mailboxes = Arc::clone(&self.mailboxes);
        let inbox = &mailboxes[usize::from(self.index)];
        let n = self.ports.len();
        let workers = self.mailboxes.len();
        let mut b = Bursts {
            tx: (0..n).map(|_| MbufBurst::default()).collect(),
            kernel: (0..n).map(|_| MbufBurst::default()).collect(),
            steer: (0..workers).map(|_| MbufBurst::default()).collect(),
            requests: Vec::with_capacity(64),
        };
        let mut rx: MbufBurst<BURST> = MbufBurst::default();
        let mut local: MbufBurst<BURST> = MbufBurst::default();
        let mut installed = 0u64;
        let mut next_timer = 0u64;
        let mut next_held = 0u64;
        let mut ready = false;
        let q = QueueId(self.index);
        let ceiling = ceiling::route();
        while !self.stop.load(Ordering::Relaxed) {
            let now = clock.now_ms();
            let snap: &Arc<Published> = cache.load();
            if snap.generation() != installed {
                self.fwd.install(&snap.fwd);
                // Before the acknowledgement: once the control plane has it, the slots of the
                // servers this configuration removed show what they still hold.
                self.publish_held();
                self.warm_neighbours(snap, now);
                installed = snap.generation();
                if self.index == 0 {
                    self.announce(snap, &mut b);
                }
                shared.acks[usize::from(self.index)].store(installed, Ordering::Release);
            }
            self.read_inboxes(inbox, snap, &mut b, now);
            if !ready {
                ready = self.ready.load(Ordering::Acquire);
            }

            for pi in (0..n).filter(|_| ready) {
                let got = self.ports[pi].receive(q, &mut rx);
                if got > 0 {
                    self.counters.rx.add(got as u64);
                    if let Some(to) = ceiling::bypass(ceiling, pi) {
                        self.send_all(to, &mut rx, &mut b);
                    } else if self.ports[pi].steering == Steering::Software {
                        // Frames another worker owns leave first; the rest are forwarded here.
                        for m in rx.drain() {
                            match self.owner_of(&m) {
                                Some(to) => self.steer_out(to, m, &mut b),
                                None => {
                                    // `local` has rx's capacity and starts empty: never full.
                                    let _ = local.push(m);
                                }
                            }
                        }
                        self.forward_burst(snap, &mut local, InPort::All(pi), &mut b, now);
                    } else {
                        self.forward_burst(snap, &mut rx, InPort::All(pi), &mut b, now);
                    }
                }
                if self.ports[pi].kernel.is_some() {
                    let got = self.ports[pi].kernel_receive(q, &mut rx);
                    if got > 0 {
                        self.counters.from_kernel.add(got as u64);
                        for m in rx.drain() {
                            self.tx(pi, m, &mut b);
                        }
                    }
                }
            }
            if let Some(steer) = &steer {
                for from in 0..workers {
                    if let Some(ring) = &steer.rings[from][usize::from(self.index)] {
                        let got = ring.dequeue_burst(&mut rx);
                        if got > 0 {
                            self.counters.steered_in.add(got as u64);
                            self.forward_burst(snap, &mut rx, InPort::Each, &mut b, now);
                        }
                    }
                }
            }
            self.send_aliases();
            self.flush_all(&mut b);

            if now >= next_timer {
                next_timer = now + 1;
                self.timers(snap, &mut b, now);
            }
            if now >= next_held {
                next_held = now + HELD_PUBLISH_MS;
                self.publish_held();
            }
        }
        b.tx.iter_mut()
            .chain(b.kernel.iter_mut())
            .for_each(MbufBurst::clear);
        b.steer.iter_mut().for_each(MbufBurst::clear);
    }

    /// Forwards a burst of frames (emptying it): the forwarder decides every frame's verdict,
    /// then each frame goes where its verdict says.
    fn forward_burst(
        &mut self,
        snap: &Published,
        burst: &mut MbufBurst<BURST>,
        from: InPort,
        b: &mut Bursts,
        now: u64,
    ) {
        let n = burst.len().min(BURST);
        let mut ports = [0u16; BURST];
        let mut verdicts = [Verdict::Drop(DropReason::Malformed); BURST];
        if let InPort::Each = from {
            for (i, p) in ports[..n].iter_mut().enumerate() {
                *p = burst.get(i).map_or(0, |m| self.in_port(m) as u16);
            }
        }
        let topo = topo(snap, &self.neigh);
        let bufs = burst.as_mut_slice();
        match from {
            InPort::All(pi) => {
                ports[..n].fill(pi as u16);
                let vs = &mut verdicts[..n];
                let pf = &CpuPrefetch;
                self.fwd
                    .process_burst(&snap.fwd, &topo, pf, pi as u16, bufs, vs, now);
            }
            // One forwarder call per run of frames from the same port.
            InPort::Each => {
                let mut start = 0;
                while start < n {
                    let p = ports[start];
                    let end = ports[start..n]
                        .iter()
                        .position(|&q| q != p)
                        .map_or(n, |k| start + k);
                    if let (Some(bs), Some(vs)) =
                        (bufs.get_mut(start..end), verdicts.get_mut(start..end))
                    {
                        let pf = &CpuPrefetch;
                        self.fwd.process_burst(&snap.fwd, &topo, pf, p, bs, vs, now);
                    }
                    start = end;
                }
            }
        }
        // The common case: the whole burst leaves by one port. Its mbufs move to that port's TX
        // burst in one copy.
        if let Some(&Verdict::Forward { port }) = verdicts.first() {
            let out = usize::from(port);
            if n > 0
                && verdicts[..n]
                    .iter()
                    .all(|v| *v == Verdict::Forward { port })
                && self.send_all(out, burst, b)
            {
                return;
            }
        }
        let mut aliases_read = false;
        for ((m, v), &p) in burst.drain().zip(verdicts.iter()).zip(ports.iter()) {
            self.dispatch(snap, usize::from(p), m, v, &mut aliases_read, b, now);
        }
    }

    /// Moves every mbuf of `burst` to the TX burst of data port `out`, transmitting that first if
    /// they do not fit; false (nothing moved) if `out` is not a data port.
    #[inline]
    fn send_all(&self, out: usize, burst: &mut MbufBurst<BURST>, b: &mut Bursts) -> bool {
        let (Some(p), Some(tx)) = (self.ports.get(out), b.tx.get_mut(out)) else {
            return false;
        };
        if tx.spare() < burst.len() {
            flush(tx, p.egress(QueueId(self.index)), &self.counters, true);
        }
        // After a flush the TX burst is empty and takes a whole RX burst.
        tx.take_from(burst);
        if !burst.is_empty() {
            self.counters.drops[WorkerDrop::TxFull as usize].add(burst.len() as u64);
            burst.clear();
        }
        true
    }

    /// Sends one forwarded frame where its verdict says. A NAT reply that missed gets a second
    /// look if its alias may have arrived meanwhile (`aliases_read`: this burst already read the
    /// inbox).
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        snap: &Published,
        pi: usize,
        mut m: Mbuf,
        v: &Verdict,
        aliases_read: &mut bool,
        b: &mut Bursts,
        now: u64,
    ) {
        // By reference: the forwarder has just written the verdicts field by field, and reading
        // one whole would stall on store forwarding.
        if let &Verdict::Forward { port } = v {
            self.tx(usize::from(port), m, b);
            return;
        }
        let mut v = *v;
        if v == Verdict::Drop(DropReason::ReplyMiss) {
            if !self.mailboxes[usize::from(self.index)].aliases.is_empty() {
                // The owner queues a NAT alias before sending the packet the reply answers; a
                // reply racing our inbox read finds its alias there.
                self.read_aliases(now);
                *aliases_read = true;
            }
            if *aliases_read {
                // One packet, one verdict: the first look's miss is taken back and the retry's
                // verdict is the one counted.
                self.fwd.stats().undo_drop(DropReason::ReplyMiss);
                v = self.forward(snap, pi, &mut m, now);
                if v != Verdict::Drop(DropReason::ReplyMiss) {
                    self.counters.reply_races.inc();
                }
            }
        }
        match v {
            Verdict::Forward { port } => self.tx(usize::from(port), m, b),
            Verdict::Resolve { port, next_hop } => self.resolve(snap, port, next_hop, m, b, now),
            Verdict::Kernel => self.local(snap, pi, m, b, now),
            Verdict::Drop(DropReason::ReplyMiss) => {
                if log::log_enabled!(log::Level::Debug) {
                    if let Ok(pf) = parse_frame(m.data()) {
                        log::debug!(
                            "worker {}: reply miss {}:{} -> {}:{} flags {:#04x} (port {pi}, rss {:?})",
                            self.index, pf.src, pf.sport, pf.dst, pf.dport, pf.tcp_flags,
                            self.owner_of(&m)
                        );
                    }
                }
            }
            Verdict::Drop(_) => drop(m),
        }
    }

    /// Forwards one frame (the second look of a NAT reply).
    fn forward(&mut self, snap: &Published, pi: usize, m: &mut Mbuf, now: u64) -> Verdict {
        let topo = topo(snap, &self.neigh);
        self.fwd.process(&snap.fwd, &topo, pi as u16, m, now)
    }

    /// Which worker software steering gives this frame to, if not this one.
    #[inline]
    fn owner_of(&self, m: &Mbuf) -> Option<usize> {
        let steer = self.steer.as_deref()?;
        let pf = parse_frame(m.data()).ok()?;
        let key = pf.flow_key()?;
        let q = usize::from(steer.reta.queue(steer.toeplitz.hash_flow(&key)));
        (q != usize::from(self.index)).then_some(q)
    }

    fn in_port(&self, m: &Mbuf) -> usize {
        self.port_index
            .get(usize::from(m.port().0))
            .copied()
            .flatten()
            .map(usize::from)
            .unwrap_or(0)
    }

    /// Passes queued NAT reply aliases to the workers RSS hands the replies to.
    fn send_aliases(&mut self) {
        let mailboxes = &self.mailboxes;
        let counters = &self.counters;
        for msg in self.fwd.drain_aliases() {
            match mailboxes.get(usize::from(msg.queue)) {
                Some(mb) if mb.aliases.push(msg).is_ok() => {}
                _ => counters.alias_inbox_full.inc(),
            }
        }
    }

    /// Reads this worker's alias inbox now (a reply may be racing its alias).
    fn read_aliases(&mut self, now: u64) {
        let mailboxes = Arc::clone(&self.mailboxes);
        accept_aliases(&mut self.fwd, &mailboxes[usize::from(self.index)], now);
    }

    fn read_inboxes(&mut self, inbox: &Mailbox, snap: &Published, b: &mut Bursts, now: u64) {
        accept_aliases(&mut self.fwd, inbox, now);
        drain(&inbox.learned, |l| {
            self.learn(snap, l.port, l.ip, l.mac, b, now)
        });
        drain(&inbox.requests, |req| self.answer(req, now));
    }

    /// Answers a control-plane request (off the packet path: it may allocate).
    fn answer(&self, req: Request, now: u64) {
        match req {
            Request::Connections {
                filter,
                limit,
                reply,
            } => {
                let mut out = Vec::new();
                let mut total = 0u64;
                for (_, c) in self.fwd.conns().iter() {
                    if c.is_template() || c.is_alias() {
                        continue;
                    }
                    let e = ConnEntry {
                        proto: c.proto,
                        client_addr: c.client.to_ip(),
                        client_port: c.cport,
                        vip: c.vip.to_ip(),
                        vport: c.vport,
                        local_addr: (c.local != Addr::UNSPECIFIED).then(|| c.local.to_ip()),
                        local_port: c.lport,
                        real_addr: c.real.to_ip(),
                        real_port: c.rport,
                        state: c.state_name().to_string(),
                        expires_s: (c.remaining_ms(now) / 1000) as u32,
                    };
                    if filter.matches(&e) {
                        total += 1;
                        if out.len() < limit {
                            out.push(e);
                        }
                    }
                }
                let _ = reply.try_send((out, total));
            }
        }
    }

    /// Expiry, neighbour timers, published gauges.
    fn timers(&mut self, snap: &Published, b: &mut Bursts, now: u64) {
        self.fwd.expire(now, EXPIRE_BUDGET);
        b.requests.clear();
        let requests = &mut b.requests;
        self.neigh.poll(now, |r| requests.push(r), drop);
        let reqs = std::mem::take(&mut b.requests);
        for r in &reqs {
            let Some(&mac) = snap.macs.get(usize::from(r.port)) else {
                continue;
            };
            let len = if r.target.is_v4() {
                neigh::emit::ARP_FRAME_LEN
            } else {
                neigh::emit::NS_FRAME_LEN
            };
            if let Some(m) = self.emit(len, |out| neigh::emit::request(out, mac, r)) {
                self.counters.neigh_requests.inc();
                self.tx(usize::from(r.port), m, b);
            }
        }
        b.requests = reqs;
        let conns = self.fwd.conns();
        self.counters.conns.set(conns.len() as u64);
        for s in snap.fwd.services() {
            for d in s.dests.iter() {
                let i = d.id.index();
                if let (Some(l), Some(a), Some(ia)) = (
                    conns.loads().get(i),
                    self.counters.active.get(i),
                    self.counters.inactive.get(i),
                ) {
                    a.store(l.active, Ordering::Relaxed);
                    ia.store(l.inactive, Ordering::Relaxed);
                }
            }
        }
    }
}

impl Worker {
    /// Publishes, for every real-server slot, the connections and templates this core holds on
    /// it ([`WorkerCounters::held`]).
    fn publish_held(&self) {
        let loads = self.fwd.conns().loads();
        for (l, held) in loads.iter().zip(self.counters.held.iter()) {
            held.store(l.conns() + l.persistent, Ordering::Relaxed);
        }
    }
}

/// Indexes every NAT reply alias waiting in `inbox`.
fn accept_aliases(fwd: &mut Forwarder, inbox: &Mailbox, now: u64) {
    drain(&inbox.aliases, |msg| {
        fwd.accept_alias(&msg, now);
    });
}
