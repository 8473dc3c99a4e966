//! Which real server each real-server slot's entries were made for.
//!
//! The control plane may hand a slot ([`DestId`]) to another real server while connections of
//! the previous one live on (IPVS keeps a removed server's connections until they expire). The
//! forwarder caches each slot's egress (the next hop's MACs) and, so that a packet need not
//! compare the server's address with the cache's, it must know when a slot is *mixed*: when
//! it holds connections or templates whose server is not the one the slot is bound to now.
//! The table keeps that count exactly, whoever inserts: [`ConnTable::dest_mixed`] is false
//! only when every connection and template on the slot goes to its bound address. (Reply
//! aliases are not counted: their packets never leave towards the real server.)

use super::entry::{flag, Conn};
use super::table::ConnTable;
use crate::flow::Addr;
use crate::sched::DestId;

/// What one slot is bound to, and how many of its entries are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SlotBinding {
    /// The real server's address that entries made from now on hold.
    addr: Addr,
    /// Live connections and templates on the slot whose real server is another address.
    others: u32,
}

impl SlotBinding {
    /// A slot no snapshot has bound yet.
    pub(super) const UNBOUND: SlotBinding = SlotBinding {
        addr: Addr::UNSPECIFIED,
        others: 0,
    };
}

impl ConnTable {
    /// Binds real-server slot `d` to the server at `addr` (the forwarder does this for every
    /// server of each snapshot it installs). Entries already on the slot for another address
    /// make it mixed until they are gone. Usually counts without reading a single entry; only
    /// a slot rebound while still mixed from an earlier change is counted by a scan of the
    /// table.
    pub fn bind_dest(&mut self, d: DestId, addr: Addr) {
        let i = d.index();
        let (Some(&b), Some(l)) = (self.bindings.get(i), self.loads.get(i)) else {
            return;
        };
        if b.addr == addr {
            return;
        }
        let others = if b.others == 0 {
            // Every connection and template on the slot holds the previous address.
            l.conns() + l.persistent
        } else {
            self.count_others(d, &addr)
        };
        self.bindings[i] = SlotBinding { addr, others };
    }

    /// True when slot `d` holds a connection or template whose real server is not the
    /// address the slot is bound to (see [`ConnTable::bind_dest`]).
    #[inline]
    pub fn dest_mixed(&self, d: DestId) -> bool {
        self.bindings.get(d.index()).is_some_and(|b| b.others > 0)
    }

    /// Keeps the count of [`ConnTable::dest_mixed`] as connection or template `c` enters
    /// (`entered`) or leaves the table.
    #[inline]
    pub(super) fn note_binding(&mut self, c: &Conn, entered: bool) {
        if c.flags & flag::ALIAS != 0 {
            return;
        }
        if let Some(b) = self.bindings.get_mut(c.dest.index()) {
            if c.real != b.addr {
                b.others = if entered {
                    b.others + 1
                } else {
                    b.others.saturating_sub(1)
                };
            }
        }
    }

    /// The live connections and templates on slot `d` whose server is not `addr`.
    fn count_others(&self, d: DestId, addr: &Addr) -> u32 {
        let n = self
            .slab
            .iter()
            .map(|e| &e.conn)
            .filter(|c| c.flags & (flag::LIVE | flag::ALIAS) == flag::LIVE)
            .filter(|c| c.dest == d && c.real != *addr)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::testutil::{new_conn, table};
    use crate::conn::{ConnId, ConnState, NewTemplate, TemplateKey};
    use crate::flow::Proto;
    use crate::model::FwdMode;

    /// Connection `i` on slot `dest` to the server at `real`.
    fn on(t: &mut ConnTable, i: u16, dest: u32, real: Addr) -> ConnId {
        let mut n = new_conn(i, FwdMode::Dr, dest);
        n.real = real;
        t.insert(n, 0).unwrap()
    }

    const A: Addr = Addr::v4([10, 0, 0, 1]);
    const B: Addr = Addr::v4([10, 0, 0, 2]);
    const C: Addr = Addr::v4([10, 0, 0, 3]);

    #[test]
    fn test_rebound_slot_is_mixed_until_its_old_entries_end() {
        let mut t = table(16);
        t.bind_dest(DestId(1), A);
        let old = [on(&mut t, 1, 1, A), on(&mut t, 2, 1, A)];
        let tk = TemplateKey::new(0, A, 32, 80);
        let tmpl = NewTemplate {
            key: tk,
            proto: Proto::Tcp,
            vip: C,
            dest: DestId(1),
            real: A,
            rport: 80,
            mode: FwdMode::Dr,
            timeout_s: 60,
        };
        let tmpl = t.insert_template(tmpl, 0).unwrap();
        assert!(!t.dest_mixed(DestId(1)));
        // Rebinding to the same address changes nothing; to another, the three old entries
        // (two connections and a template) make the slot mixed.
        t.bind_dest(DestId(1), A);
        assert!(!t.dest_mixed(DestId(1)));
        t.bind_dest(DestId(1), B);
        assert!(t.dest_mixed(DestId(1)));
        let new = on(&mut t, 3, 1, B);
        // A new entry for the bound address and the end of old ones move the count exactly.
        assert!(t.remove(old[0]) && t.remove(tmpl));
        assert!(t.dest_mixed(DestId(1)));
        assert!(t.remove(new));
        assert!(t.dest_mixed(DestId(1)));
        assert!(t.remove(old[1]));
        assert!(!t.dest_mixed(DestId(1)));
        // Other slots were never mixed.
        assert!(!t.dest_mixed(DestId(0)) && !t.dest_mixed(DestId(2)));
    }

    #[test]
    fn test_slot_rebound_while_mixed_is_counted_exactly() {
        let mut t = table(16);
        t.bind_dest(DestId(2), A);
        let a = on(&mut t, 1, 2, A);
        t.bind_dest(DestId(2), B);
        let b = on(&mut t, 2, 2, B);
        // Back to A while A's connection is still there: only B's is another server's now.
        t.bind_dest(DestId(2), A);
        assert!(t.dest_mixed(DestId(2)));
        assert!(t.remove(b));
        assert!(!t.dest_mixed(DestId(2)));
        // To C: A's connection makes it mixed again, and its end clears it.
        t.bind_dest(DestId(2), C);
        assert!(t.dest_mixed(DestId(2)));
        assert!(t.remove(a));
        assert!(!t.dest_mixed(DestId(2)));
    }

    #[test]
    fn test_entries_for_another_address_count_whoever_inserts() {
        let mut t = table(16);
        t.bind_dest(DestId(3), A);
        // An insert that does not hold the slot's address (no forwarder does this) still
        // makes the slot mixed, so no egress is cached for it; an alias is never counted.
        let stray = on(&mut t, 1, 3, B);
        assert!(t.dest_mixed(DestId(3)));
        let mut alias = new_conn(2, FwdMode::Nat, 3);
        alias.real = C;
        let alias = t.insert_alias(alias, 1, ConnState::Established, 0).unwrap();
        assert!(t.remove(stray));
        assert!(!t.dest_mixed(DestId(3)));
        assert!(t.remove(alias));
        assert!(!t.dest_mixed(DestId(3)));
        // Beyond the slots: ignored.
        t.bind_dest(DestId(99), A);
        assert!(!t.dest_mixed(DestId(99)));
    }
}
