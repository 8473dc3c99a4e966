//! The built routing table snapshot and its per-packet lookup.

use super::lpm::Lpm;
use super::RouteTableBuilder;
use crate::flow::Addr;

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// The subnet of one of our addresses on a port: destinations are on-link.
    Connected,
    /// Configured: via a gateway, or on-link through an explicit port.
    Static,
}

/// One route of a built table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The network (host bits zero).
    pub prefix: Addr,
    /// Prefix length within its family (0..=32 for IPv4, 0..=128 for IPv6).
    pub len: u8,
    /// Egress port.
    pub port: u16,
    /// The gateway, or `None` when destinations are on-link.
    pub gateway: Option<Addr>,
    /// Our address on the egress port used as source.
    pub src: Addr,
    /// Connected or static.
    pub kind: RouteKind,
}

/// The answer to a lookup: what the forwarder needs to send a packet to `dst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteHit {
    /// Egress port.
    pub port: u16,
    /// The address whose MAC the frame goes to (the gateway, or `dst` itself when on-link).
    pub next_hop: Addr,
    /// Our address on that port.
    pub src: Addr,
}

/// An immutable routing table snapshot; see the module docs.
#[derive(Debug)]
pub struct RouteTable {
    v4: Lpm,
    v6: Lpm,
    routes: Box<[Route]>,
}

impl RouteTable {
    /// A builder for a new table.
    pub fn builder() -> RouteTableBuilder {
        RouteTableBuilder::default()
    }

    /// A table without routes (every lookup misses).
    pub fn empty() -> RouteTable {
        RouteTable::from_routes(Vec::new())
    }

    /// Builds the lookup structures over checked, unique routes.
    pub(super) fn from_routes(routes: Vec<Route>) -> RouteTable {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (i, r) in routes.iter().enumerate() {
            let (key, _) = key_of(&r.prefix);
            // A table holds far fewer than 2^32 routes.
            let e = (key, r.len, i as u32);
            if r.prefix.is_v4() {
                v4.push(e);
            } else {
                v6.push(e);
            }
        }
        RouteTable {
            v4: Lpm::build(32, &v4),
            v6: Lpm::build(128, &v6),
            routes: routes.into_boxed_slice(),
        }
    }

    /// The longest-prefix route to `dst`, or `None` when no route covers it.
    #[inline]
    pub fn lookup(&self, dst: &Addr) -> Option<RouteHit> {
        let (key, v4) = key_of(dst);
        let lpm = if v4 { &self.v4 } else { &self.v6 };
        let r = self.routes.get(lpm.lookup(key)? as usize)?;
        Some(RouteHit {
            port: r.port,
            next_hop: r.gateway.unwrap_or(*dst),
            src: r.src,
        })
    }

    /// The route `lookup(dst)` would use, for inspection.
    pub fn route_for(&self, dst: &Addr) -> Option<&Route> {
        let (key, v4) = key_of(dst);
        let lpm = if v4 { &self.v4 } else { &self.v6 };
        self.routes.get(lpm.lookup(key)? as usize)
    }

    /// All routes: connected first (in address order given), then static (in configuration order).
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when the table has no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// The LPM key of an address (IPv4 in the low 32 bits) and whether it is IPv4.
#[inline]
pub(super) fn key_of(a: &Addr) -> (u128, bool) {
    if a.is_v4() {
        (u128::from(u32::from_be_bytes(a.v4_octets())), true)
    } else {
        (u128::from_be_bytes(a.0), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::StaticRoute;
    use proptest::prelude::*;

    fn a(s: &str) -> Addr {
        Addr::from(s.parse::<std::net::IpAddr>().unwrap())
    }

    fn hit(port: u16, next_hop: &str, src: &str) -> Option<RouteHit> {
        Some(RouteHit {
            port,
            next_hop: a(next_hop),
            src: a(src),
        })
    }

    fn table() -> RouteTable {
        RouteTable::builder()
            .address(0, a("192.0.2.1"), 24)
            .address(0, a("192.0.2.2"), 24)
            .address(1, a("198.51.100.1"), 24)
            .address(1, a("10.1.2.1"), 30)
            .address(0, a("2001:db8::1"), 64)
            .address(1, a("2001:db8:1::1"), 64)
            .route(StaticRoute::via(a("0.0.0.0"), 0, a("192.0.2.254")))
            .route(StaticRoute::via(a("10.0.0.0"), 8, a("198.51.100.254")))
            .route(StaticRoute::via(a("10.1.0.0"), 16, a("192.0.2.253")))
            .route(StaticRoute::on_link(a("203.0.113.0"), 24, 1))
            .route(StaticRoute::via(a("::"), 0, a("2001:db8::fe")))
            .route(StaticRoute::via(
                a("2001:db8:100::"),
                48,
                a("2001:db8:1::fe"),
            ))
            .route(StaticRoute::via(
                a("2001:db8:100:5::"),
                64,
                a("2001:db8::fd"),
            ))
            .build()
            .unwrap()
    }

    #[test]
    fn test_connected_routes_next_hop_is_destination() {
        let t = table();
        assert_eq!(
            t.lookup(&a("192.0.2.77")),
            hit(0, "192.0.2.77", "192.0.2.1")
        );
        assert_eq!(
            t.lookup(&a("198.51.100.9")),
            hit(1, "198.51.100.9", "198.51.100.1")
        );
        assert_eq!(
            t.lookup(&a("2001:db8::9")),
            hit(0, "2001:db8::9", "2001:db8::1")
        );
        assert_eq!(
            t.lookup(&a("2001:db8:1::9")),
            hit(1, "2001:db8:1::9", "2001:db8:1::1")
        );
        // Two addresses in one subnet give one route sourced from the first.
        let conn = t
            .routes()
            .filter(|r| r.kind == RouteKind::Connected)
            .count();
        assert_eq!(conn, 5);
    }

    #[test]
    fn test_overlapping_v4_prefixes_longest_wins() {
        let t = table();
        // 10.1.2.0/30 connected inside 10.1.0.0/16 static inside 10.0.0.0/8 static.
        assert_eq!(t.lookup(&a("10.1.2.2")), hit(1, "10.1.2.2", "10.1.2.1"));
        assert_eq!(t.lookup(&a("10.1.2.4")), hit(0, "192.0.2.253", "192.0.2.1"));
        assert_eq!(
            t.lookup(&a("10.2.0.1")),
            hit(1, "198.51.100.254", "198.51.100.1")
        );
        assert_eq!(t.lookup(&a("8.8.8.8")), hit(0, "192.0.2.254", "192.0.2.1"));
        // Static on-link route: next hop is the destination, source the port's first address.
        assert_eq!(
            t.lookup(&a("203.0.113.5")),
            hit(1, "203.0.113.5", "198.51.100.1")
        );
        assert_eq!(
            t.route_for(&a("203.0.113.5")).unwrap().kind,
            RouteKind::Static
        );
    }

    #[test]
    fn test_overlapping_v6_prefixes_longest_wins() {
        let t = table();
        assert_eq!(
            t.lookup(&a("2001:db8:100:5::1")),
            hit(0, "2001:db8::fd", "2001:db8::1")
        );
        assert_eq!(
            t.lookup(&a("2001:db8:100:6::1")),
            hit(1, "2001:db8:1::fe", "2001:db8:1::1")
        );
        assert_eq!(
            t.lookup(&a("2606:4700::1")),
            hit(0, "2001:db8::fe", "2001:db8::1")
        );
    }

    #[test]
    fn test_no_route_is_none_and_families_do_not_mix() {
        let t = RouteTable::builder()
            .address(0, a("192.0.2.1"), 24)
            .address(0, a("2001:db8::1"), 64)
            .route(StaticRoute::via(a("::"), 0, a("2001:db8::fe")))
            .build()
            .unwrap();
        assert_eq!(
            t.lookup(&a("198.51.100.1")),
            None,
            "v6 default must not cover v4"
        );
        assert_eq!(t.lookup(&a("192.0.3.1")), None);
        assert!(t.lookup(&a("2001:db9::1")).is_some());
        let empty = RouteTable::empty();
        assert!(empty.is_empty());
        assert_eq!(empty.lookup(&a("192.0.2.1")), None);
        assert_eq!(empty.lookup(&a("::1")), None);
    }

    /// The reference: scan every route, keep the longest covering prefix.
    fn naive(routes: &[Route], dst: &Addr) -> Option<RouteHit> {
        let (key, v4) = key_of(dst);
        let width = if v4 { 32 } else { 128 };
        routes
            .iter()
            .filter(|r| r.prefix.is_v4() == v4)
            .filter(|r| key & super::super::lpm::mask(width, r.len) == key_of(&r.prefix).0)
            .max_by_key(|r| r.len)
            .map(|r| RouteHit {
                port: r.port,
                next_hop: r.gateway.unwrap_or(*dst),
                src: r.src,
            })
    }

    fn masked(key: u128, width: u8, len: u8) -> u128 {
        key & super::super::lpm::mask(width, len)
    }

    proptest! {
        #[test]
        fn prop_lpm_matches_linear_scan(
            v4 in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..40),
            v6 in proptest::collection::vec((any::<u128>(), 0u8..=128), 0..40),
            probes4 in proptest::collection::vec(any::<u32>(), 32),
            probes6 in proptest::collection::vec(any::<u128>(), 32),
        ) {
            // Few high bits vary so that prefixes overlap and probes hit them.
            let mut b = RouteTable::builder();
            b.address(0, a("192.0.2.1"), 24)
                .address(0, a("2001:db8::1"), 64)
                .address(1, a("172.16.0.1"), 16)
                .address(2, a("172.17.0.1"), 16);
            let mut seen = std::collections::HashSet::new();
            for (i, (k, len)) in v4.iter().enumerate() {
                let k = masked(u128::from(k & 0xc0a8_00ff | 0x0a00_0000), 32, *len);
                if seen.insert((k, *len, true)) && !(k == 0xc000_0200 && *len == 24) {
                    let p = Addr::v4((k as u32).to_be_bytes());
                    b.route(StaticRoute::on_link(p, *len, (i % 3) as u16));
                }
            }
            for (k, len) in v6.iter() {
                let k = masked(k & 0xf000_0000_0000_0000_0000_0000_ffff_ffff, 128, *len);
                let db8 = 0x2001_0db8u128 << 96;
                if seen.insert((k, *len, false)) && !(k == db8 && *len == 64) {
                    b.route(StaticRoute::via(Addr::v6(k.to_be_bytes()), *len, a("2001:db8::fe")).port(0));
                }
            }
            let t = b.build().unwrap();
            let routes: Vec<Route> = t.routes().copied().collect();
            for p in probes4 {
                let d = Addr::v4((p & 0xc0a8_00ff | 0x0a00_0000).to_be_bytes());
                prop_assert_eq!(t.lookup(&d), naive(&routes, &d));
                let d = Addr::v4(p.to_be_bytes());
                prop_assert_eq!(t.lookup(&d), naive(&routes, &d));
            }
            for p in probes6 {
                let d = Addr::v6((p & 0xf000_0000_0000_0000_0000_0000_ffff_ffff).to_be_bytes());
                prop_assert_eq!(t.lookup(&d), naive(&routes, &d));
            }
        }
    }
}
