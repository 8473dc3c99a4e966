//! Queues held by one thread for as long as it uses them.
//!
//! [`Port::rx_burst`] and [`Port::tx_burst`] take the queue's busy flag for each burst: an atomic
//! swap per call, and a worker polls every one of its RX queues on every loop, with or without
//! traffic (~1.5 % of a worker forwarding 30 Mpps). A worker leases its queues instead: the flag
//! is taken once, when the lease is made, and given back when it is dropped; meanwhile the
//! per-burst calls on that queue, from any thread, move nothing, as for any busy queue.

use std::sync::Arc;

use super::{Port, QueueId};
use crate::burst::MbufBurst;
use crate::sys;

/// A queue's busy flag, taken for as long as this value lives: what both leases are.
#[derive(Debug)]
struct Held {
    port: Arc<Port>,
    q: QueueId,
    tx: bool,
}

impl Held {
    /// Takes the flag of RX (or, with `tx`, TX) queue `q` of a started `port`.
    fn take(port: &Arc<Port>, q: QueueId, tx: bool) -> Option<Held> {
        let flags = if tx { &port.txq } else { &port.rxq };
        if !port.started || !flags.get(usize::from(q.0))?.take() {
            return None;
        }
        Some(Held {
            port: Arc::clone(port),
            q,
            tx,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let flags = if self.tx {
            &self.port.txq
        } else {
            &self.port.rxq
        };
        if let Some(flag) = flags.get(usize::from(self.q.0)) {
            flag.release();
        }
    }
}

/// RX queue `q` of a started port, held by the thread that leased it ([`Port::lease_rx`]).
#[derive(Debug)]
pub struct RxQueue(Held);

/// TX queue `q` of a started port, held by whoever leased it ([`Port::lease_tx`]).
#[derive(Debug)]
pub struct TxQueue(Held);

impl Port {
    /// Leases RX queue `q` until the returned [`RxQueue`] is dropped; `None` if the queue is not
    /// configured, the port is not started, or another lease or a burst holds the queue.
    pub fn lease_rx(self: &Arc<Port>, q: QueueId) -> Option<RxQueue> {
        Held::take(self, q, false).map(RxQueue)
    }

    /// Leases TX queue `q` until the returned [`TxQueue`] is dropped; `None` as for
    /// [`Port::lease_rx`].
    pub fn lease_tx(self: &Arc<Port>, q: QueueId) -> Option<TxQueue> {
        Held::take(self, q, true).map(TxQueue)
    }
}

impl RxQueue {
    /// The port this queue belongs to.
    pub fn port(&self) -> &Arc<Port> {
        &self.0.port
    }

    /// Receives up to `out.spare()` packets into `out`; returns how many ([`Port::rx_burst`]
    /// without the per-burst flag).
    #[inline]
    pub fn rx_burst<const N: usize>(&self, out: &mut MbufBurst<N>) -> usize {
        let (ptr, spare) = out.spare_ptr();
        let spare = u16::try_from(spare).unwrap_or(u16::MAX);
        // SAFETY: the lease holds the queue's flag (taken in `lease_rx` on a started port whose
        // queue exists), so no other thread is in this queue; the port cannot be stopped while
        // it is shared through the `Arc` the lease keeps; ptr has `spare` writable slots.
        let n = unsafe { sys::rte_eth_rx_burst(self.0.port.id.0, self.0.q.0, ptr, spare) };
        // SAFETY: the PMD wrote n received mbufs, now owned by the burst.
        unsafe { out.commit(usize::from(n)) };
        usize::from(n)
    }
}

impl TxQueue {
    /// The port this queue belongs to.
    pub fn port(&self) -> &Arc<Port> {
        &self.0.port
    }

    /// Sends mbufs from the front of `burst`; what the queue did not take stays in `burst`,
    /// shifted to the front. Returns how many were sent ([`Port::tx_burst`] without the
    /// per-burst flag).
    #[inline]
    pub fn tx_burst<const N: usize>(&self, burst: &mut MbufBurst<N>) -> usize {
        if burst.is_empty() {
            return 0;
        }
        let len = u16::try_from(burst.len()).unwrap_or(u16::MAX);
        // SAFETY: the lease holds the queue's flag (taken in `lease_tx` on a started port whose
        // queue exists), so no other thread is in this queue; the port cannot be stopped while
        // it is shared through the `Arc` the lease keeps; slots 0..len are owned mbufs, and the
        // PMD takes ownership of the first n.
        let n = unsafe { sys::rte_eth_tx_burst(self.0.port.id.0, self.0.q.0, burst.as_ptr(), len) };
        burst.consume_front(usize::from(n));
        usize::from(n)
    }
}
