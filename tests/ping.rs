//! End to end: `ironvs` owns one end of a veth pair through DPDK's `net_af_packet` and answers ARP
//! and IPv6 neighbour solicitations and ICMP echo for its own addresses; a client namespace pings
//! it over IPv4 and IPv6 with the kernel's own stack.

mod common;

use std::time::Duration;

use common::Lab;

/// The MAC address of an interface inside a namespace, as `ip link` shows it.
fn mac_of(lab: &Lab, ns: &str, ifname: &str) -> String {
    let out = lab.exec(ns, &["ip", "-o", "link", "show", ifname]);
    let mac = out
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in `{out}`"));
    mac.to_string()
}

#[test]
fn client_pings_the_director_address() {
    require_root!();
    let mut lab = Lab::new();
    let client = lab.netns("cli");
    let director = lab.netns("dir");
    lab.veth(&client, "c0", &director, "d0");
    lab.exec(&client, &["ip", "addr", "add", "192.0.2.2/24", "dev", "c0"]);
    lab.exec(
        &client,
        &["ip", "addr", "add", "2001:db8::2/64", "dev", "c0", "nodad"],
    );
    lab.exec(&client, &["ip", "link", "set", "c0", "up"]);
    // The director's kernel keeps no address on d0: ironvs owns 192.0.2.1 there.
    lab.sysctl(&director, "net.ipv6.conf.d0.disable_ipv6", "1");
    lab.exec(&director, &["ip", "link", "set", "d0", "up"]);

    let config = lab.dir().join("ironvs.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[eal]
file_prefix = "{prefix}"
args = ["--no-huge", "-m", "256", "--no-telemetry"]

[cpu]
workers = 1
worker_cpus = [0]

[mempool]
mbufs = 4095

[[port]]
name = "dp0"
device = "net_af_packet0,iface=d0"
addresses = ["192.0.2.1/24", "2001:db8::1/64"]
"#,
            prefix = lab.prefix()
        ),
    )
    .unwrap();
    let daemon = lab.spawn(
        &director,
        "ironvs",
        &[
            env!("CARGO_BIN_EXE_ironvs"),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    lab.wait_for_log(daemon, "workers running", Duration::from_secs(60));

    let out = lab.exec(
        &client,
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.1"],
    );
    assert!(out.contains("3 packets transmitted, 3 received"), "{out}");

    let neigh = lab.exec(&client, &["ip", "neigh", "show", "192.0.2.1", "dev", "c0"]);
    let port_mac = mac_of(&lab, &director, "d0");
    assert!(
        neigh.contains(&format!("lladdr {port_mac}")),
        "the client's ARP entry `{neigh}` is not the port's MAC {port_mac}"
    );

    // IPv6: neighbour discovery answered with the port's MAC, then echo.
    let out = lab.exec(
        &client,
        &[
            "ping",
            "-6",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "2001:db8::1",
        ],
    );
    assert!(out.contains("3 packets transmitted, 3 received"), "{out}");
    let neigh6 = lab.exec(
        &client,
        &["ip", "-6", "neigh", "show", "2001:db8::1", "dev", "c0"],
    );
    assert!(neigh6.contains(&format!("lladdr {port_mac}")), "{neigh6}");

    assert_eq!(lab.terminate(daemon, Duration::from_secs(20)), Some(0));
    let log = lab.log(daemon);
    assert!(log.contains("stopped cleanly"), "{log}");
}
