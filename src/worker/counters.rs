//! What a worker counts about itself (beyond the forwarder's counters): frames in and out, the
//! kernel and steering paths, its own drop reasons, and per real server the active/inactive
//! connection counts the control plane sums.

use std::sync::atomic::AtomicU32;

use dataplane::stats::{Counter, Gauge};

/// Why a worker (rather than the forwarder) dropped a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum WorkerDrop {
    /// The TX queue did not take it.
    TxFull,
    /// For the kernel, but the port has no kernel interface.
    NoKernelPath,
    /// Software steering: the owner's ring was full.
    SteerFull,
    /// Waiting for a neighbour, but not held: its queue was full (the oldest is dropped), the
    /// worker already held `max_held_packets`, or the resolution had ended. The neighbour
    /// counters tell which: `hold_full` = `hold_drops` + `hold_cap_drops`.
    HoldFull,
    /// The neighbour cache was full.
    NeighFull,
    /// No mbuf for an ARP/NDP request or announcement.
    NoMbuf,
    /// Not even an Ethernet frame.
    Malformed,
}

impl WorkerDrop {
    /// Number of reasons.
    pub const COUNT: usize = 7;
    /// Every reason, in index order.
    pub const ALL: [WorkerDrop; Self::COUNT] = [
        WorkerDrop::TxFull,
        WorkerDrop::NoKernelPath,
        WorkerDrop::SteerFull,
        WorkerDrop::HoldFull,
        WorkerDrop::NeighFull,
        WorkerDrop::NoMbuf,
        WorkerDrop::Malformed,
    ];

    /// A short name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            WorkerDrop::TxFull => "tx_full",
            WorkerDrop::NoKernelPath => "no_kernel_path",
            WorkerDrop::SteerFull => "steer_full",
            WorkerDrop::HoldFull => "hold_full",
            WorkerDrop::NeighFull => "neigh_full",
            WorkerDrop::NoMbuf => "no_mbuf",
            WorkerDrop::Malformed => "malformed_frame",
        }
    }
}

/// Counters of one worker, written only by that worker.
#[derive(Debug)]
pub struct WorkerCounters {
    /// Frames received from data ports.
    pub rx: Counter,
    /// Frames transmitted on data ports.
    pub tx: Counter,
    /// ARP, NDP and echo replies the director sent as a host.
    pub host_replies: Counter,
    /// Frames passed to another worker by software steering.
    pub steered_out: Counter,
    /// Frames received from other workers by software steering.
    pub steered_in: Counter,
    /// NAT reply aliases not delivered because the other worker's inbox was full.
    pub alias_inbox_full: Counter,
    /// NAT replies that arrived before their alias was read from the inbox and went through on a
    /// second look (not misses).
    pub reply_races: Counter,
    /// Frames from data ports handed to the kernel interface.
    pub to_kernel: Counter,
    /// Frames from the kernel interface sent out of the data port.
    pub from_kernel: Counter,
    /// ARP requests and neighbour solicitations sent.
    pub neigh_requests: Counter,
    /// Gratuitous ARP / unsolicited NA sent.
    pub announcements: Counter,
    /// Frames dropped by the worker, by [`WorkerDrop`].
    pub drops: [Counter; WorkerDrop::COUNT],
    /// Connection-table entries in use.
    pub conns: Gauge,
    /// Per real-server slot: active connections on this core (published every millisecond).
    pub active: Box<[AtomicU32]>,
    /// Per real-server slot: inactive connections on this core.
    pub inactive: Box<[AtomicU32]>,
    /// Per real-server slot: connections and persistence templates on this core, every slot
    /// (removed servers' too), for the control plane's slot allocator (published at every
    /// configuration install and every [`super::HELD_PUBLISH_MS`]).
    pub held: Box<[AtomicU32]>,
}

impl WorkerCounters {
    /// Counters for `dests` real-server slots.
    pub fn new(dests: usize) -> WorkerCounters {
        WorkerCounters {
            rx: Counter::new(),
            tx: Counter::new(),
            host_replies: Counter::new(),
            steered_out: Counter::new(),
            steered_in: Counter::new(),
            alias_inbox_full: Counter::new(),
            reply_races: Counter::new(),
            to_kernel: Counter::new(),
            from_kernel: Counter::new(),
            neigh_requests: Counter::new(),
            announcements: Counter::new(),
            drops: Default::default(),
            conns: Gauge::default(),
            active: (0..dests).map(|_| AtomicU32::new(0)).collect(),
            inactive: (0..dests).map(|_| AtomicU32::new(0)).collect(),
            held: (0..dests).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    #[inline]
    pub(super) fn count_drop(&self, why: WorkerDrop) {
        self.drops[why as usize].inc();
    }
}
