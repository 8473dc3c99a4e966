//! The packet path and the wire's answers: [`NeighCache::resolve`] finds or starts an entry per
//! packet, [`NeighCache::hold`] queues packets under the global cap while it resolves,
//! [`NeighCache::learn`] records what ARP/NDP said and releases them, and
//! [`NeighCache::add_static`] installs the operator's permanent entries.
//!
//! `resolve` and `hold` run per packet: they touch one entry through the index and never
//! allocate (entry capacity is reserved at construction).

use super::{key_hash, Entry, NeighCache};
use crate::flow::Addr;
use crate::neigh::hold::{Released, Ring};
use crate::neigh::types::{Lookup, NeighState, StaticError};
use crate::wire::MacAddr;

impl<B, const H: usize> NeighCache<B, H> {
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

    /// Records that `ip` on `port` is at `mac` (from [`crate::neigh::observe()`]): an existing
    /// entry becomes REACHABLE and its held packets are released in arrival order, to be sent to
    /// `mac`. Unknown neighbours are not added.
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cache, ip, poll, src, state, MAC, MAC2};
    use super::*;
    use crate::neigh::NeighConfig;

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
}
