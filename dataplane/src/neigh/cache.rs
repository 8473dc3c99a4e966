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

use std::sync::Arc;

use super::hold::{Released, Ring};
use super::index::Index;
use super::types::{Lookup, NeighConfig, NeighEntry, NeighState, NeighStats, Request, StaticError};
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

    /// The MAC to send to `ip` on `port` (a next hop from the routing table, `src` our address
    /// there). Starts a resolution on a miss and a refresh on use of a stale entry; the requests
    /// go out on the next [`NeighCache::poll`].
    #[inline]
    pub fn resolve(&mut self, port: u16, ip: Addr, src: Addr, now_ms: u64) -> Lookup {
        if let Some((_, pos)) = self.find(port, &ip) {
            let Some(e) = self.entries.get_mut(pos) else {
                return Lookup::Full;
            };
            e.src = src;
            return match e.state {
                NeighState::Permanent => Lookup::Known(e.mac),
                NeighState::Incomplete => Lookup::Pending,
                NeighState::Probe => Lookup::Known(e.mac),
                NeighState::Reachable if now_ms < e.deadline => Lookup::Known(e.mac),
                NeighState::Reachable | NeighState::Stale => {
                    e.state = NeighState::Probe;
                    e.probes = 0;
                    e.deadline = now_ms;
                    let mac = e.mac;
                    self.arm(now_ms);
                    Lookup::Known(mac)
                }
            };
        }
        if self.entries.len() >= self.cfg.capacity {
            self.stats.table_full.inc();
            return Lookup::Full;
        }
        let pos = self.entries.len();
        // Capacity was reserved in `new` and checked above: this push does not allocate.
        self.entries.push(Entry {
            port,
            ip,
            src,
            mac: MacAddr::ZERO,
            state: NeighState::Incomplete,
            probes: 0,
            deadline: now_ms,
            updated_ms: now_ms,
            hold: Ring::new(),
        });
        // pos < capacity < u32::MAX (capped in `new`); the index is sized for it.
        self.index.insert(key_hash(port, &ip), pos as u32);
        self.pending += 1;
        self.arm(now_ms);
        Lookup::Pending
    }

    /// Adds (or turns an existing entry into) a permanent entry: `ip` on `port` is at `mac` until
    /// [`NeighCache::remove`]d. It never expires, is never probed and learning does not change it;
    /// packets an existing entry held are dropped. Meant for configuration time, not per packet.
    pub fn add_static(&mut self, port: u16, ip: Addr, mac: MacAddr) -> Result<(), StaticError> {
        if mac.is_multicast() || mac == MacAddr::ZERO {
            return Err(StaticError::BadMac);
        }
        if let Some((_, pos)) = self.find(port, &ip) {
            if let Some(e) = self.entries.get_mut(pos) {
                while e.hold.pop().is_some() {
                    self.held = self.held.saturating_sub(1);
                }
                if e.state == NeighState::Incomplete {
                    self.pending = self.pending.saturating_sub(1);
                }
                e.mac = mac;
                e.state = NeighState::Permanent;
                e.probes = 0;
                e.deadline = u64::MAX;
            }
            self.version = self.version.wrapping_add(1);
            return Ok(());
        }
        if self.entries.len() >= self.cfg.capacity {
            self.stats.table_full.inc();
            return Err(StaticError::Full);
        }
        let pos = self.entries.len();
        self.entries.push(Entry {
            port,
            ip,
            src: Addr::UNSPECIFIED,
            mac,
            state: NeighState::Permanent,
            probes: 0,
            deadline: u64::MAX,
            updated_ms: 0,
            hold: Ring::new(),
        });
        self.index.insert(key_hash(port, &ip), pos as u32);
        Ok(())
    }

    /// Queues `buf` until `ip` on `port` resolves. `Err` hands back a buffer for the caller to
    /// free: the oldest held one when the entry's queue was full, or `buf` itself when nothing is
    /// pending (both counted in `hold_drops`) or when the cache already holds `max_held` packets
    /// (counted in `hold_cap_drops`). At the cap an entry whose own queue is full still swaps its
    /// oldest packet for `buf`, which leaves the total unchanged.
    #[inline]
    pub fn hold(&mut self, port: u16, ip: &Addr, buf: B) -> Result<(), B> {
        let entry = match self.find(port, ip) {
            Some((_, pos)) => self.entries.get_mut(pos),
            None => None,
        };
        let Some(e) = entry.filter(|e| e.state == NeighState::Incomplete) else {
            self.stats.hold_drops.inc();
            return Err(buf);
        };
        if e.hold.len < H && self.held >= self.cfg.max_held {
            self.stats.hold_cap_drops.inc();
            return Err(buf);
        }
        match e.hold.push(buf) {
            None => {
                self.held += 1;
                self.stats.held.inc();
                Ok(())
            }
            Some(oldest) => {
                self.stats.held.inc();
                self.stats.hold_drops.inc();
                Err(oldest)
            }
        }
    }

    /// Records that `ip` on `port` is at `mac` (from [`super::observe`]): an existing entry
    /// becomes REACHABLE and its held packets are released in arrival order, to be sent to `mac`.
    /// Unknown neighbours are not added.
    pub fn learn(&mut self, port: u16, ip: &Addr, mac: MacAddr, now_ms: u64) -> Released<'_, B, H> {
        if mac.is_multicast() || mac == MacAddr::ZERO {
            return Released::none();
        }
        let Some((_, pos)) = self.find(port, ip) else {
            return Released::none();
        };
        if self
            .entries
            .get(pos)
            .is_some_and(|e| e.state == NeighState::Permanent)
        {
            return Released::none();
        }
        let deadline = now_ms.saturating_add(self.cfg.reachable_ms);
        self.next_timer = self.next_timer.min(deadline);
        self.stats.learned.inc();
        let (resolved, changed) = self.entries.get(pos).map_or((false, false), |e| {
            let resolved = e.state == NeighState::Incomplete;
            (resolved, resolved || e.mac != mac)
        });
        if changed {
            self.version = self.version.wrapping_add(1);
        }
        if resolved {
            self.pending = self.pending.saturating_sub(1);
        }
        let Some(e) = self.entries.get_mut(pos) else {
            return Released::none();
        };
        e.mac = mac;
        e.state = NeighState::Reachable;
        e.probes = 0;
        e.deadline = deadline;
        e.updated_ms = now_ms;
        Released::new(&mut e.hold, &mut self.held)
    }

    /// Runs the timers: hands requests to `emit`, expires entries, and hands the held packets of
    /// failed resolutions to `free`; then publishes the gauges. Call every few milliseconds.
    pub fn poll(&mut self, now_ms: u64, emit: impl FnMut(Request), free: impl FnMut(B)) {
        if now_ms >= self.next_timer {
            self.run_timers(now_ms, emit, free);
        }
        self.publish();
    }

    fn run_timers(&mut self, now_ms: u64, mut emit: impl FnMut(Request), mut free: impl FnMut(B)) {
        let cfg = self.cfg;
        let mut next = u64::MAX;
        let mut pos = 0;
        while let Some(e) = self.entries.get_mut(pos) {
            if now_ms >= e.deadline {
                let remove = match e.state {
                    NeighState::Incomplete | NeighState::Probe if e.probes < cfg.max_probes => {
                        emit(Request {
                            port: e.port,
                            target: e.ip,
                            src: e.src,
                            unicast_to: (e.state == NeighState::Probe).then_some(e.mac),
                        });
                        self.stats.requests_sent.inc();
                        e.probes += 1;
                        e.deadline = now_ms.saturating_add(cfg.retrans_ms);
                        false
                    }
                    NeighState::Incomplete | NeighState::Probe => {
                        self.stats.failures.inc();
                        while let Some(b) = e.hold.pop() {
                            self.held = self.held.saturating_sub(1);
                            self.stats.unresolved_drops.inc();
                            free(b);
                        }
                        true
                    }
                    NeighState::Reachable => {
                        e.state = NeighState::Stale;
                        e.deadline = now_ms.saturating_add(cfg.gc_stale_ms);
                        false
                    }
                    NeighState::Stale => true,
                    NeighState::Permanent => {
                        e.deadline = u64::MAX;
                        false
                    }
                };
                if remove {
                    // The entry moved into `pos` (if any) is examined next.
                    self.remove_at(pos);
                    continue;
                }
            }
            next = next.min(e.deadline);
            pos += 1;
        }
        self.next_timer = next;
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

    const MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 7]);
    const MAC2: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 8]);

    fn ip(last: u8) -> Addr {
        Addr::v4([192, 0, 2, last])
    }

    fn src() -> Addr {
        Addr::v4([192, 0, 2, 1])
    }

    fn cache() -> NeighCache<u32> {
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
    fn poll(c: &mut NeighCache<u32>, now: u64) -> (Vec<Request>, Vec<u32>) {
        let (mut reqs, mut freed) = (Vec::new(), Vec::new());
        c.poll(now, |r| reqs.push(r), |b| freed.push(b));
        (reqs, freed)
    }

    fn broadcast(target: Addr) -> Request {
        Request {
            port: 0,
            target,
            src: src(),
            unicast_to: None,
        }
    }

    fn state(c: &NeighCache<u32>, target: Addr) -> Option<NeighState> {
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
    fn test_unanswered_resolution_retries_then_fails() {
        let mut c = cache();
        let t0 = 100;
        assert_eq!(c.resolve(0, ip(10), src(), t0), Lookup::Pending);
        assert_eq!(c.resolve(0, ip(10), src(), t0 + 5), Lookup::Pending);
        assert_eq!(c.hold(0, &ip(10), 1), Ok(()));
        assert_eq!(c.hold(0, &ip(10), 2), Ok(()));
        assert_eq!(c.get(0, &ip(10)), None);
        assert_eq!(poll(&mut c, t0), (vec![broadcast(ip(10))], vec![]));
        assert_eq!(poll(&mut c, t0 + 999), (vec![], vec![]));
        assert_eq!(poll(&mut c, t0 + 1000), (vec![broadcast(ip(10))], vec![]));
        assert_eq!(poll(&mut c, t0 + 1999), (vec![], vec![]));
        assert_eq!(poll(&mut c, t0 + 2000), (vec![broadcast(ip(10))], vec![]));
        assert_eq!(poll(&mut c, t0 + 2999), (vec![], vec![]));
        assert_eq!(c.len(), 1);
        // A full interval after the third request: failure, held packets freed oldest first.
        assert_eq!(poll(&mut c, t0 + 3000), (vec![], vec![1, 2]));
        assert!(c.is_empty());
        let s = c.stats();
        assert_eq!(s.requests_sent.get(), 3);
        assert_eq!(s.failures.get(), 1);
        assert_eq!(s.unresolved_drops.get(), 2);
        assert_eq!(s.held.get(), 2);
        assert_eq!(s.entries.get(), 0);
        // The next packet starts over.
        assert_eq!(c.resolve(0, ip(10), src(), t0 + 4000), Lookup::Pending);
        assert_eq!(poll(&mut c, t0 + 4000).0, vec![broadcast(ip(10))]);
    }

    #[test]
    fn test_learn_releases_held_packets_in_order() {
        let mut c = cache();
        c.resolve(0, ip(10), src(), 0);
        poll(&mut c, 0);
        for b in [7, 8, 9] {
            c.hold(0, &ip(10), b).unwrap();
        }
        let released: Vec<u32> = c.learn(0, &ip(10), MAC, 20).collect();
        assert_eq!(released, vec![7, 8, 9]);
        assert_eq!(c.resolve(0, ip(10), src(), 21), Lookup::Known(MAC));
        assert_eq!(c.get(0, &ip(10)), Some(MAC));
        // Answered: no more requests, and a learned entry takes no more packets to hold.
        assert_eq!(poll(&mut c, 5000), (vec![], vec![]));
        assert_eq!(c.hold(0, &ip(10), 10), Err(10));
        let s = c.stats();
        assert_eq!(
            (s.learned.get(), s.held.get(), s.hold_drops.get()),
            (1, 3, 1)
        );
        assert_eq!(s.requests_sent.get(), 1);
    }

    #[test]
    fn test_learn_ignores_unknown_neighbours_and_group_macs() {
        let mut c = cache();
        assert_eq!(c.learn(0, &ip(10), MAC, 0).count(), 0);
        assert!(c.is_empty(), "unsolicited information adds no entry");
        c.resolve(0, ip(10), src(), 0);
        c.hold(0, &ip(10), 1).unwrap();
        assert_eq!(c.learn(0, &ip(10), MacAddr::BROADCAST, 0).count(), 0);
        assert_eq!(c.learn(1, &ip(10), MAC, 0).count(), 0, "other port");
        assert_eq!(c.get(0, &ip(10)), None);
        assert_eq!(c.stats().learned.get(), 0);
        // Dropping the iterator unconsumed empties the queue.
        drop(c.learn(0, &ip(10), MAC, 0));
        assert_eq!(c.iter().next().unwrap().held, 0);
    }

    #[test]
    fn test_hold_queue_overflow_drops_oldest() {
        let mut c = cache();
        c.resolve(0, ip(10), src(), 0);
        for b in 1..=4 {
            assert_eq!(c.hold(0, &ip(10), b), Ok(()));
        }
        assert_eq!(c.hold(0, &ip(10), 5), Err(1));
        assert_eq!(c.hold(0, &ip(10), 6), Err(2));
        assert_eq!(c.hold(0, &ip(11), 99), Err(99), "nothing pending for it");
        let s = c.stats();
        assert_eq!((s.held.get(), s.hold_drops.get()), (6, 3));
        assert_eq!(
            c.learn(0, &ip(10), MAC, 1).collect::<Vec<_>>(),
            vec![3, 4, 5, 6]
        );
    }

    #[test]
    fn test_stale_entry_is_refreshed_with_unicast_probe() {
        let mut c = cache();
        c.resolve(0, ip(10), src(), 0);
        poll(&mut c, 0);
        let _ = c.learn(0, &ip(10), MAC, 1000);
        assert_eq!(c.resolve(0, ip(10), src(), 30_999), Lookup::Known(MAC));
        assert_eq!(poll(&mut c, 30_999), (vec![], vec![]));
        assert_eq!(state(&c, ip(10)), Some(NeighState::Reachable));
        assert_eq!(poll(&mut c, 31_000), (vec![], vec![]));
        assert_eq!(state(&c, ip(10)), Some(NeighState::Stale));
        // Used while stale: still sent to, and a unicast probe goes out.
        assert_eq!(c.resolve(0, ip(10), src(), 40_000), Lookup::Known(MAC));
        assert_eq!(state(&c, ip(10)), Some(NeighState::Probe));
        let probe = Request {
            unicast_to: Some(MAC),
            ..broadcast(ip(10))
        };
        assert_eq!(poll(&mut c, 40_000).0, vec![probe]);
        assert_eq!(c.resolve(0, ip(10), src(), 40_001), Lookup::Known(MAC));
        // The answer (with a new MAC) confirms it; no further probes.
        let _ = c.learn(0, &ip(10), MAC2, 40_010);
        assert_eq!(state(&c, ip(10)), Some(NeighState::Reachable));
        assert_eq!(poll(&mut c, 41_000), (vec![], vec![]));
        assert_eq!(c.resolve(0, ip(10), src(), 41_000), Lookup::Known(MAC2));
        assert_eq!(c.stats().requests_sent.get(), 2);
    }

    #[test]
    fn test_expired_reachable_used_before_poll_probes_at_once() {
        let mut c = cache();
        c.resolve(0, ip(10), src(), 0);
        let _ = c.learn(0, &ip(10), MAC, 0);
        assert_eq!(c.resolve(0, ip(10), src(), 30_000), Lookup::Known(MAC));
        assert_eq!(state(&c, ip(10)), Some(NeighState::Probe));
        // Unanswered probes: three unicast requests an interval apart, then removal.
        for t in [30_000, 31_000, 32_000] {
            let (reqs, _) = poll(&mut c, t);
            assert_eq!(reqs.len(), 1);
            assert_eq!(reqs[0].unicast_to, Some(MAC));
            assert_eq!(poll(&mut c, t + 999), (vec![], vec![]));
        }
        assert_eq!(c.len(), 1);
        assert_eq!(poll(&mut c, 33_000), (vec![], vec![]));
        assert!(c.is_empty());
        assert_eq!(c.stats().failures.get(), 1);
    }

    #[test]
    fn test_unused_stale_entry_is_collected() {
        let mut c = cache();
        c.resolve(0, ip(10), src(), 0);
        let _ = c.learn(0, &ip(10), MAC, 0);
        poll(&mut c, 30_000);
        assert_eq!(state(&c, ip(10)), Some(NeighState::Stale));
        poll(&mut c, 89_999);
        assert_eq!(c.len(), 1);
        poll(&mut c, 90_000);
        assert!(c.is_empty());
        assert_eq!(c.stats().failures.get(), 0);
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
    fn test_static_entry_never_expires_probes_or_changes() {
        let mut c = cache();
        assert_eq!(c.add_static(1, ip(20), MAC), Ok(()));
        assert_eq!(c.get(1, &ip(20)), Some(MAC));
        assert_eq!(c.get(0, &ip(20)), None, "other port");
        assert_eq!(c.resolve(1, ip(20), src(), 0), Lookup::Known(MAC));
        // Far past every timer: no request, no removal, still known.
        for t in [0, 30_000, 90_000, 1_000_000_000] {
            assert_eq!(poll(&mut c, t), (vec![], vec![]));
            assert_eq!(c.resolve(1, ip(20), src(), t), Lookup::Known(MAC));
        }
        // What the wire says does not override the operator.
        assert_eq!(c.learn(1, &ip(20), MAC2, 5).count(), 0);
        assert_eq!(c.get(1, &ip(20)), Some(MAC));
        assert_eq!(state(&c, ip(20)), Some(NeighState::Permanent));
        assert_eq!(c.hold(1, &ip(20), 3), Err(3));
        let s = c.stats();
        assert_eq!((s.requests_sent.get(), s.learned.get()), (0, 0));
        assert_eq!((s.failures.get(), s.entries.get()), (0, 1));
        assert!(c.remove(1, &ip(20)));
        assert!(c.is_empty());
    }

    #[test]
    fn test_static_entry_replaces_pending_and_refuses_bad_input() {
        let mut c: NeighCache<u32> = NeighCache::new(NeighConfig {
            capacity: 2,
            ..NeighConfig::default()
        });
        assert_eq!(c.resolve(0, ip(10), src(), 0), Lookup::Pending);
        c.hold(0, &ip(10), 1).unwrap();
        assert_eq!(c.add_static(0, ip(10), MAC), Ok(()));
        assert_eq!(c.iter().next().unwrap().held, 0);
        assert_eq!(c.resolve(0, ip(10), src(), 1), Lookup::Known(MAC));
        // The pending entry's request time has passed: still no request.
        assert_eq!(poll(&mut c, 10_000), (vec![], vec![]));
        assert_eq!(c.len(), 1);
        assert_eq!(
            c.add_static(0, ip(11), MacAddr::BROADCAST),
            Err(StaticError::BadMac)
        );
        assert_eq!(
            c.add_static(0, ip(11), MacAddr::ZERO),
            Err(StaticError::BadMac)
        );
        assert_eq!(c.add_static(0, ip(11), MAC2), Ok(()));
        assert_eq!(c.add_static(0, ip(12), MAC2), Err(StaticError::Full));
        // Re-adding an existing one updates its MAC without needing room.
        assert_eq!(c.add_static(0, ip(11), MAC), Ok(()));
        assert_eq!(c.get(0, &ip(11)), Some(MAC));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn test_poll_publishes_entries_and_pending() {
        let mut c = cache();
        let gauges = |c: &NeighCache<u32>| {
            let s = c.stats();
            (s.entries.get(), s.pending.get())
        };
        for i in 10..14 {
            assert_eq!(c.resolve(0, ip(i), src(), 0), Lookup::Pending);
        }
        assert_eq!(c.add_static(0, ip(20), MAC), Ok(()));
        assert_eq!(gauges(&c), (0, 0), "nothing published before a poll");
        poll(&mut c, 0);
        assert_eq!(gauges(&c), (5, 4));
        // Learned, turned static, removed: each leaves the pending ones; only removal leaves
        // the cache. Refreshing a learned entry changes nothing.
        let _ = c.learn(0, &ip(10), MAC, 1);
        let _ = c.learn(0, &ip(10), MAC2, 2);
        assert_eq!(c.add_static(0, ip(11), MAC), Ok(()));
        assert!(c.remove(0, &ip(12)));
        assert_eq!((c.len(), c.pending()), (4, 1));
        poll(&mut c, 3);
        assert_eq!(gauges(&c), (4, 1));
        // Entry 13 fails after three unanswered requests.
        for t in [1000, 2000, 3000] {
            poll(&mut c, t);
        }
        assert_eq!(gauges(&c), (3, 0));
        // A new resolution counts again, and a stale entry refreshed by a probe never does.
        assert_eq!(c.resolve(0, ip(14), src(), 3001), Lookup::Pending);
        assert_eq!(c.resolve(0, ip(10), src(), 40_000), Lookup::Known(MAC2));
        poll(&mut c, 3001);
        assert_eq!(gauges(&c), (4, 1));
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
