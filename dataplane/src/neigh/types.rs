//! The neighbour cache's configuration, answers, requests, listings and counters.

use crate::flow::Addr;
use crate::stats::{Counter, Gauge};
use crate::wire::MacAddr;

/// Timers and sizes of a neighbour cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighConfig {
    /// Maximum number of entries.
    pub capacity: usize,
    /// Interval between requests for one entry (Linux `retrans_time_ms`, 1 s).
    pub retrans_ms: u64,
    /// Requests sent before giving up (Linux `mcast_solicit`/`ucast_solicit`, 3).
    pub max_probes: u8,
    /// How long a confirmation keeps an entry REACHABLE (Linux `base_reachable_time_ms`, 30 s).
    pub reachable_ms: u64,
    /// How long an unused STALE entry stays (Linux `gc_stale_time`, 60 s).
    pub gc_stale_ms: u64,
    /// Packets held across all entries at once, so that a flood towards next hops that never
    /// answer cannot take the mbuf pool (4096 entries × 4 packets would be 16k mbufs).
    /// Default 256: full queues of 4 for 64 next hops resolving at the same time, a small share of
    /// a pool of 8k–16k mbufs even with several workers. Linux caps each neighbour's queue
    /// (`unres_qlen_bytes`) but not the table; this adds the table-wide bound.
    pub max_held: usize,
}

impl Default for NeighConfig {
    fn default() -> Self {
        NeighConfig {
            capacity: 4096,
            retrans_ms: 1000,
            max_probes: 3,
            reachable_ms: 30_000,
            gc_stale_ms: 60_000,
            max_held: 256,
        }
    }
}

/// The state of an entry (see the module diagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighState {
    /// Resolution in progress; packets are held.
    Incomplete,
    /// Confirmed within `reachable_ms`.
    Reachable,
    /// Not confirmed lately; still used, refreshed when used.
    Stale,
    /// Used while stale: unicast requests are refreshing it.
    Probe,
    /// Configured by the operator: never expires, never probed, not changed by ARP/NDP.
    Permanent,
}

/// Why [`super::NeighCache::add_static`] refused an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticError {
    /// The cache has no free entry.
    Full,
    /// The MAC is all-zero or a group (multicast/broadcast) address.
    BadMac,
}

/// The answer of [`super::NeighCache::resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Send to this MAC.
    Known(MacAddr),
    /// Resolution in progress: [`super::NeighCache::hold`] the packet.
    Pending,
    /// The cache is full: drop the packet (counted in `table_full`).
    Full,
}

/// An ARP request or neighbour solicitation the worker must send (see [`super::emit::request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Egress port.
    pub port: u16,
    /// The address to resolve.
    pub target: Addr,
    /// Our address on the port (ARP sender / IPv6 source).
    pub src: Addr,
    /// `Some(mac)` for a unicast refresh probe, `None` for broadcast / solicited-node multicast.
    pub unicast_to: Option<MacAddr>,
}

/// A snapshot of one entry, for listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighEntry {
    /// Port.
    pub port: u16,
    /// Neighbour address.
    pub ip: Addr,
    /// Its MAC, once known.
    pub mac: Option<MacAddr>,
    /// State.
    pub state: NeighState,
    /// Packets held.
    pub held: usize,
    /// When it was created (INCOMPLETE) or last confirmed.
    pub updated_ms: u64,
}

/// Counters and gauges of one cache (single writer: the owning core).
#[derive(Debug, Default)]
pub struct NeighStats {
    /// Requests (ARP requests, neighbour solicitations) handed to the worker to send.
    pub requests_sent: Counter,
    /// Entries confirmed or updated by [`super::NeighCache::learn`].
    pub learned: Counter,
    /// Packets put on a hold queue (cumulative; `held_packets` is the current level).
    pub held: Counter,
    /// Held packets dropped because their queue was full (or no resolution was pending).
    pub hold_drops: Counter,
    /// Packets refused because the cache already held `max_held` packets.
    pub hold_cap_drops: Counter,
    /// Resolutions or refreshes that got no answer.
    pub failures: Counter,
    /// Held packets dropped because their resolution failed.
    pub unresolved_drops: Counter,
    /// Lookups refused because the cache was full.
    pub table_full: Counter,
    /// Entries in the cache (published by [`super::NeighCache::poll`], like the gauges below).
    pub entries: Gauge,
    /// Of those, entries still resolving (INCOMPLETE).
    pub pending: Gauge,
    /// Packets on hold queues now (at most [`NeighConfig::max_held`]).
    pub held_packets: Gauge,
}
