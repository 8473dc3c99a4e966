//! Finding a connection: hashing flow keys, the whole lookup, and the staged lookup of a burst
//! (probe the index line, prefetch the candidate entry, resolve), with the prefetches that let a
//! burst's misses overlap.

use std::mem::offset_of;

use super::entry::{flag, Conn, Entry};
use super::hash::{hash_flow_keyed, hash_flow_v4};
use super::index::Probe;
use super::table::{decode_ref, ConnTable, ID_MASK, REPLY_BIT, WIDE_BIT};
use super::{ConnId, Dir};
use crate::flow::{FlowKey, Proto};
use crate::prefetch::Prefetch;
use crate::wire::Ipv4TcpHead;

impl ConnTable {
    /// The index hash of a flow key (for hashing a burst before looking it up).
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        hash_flow_keyed(self.seed, self.v4_prefix, key)
    }

    /// [`ConnTable::hash`] of an IPv4 key given as (addresses, ports), the same value in fewer
    /// steps.
    #[inline(always)]
    pub fn hash_v4(&self, addrs: ([u8; 4], [u8; 4]), ports: (u16, u16), proto: Proto) -> u64 {
        hash_flow_v4(self.seed, self.v4_prefix, addrs, ports, proto)
    }

    /// The connection a packet with this key belongs to, and the direction it travels.
    #[inline]
    pub fn lookup(&self, key: &FlowKey) -> Option<(ConnId, Dir)> {
        self.lookup_hashed(self.hash(key), key)
    }

    /// [`ConnTable::lookup`] with the hash from [`ConnTable::hash`].
    #[inline(always)]
    pub fn lookup_hashed(&self, hash: u64, key: &FlowKey) -> Option<(ConnId, Dir)> {
        let r = self.index.find(hash, |r| self.ref_matches(r, key))?;
        Some(decode_ref(r))
    }

    /// Stage one of a burst lookup: reads the index line of `hash` and no entry, so that the
    /// index misses of a burst's packets overlap (see [`ConnTable::resolve`]).
    #[inline(always)]
    pub fn probe(&self, hash: u64) -> Probe {
        self.index.probe(hash)
    }

    /// Stage two: confirms `probe` against the candidate entry's key (reading that entry), or
    /// looks up in full when the bucket could not tell. Same answer as [`ConnTable::lookup`]
    /// as long as [`ConnTable::index_version`] has not moved since the probe.
    #[inline(always)]
    pub fn resolve(&self, probe: Probe, hash: u64, key: &FlowKey) -> Option<(ConnId, Dir)> {
        match probe {
            Probe::Absent => None,
            Probe::Candidate(r) if self.ref_matches(r, key) => Some(decode_ref(r)),
            Probe::Candidate(_) | Probe::Unsure => self.lookup_hashed(hash, key),
        }
    }

    /// [`ConnTable::resolve`] for the key of an IPv4 TCP head, comparing the candidate entry's
    /// fields with the head's directly.
    #[inline(always)]
    pub fn resolve_v4(&self, probe: Probe, hash: u64, h: &Ipv4TcpHead) -> Option<(ConnId, Dir)> {
        if let Probe::Candidate(r) = probe {
            if r & REPLY_BIT == 0 {
                let hit = self
                    .slab
                    .get((r & ID_MASK) as usize)
                    .is_some_and(|e| e.conn.flags & flag::TEMPLATE == 0 && e.conn.is_orig_of(h));
                if hit {
                    return Some(decode_ref(r));
                }
            }
        }
        if probe == Probe::Absent {
            return None;
        }
        self.resolve(probe, hash, &h.flow_key())
    }

    /// Prefetches the index line of `hash`, so that a burst's index misses are in flight
    /// together before the first [`ConnTable::probe`].
    #[inline(always)]
    pub fn prefetch_index(&self, hash: u64, pf: &impl Prefetch) {
        self.index.prefetch(hash, pf);
    }

    /// Prefetches every cache line a packet reads of the entry that index reference `r` (a
    /// [`Probe::Candidate`]) names: bytes 0..80 (those of bytes 0 and 64) and, for NAT and
    /// FullNAT, bytes 0..104 (also that of byte 103), at most three lines.
    ///
    /// By address, with no bounds check on the slab: a prefetch of any address is harmless,
    /// and the reference is in bounds anyway unless the index is stale.
    #[inline(always)]
    pub fn prefetch_entry(&self, r: u32, pf: &impl Prefetch) {
        let entry = self.slab.as_ptr().wrapping_add((r & ID_MASK) as usize);
        let field = |at: usize| {
            entry
                .cast::<u8>()
                .wrapping_add(offset_of!(Entry, conn) + at)
        };
        pf.prefetch(field(offset_of!(Conn, client)));
        pf.prefetch(field(offset_of!(Conn, real)));
        if r & WIDE_BIT != 0 {
            pf.prefetch(field(offset_of!(Conn, nat_sum)));
        }
    }

    /// Changes whenever a key is added to or removed from the index: probes and resolutions
    /// taken before it moved may be stale.
    #[inline(always)]
    pub fn index_version(&self) -> u64 {
        self.version
    }

    /// True when index reference `r` is the entry (and direction) of `key`.
    #[inline(always)]
    fn ref_matches(&self, r: u32, key: &FlowKey) -> bool {
        self.slab.get((r & ID_MASK) as usize).is_some_and(|e| {
            if r & REPLY_BIT != 0 {
                e.conn.reply_key() == *key
            } else {
                e.conn.flags & flag::TEMPLATE == 0 && e.conn.orig_key() == *key
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::testutil::{new_conn, table};
    use crate::flow::Addr;
    use crate::model::FwdMode;

    /// Records the cache lines (address / 64) it is asked to prefetch.
    #[derive(Default)]
    struct Lines(std::cell::RefCell<Vec<usize>>);

    impl Prefetch for Lines {
        fn prefetch<T>(&self, p: *const T) {
            self.0.borrow_mut().push(p as usize / 64);
        }
    }

    #[test]
    fn test_prefetch_entry_covers_the_lines_a_packet_reads() {
        // Twelve entries of one mode and four of the other, in slab order: each mode at every
        // start offset in a line.
        for (many, few) in [
            (FwdMode::Dr, FwdMode::FullNat),
            (FwdMode::FullNat, FwdMode::Dr),
        ] {
            let mut t = table(16);
            for i in 0..16 {
                let mode = if i < 12 { many } else { few };
                t.insert(new_conn(i, mode, 1), 0).unwrap();
            }
            for (_, c) in t.iter() {
                let start = std::ptr::from_ref(c) as usize;
                let lines = |end: usize| {
                    let mut v: Vec<usize> = (start / 64..=(start + end - 1) / 64).collect();
                    v.dedup();
                    v
                };
                let Probe::Candidate(r) = t.probe(t.hash(&c.orig_key())) else {
                    panic!("{c:?} has no candidate");
                };
                let pf = Lines::default();
                t.prefetch_entry(r, &pf);
                let mut fetched = pf.0.into_inner();
                fetched.dedup();
                // A DR packet reads bytes 0..80 (up to `real`); NAT and FullNAT read 0..104 (up
                // to `nat_sum` at 102). Nothing outside is fetched.
                let reads = if c.has_reply_leg() { 104 } else { 80 };
                assert_eq!(fetched, lines(reads), "{:?} at {}", c.mode, start % 64);
            }
        }
    }

    #[test]
    fn test_lookup_both_directions() {
        let mut t = table(16);
        let nat = t.insert(new_conn(1, FwdMode::Nat, 1), 0).unwrap();
        let fnat = t.insert(new_conn(2, FwdMode::FullNat, 2), 0).unwrap();
        let dr = t.insert(new_conn(3, FwdMode::Dr, 3), 0).unwrap();
        for id in [nat, fnat, dr] {
            let c = *t.get(id).unwrap();
            assert_eq!(t.lookup(&c.orig_key()), Some((id, Dir::Original)));
            assert_eq!(c.owner, 0);
            assert!(!c.is_alias() && !c.is_template());
        }
        let c = *t.get(nat).unwrap();
        let reply = c.reply_key();
        assert_eq!(reply.saddr, Addr::v4([10, 0, 0, 1]));
        assert_eq!(reply.daddr, c.client);
        assert_eq!(t.lookup(&reply), Some((nat, Dir::Reply)));
        let c = *t.get(fnat).unwrap();
        assert_eq!(c.reply_key().daddr, Addr::v4([10, 0, 1, 1]));
        assert_eq!(c.reply_key().dport, 5002);
        assert_eq!(t.lookup(&c.reply_key()), Some((fnat, Dir::Reply)));
        // DR replies bypass the director: no reply entry.
        let c = *t.get(dr).unwrap();
        assert_eq!(t.lookup(&c.reply_key()), None);
        // Keys read backwards are other flows.
        assert_eq!(t.lookup(&c.orig_key().reversed()), None);
        let h = t.hash(&reply);
        assert_eq!(t.lookup_hashed(h, &reply), Some((nat, Dir::Reply)));
        assert_eq!(t.len(), 3);
    }
}
