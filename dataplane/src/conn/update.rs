//! What happens to an entry after it is placed: packets move its state and push its expiry,
//! the forwarder or the control plane removes it, or the wheel finds it expired.

use super::entry::{flag, Conn};
use super::state::{tcp_next, ConnState, TcpTable};
use super::table::{decode_ref, ConnTable};
use super::wheel::Next;
use super::{ConnId, Dir};
use crate::wire::Ipv4TcpHead;

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

/// The expiry and timeout a plain ACK of an ESTABLISHED connection sets at one instant: the
/// same for every such packet of a burst ([`ConnTable::established_touch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EstablishedTouch {
    expires_ms: u64,
    timeout_s: u32,
}

impl EstablishedTouch {
    /// Writes the expiry and timeout into `c`.
    #[inline(always)]
    fn apply(&self, c: &mut Conn) {
        c.expires_ms = self.expires_ms;
        c.timeout_s = self.timeout_s;
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
    ///
    /// The common packet, a plain ACK of an ESTABLISHED connection or any UDP datagram, moves
    /// no state: it only pushes the expiry, without the transition table.
    #[inline(always)]
    pub fn on_packet(
        &mut self,
        id: ConnId,
        dir: Dir,
        tcp_flags: u8,
        now_ms: u64,
    ) -> Option<StateChange> {
        self.advance(now_ms);
        if let Some(c) = self.touch(id, tcp_flags, now_ms) {
            return Some(StateChange {
                from: c.state,
                to: c.state,
            });
        }
        let c = &self.slab.get(id.0 as usize)?.conn;
        if !c.is_live() || c.flags & flag::TEMPLATE != 0 {
            return None;
        }
        self.transition(id, dir, tcp_flags, now_ms)
    }

    /// [`ConnTable::on_packet`] for the common packet only, returning the entry: a plain ACK of
    /// an ESTABLISHED connection, or a UDP datagram, pushes the expiry of live connection `id`
    /// and gives it back. `None`, with nothing changed, for everything else (a state to move,
    /// a template, a free slot), which `on_packet` handles. Every transition table maps
    /// (ESTABLISHED, ACK row) to ESTABLISHED, and UDP has one state. Does not advance the table's clock:
    /// the caller has ([`ConnTable::advance`]), once per burst.
    #[inline(always)]
    pub fn touch(&mut self, id: ConnId, tcp_flags: u8, now_ms: u64) -> Option<&Conn> {
        use super::state::tcp_flags::{ACK, FIN, RST, SYN};
        let i = id.0 as usize;
        let earlier = {
            let c = &mut self.slab.get_mut(i)?.conn;
            let timeout = match c.state {
                ConnState::Established if tcp_flags & (SYN | FIN | RST | ACK) == ACK => {
                    self.timeouts.tcp_established
                }
                ConnState::Udp => self.timeouts.udp,
                _ => return None,
            };
            if !c.is_live() || c.flags & flag::TEMPLATE != 0 {
                return None;
            }
            let expires = now_ms.saturating_add(u64::from(timeout) * 1000);
            let earlier = expires < c.expires_ms;
            c.expires_ms = expires;
            c.timeout_s = timeout;
            earlier
        };
        if earlier {
            self.wheel.rearm(&mut self.slab, id.0);
        }
        self.slab.get(i).map(|e| &e.conn)
    }

    /// What [`ConnTable::touch`] writes into the entry of a plain ACK of an ESTABLISHED
    /// connection at `now_ms`, computed once for a burst ([`ConnTable::touch_v4`]).
    #[inline(always)]
    pub fn established_touch(&self, now_ms: u64) -> EstablishedTouch {
        let timeout_s = self.timeouts.tcp_established;
        EstablishedTouch {
            expires_ms: now_ms.saturating_add(u64::from(timeout_s) * 1000),
            timeout_s,
        }
    }

    /// [`ConnTable::resolve_v4`] and [`ConnTable::touch`] in one step, for the burst's common
    /// frame: when `candidate` (a probe's [`super::Probe::candidate`]: an index reference, or
    /// [`super::Probe::NO_CANDIDATE`]) names the live ESTABLISHED connection of `h` (either direction) and
    /// `h` is a plain ACK, pushes its expiry exactly as `touch` would (`t` from
    /// [`ConnTable::established_touch`] at the same instant) and returns it. `None`, with
    /// nothing changed, for anything else, which the two-step path handles.
    #[inline(always)]
    pub fn touch_v4(
        &mut self,
        candidate: u32,
        h: &Ipv4TcpHead,
        t: EstablishedTouch,
    ) -> Option<(ConnId, Dir, &Conn)> {
        use super::state::tcp_flags::{ACK, FIN, RST, SYN};
        // No test for "no candidate": `NO_CANDIDATE` names no slot, so `get` below finds none.
        let r = candidate;
        if h.tcp_flags & (SYN | FIN | RST | ACK) != ACK {
            return None;
        }
        let (id, dir) = decode_ref(r);
        let i = id.0 as usize;
        let c = &self.slab.get(i)?.conn;
        // The protocol is tested with the state and flags, in one word.
        let key_matches = match dir {
            Dir::Original => c.is_orig_pair_of(h),
            Dir::Reply => c.reply_key() == h.flow_key(),
        };
        if !key_matches || !c.is_established_tcp() {
            return None;
        }
        if t.expires_ms < c.expires_ms {
            return self.touch_earlier(id, dir, t);
        }
        // Written through a second borrow: the shared one above cannot be returned on one
        // path and given up for `touch_earlier` on the other.
        let c = &mut self.slab.get_mut(i)?.conn;
        t.apply(c);
        Some((id, dir, c))
    }

    /// The end of [`ConnTable::touch_v4`] for an entry whose expiry moves earlier (a shorter
    /// timeout took over): it is refiled in the wheel. Rare, so out of line.
    #[cold]
    #[inline(never)]
    fn touch_earlier(
        &mut self,
        id: ConnId,
        dir: Dir,
        t: EstablishedTouch,
    ) -> Option<(ConnId, Dir, &Conn)> {
        t.apply(&mut self.slab.get_mut(id.0 as usize)?.conn);
        self.wheel.rearm(&mut self.slab, id.0);
        self.slab.get(id.0 as usize).map(|e| (id, dir, &e.conn))
    }

    /// [`ConnTable::on_packet`] through the TCP transition table (`id` is a live connection).
    #[inline(never)]
    fn transition(
        &mut self,
        id: ConnId,
        dir: Dir,
        tcp_flags: u8,
        now_ms: u64,
    ) -> Option<StateChange> {
        let e = self.slab.get_mut(id.0 as usize)?;
        let c = &mut e.conn;
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
    /// each (FullNAT frees its local port there; templates come by too, see
    /// [`Conn::is_template`]). Work is bounded: besides removals, at most `8 * budget + 64`
    /// not-yet-due entries are refiled in the wheel and at most one revolution of slots is
    /// scanned.
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
                Next::Idle => {
                    return Expired {
                        removed,
                        more: false,
                    }
                }
                Next::Busy => {
                    return Expired {
                        removed,
                        more: true,
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::tcp_flags::{ACK, FIN, RST, SYN};
    use crate::conn::testutil::{new_conn, table};
    use crate::flow::Proto;
    use crate::model::{FwdMode, Timeouts};
    use ConnState::*;

    /// Sends one packet and checks the state, (active, inactive) of its server and the expiry.
    fn step(
        t: &mut ConnTable,
        id: ConnId,
        (dir, flags, now): (Dir, u8, u64),
        (state, counts, expires): (ConnState, (u32, u32), u64),
    ) {
        t.on_packet(id, dir, flags, now).unwrap();
        let c = *t.get(id).unwrap();
        let l = t.loads()[c.dest.index()];
        assert_eq!(
            (c.state(), (l.active, l.inactive), c.expires_ms()),
            (state, counts, expires),
            "packet {flags:#04x} {dir:?} at {now}"
        );
        assert_eq!(c.is_active(), state == Established);
    }

    fn expire_all(t: &mut ConnTable, now: u64) -> Vec<Conn> {
        let mut out = Vec::new();
        t.expire(now, usize::MAX, |_, c| out.push(*c));
        out
    }

    #[test]
    fn test_nat_open_close_both_directions() {
        use Dir::{Original as O, Reply as R};
        let mut t = table(8);
        let id = t.insert(new_conn(1, FwdMode::Nat, 1), 0).unwrap();
        assert_eq!(t.get(id).unwrap().state(), None);
        assert_eq!(t.get(id).unwrap().expires_ms(), 2000);
        assert_eq!((t.loads()[1].active, t.loads()[1].inactive), (0, 1));
        step(&mut t, id, (O, SYN, 100), (SynRecv, (0, 1), 60_100));
        step(&mut t, id, (R, SYN | ACK, 200), (SynRecv, (0, 1), 60_200));
        step(&mut t, id, (O, ACK, 300), (Established, (1, 0), 900_300));
        step(&mut t, id, (O, ACK, 400), (Established, (1, 0), 900_400));
        step(&mut t, id, (O, FIN | ACK, 500), (CloseWait, (0, 1), 60_500));
        step(&mut t, id, (R, ACK, 600), (CloseWait, (0, 1), 60_600));
        step(&mut t, id, (R, FIN | ACK, 700), (TimeWait, (0, 1), 120_700));
        step(&mut t, id, (O, ACK, 800), (TimeWait, (0, 1), 120_800));
        assert!(expire_all(&mut t, 120_799).is_empty());
        let gone = expire_all(&mut t, 120_800);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].state(), TimeWait);
        assert_eq!(t.loads()[1].conns(), 0);
        assert!(t.is_empty());
        assert_eq!(t.lookup(&gone[0].reply_key()), Option::None);
    }

    #[test]
    fn test_touch_takes_only_the_common_packet() {
        let o = Dir::Original;
        let mut t = table(8);
        let id = t.insert(new_conn(1, FwdMode::Dr, 2), 0).unwrap();
        // Not established yet: the SYN and the first ACK move state, so touch leaves them.
        assert!(t.touch(id, SYN, 100).is_none());
        step(&mut t, id, (o, SYN, 100), (SynRecv, (0, 1), 60_100));
        assert!(t.touch(id, ACK, 200).is_none());
        assert_eq!(t.get(id).unwrap().expires_ms(), 60_100);
        step(&mut t, id, (o, ACK, 200), (Established, (1, 0), 900_200));
        // The plain ACK (PSH allowed) pushes the expiry and returns the entry.
        let c = *t.touch(id, ACK | 0x08, 300).unwrap();
        assert_eq!(
            (c.state(), c.expires_ms(), c.cport),
            (Established, 900_300, 10_001)
        );
        // FIN, RST or SYN on an established connection: left for on_packet, nothing changed.
        for flags in [FIN | ACK, RST, SYN, SYN | ACK] {
            assert!(t.touch(id, flags, 400).is_none(), "{flags:#04x}");
        }
        assert_eq!(t.get(id).unwrap().expires_ms(), 900_300);
        // An earlier expiry (a shorter timeout) is rearmed in the wheel: due at 300 + 10 s.
        t.set_timeouts(Timeouts {
            tcp_established: 10,
            ..Timeouts::default()
        });
        assert!(t.touch(id, ACK, 300).is_some());
        assert!(expire_all(&mut t, 10_299).is_empty());
        assert_eq!(expire_all(&mut t, 10_300).len(), 1);
        // A freed slot and an id out of range.
        assert!(t.touch(id, ACK, 20_000).is_none());
        assert!(t.touch(ConnId(1000), ACK, 20_000).is_none());
    }

    /// `touch_v4` takes the candidate reference as it is: `NO_CANDIDATE` finds nothing, and a
    /// stale candidate (its slot freed, then holding another connection) is refused.
    #[test]
    fn test_touch_v4_takes_only_its_candidate() {
        use crate::conn::Probe;
        let o = Dir::Original;
        let mut t = table(8);
        let id = t.insert(new_conn(1, FwdMode::Dr, 2), 0).unwrap();
        step(&mut t, id, (o, SYN, 100), (SynRecv, (0, 1), 60_100));
        step(&mut t, id, (o, ACK, 200), (Established, (1, 0), 900_200));
        let c = *t.get(id).unwrap();
        let head = |c: &Conn| Ipv4TcpHead {
            src: c.client.v4_octets(),
            dst: c.vip.v4_octets(),
            sport: c.cport,
            dport: c.vport,
            ip_len: 40,
            tcp_len: 20,
            ttl: 64,
            tcp_flags: ACK,
        };
        let probe = t.probe(t.hash(&c.orig_key()));
        let Probe::Candidate(r) = probe else {
            panic!("no candidate: {probe:?}");
        };
        assert_eq!(probe.candidate(), r);
        assert_eq!(Probe::Absent.candidate(), Probe::NO_CANDIDATE);
        assert_eq!(Probe::Unsure.candidate(), Probe::NO_CANDIDATE);
        let touch = t.established_touch(300);
        assert!(t.touch_v4(Probe::NO_CANDIDATE, &head(&c), touch).is_none());
        let (got, dir, e) = t.touch_v4(r, &head(&c), touch).unwrap();
        assert_eq!((got, dir, e.expires_ms()), (id, o, 900_300));
        // The connection expires; its slot is free, then holds another connection.
        assert_eq!(expire_all(&mut t, 900_300).len(), 1);
        assert!(t.touch_v4(r, &head(&c), t.established_touch(300)).is_none());
        let other = t.insert(new_conn(2, FwdMode::Dr, 2), 0).unwrap();
        assert_eq!(other, id, "the freed slot is reused");
        step(&mut t, other, (o, SYN, 400), (SynRecv, (0, 1), 60_400));
        step(&mut t, other, (o, ACK, 500), (Established, (1, 0), 900_500));
        assert!(t.touch_v4(r, &head(&c), t.established_touch(600)).is_none());
        let now = *t.get(other).unwrap();
        assert!(t
            .touch_v4(r, &head(&now), t.established_touch(600))
            .is_some());
    }

    #[test]
    fn test_dr_input_only() {
        let o = Dir::Original;
        let mut t = table(8);
        let id = t.insert(new_conn(1, FwdMode::Dr, 2), 0).unwrap();
        step(&mut t, id, (o, SYN, 1000), (SynRecv, (0, 1), 61_000));
        step(&mut t, id, (o, ACK, 2000), (Established, (1, 0), 902_000));
        step(&mut t, id, (o, FIN | ACK, 3000), (FinWait, (0, 1), 123_000));
        step(&mut t, id, (o, ACK, 4000), (FinWait, (0, 1), 124_000));
        assert!(expire_all(&mut t, 123_999).is_empty());
        assert_eq!(expire_all(&mut t, 124_000).len(), 1);
        assert_eq!(t.loads()[2].conns(), 0);
    }

    #[test]
    fn test_rst_rearms_earlier() {
        let o = Dir::Original;
        let mut t = table(8);
        let id = t.insert(new_conn(1, FwdMode::FullNat, 3), 0).unwrap();
        step(&mut t, id, (o, SYN, 0), (SynRecv, (0, 1), 60_000));
        step(
            &mut t,
            id,
            (Dir::Reply, SYN | ACK, 0),
            (SynRecv, (0, 1), 60_000),
        );
        step(&mut t, id, (o, ACK, 1000), (Established, (1, 0), 901_000));
        step(&mut t, id, (o, RST, 5000), (Close, (0, 1), 15_000));
        assert!(expire_all(&mut t, 14_999).is_empty());
        let gone = expire_all(&mut t, 15_000);
        assert_eq!(gone.len(), 1);
        // FullNAT frees its local port from the callback.
        assert_eq!(gone[0].lport, 5001);
        assert_eq!(t.loads()[3].conns(), 0);
    }

    #[test]
    fn test_set_timeouts() {
        let o = Dir::Original;
        let mut t = table(8);
        let a = t.insert(new_conn(1, FwdMode::Nat, 1), 0).unwrap();
        let b = t.insert(new_conn(2, FwdMode::Nat, 1), 0).unwrap();
        t.on_packet(a, o, SYN, 0).unwrap();
        t.on_packet(b, o, SYN, 0).unwrap();
        step(&mut t, a, (o, ACK, 1000), (Established, (1, 1), 901_000));
        step(&mut t, b, (o, ACK, 1000), (Established, (2, 0), 901_000));
        t.set_timeouts(Timeouts {
            tcp_established: 60,
            ..Timeouts::default()
        });
        assert_eq!(t.timeouts().tcp_established, 60);
        // A packet picks the new timeout up; a silent connection keeps its old expiry.
        step(&mut t, a, (o, ACK, 2000), (Established, (2, 0), 62_000));
        assert!(expire_all(&mut t, 61_999).is_empty());
        assert_eq!(expire_all(&mut t, 62_000).len(), 1);
        assert_eq!(t.get(b).unwrap().expires_ms(), 901_000);
        t.set_timeouts(Timeouts {
            tcp_established: 1800,
            ..Timeouts::default()
        });
        step(&mut t, b, (o, ACK, 3000), (Established, (1, 0), 1_803_000));
        assert!(expire_all(&mut t, 1_802_999).is_empty());
        assert_eq!(expire_all(&mut t, 1_803_000).len(), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn test_udp() {
        let mut t = table(8);
        let mut n = new_conn(1, FwdMode::Nat, 1);
        n.proto = Proto::Udp;
        let id = t.insert(n, 0).unwrap();
        step(&mut t, id, (Dir::Original, 0, 0), (Udp, (0, 1), 300_000));
        step(
            &mut t,
            id,
            (Dir::Reply, RST, 10_000),
            (Udp, (0, 1), 310_000),
        );
        assert_eq!(t.get(id).unwrap().state_name(), "UDP");
        assert_eq!(t.get(id).unwrap().timeout_s(), 300);
        assert!(expire_all(&mut t, 309_999).is_empty());
        assert_eq!(expire_all(&mut t, 310_000).len(), 1);
    }

    #[test]
    fn test_budgeted_expiry() {
        let mut t = table(16);
        for i in 0..10 {
            let mut n = new_conn(i, FwdMode::Nat, 1);
            n.proto = Proto::Udp;
            t.insert(n, u64::from(i) * 10).unwrap();
        }
        let mut seen = Vec::new();
        let mut calls = Vec::new();
        for _ in 0..4 {
            calls.push(t.expire(400_000, 3, |id, _| seen.push(id)));
        }
        let r = |removed, more| Expired { removed, more };
        assert_eq!(calls, vec![r(3, true), r(3, true), r(3, true), r(1, false)]);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 10);
        assert_eq!(t.loads()[1].conns(), 0);
        assert_eq!(t.expire(400_000, 3, |_, _| {}), r(0, false));
    }

    #[test]
    fn test_stale_ids() {
        let mut t = table(8);
        let id = t.insert(new_conn(1, FwdMode::Nat, 1), 0).unwrap();
        assert!(t.remove(id));
        assert!(!t.remove(id));
        assert_eq!(t.on_packet(id, Dir::Original, SYN, 0), Option::None);
        assert_eq!(t.get(id), Option::None);
        assert_eq!(t.loads()[1].conns(), 0);
        assert!(expire_all(&mut t, 10_000_000).is_empty());
    }

    #[test]
    fn test_state_change_report() {
        let mut t = table(8);
        let id = t.insert(new_conn(1, FwdMode::Nat, 1), 0).unwrap();
        let s = t.on_packet(id, Dir::Original, SYN, 0).unwrap();
        assert_eq!((s.from, s.to, s.changed()), (None, SynRecv, true));
        let s = t.on_packet(id, Dir::Original, SYN, 0).unwrap();
        assert!(!s.changed());
    }
}
