//! What workers forward by, published as one immutable value and swapped atomically.
//!
//! The control plane compiles its configuration (services, real servers, local addresses,
//! timeouts) together with the daemon's fixed facts (ports, their addresses and MACs, static
//! routes) into a [`Published`], stores it in an `ArcSwap`, and waits until every worker has
//! acknowledged its generation. Workers read it through a per-worker cache: one atomic load per
//! burst while nothing changes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use dataplane::flow::Addr;
use dataplane::fwd::{Snapshot, SnapshotBuilder};
use dataplane::host::HostIface;
use dataplane::model::{LocalAddr, ServiceKey};
use dataplane::route::{RouteTable, StaticRoute};
use dataplane::wire::MacAddr;

use crate::config::{IfAddr, RouteSection};

/// One port as the compiler needs it.
#[derive(Debug, Clone)]
pub struct PortFacts {
    /// The port's MAC.
    pub mac: MacAddr,
    /// The director's addresses on it.
    pub addresses: Vec<IfAddr>,
    /// MTU.
    pub mtu: u16,
}

/// Facts fixed at start: ports and static routes.
#[derive(Debug, Clone)]
pub struct Fixed {
    /// Data ports, indexed like the workers' port list.
    pub ports: Vec<PortFacts>,
    /// Static routes.
    pub routes: Vec<RouteSection>,
}

/// Everything a worker needs to forward, at one generation.
pub struct Published {
    /// Services, real servers, local addresses, timeouts.
    pub fwd: Snapshot,
    /// Connected and static routes.
    pub routes: RouteTable,
    /// Per port: the MAC and the addresses the director answers ARP/NDP and ping for (its own
    /// addresses and the VIPs and local addresses on that port's subnets); these are also the
    /// addresses workers announce with gratuitous ARP / unsolicited NA.
    pub hosts: Vec<HostIface>,
    /// Per port: the port's MAC.
    pub macs: Vec<MacAddr>,
}

impl Published {
    /// The generation workers acknowledge.
    pub fn generation(&self) -> u64 {
        self.fwd.generation()
    }
}

/// Stable counter slots for services, so a service keeps its per-core counters across updates.
#[derive(Debug, Default)]
pub struct ServiceSlots {
    slots: HashMap<ServiceKey, u32>,
    free: Vec<u32>,
    next: u32,
}

impl ServiceSlots {
    /// The slots of `keys`: existing ones kept, departed ones freed, new ones allocated
    /// (reusing freed slots). Returns the slots newly (re)allocated, whose counters restart.
    pub fn assign<'a>(&mut self, keys: impl Iterator<Item = &'a ServiceKey>) -> Vec<u32> {
        let keys: Vec<&ServiceKey> = keys.collect();
        let gone: Vec<ServiceKey> = self
            .slots
            .keys()
            .filter(|k| !keys.contains(k))
            .copied()
            .collect();
        for k in gone {
            if let Some(s) = self.slots.remove(&k) {
                self.free.push(s);
            }
        }
        let mut fresh = Vec::new();
        for k in keys {
            if !self.slots.contains_key(k) {
                let s = self.free.pop().unwrap_or_else(|| {
                    self.next += 1;
                    self.next - 1
                });
                self.slots.insert(*k, s);
                fresh.push(s);
            }
        }
        fresh
    }

    /// The slot of a service.
    pub fn get(&self, key: &ServiceKey) -> Option<u32> {
        self.slots.get(key).copied()
    }
}

/// Compiles the control plane's configuration and the fixed facts into what workers read.
pub fn compile(
    cfg: &control_api::Config,
    fixed: &Fixed,
    slots: &ServiceSlots,
) -> Result<Published, String> {
    let mut b = SnapshotBuilder::new();
    b.timeouts(*cfg.timeouts());
    for entry in cfg.services() {
        let slot = slots
            .get(&entry.service.key)
            .ok_or_else(|| "internal: service without a counter slot".to_string())?;
        let reals: Vec<_> = entry
            .real_servers
            .values()
            .map(|r| (r.slot, r.server))
            .collect();
        b.service(slot, &entry.service, &reals)
            .map_err(|e| format!("service {:?}: {e}", entry.service.key))?;
    }
    for l in cfg.laddrs() {
        b.local_addr(LocalAddr { addr: l.addr });
    }
    for (i, p) in fixed.ports.iter().enumerate() {
        let addrs: Vec<IpAddr> = p.addresses.iter().map(|a| a.addr).collect();
        b.port(i as u16, &addrs, p.mtu);
    }
    let fwd = b.build();

    let mut rb = RouteTable::builder();
    for (i, p) in fixed.ports.iter().enumerate() {
        for a in &p.addresses {
            rb.address(i as u16, Addr::from(a.addr), a.prefix);
        }
    }
    for r in &fixed.routes {
        rb.route(StaticRoute::via(
            Addr::from(r.prefix.addr),
            r.prefix.prefix,
            Addr::from(r.via),
        ));
    }
    let routes = rb.build().map_err(|e| e.to_string())?;

    // A VIP or local address is answered and announced on the port whose connected subnet holds
    // it; one on no connected subnet is routed to the director by an upstream router and needs
    // no ARP at all.
    let mut extra: Vec<Vec<(IpAddr, u8)>> = vec![Vec::new(); fixed.ports.len()];
    let vips = cfg.services().map(|s| s.service.key.vip);
    let laddrs = cfg.laddrs().map(|l| l.addr);
    for ip in vips.chain(laddrs) {
        let a = Addr::from(ip);
        let Some(port) = connected_port(fixed, &ip) else {
            continue;
        };
        if !extra[port].iter().any(|(e, _)| Addr::from(*e) == a) {
            extra[port].push((ip, if ip.is_ipv4() { 32 } else { 128 }));
        }
    }
    let hosts = fixed
        .ports
        .iter()
        .zip(extra)
        .map(|(p, extra)| {
            HostIface::new(
                p.mac,
                p.addresses.iter().map(|a| (a.addr, a.prefix)).chain(extra),
            )
        })
        .collect();
    Ok(Published {
        fwd,
        routes,
        hosts,
        macs: fixed.ports.iter().map(|p| p.mac).collect(),
    })
}

/// The port whose connected subnet contains `ip`.
fn connected_port(fixed: &Fixed, ip: &IpAddr) -> Option<usize> {
    fixed.ports.iter().position(|p| {
        p.addresses
            .iter()
            .any(|a| same_subnet(&a.addr, ip, a.prefix))
    })
}

fn same_subnet(a: &IpAddr, b: &IpAddr, prefix: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(x), IpAddr::V4(y)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(*x) & mask == u32::from(*y) & mask
        }
        (IpAddr::V6(x), IpAddr::V6(y)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(*x) & mask == u128::from(*y) & mask
        }
        _ => false,
    }
}

/// The published value and the workers' acknowledgements.
pub struct Shared {
    /// What workers forward by.
    pub current: ArcSwap<Published>,
    /// Per worker: the generation it has installed.
    pub acks: Vec<AtomicU64>,
}

impl Shared {
    /// A shared cell holding `first`, for `workers` workers.
    pub fn new(first: Published, workers: usize) -> Shared {
        Shared {
            current: ArcSwap::from_pointee(first),
            acks: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Publishes `p` and waits until every worker runs it (or `timeout` passes); returns how long
    /// that took, or `None` on timeout.
    pub fn publish(&self, p: Published, timeout: Duration) -> Option<Duration> {
        let gen = p.generation();
        let start = Instant::now();
        self.current.store(std::sync::Arc::new(p));
        loop {
            if self.acks.iter().all(|a| a.load(Ordering::Acquire) >= gen) {
                return Some(start.elapsed());
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_micros(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::flow::Proto;

    fn key(port: u16) -> ServiceKey {
        ServiceKey {
            proto: Proto::Tcp,
            vip: "192.0.2.100".parse().unwrap(),
            port,
        }
    }

    #[test]
    fn test_service_slots_are_stable_and_reused() {
        let mut s = ServiceSlots::default();
        assert_eq!(s.assign([key(80), key(443)].iter()), vec![0, 1]);
        assert_eq!(s.assign([key(80), key(443)].iter()), Vec::<u32>::new());
        assert_eq!(s.assign([key(443)].iter()), Vec::<u32>::new());
        assert_eq!(s.get(&key(443)), Some(1));
        assert_eq!(s.assign([key(443), key(8080)].iter()), vec![0]);
        assert_eq!(s.get(&key(8080)), Some(0));
    }

    #[test]
    fn test_same_subnet() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(same_subnet(&a, &"192.0.2.200".parse().unwrap(), 24));
        assert!(!same_subnet(&a, &"192.0.3.1".parse().unwrap(), 24));
        assert!(same_subnet(&a, &"10.0.0.1".parse().unwrap(), 0));
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(same_subnet(&b, &"2001:db8::ff".parse().unwrap(), 64));
        assert!(!same_subnet(&a, &b, 0));
    }
}
