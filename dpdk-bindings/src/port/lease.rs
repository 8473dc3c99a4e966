//! RX queues held by one thread for as long as it polls them.
//!
//! [`Port::rx_burst`] takes the queue's busy flag for each burst: an atomic swap per call, and a
//! worker polls every one of its RX queues on every loop, with or without traffic (~1.5 % of a
//! worker forwarding 30 Mpps). A worker leases its queues instead: the flag is taken once, when
//! the lease is made, and given back when it is dropped; meanwhile `Port::rx_burst` on that queue
//! from any thread moves nothing, as for any busy queue.

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
