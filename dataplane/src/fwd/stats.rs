//! Per-core forwarding counters: drops by reason, and per service and per real server the
//! counters `ipvsadm --stats` shows ("in" = client → server, "out" = server → client; bytes are
//! IP packet lengths, as IPVS counts them).
//!
//! Written only by the owning core ([`Counter`] single-writer semantics); shared through an
//! `Arc` with the control plane, which sums the cores.

use crate::stats::Counter;

use super::DropReason;
use crate::conn::Dir;

/// Traffic counters of one service or real server on one core. A cache line each, so that a
/// slot's address is one shift from its index.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct TrafficCounters {
    /// Connections scheduled.
    pub conns: Counter,
    /// Packets by direction, indexed by [`Dir`]: client → server ("in"), server → client
    /// ("out"). Indexed rather than branched on, so that both counters of a packet take the
    /// direction's index computed once.
    pkts: [Counter; 2],
    /// Bytes by direction, as `pkts`.
    bytes: [Counter; 2],
}

impl TrafficCounters {
    /// Packets client → server.
    pub fn inpkts(&self) -> u64 {
        self.pkts[Dir::Original as usize].get()
    }
    /// Packets server → client.
    pub fn outpkts(&self) -> u64 {
        self.pkts[Dir::Reply as usize].get()
    }
    /// Bytes client → server.
    pub fn inbytes(&self) -> u64 {
        self.bytes[Dir::Original as usize].get()
    }
    /// Bytes server → client.
    pub fn outbytes(&self) -> u64 {
        self.bytes[Dir::Reply as usize].get()
    }

    #[inline]
    pub(crate) fn count(&self, dir: Dir, bytes: u64) {
        let lane = dir as usize;
        self.pkts[lane].inc();
        self.bytes[lane].add(bytes);
    }
}

/// All counters of one forwarding core.
#[derive(Debug)]
pub struct FwdStats {
    drops: [Counter; DropReason::COUNT],
    services: Box<[TrafficCounters]>,
    dests: Box<[TrafficCounters]>,
    /// Frames forwarded (Forward and Resolve verdicts).
    pub forwarded: Counter,
    /// Frames handed to the kernel.
    pub kernel: Counter,
    /// ICMP errors relayed to a client or real server.
    pub icmp_relayed: Counter,
    /// ICMP fragmentation-needed errors sent for oversize tunnel packets.
    pub frag_needed_sent: Counter,
    /// Connections created.
    pub new_conns: Counter,
    /// Connections removed by expiry.
    pub expired: Counter,
    /// Closing connections replaced by a new SYN on the same ports (IPVS connection reuse).
    pub reused: Counter,
    /// NAT reply aliases queued for the core RSS gives the replies to.
    pub aliases_sent: Counter,
    /// NAT reply aliases not queued because the burst's outbox was full.
    pub alias_overflow: Counter,
    /// Reply aliases from other cores indexed here.
    pub aliases_accepted: Counter,
    /// Reply aliases from other cores that could not be indexed (table full, duplicate).
    pub aliases_refused: Counter,
}

impl FwdStats {
    /// Counters for `services` service slots and `dests` real server slots.
    pub fn new(services: usize, dests: usize) -> FwdStats {
        FwdStats {
            drops: Default::default(),
            services: (0..services).map(|_| TrafficCounters::default()).collect(),
            dests: (0..dests).map(|_| TrafficCounters::default()).collect(),
            forwarded: Counter::new(),
            kernel: Counter::new(),
            icmp_relayed: Counter::new(),
            frag_needed_sent: Counter::new(),
            new_conns: Counter::new(),
            expired: Counter::new(),
            reused: Counter::new(),
            aliases_sent: Counter::new(),
            alias_overflow: Counter::new(),
            aliases_accepted: Counter::new(),
            aliases_refused: Counter::new(),
        }
    }

    /// Takes back one drop counted for `r`: the caller retried the frame and it went through
    /// (a NAT reply that raced its alias). Only the owning core may call this.
    pub fn undo_drop(&self, r: DropReason) {
        self.drops[r.index()].sub(1);
    }

    /// Drops counted for `r`.
    pub fn drops(&self, r: DropReason) -> u64 {
        self.drops[r.index()].get()
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(Counter::get).sum()
    }

    /// Counters of service slot `slot`.
    pub fn service(&self, slot: u32) -> Option<&TrafficCounters> {
        self.services.get(slot as usize)
    }

    /// Counters of real server slot `id`.
    pub fn dest(&self, id: u32) -> Option<&TrafficCounters> {
        self.dests.get(id as usize)
    }

    #[inline]
    pub(crate) fn count_drop(&self, r: DropReason) {
        self.drops[r.index()].inc();
    }

    /// Counts a packet travelling `dir` on a connection of service `svc` and real server
    /// `dest`.
    #[inline]
    pub(crate) fn traffic(&self, svc: u32, dest: u32, dir: Dir, bytes: u64) {
        if let Some(s) = self.services.get(svc as usize) {
            s.count(dir, bytes);
        }
        if let Some(d) = self.dests.get(dest as usize) {
            d.count(dir, bytes);
        }
    }

    /// Counts a new connection.
    #[inline]
    pub(crate) fn new_conn(&self, svc: u32, dest: u32) {
        self.new_conns.inc();
        if let Some(s) = self.services.get(svc as usize) {
            s.conns.inc();
        }
        if let Some(d) = self.dests.get(dest as usize) {
            d.conns.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_counts_and_bounds() {
        let s = FwdStats::new(2, 3);
        s.traffic(1, 2, Dir::Original, 100);
        s.traffic(1, 2, Dir::Reply, 40);
        s.traffic(9, 9, Dir::Original, 1); // out of range: ignored
        s.new_conn(1, 2);
        s.count_drop(DropReason::NoDest);
        s.count_drop(DropReason::NoDest);
        let d = s.dest(2).unwrap();
        assert_eq!((d.inpkts(), d.inbytes()), (1, 100));
        assert_eq!((d.outpkts(), d.outbytes()), (1, 40));
        assert_eq!(s.service(1).unwrap().conns.get(), 1);
        assert_eq!(s.drops(DropReason::NoDest), 2);
        assert_eq!(s.total_drops(), 2);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let names: std::collections::HashSet<_> =
            DropReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), DropReason::COUNT);
    }
}
