//! A fixed-size open-addressing index from a key hash to a position in the cache's entry array.
//!
//! Linear probing with backward-shift deletion (no tombstones, so lookups stay short however
//! long the cache runs). The index never stores keys: the caller compares and rehashes through
//! closures over its own entries. Sized at construction to at least twice the entry capacity, so
//! a probe always meets an empty slot; nothing here allocates or panics afterwards.

/// Marks an empty slot.
const EMPTY: u32 = u32::MAX;

#[derive(Debug)]
pub(crate) struct Index {
    slots: Box<[u32]>,
    bits: u32,
}

impl Index {
    /// An index for up to `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Index {
        let size = (2 * capacity).next_power_of_two().max(2);
        Index {
            slots: vec![EMPTY; size].into_boxed_slice(),
            bits: size.trailing_zeros(),
        }
    }

    /// The home slot of a 64-bit hash.
    #[inline]
    pub(crate) fn home(&self, hash: u64) -> usize {
        (hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - self.bits)) as usize
    }

    #[inline]
    fn wrap(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot and stored position of the entry with `hash` for which `is_it` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u64, is_it: impl Fn(u32) -> bool) -> Option<(usize, u32)> {
        let mut i = self.home(hash);
        while let Some(&pos) = self.slots.get(i) {
            if pos == EMPTY {
                return None;
            }
            if is_it(pos) {
                return Some((i, pos));
            }
            i = (i + 1) & self.wrap();
        }
        None
    }

    /// Records `pos` under `hash` (the caller has checked the key is absent and there is room).
    #[inline]
    pub(crate) fn insert(&mut self, hash: u64, pos: u32) {
        let wrap = self.wrap();
        let mut i = self.home(hash);
        while let Some(s) = self.slots.get_mut(i) {
            if *s == EMPTY {
                *s = pos;
                return;
            }
            i = (i + 1) & wrap;
        }
    }

    /// Points `slot` at a new entry position (after the entry moved).
    #[inline]
    pub(crate) fn set(&mut self, slot: usize, pos: u32) {
        if let Some(s) = self.slots.get_mut(slot) {
            *s = pos;
        }
    }

    /// Empties `slot`, shifting later members of its probe run back; `hash_of(pos)` is the hash
    /// of the entry at `pos`.
    pub(crate) fn remove(&mut self, slot: usize, hash_of: impl Fn(u32) -> u64) {
        let wrap = self.wrap();
        let mut hole = slot;
        let mut j = slot;
        loop {
            j = (j + 1) & wrap;
            let pos = match self.slots.get(j) {
                Some(&p) if p != EMPTY => p,
                _ => break,
            };
            let home = self.home(hash_of(pos));
            // The entry at j may fill the hole if its home is not cyclically inside (hole, j].
            if (j.wrapping_sub(home) & wrap) >= (j.wrapping_sub(hole) & wrap) {
                self.set(hole, pos);
                hole = j;
            }
        }
        self.set(hole, EMPTY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Random inserts and removes of keys with few distinct hashes (long probe runs) against
        /// a model set.
        #[test]
        fn prop_index_matches_model(ops in proptest::collection::vec((any::<bool>(), 0u64..24), 1..300)) {
            let hash = |k: u64| k % 5;
            let mut idx = Index::new(24);
            let mut keys: Vec<u64> = Vec::new(); // position -> key (swap-remove like the cache)
            for (ins, k) in ops {
                let found = idx.find(hash(k), |p| keys[p as usize] == k);
                prop_assert_eq!(found.is_some(), keys.contains(&k));
                match (ins, found) {
                    (true, None) => {
                        idx.insert(hash(k), keys.len() as u32);
                        keys.push(k);
                    }
                    (false, Some((slot, pos))) => {
                        idx.remove(slot, |p| hash(keys[p as usize]));
                        let last = keys.len() - 1;
                        if pos as usize != last {
                            let moved = keys[last];
                            let (s, _) = idx.find(hash(moved), |p| p as usize == last).unwrap();
                            idx.set(s, pos);
                        }
                        keys.swap_remove(pos as usize);
                    }
                    _ => {}
                }
                for (p, &k) in keys.iter().enumerate() {
                    prop_assert_eq!(idx.find(hash(k), |q| keys[q as usize] == k).map(|f| f.1), Some(p as u32));
                }
            }
        }
    }
}
