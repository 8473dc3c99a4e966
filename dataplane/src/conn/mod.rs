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

mod entry;
mod hash;
mod index;
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
pub use state::{tcp_flags, ConnState};
pub use table::{ConnTable, ConnTableConfig};
pub use update::{Expired, StateChange};
pub use template::{NewTemplate, TemplateKey};
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

/// Which way a packet travels through its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Client → VIP.
    Original,
    /// Real server → client (NAT) or → local address (FullNAT).
    Reply,
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
