//! The egress cache: per real-server slot, the port and MACs a packet towards the server leaves
//! with, valid under one [`HopStamp`], so that an established packet needs neither a route nor
//! a neighbour lookup.
//!
//! A slot's hop is recorded for the address the slot is bound to, and the fast path compares
//! no address with it: every connection on a slot goes to that address, except while the slot
//! is *mixed* ([`crate::conn::ConnTable::dest_mixed`]: the control plane gave the slot to
//! another server while connections of the previous one live on). A mixed slot's hop carries
//! [`Hop::MIXED`], so that no stamp the fast path compares matches it; its packets take the
//! out-of-line path, which compares the address as well ([`Hop::holds_mixed`]), as every hop
//! did before slots were bound. The last hop, for the next hop of replies, also compares its
//! address (the next hop's: replies go to many clients).

use super::forwarder::Forwarder;
use super::snapshot::Snapshot;
use crate::flow::Addr;
use crate::sched::DestId;

/// The egress towards one real server (or, in the last slot, the next hop of replies), valid
/// while the forwarder's hop stamp is the one recorded (it moves whenever the snapshot
/// generation or the topology's epoch does, see [`HopStamp`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Hop {
    pub(super) stamp: u64,
    /// The address the hop was recorded for: checked only by the replies' hop; in a real
    /// server's slot, the slot's bound address (debug builds check it).
    pub(super) addr: Addr,
    pub(super) port: u16,
    /// The Ethernet header's first 12 bytes: destination (next hop) and source MAC.
    pub(super) macs: [u8; 12],
}

impl Hop {
    /// A hop that matches nothing (no stamp is 0).
    pub(super) const NONE: Hop = Hop {
        stamp: 0,
        addr: Addr::UNSPECIFIED,
        port: 0,
        macs: [0; 12],
    };

    /// The bit of a mixed slot's stamp: [`HopStamp`] never issues a stamp with it, so the
    /// fast path's compare fails, while the rest of the word is the stamp the hop was recorded
    /// under (0: none).
    pub(super) const MIXED: u64 = 1 << 63;

    /// True when the hop was recorded under `stamp` (a real server's slot).
    #[inline(always)]
    pub(super) fn holds(&self, stamp: u64) -> bool {
        self.stamp == stamp
    }

    /// True when the hop was recorded for `addr` under `stamp` (the replies' hop).
    #[inline(always)]
    pub(super) fn holds_for(&self, stamp: u64, addr: &Addr) -> bool {
        self.stamp == stamp && self.addr == *addr
    }

    /// True when the hop of a mixed slot was recorded for `addr` under `stamp`.
    #[inline(always)]
    pub(super) fn holds_mixed(&self, stamp: u64, addr: &Addr) -> bool {
        self.stamp == stamp | Self::MIXED && self.addr == *addr
    }

    /// The stamp to record a hop under in this slot: `stamp`, with the slot's mixed bit kept.
    #[inline(always)]
    pub(super) fn stamp_to_record(&self, stamp: u64) -> u64 {
        stamp | (self.stamp & Self::MIXED)
    }

    /// The egress port.
    #[inline(always)]
    pub(super) fn port(&self) -> u16 {
        self.port
    }

    /// Sets the frame's MACs to the hop's.
    #[inline(always)]
    pub(super) fn set_macs(&self, frame: &mut [u8]) {
        if let Some(h) = frame.first_chunk_mut::<12>() {
            *h = self.macs;
        }
    }
}

/// The number a cached [`Hop`] is checked against: it moves whenever the snapshot generation
/// or the topology's epoch ([`super::Topology::epoch`]) does, so that a packet compares one word, read
/// once per call of the forwarder, instead of two, one of them behind the topology.
#[derive(Debug, Clone, Copy)]
pub(super) struct HopStamp {
    key: (u64, Option<u64>),
    current: u64,
    next: u64,
}

impl HopStamp {
    /// The stamp while the topology allows no caching: no hop holds it (none is recorded).
    pub(super) const OFF: u64 = u64::MAX;

    /// Before the first snapshot: caching off.
    pub(super) const fn new() -> HopStamp {
        HopStamp {
            key: (0, None),
            current: Self::OFF,
            next: 1,
        }
    }

    /// The stamp for snapshot `generation` under topology epoch `epoch`: the last one while
    /// neither moved, else a new one (never 0, [`Hop::NONE`]'s, nor with [`Hop::MIXED`]), or
    /// [`HopStamp::OFF`].
    #[inline(always)]
    pub(super) fn refresh(&mut self, generation: u64, epoch: Option<u64>) -> u64 {
        if (generation, epoch) != self.key {
            self.key = (generation, epoch);
            self.current = match epoch {
                Some(_) => {
                    self.next += 1;
                    self.next - 1
                }
                None => Self::OFF,
            };
        }
        self.current
    }

    /// The stamp [`HopStamp::refresh`] last returned.
    #[inline(always)]
    pub(super) fn current(&self) -> u64 {
        self.current
    }
}

impl Forwarder {
    /// Binds every real-server slot of `snap` to its server's address in the connection
    /// table, and marks the hops of the slots that are mixed now (see the module
    /// documentation). Part of [`Forwarder::install`].
    pub(super) fn bind_dests(&mut self, snap: &Snapshot) {
        for s in snap.services() {
            for d in s.dests.iter() {
                self.conns.bind_dest(d.id, d.addr);
                if self.conns.dest_mixed(d.id) && !self.mixed.contains(&d.id) {
                    self.mixed.push(d.id);
                }
            }
        }
        self.refresh_mixed();
    }

    /// Marks the hop of each slot still mixed (recording nothing yet), and frees the hop of
    /// each slot no longer mixed (its next packet records it). Called after connections end.
    pub(super) fn refresh_mixed(&mut self) {
        let (conns, hops) = (&self.conns, &mut self.hops);
        self.mixed.retain(|&d| {
            let mixed = conns.dest_mixed(d);
            if let Some(h) = hops.get_mut(d.index()) {
                if !mixed {
                    h.stamp = Hop::NONE.stamp;
                } else if h.stamp & Hop::MIXED == 0 {
                    h.stamp = Hop::MIXED;
                }
            }
            mixed
        });
    }

    /// The real-server slots that are mixed: their packets take the out-of-line path, whose
    /// hop check compares the address.
    pub fn mixed_dests(&self) -> &[DestId] {
        &self.mixed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hop_stamp_moves_with_generation_and_epoch() {
        let mut s = HopStamp::new();
        assert_eq!(s.current(), HopStamp::OFF);
        let a = s.refresh(1, Some(7));
        assert_ne!(a, 0, "0 is Hop::NONE's");
        assert_ne!(a, Hop::MIXED);
        assert_ne!(a, HopStamp::OFF);
        assert_eq!(s.refresh(1, Some(7)), a, "unchanged: the same stamp");
        let b = s.refresh(1, Some(8));
        let c = s.refresh(2, Some(8));
        assert!(a != b && b != c && a != c);
        // Caching off, then back to an earlier pair: a fresh stamp, so nothing recorded
        // before holds again.
        assert_eq!(s.refresh(2, None), HopStamp::OFF);
        let d = s.refresh(1, Some(7));
        assert!(![a, b, c, HopStamp::OFF].contains(&d));
        assert_eq!(s.current(), d);
        // A hop holds only its own stamp (and, for replies, address); NONE and a mixed slot's
        // hold nothing.
        let real = Addr::v4([10, 0, 0, 1]);
        let hop = Hop {
            stamp: d,
            addr: real,
            port: 1,
            macs: [0; 12],
        };
        assert!(hop.holds(d) && hop.holds_for(d, &real) && !hop.holds_mixed(d, &real));
        assert_eq!(hop.stamp_to_record(c), c);
        assert!(!hop.holds(c) && !hop.holds(HopStamp::OFF));
        assert!(!hop.holds_for(d, &Addr::v4([10, 0, 0, 2])));
        assert!(!Hop::NONE.holds(HopStamp::OFF) && !Hop::NONE.holds(d));
        // A mixed slot's hop: nothing recorded yet, then recorded under d for `real`. The fast
        // path's compare never matches it; the address-checking one matches d and `real` only.
        let mut mixed = Hop {
            stamp: Hop::MIXED,
            ..hop
        };
        assert!(!mixed.holds(d) && !mixed.holds(HopStamp::OFF) && !mixed.holds_mixed(d, &real));
        mixed.stamp = mixed.stamp_to_record(d);
        assert_eq!(mixed.stamp, d | Hop::MIXED);
        assert!(!mixed.holds(d) && !mixed.holds(HopStamp::OFF) && mixed.holds_mixed(d, &real));
        assert!(!mixed.holds_mixed(c, &real) && !mixed.holds_mixed(d, &Addr::v4([10, 0, 0, 2])));
    }
}
