//! The cache's clock: [`NeighCache::poll`] sends the requests that resolutions and probes are due,
//! moves REACHABLE entries to STALE, removes failed and long-unused ones (freeing what they
//! held), and publishes the gauges.
//!
//! It costs one comparison until the earliest deadline (`next_timer`), then one pass over the
//! entries that also computes the next deadline.

use super::NeighCache;
use crate::neigh::types::{NeighState, Request};

impl<B, const H: usize> NeighCache<B, H> {
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::{broadcast, cache, ip, poll, src, state, MAC, MAC2};
    use crate::neigh::{Lookup, NeighCache, NeighState, Request};

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
}
