//! Prometheus metrics, built from one statistics snapshot at scrape time.
//!
//! A fresh registry is filled from [`Dataplane::stats`](crate::Dataplane::stats) on every scrape,
//! so each value is exactly the data plane's counter at that instant (no second copy of the
//! counters drifts). Every configured service and real server is exported, with zeros when the
//! data plane has not reported it yet. `ipvsadm -Z` does not apply here: these are the raw totals,
//! monotonic as Prometheus counters must be (its `rate()` treats a decrease as a reset).

mod workers;

use dataplane::flow::Proto;
use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::config::Config;
use crate::dataplane::{Counters, StatsSnapshot};

/// `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const SVC: &[&str] = &["proto", "vip", "port"];
const SVC_DIR: &[&str] = &["proto", "vip", "port", "direction"];
const RS: &[&str] = &["proto", "vip", "port", "real_addr", "real_port"];
const RS_DIR: &[&str] = &[
    "proto",
    "vip",
    "port",
    "real_addr",
    "real_port",
    "direction",
];

struct Traffic {
    conns: IntCounterVec,
    packets: IntCounterVec,
    bytes: IntCounterVec,
    active: IntGaugeVec,
    inactive: IntGaugeVec,
}

impl Traffic {
    fn new(
        reg: &Registry,
        prefix: &str,
        what: &str,
        l: &[&str],
        ld: &[&str],
    ) -> prometheus::Result<Traffic> {
        Ok(Traffic {
            conns: counter(
                reg,
                &format!("{prefix}_connections_total"),
                &format!("Connections scheduled to the {what}."),
                l,
            )?,
            packets: counter(
                reg,
                &format!("{prefix}_packets_total"),
                &format!(
                    "Packets of the {what} by direction (in: client to real server, out: back)."
                ),
                ld,
            )?,
            bytes: counter(
                reg,
                &format!("{prefix}_bytes_total"),
                &format!(
                    "Bytes of the {what} by direction (in: client to real server, out: back)."
                ),
                ld,
            )?,
            active: gauge(
                reg,
                &format!("{prefix}_active_connections"),
                &format!("Connections of the {what} in TCP ESTABLISHED."),
                l,
            )?,
            inactive: gauge(
                reg,
                &format!("{prefix}_inactive_connections"),
                &format!("Connections of the {what} in any other state."),
                l,
            )?,
        })
    }

    fn set(&self, labels: &[&str], c: &Counters, active: u64, inactive: u64) {
        let with = |dir: &'static str| {
            let mut v = labels.to_vec();
            v.push(dir);
            v
        };
        self.conns.with_label_values(labels).inc_by(c.conns);
        self.packets.with_label_values(&with("in")).inc_by(c.inpkts);
        self.packets
            .with_label_values(&with("out"))
            .inc_by(c.outpkts);
        self.bytes.with_label_values(&with("in")).inc_by(c.inbytes);
        self.bytes
            .with_label_values(&with("out"))
            .inc_by(c.outbytes);
        self.active.with_label_values(labels).set(clamp(active));
        self.inactive.with_label_values(labels).set(clamp(inactive));
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn counter(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    reg.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    }
}

/// The text exposition of every metric for `cfg` and `snap`.
pub fn render(cfg: &Config, snap: &StatsSnapshot) -> prometheus::Result<String> {
    let reg = Registry::new();
    let svc = Traffic::new(&reg, "ironvs_service", "virtual service", SVC, SVC_DIR)?;
    let rs = Traffic::new(&reg, "ironvs_real_server", "real server", RS, RS_DIR)?;
    let weight = gauge(
        &reg,
        "ironvs_real_server_weight",
        "Configured weight of the real server (0: drained).",
        RS,
    )?;
    for entry in cfg.services() {
        let k = entry.service.key;
        let (vip, port) = (k.vip.to_string(), k.port.to_string());
        let labels = [proto_name(k.proto), vip.as_str(), port.as_str()];
        let s = snap.service(&k);
        let mut act = 0;
        let mut inact = 0;
        for (rk, re) in &entry.real_servers {
            let r = s.and_then(|s| s.real_server(rk));
            let (a, i) = r.map_or((0, 0), |r| (r.active_conns, r.inactive_conns));
            act += a;
            inact += i;
            let (ra, rp) = (rk.addr.to_string(), rk.port.to_string());
            let rl = [labels[0], labels[1], labels[2], ra.as_str(), rp.as_str()];
            rs.set(&rl, &r.map(|r| r.counters).unwrap_or_default(), a, i);
            weight
                .with_label_values(&rl)
                .set(i64::from(re.server.weight));
        }
        svc.set(
            &labels,
            &s.map(|s| s.counters).unwrap_or_default(),
            act,
            inact,
        );
    }

    workers::export(&reg, &snap.workers)?;

    let ppk = counter(
        &reg,
        "ironvs_port_packets_total",
        "Packets through the NIC port by direction (rx, tx).",
        &["port", "direction"],
    )?;
    let pby = counter(
        &reg,
        "ironvs_port_bytes_total",
        "Bytes through the NIC port by direction (rx, tx).",
        &["port", "direction"],
    )?;
    let pmiss = counter(
        &reg,
        "ironvs_port_rx_missed_packets_total",
        "Packets the NIC dropped for lack of receive descriptors.",
        &["port"],
    )?;
    let perr = counter(
        &reg,
        "ironvs_port_errors_total",
        "Errors on the NIC port by direction (rx, tx).",
        &["port", "direction"],
    )?;
    for p in &snap.ports {
        let id = p.port.to_string();
        let id = id.as_str();
        ppk.with_label_values(&[id, "rx"]).inc_by(p.rx_packets);
        ppk.with_label_values(&[id, "tx"]).inc_by(p.tx_packets);
        pby.with_label_values(&[id, "rx"]).inc_by(p.rx_bytes);
        pby.with_label_values(&[id, "tx"]).inc_by(p.tx_bytes);
        pmiss.with_label_values(&[id]).inc_by(p.rx_missed);
        perr.with_label_values(&[id, "rx"]).inc_by(p.rx_errors);
        perr.with_label_values(&[id, "tx"]).inc_by(p.tx_errors);
    }

    let ct = prometheus::IntGauge::new(
        "ironvs_conn_table_entries",
        "Connection-table entries in use, all workers.",
    )?;
    let cap = prometheus::IntGauge::new(
        "ironvs_conn_table_capacity",
        "Connection-table entries available, all workers.",
    )?;
    ct.set(clamp(snap.conn_table.entries));
    cap.set(clamp(snap.conn_table.capacity));
    reg.register(Box::new(ct))?;
    reg.register(Box::new(cap))?;

    let mut out = Vec::new();
    TextEncoder::new().encode(&reg.gather(), &mut out)?;
    String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{ConnTableStats, RealServerStats, ServiceStats, WorkerStats};
    use dataplane::model::{
        FwdMode, RealServer, RealServerKey, SchedulerKind, Service, ServiceFlags, ServiceKey,
    };

    #[test]
    fn test_render_exact_values() {
        let key = ServiceKey {
            proto: Proto::Tcp,
            vip: "2001:db8::1".parse().unwrap(),
            port: 443,
        };
        let rk = RealServerKey {
            addr: "2001:db8::2".parse().unwrap(),
            port: 443,
        };
        let mut cfg = Config::default();
        cfg.add_service(
            Service {
                key,
                scheduler: SchedulerKind::Rr,
                persistence: None,
                flags: ServiceFlags::default(),
            },
            vec![RealServer {
                key: rk,
                weight: 5,
                mode: FwdMode::Dr,
                upper_threshold: 0,
                lower_threshold: 0,
            }],
        )
        .unwrap();
        let c = Counters {
            conns: 7,
            inpkts: 11,
            outpkts: 13,
            inbytes: 17_000_000_000,
            outbytes: 19,
        };
        let snap = StatsSnapshot {
            services: vec![ServiceStats {
                key,
                counters: c,
                real_servers: vec![RealServerStats {
                    key: rk,
                    counters: c,
                    active_conns: 3,
                    inactive_conns: 4,
                }],
            }],
            workers: vec![WorkerStats {
                worker: 1,
                rx_packets: 100,
                tx_packets: 90,
                drops: [("no_service".to_string(), 10)].into(),
                new_connections: 21,
                expired_connections: 22,
                reused_connections: 23,
                forwarded_packets: 24,
                kernel_packets: 25,
                icmp_errors_relayed: 26,
                frag_needed_sent: 27,
                aliases_sent: 28,
                aliases_accepted: 29,
                aliases_refused: 30,
                aliases_overflow: 31,
                aliases_inbox_full: 32,
                ..WorkerStats::default()
            }],
            ports: vec![],
            conn_table: ConnTableStats {
                entries: 7,
                capacity: 4096,
            },
        };
        let text = render(&cfg, &snap).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for want in [
            r#"ironvs_service_bytes_total{direction="in",port="443",proto="tcp",vip="2001:db8::1"} 17000000000"#,
            r#"ironvs_service_active_connections{port="443",proto="tcp",vip="2001:db8::1"} 3"#,
            r#"ironvs_real_server_connections_total{port="443",proto="tcp",real_addr="2001:db8::2",real_port="443",vip="2001:db8::1"} 7"#,
            r#"ironvs_real_server_weight{port="443",proto="tcp",real_addr="2001:db8::2",real_port="443",vip="2001:db8::1"} 5"#,
            r#"ironvs_worker_dropped_packets_total{reason="no_service",worker="1"} 10"#,
            r#"ironvs_worker_packets_total{direction="rx",worker="1"} 100"#,
            r#"ironvs_worker_connections_total{event="new",worker="1"} 21"#,
            r#"ironvs_worker_connections_total{event="expired",worker="1"} 22"#,
            r#"ironvs_worker_connections_total{event="reused",worker="1"} 23"#,
            r#"ironvs_worker_forwarded_packets_total{worker="1"} 24"#,
            r#"ironvs_worker_kernel_packets_total{worker="1"} 25"#,
            r#"ironvs_worker_icmp_relayed_total{worker="1"} 26"#,
            r#"ironvs_worker_frag_needed_sent_total{worker="1"} 27"#,
            r#"ironvs_worker_aliases_total{event="sent",worker="1"} 28"#,
            r#"ironvs_worker_aliases_total{event="accepted",worker="1"} 29"#,
            r#"ironvs_worker_aliases_total{event="refused",worker="1"} 30"#,
            r#"ironvs_worker_aliases_total{event="overflow",worker="1"} 31"#,
            r#"ironvs_worker_aliases_total{event="inbox_full",worker="1"} 32"#,
            "# TYPE ironvs_worker_connections_total counter",
            "# HELP ironvs_worker_connections_total Connection events of the worker lcore (new: created, expired: removed by timeout, reused: a closing connection taken over by a new SYN on the same ports).",
            "# TYPE ironvs_worker_aliases_total counter",
            "ironvs_conn_table_capacity 4096",
            "# TYPE ironvs_service_packets_total counter",
        ] {
            assert!(lines.contains(&want), "missing {want}\n{text}");
        }
    }

    #[test]
    fn test_render_worker_paths_and_neighbour_events() {
        let snap = StatsSnapshot {
            workers: vec![WorkerStats {
                worker: 3,
                host_replies: 41,
                steered_out: 42,
                steered_in: 43,
                reply_races: 44,
                to_kernel: 45,
                from_kernel: 46,
                neighbour_requests: 47,
                neighbour_announcements: 48,
                neighbour_learned: 49,
                neighbour_failures: 50,
                neighbour_held: 51,
                neighbour_hold_drops: 52,
                neighbour_hold_cap_drops: 53,
                neighbour_unresolved_drops: 54,
                ..WorkerStats::default()
            }],
            ..StatsSnapshot::default()
        };
        let text = render(&Config::default(), &snap).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for want in [
            r#"ironvs_worker_host_replies_total{worker="3"} 41"#,
            r#"ironvs_worker_steered_packets_total{direction="out",worker="3"} 42"#,
            r#"ironvs_worker_steered_packets_total{direction="in",worker="3"} 43"#,
            r#"ironvs_worker_reply_races_total{worker="3"} 44"#,
            r#"ironvs_worker_kernel_path_packets_total{direction="to_kernel",worker="3"} 45"#,
            r#"ironvs_worker_kernel_path_packets_total{direction="from_kernel",worker="3"} 46"#,
            r#"ironvs_worker_neighbour_events_total{event="request",worker="3"} 47"#,
            r#"ironvs_worker_neighbour_events_total{event="announcement",worker="3"} 48"#,
            r#"ironvs_worker_neighbour_events_total{event="learned",worker="3"} 49"#,
            r#"ironvs_worker_neighbour_events_total{event="failure",worker="3"} 50"#,
            r#"ironvs_worker_neighbour_events_total{event="held",worker="3"} 51"#,
            r#"ironvs_worker_neighbour_events_total{event="hold_drop",worker="3"} 52"#,
            r#"ironvs_worker_neighbour_events_total{event="hold_cap_drop",worker="3"} 53"#,
            r#"ironvs_worker_neighbour_events_total{event="unresolved_drop",worker="3"} 54"#,
            "# TYPE ironvs_worker_steered_packets_total counter",
            "# TYPE ironvs_worker_kernel_path_packets_total counter",
            "# TYPE ironvs_worker_neighbour_events_total counter",
        ] {
            assert!(lines.contains(&want), "missing {want}\n{text}");
        }
        let neigh = lines
            .iter()
            .filter(|l| l.starts_with("ironvs_worker_neighbour_events_total{"))
            .count();
        assert_eq!(neigh, 8, "one series per event");
    }

    #[test]
    fn test_render_worker_gauges() {
        let worker = |id, held, entries, pending, conns| WorkerStats {
            worker: id,
            neighbour_held_packets: held,
            neighbour_entries: entries,
            neighbour_pending_entries: pending,
            conn_table_entries: conns,
            ..WorkerStats::default()
        };
        let snap = StatsSnapshot {
            workers: vec![worker(0, 61, 62, 5, 63), worker(2, 0, 7, 0, 64)],
            ..StatsSnapshot::default()
        };
        let text = render(&Config::default(), &snap).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for want in [
            r#"ironvs_worker_neighbour_held_packets{worker="0"} 61"#,
            r#"ironvs_worker_neighbour_held_packets{worker="2"} 0"#,
            r#"ironvs_worker_neighbour_entries{state="resolved",worker="0"} 57"#,
            r#"ironvs_worker_neighbour_entries{state="pending",worker="0"} 5"#,
            r#"ironvs_worker_neighbour_entries{state="resolved",worker="2"} 7"#,
            r#"ironvs_worker_neighbour_entries{state="pending",worker="2"} 0"#,
            r#"ironvs_worker_conn_table_entries{worker="0"} 63"#,
            r#"ironvs_worker_conn_table_entries{worker="2"} 64"#,
            "# TYPE ironvs_worker_neighbour_held_packets gauge",
            "# HELP ironvs_worker_neighbour_held_packets Packets the worker lcore holds now while ARP/NDP resolves their next hop (at most max_held_packets).",
            "# TYPE ironvs_worker_neighbour_entries gauge",
            "# HELP ironvs_worker_neighbour_entries Entries in the worker lcore's neighbour cache by state (resolved: MAC known, pending: resolution in progress).",
            "# TYPE ironvs_worker_conn_table_entries gauge",
            "# HELP ironvs_worker_conn_table_entries Connection-table entries in use on the worker lcore (ironvs_conn_table_entries is their sum).",
        ] {
            assert!(lines.contains(&want), "missing {want}\n{text}");
        }
        // A pending count read after the total cannot make the resolved series negative.
        let snap = StatsSnapshot {
            workers: vec![worker(1, 0, 3, 4, 0)],
            ..StatsSnapshot::default()
        };
        let text = render(&Config::default(), &snap).unwrap();
        assert!(text
            .lines()
            .any(|l| l == r#"ironvs_worker_neighbour_entries{state="resolved",worker="1"} 0"#));
    }
}
