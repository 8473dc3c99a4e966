//! Hold queues: a fixed ring of packets per entry waiting for its next hop's MAC, and the
//! release of a ring that keeps the cache's running total of held packets (bounded by
//! [`super::NeighConfig::max_held`]) exact as packets leave.

/// A fixed ring of held packets, oldest first.
#[derive(Debug)]
pub(crate) struct Ring<B, const H: usize> {
    slots: [Option<B>; H],
    head: usize,
    pub(crate) len: usize,
}

impl<B, const H: usize> Ring<B, H> {
    pub(crate) fn new() -> Self {
        Ring {
            slots: std::array::from_fn(|_| None),
            head: 0,
            len: 0,
        }
    }

    /// Appends `b`; when full, the oldest is taken out and returned.
    pub(crate) fn push(&mut self, b: B) -> Option<B> {
        if H == 0 {
            return Some(b);
        }
        let evicted = if self.len == H { self.pop() } else { None };
        if let Some(s) = self.slots.get_mut((self.head + self.len) % H) {
            *s = Some(b);
            self.len += 1;
        }
        evicted
    }

    pub(crate) fn pop(&mut self) -> Option<B> {
        if self.len == 0 {
            return None;
        }
        let b = self.slots.get_mut(self.head)?.take();
        self.head = (self.head + 1) % H;
        self.len -= 1;
        b
    }
}

/// The held packets released by [`super::NeighCache::learn`], oldest first; those not taken are dropped
/// with the iterator.
#[derive(Debug)]
pub struct Released<'a, B, const H: usize> {
    /// The ring being emptied and the cache's count of held packets, decremented per packet.
    from: Option<(&'a mut Ring<B, H>, &'a mut usize)>,
}

impl<'a, B, const H: usize> Released<'a, B, H> {
    /// Nothing to release.
    pub(crate) fn none() -> Self {
        Released { from: None }
    }

    /// Empties `ring`, taking each packet off `total` as it leaves.
    pub(crate) fn new(ring: &'a mut Ring<B, H>, total: &'a mut usize) -> Self {
        Released {
            from: Some((ring, total)),
        }
    }
}

impl<B, const H: usize> Iterator for Released<'_, B, H> {
    type Item = B;

    fn next(&mut self) -> Option<B> {
        let (ring, total) = self.from.as_mut()?;
        let b = ring.pop()?;
        **total = total.saturating_sub(1);
        Some(b)
    }
}

impl<B, const H: usize> Drop for Released<'_, B, H> {
    fn drop(&mut self) {
        for _ in self.by_ref() {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Lookup, NeighCache, NeighConfig};
    use super::*;
    use crate::flow::Addr;
    use crate::wire::MacAddr;

    const MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 7]);

    fn ip(last: u8) -> Addr {
        Addr::v4([192, 0, 2, last])
    }

    /// A cache holding at most 10 packets, 4 per entry, with `n` entries pending (ip 10, 11, …).
    fn capped(n: u8) -> NeighCache<u32> {
        let mut c = NeighCache::new(NeighConfig {
            max_held: 10,
            ..NeighConfig::default()
        });
        for i in 0..n {
            assert_eq!(c.resolve(0, ip(10 + i), ip(1), 0), Lookup::Pending);
        }
        c
    }

    /// Holds 4 + 4 + 2 packets (1..=10) for entries 10, 11 and 12: the cap of 10 is reached.
    fn fill(c: &mut NeighCache<u32>) {
        for b in 1..=10u32 {
            let to = ip(10 + ((b - 1) / 4) as u8);
            assert_eq!(c.hold(0, &to, b), Ok(()), "packet {b}");
        }
        assert_eq!(c.held(), 10);
    }

    #[test]
    fn test_ring_wraps_and_evicts_oldest() {
        let mut r: Ring<u8, 3> = Ring::new();
        assert_eq!(r.pop(), None);
        for b in 1..=3 {
            assert_eq!(r.push(b), None);
        }
        assert_eq!(r.push(4), Some(1));
        assert_eq!(r.pop(), Some(2));
        assert_eq!(r.push(5), None);
        assert_eq!(r.len, 3);
        let mut total = 5;
        let out: Vec<u8> = Released::new(&mut r, &mut total).collect();
        assert_eq!(out, vec![3, 4, 5]);
        assert_eq!(total, 2, "each released packet leaves the total");
        let mut none: Ring<u8, 0> = Ring::new();
        assert_eq!(none.push(9), Some(9));
        assert_eq!(none.pop(), None);
    }

    #[test]
    fn test_hold_cap_refuses_until_resolution_releases() {
        let mut c = capped(4);
        fill(&mut c);
        // Entry 12 has room in its queue and entry 13 is empty, but the cache is at its cap.
        assert_eq!(c.hold(0, &ip(12), 11), Err(11));
        assert_eq!(c.hold(0, &ip(13), 12), Err(12));
        // Entry 10's queue is full: its oldest makes way, the total stays at the cap.
        assert_eq!(c.hold(0, &ip(10), 13), Err(1));
        assert_eq!(c.held(), 10);
        let s = c.stats();
        assert_eq!(
            (s.held.get(), s.hold_drops.get(), s.hold_cap_drops.get()),
            (11, 1, 2)
        );
        // Resolving entry 10 releases its 4 packets, oldest first: room for 4 more.
        let out: Vec<u32> = c.learn(0, &ip(10), MAC, 5).collect();
        assert_eq!(out, vec![2, 3, 4, 13]);
        assert_eq!(c.held(), 6);
        for b in 14..=17 {
            assert_eq!(c.hold(0, &ip(13), b), Ok(()));
        }
        assert_eq!(c.hold(0, &ip(12), 18), Err(18));
        assert_eq!(c.stats().hold_cap_drops.get(), 3);
        // Resolving the rest empties the cache: the count is back to 0 and holding works again.
        for (i, want) in [
            (11, vec![5, 6, 7, 8]),
            (12, vec![9, 10]),
            (13, vec![14, 15, 16, 17]),
        ] {
            assert_eq!(c.learn(0, &ip(i), MAC, 6).collect::<Vec<_>>(), want);
        }
        assert_eq!(c.held(), 0);
        assert_eq!(c.resolve(0, ip(20), ip(1), 7), Lookup::Pending);
        assert_eq!(c.hold(0, &ip(20), 19), Ok(()));
        assert_eq!(c.held(), 1);
    }

    #[test]
    fn test_hold_cap_count_returns_on_drop_failure_and_removal() {
        let mut c = capped(3);
        fill(&mut c);
        // A release dropped unconsumed still takes its packets off the count.
        drop(c.learn(0, &ip(10), MAC, 1));
        assert_eq!(c.held(), 6);
        // Removing a pending entry drops what it holds.
        assert!(c.remove(0, &ip(11)));
        assert_eq!(c.held(), 2);
        // Entry 12 fails (three requests unanswered): its packets are freed and the count is 0.
        let mut freed = Vec::new();
        for t in [0, 1000, 2000, 3000] {
            c.poll(t, |_| {}, |b| freed.push(b));
        }
        assert_eq!(freed, vec![9, 10]);
        assert_eq!(c.held(), 0);
        assert_eq!(c.stats().unresolved_drops.get(), 2);
        // A static entry replacing a pending one drops its packets too.
        assert_eq!(c.resolve(0, ip(30), ip(1), 4000), Lookup::Pending);
        for b in 1..=3 {
            assert_eq!(c.hold(0, &ip(30), b), Ok(()));
        }
        assert_eq!(c.add_static(0, ip(30), MAC), Ok(()));
        assert_eq!(c.held(), 0);
        assert_eq!(c.stats().hold_cap_drops.get(), 0);
    }

    /// The gauge `held_packets` as the last `poll` published it.
    fn published(c: &mut NeighCache<u32>, now: u64) -> u64 {
        c.poll(now, |_| {}, drop);
        c.stats().held_packets.get()
    }

    #[test]
    fn test_held_gauge_follows_the_current_level() {
        let mut c = capped(3);
        assert_eq!(published(&mut c, 0), 0);
        fill(&mut c);
        // Holding writes no gauge: the level appears at the next timer tick.
        assert_eq!(c.stats().held_packets.get(), 0);
        assert_eq!(published(&mut c, 1), 10);
        // A full queue swapping its oldest and a refusal at the cap leave the level as it was,
        // while the cumulative counter goes on counting.
        assert_eq!(c.hold(0, &ip(10), 11), Err(1));
        assert_eq!(c.hold(0, &ip(12), 12), Err(12));
        assert_eq!(published(&mut c, 2), 10);
        assert_eq!(c.stats().held.get(), 11);
        // Resolution releases 4, removal drops 4: the level goes down with them.
        assert_eq!(c.learn(0, &ip(10), MAC, 3).count(), 4);
        assert_eq!(published(&mut c, 3), 6);
        assert!(c.remove(0, &ip(11)));
        assert_eq!(published(&mut c, 4), 2);
        // Entry 12 goes unanswered: its 2 packets are freed when it fails, and the level is 0.
        for t in [1000, 2000] {
            assert_eq!(published(&mut c, t), 2);
        }
        assert_eq!(published(&mut c, 3000), 0);
        assert_eq!(c.stats().unresolved_drops.get(), 2);
    }

    #[test]
    fn test_hold_cap_zero_holds_nothing() {
        let mut c: NeighCache<u32> = NeighCache::new(NeighConfig {
            max_held: 0,
            ..NeighConfig::default()
        });
        assert_eq!(c.resolve(0, ip(10), ip(1), 0), Lookup::Pending);
        assert_eq!(c.hold(0, &ip(10), 1), Err(1));
        assert_eq!(c.held(), 0);
        let s = c.stats();
        assert_eq!((s.held.get(), s.hold_cap_drops.get()), (0, 1));
    }
}
