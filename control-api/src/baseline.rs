//! Zero points for `ipvsadm -Z`: counters are zeroed by remembering them, never by writing them.
//!
//! The data plane's counters are per-core, single-writer: the control plane may only read them.
//! So, as the kernel does since it moved to per-CPU counters (`ustats0`), zeroing records the
//! current values of a service and its real servers as their zero point, and every statistics
//! read reports `value - zero point` (saturating). The raw totals stay monotonic for `/metrics`.
//!
//! A zero point belongs to one object: the [`Store`](crate::store::Store) calls
//! [`Baselines::retain`] after every change, so a service or real server that is deleted (or a
//! real server whose counter slot changed) loses its zero point, and one re-created under the same
//! key starts from the data plane's fresh counters.

use std::collections::HashMap;

use dataplane::model::{RealServerKey, ServiceKey};
use dataplane::sched::DestId;

use crate::config::Config;
use crate::dataplane::{Counters, StatsSnapshot};

/// The zero points of the services and real servers zeroed so far.
#[derive(Debug, Default)]
pub struct Baselines {
    services: HashMap<ServiceKey, Counters>,
    reals: HashMap<(ServiceKey, RealServerKey), (DestId, Counters)>,
}

impl Baselines {
    /// Takes `snap`'s raw counters as the zero point of one configured service and its real
    /// servers, or of every configured service when `only` is `None`.
    pub fn zero(&mut self, cfg: &Config, snap: &StatsSnapshot, only: Option<&ServiceKey>) {
        for entry in cfg.services() {
            let key = entry.service.key;
            if only.is_some_and(|k| *k != key) {
                continue;
            }
            let s = snap.service(&key);
            self.services
                .insert(key, s.map(|s| s.counters).unwrap_or_default());
            for (rk, r) in &entry.real_servers {
                let now = s
                    .and_then(|s| s.real_server(rk))
                    .map(|r| r.counters)
                    .unwrap_or_default();
                self.reals.insert((key, *rk), (r.slot, now));
            }
        }
    }

    /// Forgets the zero points of objects `cfg` no longer has (or whose counter slot changed).
    pub fn retain(&mut self, cfg: &Config) {
        self.services.retain(|k, _| cfg.service(k).is_some());
        self.reals.retain(|(sk, rk), (slot, _)| {
            cfg.service(sk)
                .and_then(|s| s.real_servers.get(rk))
                .is_some_and(|r| r.slot == *slot)
        });
    }

    /// Subtracts the zero points from a raw snapshot, in place.
    pub fn apply(&self, snap: &mut StatsSnapshot) {
        for s in &mut snap.services {
            if let Some(b) = self.services.get(&s.key) {
                s.counters = s.counters.since(b);
            }
            for r in &mut s.real_servers {
                if let Some((_, b)) = self.reals.get(&(s.key, r.key)) {
                    r.counters = r.counters.since(b);
                }
            }
        }
    }

    /// True when no zero point is recorded.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.reals.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{RealServerStats, ServiceStats};
    use dataplane::flow::Proto;
    use dataplane::model::{FwdMode, RealServer, SchedulerKind, Service, ServiceFlags};

    fn skey(port: u16) -> ServiceKey {
        ServiceKey {
            proto: Proto::Tcp,
            vip: "192.0.2.1".parse().unwrap(),
            port,
        }
    }

    fn rkey() -> RealServerKey {
        RealServerKey {
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        }
    }

    fn svc(port: u16) -> Service {
        Service {
            key: skey(port),
            scheduler: SchedulerKind::Rr,
            persistence: None,
            flags: ServiceFlags::default(),
        }
    }

    fn rs(port: u16) -> RealServer {
        RealServer {
            key: RealServerKey { port, ..rkey() },
            weight: 1,
            mode: FwdMode::Nat,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }

    fn cfg(ports: &[u16]) -> Config {
        let mut c = Config::default();
        for &p in ports {
            c.add_service(svc(p), vec![rs(p)]).unwrap();
        }
        c
    }

    fn counters(n: u64) -> Counters {
        Counters {
            conns: n,
            inpkts: 10 * n,
            outpkts: 9 * n,
            inbytes: 1000 * n,
            outbytes: 900 * n,
        }
    }

    fn snap(ports: &[(u16, u64)]) -> StatsSnapshot {
        StatsSnapshot {
            services: ports
                .iter()
                .map(|&(p, n)| ServiceStats {
                    key: skey(p),
                    counters: counters(n),
                    real_servers: vec![RealServerStats {
                        key: RealServerKey { port: p, ..rkey() },
                        counters: counters(n),
                        active_conns: 1,
                        inactive_conns: 2,
                    }],
                })
                .collect(),
            ..StatsSnapshot::default()
        }
    }

    #[test]
    fn test_zero_one_then_traffic_counts_from_zero() {
        let c = cfg(&[80, 81]);
        let mut b = Baselines::default();
        b.zero(&c, &snap(&[(80, 5), (81, 7)]), Some(&skey(80)));
        let mut s = snap(&[(80, 8), (81, 9)]);
        b.apply(&mut s);
        assert_eq!(s.services[0].counters, counters(3));
        assert_eq!(s.services[0].real_servers[0].counters, counters(3));
        assert_eq!(s.services[0].real_servers[0].active_conns, 1, "gauges stay");
        assert_eq!(
            s.services[1].counters,
            counters(9),
            "other service untouched"
        );
        assert_eq!(s.services[1].real_servers[0].counters, counters(9));
    }

    #[test]
    fn test_zero_all_and_saturating() {
        let c = cfg(&[80, 81]);
        let mut b = Baselines::default();
        b.zero(&c, &snap(&[(80, 5), (81, 7)]), None);
        // A snapshot older than the zero point (or a counter reset) reads 0, never wraps.
        let mut s = snap(&[(80, 4), (81, 7)]);
        b.apply(&mut s);
        assert_eq!(s.services[0].counters, Counters::default());
        assert_eq!(s.services[1].counters, Counters::default());
        assert_eq!(s.services[1].real_servers[0].counters, Counters::default());
    }

    #[test]
    fn test_deleted_objects_lose_their_zero_point() {
        let mut c = cfg(&[80, 81]);
        let mut b = Baselines::default();
        b.zero(&c, &snap(&[(80, 5), (81, 7)]), None);
        c.delete_service(&skey(80)).unwrap();
        b.retain(&c);
        // Re-created: the data plane counts from 0 again, and so do we.
        c.add_service(svc(80), vec![]).unwrap();
        b.retain(&c);
        let mut s = snap(&[(80, 2), (81, 8)]);
        b.apply(&mut s);
        assert_eq!(s.services[0].counters, counters(2));
        assert_eq!(s.services[0].real_servers[0].counters, counters(2));
        assert_eq!(s.services[1].counters, counters(1));
        // A real server removed and added back loses its zero point too.
        let rk = RealServerKey { port: 81, ..rkey() };
        c.delete_real_server(&skey(81), &rk).unwrap();
        b.retain(&c);
        c.add_real_server(&skey(81), rs(81)).unwrap();
        b.retain(&c);
        let mut s = snap(&[(81, 8)]);
        b.apply(&mut s);
        assert_eq!(s.services[0].counters, counters(1));
        assert_eq!(s.services[0].real_servers[0].counters, counters(8));
        c.clear_services();
        b.retain(&c);
        assert!(b.is_empty());
    }
}
