//! Forwarding: one call per received frame finds or creates its connection, rewrites the frame in
//! place for the connection's mode (DR, NAT, TUN, FullNAT) and says where it goes.
//!
//! Each worker core owns a [`Forwarder`]: its connection table, per-service scheduler state, the
//! FullNAT local-port allocator and its counters. Configuration comes as an immutable
//! [`Snapshot`] passed to every call (the daemon swaps it atomically); a new snapshot is prepared
//! off the packet path by [`Forwarder::install`].
//!
//! Promises of [`Forwarder::process`]:
//! - one [`crate::wire::parse_frame`], one hash and one lookup for an established flow;
//! - no allocation, no lock, no panic whatever the bytes (a proptest feeds it random frames);
//! - checksums updated incrementally (RFC 1624) and left valid: IPv4 header, TCP/UDP with their
//!   pseudo-header (a zero IPv4 UDP checksum stays zero), ICMP and quoted headers;
//! - every frame ends in a [`Verdict`]; every drop has a [`DropReason`] counted per core.
//!
//! What each mode does to a client → VIP packet:
//! ```text
//! DR      dst MAC ← RS's (or its gateway's), src MAC ← ours; IP untouched, TTL kept
//! NAT     dst ← RIP:rport; replies src ← VIP:vport; TTL − 1
//! TUN     | eth | IPv4 DIP → RIP, proto 4 | inner (TTL − 1) |; too big → ICMP frag-needed
//! FullNAT src ← LIP:lport, dst ← RIP:rport; replies src ← VIP:vport, dst ← client:cport; TTL − 1
//! ```
//!
//! Fragments: the director does not reassemble. A first fragment carries the ports and follows
//! its connection like any packet; a later fragment has no ports, so it cannot be matched and is
//! dropped with [`DropReason::Fragment`] when addressed to a VIP or local address (handed to the
//! kernel otherwise).

mod burst;
mod fast;
mod forwarder;
mod hop;
mod icmp;
mod laddr;
mod rewrite;
mod routed;
mod snapshot;
mod stats;
#[cfg(test)]
mod tests;
mod xmit;

pub use burst::BURST;
pub use forwarder::{AliasMsg, Forwarder, ForwarderConfig, RssTarget};
pub use laddr::{LocalPorts, PortRange};
pub use routed::RoutedTopology;
pub use snapshot::{
    PortInfo, SnapDest, SnapService, Snapshot, SnapshotBuilder, SnapshotError, DEFAULT_MTU,
};
pub use stats::{FwdStats, TrafficCounters};

use crate::flow::Addr;
use crate::wire::MacAddr;

/// What to do with a frame after [`Forwarder::process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The frame is fully rewritten (MACs included): transmit it on `port`.
    Forward {
        /// Egress port.
        port: u16,
    },
    /// L3 is rewritten but the next hop's MAC is unknown: hold the frame, resolve `next_hop` on
    /// `port` (ARP/ND) and fill the Ethernet destination before sending.
    Resolve {
        /// Egress port.
        port: u16,
        /// The address to resolve.
        next_hop: Addr,
    },
    /// Not load-balanced traffic: give it to the kernel (ARP, traffic to the director itself).
    Kernel,
    /// Drop the frame; the reason is already counted.
    Drop(DropReason),
}

/// Why a frame was dropped; indexes the per-core drop counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Headers shorter or inconsistent with their length fields.
    Malformed = 0,
    /// Addressed to a VIP, but no service matches the protocol and port.
    NoService,
    /// The service has no real server that may take a new connection.
    NoDest,
    /// The connection table is full.
    TableFull,
    /// TTL or hop limit would reach zero.
    TtlExceeded,
    /// A later fragment (no ports) addressed to a VIP or local address.
    Fragment,
    /// A TCP segment other than SYN, or a packet to a local address, without a connection.
    NoConnection,
    /// FullNAT: no local address:port whose reply lands on this core is free.
    NoLocalPort,
    /// No route (or no egress address) towards the next hop.
    NoRoute,
    /// Encapsulation would exceed the MTU and no ICMP error could be sent.
    TooBig,
    /// A protocol the service cannot balance (neither TCP nor UDP).
    UnsupportedProto,
    /// TUN to an IPv6 service (IPIP carries IPv4 only).
    TunnelFamily,
    /// Client and real server (or local address) are of different address families.
    FamilyMismatch,
    /// The buffer has no headroom to prepend the tunnel header.
    NoHeadroom,
    /// From a NAT/FullNAT real server's service port but matching no connection: a reply that
    /// reached a core without its connection (or outlived it).
    ReplyMiss,
}

impl DropReason {
    /// Number of reasons: the size of a counter array indexed by [`DropReason::index`].
    pub const COUNT: usize = 15;

    /// Every reason, in index order.
    pub const ALL: [DropReason; Self::COUNT] = [
        Self::Malformed,
        Self::NoService,
        Self::NoDest,
        Self::TableFull,
        Self::TtlExceeded,
        Self::Fragment,
        Self::NoConnection,
        Self::NoLocalPort,
        Self::NoRoute,
        Self::TooBig,
        Self::UnsupportedProto,
        Self::TunnelFamily,
        Self::FamilyMismatch,
        Self::NoHeadroom,
        Self::ReplyMiss,
    ];

    /// Dense index in `0..COUNT`.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// Short stable name for stats output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::NoService => "no_service",
            Self::NoDest => "no_dest",
            Self::TableFull => "table_full",
            Self::TtlExceeded => "ttl_exceeded",
            Self::Fragment => "fragment",
            Self::NoConnection => "no_connection",
            Self::NoLocalPort => "no_local_port",
            Self::NoRoute => "no_route",
            Self::TooBig => "too_big",
            Self::UnsupportedProto => "unsupported_proto",
            Self::TunnelFamily => "tunnel_family",
            Self::FamilyMismatch => "family_mismatch",
            Self::NoHeadroom => "no_headroom",
            Self::ReplyMiss => "reply_miss",
        }
    }
}

/// A route towards an address, as the daemon's routing table answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Egress port.
    pub port: u16,
    /// The neighbour to send to: the address itself when on-link, else the gateway.
    pub next_hop: Addr,
    /// Our MAC on `port` (the new Ethernet source).
    pub mac: MacAddr,
}

/// Routing and neighbour lookups, implemented by the daemon (tests use a static table).
///
/// Both are called per forwarded packet and must not allocate or block.
pub trait Topology {
    /// The route towards `dst`.
    fn route(&self, dst: &Addr) -> Option<Route>;
    /// The MAC of `ip` on `port`, if resolved.
    fn neighbour(&self, port: u16, ip: &Addr) -> Option<MacAddr>;
    /// A value that changes whenever [`Topology::route`] or [`Topology::neighbour`] may answer
    /// differently, except for changes that only come with a new [`Snapshot`] generation (the
    /// daemon publishes its routes and port MACs with the snapshot): e.g. the neighbour cache's
    /// [`crate::neigh::NeighCache::version`]. With it the forwarder keeps the egress port and
    /// MACs towards each real server and skips both lookups while the pair (generation, epoch)
    /// holds. `None` (the default): nothing is cached.
    #[inline]
    fn epoch(&self) -> Option<u64> {
        None
    }
}
