//! The per-core neighbour cache: IPv4 (ARP) and IPv6 (NDP) next hops to MAC addresses.
//!
//! Simplified RFC 4861 §7.3 / Linux `neighbour.c` semantics, driven by `now_ms` passed in:
//!
//! ```text
//!   resolve (miss)          learn                 reachable_ms passes
//!  ───────────> INCOMPLETE ───────> REACHABLE ─────────────────────> STALE
//!                 │ max_probes        ▲  ▲ learn                        │ resolve (used)
//!                 │ unanswered        │  └───────── PROBE <─────────────┘
//!                 ▼                   │               │ max_probes unanswered
//!              removed ◄──────────────┴───────────────┘  (STALE unused gc_stale_ms: removed)
//! ```
//!
//! INCOMPLETE entries hold up to `H` packets (oldest dropped first), the whole cache at most
//! `max_held` (further packets refused), and broadcast a request every `retrans_ms`; PROBE
//! entries keep using the known MAC while unicast requests refresh it (Linux also has a DELAY
//! state, waiting for upper-layer confirmation the forwarder cannot give).
//! Any ARP or NDP message from the neighbour confirms it, as DPVS does; Linux only counts
//! solicited replies. [`NeighCache::learn`] updates existing entries only (Linux's `arp_accept=0`),
//! so broadcast chatter on a large segment cannot fill the table.
//!
//! PERMANENT entries ([`NeighCache::add_static`], Linux `ip neigh add … nud permanent`) sit
//! outside the diagram: always known, no timer, and [`NeighCache::learn`] leaves them alone.
//!
//! The cache is owned by one worker core: capacity is fixed at construction and no method used
//! per packet or per timer tick allocates, locks or panics. Timers cost nothing until the
//! earliest deadline: [`NeighCache::poll`] returns at once before it.
//!
//! This module owns the entry store and its index (lookup, removal, snapshots);
//! [`NeighCache::resolve`], [`NeighCache::hold`], [`NeighCache::learn`] and
//! [`NeighCache::add_static`] live in `resolve`, [`NeighCache::poll`] and its timers in `timers`.

mod resolve;
mod timers;

use std::sync::Arc;

use super::hold::Ring;
use super::index::Index;
use super::types::{NeighConfig, NeighEntry, NeighState, NeighStats};
use crate::flow::Addr;
use crate::wire::MacAddr;

#[derive(Debug)]
struct Entry<B, const H: usize> {
    port: u16,
    ip: Addr,
    src: Addr,
    mac: MacAddr,
    state: NeighState,
    probes: u8,
    /// When the state's timer fires (next request, REACHABLE → STALE, STALE removal).
    deadline: u64,
    updated_ms: u64,
    hold: Ring<B, H>,
}

#[inline]
fn key_hash(port: u16, ip: &Addr) -> u64 {
    let k = u128::from_be_bytes(ip.0);
    (k as u64) ^ ((k >> 64) as u64).rotate_left(29) ^ (u64::from(port) << 40)
}

/// A per-core neighbour cache holding up to `H` packets per unresolved entry.
#[derive(Debug)]
pub struct NeighCache<B, const H: usize = 4> {
    cfg: NeighConfig,
    entries: Vec<Entry<B, H>>,
    index: Index,
    /// No timer fires before this.
    next_timer: u64,
    /// Bumped whenever [`NeighCache::get`] may answer differently (see [`NeighCache::version`]).
    version: u64,
    /// Packets in all hold rings (at most `cfg.max_held`): updated wherever one enters or leaves.
    held: usize,
    /// Entries INCOMPLETE: updated wherever an entry enters or leaves that state.
    pending: usize,
    stats: Arc<NeighStats>,
}

impl<B, const H: usize> NeighCache<B, H> {
    /// An empty cache; all memory is allocated here (capacity is capped below `u32::MAX`).
    pub fn new(mut cfg: NeighConfig) -> Self {
        cfg.capacity = cfg.capacity.min(u32::MAX as usize - 1);
        NeighCache {
            cfg,
            entries: Vec::with_capacity(cfg.capacity),
            index: Index::new(cfg.capacity),
            next_timer: u64::MAX,
            version: 0,
            held: 0,
            pending: 0,
            stats: Arc::new(NeighStats::default()),
        }
    }

    /// The counters, shareable with the control plane.
    pub fn stats(&self) -> &Arc<NeighStats> {
        &self.stats
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the cache has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Packets held across all entries (at most [`NeighConfig::max_held`]).
    pub fn held(&self) -> usize {
        self.held
    }

    /// Entries still resolving (INCOMPLETE).
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Publishes the current levels (entries, pending entries, held packets) to the gauges of
    /// [`NeighCache::stats`]; [`NeighCache::poll`] does it on every call, so readers see them at
    /// most one timer tick old and the packet path never writes them.
    fn publish(&self) {
        self.stats.entries.set(self.entries.len() as u64);
        self.stats.pending.set(self.pending as u64);
        self.stats.held_packets.set(self.held as u64);
    }

    #[inline]
    fn find(&self, port: u16, ip: &Addr) -> Option<(usize, usize)> {
        let entries = &self.entries;
        self.index
            .find(key_hash(port, ip), |p| {
                entries
                    .get(p as usize)
                    .is_some_and(|e| e.port == port && e.ip == *ip)
            })
            .map(|(slot, pos)| (slot, pos as usize))
    }

    #[inline]
    fn arm(&mut self, deadline: u64) {
        self.next_timer = self.next_timer.min(deadline);
    }

    /// Changes whenever a MAC that [`NeighCache::get`] returns changes or goes away (a neighbour
    /// learned anew or with another MAC, an entry removed), so that callers may cache answers.
    #[inline]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The MAC for `ip` on `port` if known (any state but INCOMPLETE), without side effects.
    #[inline]
    pub fn get(&self, port: u16, ip: &Addr) -> Option<MacAddr> {
        let (_, pos) = self.find(port, ip)?;
        let e = self.entries.get(pos)?;
        (e.state != NeighState::Incomplete).then_some(e.mac)
    }

    /// Removes the entry at `pos`, keeping the index in step with the swap-remove.
    fn remove_at(&mut self, pos: usize) {
        let Some((slot, last)) = self.entries.get(pos).and_then(|e| {
            let (slot, _) = self.find(e.port, &e.ip)?;
            Some((slot, self.entries.len() - 1))
        }) else {
            return;
        };
        let index = &mut self.index;
        let entries = &self.entries;
        index.remove(slot, |p| {
            entries
                .get(p as usize)
                .map_or(0, |e| key_hash(e.port, &e.ip))
        });
        // Whatever it still holds is dropped with it.
        if let Some(e) = self.entries.get(pos) {
            self.held = self.held.saturating_sub(e.hold.len);
            if e.state == NeighState::Incomplete {
                self.pending = self.pending.saturating_sub(1);
            }
        }
        if pos != last {
            if let Some((moved_slot, _)) = self
                .entries
                .get(last)
                .and_then(|e| self.find(e.port, &e.ip))
            {
                self.index.set(moved_slot, pos as u32);
            }
        }
        self.entries.swap_remove(pos);
        self.version = self.version.wrapping_add(1);
    }

    /// Removes the entry for `ip` on `port`, returning whether it existed (held packets are dropped).
    pub fn remove(&mut self, port: u16, ip: &Addr) -> bool {
        match self.find(port, ip) {
            Some((_, pos)) => {
                self.remove_at(pos);
                true
            }
            None => false,
        }
    }

    /// Snapshots of all entries, for the control plane.
    pub fn iter(&self) -> impl Iterator<Item = NeighEntry> + '_ {
        self.entries.iter().map(|e| NeighEntry {
            port: e.port,
            ip: e.ip,
            mac: (e.state != NeighState::Incomplete).then_some(e.mac),
            state: e.state,
            held: e.hold.len,
            updated_ms: e.updated_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neigh::{Lookup, Request};

    pub(super) const MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 7]);
    pub(super) const MAC2: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 8]);

    pub(super) fn ip(last: u8) -> Addr {
        Addr::v4([192, 0, 2, last])
    }

    pub(super) fn src() -> Addr {
        Addr::v4([192, 0, 2, 1])
    }

    pub(super) fn cache() -> NeighCache<u32> {
        NeighCache::new(NeighConfig {
            capacity: 16,
            retrans_ms: 1000,
            max_probes: 3,
            reachable_ms: 30_000,
            gc_stale_ms: 60_000,
            max_held: 256,
        })
    }

    /// Runs `poll` and returns (requests, freed buffers).
    pub(super) fn poll(c: &mut NeighCache<u32>, now: u64) -> (Vec<Request>, Vec<u32>) {
        let (mut reqs, mut freed) = (Vec::new(), Vec::new());
        c.poll(now, |r| reqs.push(r), |b| freed.push(b));
        (reqs, freed)
    }

    pub(super) fn broadcast(target: Addr) -> Request {
        Request {
            port: 0,
            target,
            src: src(),
            unicast_to: None,
        }
    }

    pub(super) fn state(c: &NeighCache<u32>, target: Addr) -> Option<NeighState> {
        c.iter().find(|e| e.ip == target).map(|e| e.state)
    }

    #[test]
    fn test_version_changes_with_answers() {
        let mut c = cache();
        let v0 = c.version();
        c.resolve(0, ip(10), src(), 0);
        assert_eq!(c.version(), v0, "an INCOMPLETE entry answers nothing");
        let _ = c.learn(0, &ip(10), MAC, 0);
        let v1 = c.version();
        assert_ne!(v1, v0);
        let _ = c.learn(0, &ip(10), MAC, 10);
        assert_eq!(c.version(), v1, "confirming the same MAC changes no answer");
        let _ = c.learn(0, &ip(10), MAC2, 20);
        let v2 = c.version();
        assert_ne!(v2, v1);
        assert!(c.remove(0, &ip(10)));
        assert_ne!(c.version(), v2);
    }

    #[test]
    fn test_full_cache_refuses_new_neighbours() {
        let mut c: NeighCache<u32> = NeighCache::new(NeighConfig {
            capacity: 2,
            ..NeighConfig::default()
        });
        assert_eq!(c.resolve(0, ip(1), src(), 0), Lookup::Pending);
        assert_eq!(c.resolve(1, ip(1), src(), 0), Lookup::Pending);
        assert_eq!(c.resolve(0, ip(2), src(), 0), Lookup::Full);
        assert_eq!(c.stats().table_full.get(), 1);
        assert!(c.remove(0, &ip(1)));
        assert!(!c.remove(0, &ip(1)));
        assert_eq!(c.resolve(0, ip(2), src(), 0), Lookup::Pending);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn test_churn_keeps_every_entry_reachable() {
        // Entries created at staggered times fail at staggered times; removals move entries
        // around the array and through the index while the rest must stay found.
        let mut c: NeighCache<u32> = NeighCache::new(NeighConfig {
            capacity: 200,
            ..NeighConfig::default()
        });
        let v6 = |i: u16| {
            let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            a[14..].copy_from_slice(&i.to_be_bytes());
            Addr::v6(a)
        };
        for i in 0..200u16 {
            c.resolve(i % 3, v6(i), src(), u64::from(i) * 100);
            if i % 2 == 0 {
                let _ = c.learn(i % 3, &v6(i), MAC, u64::from(i) * 100);
            }
            poll(&mut c, u64::from(i) * 100);
        }
        // Unanswered ones created before t = 20000 - 3000 have failed by now.
        poll(&mut c, 19_900);
        for i in 0..200u16 {
            let alive = i % 2 == 0 || u64::from(i) * 100 + 3000 > 19_900;
            assert_eq!(c.iter().any(|e| e.ip == v6(i)), alive, "entry {i}");
            let want = if i % 2 == 0 { Some(MAC) } else { None };
            assert_eq!(c.get(i % 3, &v6(i)), want, "entry {i}");
        }
        assert_eq!(c.len() as u64, c.stats().entries.get());
    }
}
