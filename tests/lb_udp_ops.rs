//! End to end, UDP one-packet scheduling (ipvsadm `-o`, `flags.one_packet`) in DR mode: the
//! datagrams of ONE client tuple are each scheduled on their own, round-robin over two real
//! servers, and leave no connection entry; once the flag is cleared (`ironvsadm -E` without
//! `-o`) the same tuple sticks to one real server through one connection entry.

mod common;

use common::lvs::{self, PortSpec};
use common::Lab;

const DATAGRAMS: usize = 10;
/// The client's one source tuple for every datagram of the test.
const SOURCE: &str = "192.0.2.2:40000";

/// `(conns, inpkts)` of the service VIP:53 in a `/api/v1/stats` answer.
fn service_counters(stats: &serde_json::Value) -> (u64, u64) {
    let svc = stats["services"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|s| s["vip"].as_str() == Some(lvs::SEG_VIP) && s["port"].as_u64() == Some(53))
        })
        .unwrap_or_else(|| panic!("no service {}:53 in {stats}", lvs::SEG_VIP));
    let c = &svc["stats"];
    (
        c["conns"].as_u64().unwrap_or(u64::MAX),
        c["inpkts"].as_u64().unwrap_or(u64::MAX),
    )
}

/// The UDP connection entries of the client's tuple (`GET /api/v1/connections`).
fn client_udp_conns(lab: &Lab, director: &str) -> Vec<serde_json::Value> {
    let path = format!("/api/v1/connections?proto=udp&client={}", lvs::SEG_CLIENT);
    let page = lvs::api_get(lab, director, &path);
    page["connections"]
        .as_array()
        .unwrap_or_else(|| panic!("no connections[] in {page}"))
        .iter()
        .filter(|c| c["client_port"].as_u64() == Some(40000))
        .cloned()
        .collect()
}

#[test]
fn dr_udp_one_packet_spreads_one_tuple() {
    require_root!();
    let mut lab = Lab::new();
    let seg = lvs::segment(&mut lab, 2);
    let mut servers = Vec::new();
    for rs in &seg.real_servers {
        lvs::realserver_setup(&lab, rs, "dr.sh", &["up", lvs::SEG_VIP]);
        servers.push(lvs::udp_server(&mut lab, rs, lvs::SEG_VIP, 53));
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
proto = "udp"
vip = "192.0.2.100"
port = 53
scheduler = "rr"
flags = { one_packet = true }

[[service.real_server]]
address = "192.0.2.11"
port = 53
weight = 1
mode = "dr"

[[service.real_server]]
address = "192.0.2.12"
port = 53
weight = 1
mode = "dr"
"#,
    );
    let daemon = lvs::start_ironvs(&mut lab, &seg.director, &config);
    let svc_path = "/api/v1/services/udp/192.0.2.100/53";
    let svc = lvs::api_get(&lab, &seg.director, svc_path);
    assert_eq!(svc["flags"]["one_packet"], true, "{svc}");

    // Phase 1, with -o: each datagram of the one tuple goes to the next real server.
    let names = answered_by(&lab, &seg.client.ns, "a");
    for pair in names.windows(2) {
        assert_ne!(pair[0], pair[1], "answers do not alternate: {names:?}");
    }
    for rs in ["rs1", "rs2"] {
        let n = names.iter().filter(|n| *n == rs).count();
        assert_eq!(n, DATAGRAMS / 2, "{rs}: {names:?}");
    }
    // Each real server received exactly the datagrams it answered, from the client's tuple.
    for (rs, &proc) in seg.real_servers.iter().zip(&servers) {
        let want: Vec<(String, String)> = (0..DATAGRAMS)
            .filter(|&i| names[i] == rs.name)
            .map(|i| (SOURCE.to_string(), format!("a-{i}")))
            .collect();
        assert_eq!(lvs::datagrams(&lab.log(proc)), want, "{}", rs.name);
    }
    let stats = lvs::api_get(&lab, &seg.director, "/api/v1/stats");
    let n = DATAGRAMS as u64;
    assert_eq!(service_counters(&stats), (n, n), "(conns, inpkts): {stats}");
    let (_, per_rs) = lvs::service_conns(&stats, lvs::SEG_VIP, 53);
    let want = [
        ("192.0.2.11:53".to_string(), n / 2),
        ("192.0.2.12:53".to_string(), n / 2),
    ];
    assert_eq!(per_rs, want.into_iter().collect(), "{stats}");
    let conns = client_udp_conns(&lab, &seg.director);
    assert!(conns.is_empty(), "one-packet scheduling left {conns:?}");

    // Phase 2, -o cleared by -E (flags are replaced as a whole): the tuple sticks to one server.
    lvs::ironvsadm(
        &lab,
        &seg.director,
        &["-E", "-u", "192.0.2.100:53", "-s", "rr"],
    );
    let svc = lvs::api_get(&lab, &seg.director, svc_path);
    assert_eq!(svc["flags"]["one_packet"], false, "{svc}");
    lvs::ironvsadm(&lab, &seg.director, &["-Z", "-u", "192.0.2.100:53"]);
    let names = answered_by(&lab, &seg.client.ns, "b");
    let chosen = names[0].clone();
    assert!(names.iter().all(|n| *n == chosen), "{names:?}");
    for (rs, &proc) in seg.real_servers.iter().zip(&servers) {
        let got: Vec<(String, String)> = lvs::datagrams(&lab.log(proc))
            .into_iter()
            .filter(|(_, payload)| payload.starts_with("b-"))
            .collect();
        let want: Vec<(String, String)> = if rs.name == chosen {
            (0..DATAGRAMS)
                .map(|i| (SOURCE.to_string(), format!("b-{i}")))
                .collect()
        } else {
            Vec::new()
        };
        assert_eq!(got, want, "{}", rs.name);
    }
    let stats = lvs::api_get(&lab, &seg.director, "/api/v1/stats");
    assert_eq!(service_counters(&stats), (1, n), "(conns, inpkts): {stats}");
    let conns = client_udp_conns(&lab, &seg.director);
    assert_eq!(conns.len(), 1, "{conns:?}");
    let chosen_addr = &seg
        .real_servers
        .iter()
        .find(|rs| rs.name == chosen)
        .expect("a known real server answered")
        .addr;
    assert_eq!(conns[0]["real_addr"].as_str(), Some(chosen_addr.as_str()));
    assert_eq!(conns[0]["vport"].as_u64(), Some(53), "{conns:?}");
    assert_eq!(conns[0]["state"].as_str(), Some("UDP"), "{conns:?}");

    let log = lvs::stop_ironvs(&mut lab, daemon);
    lvs::check_worker_lines(&log, 1);
}

/// Sends `DATAGRAMS` datagrams `TAG-0`.. from `SOURCE` in `ns` to the VIP, one at a time, and
/// returns the name of the real server that answered each (every one must be answered).
fn answered_by(lab: &Lab, ns: &str, tag: &str) -> Vec<String> {
    let answers = lvs::udp_exchange(lab, ns, SOURCE, lvs::SEG_VIP, 53, tag, DATAGRAMS);
    answers
        .iter()
        .map(|a| a.clone().unwrap_or_else(|e| panic!("{e}: {answers:?}")))
        .collect()
}
