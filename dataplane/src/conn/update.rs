//! What happens to an entry after it is placed: packets move its state and push its expiry,
//! the forwarder or the control plane removes it, or the wheel finds it expired.

use super::entry::{flag, Conn};
use super::state::{tcp_next, ConnState, TcpTable};
use super::table::ConnTable;
use super::wheel::Next;
use super::{ConnId, Dir};

/// Entries moved between wheel slots per removal budget unit in [`ConnTable::expire`].
const MOVES_PER_REMOVAL: usize = 8;
/// Moves allowed in any [`ConnTable::expire`] call, whatever the budget.
const MIN_MOVES: usize = 64;

/// A state transition caused by one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    /// State before the packet.
    pub from: ConnState,
    /// State after it.
    pub to: ConnState,
}

impl StateChange {
    /// True when the state changed.
    pub fn changed(&self) -> bool {
        self.from != self.to
    }
}

/// Result of one [`ConnTable::expire`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// Entries removed.
    pub removed: usize,
    /// Stopped by the budget: more may be due, call again.
    pub more: bool,
}

impl ConnTable {
    /// Updates state, load counts and expiry for a packet of connection `id` travelling in
    /// `dir`, with `tcp_flags` the TCP header's flag byte (ignored for UDP). `None` when `id` is
    /// not a live connection.
    pub fn on_packet(
        &mut self,
        id: ConnId,
        dir: Dir,
        tcp_flags: u8,
        now_ms: u64,
    ) -> Option<StateChange> {
        self.advance(now_ms);
        let e = self.slab.get_mut(id.0 as usize)?;
        let c = &mut e.conn;
        if !c.is_live() || c.flags & flag::TEMPLATE != 0 {
            return None;
        }
        let from = c.state;
        let to = tcp_next(from, TcpTable::select(c.mode, dir == Dir::Reply), tcp_flags);
        if to != from {
            c.state = to;
            let was_active = c.flags & flag::ACTIVE != 0;
            if c.flags & flag::ALIAS == 0 && to.is_active() != was_active {
                if let Some(load) = self.loads.get_mut(c.dest.index()) {
                    load.set_active(to.is_active());
                }
                c.flags ^= flag::ACTIVE;
            }
        }
        let timeout = to.timeout(&self.timeouts);
        self.arm(id.0, timeout, now_ms);
        Some(StateChange { from, to })
    }

    /// Removes entry `id`; false when it is not in use. A template still held by connections is
    /// only taken out of the index, and freed when the last of them ends.
    pub fn remove(&mut self, id: ConnId) -> bool {
        let Some(c) = self.get(id) else {
            return false;
        };
        if c.is_template() && c.tmpl > 0 {
            if c.flags & flag::DEAD == 0 {
                self.unindex(id.0);
                self.slab[id.0 as usize].conn.flags |= flag::DEAD;
            }
            return true;
        }
        self.wheel.unlink(&mut self.slab, id.0);
        self.drop_entry(id.0);
        true
    }

    /// Removes at most `budget` entries whose expiry is at or before `now_ms`, calling `f` with
    /// each (FullNAT frees its local port there). Work is bounded: besides removals, at most
    /// `8 * budget + 64` not-yet-due entries are refiled in the wheel.
    pub fn expire(
        &mut self,
        now_ms: u64,
        budget: usize,
        mut f: impl FnMut(ConnId, &Conn),
    ) -> Expired {
        self.advance(now_ms);
        let mut moves = budget
            .saturating_mul(MOVES_PER_REMOVAL)
            .saturating_add(MIN_MOVES);
        let mut removed = 0;
        while removed < budget {
            match self.wheel.next_due(&mut self.slab, now_ms, &mut moves) {
                Next::Due(id) => {
                    let conn = self.slab[id as usize].conn;
                    if conn.is_template() && conn.tmpl > 0 {
                        // Not expected (held templates expire at u64::MAX); keep it.
                        self.slab[id as usize].conn.expires_ms = u64::MAX;
                        self.wheel.link(&mut self.slab, id);
                        continue;
                    }
                    self.drop_entry(id);
                    f(ConnId(id), &conn);
                    removed += 1;
                }
                Next::Idle => return Expired { removed, more: false },
                Next::Busy => return Expired { removed, more: true },
            }
        }
        Expired {
            removed,
            more: true,
        }
    }

    /// Sets the expiry of `id` to `now_ms + timeout_s`, refiling it when that is earlier.
    pub(super) fn arm(&mut self, id: u32, timeout_s: u32, now_ms: u64) {
        let c = &mut self.slab[id as usize].conn;
        let expires = now_ms.saturating_add(u64::from(timeout_s) * 1000);
        let earlier = expires < c.expires_ms;
        c.expires_ms = expires;
        c.timeout_s = timeout_s;
        if earlier {
            self.wheel.rearm(&mut self.slab, id);
        }
    }

    /// A connection holding template `t` ended.
    pub(super) fn release_template(&mut self, t: u32) {
        let c = &mut self.slab[t as usize].conn;
        c.tmpl = c.tmpl.saturating_sub(1);
        if c.tmpl > 0 {
            return;
        }
        if c.flags & flag::DEAD != 0 {
            self.wheel.unlink(&mut self.slab, t);
            self.drop_entry(t);
        } else {
            let timeout = c.timeout_s;
            self.arm(t, timeout, self.now_ms);
        }
    }
}
