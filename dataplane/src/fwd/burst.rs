//! The burst pipeline: [`Forwarder::process_burst`] forwards up to [`BURST`] frames in passes so
//! that their cache misses overlap instead of queueing one after the other.
//!
//! A connection lookup misses the cache twice at scale (the index line, then the entry). One
//! frame at a time, each miss stalls the core; over a burst, the passes first prefetch every
//! index line (as each frame is parsed), then every candidate entry (through the caller's
//! [`Prefetch`]), and only then forward.
//! Frames keep their order and get exactly the verdicts and bytes they would get one by one
//! (property-tested): a probe taken before an earlier frame of the burst added or removed a
//! connection is taken again ([`crate::conn::ConnTable::index_version`]).
//!
//! The common frame (untagged IPv4 without options, TCP, unfragmented) is read only as far as
//! its [`Ipv4TcpHead`], and a packet of a known connection is forwarded from that (`fast.rs`).

use super::forwarder::Forwarder;
use super::{Snapshot, Topology, Verdict};
use crate::buf::PacketBuf;
use crate::conn::{tcp_flags, ConnId, Dir, EstablishedTouch, Probe};
use crate::flow::{FlowKey, Proto};
use crate::prefetch::Prefetch;
use crate::wire::{parse_frame, parse_uncommon_into, Ipv4TcpHead, ParsedFrame};

/// Frames [`Forwarder::process_burst`] stages together (the worker's RX burst). The more frames
/// a group holds, the more of their index and entry misses are in flight at once: on huge pages
/// at 64k flows, DR ran 13.1, 15.4 and 18.5 Mpps with groups of 8, 16 and 32 in one set of
/// interleaved rounds, 17.4 and 19.5 with 32 and 64 in another (BENCHMARKS.md, step 15).
pub const BURST: usize = 64;

/// What the first passes learned of a parsed frame. (`repr(C)`: the first pass writes the
/// first eight bytes, constant for the common frame, as one word.)
#[derive(Clone, Copy)]
#[repr(C)]
pub(super) struct Look {
    /// TCP or UDP with ports (not a later fragment); `None` for anything else.
    pub(super) proto: Option<Proto>,
    /// The common frame ([`Ipv4TcpHead::read`] took it): the last pass reads its head again
    /// from the frame (still in cache) rather than from a copy staged here.
    pub(super) common: bool,
    /// The probe found the home bucket unsure (see [`Probe::Unsure`]).
    unsure: bool,
    /// Zero, so that the first eight bytes are all defined (and written as one).
    _pad: u8,
    /// The probe's candidate reference, or [`Probe::NO_CANDIDATE`]: what the fast path takes
    /// as it is, with no test of the probe's kind. (With `unsure`, it replaces an 8-byte
    /// `Probe`: the `Look` is 16 bytes, not 24.)
    candidate: u32,
    pub(super) hash: u64,
}

impl Look {
    /// A frame that is not TCP or UDP with ports, or that did not parse.
    pub(super) const OTHER: Look = Look {
        proto: None,
        common: false,
        unsure: false,
        _pad: 0,
        candidate: Probe::NO_CANDIDATE,
        hash: 0,
    };

    /// Records what the probe found, in a `Look` that has none yet (as the first pass leaves
    /// it): only what differs from "absent" is written.
    #[inline(always)]
    fn set_probe(&mut self, probe: Probe) {
        debug_assert!(self.candidate == Probe::NO_CANDIDATE && !self.unsure);
        match probe {
            Probe::Candidate(r) => self.candidate = r,
            Probe::Unsure => self.unsure = true,
            Probe::Absent => {}
        }
    }

    /// What the probe found ([`Probe::Absent`] until it ran).
    #[inline(always)]
    pub(super) fn probe(&self) -> Probe {
        if self.candidate != Probe::NO_CANDIDATE {
            Probe::Candidate(self.candidate)
        } else if self.unsure {
            Probe::Unsure
        } else {
            Probe::Absent
        }
    }

    /// The flow key of `pf`, if it has one.
    #[inline(always)]
    pub(super) fn key(&self, pf: &ParsedFrame) -> Option<FlowKey> {
        self.proto.map(|proto| FlowKey {
            saddr: pf.src,
            daddr: pf.dst,
            sport: pf.sport,
            dport: pf.dport,
            proto,
        })
    }
}

impl Forwarder {
    /// [`Forwarder::process`] over a burst; `verdicts[i]` is the verdict of `bufs[i]` (extra
    /// buffers beyond `verdicts.len()` are left untouched).
    ///
    /// Works in passes over each group of [`BURST`] frames so that their cache misses overlap
    /// instead of queueing one after the other: parse and hash every frame and prefetch its
    /// index line; probe the lines and prefetch every candidate entry; then look up and forward
    /// each frame. `prefetch` issues the prefetches ([`crate::prefetch::NoPrefetch`] when speed
    /// does not matter). A frame whose probe may have gone stale (an earlier frame of the group
    /// added or removed a connection) is probed again unless the fast path, which checks
    /// the candidate entry's key and liveness itself, takes it.
    #[allow(clippy::too_many_arguments)]
    pub fn process_burst<B: PacketBuf, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        prefetch: &impl Prefetch,
        in_port: u16,
        bufs: &mut [B],
        verdicts: &mut [Verdict],
        now_ms: u64,
    ) {
        if snap.generation() != self.generation {
            self.install(snap);
        }
        self.hop_stamp.refresh(self.generation, topo.epoch());
        self.conns.advance(now_ms);
        for (bufs, verdicts) in bufs.chunks_mut(BURST).zip(verdicts.chunks_mut(BURST)) {
            let n = bufs.len().min(verdicts.len()).min(BURST);
            let mut looks = [Look::OTHER; BURST];
            for i in 0..n {
                let frame = bufs[i].frame();
                if let Some(h) = Ipv4TcpHead::read(frame) {
                    looks[i] = self.first_look_ipv4_tcp(&h);
                } else if parse_uncommon_into(frame, &mut self.parsed[i]).is_ok() {
                    looks[i] = self.first_look(&self.parsed[i]);
                }
                // Issued while the next frames parse: by the probes, most lines are in.
                if looks[i].proto.is_some() {
                    self.conns.prefetch_index(looks[i].hash, prefetch);
                }
            }
            for look in &mut looks[..n] {
                if look.proto.is_some() {
                    let probe = self.conns.probe(look.hash);
                    look.set_probe(probe);
                    if let Probe::Candidate(r) = probe {
                        self.conns.prefetch_entry(r, prefetch);
                    }
                }
            }
            let version = self.conns.index_version();
            let touch = self.conns.established_touch(now_ms);
            let mut forwarded = 0u64;
            // Whether the index is as the probes saw it. Only the out-of-line path adds or
            // removes keys, so only it needs to look again.
            let mut fresh = true;
            let mut i = 0;
            while i < n {
                // The common frames of established connections go in runs, through a loop
                // whose registers serve them alone; the first frame a run declines goes out
                // of line. Even a stale probe cannot mislead a run: it forwards only when the
                // candidate's entry is live and holds the frame's key (a stale probe's slot
                // freed or reused for another key fails that), so only misses and the out-of-
                // line path depend on `fresh`.
                let (taken, fw) = self.fast_run(
                    snap,
                    topo,
                    in_port,
                    &mut bufs[i..n],
                    &looks[i..n],
                    &mut verdicts[i..n],
                    touch,
                );
                forwarded += fw;
                i += taken;
                if i < n {
                    let (b, look, v) = (&mut bufs[i], &looks[i], &mut verdicts[i]);
                    self.finish_staged(snap, topo, in_port, b, look, i, fresh, now_ms, v);
                    fresh = self.conns.index_version() == version;
                    match *v {
                        Verdict::Forward { .. } | Verdict::Resolve { .. } => forwarded += 1,
                        other => self.count(other),
                    }
                    i += 1;
                }
            }
            self.stats.forwarded.add(forwarded);
        }
    }

    /// Forwards frames from the start of `bufs` while the one-step fast path takes them, and
    /// returns how many it took and how many of those were forwarded (the other verdicts are
    /// counted here). Stops at the first frame it declines, which is left untouched.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn fast_run<B: PacketBuf, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        in_port: u16,
        bufs: &mut [B],
        looks: &[Look],
        verdicts: &mut [Verdict],
        touch: EstablishedTouch,
    ) -> (usize, u64) {
        // The frames taken but not forwarded, counted only on their (rare) path, so that the
        // common frame pays no counter held across the loop's calls.
        let mut other = 0u64;
        for (taken, ((b, look), v)) in bufs.iter_mut().zip(looks).zip(verdicts).enumerate() {
            if !(look.common
                && self.touched_ipv4_tcp(snap, topo, in_port, b, look.candidate, touch, v))
            {
                return (taken, taken as u64 - other);
            }
            if !matches!(*v, Verdict::Forward { .. } | Verdict::Resolve { .. }) {
                self.count(*v);
                other += 1;
            }
        }
        (bufs.len(), bufs.len() as u64 - other)
    }

    /// The last pass for a frame the one-step fast path did not take: looks it up (probing
    /// again if its probe may be stale) and forwards it, schedules it or classifies it. `i` is its
    /// position in the burst (its full parse, if it needed one, is `self.parsed[i]`).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn finish_staged<B: PacketBuf + ?Sized, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        in_port: u16,
        b: &mut B,
        look: &Look,
        i: usize,
        fresh: bool,
        now_ms: u64,
        v: &mut Verdict,
    ) {
        // A common frame's bytes are those the first pass read: it reads the same head.
        let head = if look.common {
            Ipv4TcpHead::read(b.frame())
        } else {
            None
        };
        match &head {
            Some(h) => {
                // A probe gone stale is taken again: the line is in cache, and a new key's
                // "absent" (the common case after an earlier frame's insert) needs no scan.
                let probe = if fresh {
                    look.probe()
                } else {
                    self.conns.probe(look.hash)
                };
                let found = self.conns.resolve_v4(probe, look.hash, h);
                let fast = found.is_some_and(|found| {
                    self.established_ipv4_tcp(snap, topo, in_port, b, h, found, now_ms, v)
                });
                if !fast {
                    *v = self.finish_head(snap, topo, in_port, b, h, look.hash, found, now_ms);
                }
            }
            None => {
                // A copy: `finish` needs the whole forwarder. A frame without a flow key may
                // find an earlier burst's parse here; without a key, `finish` does not read it.
                let pf = match (look.common, self.parsed.get(i)) {
                    (false, Some(pf)) => *pf,
                    // Not reached: a common frame reads its head again (above).
                    _ => match parse_frame(b.frame()) {
                        Ok(pf) => pf,
                        Err(_) => {
                            *v = Verdict::Drop(super::DropReason::Malformed);
                            return;
                        }
                    },
                };
                let key = look.key(&pf);
                let found = match &key {
                    Some(key) if fresh => self.conns.resolve(look.probe(), look.hash, key),
                    Some(key) => self
                        .conns
                        .resolve(self.conns.probe(look.hash), look.hash, key),
                    None => None,
                };
                let key = key.map(|k| (k, look.hash));
                *v = self.finish(snap, topo, in_port, b, &pf, key, found, now_ms);
            }
        }
    }

    /// First pass over a parsed frame: for TCP and UDP with ports (not a later fragment), hash
    /// the flow key.
    #[inline(always)]
    pub(super) fn first_look(&self, pf: &ParsedFrame) -> Look {
        match pf.flow_key() {
            Some(key) => Look {
                proto: Some(key.proto),
                hash: self.conns.hash(&key),
                ..Look::OTHER
            },
            None => Look::OTHER,
        }
    }

    /// [`Forwarder::first_look`] for the common frame, from its head.
    #[inline(always)]
    fn first_look_ipv4_tcp(&self, h: &Ipv4TcpHead) -> Look {
        Look {
            proto: Some(Proto::Tcp),
            common: true,
            hash: self
                .conns
                .hash_v4((h.src, h.dst), (h.sport, h.dport), Proto::Tcp),
            ..Look::OTHER
        }
    }

    /// [`Forwarder::finish`] for a frame read as an [`Ipv4TcpHead`] that the fast path did not
    /// take (a new connection, a bare SYN); out of line, so that the fast path's registers
    /// do not carry what a full [`ParsedFrame`] needs.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn finish_head<B: PacketBuf + ?Sized, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        in_port: u16,
        buf: &mut B,
        h: &Ipv4TcpHead,
        hash: u64,
        found: Option<(ConnId, Dir)>,
        now_ms: u64,
    ) -> Verdict {
        let pf = h.parsed();
        let key = Some((h.flow_key(), hash));
        self.finish(snap, topo, in_port, buf, &pf, key, found, now_ms)
    }

    /// Last pass over a frame: forwards a TCP/UDP frame of a known connection, schedules a new
    /// one, or hands anything else to [`Forwarder::classify_other`]. `key` is the frame's flow
    /// key with its [`crate::conn::ConnTable::hash`], if it has one.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn finish<B: PacketBuf + ?Sized, T: Topology + ?Sized>(
        &mut self,
        snap: &Snapshot,
        topo: &T,
        in_port: u16,
        buf: &mut B,
        pf: &ParsedFrame,
        key: Option<(FlowKey, u64)>,
        found: Option<(ConnId, Dir)>,
        now_ms: u64,
    ) -> Verdict {
        let Some((key, hash)) = key else {
            return self.classify_other(snap, topo, in_port, buf);
        };
        match found {
            Some((id, Dir::Original))
                if key.proto == Proto::Tcp
                    && pf.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST)
                        == tcp_flags::SYN
                    && self.retire_if_closing(id) =>
            {
                self.new_conn(snap, topo, in_port, buf, pf, key, hash, now_ms)
            }
            Some((id, dir)) => self.established(snap, topo, in_port, buf, pf, id, dir, now_ms),
            None => self.new_conn(snap, topo, in_port, buf, pf, key, hash, now_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Look` gives back the probe it recorded, whatever its kind; before its probe it is
    /// `Absent`, with no candidate.
    #[test]
    fn test_look_keeps_its_probe() {
        assert_eq!(Look::OTHER.probe(), Probe::Absent);
        assert_eq!(Look::OTHER.candidate, Probe::NO_CANDIDATE);
        for probe in [
            Probe::Absent,
            Probe::Unsure,
            Probe::Candidate(0),
            Probe::Candidate(7 | (1 << 31)),
            Probe::Candidate(Probe::NO_CANDIDATE - 1),
        ] {
            let mut look = Look::OTHER;
            look.set_probe(probe);
            assert_eq!((look.probe(), look.candidate), (probe, probe.candidate()));
        }
        assert_eq!(std::mem::size_of::<Look>(), 16);
    }
}
