//! The worker's transmit side: TX bursts per port, kernel-interface bursts, and the
//! software-steering rings to other workers; what a queue does not take is dropped and counted.
//! Also how a worker reaches its queues: through the leases it holds, or the per-burst flag.

use dataplane::buf::PacketBuf;
use dataplane::wire::MacAddr;
use dpdk_bindings::port::TxQueue;
use dpdk_bindings::{Mbuf, MbufBurst, Port, QueueId};

use super::{Bursts, Worker, WorkerCounters, WorkerDrop, WorkerPort, BURST};

/// Where a worker transmits on one port: its leased TX queue, or, when no lease could be taken,
/// its queue through the port's per-burst flag.
#[derive(Clone, Copy)]
pub(super) enum Egress<'a> {
    Leased(&'a TxQueue),
    Shared(&'a Port, QueueId),
}

impl Egress<'_> {
    #[inline]
    fn tx_burst(self, burst: &mut MbufBurst<BURST>) -> usize {
        match self {
            Egress::Leased(t) => t.tx_burst(burst),
            Egress::Shared(p, q) => p.tx_burst(q, burst),
        }
    }
}

impl WorkerPort {
    /// Receives on worker queue `q` of the data port: through its lease, or the per-burst flag.
    #[inline]
    pub(super) fn receive(&self, q: QueueId, out: &mut MbufBurst<BURST>) -> usize {
        match &self.rx {
            Some(l) => l.rx_burst(out),
            None => self.port.rx_burst(q, out),
        }
    }

    /// [`WorkerPort::receive`] on the kernel interface (nothing without one).
    #[inline]
    pub(super) fn kernel_receive(&self, q: QueueId, out: &mut MbufBurst<BURST>) -> usize {
        match (&self.kernel_rx, &self.kernel) {
            (Some(l), _) => l.rx_burst(out),
            (None, Some(k)) => k.rx_burst(q, out),
            (None, None) => 0,
        }
    }

    /// How worker queue `q` transmits on the data port.
    #[inline]
    pub(super) fn egress(&self, q: QueueId) -> Egress<'_> {
        match &self.tx {
            Some(t) => Egress::Leased(t),
            None => Egress::Shared(&self.port, q),
        }
    }

    /// How worker queue `q` transmits on the kernel interface, if there is one.
    #[inline]
    pub(super) fn kernel_egress(&self, q: QueueId) -> Option<Egress<'_>> {
        match (&self.kernel_tx, &self.kernel) {
            (Some(t), _) => Some(Egress::Leased(t)),
            (None, Some(k)) => Some(Egress::Shared(k, q)),
            (None, None) => None,
        }
    }
}

impl Worker {
    pub(super) fn steer_out(&mut self, to: usize, m: Mbuf, b: &mut Bursts) {
        self.counters.steered_out.inc();
        if let Err(m) = b.steer[to].push(m) {
            self.flush_steer(to, b);
            if b.steer[to].push(m).is_err() {
                self.counters.count_drop(WorkerDrop::SteerFull);
            }
        }
    }

    pub(super) fn flush_steer(&self, to: usize, b: &mut Bursts) {
        if b.steer[to].is_empty() {
            return;
        }
        if let Some(ring) = self
            .steer
            .as_deref()
            .and_then(|s| s.rings[usize::from(self.index)][to].as_ref())
        {
            ring.enqueue_burst(&mut b.steer[to]);
        }
        let left = b.steer[to].len();
        if left > 0 {
            self.counters.drops[WorkerDrop::SteerFull as usize].add(left as u64);
            b.steer[to].clear();
        }
    }

    #[inline(always)]
    pub(super) fn tx(&self, port: usize, m: Mbuf, b: &mut Bursts) {
        let Some(p) = self.ports.get(port) else {
            return;
        };
        let out = Some(p.egress(QueueId(self.index)));
        push_or_flush(&mut b.tx[port], m, out, &self.counters);
    }

    pub(super) fn flush_all(&self, b: &mut Bursts) {
        let q = QueueId(self.index);
        for (pi, p) in self.ports.iter().enumerate() {
            flush(&mut b.tx[pi], p.egress(q), &self.counters, true);
            if let Some(k) = p.kernel_egress(q) {
                flush(&mut b.kernel[pi], k, &self.counters, false);
            }
        }
        for to in 0..b.steer.len() {
            self.flush_steer(to, b);
        }
    }
}

/// Writes the Ethernet destination and source of a frame.
#[inline]
pub(super) fn set_macs(m: &mut Mbuf, dst: MacAddr, src: MacAddr) {
    let f = m.frame_mut();
    if f.len() >= 12 {
        f[0..6].copy_from_slice(&dst.0);
        f[6..12].copy_from_slice(&src.0);
    }
}

/// Queues `m` on a TX burst, transmitting the burst first if it is full.
#[inline(always)]
pub(super) fn push_or_flush(
    burst: &mut MbufBurst<BURST>,
    m: Mbuf,
    out: Option<Egress>,
    counters: &WorkerCounters,
) {
    if let Err(m) = burst.push(m) {
        flush_then_push(burst, m, out, counters);
    }
}

#[cold]
#[inline(never)]
fn flush_then_push(
    burst: &mut MbufBurst<BURST>,
    m: Mbuf,
    out: Option<Egress>,
    counters: &WorkerCounters,
) {
    if let Some(out) = out {
        flush(burst, out, counters, true);
    }
    if burst.push(m).is_err() {
        counters.count_drop(WorkerDrop::TxFull);
    }
}

/// Transmits a burst; what the queue does not take is dropped and counted.
#[inline]
pub(super) fn flush(
    burst: &mut MbufBurst<BURST>,
    out: Egress,
    counters: &WorkerCounters,
    data: bool,
) {
    if burst.is_empty() {
        return;
    }
    let sent = out.tx_burst(burst);
    if data {
        counters.tx.add(sent as u64);
    }
    let left = burst.len();
    if left > 0 {
        counters.drops[WorkerDrop::TxFull as usize].add(left as u64);
        burst.clear();
    }
}
