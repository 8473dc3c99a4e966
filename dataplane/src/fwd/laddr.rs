//! FullNAT local ports whose replies come back to the core that chose them.
//!
//! A FullNAT connection leaves with source LIP:lport; the real server answers to it, and the NIC
//! picks the receive queue from the RSS (Toeplitz) hash of the reply tuple (src RIP, dst LIP,
//! sport rport, dport lport) through its redirection table. The core must choose an lport whose
//! reply lands on its own queue, or the reply reaches a core that does not know the connection.
//!
//! Toeplitz is linear over XOR: `hash = H(RIP, LIP, rport, 0) ^ h(lport)`. With a power-of-two
//! RETA of `n` entries the entry is `hash & (n − 1)`, so the ports are grouped once by
//! `h(lport) & (n − 1)`; for a wanted entry `e` the port must come from group
//! `(H & (n − 1)) ^ e`. Allocation walks this core's RETA entries from a rotating cursor and takes
//! the oldest free port of the first non-empty group: O(1) in practice, bounded by the RETA size.
//!
//! Each local address has its own pool; a port is used by at most one connection of this core
//! (a bitmap guards double frees). Other cores may use the same LIP:lport towards other real
//! servers: their tuples hash to their queues, so tuples never clash across cores. The forwarder
//! still checks the reply tuple against its table before using it.
//!
//! The NIC is assumed to hash TCP and UDP on addresses and ports (DPDK `RTE_ETH_RSS_TCP|UDP`).

use std::sync::Arc;

use crate::flow::Addr;
use crate::rss::{RetaMap, Toeplitz};

/// Local ports FullNAT may use (inclusive bounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port.
    pub last: u16,
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange {
            first: 1024,
            last: 65535,
        }
    }
}

impl PortRange {
    fn ports(self) -> impl Iterator<Item = u16> {
        self.first.max(1)..=self.last
    }
}

/// A ring of free ports of one hash group.
#[derive(Debug, Clone, Copy, Default)]
struct Group {
    start: u32,
    cap: u32,
    head: u32,
    len: u32,
}

/// The ports of one local address.
#[derive(Debug)]
struct Pool {
    addr: Addr,
    active: bool,
    groups: Box<[Group]>,
    ring: Box<[u16]>,
    used: Box<[u64]>,
}

impl Pool {
    fn is_used(&self, p: u16) -> bool {
        self.used[usize::from(p) / 64] & (1 << (p % 64)) != 0
    }

    fn set_used(&mut self, p: u16, on: bool) {
        let w = &mut self.used[usize::from(p) / 64];
        if on {
            *w |= 1 << (p % 64);
        } else {
            *w &= !(1 << (p % 64));
        }
    }

    #[inline]
    fn pop(&mut self, g: usize) -> Option<u16> {
        let grp = self.groups.get_mut(g)?;
        if grp.len == 0 {
            return None;
        }
        let p = self.ring[(grp.start + grp.head) as usize];
        grp.head += 1;
        if grp.head == grp.cap {
            grp.head = 0;
        }
        grp.len -= 1;
        self.set_used(p, true);
        Some(p)
    }

    #[inline]
    fn push(&mut self, g: usize, p: u16) {
        let Some(grp) = self.groups.get_mut(g) else {
            return;
        };
        if grp.len == grp.cap {
            return;
        }
        let mut tail = grp.head + grp.len;
        if tail >= grp.cap {
            tail -= grp.cap;
        }
        self.ring[(grp.start + tail) as usize] = p;
        grp.len += 1;
        self.set_used(p, false);
    }
}

/// The per-core FullNAT local address:port allocator.
#[derive(Debug)]
pub struct LocalPorts {
    range: PortRange,
    rss: Option<(Arc<Toeplitz>, Arc<RetaMap>)>,
    mask: u32,
    /// RETA entries that deliver to this core's queue.
    entries: Box<[u32]>,
    cursor: usize,
    pools: Vec<Pool>,
    next_pool: usize,
    /// Port → hash group, per family (index 0: IPv4, 1: IPv6).
    group_of: [Box<[u16]>; 2],
}

impl LocalPorts {
    /// An allocator for `range`; with `rss` = (hasher, RETA, queue) it only hands out ports
    /// whose reply tuple the NIC delivers to `queue`.
    ///
    /// # Panics
    /// When the RETA size is not a power of two or exceeds 65536 (DPDK RETAs are 64..512).
    pub fn new(range: PortRange, rss: Option<(Arc<Toeplitz>, Arc<RetaMap>, u16)>) -> LocalPorts {
        let (rss, mask, entries) = match rss {
            Some((tz, reta, q)) => {
                let n = reta.len();
                assert!(
                    n.is_power_of_two() && n <= 1 << 16,
                    "RETA size must be a power of two"
                );
                let entries: Box<[u32]> = (0..n as u32).filter(|&e| reta.queue(e) == q).collect();
                (Some((tz, reta)), n as u32 - 1, entries)
            }
            None => (None, 0, Box::from([0u32])),
        };
        let group_of = [false, true].map(|v6| {
            let mut g = vec![0u16; 1 << 16];
            if let Some((tz, _)) = &rss {
                let d = if v6 {
                    tz.dport_base_v6(&[0; 16], &[0; 16], 0)
                } else {
                    tz.dport_base_v4([0; 4], [0; 4], 0)
                };
                for (p, slot) in g.iter_mut().enumerate() {
                    *slot = (d.hash(p as u16) & mask) as u16;
                }
            }
            g.into_boxed_slice()
        });
        LocalPorts {
            range,
            rss,
            mask,
            entries,
            cursor: 0,
            pools: Vec::new(),
            next_pool: 0,
            group_of,
        }
    }

    /// Makes `addrs` the addresses new connections use (allocates pools for new ones; retired
    /// ones keep accepting frees). Call off the packet path.
    pub fn set_addrs(&mut self, addrs: &[Addr]) {
        for p in &mut self.pools {
            p.active = addrs.contains(&p.addr);
        }
        for a in addrs {
            if !self.pools.iter().any(|p| p.addr == *a) {
                let pool = self.new_pool(*a);
                self.pools.push(pool);
            }
        }
    }

    fn new_pool(&self, addr: Addr) -> Pool {
        let fam = usize::from(!addr.is_v4());
        let ngroups = self.mask as usize + 1;
        let mut counts = vec![0u32; ngroups];
        for p in self.range.ports() {
            counts[usize::from(self.group_of[fam][usize::from(p)])] += 1;
        }
        let mut groups = Vec::with_capacity(ngroups);
        let mut start = 0;
        for &c in &counts {
            groups.push(Group {
                start,
                cap: c,
                head: 0,
                len: 0,
            });
            start += c;
        }
        let mut pool = Pool {
            addr,
            active: true,
            groups: groups.into_boxed_slice(),
            ring: vec![0u16; start as usize].into_boxed_slice(),
            used: vec![0u64; 1024].into_boxed_slice(),
        };
        for p in self.range.ports() {
            let g = usize::from(self.group_of[fam][usize::from(p)]);
            pool.push(g, p);
        }
        pool
    }

    /// Takes a local address of `real`'s family and a port whose reply tuple from
    /// `real:rport` lands on this core's queue; `taken` rejects a tuple already in use (the
    /// port is then given back and another tried).
    #[inline]
    pub fn alloc(
        &mut self,
        real: &Addr,
        rport: u16,
        mut taken: impl FnMut(&Addr, u16) -> bool,
    ) -> Option<(Addr, u16)> {
        let n = self.pools.len();
        for k in 0..n {
            let mut i = self.next_pool + k;
            if i >= n {
                i -= n;
            }
            let pool = &self.pools[i];
            if !pool.active || pool.addr.is_v4() != real.is_v4() {
                continue;
            }
            let base = match &self.rss {
                Some((tz, _)) => tz.hash_flow(&crate::flow::FlowKey {
                    saddr: *real,
                    daddr: pool.addr,
                    sport: rport,
                    dport: 0,
                    proto: crate::flow::Proto::Tcp,
                }),
                None => 0,
            };
            // A few tries absorb the rare tuple already taken (an alias, a stale entry).
            for _ in 0..4 {
                let Some(port) = self.take(i, base) else {
                    break;
                };
                let addr = self.pools[i].addr;
                if taken(&addr, port) {
                    self.free(&addr, port);
                    continue;
                }
                self.next_pool = if i + 1 >= n { 0 } else { i + 1 };
                return Some((addr, port));
            }
        }
        None
    }

    /// A free port of pool `i` from a group that maps `base` to one of this core's entries.
    #[inline]
    fn take(&mut self, i: usize, base: u32) -> Option<u16> {
        let m = self.entries.len();
        for k in 0..m {
            let mut j = self.cursor + k;
            if j >= m {
                j -= m;
            }
            let g = ((base & self.mask) ^ self.entries[j]) as usize;
            if let Some(p) = self.pools[i].pop(g) {
                self.cursor = if j + 1 >= m { 0 } else { j + 1 };
                return Some(p);
            }
        }
        None
    }

    /// Returns a port taken by [`LocalPorts::alloc`]; unknown or free ports are ignored.
    #[inline]
    pub fn free(&mut self, addr: &Addr, port: u16) {
        let fam = usize::from(!addr.is_v4());
        let g = usize::from(self.group_of[fam][usize::from(port)]);
        if let Some(pool) = self.pools.iter_mut().find(|p| p.addr == *addr) {
            if pool.is_used(port) {
                pool.push(g, port);
            }
        }
    }

    /// Ports of `addr` in use.
    pub fn in_use(&self, addr: &Addr) -> usize {
        self.pools
            .iter()
            .find(|p| p.addr == *addr)
            .map_or(0, |p| p.used.iter().map(|w| w.count_ones() as usize).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rss::MS_DEFAULT_KEY;
    use std::collections::HashSet;

    fn rss(q: u16, nq: u16) -> (Arc<Toeplitz>, Arc<RetaMap>, u16) {
        (
            Arc::new(Toeplitz::new(&MS_DEFAULT_KEY)),
            Arc::new(RetaMap::new(128, nq).unwrap()),
            q,
        )
    }

    #[test]
    fn test_every_port_lands_on_queue_and_is_unique() {
        let tz = Toeplitz::new(&MS_DEFAULT_KEY);
        let reta = RetaMap::new(128, 4).unwrap();
        let lips = [Addr::v4([10, 2, 0, 1]), Addr::v4([10, 2, 0, 2])];
        let mut lp = LocalPorts::new(PortRange::default(), Some(rss(3, 4)));
        lp.set_addrs(&lips);
        let rip = Addr::v4([10, 1, 0, 7]);
        let mut seen = HashSet::new();
        for _ in 0..20_000 {
            let (lip, port) = lp.alloc(&rip, 8080, |_, _| false).unwrap();
            let h = tz.hash_v4(rip.v4_octets(), lip.v4_octets(), 8080, port);
            assert_eq!(reta.queue(h), 3);
            assert!(port >= 1024);
            assert!(seen.insert((lip, port)), "{lip}:{port} handed out twice");
        }
        // Both addresses were used, round robin.
        assert_eq!(lp.in_use(&lips[0]), 10_000);
        assert_eq!(lp.in_use(&lips[1]), 10_000);
    }

    #[test]
    fn test_v6_ports_land_on_queue() {
        let tz = Toeplitz::new(&MS_DEFAULT_KEY);
        let reta = RetaMap::new(128, 3).unwrap();
        let lip = Addr::v6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1]);
        let rip = Addr::v6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 7]);
        let mut lp = LocalPorts::new(PortRange::default(), Some(rss(1, 3)));
        lp.set_addrs(&[lip, Addr::v4([10, 2, 0, 1])]);
        for _ in 0..1000 {
            let (l, port) = lp.alloc(&rip, 443, |_, _| false).unwrap();
            assert_eq!(l, lip);
            assert_eq!(reta.queue(tz.hash_v6(&rip.0, &lip.0, 443, port)), 1);
        }
    }

    #[test]
    fn test_exhaustion_and_free() {
        let tz = Toeplitz::new(&MS_DEFAULT_KEY);
        let reta = RetaMap::new(128, 4).unwrap();
        let range = PortRange {
            first: 2000,
            last: 2099,
        };
        let lip = Addr::v4([10, 2, 0, 1]);
        let rip = Addr::v4([10, 1, 0, 7]);
        let expected = (2000..=2099u16)
            .filter(|&p| reta.queue(tz.hash_v4(rip.v4_octets(), lip.v4_octets(), 80, p)) == 2)
            .count();
        assert!(expected > 0);
        let mut lp = LocalPorts::new(range, Some(rss(2, 4)));
        lp.set_addrs(&[lip]);
        let got: Vec<u16> = std::iter::from_fn(|| lp.alloc(&rip, 80, |_, _| false))
            .map(|(_, p)| p)
            .collect();
        assert_eq!(got.len(), expected);
        assert_eq!(lp.alloc(&rip, 80, |_, _| false), None);
        lp.free(&lip, got[0]);
        lp.free(&lip, got[0]); // double free is ignored
        assert_eq!(lp.alloc(&rip, 80, |_, _| false), Some((lip, got[0])));
        assert_eq!(lp.alloc(&rip, 80, |_, _| false), None);
        // A retired address frees but does not allocate.
        lp.set_addrs(&[]);
        lp.free(&lip, got[1]);
        assert_eq!(lp.in_use(&lip), expected - 1);
        assert_eq!(lp.alloc(&rip, 80, |_, _| false), None);
    }

    #[test]
    fn test_taken_tuples_are_skipped_and_no_rss_uses_any_port() {
        let lip = Addr::v4([10, 2, 0, 1]);
        let mut lp = LocalPorts::new(
            PortRange {
                first: 5000,
                last: 5002,
            },
            None,
        );
        lp.set_addrs(&[lip]);
        let rip = Addr::v4([10, 1, 0, 7]);
        assert_eq!(lp.alloc(&rip, 80, |_, p| p == 5000), Some((lip, 5001)));
        assert_eq!(lp.alloc(&rip, 80, |_, _| false), Some((lip, 5002)));
        assert_eq!(lp.alloc(&rip, 80, |_, _| false), Some((lip, 5000)));
        assert_eq!(lp.alloc(&rip, 80, |_, _| false), None);
        assert_eq!(lp.alloc(&Addr::v6([1; 16]), 80, |_, _| false), None);
    }
}
