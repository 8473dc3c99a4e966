//! The desired state of the load balancer and the only code that changes it.
//!
//! A [`Config`] is an immutable value once published: every change is made on a copy by one of
//! the `Config` methods, which validate first and change nothing when they fail. Services and
//! real servers are kept sorted the way ipvsadm sorts them (protocol, address, port), so listings
//! and saved files are deterministic.
//!
//! Each real server holds a [`DestId`] slot, unique across all services. A server keeps its slot
//! while it exists (edits do not move it), so the data plane's per-core counters indexed by slot
//! survive configuration changes; a freed slot is reused by the next server added, unless the
//! data plane still has connections on it ([`Config::set_busy_slots`]): a removed server's
//! connections live on until they end, and a new server sharing their slot would share their
//! counters, their ActiveConn/InActConn and the load the lc/wlc schedulers weigh.

use std::collections::{BTreeMap, BTreeSet};

use dataplane::model::{LocalAddr, RealServer, RealServerKey, Service, ServiceKey, Timeouts};
use dataplane::sched::DestId;

use crate::validate::{self, ConfigError};

/// A real server with its stable counter slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerEntry {
    /// The real server's configuration.
    pub server: RealServer,
    /// Its slot in the data plane's per-core counter arrays.
    pub slot: DestId,
}

/// A virtual service with its real servers, sorted by address and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The service's configuration.
    pub service: Service,
    /// Its real servers.
    pub real_servers: BTreeMap<RealServerKey, RealServerEntry>,
}

/// The complete desired configuration published to the data plane.
#[derive(Debug, Clone, Default)]
pub struct Config {
    services: BTreeMap<ServiceKey, ServiceEntry>,
    laddrs: BTreeSet<LocalAddr>,
    timeouts: Timeouts,
    /// Slots the data plane still has connections on: not part of the configuration (neither
    /// compared nor saved), only avoided when a slot is allocated.
    busy: BTreeSet<u32>,
}

impl PartialEq for Config {
    fn eq(&self, other: &Config) -> bool {
        (&self.services, &self.laddrs, &self.timeouts)
            == (&other.services, &other.laddrs, &other.timeouts)
    }
}

impl Eq for Config {}

impl Config {
    /// Services in ipvsadm's sort order.
    pub fn services(&self) -> impl Iterator<Item = &ServiceEntry> {
        self.services.values()
    }

    /// One service.
    pub fn service(&self, key: &ServiceKey) -> Option<&ServiceEntry> {
        self.services.get(key)
    }

    /// Number of services.
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// FullNAT local addresses, sorted.
    pub fn laddrs(&self) -> impl Iterator<Item = &LocalAddr> {
        self.laddrs.iter()
    }

    /// Protocol timeouts.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// One past the highest slot in use: the length per-core counter arrays need.
    pub fn slot_bound(&self) -> u32 {
        self.all_reals().map(|r| r.slot.0 + 1).max().unwrap_or(0)
    }

    fn all_reals(&self) -> impl Iterator<Item = &RealServerEntry> {
        self.services.values().flat_map(|s| s.real_servers.values())
    }

    /// Tells the slot allocator which slots the data plane still has connections on (the
    /// store asks the data plane before every change).
    pub fn set_busy_slots(&mut self, busy: BTreeSet<u32>) {
        self.busy = busy;
    }

    /// The lowest slot neither in use nor busy.
    fn alloc_slot(&self) -> DestId {
        let used: BTreeSet<u32> = self.all_reals().map(|r| r.slot.0).collect();
        let mut slot = 0;
        while used.contains(&slot) || self.busy.contains(&slot) {
            slot += 1;
        }
        DestId(slot)
    }

    /// Adds a service and its real servers (`ipvsadm -A`).
    pub fn add_service(
        &mut self,
        service: Service,
        reals: Vec<RealServer>,
    ) -> Result<(), ConfigError> {
        let service = validate::service(service)?;
        if self.services.contains_key(&service.key) {
            return Err(ConfigError::Exists(format!(
                "service {}",
                validate::service_name(&service.key)
            )));
        }
        let key = service.key;
        let mut next = self.clone();
        next.services.insert(
            key,
            ServiceEntry {
                service,
                real_servers: BTreeMap::new(),
            },
        );
        for (i, rs) in reals.into_iter().enumerate() {
            next.add_real_server(&key, rs)
                .map_err(|e| e.in_field(&format!("real_servers[{i}]")))?;
        }
        *self = next;
        Ok(())
    }

    /// Replaces a service's scheduler, persistence and flags (`ipvsadm -E`); its real servers stay.
    pub fn edit_service(&mut self, service: Service) -> Result<(), ConfigError> {
        let service = validate::service(service)?;
        let entry = self.service_mut(&service.key)?;
        validate::service_with_reals(&service, entry.real_servers.values().map(|r| &r.server))?;
        entry.service = service;
        Ok(())
    }

    /// Removes a service and its real servers (`ipvsadm -D`).
    pub fn delete_service(&mut self, key: &ServiceKey) -> Result<(), ConfigError> {
        self.services
            .remove(key)
            .map(|_| ())
            .ok_or_else(|| not_found_service(key))
    }

    /// Removes every service (`ipvsadm -C`); local addresses and timeouts stay.
    pub fn clear_services(&mut self) {
        self.services.clear();
    }

    /// Adds a real server to a service (`ipvsadm -a`); returns its slot.
    pub fn add_real_server(
        &mut self,
        key: &ServiceKey,
        rs: RealServer,
    ) -> Result<DestId, ConfigError> {
        let svc = self
            .services
            .get(key)
            .ok_or_else(|| not_found_service(key))?;
        let rs = validate::real_server(&svc.service, rs)?;
        if svc.real_servers.contains_key(&rs.key) {
            return Err(ConfigError::Exists(format!(
                "real server {} in service {}",
                validate::addr_port(rs.key.addr, rs.key.port),
                validate::service_name(key)
            )));
        }
        let slot = self.alloc_slot();
        self.service_mut(key)?
            .real_servers
            .insert(rs.key, RealServerEntry { server: rs, slot });
        Ok(slot)
    }

    /// Replaces a real server's weight, mode and thresholds (`ipvsadm -e`); its slot stays.
    pub fn edit_real_server(
        &mut self,
        key: &ServiceKey,
        rs: RealServer,
    ) -> Result<(), ConfigError> {
        let svc = self.service_mut(key)?;
        let rs = validate::real_server(&svc.service, rs)?;
        let entry = svc
            .real_servers
            .get_mut(&rs.key)
            .ok_or_else(|| not_found_real(key, &rs.key))?;
        entry.server = rs;
        Ok(())
    }

    /// Removes a real server (`ipvsadm -d`), freeing its slot.
    pub fn delete_real_server(
        &mut self,
        key: &ServiceKey,
        rs: &RealServerKey,
    ) -> Result<(), ConfigError> {
        self.service_mut(key)?
            .real_servers
            .remove(rs)
            .map(|_| ())
            .ok_or_else(|| not_found_real(key, rs))
    }

    /// Adds a FullNAT local address.
    pub fn add_laddr(&mut self, laddr: LocalAddr) -> Result<(), ConfigError> {
        let laddr = validate::laddr(laddr)?;
        if !self.laddrs.insert(laddr) {
            return Err(ConfigError::Exists(format!("local address {}", laddr.addr)));
        }
        Ok(())
    }

    /// Removes a FullNAT local address.
    pub fn delete_laddr(&mut self, laddr: &LocalAddr) -> Result<(), ConfigError> {
        let canonical = LocalAddr {
            addr: laddr.addr.to_canonical(),
        };
        if !self.laddrs.remove(&canonical) {
            return Err(ConfigError::NotFound(format!(
                "local address {}",
                canonical.addr
            )));
        }
        Ok(())
    }

    /// Replaces the protocol timeouts (`ipvsadm --set`).
    pub fn set_timeouts(&mut self, t: Timeouts) -> Result<(), ConfigError> {
        self.timeouts = validate::timeouts(t)?;
        Ok(())
    }

    fn service_mut(&mut self, key: &ServiceKey) -> Result<&mut ServiceEntry, ConfigError> {
        self.services
            .get_mut(key)
            .ok_or_else(|| not_found_service(key))
    }
}

fn not_found_service(key: &ServiceKey) -> ConfigError {
    ConfigError::NotFound(format!("service {}", validate::service_name(key)))
}

fn not_found_real(key: &ServiceKey, rs: &RealServerKey) -> ConfigError {
    ConfigError::NotFound(format!(
        "real server {} in service {}",
        validate::addr_port(rs.addr, rs.port),
        validate::service_name(key)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::flow::Proto;
    use dataplane::model::{FwdMode, SchedulerKind, ServiceFlags};

    fn svc(vip: &str, port: u16) -> Service {
        Service {
            key: ServiceKey {
                proto: Proto::Tcp,
                vip: vip.parse().unwrap(),
                port,
            },
            scheduler: SchedulerKind::Wlc,
            persistence: None,
            flags: ServiceFlags::default(),
        }
    }

    fn rs(addr: &str, port: u16, weight: u32) -> RealServer {
        RealServer {
            key: RealServerKey {
                addr: addr.parse().unwrap(),
                port,
            },
            weight,
            mode: FwdMode::Nat,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }

    #[test]
    fn test_slots_stable_and_reused() {
        let mut c = Config::default();
        let a = svc("192.0.2.1", 80);
        c.add_service(a.clone(), vec![]).unwrap();
        let k = a.key;
        assert_eq!(
            c.add_real_server(&k, rs("10.0.0.1", 80, 1)).unwrap(),
            DestId(0)
        );
        assert_eq!(
            c.add_real_server(&k, rs("10.0.0.2", 80, 1)).unwrap(),
            DestId(1)
        );
        assert_eq!(
            c.add_real_server(&k, rs("10.0.0.3", 80, 1)).unwrap(),
            DestId(2)
        );
        c.edit_real_server(&k, rs("10.0.0.2", 80, 7)).unwrap();
        let e = &c.service(&k).unwrap().real_servers;
        let key2 = rs("10.0.0.2", 80, 0).key;
        assert_eq!(e[&key2].slot, DestId(1));
        assert_eq!(e[&key2].server.weight, 7);
        c.delete_real_server(&k, &rs("10.0.0.1", 80, 0).key)
            .unwrap();
        assert_eq!(
            c.add_real_server(&k, rs("10.0.0.9", 80, 1)).unwrap(),
            DestId(0)
        );
        assert_eq!(c.slot_bound(), 3);
    }

    #[test]
    fn test_busy_slots_are_not_handed_out() {
        let mut c = Config::default();
        let a = svc("192.0.2.1", 80);
        let k = a.key;
        c.add_service(a, vec![rs("10.0.0.1", 80, 1), rs("10.0.0.2", 80, 1)])
            .unwrap();
        let before = c.clone();
        // Server 1 leaves while the data plane still has its connections on slot 0 (and slot
        // 2 is held by some older server's): the next server gets slot 3.
        c.delete_real_server(&k, &rs("10.0.0.1", 80, 0).key)
            .unwrap();
        c.set_busy_slots([0, 2].into());
        assert_eq!(
            c.add_real_server(&k, rs("10.0.0.9", 80, 1)).unwrap(),
            DestId(3)
        );
        // Once those connections are gone, slot 0 is handed out again.
        c.set_busy_slots([2].into());
        assert_eq!(
            c.add_real_server(&k, rs("10.0.0.8", 80, 1)).unwrap(),
            DestId(0)
        );
        // The busy set is no part of the configuration.
        let mut same = before.clone();
        same.set_busy_slots([5].into());
        assert_eq!(same, before);
    }

    #[test]
    fn test_failed_add_changes_nothing() {
        let mut c = Config::default();
        let before = c.clone();
        let err = c
            .add_service(
                svc("192.0.2.1", 80),
                vec![rs("10.0.0.1", 80, 1), rs("10.0.0.2", 80, 70000)],
            )
            .unwrap_err();
        assert_eq!(c, before);
        assert!(
            err.to_string().starts_with("real_servers[1].weight:"),
            "{err}"
        );
        c.add_service(svc("192.0.2.1", 80), vec![]).unwrap();
        let err = c.add_service(svc("192.0.2.1", 80), vec![]).unwrap_err();
        assert!(matches!(err, ConfigError::Exists(_)));
        assert_eq!(c.service_count(), 1);
    }

    #[test]
    fn test_one_packet_and_nat_refused_both_ways() {
        let mut u = svc("192.0.2.1", 53);
        u.key.proto = Proto::Udp;
        let mut ops = u.clone();
        ops.flags.one_packet = true;
        let field = |e: ConfigError| match e {
            ConfigError::Invalid { field, .. } => field,
            other => panic!("not invalid: {other}"),
        };
        let mut c = Config::default();
        // A NAT real server given with a one-packet service.
        let e = c
            .add_service(ops.clone(), vec![rs("10.0.0.1", 5353, 1)])
            .unwrap_err();
        assert_eq!(field(e), "real_servers[0].mode");
        assert_eq!(c, Config::default());
        // The flag set on a service that has a NAT real server: refused, nothing changes.
        c.add_service(u.clone(), vec![rs("10.0.0.1", 5353, 1)])
            .unwrap();
        let before = c.clone();
        assert_eq!(
            field(c.edit_service(ops.clone()).unwrap_err()),
            "flags.one_packet"
        );
        assert_eq!(c, before);
        // Once the NAT server is gone the flag is accepted; a NAT server added later is refused,
        // and so is an edit turning a DR server into NAT.
        c.delete_real_server(&u.key, &rs("10.0.0.1", 5353, 0).key)
            .unwrap();
        let mut dr = rs("10.0.0.2", 53, 1);
        dr.mode = FwdMode::Dr;
        c.add_real_server(&u.key, dr).unwrap();
        c.edit_service(ops).unwrap();
        let e = c
            .add_real_server(&u.key, rs("10.0.0.3", 5353, 1))
            .unwrap_err();
        assert_eq!(field(e), "mode");
        dr.mode = FwdMode::FullNat;
        assert_eq!(field(c.edit_real_server(&u.key, dr).unwrap_err()), "mode");
    }

    #[test]
    fn test_sorted_like_ipvsadm() {
        let mut c = Config::default();
        for (vip, port) in [("192.0.2.2", 80), ("192.0.2.1", 443), ("192.0.2.1", 80)] {
            c.add_service(svc(vip, port), vec![]).unwrap();
        }
        let order: Vec<String> = c
            .services()
            .map(|s| validate::service_name(&s.service.key))
            .collect();
        assert_eq!(
            order,
            ["tcp:192.0.2.1:80", "tcp:192.0.2.1:443", "tcp:192.0.2.2:80"]
        );
    }

    #[test]
    fn test_laddrs_canonical() {
        let mut c = Config::default();
        c.add_laddr(LocalAddr {
            addr: "::ffff:198.51.100.1".parse().unwrap(),
        })
        .unwrap();
        let dup = c.add_laddr(LocalAddr {
            addr: "198.51.100.1".parse().unwrap(),
        });
        assert!(matches!(dup, Err(ConfigError::Exists(_))));
        assert_eq!(c.laddrs().count(), 1);
        c.delete_laddr(&LocalAddr {
            addr: "198.51.100.1".parse().unwrap(),
        })
        .unwrap();
        assert_eq!(c.laddrs().count(), 0);
    }
}
