//! Neighbours: the MAC addresses of next hops, found with ARP (IPv4) and NDP (IPv6).
//!
//! Each worker core owns a [`NeighCache`] (no sharing, no locks). Per packet it calls
//! [`NeighCache::resolve`] for the next hop the [`crate::route`] table gave, and
//! [`NeighCache::hold`]s the packet while resolution is pending. For every received ARP or
//! NDP frame that [`crate::host`] did not answer it calls [`observe`] and feeds the result to
//! [`NeighCache::learn`], which releases the held packets. Every few milliseconds it calls
//! [`NeighCache::poll`], and [`emit`] builds the requests that asks for, as well as the
//! gratuitous ARP / unsolicited NA announcements of the director's addresses and VIPs.
//! Operator-configured neighbours ([`NeighCache::add_static`]) are permanent: never expired,
//! never probed, never overwritten by what the wire says.

mod cache;
pub mod emit;
mod hold;
mod index;
mod observe;
mod types;

pub use cache::NeighCache;
pub use hold::Released;
pub use observe::{observe, observe_frame};
pub use types::{Lookup, NeighConfig, NeighEntry, NeighState, NeighStats, Request, StaticError};
