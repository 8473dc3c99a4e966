//! What cores tell each other without sharing state: per-worker inboxes, lock-free and bounded,
//! allocated once at start.
//!
//! - NAT reply aliases: the owner of a new NAT connection tells the core that RSS hands the
//!   replies to, before it transmits the packet that will make the real server answer.
//! - Learned neighbours: ARP replies and NDP advertisements land on one core; every core's
//!   neighbour cache needs them.
//! - Requests from the control plane (connection listings), answered between bursts.

use std::sync::mpsc::SyncSender;

use control_api::{ConnEntry, ConnFilter};
use crossbeam_queue::ArrayQueue;
use dataplane::flow::Addr;
use dataplane::fwd::AliasMsg;
use dataplane::wire::MacAddr;

/// Room in each inbox; a full inbox is counted by the sender.
const ALIASES: usize = 4096;
const LEARNED: usize = 256;
const REQUESTS: usize = 16;

/// A neighbour one core learned, for the others.
#[derive(Debug, Clone, Copy)]
pub struct Learned {
    /// Port it was seen on.
    pub port: u16,
    /// Its address.
    pub ip: Addr,
    /// Its MAC.
    pub mac: MacAddr,
}

/// A request from the control plane.
pub enum Request {
    /// List this core's connections matching `filter`, at most `limit`.
    Connections {
        /// Which connections.
        filter: ConnFilter,
        /// At most this many.
        limit: usize,
        /// Where the answer goes (with the total number matching).
        reply: SyncSender<(Vec<ConnEntry>, u64)>,
    },
}

/// One worker's inboxes.
pub struct Mailbox {
    /// NAT reply aliases from other cores.
    pub aliases: ArrayQueue<AliasMsg>,
    /// Neighbours learned by other cores.
    pub learned: ArrayQueue<Learned>,
    /// Control-plane requests.
    pub requests: ArrayQueue<Request>,
}

/// Hands every message waiting in `q` to `f`. Workers poll their inboxes on every loop, and the
/// inboxes are nearly always empty: `pop` on an empty queue confirms it with a full fence (a
/// locked instruction, three per loop for the three inboxes, ~1 % of the worker at full rate),
/// while the emptiness check is two plain loads. A message pushed while the check runs waits
/// for the next loop, microseconds later.
#[inline]
pub fn drain<T>(q: &ArrayQueue<T>, mut f: impl FnMut(T)) {
    if q.is_empty() {
        return;
    }
    while let Some(m) = q.pop() {
        f(m);
    }
}

impl Default for Mailbox {
    fn default() -> Self {
        Mailbox {
            aliases: ArrayQueue::new(ALIASES),
            learned: ArrayQueue::new(LEARNED),
            requests: ArrayQueue::new(REQUESTS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_drain_takes_every_waiting_message_in_order() {
        let q = ArrayQueue::new(4);
        let mut got = Vec::new();
        drain(&q, |m: u32| got.push(m));
        assert!(got.is_empty());
        for m in [7, 8, 9] {
            q.push(m).unwrap();
        }
        drain(&q, |m| got.push(m));
        assert_eq!(got, [7, 8, 9]);
        assert!(q.is_empty());
    }
}
