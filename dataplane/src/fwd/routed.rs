//! The [`Topology`] of a director: its routing table, its MAC per port and a neighbour cache.
//! The daemon's workers forward through it, and the benchmarks measure the same code.

use super::{Route, Topology};
use crate::flow::Addr;
use crate::neigh::NeighCache;
use crate::route::RouteTable;
use crate::wire::MacAddr;

/// Routes from `routes`, the source MAC of port `p` from `macs[p]`, next hops' MACs from
/// `neigh`, and the neighbour cache's version as the epoch (so the forwarder keeps each real
/// server's egress while no MAC the cache answers has changed).
#[derive(Clone, Copy)]
pub struct RoutedTopology<'a, B, const H: usize = 4> {
    /// The routing table (published with the snapshot).
    pub routes: &'a RouteTable,
    /// Our MAC on each port, by port index.
    pub macs: &'a [MacAddr],
    /// This core's neighbour cache.
    pub neigh: &'a NeighCache<B, H>,
}

impl<B, const H: usize> Topology for RoutedTopology<'_, B, H> {
    #[inline]
    fn route(&self, dst: &Addr) -> Option<Route> {
        let hit = self.routes.lookup(dst)?;
        Some(Route {
            port: hit.port,
            next_hop: hit.next_hop,
            mac: *self.macs.get(usize::from(hit.port))?,
        })
    }

    #[inline]
    fn neighbour(&self, port: u16, ip: &Addr) -> Option<MacAddr> {
        self.neigh.get(port, ip)
    }

    /// Changes whenever a MAC the cache would answer changes or goes.
    #[inline]
    fn epoch(&self) -> Option<u64> {
        Some(self.neigh.version())
    }
}
