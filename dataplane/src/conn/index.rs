//! The hash index of the connection table: 64-byte buckets of ten `(16-bit tag, u32 reference)`
//! pairs, probed linearly.
//!
//! A lookup reads one bucket (one cache line), compares tags, and checks the key of the few
//! candidates in the slab (usually one more line). Every bucket counts the entries that hashed
//! to it but were placed further on (F14's "outbound overflow" count), so a miss stops at the
//! first bucket whose count is zero and a removal needs no tombstones. The index is sized at
//! construction and never grows; the table keeps it at most 80 % full.

use crate::prefetch::Prefetch;

/// Slots per bucket.
pub const SLOTS: usize = 10;
/// Tag of an empty slot.
const EMPTY: u16 = 0;

/// One cache line: tags, overflow count, references.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    tags: [u16; SLOTS],
    /// Entries whose home is this bucket or an earlier one, placed after this bucket
    /// (sticky at `u16::MAX`).
    overflow: u16,
    _pad: u16,
    refs: [u32; SLOTS],
}

const EMPTY_BUCKET: Bucket = Bucket {
    tags: [EMPTY; SLOTS],
    overflow: 0,
    _pad: 0,
    refs: [0; SLOTS],
};

/// What the home bucket alone says about a hash: the first stage of a burst lookup, which reads
/// one index line per packet and no slab entry, so that a burst's index misses overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Nothing is stored under the hash: no tag matches at home and nothing was displaced past it.
    Absent,
    /// The home bucket's first reference with the hash's tag (possibly a tag collision).
    Candidate(u32),
    /// The home bucket cannot tell; a full lookup must.
    Unsure,
}

impl Probe {
    /// What [`Probe::candidate`] gives when there is no candidate: its slot part is all ones,
    /// which no slot has (a table holds at most 2^30 − 1 entries, slots 0..2^30 − 2), so a
    /// lookup of it finds nothing.
    pub const NO_CANDIDATE: u32 = u32::MAX;

    /// The candidate's index reference, or [`Probe::NO_CANDIDATE`].
    #[inline(always)]
    pub fn candidate(self) -> u32 {
        match self {
            Probe::Candidate(r) => r,
            Probe::Absent | Probe::Unsure => Probe::NO_CANDIDATE,
        }
    }
}

/// Every slot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexFull;

/// A fixed-size hash index from 64-bit hashes to `u32` references; keys live with the caller.
pub struct Index {
    buckets: Box<[Bucket]>,
}

/// The tag of `hash`: its top 16 bits with the lowest forced to 1, so that no tag is EMPTY
/// (15 bits of the hash: a tag match is a false candidate once in 32,768, which the key
/// check catches, for two instructions where a `max(1)` took three).
#[inline(always)]
fn tag_of(hash: u64) -> u16 {
    (hash >> 48) as u16 | 1
}

impl Index {
    /// An index of `buckets` buckets (at least one).
    pub fn new(buckets: usize) -> Index {
        Index {
            buckets: vec![EMPTY_BUCKET; buckets.max(1)].into_boxed_slice(),
        }
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.buckets)
    }

    /// Reference slots in all.
    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.buckets.len() * SLOTS
    }

    /// The home bucket of `hash` (range reduction by multiply, no power of two needed).
    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        ((u64::from(hash as u32) * self.buckets.len() as u64) >> 32) as usize
    }

    #[inline(always)]
    fn next(&self, b: usize) -> usize {
        if b + 1 == self.buckets.len() {
            0
        } else {
            b + 1
        }
    }

    /// The first reference stored under `hash` for which `matches` holds.
    #[inline]
    pub fn find(&self, hash: u64, mut matches: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = tag_of(hash);
        let mut b = self.home(hash);
        for _ in 0..self.buckets.len() {
            let bucket = self.buckets.get(b)?;
            for (t, &r) in bucket.tags.iter().zip(bucket.refs.iter()) {
                if *t == tag && matches(r) {
                    return Some(r);
                }
            }
            if bucket.overflow == 0 {
                return None;
            }
            b = self.next(b);
        }
        None
    }

    /// Prefetches the home bucket of `hash`, by address: `home` is always in bounds, but
    /// `get` would check it, and a prefetch needs no valid reference.
    #[inline(always)]
    pub fn prefetch(&self, hash: u64, pf: &impl Prefetch) {
        pf.prefetch(self.buckets.as_ptr().wrapping_add(self.home(hash)));
    }

    /// Reads the home bucket of `hash` only (see [`Probe`]).
    #[inline(always)]
    pub fn probe(&self, hash: u64) -> Probe {
        let tag = tag_of(hash);
        let Some(bucket) = self.buckets.get(self.home(hash)) else {
            return Probe::Unsure;
        };
        let hit = bucket.tags.iter().position(|&t| t == tag);
        match (hit.and_then(|i| bucket.refs.get(i)), bucket.overflow) {
            (Some(&r), _) => Probe::Candidate(r),
            (None, 0) => Probe::Absent,
            (None, _) => Probe::Unsure,
        }
    }

    /// Stores `r` under `hash` (duplicates are the caller's business).
    pub fn insert(&mut self, hash: u64, r: u32) -> Result<(), IndexFull> {
        let tag = tag_of(hash);
        let home = self.home(hash);
        let mut b = home;
        for _ in 0..self.buckets.len() {
            let bucket = &mut self.buckets[b];
            if let Some(i) = bucket.tags.iter().position(|&t| t == EMPTY) {
                bucket.tags[i] = tag;
                bucket.refs[i] = r;
                // Count the displacement on every bucket passed over.
                let mut p = home;
                while p != b {
                    let o = &mut self.buckets[p].overflow;
                    *o = o.saturating_add(1);
                    p = self.next(p);
                }
                return Ok(());
            }
            b = self.next(b);
        }
        Err(IndexFull)
    }

    /// Removes the reference `r` stored under `hash`; false when it is not there.
    pub fn remove(&mut self, hash: u64, r: u32) -> bool {
        let tag = tag_of(hash);
        let home = self.home(hash);
        let mut b = home;
        for _ in 0..self.buckets.len() {
            let bucket = &mut self.buckets[b];
            let hit = (0..SLOTS).find(|&i| bucket.tags[i] == tag && bucket.refs[i] == r);
            if let Some(i) = hit {
                bucket.tags[i] = EMPTY;
                let mut p = home;
                while p != b {
                    let o = &mut self.buckets[p].overflow;
                    if *o != u16::MAX {
                        *o -= 1;
                    }
                    p = self.next(p);
                }
                return true;
            }
            if bucket.overflow == 0 {
                return false;
            }
            b = self.next(b);
        }
        false
    }

    /// The buckets' memory as `(address, bytes)`.
    pub fn region(&self) -> (usize, usize) {
        (self.buckets.as_ptr() as usize, self.memory_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_bucket_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
        assert_eq!(std::mem::align_of::<Bucket>(), 64);
        assert_eq!(Index::new(4).memory_bytes(), 256);
        assert_eq!(Index::new(4).slots(), 40);
    }

    #[test]
    fn test_overflow_chain_insert_find_remove() {
        // One hash for every entry: all collide in one home bucket and spill into the next ones.
        let mut ix = Index::new(3);
        let h = 0xabcd_0000_0000_0001u64;
        for r in 0..25 {
            ix.insert(h, r).unwrap();
        }
        assert_eq!(ix.buckets[ix.home(h)].overflow, 15);
        for r in 0..25 {
            assert_eq!(ix.find(h, |x| x == r), Some(r));
        }
        assert_eq!(ix.find(h, |x| x == 99), None);
        // A different tag in the same home never matches.
        assert_eq!(ix.find(0x1111_0000_0000_0001, |_| true), None);
        for r in 0..12 {
            assert!(ix.remove(h, r));
        }
        assert!(!ix.remove(h, 3));
        // 0..10 sat in the home bucket; 10 and 11 were two of the 15 displaced ones.
        assert_eq!(ix.buckets[ix.home(h)].overflow, 13);
        for r in 12..25 {
            assert_eq!(ix.find(h, |x| x == r), Some(r));
        }
        for r in 12..25 {
            assert!(ix.remove(h, r));
        }
        assert!(ix.buckets.iter().all(|b| b.overflow == 0));
        assert_eq!(ix.find(h, |_| true), None);
    }

    #[test]
    fn test_probe_agrees_with_find() {
        let mut ix = Index::new(3);
        let h = 0xabcd_0000_0000_0001u64;
        assert_eq!(ix.probe(h), Probe::Absent);
        ix.insert(h, 7).unwrap();
        assert_eq!(ix.probe(h), Probe::Candidate(7));
        // Another tag in the same home: not a candidate, and nothing was displaced.
        assert_eq!(ix.probe(0x1111_0000_0000_0001), Probe::Absent);
        for r in 8..20 {
            ix.insert(h, r).unwrap();
        }
        // Ten fill the home bucket, two spill: a foreign tag there can no longer be ruled out.
        assert_eq!(ix.probe(0x1111_0000_0000_0001), Probe::Unsure);
        assert_eq!(ix.probe(h), Probe::Candidate(7));
        assert!(ix.remove(h, 7));
        assert_eq!(ix.probe(h), Probe::Candidate(8));
    }

    #[test]
    fn test_full() {
        let mut ix = Index::new(1);
        for r in 0..SLOTS as u32 {
            ix.insert(u64::from(r) << 48, r).unwrap();
        }
        assert_eq!(ix.insert(7, 99), Err(IndexFull));
    }
}
