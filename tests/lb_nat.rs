//! End to end, NAT (LVS-NAT, masquerading): the client network on the director's dp0, the real
//! servers on dp1 with their default route via the director (deploy/realserver/nat.sh). `ironvs`
//! rewrites VIP:80 to RS:8080 and the replies back to VIP:80; the real servers see the client's
//! own address.

mod common;

use common::lvs::{self, PortSpec};
use common::Lab;

const REQUESTS: usize = 100;
const WORKERS: u16 = 2;

#[test]
fn nat_round_robin_keeps_the_client_address() {
    require_root!();
    let mut lab = Lab::new();
    let nets = lvs::two_nets(&mut lab, 2);
    for rs in &nets.real_servers {
        lvs::realserver_setup(&lab, rs, "nat.sh", &["up", lvs::NET_RS_DIRECTOR, "r0"]);
        lvs::http_server(&mut lab, rs, &rs.addr.clone(), 8080);
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
[[service]]
proto = "tcp"
vip = "198.51.100.100"
port = 80
scheduler = "rr"

[[service.real_server]]
address = "203.0.113.11"
port = 8080
weight = 1
mode = "nat"

[[service.real_server]]
address = "203.0.113.12"
port = 8080
weight = 1
mode = "nat"
"#,
    );
    let daemon = lvs::start_ironvs(&mut lab, &nets.director, &config);

    // A reply whose source were not rewritten back to VIP:80 would be reset by the client, so
    // every answer below also proves the reverse translation.
    let url = format!("http://{}/", lvs::NET_VIP);
    let (names, errors) = lvs::http_names(&lab, &nets.client.ns, &url, REQUESTS);
    assert!(errors.is_empty(), "{} failed: {errors:#?}", errors.len());
    // Each worker runs its own round robin over the flows RSS gives it, so the split is exact
    // per worker and within one connection per worker overall.
    let count = |n: &str| names.get(n).copied().unwrap_or(0);
    let (rs1, rs2) = (count("rs1"), count("rs2"));
    assert_eq!(rs1 + rs2, REQUESTS, "{names:?}");
    assert!(rs1.abs_diff(rs2) <= usize::from(WORKERS), "{names:?}");

    // NAT rewrites only the destination: every request reached a real server from the client.
    for (p, n) in [(0, rs1), (1, rs2)] {
        let peers = lvs::peers(&lab.log(p));
        assert_eq!(peers, vec![lvs::NET_CLIENT; n]);
    }

    let stats = lvs::api_get(&lab, &nets.director, "/api/v1/stats");
    let (total, per_rs) = lvs::service_conns(&stats, lvs::NET_VIP, 80);
    assert_eq!(total, REQUESTS as u64, "{stats}");
    let want = [
        ("203.0.113.11:8080".to_string(), rs1 as u64),
        ("203.0.113.12:8080".to_string(), rs2 as u64),
    ];
    assert_eq!(per_rs, want.into_iter().collect(), "{stats}");
    // Every reply of the real servers matched its connection.
    assert_eq!(lvs::worker_drops(&stats, "reply_miss"), 0, "{stats}");
    assert_eq!(lvs::worker_drops(&stats, "no_connection"), 0, "{stats}");

    let log = lvs::stop_ironvs(&mut lab, daemon);
    lvs::check_worker_lines(&log, usize::from(WORKERS));
    // Replies come from the real server to the client: a tuple the client chose, which RSS
    // often gives to the other worker. The owner sent that worker an alias for each such
    // connection, and it used them: no reply missed (checked above and per worker).
    let lines = lvs::worker_counters(&log);
    let sent: u64 = lines.iter().map(|w| w["aliases_sent"]).sum();
    let accepted: u64 = lines.iter().map(|w| w["aliases_accepted"]).sum();
    assert!(
        sent > 0,
        "with two workers some replies hash to the other one:\n{log}"
    );
    // An alias lost on the way would show as refused (the other core had the reply key) or
    // inbox full; the worker lines print both.
    assert_eq!(accepted, sent, "{log}");
}
