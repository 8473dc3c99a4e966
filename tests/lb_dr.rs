//! End to end, direct routing (LVS-DR): client, director and two real servers on one segment.
//! The real servers hold the VIP on `lo` with arp_ignore=1/arp_announce=2 (deploy/realserver/dr.sh)
//! and answer the client directly; `ironvs` answers ARP for the VIP with its port's MAC and
//! forwards each new connection round-robin, rewriting only the destination MAC.

mod common;

use common::lvs::{self, PortSpec};
use common::Lab;

const REQUESTS: usize = 100;

#[test]
fn dr_round_robin_over_two_real_servers() {
    require_root!();
    let mut lab = Lab::new();
    let seg = lvs::segment(&mut lab, 2);
    for rs in &seg.real_servers {
        lvs::realserver_setup(&lab, rs, "dr.sh", &["up", lvs::SEG_VIP]);
        lvs::http_server(&mut lab, rs, lvs::SEG_VIP, 80);
    }
    let config = lvs::daemon_config(
        &lab,
        1,
        &[PortSpec {
            name: "dp0",
            iface: "d0",
            address: "192.0.2.1/24",
        }],
        r#"
[[service]]
proto = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "rr"

[[service.real_server]]
address = "192.0.2.11"
port = 80
weight = 1
mode = "dr"

[[service.real_server]]
address = "192.0.2.12"
port = 80
weight = 1
mode = "dr"
"#,
    );
    let daemon = lvs::start_ironvs(&mut lab, &seg.director, &config);

    let url = format!("http://{}/", lvs::SEG_VIP);
    let (names, errors) = lvs::http_names(&lab, &seg.client.ns, &url, REQUESTS);
    assert!(errors.is_empty(), "{} failed: {errors:#?}", errors.len());
    assert_eq!(names.get("rs1"), Some(&(REQUESTS / 2)), "{names:?}");
    assert_eq!(names.get("rs2"), Some(&(REQUESTS / 2)), "{names:?}");

    // DR keeps the client's address: each real server saw the client itself, once per request.
    for p in 0..2 {
        let peers = lvs::peers(&lab.log(p));
        assert_eq!(peers, vec![lvs::SEG_CLIENT; REQUESTS / 2]);
    }

    // The VIP resolves to the director's port, not to a real server.
    let neigh = lab.exec(
        &seg.client.ns,
        &["ip", "neigh", "show", lvs::SEG_VIP, "dev", "c0"],
    );
    let port_mac = lvs::mac_of(&lab, &seg.director, "d0");
    assert!(
        neigh.contains(&format!("lladdr {port_mac}")),
        "the client's neighbour entry `{neigh}` for the VIP is not the director's MAC {port_mac}"
    );

    // The service counted every connection, half per real server (ipvsadm --stats).
    let stats = lvs::api_get(&lab, &seg.director, "/api/v1/stats");
    let (total, per_rs) = lvs::service_conns(&stats, lvs::SEG_VIP, 80);
    assert_eq!(total, REQUESTS as u64, "{stats}");
    let half = REQUESTS as u64 / 2;
    let want = [
        ("192.0.2.11:80".to_string(), half),
        ("192.0.2.12:80".to_string(), half),
    ];
    assert_eq!(per_rs, want.into_iter().collect(), "{stats}");
    assert_eq!(lvs::worker_drops(&stats, "no_connection"), 0, "{stats}");
    // Each worker reports the connections it created (summed: one per request).
    let created: u64 = stats["workers"]
        .as_array()
        .unwrap_or_else(|| panic!("no workers[] in {stats}"))
        .iter()
        .map(|w| w["new_connections"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(created, REQUESTS as u64, "{stats}");

    // ipvsadm -Z: the service's counters restart from zero, then count the next requests;
    // Prometheus keeps the raw totals (its counters never go back).
    let out = lvs::ironvsadm(&lab, &seg.director, &["-Z", "-t", "192.0.2.100:80"]);
    assert_eq!(out.trim(), "", "ironvsadm -Z printed {out}");
    let stats = lvs::api_get(&lab, &seg.director, "/api/v1/stats");
    assert_eq!(lvs::service_conns(&stats, lvs::SEG_VIP, 80).0, 0, "{stats}");
    let (names, errors) = lvs::http_names(&lab, &seg.client.ns, &url, 4);
    assert!(errors.is_empty(), "{} failed: {errors:#?}", errors.len());
    assert_eq!(names.values().sum::<usize>(), 4, "{names:?}");
    let stats = lvs::api_get(&lab, &seg.director, "/api/v1/stats");
    let (total, per_rs) = lvs::service_conns(&stats, lvs::SEG_VIP, 80);
    assert_eq!(total, 4, "{stats}");
    let want = [
        ("192.0.2.11:80".to_string(), 2),
        ("192.0.2.12:80".to_string(), 2),
    ];
    assert_eq!(per_rs, want.into_iter().collect(), "{stats}");
    let metrics = lab.exec(
        &seg.director,
        &[
            "curl",
            "-sS",
            "--fail",
            "--max-time",
            "5",
            &format!("{}/metrics", lvs::API),
        ],
    );
    let raw = format!(
        r#"ironvs_service_connections_total{{port="80",proto="tcp",vip="192.0.2.100"}} {}"#,
        REQUESTS + 4
    );
    assert!(
        metrics.lines().any(|l| l == raw),
        "no `{raw}` in /metrics:\n{metrics}"
    );

    let log = lvs::stop_ironvs(&mut lab, daemon);
    lvs::check_worker_lines(&log, 1);
}
