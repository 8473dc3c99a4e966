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
        if best.map_or(true, |(_, bc, bw)| bc * w > c * bw) {
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
        if best.map_or(true, |(_, bc, bw)| bc * w < c * bw) {
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
