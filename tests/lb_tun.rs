//! End to end, IP tunnelling (LVS-TUN): `ironvs` wraps each client packet in an outer IPv4 header
//! (protocol 4) from its own address on the port to the real server.
//!
//! The test kernel has no `ipip` module, so the real servers cannot decapsulate (their set-up,
//! deploy/realserver/tun.sh, needs it); the test checks the wire instead (see
//! `common/tun.rs`): captures on the client and on both real servers, a few connection attempts
//! that time out, every encapsulated frame compared with the SYN the client sent.

mod common;

use common::lvs::{self, PortSpec};
use common::{tun, Lab};

const CONNECTIONS: usize = 4;

#[test]
fn tun_encapsulates_the_client_syn_to_the_real_server() {
    require_root!();
    let mut lab = Lab::new();
    let seg = lvs::segment(&mut lab, 2);
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
mode = "tun"

[[service.real_server]]
address = "192.0.2.12"
port = 80
weight = 1
mode = "tun"
"#,
    );
    let daemon = lvs::start_ironvs(&mut lab, &seg.director, &config);

    let ports_at = tun::check_tun_wire(&mut lab, &seg, CONNECTIONS);
    // Round robin: two connections per real server, each one sticking to its server.
    assert!(ports_at[0].is_disjoint(&ports_at[1]), "{ports_at:?}");
    assert_eq!(
        [ports_at[0].len(), ports_at[1].len()],
        [CONNECTIONS / 2, CONNECTIONS / 2],
        "{ports_at:?}"
    );

    let stats = lvs::api_get(&lab, &seg.director, "/api/v1/stats");
    let (total, _) = lvs::service_conns(&stats, lvs::SEG_VIP, 80);
    assert_eq!(total, CONNECTIONS as u64, "{stats}");
    let log = lvs::stop_ironvs(&mut lab, daemon);
    lvs::check_worker_lines(&log, 1);
}
