//! Rate estimation like the kernel's IPVS estimator (`ip_vs_est.c`), for `ipvsadm --rate`.
//!
//! Every [`INTERVAL`] (2 s) the counters are sampled and each rate is smoothed with an
//! exponentially weighted moving average of weight 1/4, in the kernel's fixed point: connection
//! and packet rates are kept scaled by 2^10, byte rates by 2^5, and rounded when read. The same
//! counter history therefore shows the same CPS/PPS/BPS as IPVS would.
//!
//! The estimator samples the raw, monotonic totals, never the zeroed values of `ipvsadm -Z`, so
//! zeroing cannot make it see counters go backwards. Instead [`Estimator::zero`] does what the
//! kernel's `ip_vs_zero_estimator` does: the smoothed rates restart at 0 and the next delta is
//! taken from the counters at the moment of zeroing.

use std::collections::HashMap;
use std::time::Duration;

use dataplane::model::{RealServerKey, ServiceKey};
use serde::{Deserialize, Serialize};

use crate::dataplane::{Counters, StatsSnapshot};

/// Time between two samples.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// Smoothed rates per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Packets per second, client → real server.
    pub inpps: u64,
    /// Packets per second, real server → client.
    pub outpps: u64,
    /// Bytes per second, client → real server.
    pub inbps: u64,
    /// Bytes per second, real server → client.
    pub outbps: u64,
}

#[derive(Debug, Clone, Copy)]
struct Est {
    last: Counters,
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
}

impl Est {
    fn new(start: Counters) -> Est {
        Est {
            last: start,
            cps: 0,
            inpps: 0,
            outpps: 0,
            inbps: 0,
            outbps: 0,
        }
    }

    fn sample(&mut self, now: Counters) {
        // Over a 2 s interval: delta << 9 is (delta / 2 s) scaled by 2^10; << 4 scales by 2^5.
        fn step(avg: &mut i64, new: u64, old: u64, shift: u32) {
            // Capped so the fixed-point arithmetic cannot overflow on absurd deltas.
            let rate = (new.saturating_sub(old).min(1 << 50) as i64) << shift;
            *avg += (rate - *avg) >> 2;
        }
        step(&mut self.cps, now.conns, self.last.conns, 9);
        step(&mut self.inpps, now.inpkts, self.last.inpkts, 9);
        step(&mut self.outpps, now.outpkts, self.last.outpkts, 9);
        step(&mut self.inbps, now.inbytes, self.last.inbytes, 4);
        step(&mut self.outbps, now.outbytes, self.last.outbytes, 4);
        self.last = now;
    }

    fn rates(&self) -> Rates {
        let read = |avg: i64, round: i64, shift: u32| ((avg + round) >> shift).max(0) as u64;
        Rates {
            cps: read(self.cps, 0x1ff, 10),
            inpps: read(self.inpps, 0x1ff, 10),
            outpps: read(self.outpps, 0x1ff, 10),
            inbps: read(self.inbps, 0xf, 5),
            outbps: read(self.outbps, 0xf, 5),
        }
    }
}

/// Rate estimates of every service and real server seen in the samples.
#[derive(Debug, Default)]
pub struct Estimator {
    services: HashMap<ServiceKey, Est>,
    reals: HashMap<(ServiceKey, RealServerKey), Est>,
}

fn feed<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Est>, key: K, now: Counters) {
    match map.get_mut(&key) {
        // Counters that went backwards belong to a re-created object: start over.
        Some(e) if now.conns >= e.last.conns && now.inpkts >= e.last.inpkts => e.sample(now),
        _ => {
            map.insert(key, Est::new(now));
        }
    }
}

impl Estimator {
    /// Feeds one sample taken [`INTERVAL`] after the previous one; objects absent from it are
    /// forgotten, new ones start from their current counters.
    pub fn sample(&mut self, snap: &StatsSnapshot) {
        let mut services = HashMap::with_capacity(snap.services.len());
        let mut reals = HashMap::new();
        for s in &snap.services {
            if let Some(e) = self.services.remove(&s.key) {
                services.insert(s.key, e);
            }
            feed(&mut services, s.key, s.counters);
            for r in &s.real_servers {
                let k = (s.key, r.key);
                if let Some(e) = self.reals.remove(&k) {
                    reals.insert(k, e);
                }
                feed(&mut reals, k, r.counters);
            }
        }
        self.services = services;
        self.reals = reals;
    }

    /// Restarts the estimates of one service and its real servers (every service when `only` is
    /// `None`) from the raw counters in `snap`, with all rates 0 (`ipvsadm -Z`).
    pub fn zero(&mut self, snap: &StatsSnapshot, only: Option<&ServiceKey>) {
        for s in &snap.services {
            if only.is_some_and(|k| *k != s.key) {
                continue;
            }
            self.services.insert(s.key, Est::new(s.counters));
            for r in &s.real_servers {
                self.reals.insert((s.key, r.key), Est::new(r.counters));
            }
        }
    }

    /// The rates of a service (zero when unknown).
    pub fn service(&self, key: &ServiceKey) -> Rates {
        self.services.get(key).map(Est::rates).unwrap_or_default()
    }

    /// The rates of a real server of a service (zero when unknown).
    pub fn real_server(&self, svc: &ServiceKey, rs: &RealServerKey) -> Rates {
        self.reals
            .get(&(*svc, *rs))
            .map(Est::rates)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{RealServerStats, ServiceStats};
    use dataplane::flow::Proto;

    fn snap(conns: u64, pkts: u64, bytes: u64) -> StatsSnapshot {
        let c = Counters {
            conns,
            inpkts: pkts,
            outpkts: pkts / 2,
            inbytes: bytes,
            outbytes: bytes * 3,
        };
        StatsSnapshot {
            services: vec![ServiceStats {
                key: ServiceKey {
                    proto: Proto::Tcp,
                    vip: "192.0.2.1".parse().unwrap(),
                    port: 80,
                },
                counters: c,
                real_servers: vec![RealServerStats {
                    key: RealServerKey {
                        addr: "10.0.0.1".parse().unwrap(),
                        port: 80,
                    },
                    counters: c,
                    active_conns: 0,
                    inactive_conns: 0,
                }],
            }],
            ..StatsSnapshot::default()
        }
    }

    #[test]
    fn test_converges_to_steady_rate() {
        // 100 conns/s, 1000 pkt/s, 100000 B/s: after enough samples the EWMA reaches them.
        let mut est = Estimator::default();
        for i in 0..60u64 {
            est.sample(&snap(200 * i, 2000 * i, 200_000 * i));
        }
        let s = &snap(0, 0, 0).services[0];
        let r = est.service(&s.key);
        assert_eq!(
            r,
            Rates {
                cps: 100,
                inpps: 1000,
                outpps: 500,
                inbps: 100_000,
                outbps: 300_000
            }
        );
        assert_eq!(est.real_server(&s.key, &s.real_servers[0].key), r);
    }

    #[test]
    fn test_first_steps_match_kernel_fixed_point() {
        let mut est = Estimator::default();
        est.sample(&snap(0, 0, 0));
        est.sample(&snap(200, 0, 0));
        let key = snap(0, 0, 0).services[0].key;
        // avg = (200 << 9) >> 2 = 25600; (25600 + 511) >> 10 = 25.
        assert_eq!(est.service(&key).cps, 25);
        est.sample(&snap(400, 0, 0));
        // avg = 25600 + (102400 - 25600) >> 2 = 44800; (44800 + 511) >> 10 = 44.
        assert_eq!(est.service(&key).cps, 44);
        est.sample(&StatsSnapshot::default());
        assert_eq!(est.service(&key).cps, 0, "a removed service is forgotten");
    }

    #[test]
    fn test_zero_restarts_rates_from_current_counters() {
        let mut est = Estimator::default();
        for i in 0..60u64 {
            est.sample(&snap(200 * i, 2000 * i, 200_000 * i));
        }
        let s = snap(0, 0, 0).services[0].clone();
        let (key, rk) = (s.key, s.real_servers[0].key);
        assert_eq!(est.service(&key).cps, 100);
        // Zeroing another service changes nothing here.
        let other = ServiceKey { port: 81, ..key };
        est.zero(&snap(200 * 59, 2000 * 59, 200_000 * 59), Some(&other));
        assert_eq!(est.service(&key).cps, 100);
        est.zero(&snap(200 * 59, 2000 * 59, 200_000 * 59), Some(&key));
        assert_eq!(est.service(&key), Rates::default());
        assert_eq!(est.real_server(&key, &rk), Rates::default());
        // The next sample measures from the zeroing point: one step of the EWMA, as from new.
        est.sample(&snap(200 * 60, 2000 * 60, 200_000 * 60));
        assert_eq!(est.service(&key).cps, 25);
        assert_eq!(est.service(&key).inpps, 250);
        assert_eq!(est.real_server(&key, &rk).cps, 25);
        // Zeroing everything with counters that went backwards (an old snapshot) cannot panic
        // and never shows a negative rate.
        est.zero(&snap(200 * 70, 0, 0), None);
        est.sample(&snap(200 * 60, 2000 * 60, 200_000 * 60));
        assert_eq!(est.service(&key), Rates::default());
    }
}
