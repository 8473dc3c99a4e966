//! The per-core connection table of the director (IPVS's `ip_vs_conn` table, one per worker).
//!
//! A packet's flow key finds its connection in either direction: client → VIP (the original
//! direction) and, when replies pass the director (NAT, FullNAT), real server → client or →
//! FullNAT local address (the reply direction). DR and TUN connections are indexed only in the
//! original direction. A core can also hold a reply-only *alias* of a connection owned by
//! another core, so that a reply arriving on the wrong core can be handed to its owner.
//!
//! Promises:
//! - Fixed capacity: everything is allocated by [`ConnTable::new`]; no call allocates, locks or
//!   panics on packet data. [`ConnTable::insert`] fails with [`InsertError::Full`] and changes
//!   nothing when the table is full.
//! - 128 bytes per connection with the index ([`ConnTable::bytes_per_conn`], capacity a multiple
//!   of 4): a 112-byte slab entry (104-byte [`Conn`] + 8 bytes of timer links) and 2.5 index
//!   slots of 6.4 bytes (64-byte buckets of ten 16-bit tags and `u32` references).
//! - One seeded hash per lookup, one index cache line and usually one slab line.
//! - IPVS's TCP state machine ([`state`]), with ESTABLISHED counted as active and every other
//!   state inactive in the per-real-server [`crate::sched::DestLoad`] counts of this core.
//! - Expiry to the millisecond of `now_ms` (no clock is read), in bounded batches
//!   ([`ConnTable::expire`]); traffic re-arms a connection by storing its new expiry only.
//! - Persistence templates live in the same table ([`template`]).
//!
//! ```text
//!  lookup(key) ──hash──▶ index bucket (64 B) ──u32 id│dir──▶ slab entry (112 B) ──links──▶ wheel
//! ```

mod bind;
mod entry;
mod hash;
mod index;
mod lookup;
mod memory;
pub mod state;
mod table;
pub mod template;
#[cfg(test)]
mod testutil;
mod update;
mod wheel;

use std::fmt;

pub use entry::{Conn, NewConn};
pub use hash::{hash_flow, random_seed};
pub use index::Probe;
pub use state::{tcp_flags, ConnState};
pub use table::{ConnTable, ConnTableConfig};
pub use template::{NewTemplate, TemplateKey};
pub use update::{EstablishedTouch, Expired, StateChange};
pub use wheel::SLOTS as WHEEL_SLOTS;

/// An entry of one core's table; valid until the entry is removed or expires.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u32);

impl ConnId {
    /// The slot number (below the table's capacity).
    #[inline]
    pub fn slot(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn{}", self.0)
    }
}

/// Which way a packet travels through its connection (also the index of its direction's
/// traffic counters, hence the explicit values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Client → VIP.
    Original = 0,
    /// Real server → client (NAT) or → local address (FullNAT).
    Reply = 1,
}

/// Why a connection, template or alias was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InsertError {
    /// No free entry.
    Full,
    /// One of its keys is already in the table (for FullNAT: the local port is taken).
    Exists,
    /// Its `DestId` is beyond the table's `dest_capacity`.
    BadDest,
    /// Its template is not a live template of the same protocol.
    BadTemplate,
    /// An alias of a DR or TUN connection (which have no reply direction).
    NoReplyLeg,
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "connection table full",
            Self::Exists => "connection already exists",
            Self::BadDest => "real server slot out of range",
            Self::BadTemplate => "persistence template not found",
            Self::NoReplyLeg => "DR/TUN connections have no reply direction",
        })
    }
}

impl std::error::Error for InsertError {}

#[cfg(test)]
mod tests {
    //! Random operation sequences against a `HashMap` model of the table.

    use super::tcp_flags::{ACK, FIN, RST, SYN};
    use super::testutil::new_conn;
    use super::*;
    use crate::flow::{FlowKey, Proto};
    use crate::model::{FwdMode, Timeouts};
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone)]
    enum Op {
        Insert {
            i: u16,
            mode: u8,
            dest: u32,
            udp: bool,
        },
        Lookup {
            i: u16,
            mode: u8,
            dest: u32,
        },
        Packet {
            k: usize,
            reply: bool,
            flags: u8,
        },
        Remove {
            k: usize,
        },
        Expire {
            budget: usize,
        },
        Advance {
            ms: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let flags = prop::sample::select(vec![SYN, SYN | ACK, ACK, FIN | ACK, RST, 0]);
        prop_oneof![
            4 => (0u16..40, 0u8..4, 0u32..4, any::<bool>())
                .prop_map(|(i, mode, dest, udp)| Op::Insert { i, mode, dest, udp }),
            2 => (0u16..40, 0u8..4, 0u32..4).prop_map(|(i, mode, dest)| Op::Lookup { i, mode, dest }),
            4 => (any::<usize>(), any::<bool>(), flags)
                .prop_map(|(k, reply, flags)| Op::Packet { k, reply, flags }),
            1 => any::<usize>().prop_map(|k| Op::Remove { k }),
            2 => (1usize..6).prop_map(|budget| Op::Expire { budget }),
            3 => prop_oneof![0u64..5_000, 0u64..200_000, Just(1000), Just(2000), Just(5_000_000)]
                .prop_map(|ms| Op::Advance { ms }),
        ]
    }

    fn new(i: u16, mode: u8, dest: u32, udp: bool) -> NewConn {
        let mut n = new_conn(i, FwdMode::ALL[usize::from(mode)], dest);
        if udp {
            n.proto = Proto::Udp;
        }
        n
    }

    /// Original key, reply key if indexed, expiry.
    type Model = HashMap<ConnId, (FlowKey, Option<FlowKey>, u64)>;

    fn model_lookup(m: &Model, key: &FlowKey) -> Option<(ConnId, Dir)> {
        m.iter().find_map(|(&id, (o, r, _))| {
            if o == key {
                Some((id, Dir::Original))
            } else if r.as_ref() == Some(key) {
                Some((id, Dir::Reply))
            } else {
                None
            }
        })
    }

    fn check(t: &ConnTable, m: &Model) {
        assert_eq!(t.len(), m.len());
        assert_eq!(t.iter().count(), m.len());
        let mut loads = [(0u32, 0u32); 4];
        for (&id, (o, r, exp)) in m {
            let c = t.get(id).expect("live");
            assert_eq!(c.orig_key(), *o);
            assert_eq!(c.expires_ms(), *exp);
            assert_eq!(t.lookup(o), Some((id, Dir::Original)));
            match r {
                Some(r) => assert_eq!(t.lookup(r), Some((id, Dir::Reply))),
                None => assert_eq!(t.lookup(&c.reply_key()), None),
            }
            let l = &mut loads[c.dest.index()];
            if c.state().is_active() {
                l.0 += 1;
            } else {
                l.1 += 1;
            }
        }
        for (d, l) in t.loads().iter().enumerate() {
            assert_eq!((l.active, l.inactive), loads[d], "dest {d}");
        }
    }

    fn run(ops: Vec<Op>, tick_ms: u32) {
        let mut t = ConnTable::new(ConnTableConfig {
            capacity: 16,
            dest_capacity: 4,
            timeouts: Timeouts::default(),
            tick_ms,
            seed: Some(99),
            core: 0,
        });
        let mut m = Model::new();
        let mut now = 1_000_000u64;
        for op in ops {
            match op {
                Op::Insert { i, mode, dest, udp } => {
                    let n = new(i, mode, dest, udp);
                    let c = n.into_conn(ConnState::None, 0);
                    let reply = c.has_reply_leg().then(|| c.reply_key());
                    let clash = model_lookup(&m, &c.orig_key()).is_some()
                        || reply.is_some_and(|r| model_lookup(&m, &r).is_some());
                    let got = t.insert(n, now);
                    if clash {
                        assert_eq!(got, Err(InsertError::Exists));
                    } else if m.len() == 16 {
                        assert_eq!(got, Err(InsertError::Full));
                    } else {
                        let id = got.unwrap();
                        let timeout = if udp { 300 } else { 2 };
                        m.insert(id, (c.orig_key(), reply, now + timeout * 1000));
                    }
                }
                Op::Lookup { i, mode, dest } => {
                    let c = new(i, mode, dest, false).into_conn(ConnState::None, 0);
                    assert_eq!(t.lookup(&c.orig_key()), model_lookup(&m, &c.orig_key()));
                    assert_eq!(t.lookup(&c.reply_key()), model_lookup(&m, &c.reply_key()));
                }
                Op::Packet { k, reply, flags } => {
                    let mut ids: Vec<ConnId> = m.keys().copied().collect();
                    ids.sort();
                    if let Some(&id) = ids.get(k % ids.len().max(1)) {
                        let dir = if reply { Dir::Reply } else { Dir::Original };
                        let s = t.on_packet(id, dir, flags, now).unwrap();
                        let secs = s.to.timeout(t.timeouts());
                        m.get_mut(&id).unwrap().2 = now + u64::from(secs) * 1000;
                    }
                }
                Op::Remove { k } => {
                    let mut ids: Vec<ConnId> = m.keys().copied().collect();
                    ids.sort();
                    if let Some(&id) = ids.get(k % ids.len().max(1)) {
                        assert!(t.remove(id));
                        m.remove(&id);
                    }
                }
                Op::Expire { budget } => {
                    let mut gone = Vec::new();
                    let r = t.expire(now, budget, |id, c| gone.push((id, *c)));
                    assert_eq!(r.removed, gone.len());
                    assert!(r.removed <= budget);
                    for (id, c) in gone {
                        let (o, _, exp) = m.remove(&id).expect("expired a live entry");
                        assert_eq!(c.orig_key(), o);
                        assert!(exp <= now, "{id:?} expired early");
                    }
                    if !r.more {
                        assert!(m.values().all(|e| e.2 > now), "a due entry survived");
                    }
                }
                Op::Advance { ms } => now += ms,
            }
            check(&t, &m);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn test_model_1s_tick(ops in prop::collection::vec(op(), 1..120)) {
            run(ops, 1000);
        }

        #[test]
        fn test_model_short_tick(ops in prop::collection::vec(op(), 1..120)) {
            run(ops, 7);
        }
    }
}
