//! The director's IP routing table: where to send a packet the forwarder has rewritten.
//!
//! The control thread builds a [`RouteTable`] from each port's addresses (connected subnets) and
//! the configured static routes with [`RouteTableBuilder`], checking every route once (allocation
//! and `String` errors are fine there), and publishes it as an immutable snapshot. Workers call
//! [`RouteTable::lookup`] per packet: longest-prefix match for IPv4 and IPv6, no allocation, no
//! locks, no panic. A hit names the egress port, the next hop to resolve with [`crate::neigh`]
//! (the destination itself on a connected subnet) and our address on that port (the outer source
//! of a tunnel, the sender of ARP requests and neighbour solicitations).

mod build;
mod lpm;
mod table;

pub use build::{RouteError, RouteTableBuilder, StaticRoute};
pub use table::{Route, RouteHit, RouteKind, RouteTable};
