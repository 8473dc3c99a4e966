//! The per-core connection table: a slab of entries addressed by `u32`, a hash index over both
//! directions, the expiry wheel and the per-real-server load counts.
//!
//! Everything is allocated in [`ConnTable::new`]; no operation allocates. Each worker core owns
//! one table, so nothing here is shared or atomic. The table's clock is the latest `now_ms` any
//! call passed it; no clock is read.
//!
//! This module builds the table and places and removes entries; finding them (hashes, lookups,
//! the staged lookup of a burst and its prefetches) is in `lookup.rs`, and what packets and time
//! do to them in `update.rs`.

use super::bind::SlotBinding;
use super::entry::{flag, Conn, Entry, NewConn};
use super::hash::{random_seed, v4_prefix};
use super::index::Index;
use super::memory::huge_aligned_start;
use super::state::ConnState;
use super::wheel::{Link, Wheel, NIL};
use super::{ConnId, Dir, InsertError};
use crate::flow::{FlowKey, Proto};
use crate::model::Timeouts;
use crate::sched::DestLoad;

/// Reply-direction bit of an index reference.
pub(super) const REPLY_BIT: u32 = 1 << 31;
/// Index-reference bit of a NAT or FullNAT connection, whose packets read its entry up to
/// `nat_sum` (byte 104) and not only up to `real` (byte 80): it tells
/// [`ConnTable::prefetch_entry`] before the entry is read whether a third cache line is worth
/// fetching, which for half the entries it is not.
pub(super) const WIDE_BIT: u32 = 1 << 30;
/// The entry-id bits of an index reference.
pub(super) const ID_MASK: u32 = !(REPLY_BIT | WIDE_BIT);

/// The entry and direction an index reference names.
#[inline(always)]
pub(super) fn decode_ref(r: u32) -> (ConnId, Dir) {
    let dir = if r & REPLY_BIT != 0 {
        Dir::Reply
    } else {
        Dir::Original
    };
    (ConnId(r & ID_MASK), dir)
}

/// The index reference of entry `id` holding `conn`, for its original or its reply key.
#[inline]
fn index_ref(id: u32, conn: &Conn, reply: bool) -> u32 {
    let wide = if conn.has_reply_leg() { WIDE_BIT } else { 0 };
    let dir = if reply { REPLY_BIT } else { 0 };
    id | wide | dir
}

/// Whether [`ConnTable::place`] indexes an entry's original key, and its hash if the caller
/// has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OrigKey {
    /// Not indexed (an alias, a template).
    Skip,
    /// Indexed; `place` hashes it.
    Index,
    /// Indexed under this hash, the caller's [`ConnTable::hash`] of it; the caller has just
    /// looked it up and found nothing, so it is not looked up again.
    Absent(u64),
}

/// Sizes and settings of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnTableConfig {
    /// Entries (connections, persistence templates and aliases), at most
    /// [`ConnTable::MAX_CAPACITY`].
    pub capacity: u32,
    /// Real server slots ([`crate::sched::DestId`] values below this are accepted).
    pub dest_capacity: u32,
    /// Protocol timeouts, seconds.
    pub timeouts: Timeouts,
    /// Timer wheel tick in ms.
    pub tick_ms: u32,
    /// Hash seed; `None` draws a random one.
    pub seed: Option<u64>,
    /// The core owning this table (recorded as the owner of its connections).
    pub core: u16,
}

impl Default for ConnTableConfig {
    fn default() -> Self {
        Self {
            capacity: 1 << 16,
            dest_capacity: 1024,
            timeouts: Timeouts::default(),
            tick_ms: 1000,
            seed: None,
            core: 0,
        }
    }
}

/// The connection table of one core. See the module documentation of [`crate::conn`].
pub struct ConnTable {
    pub(super) slab: Box<[Entry]>,
    /// Head of the free list, threaded through `link.next`.
    pub(super) free: u32,
    pub(super) len: u32,
    pub(super) index: Index,
    pub(super) wheel: Wheel,
    pub(super) loads: Box<[DestLoad]>,
    /// Per real-server slot, as `loads`: the server its entries are for (`bind.rs`).
    pub(super) bindings: Box<[SlotBinding]>,
    pub(super) timeouts: Timeouts,
    pub(super) seed: u64,
    /// [`v4_prefix`] of `seed`, for [`ConnTable::hash_v4`].
    pub(super) v4_prefix: u64,
    pub(super) now_ms: u64,
    /// Moves whenever a key enters or leaves the index (see [`ConnTable::index_version`]).
    pub(super) version: u64,
    core: u16,
}

impl ConnTable {
    /// The most entries a table holds: an index reference keeps its top two bits for the
    /// direction and for whether its entry is read past byte 80 (NAT, FullNAT).
    pub const MAX_CAPACITY: u32 = ID_MASK;

    /// Allocates a table for `cfg.capacity` entries.
    ///
    /// # Panics
    /// When `capacity` is 0 or above [`ConnTable::MAX_CAPACITY`] (a configuration error,
    /// which the daemon's configuration check reports first).
    pub fn new(cfg: ConnTableConfig) -> ConnTable {
        assert!(
            (1..=Self::MAX_CAPACITY).contains(&cfg.capacity),
            "connection table capacity must be in 1..=2^30-1"
        );
        let cap = cfg.capacity as usize;
        let seed = cfg.seed.unwrap_or_else(random_seed);
        let mut slab = vec![
            Entry {
                conn: Conn::EMPTY,
                link: Link::UNLINKED,
            };
            cap
        ]
        .into_boxed_slice();
        // The free list hands out the entries of the slab's 2 MiB-aligned interior first (the
        // part the daemon backs with huge pages), then its tail, then its head.
        let first = huge_aligned_start(&slab);
        for i in 0..cap {
            let next = (i + 1) % cap;
            slab[i].conn.flags = 0;
            slab[i].link.next = if next == first { NIL } else { next as u32 };
        }
        ConnTable {
            slab,
            free: first as u32,
            len: 0,
            // Two keys per connection at most, in 2.5 slots: at most 80 % full.
            index: Index::new(cap.div_ceil(4)),
            wheel: Wheel::new(cfg.tick_ms),
            loads: vec![DestLoad::default(); cfg.dest_capacity as usize].into_boxed_slice(),
            bindings: vec![SlotBinding::UNBOUND; cfg.dest_capacity as usize].into_boxed_slice(),
            timeouts: cfg.timeouts,
            seed,
            v4_prefix: v4_prefix(seed),
            now_ms: 0,
            version: 0,
            core: cfg.core,
        }
    }

    /// Entries in use (connections, templates and aliases).
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when no entry is in use.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries the table can hold.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.slab.len()
    }

    /// The core this table belongs to.
    pub fn core(&self) -> u16 {
        self.core
    }

    /// The current timeouts.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Replaces the timeouts (`ipvsadm --set`); like IPVS, each connection picks them up at its
    /// next packet.
    pub fn set_timeouts(&mut self, t: Timeouts) {
        self.timeouts = t;
    }

    /// Per-real-server counts of this core, indexed by [`crate::sched::DestId`].
    #[inline]
    pub fn loads(&self) -> &[DestLoad] {
        &self.loads
    }

    /// The counts, for threshold updates (`DestLoad::set_thresholds`).
    pub fn loads_mut(&mut self) -> &mut [DestLoad] {
        &mut self.loads
    }

    /// The entry `id`, if in use.
    #[inline]
    pub fn get(&self, id: ConnId) -> Option<&Conn> {
        self.slab
            .get(id.0 as usize)
            .map(|e| &e.conn)
            .filter(|c| c.is_live())
    }

    /// Every entry in use, for listings (`ipvsadm -Lc`).
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn)> + '_ {
        self.slab
            .iter()
            .enumerate()
            .filter(|(_, e)| e.conn.is_live())
            .map(|(i, e)| (ConnId(i as u32), &e.conn))
    }

    /// Records a new connection in state NONE (TCP) or UDP, counted inactive on its real server,
    /// indexed by its original key and, for NAT and FullNAT, its reply key.
    pub fn insert(&mut self, n: NewConn, now_ms: u64) -> Result<ConnId, InsertError> {
        self.insert_as(n, OrigKey::Index, now_ms)
    }

    /// [`ConnTable::insert`] for a caller that has just looked the original key up, found
    /// nothing, and holds its [`ConnTable::hash`], `orig_hash`: the key is neither hashed nor
    /// looked up again (debug builds check both). The reply key is still checked. Crate-only:
    /// a wrong word would index the key twice.
    pub(crate) fn insert_hashed(
        &mut self,
        n: NewConn,
        orig_hash: u64,
        now_ms: u64,
    ) -> Result<ConnId, InsertError> {
        self.insert_as(n, OrigKey::Absent(orig_hash), now_ms)
    }

    fn insert_as(&mut self, n: NewConn, orig: OrigKey, now_ms: u64) -> Result<ConnId, InsertError> {
        self.advance(now_ms);
        if n.dest.index() >= self.loads.len() {
            return Err(InsertError::BadDest);
        }
        if let Some(t) = n.template {
            let ok = self.get(t).is_some_and(|c| {
                c.flags & (flag::TEMPLATE | flag::DEAD) == flag::TEMPLATE && c.proto == n.proto
            });
            if !ok {
                return Err(InsertError::BadTemplate);
            }
        }
        let conn = self.fresh(n.into_conn(initial_state(n.proto), self.core), now_ms);
        let id = self.place(conn, orig, conn.has_reply_leg(), None)?;
        self.loads[n.dest.index()].bind(false);
        self.note_binding(&conn, true);
        if let Some(t) = n.template {
            let c = &mut self.slab[t.0 as usize].conn;
            c.tmpl += 1;
            // Held templates never expire (a later expiry needs no refiling).
            c.expires_ms = u64::MAX;
            let c = &mut self.slab[id as usize].conn;
            c.tmpl = t.0;
            c.flags |= flag::HAS_TEMPLATE;
        }
        Ok(ConnId(id))
    }

    /// Records a reply-direction alias of a connection owned by core `owner`: indexed only by
    /// its reply key, not counted in the loads, expiring by `state`'s timeout unless refreshed
    /// with [`ConnTable::on_packet`].
    ///
    /// An older alias with the same reply key gives way: it belonged to a connection its owner
    /// has since replaced (a client reusing the ports of a closing connection, IPVS
    /// `conn_reuse_mode`), and would otherwise keep the old connection's state and expiry. A
    /// connection of this core's own with that reply key stays, and the alias is refused
    /// ([`InsertError::Exists`]). (The older alias is gone even if the newer one then finds the
    /// table full: it was stale either way.)
    pub fn insert_alias(
        &mut self,
        n: NewConn,
        owner: u16,
        state: ConnState,
        now_ms: u64,
    ) -> Result<ConnId, InsertError> {
        self.advance(now_ms);
        let mut conn = self.fresh(n.into_conn(state, owner), now_ms);
        if !conn.has_reply_leg() {
            return Err(InsertError::NoReplyLeg);
        }
        conn.flags |= flag::ALIAS;
        match self.place(conn, OrigKey::Skip, true, None) {
            // The reply key is taken: by an older alias, which gives way, or by this core's own
            // connection, which stays.
            Err(InsertError::Exists) => match self.lookup(&conn.reply_key()) {
                Some((old, Dir::Reply)) if self.get(old).is_some_and(Conn::is_alias) => {
                    self.remove(old);
                    self.place(conn, OrigKey::Skip, true, None).map(ConnId)
                }
                _ => Err(InsertError::Exists),
            },
            placed => placed.map(ConnId),
        }
    }

    /// Moves the table's clock to `now_ms` (never back), as every call taking a time does;
    /// [`ConnTable::touch`] leaves it to the caller.
    #[inline(always)]
    pub fn advance(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
    }

    /// Takes a free slot, indexes `conn` by the chosen keys (its original key, its reply key,
    /// a template hash) and arms its timer. Nothing changes on error.
    pub(super) fn place(
        &mut self,
        mut conn: Conn,
        orig: OrigKey,
        reply: bool,
        template_hash: Option<u64>,
    ) -> Result<u32, InsertError> {
        // Only the keys to be indexed are built and hashed (a DR connection has no reply key
        // to index, an alias no original one), and a hash the caller has is not redone.
        let exists = |k: &Option<(u64, FlowKey)>| {
            k.is_some_and(|(h, key)| self.lookup_hashed(h, &key).is_some())
        };
        let (orig_key, orig_known_absent) = match orig {
            OrigKey::Skip => (None, false),
            OrigKey::Index => (Some((self.hash(&conn.orig_key()), conn.orig_key())), false),
            OrigKey::Absent(h) => {
                let k = Some((h, conn.orig_key()));
                debug_assert_eq!(h, self.hash(&conn.orig_key()));
                debug_assert!(!exists(&k), "the caller's lookup found nothing");
                (k, true)
            }
        };
        let reply_key = reply.then(|| (self.hash(&conn.reply_key()), conn.reply_key()));
        let orig = orig_key.is_some();
        if !orig_known_absent && exists(&orig_key) || exists(&reply_key) {
            return Err(InsertError::Exists);
        }
        let id = self.free;
        let Some(e) = self.slab.get_mut(id as usize) else {
            return Err(InsertError::Full);
        };
        let keys = [
            template_hash.map(|h| (h, id)),
            orig_key.map(|(h, _)| (h, index_ref(id, &conn, false))),
            reply_key.map(|(h, _)| (h, index_ref(id, &conn, true))),
        ];
        for (i, &(h, r)) in keys.iter().flatten().enumerate() {
            if self.index.insert(h, r).is_err() {
                for &(h, r) in keys.iter().flatten().take(i) {
                    self.index.remove(h, r);
                }
                return Err(InsertError::Full);
            }
        }
        self.free = e.link.next;
        if orig {
            conn.flags |= flag::ORIG;
        }
        if reply {
            conn.flags |= flag::REPLY;
        }
        e.conn = conn;
        self.len += 1;
        self.version = self.version.wrapping_add(1);
        self.wheel.link(&mut self.slab, id);
        Ok(id)
    }

    /// `conn` with the timeout of its state armed from `now_ms`.
    pub(super) fn fresh(&self, mut conn: Conn, now_ms: u64) -> Conn {
        conn.timeout_s = conn.state.timeout(&self.timeouts);
        conn.expires_ms = now_ms.saturating_add(u64::from(conn.timeout_s) * 1000);
        conn
    }

    /// Takes entry `id` out of the index.
    pub(super) fn unindex(&mut self, id: u32) {
        self.version = self.version.wrapping_add(1);
        let c = self.slab[id as usize].conn;
        if c.flags & flag::TEMPLATE != 0 {
            let h = self.template_hash_of(&c);
            self.index.remove(h, id);
        }
        if c.flags & flag::ORIG != 0 {
            self.index
                .remove(self.hash(&c.orig_key()), index_ref(id, &c, false));
        }
        if c.flags & flag::REPLY != 0 {
            self.index
                .remove(self.hash(&c.reply_key()), index_ref(id, &c, true));
        }
    }

    /// Frees entry `id` (already out of the wheel): index, load counts, template reference.
    pub(super) fn drop_entry(&mut self, id: u32) {
        let c = self.slab[id as usize].conn;
        if c.flags & flag::DEAD == 0 {
            self.unindex(id);
        }
        if let Some(load) = self.loads.get_mut(c.dest.index()) {
            if c.flags & flag::TEMPLATE != 0 {
                load.persistent = load.persistent.saturating_sub(1);
            } else if c.flags & flag::ALIAS == 0 {
                load.unbind(c.flags & flag::ACTIVE != 0);
            }
        }
        self.note_binding(&c, false);
        let e = &mut self.slab[id as usize];
        e.conn.flags = 0;
        e.link.next = self.free;
        self.free = id;
        self.len -= 1;
        if let Some(t) = c.template() {
            self.release_template(t.0);
        }
    }
}

/// The state a new connection starts in.
fn initial_state(proto: Proto) -> ConnState {
    match proto {
        Proto::Tcp => ConnState::None,
        Proto::Udp => ConnState::Udp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::testutil::{new_conn, table};
    use crate::model::FwdMode;
    use crate::sched::DestId;

    #[test]
    fn test_exists() {
        let mut t = table(16);
        t.insert(new_conn(1, FwdMode::FullNat, 1), 0).unwrap();
        assert_eq!(
            t.insert(new_conn(1, FwdMode::FullNat, 1), 0),
            Err(InsertError::Exists)
        );
        // Another client taking the same local port towards the same server.
        let mut n = new_conn(2, FwdMode::FullNat, 1);
        n.lport = 5001;
        assert_eq!(t.insert(n, 0), Err(InsertError::Exists));
        assert_eq!(t.len(), 1);
        assert_eq!(t.loads()[1].inactive, 1);
    }

    #[test]
    fn test_table_full_changes_nothing() {
        let mut t = table(4);
        let ids: Vec<ConnId> = (0..4)
            .map(|i| t.insert(new_conn(i, FwdMode::Nat, 1), 0).unwrap())
            .collect();
        let loads = t.loads().to_vec();
        let extra = new_conn(9, FwdMode::Nat, 2);
        assert_eq!(t.insert(extra, 0), Err(InsertError::Full));
        assert_eq!(t.loads(), &loads[..]);
        assert_eq!(t.loads()[2].conns(), 0);
        assert_eq!(t.len(), 4);
        assert_eq!(
            t.lookup(&extra.into_conn(ConnState::None, 0).orig_key()),
            None
        );
        assert!(t.remove(ids[1]));
        let id = t.insert(extra, 0).unwrap();
        assert_eq!(id, ids[1], "the freed slot is reused");
        assert_eq!(t.loads()[1].inactive, 3);
        assert_eq!(t.loads()[2].inactive, 1);
    }

    #[test]
    fn test_bad_dest_and_template() {
        let mut t = table(4);
        assert_eq!(
            t.insert(new_conn(1, FwdMode::Nat, 4), 0),
            Err(InsertError::BadDest)
        );
        let c = t.insert(new_conn(1, FwdMode::Nat, 1), 0).unwrap();
        let mut n = new_conn(2, FwdMode::Nat, 1);
        n.template = Some(c);
        assert_eq!(t.insert(n, 0), Err(InsertError::BadTemplate));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn test_alias_points_at_owner() {
        let mut t = ConnTable::new(ConnTableConfig {
            capacity: 8,
            core: 3,
            seed: Some(1),
            ..ConnTableConfig::default()
        });
        let n = new_conn(1, FwdMode::Nat, 1);
        let a = t.insert_alias(n, 0, ConnState::Established, 1000).unwrap();
        let c = *t.get(a).unwrap();
        assert!(c.is_alias());
        assert_eq!(c.owner, 0);
        assert_eq!(c.state(), ConnState::Established);
        assert_eq!(c.expires_ms(), 901_000);
        assert_eq!(t.lookup(&c.reply_key()), Some((a, Dir::Reply)));
        assert_eq!(t.lookup(&c.orig_key()), None);
        assert_eq!(t.loads()[1], DestLoad::default());
        // The owner's own entry and the alias cannot share the reply key on one core.
        assert_eq!(t.insert(n, 1000), Err(InsertError::Exists));
        assert_eq!(
            t.insert_alias(new_conn(2, FwdMode::Dr, 1), 0, ConnState::None, 0),
            Err(InsertError::NoReplyLeg)
        );
        assert!(t.remove(a));
        assert!(t.is_empty());
        assert_eq!(t.loads()[1], DestLoad::default());
        let own = t.insert(n, 1000).unwrap();
        assert_eq!(t.get(own).unwrap().owner, 3);
        // ... and an alias does not displace the core's own connection.
        assert_eq!(
            t.insert_alias(n, 0, ConnState::SynRecv, 1000),
            Err(InsertError::Exists)
        );
        assert_eq!(t.lookup(&c.reply_key()), Some((own, Dir::Reply)));
    }

    #[test]
    fn test_newer_alias_replaces_older() {
        let mut t = table(8);
        let n = new_conn(1, FwdMode::Nat, 1);
        let old = t.insert_alias(n, 0, ConnState::Established, 1000).unwrap();
        t.on_packet(old, Dir::Reply, crate::conn::tcp_flags::FIN, 2000);
        let closing = *t.get(old).unwrap();
        assert_ne!(closing.state(), ConnState::Established);
        // The owner replaced the connection (same ports, a new SYN): its new alias takes over,
        // with the new connection's state and expiry.
        let new = t.insert_alias(n, 0, ConnState::SynRecv, 3000).unwrap();
        assert_eq!(t.len(), 1);
        let c = *t.get(new).unwrap();
        assert_eq!(c.state(), ConnState::SynRecv);
        assert_eq!(c.expires_ms(), 3000 + 60_000);
        assert_eq!(t.lookup(&c.reply_key()), Some((new, Dir::Reply)));
    }

    #[test]
    fn test_iter_listing() {
        let mut t = table(8);
        let a = t.insert(new_conn(1, FwdMode::Nat, 1), 5000).unwrap();
        let mut u = new_conn(2, FwdMode::Nat, 2);
        u.proto = Proto::Udp;
        let b = t.insert(u, 5000).unwrap();
        t.on_packet(a, Dir::Original, crate::conn::tcp_flags::SYN, 6000);
        let rows: Vec<(ConnId, &'static str, u64, DestId)> = t
            .iter()
            .map(|(id, c)| (id, c.state_name(), c.remaining_ms(10_000), c.dest))
            .collect();
        assert_eq!(
            rows,
            vec![
                (a, "SYN_RECV", 56_000, DestId(1)),
                (b, "UDP", 295_000, DestId(2)),
            ]
        );
    }
}
