//! The daemon's side of the control plane: [`control_api::Dataplane`] over the workers.
//!
//! `apply` compiles the configuration and publishes it, returning once every worker runs it;
//! `stats` sums the per-core counters (minus the value a reused slot had when it was assigned,
//! so a re-created service or real server starts from zero, as in IPVS); `connections` asks each
//! worker for its entries through its inbox.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use control_api::{
    ConnFilter, ConnPage, ConnTableStats, Counters, Dataplane, PortStats, RealServerStats,
    ServiceStats, StatsSnapshot, WorkerStats,
};
use dataplane::fwd::{DropReason, FwdStats, TrafficCounters};
use dataplane::neigh::NeighStats;
use dpdk_bindings::Port;
use log::{error, info, warn};

use crate::mailbox::{Mailbox, Request};
use crate::state::{compile, Fixed, ServiceSlots, Shared};
use crate::worker::{WorkerCounters, WorkerDrop};

/// How long `apply` waits for every worker to run a new configuration.
const APPLY_TIMEOUT: Duration = Duration::from_millis(500);

/// What the control plane reads of one worker.
pub struct WorkerView {
    /// Forwarding counters.
    pub fwd: Arc<FwdStats>,
    /// Worker counters and gauges.
    pub counters: Arc<WorkerCounters>,
    /// The worker's neighbour-cache counters.
    pub neigh: Arc<NeighStats>,
}

#[derive(Default)]
struct Slots {
    services: ServiceSlots,
    /// Counter values at the moment a slot was (re)assigned.
    service_base: HashMap<u32, Counters>,
    dest_base: HashMap<u32, Counters>,
    dests: HashSet<u32>,
}

/// The data plane as the control plane sees it.
pub struct DaemonDataplane {
    shared: Arc<Shared>,
    fixed: Fixed,
    workers: Vec<WorkerView>,
    mailboxes: Arc<[Mailbox]>,
    ports: Vec<Arc<Port>>,
    capacity: u64,
    slots: Mutex<Slots>,
}

impl DaemonDataplane {
    /// The control plane's view of running workers.
    pub fn new(
        shared: Arc<Shared>,
        fixed: Fixed,
        workers: Vec<WorkerView>,
        mailboxes: Arc<[Mailbox]>,
        ports: Vec<Arc<Port>>,
        capacity: u64,
    ) -> DaemonDataplane {
        DaemonDataplane {
            shared,
            fixed,
            workers,
            mailboxes,
            ports,
            capacity,
            slots: Mutex::new(Slots::default()),
        }
    }

    /// What the control plane reads of each worker.
    pub fn worker_views(&self) -> &[WorkerView] {
        &self.workers
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sum(&self, pick: impl Fn(&FwdStats) -> Option<&TrafficCounters>) -> Counters {
        let mut c = Counters::default();
        for w in &self.workers {
            if let Some(t) = pick(&w.fwd) {
                c.conns += t.conns.get();
                c.inpkts += t.inpkts();
                c.outpkts += t.outpkts();
                c.inbytes += t.inbytes();
                c.outbytes += t.outbytes();
            }
        }
        c
    }
}

/// `a` since `base`, or `a` itself without a base.
fn minus(a: Counters, base: Option<&Counters>) -> Counters {
    base.map_or(a, |b| a.since(b))
}

impl Dataplane for DaemonDataplane {
    /// Slots of removed servers that some worker still holds connections or templates on,
    /// unless avoiding them all would leave too few slots for the servers configured (then the
    /// data plane's mixed-slot handling takes over, see `dataplane::conn::ConnTable::dest_mixed`).
    fn busy_slots(&self) -> BTreeSet<u32> {
        let configured = self.lock().dests.clone();
        let mut held = BTreeSet::new();
        let mut capacity = usize::MAX;
        for w in &self.workers {
            let slots = &w.counters.held;
            capacity = capacity.min(slots.len());
            for (i, n) in slots.iter().enumerate() {
                if n.load(Ordering::Relaxed) > 0 && !configured.contains(&(i as u32)) {
                    held.insert(i as u32);
                }
            }
        }
        let configured = configured.len();
        if configured + held.len() >= capacity {
            warn!(
                "{} real-server slots still hold connections of removed servers and {configured} \
                 are configured, of {capacity}: a new server may share a slot with them",
                held.len()
            );
            return BTreeSet::new();
        }
        held
    }

    fn apply(&self, cfg: &Arc<control_api::Config>) {
        let mut slots = self.lock();
        let fresh = slots
            .services
            .assign(cfg.services().map(|s| &s.service.key));
        for s in fresh {
            let base = self.sum(|f| f.service(s));
            slots.service_base.insert(s, base);
        }
        let dests: HashSet<u32> = cfg
            .services()
            .flat_map(|s| s.real_servers.values().map(|r| r.slot.0))
            .collect();
        for d in dests.difference(&slots.dests.clone()) {
            let base = self.sum(|f| f.dest(*d));
            slots.dest_base.insert(*d, base);
        }
        slots.dests = dests;
        let published = match compile(cfg, &self.fixed, &slots.services) {
            Ok(p) => p,
            Err(e) => {
                error!("configuration not applied: {e}");
                return;
            }
        };
        let generation = published.generation();
        match self.shared.publish(published, APPLY_TIMEOUT) {
            Some(took) => info!(
                "configuration {generation} in force on all {} workers after {} µs",
                self.workers.len(),
                took.as_micros()
            ),
            None => warn!(
                "not every worker acknowledged configuration {generation} within {APPLY_TIMEOUT:?}"
            ),
        }
    }

    fn stats(&self) -> StatsSnapshot {
        let cfg = self.shared.current.load();
        let slots = self.lock();
        let mut services = Vec::new();
        for s in cfg.fwd.services() {
            let key = dataplane::model::ServiceKey {
                proto: s.proto,
                vip: s.vip.to_ip(),
                port: s.port,
            };
            let counters = minus(
                self.sum(|f| f.service(s.slot)),
                slots.service_base.get(&s.slot),
            );
            let real_servers = s
                .dests
                .iter()
                .map(|d| {
                    let i = d.id.index();
                    let (mut active, mut inactive) = (0u64, 0u64);
                    for w in &self.workers {
                        let load = |v: &[std::sync::atomic::AtomicU32]| {
                            v.get(i)
                                .map(|a| u64::from(a.load(std::sync::atomic::Ordering::Relaxed)))
                                .unwrap_or(0)
                        };
                        active += load(&w.counters.active);
                        inactive += load(&w.counters.inactive);
                    }
                    RealServerStats {
                        key: dataplane::model::RealServerKey {
                            addr: d.addr.to_ip(),
                            port: d.port,
                        },
                        counters: minus(self.sum(|f| f.dest(d.id.0)), slots.dest_base.get(&d.id.0)),
                        active_conns: active,
                        inactive_conns: inactive,
                    }
                })
                .collect();
            services.push(ServiceStats {
                key,
                counters,
                real_servers,
            });
        }
        let workers = self
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let mut drops = std::collections::BTreeMap::new();
                for r in DropReason::ALL {
                    drops.insert(r.name().to_string(), w.fwd.drops(r));
                }
                for r in WorkerDrop::ALL {
                    drops.insert(r.name().to_string(), w.counters.drops[r as usize].get());
                }
                let (f, c, n) = (&w.fwd, &w.counters, &w.neigh);
                WorkerStats {
                    worker: i as u32,
                    rx_packets: c.rx.get(),
                    tx_packets: c.tx.get(),
                    drops,
                    new_connections: f.new_conns.get(),
                    expired_connections: f.expired.get(),
                    reused_connections: f.reused.get(),
                    forwarded_packets: f.forwarded.get(),
                    kernel_packets: f.kernel.get(),
                    icmp_errors_relayed: f.icmp_relayed.get(),
                    frag_needed_sent: f.frag_needed_sent.get(),
                    aliases_sent: f.aliases_sent.get(),
                    aliases_accepted: f.aliases_accepted.get(),
                    aliases_refused: f.aliases_refused.get(),
                    aliases_overflow: f.alias_overflow.get(),
                    aliases_inbox_full: c.alias_inbox_full.get(),
                    host_replies: c.host_replies.get(),
                    steered_out: c.steered_out.get(),
                    steered_in: c.steered_in.get(),
                    reply_races: c.reply_races.get(),
                    to_kernel: c.to_kernel.get(),
                    from_kernel: c.from_kernel.get(),
                    neighbour_requests: c.neigh_requests.get(),
                    neighbour_announcements: c.announcements.get(),
                    neighbour_learned: n.learned.get(),
                    neighbour_failures: n.failures.get(),
                    neighbour_held: n.held.get(),
                    neighbour_hold_drops: n.hold_drops.get(),
                    neighbour_hold_cap_drops: n.hold_cap_drops.get(),
                    neighbour_unresolved_drops: n.unresolved_drops.get(),
                    neighbour_held_packets: n.held_packets.get(),
                    neighbour_entries: n.entries.get(),
                    neighbour_pending_entries: n.pending.get(),
                    conn_table_entries: c.conns.get(),
                }
            })
            .collect();
        let ports = self
            .ports
            .iter()
            .filter_map(|p| {
                let s = p.stats().ok()?;
                Some(PortStats {
                    port: p.id().0,
                    rx_packets: s.ipackets,
                    tx_packets: s.opackets,
                    rx_bytes: s.ibytes,
                    tx_bytes: s.obytes,
                    rx_missed: s.imissed,
                    rx_errors: s.ierrors,
                    tx_errors: s.oerrors,
                })
            })
            .collect();
        StatsSnapshot {
            services,
            workers,
            ports,
            conn_table: ConnTableStats {
                entries: self.workers.iter().map(|w| w.counters.conns.get()).sum(),
                capacity: self.capacity,
            },
        }
    }

    fn connections(&self, filter: &ConnFilter, offset: usize, limit: usize) -> ConnPage {
        let want = offset.saturating_add(limit);
        let mut answers = Vec::new();
        for mb in self.mailboxes.iter() {
            let (tx, rx) = sync_channel(1);
            let req = Request::Connections {
                filter: filter.clone(),
                limit: want,
                reply: tx,
            };
            if mb.requests.push(req).is_ok() {
                answers.push(rx);
            }
        }
        let mut all = Vec::new();
        let mut total = 0;
        for rx in answers {
            match rx.recv_timeout(Duration::from_secs(2)) {
                Ok((entries, n)) => {
                    total += n;
                    all.extend(entries);
                }
                Err(_) => warn!("a worker did not answer a connection listing"),
            }
        }
        ConnPage {
            total,
            offset,
            connections: all.into_iter().skip(offset).take(limit).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ServiceSlots;

    /// A daemon data plane over two workers with `dests` real-server slots each, no ports and
    /// no configuration.
    fn two_workers(dests: usize) -> DaemonDataplane {
        let fixed = Fixed {
            ports: Vec::new(),
            routes: Vec::new(),
        };
        let first = compile(
            &control_api::Config::default(),
            &fixed,
            &ServiceSlots::default(),
        )
        .unwrap();
        let views: Vec<WorkerView> = (0..2)
            .map(|_| WorkerView {
                fwd: Arc::new(FwdStats::new(0, 0)),
                counters: Arc::new(WorkerCounters::new(dests)),
                neigh: Arc::new(NeighStats::default()),
            })
            .collect();
        DaemonDataplane::new(
            Arc::new(Shared::new(first, 2)),
            fixed,
            views,
            Vec::new().into(),
            Vec::new(),
            64,
        )
    }

    #[test]
    fn test_busy_slots_are_removed_servers_slots_still_held() {
        let dp = two_workers(8);
        dp.workers[0].counters.held[5].store(1, Ordering::Relaxed);
        dp.workers[1].counters.held[2].store(3, Ordering::Relaxed);
        dp.workers[1].counters.held[6].store(2, Ordering::Relaxed);
        // Slot 6 is configured: only the others are a removed server's.
        dp.lock().dests = [6, 7].into();
        assert_eq!(dp.busy_slots(), [2, 5].into());
        // Avoiding every held slot would leave none for a new server among 8: none is avoided.
        for (i, n) in dp.workers[0].counters.held.iter().enumerate() {
            n.store(u32::from(i != 6 && i != 7), Ordering::Relaxed);
        }
        assert_eq!(dp.busy_slots(), BTreeSet::new());
    }

    #[test]
    fn test_stats_reports_forwarder_counters_per_worker() {
        let dp = two_workers(0);
        let views = &dp.workers;
        // Distinct values per counter and per worker, so a swapped field cannot pass.
        let f = &views[1].fwd;
        for (i, c) in [
            &f.new_conns,
            &f.expired,
            &f.reused,
            &f.forwarded,
            &f.kernel,
            &f.icmp_relayed,
            &f.frag_needed_sent,
            &f.aliases_sent,
            &f.aliases_accepted,
            &f.aliases_refused,
            &f.alias_overflow,
        ]
        .into_iter()
        .enumerate()
        {
            c.add(100 + i as u64);
        }
        let (c, n) = (&views[1].counters, &views[1].neigh);
        for (i, k) in [
            &c.host_replies,
            &c.steered_out,
            &c.steered_in,
            &c.reply_races,
            &c.to_kernel,
            &c.from_kernel,
            &c.neigh_requests,
            &c.announcements,
            &n.learned,
            &n.failures,
            &n.held,
            &n.hold_drops,
            &n.hold_cap_drops,
            &n.unresolved_drops,
            &c.alias_inbox_full,
        ]
        .into_iter()
        .enumerate()
        {
            k.add(200 + i as u64);
        }
        for (i, g) in [&n.held_packets, &n.entries, &n.pending, &c.conns]
            .into_iter()
            .enumerate()
        {
            g.set(300 + i as u64);
        }
        views[0].fwd.new_conns.add(7);
        let snap = dp.stats();
        assert_eq!(snap.workers.len(), 2);
        assert_eq!(
            snap.workers[0],
            WorkerStats {
                worker: 0,
                new_connections: 7,
                drops: snap.workers[0].drops.clone(),
                ..WorkerStats::default()
            }
        );
        let w = &snap.workers[1];
        assert_eq!(
            [
                w.new_connections,
                w.expired_connections,
                w.reused_connections,
                w.forwarded_packets,
                w.kernel_packets,
                w.icmp_errors_relayed,
                w.frag_needed_sent,
                w.aliases_sent,
                w.aliases_accepted,
                w.aliases_refused,
                w.aliases_overflow,
            ],
            [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110]
        );
        assert_eq!(
            [
                w.host_replies,
                w.steered_out,
                w.steered_in,
                w.reply_races,
                w.to_kernel,
                w.from_kernel,
                w.neighbour_requests,
                w.neighbour_announcements,
                w.neighbour_learned,
                w.neighbour_failures,
                w.neighbour_held,
                w.neighbour_hold_drops,
                w.neighbour_hold_cap_drops,
                w.neighbour_unresolved_drops,
                w.aliases_inbox_full,
            ],
            [200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214]
        );
        assert_eq!(
            [
                w.neighbour_held_packets,
                w.neighbour_entries,
                w.neighbour_pending_entries,
                w.conn_table_entries,
            ],
            [300, 301, 302, 303]
        );
        // The per-worker connection-table gauges add up to the table's total.
        assert_eq!(snap.conn_table.entries, 303);
        assert_eq!(w.drops.len(), DropReason::COUNT + WorkerDrop::COUNT);
        assert!(w.drops.values().all(|&n| n == 0));
    }
}
