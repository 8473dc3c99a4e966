//! Locality-based least connection, lblc and lblcr (`ip_vs_lblc.c`, `ip_vs_lblcr.c`): keep each
//! destination address on the same server(s), for cache clusters.
//!
//! lblc remembers one server per destination and keeps using it unless it is unusable or
//! *overloaded in the locality sense*: more active connections than its weight while some server
//! has fewer than half its weight. Then it picks by weighted least connection and remembers that.
//!
//! lblcr remembers a set of servers per destination and uses the least loaded of them; when that
//! one is overloaded in the same sense, it adds the weighted-least-connection server to the set.
//! A set that has not changed for the expiration time drops its most loaded member, so sets
//! shrink back when the load goes.
//!
//! The table is per core, of fixed capacity, allocated once: 4-way set-associative buckets of
//! destination entries, each with room for its servers. An entry unused for the expiration time
//! is forgotten; a full bucket gives up its least recently used entry (IPVS instead grows its
//! table and collects entries idle for 6 minutes). Entries name servers by [`DestId`] and find
//! their new index lazily after a configuration change, so locality survives it.

use super::{least, load_of, maglev, usable, Dest, DestId, DestLoad, SchedInput, SchedPlan};
use crate::flow::Addr;

/// Entries per bucket.
const WAYS: usize = 4;
const SEED_SET: u64 = 0x27D4_EB2F_1656_67C5;

/// One destination address and its server set's bookkeeping.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    addr: Addr,
    used: bool,
    /// Members in use.
    len: u8,
    last_use: u64,
    /// Last change of the server set (lblcr's shrink timer).
    last_mod: u64,
}

/// A server in a set: its index in the plan the entry last saw, checked against its id.
#[derive(Debug, Clone, Copy, Default)]
struct Member {
    idx: u32,
    id: DestId,
}

/// A per-core locality table of fixed capacity.
#[derive(Debug)]
pub(super) struct LocalityTable {
    slots: Box<[Slot]>,
    /// `set_max` members per slot.
    members: Box<[Member]>,
    set_max: usize,
    set_mask: usize,
    capacity: usize,
}

impl LocalityTable {
    /// Room for about `capacity` destinations with up to `set_max` servers each.
    pub(super) fn new(capacity: usize, set_max: usize) -> LocalityTable {
        let set_max = set_max.clamp(1, usize::from(u8::MAX));
        let sets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        LocalityTable {
            slots: vec![Slot::default(); sets * WAYS].into_boxed_slice(),
            members: vec![Member::default(); sets * WAYS * set_max].into_boxed_slice(),
            set_max,
            set_mask: sets - 1,
            capacity,
        }
    }

    /// True when built for this capacity and set size.
    pub(super) fn fits(&self, capacity: usize, set_max: usize) -> bool {
        self.capacity == capacity && self.set_max == set_max
    }

    fn bucket(&self, addr: &Addr) -> std::ops::Range<usize> {
        let b = (maglev::hash(addr, 0, SEED_SET) as usize & self.set_mask) * WAYS;
        b..b + WAYS
    }

    /// The live entry of `addr`, forgetting it if unused for longer than `expiry`.
    fn find(&mut self, addr: &Addr, now: u64, expiry: u64) -> Option<usize> {
        for s in self.bucket(addr) {
            let slot = self.slots.get_mut(s)?;
            if slot.used && slot.addr == *addr {
                if now.saturating_sub(slot.last_use) > expiry {
                    slot.used = false;
                    return None;
                }
                return Some(s);
            }
        }
        None
    }

    /// A fresh, empty entry for `addr`: a free slot of its bucket or the least recently used.
    fn claim(&mut self, addr: &Addr, now: u64) -> usize {
        let range = self.bucket(addr);
        let mut best = range.start;
        let mut oldest = u64::MAX;
        for s in range {
            let Some(slot) = self.slots.get(s) else { break };
            if !slot.used {
                best = s;
                break;
            }
            if slot.last_use < oldest {
                (best, oldest) = (s, slot.last_use);
            }
        }
        if let Some(slot) = self.slots.get_mut(best) {
            *slot = Slot {
                addr: *addr,
                used: true,
                len: 0,
                last_use: now,
                last_mod: now,
            };
        }
        best
    }

    fn set(&mut self, s: usize) -> &mut [Member] {
        let len = self.slots.get(s).map_or(0, |x| usize::from(x.len));
        let start = s * self.set_max;
        self.members.get_mut(start..start + len).unwrap_or_default()
    }

    /// Re-resolves the members of entry `s` against `dests`, dropping removed servers.
    fn prune(&mut self, s: usize, dests: &[Dest]) {
        let set = self.set(s);
        let mut len = set.len();
        let mut k = 0;
        while k < len {
            let m = set[k];
            let idx = match dests.get(m.idx as usize) {
                Some(d) if d.id == m.id => Some(m.idx as usize),
                _ => dests.iter().position(|d| d.id == m.id),
            };
            match idx {
                Some(i) => {
                    set[k].idx = i as u32;
                    k += 1;
                }
                None => {
                    len -= 1;
                    set.swap(k, len);
                }
            }
        }
        if let Some(slot) = self.slots.get_mut(s) {
            slot.len = len as u8;
        }
    }

    /// Adds server `i` to entry `s` unless present; a full set first drops its most loaded.
    fn add(&mut self, s: usize, i: usize, dests: &[Dest], load: &[DestLoad], now: u64) {
        let Some(d) = dests.get(i) else { return };
        if self.set(s).iter().any(|m| m.id == d.id) {
            return;
        }
        if self.set(s).len() >= self.set_max {
            let victim = set_max(self.set(s), dests, load).unwrap_or(0);
            self.remove(s, victim);
        }
        let Some(slot) = self.slots.get_mut(s) else {
            return;
        };
        let k = s * self.set_max + usize::from(slot.len);
        if let Some(m) = self.members.get_mut(k) {
            *m = Member {
                idx: i as u32,
                id: d.id,
            };
            slot.len += 1;
            slot.last_mod = now;
        }
    }

    /// Removes the `k`-th member of entry `s`.
    fn remove(&mut self, s: usize, k: usize) {
        let set = self.set(s);
        if k < set.len() {
            let last = set.len() - 1;
            set.swap(k, last);
            if let Some(slot) = self.slots.get_mut(s) {
                slot.len -= 1;
            }
        }
    }
}

/// lblc/lblcr's overload rule: more active connections than weight while some usable server
/// has fewer than half its weight (`cores` scales this core's counts to the service).
fn overloaded(d: &Dest, dests: &[Dest], load: &[DestLoad], cores: u32) -> bool {
    let active = |d: &Dest| u64::from(load_of(load, d).active) * u64::from(cores);
    active(d) > u64::from(d.weight)
        && dests
            .iter()
            .any(|e| usable(e, load) && active(e) * 2 < u64::from(e.weight))
}

/// Index (into the set) of the usable member of least `overhead / weight`.
fn set_min(set: &[Member], dests: &[Dest], load: &[DestLoad]) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    for (k, m) in set.iter().enumerate() {
        let Some(d) = dests.get(m.idx as usize).filter(|d| usable(d, load)) else {
            continue;
        };
        let (c, w) = (u64::from(load_of(load, d).overhead()), u64::from(d.weight));
        if best.is_none_or(|(_, bc, bw)| bc * w > c * bw) {
            best = Some((k, c, w));
        }
    }
    best.map(|(k, _, _)| k)
}

/// Index (into the set) of the member of positive weight with most `overhead / weight`.
fn set_max(set: &[Member], dests: &[Dest], load: &[DestLoad]) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    for (k, m) in set.iter().enumerate() {
        let Some(d) = dests.get(m.idx as usize).filter(|d| d.weight > 0) else {
            continue;
        };
        let (c, w) = (u64::from(load_of(load, d).overhead()), u64::from(d.weight));
        if best.is_none_or(|(_, bc, bw)| bc * w < c * bw) {
            best = Some((k, c, w));
        }
    }
    best.map(|(k, _, _)| k)
}

/// Locality-based least connection.
pub(super) fn lblc(
    table: Option<&mut LocalityTable>,
    plan: &SchedPlan,
    load: &[DestLoad],
    input: &SchedInput,
) -> Option<usize> {
    let dests = plan.dests();
    let Some(t) = table else {
        return least::wlc(dests, load);
    };
    let cfg = plan.config();
    let (now, addr) = (input.now_ms, &input.daddr);
    let found = t.find(addr, now, cfg.locality_expiration_ms);
    if let Some(s) = found {
        if let Some(slot) = t.slots.get_mut(s) {
            slot.last_use = now;
        }
        t.prune(s, dests);
        let cached = t.set(s).first().map(|m| m.idx as usize);
        if let Some((i, d)) = cached.and_then(|i| Some((i, dests.get(i)?))) {
            if usable(d, load) && !overloaded(d, dests, load, cfg.cores) {
                return Some(i);
            }
        }
    }
    let i = least::wlc(dests, load)?;
    let s = match found {
        Some(s) => {
            t.remove(s, 0);
            s
        }
        None => t.claim(addr, now),
    };
    t.add(s, i, dests, load, now);
    Some(i)
}

/// Locality-based least connection with replication.
pub(super) fn lblcr(
    table: Option<&mut LocalityTable>,
    plan: &SchedPlan,
    load: &[DestLoad],
    input: &SchedInput,
) -> Option<usize> {
    let dests = plan.dests();
    let Some(t) = table else {
        return least::wlc(dests, load);
    };
    let cfg = plan.config();
    let (now, addr) = (input.now_ms, &input.daddr);
    let Some(s) = t.find(addr, now, cfg.locality_expiration_ms) else {
        let i = least::wlc(dests, load)?;
        let s = t.claim(addr, now);
        t.add(s, i, dests, load, now);
        return Some(i);
    };
    let last_mod = t.slots.get_mut(s).map_or(now, |slot| {
        slot.last_use = now;
        slot.last_mod
    });
    t.prune(s, dests);
    let chosen = set_min(t.set(s), dests, load).and_then(|k| t.set(s).get(k).map(|m| m.idx));
    // A set unchanged for the expiration time sheds its most loaded member.
    if t.set(s).len() > 1 && now.saturating_sub(last_mod) > cfg.locality_expiration_ms {
        if let Some(k) = set_max(t.set(s), dests, load) {
            t.remove(s, k);
            if let Some(slot) = t.slots.get_mut(s) {
                slot.last_mod = now;
            }
        }
    }
    if let Some((i, d)) = chosen.and_then(|i| Some((i as usize, dests.get(i as usize)?))) {
        if !overloaded(d, dests, load, cfg.cores) {
            return Some(i);
        }
    }
    let i = least::wlc(dests, load)?;
    t.add(s, i, dests, load, now);
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SchedulerKind, ServiceFlags};
    use crate::sched::{schedule, SchedConfig, SchedState};

    const HOUR: u64 = 3_600_000;

    fn dest(id: u32, weight: u32) -> Dest {
        Dest {
            id: DestId(id),
            addr: Addr::v4([10, 0, 0, id as u8]),
            port: 3128,
            weight,
        }
    }

    fn plan(kind: SchedulerKind, dests: Vec<Dest>) -> SchedPlan {
        SchedPlan::new(kind, ServiceFlags::default(), dests)
    }

    fn to(daddr: u8, now_ms: u64) -> SchedInput {
        SchedInput {
            saddr: Addr::v4([192, 0, 2, 1]),
            sport: 40000,
            daddr: Addr::v4([198, 51, 100, daddr]),
            dport: 80,
            now_ms,
        }
    }

    fn active(counts: &[u32]) -> Vec<DestLoad> {
        counts
            .iter()
            .map(|&a| DestLoad {
                active: a,
                ..DestLoad::default()
            })
            .collect()
    }

    #[test]
    fn test_lblc_sticks_until_overloaded_in_its_sense() {
        let p = plan(SchedulerKind::Lblc, vec![dest(0, 10), dest(1, 10)]);
        let mut st = SchedState::new(&p);
        // First pick by wlc: the idle server 1.
        let mut load = active(&[3, 0]);
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 0)), Some(1));
        // Now server 1 is far busier than 0, but not above its weight: stay.
        load = active(&[0, 10]);
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 1)), Some(1));
        // Above its weight, while server 0 has under half its weight: re-pick and remember.
        load = active(&[4, 11]);
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 2)), Some(0));
        load = active(&[5, 0]);
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 3)), Some(0));
        // Above its weight, but nobody has under half its weight: stay.
        load = active(&[20, 5]);
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 4)), Some(0));
        // Other destinations are independent.
        assert_eq!(schedule(&mut st, &p, &load, &to(2, 5)), Some(1));
    }

    #[test]
    fn test_lblc_leaves_quiesced_and_flagged_overloaded() {
        let p = plan(SchedulerKind::Lblc, vec![dest(0, 1), dest(1, 1)]);
        let mut st = SchedState::new(&p);
        let mut load = active(&[0, 1]);
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 0)), Some(0));
        load[0].overloaded = true;
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 1)), Some(1));
        // Server 1 is now remembered even once server 0 recovers.
        load = active(&[0, 1]);
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 2)), Some(1));
        let q = plan(SchedulerKind::Lblc, vec![dest(0, 1), dest(1, 0)]);
        assert_eq!(schedule(&mut st, &q, &load, &to(1, 3)), Some(0));
    }

    #[test]
    fn test_lblc_entry_expires() {
        let p = plan(SchedulerKind::Lblc, vec![dest(0, 1), dest(1, 1)]);
        let mut st = SchedState::new(&p);
        assert_eq!(schedule(&mut st, &p, &active(&[1, 0]), &to(1, 0)), Some(1));
        // Used within 24 h of the last use: kept, though wlc would now say 0.
        let load = active(&[0, 1]);
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 23 * HOUR)), Some(1));
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 46 * HOUR)), Some(1));
        // Idle for more than 24 h: forgotten, wlc decides again.
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 71 * HOUR)), Some(0));
    }

    #[test]
    fn test_lblc_survives_reindexing() {
        let p = plan(
            SchedulerKind::Lblc,
            vec![dest(0, 1), dest(1, 1), dest(2, 1)],
        );
        let mut st = SchedState::new(&p);
        let mut load = active(&[1, 1, 0]);
        assert_eq!(schedule(&mut st, &p, &load, &to(9, 0)), Some(2));
        // Server 0 is removed: server 2 (id 2) is now at index 1 and still remembered.
        let q = plan(SchedulerKind::Lblc, vec![dest(1, 1), dest(2, 1)]);
        st.prepare(&q);
        load = active(&[0, 0, 1]);
        assert_eq!(schedule(&mut st, &q, &load, &to(9, 1)), Some(1));
        // And once it is removed too, the destination goes elsewhere.
        let r = plan(SchedulerKind::Lblc, vec![dest(1, 1)]);
        assert_eq!(schedule(&mut st, &r, &load, &to(9, 2)), Some(0));
    }

    #[test]
    fn test_table_evicts_least_recently_used() {
        let mut t = LocalityTable::new(4, 1);
        assert_eq!(t.slots.len(), 4, "one bucket of four ways");
        let addr = |i: u8| Addr::v4([198, 51, 100, i]);
        for i in 0..4 {
            let s = t.claim(&addr(i), u64::from(i));
            assert!(t.find(&addr(i), 10, HOUR) == Some(s));
        }
        t.slots[t.find(&addr(0), 10, HOUR).unwrap()].last_use = 10;
        t.claim(&addr(4), 11);
        // Entry 1 was the least recently used.
        assert!(t.find(&addr(1), 12, HOUR).is_none());
        for i in [0, 2, 3, 4] {
            assert!(t.find(&addr(i), 12, HOUR).is_some(), "{i}");
        }
    }

    #[test]
    fn test_lblcr_replicates_then_shrinks() {
        let cfg = SchedConfig {
            locality_expiration_ms: HOUR,
            ..SchedConfig::default()
        };
        let ds = vec![dest(0, 10), dest(1, 10), dest(2, 10)];
        let p =
            SchedPlan::with_config(SchedulerKind::Lblcr, ServiceFlags::default(), ds, cfg).unwrap();
        let mut st = SchedState::new(&p);
        let mut load = active(&[0, 2, 2]);
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 0)), Some(0));
        // Server 0 overloaded in the locality sense: server 1 (least loaded) joins the set.
        load = active(&[11, 2, 3]);
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 1)), Some(1));
        let set = |st: &mut SchedState| {
            let t = st.locality_mut().unwrap();
            let s = t.find(&to(1, 0).daddr, 2, HOUR).unwrap();
            let mut ids: Vec<u32> = t.set(s).iter().map(|m| m.id.0).collect();
            ids.sort_unstable();
            ids
        };
        assert_eq!(set(&mut st), [0, 1]);
        // The set's least loaded member serves, even though server 2 is idle.
        load = active(&[3, 4, 0]);
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 2)), Some(0));
        load = active(&[5, 4, 0]);
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 3)), Some(1));
        // An hour without set changes (the entry still in use): the most loaded member (0)
        // leaves, 1 serves.
        assert_eq!(schedule(&mut st, &p, &load, &to(1, HOUR / 2)), Some(1));
        assert_eq!(set(&mut st), [0, 1]);
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 1 + HOUR + 1)), Some(1));
        assert_eq!(set(&mut st), [1]);
        // A single-member set does not shrink further.
        assert_eq!(schedule(&mut st, &p, &load, &to(1, 2 * HOUR)), Some(1));
        assert_eq!(set(&mut st), [1]);
    }

    #[test]
    fn test_lblcr_full_set_replaces_most_loaded() {
        let ds: Vec<_> = (0..10).map(|i| dest(i, 1)).collect();
        let p = plan(SchedulerKind::Lblcr, ds);
        let mut st = SchedState::new(&p);
        // Each round the set's members are all overloaded (2 > 1) and the next server is idle,
        // so it joins; member k carries load 2 + k so the oldest are the least loaded.
        let mut load = active(&[0; 10]);
        for k in 0..10u32 {
            let got = schedule(&mut st, &p, &load, &to(7, u64::from(k)));
            assert_eq!(got, Some(k as usize));
            load[k as usize].active = 2 + k;
        }
        let t = st.locality_mut().unwrap();
        let s = t.find(&to(7, 0).daddr, 20, HOUR).unwrap();
        let mut ids: Vec<u32> = t.set(s).iter().map(|m| m.id.0).collect();
        ids.sort_unstable();
        // Servers 8 and 9 joined a full set of 8, each evicting the most loaded (7, then 8).
        assert_eq!(ids, [0, 1, 2, 3, 4, 5, 6, 9]);
    }
}
