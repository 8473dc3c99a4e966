//! End to end, the exception path: traffic that is neither load-balanced nor answered by the data
//! plane (here a TCP service of the director host itself, as SSH or BGP would be) reaches the
//! kernel through the port's `net_tap` kernel interface and its answers leave through the data
//! port, so the host keeps using the data NIC. Ping and ARP stay in the data plane.

mod common;

use std::time::Duration;

use common::lvs::{self, Host};
use common::Lab;

#[test]
fn director_host_service_reached_through_the_kernel_interface() {
    require_root!();
    let mut lab = Lab::new();
    let seg = lvs::segment(&mut lab, 0);
    let config = lab.dir().join("ironvs.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[eal]
file_prefix = "{prefix}"
args = ["--no-huge", "-m", "512", "--no-telemetry"]

[cpu]
workers = 1
worker_cpus = [0]

[mempool]
mbufs = 8191

[api]
listen = "127.0.0.1:9180"

[[port]]
name = "dp0"
device = "net_af_packet0,iface=d0"
addresses = ["192.0.2.1/24"]
kernel_interface = "ivs0"
"#,
            prefix = lab.prefix()
        ),
    )
    .unwrap();
    let daemon = lvs::start_ironvs(&mut lab, &seg.director, &config);

    // The kernel interface carries the port's MAC and address.
    let port_mac = lvs::mac_of(&lab, &seg.director, "d0");
    assert_eq!(lvs::mac_of(&lab, &seg.director, "ivs0"), port_mac);
    let addrs = lab.exec(
        &seg.director,
        &["ip", "-o", "-4", "addr", "show", "dev", "ivs0"],
    );
    assert!(addrs.contains("192.0.2.1/24"), "{addrs}");

    // A service of the director host, bound to the kernel's copy of the port address.
    let host = Host {
        name: "director-host".into(),
        ns: seg.director.clone(),
        ifname: "ivs0".into(),
        addr: "192.0.2.1".into(),
    };
    lvs::http_server(&mut lab, &host, "192.0.2.1", 2222);
    let mut answers = 0;
    for _ in 0..10 {
        match lvs::http_get(&lab, &seg.client.ns, "http://192.0.2.1:2222/") {
            Ok(body) => {
                assert_eq!(body, "director-host");
                answers += 1;
            }
            Err(e) => panic!("the host service is not reachable through ironvs: {e}"),
        }
    }
    assert_eq!(answers, 10);
    // Echo requests are still answered by the data plane itself.
    let out = lab.exec(
        &seg.client.ns,
        &["ping", "-c", "2", "-i", "0.2", "-W", "2", "192.0.2.1"],
    );
    assert!(out.contains("2 received"), "{out}");

    std::thread::sleep(Duration::from_millis(100));
    let log = lvs::stop_ironvs(&mut lab, daemon);
    let w = &lvs::worker_counters(&log)[0];
    // Ten connections, each at least SYN, request, FIN in and SYN-ACK, response, FIN out.
    assert!(w["to_kernel"] >= 30, "{log}");
    assert!(w["from_kernel"] >= 30, "{log}");
    assert!(w["host_replies"] >= 2, "{log}");
}
