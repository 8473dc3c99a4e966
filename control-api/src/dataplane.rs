//! The seam between the control plane and the packet workers.
//!
//! The daemon implements [`Dataplane`]: it receives each new [`Config`] to compile into worker
//! snapshots, and answers for counters and connections. The control plane calls it from its own
//! threads (never a worker lcore), and calls `apply` in the order the changes were made.
//! [`MemoryDataplane`] is a complete in-process implementation for tests and for running the API
//! without DPDK.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use dataplane::flow::Proto;
use dataplane::model::{RealServerKey, ServiceKey};
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// What the daemon provides to the control plane.
pub trait Dataplane: Send + Sync + 'static {
    /// Publishes a new desired configuration (called at start and after every change).
    fn apply(&self, cfg: &Arc<Config>);
    /// Current counters, summed over workers.
    fn stats(&self) -> StatsSnapshot;
    /// One page of the connection table, filtered (like `ipvsadm -Lc`).
    fn connections(&self, filter: &ConnFilter, offset: usize, limit: usize) -> ConnPage;
    /// Real-server slots that connections or persistence templates still hold, which a new
    /// server should not get (see [`Config::set_busy_slots`]); none by default.
    fn busy_slots(&self) -> BTreeSet<u32> {
        BTreeSet::new()
    }
}

/// Traffic counters of a service or real server since it was added (IPVS `ip_vs_kstats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets client → real server.
    pub inpkts: u64,
    /// Packets real server → client.
    pub outpkts: u64,
    /// Bytes client → real server.
    pub inbytes: u64,
    /// Bytes real server → client.
    pub outbytes: u64,
}

impl Counters {
    /// The counts since `base` was taken (saturating: a base from before a reset gives 0).
    pub fn since(&self, base: &Counters) -> Counters {
        Counters {
            conns: self.conns.saturating_sub(base.conns),
            inpkts: self.inpkts.saturating_sub(base.inpkts),
            outpkts: self.outpkts.saturating_sub(base.outpkts),
            inbytes: self.inbytes.saturating_sub(base.inbytes),
            outbytes: self.outbytes.saturating_sub(base.outbytes),
        }
    }
}

/// Counters and current connections of one real server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServerStats {
    /// Which real server.
    pub key: RealServerKey,
    /// Traffic counters.
    pub counters: Counters,
    /// Connections in TCP ESTABLISHED.
    pub active_conns: u64,
    /// Connections in any other state.
    pub inactive_conns: u64,
}

/// Counters of one service and its real servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStats {
    /// Which service.
    pub key: ServiceKey,
    /// Traffic counters.
    pub counters: Counters,
    /// Its real servers.
    pub real_servers: Vec<RealServerStats>,
}

/// Packets handled and dropped by one worker lcore, and what its forwarder counted.
///
/// The forwarder's, the worker's own and the neighbour cache's counters and the gauges (current
/// levels, refreshed by the worker every millisecond) were added after the first release: they
/// default to 0 when absent, so JSON written by an older daemon still parses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WorkerStats {
    /// Worker index.
    pub worker: u32,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Packets dropped, by reason name (snake_case).
    pub drops: BTreeMap<String, u64>,
    /// Connections created.
    #[serde(default)]
    pub new_connections: u64,
    /// Connections removed by expiry.
    #[serde(default)]
    pub expired_connections: u64,
    /// Closing connections replaced by a new SYN on the same ports (IPVS connection reuse).
    #[serde(default)]
    pub reused_connections: u64,
    /// Packets the forwarder sent on (to a real server or back to a client).
    #[serde(default)]
    pub forwarded_packets: u64,
    /// Packets the forwarder handed to the kernel (not load-balanced traffic).
    #[serde(default)]
    pub kernel_packets: u64,
    /// ICMP errors relayed to a client or real server.
    #[serde(default)]
    pub icmp_errors_relayed: u64,
    /// ICMP fragmentation-needed errors sent for oversize tunnel packets.
    #[serde(default)]
    pub frag_needed_sent: u64,
    /// NAT reply aliases queued for the worker that receives the replies.
    #[serde(default)]
    pub aliases_sent: u64,
    /// Reply aliases from other workers indexed here.
    #[serde(default)]
    pub aliases_accepted: u64,
    /// Reply aliases from other workers that could not be indexed (table full, duplicate).
    #[serde(default)]
    pub aliases_refused: u64,
    /// NAT reply aliases not queued because the burst's outbox was full.
    #[serde(default)]
    pub aliases_overflow: u64,
    /// NAT reply aliases dropped because the receiving worker's inbox was full.
    #[serde(default)]
    pub aliases_inbox_full: u64,
    /// ARP, NDP and echo replies the director sent as a host.
    #[serde(default)]
    pub host_replies: u64,
    /// Frames passed to another worker by software steering.
    #[serde(default)]
    pub steered_out: u64,
    /// Frames received from other workers by software steering.
    #[serde(default)]
    pub steered_in: u64,
    /// NAT replies that arrived before their alias was read and went through on a second look.
    #[serde(default)]
    pub reply_races: u64,
    /// Frames from data ports handed to the kernel interface.
    #[serde(default)]
    pub to_kernel: u64,
    /// Frames from the kernel interface sent out of a data port.
    #[serde(default)]
    pub from_kernel: u64,
    /// ARP requests and neighbour solicitations sent.
    #[serde(default)]
    pub neighbour_requests: u64,
    /// Gratuitous ARP and unsolicited neighbour advertisements sent.
    #[serde(default)]
    pub neighbour_announcements: u64,
    /// Neighbour entries confirmed or updated by ARP/NDP.
    #[serde(default)]
    pub neighbour_learned: u64,
    /// Neighbour resolutions or refreshes that got no answer.
    #[serde(default)]
    pub neighbour_failures: u64,
    /// Packets held while their next hop was resolved.
    #[serde(default)]
    pub neighbour_held: u64,
    /// Held packets dropped because their next hop's queue was full or nothing was pending.
    #[serde(default)]
    pub neighbour_hold_drops: u64,
    /// Packets not held because the worker already held max_held_packets.
    #[serde(default)]
    pub neighbour_hold_cap_drops: u64,
    /// Held packets dropped because their next hop did not answer.
    #[serde(default)]
    pub neighbour_unresolved_drops: u64,
    /// Gauge: packets held now, waiting for ARP/NDP (at most max_held_packets).
    #[serde(default)]
    pub neighbour_held_packets: u64,
    /// Gauge: neighbour-cache entries (resolved and pending).
    #[serde(default)]
    pub neighbour_entries: u64,
    /// Gauge: of those, entries whose resolution is in progress.
    #[serde(default)]
    pub neighbour_pending_entries: u64,
    /// Gauge: connection-table entries in use on this worker.
    #[serde(default)]
    pub conn_table_entries: u64,
}

impl WorkerStats {
    /// Resolved neighbour entries: all entries less the pending ones (never below zero, since
    /// the two gauges are read at slightly different instants).
    pub fn neighbour_resolved_entries(&self) -> u64 {
        self.neighbour_entries
            .saturating_sub(self.neighbour_pending_entries)
    }
}

/// Counters of one NIC port.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PortStats {
    /// DPDK port id.
    pub port: u16,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Packets the NIC dropped for lack of RX descriptors (`imissed`).
    pub rx_missed: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
}

/// Occupancy of the connection table, summed over workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConnTableStats {
    /// Entries in use.
    pub entries: u64,
    /// Entries available in total.
    pub capacity: u64,
}

/// Everything the data plane counts, at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Per service and real server.
    pub services: Vec<ServiceStats>,
    /// Per worker.
    pub workers: Vec<WorkerStats>,
    /// Per port.
    pub ports: Vec<PortStats>,
    /// Connection table.
    pub conn_table: ConnTableStats,
}

impl StatsSnapshot {
    /// The counters of one service, if reported.
    pub fn service(&self, key: &ServiceKey) -> Option<&ServiceStats> {
        self.services.iter().find(|s| s.key == *key)
    }
}

impl ServiceStats {
    /// The counters of one real server, if reported.
    pub fn real_server(&self, key: &RealServerKey) -> Option<&RealServerStats> {
        self.real_servers.iter().find(|r| r.key == *key)
    }
}

/// One connection-table entry (a line of `ipvsadm -Lc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnEntry {
    /// TCP or UDP.
    pub proto: Proto,
    /// Client address.
    pub client_addr: IpAddr,
    /// Client port.
    pub client_port: u16,
    /// Virtual IP.
    pub vip: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// FullNAT local address, if any.
    pub local_addr: Option<IpAddr>,
    /// FullNAT local port (0 without FullNAT).
    pub local_port: u16,
    /// Real server address.
    pub real_addr: IpAddr,
    /// Real server port.
    pub real_port: u16,
    /// State name as ipvsadm prints it (`ESTABLISHED`, `FIN_WAIT`, `UDP`, ...).
    pub state: String,
    /// Seconds until the entry expires.
    pub expires_s: u32,
}

/// Which connections to list; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnFilter {
    /// Protocol.
    pub proto: Option<Proto>,
    /// Virtual IP.
    pub vip: Option<IpAddr>,
    /// Virtual port.
    pub vport: Option<u16>,
    /// Client address.
    pub client: Option<IpAddr>,
    /// Real server address.
    pub real: Option<IpAddr>,
    /// Real server port.
    pub real_port: Option<u16>,
    /// State name, case-insensitive.
    pub state: Option<String>,
}

impl ConnFilter {
    /// True when `c` passes the filter.
    pub fn matches(&self, c: &ConnEntry) -> bool {
        fn ok<T: PartialEq>(want: &Option<T>, have: &T) -> bool {
            want.as_ref().is_none_or(|w| w == have)
        }
        ok(&self.proto, &c.proto)
            && ok(&self.vip, &c.vip)
            && ok(&self.vport, &c.vport)
            && ok(&self.client, &c.client_addr)
            && ok(&self.real, &c.real_addr)
            && ok(&self.real_port, &c.real_port)
            && self
                .state
                .as_ref()
                .is_none_or(|s| s.eq_ignore_ascii_case(&c.state))
    }
}

/// A page of connections.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConnPage {
    /// Matching connections in total (all pages).
    pub total: u64,
    /// Index of the first entry of this page.
    pub offset: usize,
    /// The page.
    pub connections: Vec<ConnEntry>,
}

/// An in-process data plane: keeps the last applied configuration and counters set by its owner.
#[derive(Debug, Default)]
pub struct MemoryDataplane {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    applied: Option<Arc<Config>>,
    applies: u64,
    stats: StatsSnapshot,
    conns: Vec<ConnEntry>,
    busy: BTreeSet<u32>,
}

impl MemoryDataplane {
    /// A data plane with a connection table of `capacity` entries and no traffic.
    pub fn new(capacity: u64) -> MemoryDataplane {
        let dp = MemoryDataplane::default();
        dp.lock().stats.conn_table.capacity = capacity;
        dp
    }

    fn lock(&self) -> MutexGuard<'_, MemoryInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The configuration last applied.
    pub fn applied(&self) -> Option<Arc<Config>> {
        self.lock().applied.clone()
    }

    /// How many times [`Dataplane::apply`] was called.
    pub fn apply_count(&self) -> u64 {
        self.lock().applies
    }

    /// Replaces the counters that [`Dataplane::stats`] reports.
    pub fn set_stats(&self, stats: StatsSnapshot) {
        self.lock().stats = stats;
    }

    /// Replaces the slots [`Dataplane::busy_slots`] reports.
    pub fn set_busy_slots(&self, busy: BTreeSet<u32>) {
        self.lock().busy = busy;
    }

    /// Replaces the connection table that [`Dataplane::connections`] lists.
    pub fn set_connections(&self, conns: Vec<ConnEntry>) {
        let mut g = self.lock();
        g.stats.conn_table.entries = conns.len() as u64;
        g.conns = conns;
    }
}

impl Dataplane for MemoryDataplane {
    fn apply(&self, cfg: &Arc<Config>) {
        let mut g = self.lock();
        g.applied = Some(cfg.clone());
        g.applies += 1;
    }

    fn stats(&self) -> StatsSnapshot {
        self.lock().stats.clone()
    }

    fn connections(&self, filter: &ConnFilter, offset: usize, limit: usize) -> ConnPage {
        let g = self.lock();
        let matching = g.conns.iter().filter(|c| filter.matches(c));
        let total = matching.clone().count() as u64;
        ConnPage {
            total,
            offset,
            connections: matching.skip(offset).take(limit).cloned().collect(),
        }
    }

    fn busy_slots(&self) -> BTreeSet<u32> {
        self.lock().busy.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(client: &str, state: &str) -> ConnEntry {
        ConnEntry {
            proto: Proto::Tcp,
            client_addr: client.parse().unwrap(),
            client_port: 40000,
            vip: "192.0.2.1".parse().unwrap(),
            vport: 80,
            local_addr: None,
            local_port: 0,
            real_addr: "10.0.0.1".parse().unwrap(),
            real_port: 80,
            state: state.into(),
            expires_s: 60,
        }
    }

    #[test]
    fn test_memory_connections_filter_and_page() {
        let dp = MemoryDataplane::new(4096);
        dp.set_connections(vec![
            conn("198.51.100.1", "ESTABLISHED"),
            conn("198.51.100.2", "FIN_WAIT"),
            conn("198.51.100.3", "ESTABLISHED"),
        ]);
        let f = ConnFilter {
            state: Some("established".into()),
            ..ConnFilter::default()
        };
        let page = dp.connections(&f, 1, 10);
        assert_eq!(page.total, 2);
        assert_eq!(page.connections.len(), 1);
        assert_eq!(page.connections[0].client_addr.to_string(), "198.51.100.3");
        assert_eq!(dp.stats().conn_table.entries, 3);
        assert_eq!(dp.stats().conn_table.capacity, 4096);
    }

    #[test]
    fn test_worker_stats_json_round_trip() {
        let w = WorkerStats {
            worker: 2,
            rx_packets: 100,
            tx_packets: 90,
            drops: [("no_service".to_string(), 3)].into(),
            new_connections: 5,
            expired_connections: 6,
            reused_connections: 7,
            forwarded_packets: 80,
            kernel_packets: 9,
            icmp_errors_relayed: 10,
            frag_needed_sent: 11,
            aliases_sent: 12,
            aliases_accepted: 13,
            aliases_refused: 14,
            aliases_overflow: 15,
            aliases_inbox_full: 30,
            host_replies: 16,
            steered_out: 17,
            steered_in: 18,
            reply_races: 19,
            to_kernel: 20,
            from_kernel: 21,
            neighbour_requests: 22,
            neighbour_announcements: 23,
            neighbour_learned: 24,
            neighbour_failures: 25,
            neighbour_held: 26,
            neighbour_hold_drops: 27,
            neighbour_hold_cap_drops: 28,
            neighbour_unresolved_drops: 29,
            neighbour_held_packets: 31,
            neighbour_entries: 32,
            neighbour_pending_entries: 33,
            conn_table_entries: 34,
        };
        let v = serde_json::to_value(&w).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "worker": 2, "rx_packets": 100, "tx_packets": 90, "drops": {"no_service": 3},
                "new_connections": 5, "expired_connections": 6, "reused_connections": 7,
                "forwarded_packets": 80, "kernel_packets": 9, "icmp_errors_relayed": 10,
                "frag_needed_sent": 11, "aliases_sent": 12, "aliases_accepted": 13,
                "aliases_refused": 14, "aliases_overflow": 15, "aliases_inbox_full": 30,
                "host_replies": 16, "steered_out": 17, "steered_in": 18, "reply_races": 19,
                "to_kernel": 20, "from_kernel": 21, "neighbour_requests": 22,
                "neighbour_announcements": 23, "neighbour_learned": 24, "neighbour_failures": 25,
                "neighbour_held": 26, "neighbour_hold_drops": 27, "neighbour_hold_cap_drops": 28,
                "neighbour_unresolved_drops": 29, "neighbour_held_packets": 31,
                "neighbour_entries": 32, "neighbour_pending_entries": 33,
                "conn_table_entries": 34
            })
        );
        let back: WorkerStats = serde_json::from_value(v).unwrap();
        assert_eq!(back, w);
    }

    #[test]
    fn test_openapi_describes_every_worker_stats_field() {
        let doc: serde_json::Value = serde_json::from_str(crate::api::OPENAPI_JSON).unwrap();
        let schema = &doc["components"]["schemas"]["WorkerStats"]["properties"];
        let documented: Vec<&String> = schema.as_object().unwrap().keys().collect();
        let v = serde_json::to_value(WorkerStats::default()).unwrap();
        let fields: Vec<&String> = v.as_object().unwrap().keys().collect();
        let mut sorted = documented.clone();
        sorted.sort();
        assert_eq!(sorted, fields);
    }

    #[test]
    fn test_worker_stats_json_without_forwarder_counters() {
        let old = r#"{"worker":1,"rx_packets":10,"tx_packets":9,"drops":{"tx_full":2}}"#;
        let w: WorkerStats = serde_json::from_str(old).unwrap();
        assert_eq!(
            w,
            WorkerStats {
                worker: 1,
                rx_packets: 10,
                tx_packets: 9,
                drops: [("tx_full".to_string(), 2)].into(),
                ..WorkerStats::default()
            }
        );
        // The fields that were always there stay required.
        assert!(serde_json::from_str::<WorkerStats>(r#"{"worker":1}"#).is_err());
    }
}
