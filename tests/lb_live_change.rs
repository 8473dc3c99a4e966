//! End to end, changes under traffic (DR, weighted round robin): one long-lived TCP connection
//! exchanges a line every 50 ms with an echo server while `ironvsadm` adds a third real server,
//! changes a weight and finally drains (weight 0) the server that connection is on. The
//! connection must never break or lose an echo; new connections must follow the new weights,
//! reach the new server and avoid the drained one. Last, the drained server is replaced while
//! the connection lives on, and its successor must get a counter slot of its own.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::lvs::{self, PortSpec};
use common::Lab;

const PORT: u16 = 7000;
/// Upper bound of the long-lived connection's echoes (50 ms apart); the test stops it earlier.
const MAX_ECHOES: &str = "900";

/// Real server name → connections it greeted, from `lbtool.py probe` output; errors panic.
fn probe(lab: &Lab, client: &str, count: usize) -> BTreeMap<String, usize> {
    let script = lvs::repo().join("tests/scripts/lbtool.py");
    let n = count.to_string();
    let port = PORT.to_string();
    let out = lab.exec(
        client,
        &[
            "python3",
            script.to_str().unwrap(),
            "probe",
            "--host",
            lvs::SEG_VIP,
            "--port",
            &port,
            "--count",
            &n,
        ],
    );
    let mut names = BTreeMap::new();
    for line in out.lines() {
        assert!(!line.starts_with("error"), "a new connection failed: {out}");
        *names.entry(line.to_string()).or_insert(0) += 1;
    }
    assert_eq!(names.values().sum::<usize>(), count, "{out}");
    names
}

/// The last `echoes=N` progress line of the echo client.
fn echoes(log: &str) -> u32 {
    log.lines()
        .filter_map(|l| l.strip_prefix("echoes=")?.parse().ok())
        .next_back()
        .unwrap_or(0)
}

/// Waits until the long-lived connection has made ten more echoes.
fn wait_progress(lab: &mut Lab, client: usize) {
    let next = (echoes(&lab.log(client)) / 10 + 1) * 10;
    lab.wait_for_log(client, &format!("echoes={next}\n"), Duration::from_secs(10));
}

/// Real server address → (forwarding word, weight), from `ironvsadm -L -n`.
fn listing(lab: &Lab, director: &str) -> BTreeMap<String, (String, u32)> {
    let out = lvs::ironvsadm(lab, director, &["-L", "-n"]);
    out.lines()
        .filter_map(|l| l.strip_prefix("  -> "))
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                [addr, fwd, weight, ..] => {
                    Some((addr.to_string(), (fwd.to_string(), weight.parse().ok()?)))
                }
                _ => None,
            }
        })
        .collect()
}

#[test]
fn live_changes_keep_established_connections() {
    require_root!();
    lvs::ironvsadm_bin();
    let mut lab = Lab::new();
    let seg = lvs::segment(&mut lab, 3);
    for rs in &seg.real_servers {
        lvs::realserver_setup(&lab, rs, "dr.sh", &["up", lvs::SEG_VIP]);
        lvs::echo_server(&mut lab, rs, lvs::SEG_VIP, PORT);
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
port = 7000
scheduler = "wrr"

[[service.real_server]]
address = "192.0.2.11"
port = 7000
weight = 1
mode = "dr"

[[service.real_server]]
address = "192.0.2.12"
port = 7000
weight = 1
mode = "dr"
"#,
    );
    let daemon = lvs::start_ironvs(&mut lab, &seg.director, &config);
    let svc = format!("{}:{PORT}", lvs::SEG_VIP);

    // The long-lived connection.
    let stop = lab.dir().join("stop");
    let port = PORT.to_string();
    let client = lvs::lbtool(
        &mut lab,
        &seg.client.ns.clone(),
        "echo-client",
        &[
            "echo-client",
            "--host",
            lvs::SEG_VIP,
            "--port",
            &port,
            "--count",
            MAX_ECHOES,
            "--interval",
            "0.05",
            "--stop-file",
            stop.to_str().unwrap(),
        ],
    );
    lab.wait_for_log(client, "connected ", Duration::from_secs(10));
    let held = lab
        .log(client)
        .lines()
        .find_map(|l| l.strip_prefix("connected ").map(str::to_string))
        .unwrap();
    assert!(held == "rs1" || held == "rs2", "connected to {held}");
    wait_progress(&mut lab, client);

    // A third real server, and rs1's weight doubled: wrr 2:1:1.
    lvs::ironvsadm(
        &lab,
        &seg.director,
        &["-a", "-t", &svc, "-r", "192.0.2.13:7000", "-g", "-w", "1"],
    );
    lvs::ironvsadm(
        &lab,
        &seg.director,
        &["-e", "-t", &svc, "-r", "192.0.2.11:7000", "-g", "-w", "2"],
    );
    let table = listing(&lab, &seg.director);
    let route = |w: u32| ("Route".to_string(), w);
    let want: BTreeMap<String, (String, u32)> = [
        ("192.0.2.11:7000".to_string(), route(2)),
        ("192.0.2.12:7000".to_string(), route(1)),
        ("192.0.2.13:7000".to_string(), route(1)),
    ]
    .into();
    assert_eq!(table, want);
    wait_progress(&mut lab, client);

    // Two full wrr cycles (2 + 1 + 1) from any starting point: exactly 4, 2 and 2.
    let names = probe(&lab, &seg.client.ns, 8);
    let want: BTreeMap<String, usize> = [("rs1", 4), ("rs2", 2), ("rs3", 2)]
        .map(|(n, c)| (n.to_string(), c))
        .into();
    assert_eq!(names, want, "new connections after the changes");
    wait_progress(&mut lab, client);

    // Drain the server holding the long-lived connection: new connections avoid it, the
    // established one goes on.
    let held_addr = if held == "rs1" {
        "192.0.2.11:7000"
    } else {
        "192.0.2.12:7000"
    };
    lvs::ironvsadm(
        &lab,
        &seg.director,
        &["-e", "-t", &svc, "-r", held_addr, "-g", "-w", "0"],
    );
    assert_eq!(listing(&lab, &seg.director)[held_addr], route(0));
    let names = probe(&lab, &seg.client.ns, 6);
    assert!(
        !names.contains_key(&held),
        "drained {held} got new connections: {names:?}"
    );
    assert!(names.contains_key("rs3"), "{names:?}");
    wait_progress(&mut lab, client);
    wait_progress(&mut lab, client);

    // Replace the drained server while its connection lives on: the new server must not get
    // the old one's counter slot (its counters, ActiveConn and load would start with the old
    // server's connection in them), and that connection still reaches its server.
    let rs_path = |addr: &str| {
        let vip = lvs::SEG_VIP;
        format!("/api/v1/services/tcp/{vip}/{PORT}/real-servers/{addr}/{PORT}")
    };
    let slot = |lab: &Lab, addr: &str| {
        let rs = lvs::api_get(lab, &seg.director, &rs_path(addr));
        rs["slot"].as_u64().unwrap_or_else(|| panic!("{rs}"))
    };
    let held_ip = held_addr.split_once(':').unwrap().0;
    let old_slot = slot(&lab, held_ip);
    lvs::ironvsadm(&lab, &seg.director, &["-d", "-t", &svc, "-r", held_addr]);
    let new_rs = "192.0.2.14:7000";
    lvs::ironvsadm(
        &lab,
        &seg.director,
        &["-a", "-t", &svc, "-r", new_rs, "-g", "-w", "1"],
    );
    let new_slot = slot(&lab, "192.0.2.14");
    assert_ne!(new_slot, old_slot, "{new_rs} took {held_addr}'s slot");
    wait_progress(&mut lab, client);
    wait_progress(&mut lab, client);

    std::fs::write(&stop, b"").unwrap();
    lab.wait_for_log(client, "done ", Duration::from_secs(10));
    let log = lab.log(client);
    assert!(
        log.contains("reason=stop") && !log.contains("error"),
        "the long-lived connection did not last through the changes:\n{log}"
    );

    let log = lvs::stop_ironvs(&mut lab, daemon);
    lvs::check_worker_lines(&log, 1);
}
