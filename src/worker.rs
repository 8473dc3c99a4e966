//! The poll loop of one worker lcore: it owns RX/TX queue `i` of every port, receives bursts,
//! hands each frame to the data plane and transmits what comes back, until told to stop.
//!
//! Everything a worker writes (its counters) is written by it alone; the main thread only reads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dataplane::host::{HostIface, HostVerdict};
use dataplane::stats::Counter;
use dpdk_bindings::{MbufBurst, Port, QueueId};

/// Frames per RX/TX burst.
pub const BURST: usize = 32;

/// Why a worker dropped a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum WorkerDrop {
    /// Neither for the director itself nor load-balanced (yet).
    NotHandled,
    /// Not parseable as a frame the director answers.
    Malformed,
    /// The TX queue was full.
    TxFull,
}

impl WorkerDrop {
    /// Number of reasons.
    pub const COUNT: usize = 3;
    /// Every reason, in index order.
    pub const ALL: [WorkerDrop; Self::COUNT] = [
        WorkerDrop::NotHandled,
        WorkerDrop::Malformed,
        WorkerDrop::TxFull,
    ];

    /// A short name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            WorkerDrop::NotHandled => "not_handled",
            WorkerDrop::Malformed => "malformed",
            WorkerDrop::TxFull => "tx_full",
        }
    }
}

/// Counters of one worker, written only by that worker.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Frames received.
    pub rx: Counter,
    /// Frames transmitted.
    pub tx: Counter,
    /// ARP and ICMP replies the director sent as a host.
    pub host_replies: Counter,
    /// Frames dropped, by [`WorkerDrop`].
    pub drops: [Counter; WorkerDrop::COUNT],
}

impl WorkerCounters {
    #[inline]
    fn count_drop(&self, why: WorkerDrop) {
        self.drops[why as usize].inc();
    }
}

/// One port as a worker sees it: the port, the queue pair it owns, and the director's identity there.
pub struct WorkerPort {
    /// The shared port (queues are used by one worker each).
    pub port: Arc<Port>,
    /// This worker's RX/TX queue on the port.
    pub queue: QueueId,
    /// The director's MAC and addresses on this port.
    pub iface: Arc<HostIface>,
}

/// Runs the poll loop until `stop` is set.
pub fn run(ports: Vec<WorkerPort>, counters: Arc<WorkerCounters>, stop: Arc<AtomicBool>) {
    let mut rx: MbufBurst<BURST> = MbufBurst::default();
    let mut tx: MbufBurst<BURST> = MbufBurst::default();
    while !stop.load(Ordering::Relaxed) {
        for wp in &ports {
            let n = wp.port.rx_burst(wp.queue, &mut rx);
            if n == 0 {
                continue;
            }
            counters.rx.add(n as u64);
            for mut m in rx.drain() {
                match dataplane::host::handle(&mut m, &wp.iface) {
                    HostVerdict::Reply => {
                        counters.host_replies.inc();
                        // The burst holds as many as RX delivered, so this cannot overflow.
                        if let Err(m) = tx.push(m) {
                            drop(m);
                            counters.count_drop(WorkerDrop::TxFull);
                        }
                    }
                    HostVerdict::NotForHost => counters.count_drop(WorkerDrop::NotHandled),
                    HostVerdict::Malformed => counters.count_drop(WorkerDrop::Malformed),
                }
            }
            flush(wp, &mut tx, &counters);
        }
    }
}

/// Transmits a burst; what the queue does not take is dropped and counted.
#[inline]
fn flush(wp: &WorkerPort, tx: &mut MbufBurst<BURST>, counters: &WorkerCounters) {
    if tx.is_empty() {
        return;
    }
    let sent = wp.port.tx_burst(wp.queue, tx);
    counters.tx.add(sent as u64);
    let unsent = tx.len();
    if unsent > 0 {
        counters.drops[WorkerDrop::TxFull as usize].add(unsent as u64);
        tx.clear();
    }
}
