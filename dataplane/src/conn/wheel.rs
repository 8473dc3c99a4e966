//! The expiry timer wheel: one level of [`SLOTS`] slots of `tick_ms` each, with rounds, over
//! intrusive doubly linked lists threaded through the table's entries by `u32` id.
//!
//! An entry is filed in the slot of a tick no later than its expiry. Traffic only pushes the
//! stored expiry later, so it never has to move the entry (lazy re-arm): when the slot comes
//! round, an entry that is not yet due is refiled under its current expiry. An expiry that moves
//! earlier (a state change to a shorter timeout) refiles at once. Entries of later rounds
//! (timeouts longer than one revolution) stay in their slot until their round comes.
//!
//! Time is whatever `now_ms` the caller passes; the wheel reads no clock. An entry is due when
//! its expiry is at or before `now_ms`, to the millisecond.

/// Slots in the wheel (a power of two): 68 minutes per revolution at the default 1 s tick.
pub const SLOTS: usize = 4096;
const MASK: u64 = SLOTS as u64 - 1;
/// No entry.
pub const NIL: u32 = u32::MAX;
/// Set in `prev` of a list head: the low bits are the slot.
const HEAD: u32 = 1 << 31;

/// Intrusive links of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Previous entry, or `HEAD | slot` for the first entry of a slot.
    pub prev: u32,
    /// Next entry, or [`NIL`].
    pub next: u32,
}

impl Link {
    /// Links of an entry in no list.
    pub const UNLINKED: Link = Link {
        prev: NIL,
        next: NIL,
    };
}

/// What the wheel stores its links in: entries addressed by `u32` id.
pub trait Timed {
    /// The entry's links.
    fn link(&mut self) -> &mut Link;
    /// When the entry expires, in ms.
    fn expires_ms(&self) -> u64;
}

/// Outcome of [`Wheel::next_due`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// This entry is due; it has been unlinked.
    Due(u32),
    /// Nothing more is due at `now_ms`.
    Idle,
    /// The refiling budget ran out; call again later.
    Busy,
}

/// A single-level timer wheel with rounds.
pub struct Wheel {
    heads: Box<[u32]>,
    tick_ms: u64,
    /// The tick being processed; entries are never filed before it.
    cursor: u64,
    /// Where the walk of the cursor's slot resumes, or [`NIL`] for its head.
    walk: u32,
}

impl Wheel {
    /// An empty wheel ticking every `tick_ms` (at least 1).
    pub fn new(tick_ms: u32) -> Wheel {
        Wheel {
            heads: vec![NIL; SLOTS].into_boxed_slice(),
            tick_ms: u64::from(tick_ms.max(1)),
            cursor: 0,
            walk: NIL,
        }
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.heads)
    }

    /// The tick of a time (saturating at the wheel's current tick from below).
    #[inline]
    fn file_tick(&self, expires_ms: u64) -> u64 {
        (expires_ms / self.tick_ms).max(self.cursor)
    }

    /// Files `id` under its expiry. It must be unlinked.
    pub fn link<T: Timed>(&mut self, nodes: &mut [T], id: u32) {
        let slot = (self.file_tick(nodes[id as usize].expires_ms()) & MASK) as usize;
        let old = self.heads[slot];
        *nodes[id as usize].link() = Link {
            prev: HEAD | slot as u32,
            next: old,
        };
        if old != NIL {
            nodes[old as usize].link().prev = id;
        }
        self.heads[slot] = id;
        if slot as u64 == self.cursor & MASK {
            // The walk of this slot has passed the head; start it over.
            self.walk = NIL;
        }
    }

    /// Takes `id` out of its slot. It must be linked.
    pub fn unlink<T: Timed>(&mut self, nodes: &mut [T], id: u32) {
        let Link { prev, next } = *nodes[id as usize].link();
        if prev & HEAD != 0 {
            self.heads[(prev & !HEAD) as usize] = next;
        } else {
            nodes[prev as usize].link().next = next;
        }
        if next != NIL {
            nodes[next as usize].link().prev = prev;
        }
        *nodes[id as usize].link() = Link::UNLINKED;
        if self.walk == id {
            self.walk = next;
        }
    }

    /// Refiles `id` after its expiry moved earlier.
    pub fn rearm<T: Timed>(&mut self, nodes: &mut [T], id: u32) {
        self.unlink(nodes, id);
        self.link(nodes, id);
    }

    /// Finds and unlinks the next entry due at `now_ms`, refiling at most `moves` entries that
    /// are not yet due on the way.
    pub fn next_due<T: Timed>(&mut self, nodes: &mut [T], now_ms: u64, moves: &mut usize) -> Next {
        let now_tick = now_ms / self.tick_ms;
        if now_tick >= self.cursor + SLOTS as u64 {
            // Asleep for a revolution or more: visit every slot once, as of now.
            self.cursor = now_tick + 1 - SLOTS as u64;
            self.walk = NIL;
        }
        loop {
            let slot = self.cursor & MASK;
            let mut id = if self.walk == NIL {
                self.heads[slot as usize]
            } else {
                self.walk
            };
            while id != NIL {
                let next = nodes[id as usize].link().next;
                let expires = nodes[id as usize].expires_ms();
                if expires <= now_ms {
                    self.unlink(nodes, id);
                    self.walk = next;
                    return Next::Due(id);
                }
                if self.file_tick(expires) & MASK != slot {
                    if *moves == 0 {
                        self.walk = id;
                        return Next::Busy;
                    }
                    *moves -= 1;
                    self.unlink(nodes, id);
                    self.link(nodes, id);
                }
                id = next;
            }
            self.walk = NIL;
            if self.cursor >= now_tick {
                // The current tick may still gain due entries; walk it again next time.
                return Next::Idle;
            }
            self.cursor += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct N {
        exp: u64,
        link: Link,
    }

    impl Timed for N {
        fn link(&mut self) -> &mut Link {
            &mut self.link
        }
        fn expires_ms(&self) -> u64 {
            self.exp
        }
    }

    fn nodes(exps: &[u64]) -> Vec<N> {
        exps.iter()
            .map(|&exp| N {
                exp,
                link: Link::UNLINKED,
            })
            .collect()
    }

    fn drain(w: &mut Wheel, ns: &mut [N], now: u64) -> Vec<u32> {
        let mut out = Vec::new();
        let mut moves = usize::MAX;
        while let Next::Due(id) = w.next_due(ns, now, &mut moves) {
            out.push(id);
        }
        out.sort();
        out
    }

    #[test]
    fn test_due_to_the_millisecond() {
        let mut w = Wheel::new(1000);
        let mut ns = nodes(&[1500, 2000, 2001, 9000]);
        for id in 0..4 {
            w.link(&mut ns, id);
        }
        assert_eq!(drain(&mut w, &mut ns, 1499), Vec::<u32>::new());
        assert_eq!(drain(&mut w, &mut ns, 1500), vec![0]);
        assert_eq!(drain(&mut w, &mut ns, 2000), vec![1]);
        assert_eq!(drain(&mut w, &mut ns, 2000), Vec::<u32>::new());
        assert_eq!(drain(&mut w, &mut ns, 2001), vec![2]);
        assert_eq!(drain(&mut w, &mut ns, 8999), Vec::<u32>::new());
        assert_eq!(drain(&mut w, &mut ns, 9000), vec![3]);
    }

    #[test]
    fn test_lazy_rearm_and_rounds() {
        let mut w = Wheel::new(10);
        // 100_000 ms is 10_000 ticks: more than two revolutions.
        let mut ns = nodes(&[50, 100_000]);
        w.link(&mut ns, 0);
        w.link(&mut ns, 1);
        ns[0].exp = 70_000; // Traffic pushed it later; it stays filed at tick 5.
        assert_eq!(drain(&mut w, &mut ns, 69_999), Vec::<u32>::new());
        assert_eq!(drain(&mut w, &mut ns, 70_000), vec![0]);
        assert_eq!(drain(&mut w, &mut ns, 99_999), Vec::<u32>::new());
        assert_eq!(drain(&mut w, &mut ns, 100_000), vec![1]);
    }

    #[test]
    fn test_earlier_expiry_needs_rearm() {
        let mut w = Wheel::new(1000);
        let mut ns = nodes(&[900_000]);
        w.link(&mut ns, 0);
        ns[0].exp = 10_000;
        w.rearm(&mut ns, 0);
        assert_eq!(drain(&mut w, &mut ns, 10_000), vec![0]);
    }

    #[test]
    fn test_long_sleep_and_unlink_during_walk() {
        let mut w = Wheel::new(1);
        let mut ns = nodes(&[5, 5, 5, 50_000]);
        for id in 0..4 {
            w.link(&mut ns, id);
        }
        let mut moves = usize::MAX;
        assert_eq!(w.next_due(&mut ns, 10, &mut moves), Next::Due(2));
        // The walk would resume at entry 1; the table removes it meanwhile.
        w.unlink(&mut ns, 1);
        assert_eq!(drain(&mut w, &mut ns, 10), vec![0]);
        // Far more than a revolution later.
        assert_eq!(drain(&mut w, &mut ns, 1_000_000), vec![3]);
    }

    #[test]
    fn test_link_into_slot_being_walked() {
        let mut w = Wheel::new(1000);
        let mut ns = nodes(&[1000, 1000, 1100, 1900]);
        for id in [3, 0, 1] {
            w.link(&mut ns, id);
        }
        let mut moves = usize::MAX;
        assert_eq!(w.next_due(&mut ns, 1200, &mut moves), Next::Due(1));
        // Filed at the head of the slot whose walk is under way: still found in this pass.
        w.link(&mut ns, 2);
        assert_eq!(drain(&mut w, &mut ns, 1200), vec![0, 2]);
    }

    #[test]
    fn test_move_budget() {
        let mut w = Wheel::new(1000);
        let mut ns = nodes(&[1000, 1000, 1000]);
        for id in 0..3 {
            w.link(&mut ns, id);
        }
        for n in ns.iter_mut() {
            n.exp = 5000;
        }
        let mut moves = 1;
        assert_eq!(w.next_due(&mut ns, 1000, &mut moves), Next::Busy);
        let mut moves = 10;
        assert_eq!(w.next_due(&mut ns, 1000, &mut moves), Next::Idle);
        assert_eq!(moves, 8);
        assert_eq!(drain(&mut w, &mut ns, 5000), vec![0, 1, 2]);
    }
}
