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

/// RX queue `q` of a started port, held by the thread that leased it ([`Port::lease_rx`]).
#[derive(Debug)]
pub struct RxQueue {
    port: Arc<Port>,
    q: QueueId,
}

/// TX queue `q` of a started port, held by whoever leased it ([`Port::lease_tx`]).
#[derive(Debug)]
pub struct TxQueue {
    port: Arc<Port>,
    q: QueueId,
}

impl Port {
    /// Leases RX queue `q` until the returned [`RxQueue`] is dropped; `None` if the queue is not
    /// configured, the port is not started, or another lease or a burst holds the queue.
    pub fn lease_rx(self: &Arc<Port>, q: QueueId) -> Option<RxQueue> {
        if !self.started || !self.rxq.get(usize::from(q.0))?.take() {
            return None;
        }
        Some(RxQueue {
            port: Arc::clone(self),
            q,
        })
    }

    /// Leases TX queue `q` until the returned [`TxQueue`] is dropped; `None` as for
    /// [`Port::lease_rx`].
    pub fn lease_tx(self: &Arc<Port>, q: QueueId) -> Option<TxQueue> {
        if !self.started || !self.txq.get(usize::from(q.0))?.take() {
            return None;
        }
        Some(TxQueue {
            port: Arc::clone(self),
            q,
        })
    }
}

impl RxQueue {
    /// The port this queue belongs to.
    pub fn port(&self) -> &Arc<Port> {
        &self.port
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
        let n = unsafe { sys::rte_eth_rx_burst(self.port.id.0, self.q.0, ptr, spare) };
        // SAFETY: the PMD wrote n received mbufs, now owned by the burst.
        unsafe { out.commit(usize::from(n)) };
        usize::from(n)
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        if let Some(flag) = self.port.rxq.get(usize::from(self.q.0)) {
            flag.release();
        }
    }
}

impl TxQueue {
    /// The port this queue belongs to.
    pub fn port(&self) -> &Arc<Port> {
        &self.port
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
        let n = unsafe { sys::rte_eth_tx_burst(self.port.id.0, self.q.0, burst.as_ptr(), len) };
        burst.consume_front(usize::from(n));
        usize::from(n)
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        if let Some(flag) = self.port.txq.get(usize::from(self.q.0)) {
            flag.release();
        }
    }
}
