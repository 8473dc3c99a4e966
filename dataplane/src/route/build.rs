//! Building a routing table: checking connected subnets and static routes once, on the control
//! thread, with errors that say what to fix.

use std::fmt;

use super::lpm::mask;
use super::table::{key_of, Route, RouteKind, RouteTable};
use crate::flow::Addr;

/// A configured route: `prefix/len` via a gateway and/or out of an explicit port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticRoute {
    /// The network (host bits must be zero).
    pub prefix: Addr,
    /// Prefix length within its family.
    pub len: u8,
    /// The gateway; it must lie on a connected subnet. `None` makes the route on-link.
    pub via: Option<Addr>,
    /// The egress port; derived from the gateway's subnet when `None`.
    pub port: Option<u16>,
}

impl StaticRoute {
    /// `prefix/len` via `gateway` (the port is the one of the gateway's connected subnet).
    pub fn via(prefix: Addr, len: u8, gateway: Addr) -> StaticRoute {
        StaticRoute {
            prefix,
            len,
            via: Some(gateway),
            port: None,
        }
    }

    /// `prefix/len` on-link out of `port` (destinations are resolved directly).
    pub fn on_link(prefix: Addr, len: u8, port: u16) -> StaticRoute {
        StaticRoute {
            prefix,
            len,
            via: None,
            port: Some(port),
        }
    }

    /// The same route pinned to `port`.
    pub fn port(mut self, port: u16) -> StaticRoute {
        self.port = Some(port);
        self
    }
}

/// Why a routing table could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// A prefix length beyond 32 (IPv4) or 128 (IPv6).
    BadPrefixLen {
        /// The address or prefix.
        addr: Addr,
        /// The length given.
        len: u8,
    },
    /// A static route's prefix has bits set beyond its length.
    HostBitsSet {
        /// The route as configured.
        route: StaticRoute,
    },
    /// The gateway is not of the prefix's address family.
    FamilyMismatch {
        /// The route as configured.
        route: StaticRoute,
    },
    /// The gateway lies on no connected subnet.
    GatewayUnreachable {
        /// The route as configured.
        route: StaticRoute,
    },
    /// The gateway is one of our own addresses.
    GatewayIsLocal {
        /// The route as configured.
        route: StaticRoute,
    },
    /// The gateway's subnet is on another port than the one given.
    PortMismatch {
        /// The route as configured.
        route: StaticRoute,
        /// The port of the gateway's connected subnet.
        connected_port: u16,
    },
    /// Neither a gateway nor a port.
    NoNextHop {
        /// The route as configured.
        route: StaticRoute,
    },
    /// An on-link route out of a port without an address of its family.
    NoAddressOnPort {
        /// The route as configured.
        route: StaticRoute,
    },
    /// Two routes for the same prefix.
    Duplicate {
        /// The network.
        prefix: Addr,
        /// Its length.
        len: u8,
    },
    /// The same subnet configured on two ports.
    SubnetOnTwoPorts {
        /// The network.
        prefix: Addr,
        /// Its length.
        len: u8,
        /// The first port.
        first: u16,
        /// The second port.
        second: u16,
    },
}

fn show(r: &StaticRoute) -> String {
    let mut s = format!("{}/{}", r.prefix, r.len);
    if let Some(g) = r.via {
        s += &format!(" via {g}");
    }
    if let Some(p) = r.port {
        s += &format!(" port {p}");
    }
    s
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::BadPrefixLen { addr, len } => {
                let max = if addr.is_v4() { 32 } else { 128 };
                write!(f, "{addr}/{len}: prefix length must be at most {max}")
            }
            RouteError::HostBitsSet { route } => write!(
                f,
                "route {}: the prefix has bits set beyond /{}; give the network address",
                show(route),
                route.len
            ),
            RouteError::FamilyMismatch { route } => write!(
                f,
                "route {}: the gateway is not of the prefix's address family",
                show(route)
            ),
            RouteError::GatewayUnreachable { route } => write!(
                f,
                "route {}: the gateway is on no connected subnet; add an address on its subnet \
                 to a port or use a gateway on one",
                show(route)
            ),
            RouteError::GatewayIsLocal { route } => write!(
                f,
                "route {}: the gateway is one of the director's own addresses",
                show(route)
            ),
            RouteError::PortMismatch {
                route,
                connected_port,
            } => write!(
                f,
                "route {}: the gateway's subnet is on port {connected_port}; drop the port or fix it",
                show(route)
            ),
            RouteError::NoNextHop { route } => write!(
                f,
                "route {}: give a gateway or a port",
                show(route)
            ),
            RouteError::NoAddressOnPort { route } => write!(
                f,
                "route {}: the port has no address of this family to send from",
                show(route)
            ),
            RouteError::Duplicate { prefix, len } => {
                write!(f, "route {prefix}/{len} is configured twice (or is a connected subnet)")
            }
            RouteError::SubnetOnTwoPorts {
                prefix,
                len,
                first,
                second,
            } => write!(
                f,
                "subnet {prefix}/{len} is configured on ports {first} and {second}; keep it on one"
            ),
        }
    }
}

impl std::error::Error for RouteError {}

/// Collects port addresses and static routes, then checks and builds a [`RouteTable`].
#[derive(Debug, Clone, Default)]
pub struct RouteTableBuilder {
    addrs: Vec<(u16, Addr, u8)>,
    statics: Vec<StaticRoute>,
}

/// The family-relative width of an address.
fn width(a: &Addr) -> u8 {
    if a.is_v4() {
        32
    } else {
        128
    }
}

/// `a` with the bits beyond `len` cleared.
fn network(a: &Addr, len: u8) -> Addr {
    let (key, v4) = key_of(a);
    let k = key & mask(width(a), len);
    if v4 {
        Addr::v4((k as u32).to_be_bytes())
    } else {
        Addr::v6(k.to_be_bytes())
    }
}

fn contains(r: &Route, a: &Addr) -> bool {
    r.prefix.is_v4() == a.is_v4() && network(a, r.len) == r.prefix
}

impl RouteTableBuilder {
    /// Adds our address `addr/len` on `port`; its subnet becomes a connected route.
    pub fn address(&mut self, port: u16, addr: Addr, len: u8) -> &mut Self {
        self.addrs.push((port, addr, len));
        self
    }

    /// Adds a static route.
    pub fn route(&mut self, r: StaticRoute) -> &mut Self {
        self.statics.push(r);
        self
    }

    /// Checks everything and builds the table.
    pub fn build(&self) -> Result<RouteTable, RouteError> {
        let mut routes: Vec<Route> = Vec::new();
        for &(port, addr, len) in &self.addrs {
            if len > width(&addr) {
                return Err(RouteError::BadPrefixLen { addr, len });
            }
            let prefix = network(&addr, len);
            match routes.iter().find(|r| r.prefix == prefix && r.len == len) {
                // A secondary address on the same subnet: the first stays the source.
                Some(r) if r.port == port => continue,
                Some(r) => {
                    return Err(RouteError::SubnetOnTwoPorts {
                        prefix,
                        len,
                        first: r.port,
                        second: port,
                    })
                }
                None => {}
            }
            routes.push(Route {
                prefix,
                len,
                port,
                gateway: None,
                src: addr,
                kind: RouteKind::Connected,
            });
        }
        let connected = routes.len();
        for s in &self.statics {
            let r = self.check_static(s, &routes[..connected])?;
            if routes
                .iter()
                .any(|o| o.prefix == r.prefix && o.len == r.len)
            {
                return Err(RouteError::Duplicate {
                    prefix: r.prefix,
                    len: r.len,
                });
            }
            routes.push(r);
        }
        Ok(RouteTable::from_routes(routes))
    }

    fn check_static(&self, s: &StaticRoute, connected: &[Route]) -> Result<Route, RouteError> {
        let route = *s;
        if s.len > width(&s.prefix) {
            return Err(RouteError::BadPrefixLen {
                addr: s.prefix,
                len: s.len,
            });
        }
        if network(&s.prefix, s.len) != s.prefix {
            return Err(RouteError::HostBitsSet { route });
        }
        let Some(gw) = s.via else {
            let port = s.port.ok_or(RouteError::NoNextHop { route })?;
            let v4 = s.prefix.is_v4();
            let src = self
                .addrs
                .iter()
                .find(|(p, a, _)| *p == port && a.is_v4() == v4)
                .map(|(_, a, _)| *a)
                .ok_or(RouteError::NoAddressOnPort { route })?;
            return Ok(Route {
                prefix: s.prefix,
                len: s.len,
                port,
                gateway: None,
                src,
                kind: RouteKind::Static,
            });
        };
        if gw.is_v4() != s.prefix.is_v4() {
            return Err(RouteError::FamilyMismatch { route });
        }
        if self.addrs.iter().any(|(_, a, _)| *a == gw) {
            return Err(RouteError::GatewayIsLocal { route });
        }
        let via = connected
            .iter()
            .filter(|c| contains(c, &gw))
            .max_by_key(|c| c.len)
            .ok_or(RouteError::GatewayUnreachable { route })?;
        if s.port.is_some_and(|p| p != via.port) {
            return Err(RouteError::PortMismatch {
                route,
                connected_port: via.port,
            });
        }
        Ok(Route {
            prefix: s.prefix,
            len: s.len,
            port: via.port,
            gateway: Some(gw),
            src: via.src,
            kind: RouteKind::Static,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Addr {
        Addr::from(s.parse::<std::net::IpAddr>().unwrap())
    }

    fn base() -> RouteTableBuilder {
        let mut b = RouteTableBuilder::default();
        b.address(0, a("192.0.2.1"), 24)
            .address(1, a("198.51.100.1"), 24)
            .address(0, a("2001:db8::1"), 64);
        b
    }

    fn err(r: StaticRoute) -> RouteError {
        base().route(r).build().unwrap_err()
    }

    #[test]
    fn test_gateway_on_no_subnet_is_refused() {
        let r = StaticRoute::via(a("0.0.0.0"), 0, a("203.0.113.1"));
        let e = err(r);
        assert_eq!(e, RouteError::GatewayUnreachable { route: r });
        assert_eq!(
            e.to_string(),
            "route 0.0.0.0/0 via 203.0.113.1: the gateway is on no connected subnet; add an \
             address on its subnet to a port or use a gateway on one"
        );
    }

    #[test]
    fn test_bad_static_routes() {
        let r = StaticRoute::via(a("10.0.0.1"), 8, a("192.0.2.254"));
        assert_eq!(err(r), RouteError::HostBitsSet { route: r });
        let r = StaticRoute::via(a("10.0.0.0"), 33, a("192.0.2.254"));
        assert_eq!(
            err(r),
            RouteError::BadPrefixLen {
                addr: a("10.0.0.0"),
                len: 33
            }
        );
        let r = StaticRoute::via(a("10.0.0.0"), 8, a("2001:db8::fe"));
        assert_eq!(err(r), RouteError::FamilyMismatch { route: r });
        let r = StaticRoute::via(a("10.0.0.0"), 8, a("192.0.2.1"));
        assert_eq!(err(r), RouteError::GatewayIsLocal { route: r });
        let r = StaticRoute::via(a("10.0.0.0"), 8, a("192.0.2.254")).port(1);
        assert_eq!(
            err(r),
            RouteError::PortMismatch {
                route: r,
                connected_port: 0
            }
        );
        let r = StaticRoute {
            prefix: a("10.0.0.0"),
            len: 8,
            via: None,
            port: None,
        };
        assert_eq!(err(r), RouteError::NoNextHop { route: r });
        let r = StaticRoute::on_link(a("2001:db8:5::"), 48, 1);
        assert_eq!(err(r), RouteError::NoAddressOnPort { route: r });
        let r = StaticRoute::via(a("192.0.2.0"), 24, a("198.51.100.254"));
        assert_eq!(
            err(r),
            RouteError::Duplicate {
                prefix: a("192.0.2.0"),
                len: 24
            }
        );
        assert!(err(r).to_string().contains("192.0.2.0/24"));
    }

    #[test]
    fn test_subnet_on_two_ports_and_secondary_addresses() {
        let mut b = base();
        b.address(0, a("192.0.2.9"), 24);
        let t = b.build().unwrap();
        assert_eq!(t.len(), 3);
        b.address(1, a("192.0.2.10"), 24);
        assert_eq!(
            b.build().unwrap_err(),
            RouteError::SubnetOnTwoPorts {
                prefix: a("192.0.2.0"),
                len: 24,
                first: 0,
                second: 1
            }
        );
        let mut b = base();
        b.address(0, a("192.0.2.1"), 40);
        assert!(b.build().unwrap_err().to_string().contains("at most 32"));
    }

    #[test]
    fn test_gateway_uses_longest_connected_subnet() {
        let mut b = base();
        b.address(1, a("192.0.2.129"), 25).route(StaticRoute::via(
            a("10.0.0.0"),
            8,
            a("192.0.2.200"),
        ));
        let t = b.build().unwrap();
        let hit = t.lookup(&a("10.9.9.9")).unwrap();
        assert_eq!(
            (hit.port, hit.next_hop, hit.src),
            (1, a("192.0.2.200"), a("192.0.2.129"))
        );
    }
}
