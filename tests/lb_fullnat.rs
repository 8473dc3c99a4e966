//! End to end, FullNAT on two workers: the real servers need no set-up at all (no route to the
//! client network, no VIP); `ironvs` rewrites client → VIP into local address → RS and back. With
//! two workers the replies, addressed to the local address, must come back to the core that
//! holds the connection (local ports are chosen so that RSS lands them there, or the workers
//! redirect them): no request may be lost and no reply may miss its connection.

mod common;

use common::lvs::{self, PortSpec};
use common::Lab;

const REQUESTS: usize = 100;
const WORKERS: u16 = 2;

#[test]
fn fullnat_two_workers_lose_nothing() {
    require_root!();
    let mut lab = Lab::new();
    let nets = lvs::two_nets(&mut lab, 2);
    for rs in &nets.real_servers {
        lvs::http_server(&mut lab, rs, &rs.addr.clone(), 80);
        let routes = lab.exec(&rs.ns, &["ip", "route", "show", "default"]);
        assert_eq!(
            routes.trim(),
            "",
            "FullNAT real servers need no route to the clients"
        );
    }
    let config = lvs::daemon_config(
        &lab,
        WORKERS,
        &[
            PortSpec {
                name: "dp0",
                iface: "d0",
                address: "198.51.100.1/24",
            },
            PortSpec {
                name: "dp1",
                iface: "d1",
                address: "203.0.113.1/24",
            },
        ],
        r#"
[fullnat]
local_addresses = ["203.0.113.200"]

[[service]]
proto = "tcp"
vip = "198.51.100.100"
port = 80
scheduler = "rr"

[[service.real_server]]
address = "203.0.113.11"
port = 80
weight = 1
mode = "fullnat"

[[service.real_server]]
address = "203.0.113.12"
port = 80
weight = 1
mode = "fullnat"
"#,
    );
    let daemon = lvs::start_ironvs(&mut lab, &nets.director, &config);

    let url = format!("http://{}/", lvs::NET_VIP);
    let (names, errors) = lvs::http_names(&lab, &nets.client.ns, &url, REQUESTS);
    assert!(
        errors.is_empty(),
        "{} of {REQUESTS} lost: {errors:#?}",
        errors.len()
    );
    let count = |name: &str| names.get(name).copied().unwrap_or(0);
    let (rs1, rs2) = (count("rs1"), count("rs2"));
    assert_eq!(rs1 + rs2, REQUESTS, "{names:?}");
    // Round robin on each worker: each worker's split is off by at most one.
    assert!(rs1.abs_diff(rs2) <= usize::from(WORKERS), "{names:?}");

    // The real servers saw only the local address.
    for p in 0..2 {
        let peers = lvs::peers(&lab.log(p));
        assert_eq!(peers.len(), count(&format!("rs{}", p + 1)));
        assert!(peers.iter().all(|a| a == lvs::NET_LADDR), "{peers:?}");
    }

    let stats = lvs::api_get(&lab, &nets.director, "/api/v1/stats");
    let (total, _) = lvs::service_conns(&stats, lvs::NET_VIP, 80);
    assert_eq!(total, REQUESTS as u64, "{stats}");
    let workers = lvs::workers(&stats);
    assert_eq!(workers.len(), usize::from(WORKERS), "{stats}");
    // A hundred connections spread by RSS over two queues: both workers received traffic.
    for w in workers {
        assert!(
            w["rx_packets"].as_u64().unwrap_or(0) > 0,
            "idle worker: {w}"
        );
    }
    // A reply that reached a core without its connection is dropped as reply_miss.
    assert_eq!(lvs::worker_drops(&stats, "reply_miss"), 0, "{stats}");
    assert_eq!(lvs::worker_drops(&stats, "no_connection"), 0, "{stats}");
    assert_eq!(lvs::worker_drops(&stats, "no_local_port"), 0, "{stats}");

    let log = lvs::stop_ironvs(&mut lab, daemon);
    lvs::check_worker_lines(&log, usize::from(WORKERS));
}
