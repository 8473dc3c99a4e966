//! LVS topologies for end-to-end tests: a client, an `ironvs` director and real servers running
//! real HTTP and echo servers, wired through Linux bridges in a "switch" namespace.
//!
//! Two shapes, as IPVS users build them:
//! ```text
//! segment (DR, TUN)                     two subnets (NAT, FullNAT)
//!   client 192.0.2.2 ─┐                   client 198.51.100.2 ── br ── d0 director d1 ── br ─┬─ rs1 203.0.113.11
//!   director d0 ──────┼─ br               (VIP 198.51.100.100; dp0 198.51.100.1,              └─ rs2 203.0.113.12
//!   rs1 192.0.2.11 ───┤                    dp1 203.0.113.1, FullNAT local 203.0.113.200)
//!   rs2 192.0.2.12 ───┘   (VIP 192.0.2.100, director 192.0.2.1)
//! ```
//! Promises: only documentation ranges (RFC 5737); IPv6 off in every namespace (no DAD, router
//! solicitations or MLD in captures); checksum offload and segmentation off on every veth, so
//! `net_af_packet` sees complete checksums and no 64 KB GSO frames, and a kernel that receives a
//! bad checksum from the director drops the packet instead of trusting it; the director's
//! interfaces carry no kernel address and its `ip_forward` stays 0: `ironvs` owns them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Lab;

/// The director's address on the single segment.
pub const SEG_DIRECTOR: &str = "192.0.2.1";
/// The client's address on the single segment.
pub const SEG_CLIENT: &str = "192.0.2.2";
/// The VIP on the single segment.
pub const SEG_VIP: &str = "192.0.2.100";

/// The director's address on the client network (port dp0).
pub const NET_CLIENT_DIRECTOR: &str = "198.51.100.1";
/// The client's address on the client network.
pub const NET_CLIENT: &str = "198.51.100.2";
/// The VIP, on the client network.
pub const NET_VIP: &str = "198.51.100.100";
/// The director's address on the real-server network (port dp1).
pub const NET_RS_DIRECTOR: &str = "203.0.113.1";
/// The FullNAT local address (on the real-server network).
pub const NET_LADDR: &str = "203.0.113.200";

/// Where the daemon's REST API listens inside the director namespace.
pub const API: &str = "http://127.0.0.1:9180";

/// A host of the lab: its namespace, its one interface and its address.
#[derive(Debug, Clone)]
pub struct Host {
    /// Short name (`client`, `rs1`, …); real servers answer with it.
    pub name: String,
    /// Namespace.
    pub ns: String,
    /// Its interface towards the switch.
    pub ifname: String,
    /// Its IPv4 address (without prefix length).
    pub addr: String,
}

/// One L2 segment: client, director (`d0`) and real servers on one bridge.
pub struct Segment {
    /// The namespace holding the bridge.
    pub switch: String,
    /// The client.
    pub client: Host,
    /// The director's namespace; its interface is `d0`, without kernel address.
    pub director: String,
    /// Real servers `rs1..`, at 192.0.2.11.. (not yet set up for any mode).
    pub real_servers: Vec<Host>,
}

/// Two subnets: the client network on the director's `d0`, the real servers on its `d1`.
pub struct TwoNets {
    /// The namespace holding both bridges.
    pub switch: String,
    /// The client.
    pub client: Host,
    /// The director's namespace; interfaces `d0` (clients) and `d1` (real servers).
    pub director: String,
    /// Real servers `rs1..`, at 203.0.113.11.. (no route set up: add one per mode).
    pub real_servers: Vec<Host>,
}

/// A namespace with IPv6 off for every interface created in it.
pub fn quiet_netns(lab: &mut Lab, short: &str) -> String {
    let ns = lab.netns(short);
    lab.sysctl(&ns, "net.ipv6.conf.all.disable_ipv6", "1");
    lab.sysctl(&ns, "net.ipv6.conf.default.disable_ipv6", "1");
    ns
}

/// Turns checksum offload, segmentation and GRO off on an interface and brings it up.
pub fn quiet_if(lab: &Lab, ns: &str, ifname: &str) {
    lab.exec(
        ns,
        &[
            "ethtool", "-K", ifname, "tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro",
            "off",
        ],
    );
    lab.exec(ns, &["ip", "link", "set", ifname, "up"]);
}

/// Creates a bridge in the switch namespace.
fn bridge(lab: &Lab, switch: &str, name: &str) {
    lab.exec(switch, &["ip", "link", "add", name, "type", "bridge"]);
    lab.exec(switch, &["ip", "link", "set", name, "up"]);
}

/// Connects `ifname` in `ns` to `bridge` through a veth whose switch end is `port`.
fn plug(lab: &mut Lab, switch: &str, bridge: &str, port: &str, ns: &str, ifname: &str) {
    lab.veth(ns, ifname, switch, port);
    lab.exec(switch, &["ip", "link", "set", port, "master", bridge]);
    quiet_if(lab, switch, port);
    quiet_if(lab, ns, ifname);
}

/// A host with one interface `ifname` plugged into `bridge`, with `addr`/24.
fn host(lab: &mut Lab, switch: &str, bridge: &str, name: &str, addr: &str, ifname: &str) -> Host {
    let ns = quiet_netns(lab, name);
    plug(lab, switch, bridge, &format!("s-{name}"), &ns, ifname);
    lab.exec(
        &ns,
        &["ip", "addr", "add", &format!("{addr}/24"), "dev", ifname],
    );
    Host {
        name: name.to_string(),
        ns,
        ifname: ifname.to_string(),
        addr: addr.to_string(),
    }
}

/// The director namespace: IPv6 off, no addresses, forwarding off (the default, checked).
fn director_ns(lab: &mut Lab) -> String {
    let ns = quiet_netns(lab, "dir");
    let fwd = lab.exec(&ns, &["sysctl", "-n", "net.ipv4.ip_forward"]);
    assert_eq!(fwd.trim(), "0", "a new namespace forwards IPv4");
    ns
}

/// The single-segment lab for DR and TUN with `n_rs` real servers.
pub fn segment(lab: &mut Lab, n_rs: usize) -> Segment {
    let switch = quiet_netns(lab, "sw");
    bridge(lab, &switch, "br0");
    let client = host(lab, &switch, "br0", "client", SEG_CLIENT, "c0");
    let director = director_ns(lab);
    plug(lab, &switch, "br0", "s-dir0", &director, "d0");
    let real_servers = (1..=n_rs)
        .map(|i| {
            let addr = format!("192.0.2.{}", 10 + i);
            host(lab, &switch, "br0", &format!("rs{i}"), &addr, "r0")
        })
        .collect();
    Segment {
        switch,
        client,
        director,
        real_servers,
    }
}

/// The two-subnet lab for NAT and FullNAT with `n_rs` real servers.
pub fn two_nets(lab: &mut Lab, n_rs: usize) -> TwoNets {
    let switch = quiet_netns(lab, "sw");
    bridge(lab, &switch, "brc");
    bridge(lab, &switch, "brr");
    let client = host(lab, &switch, "brc", "client", NET_CLIENT, "c0");
    let director = director_ns(lab);
    plug(lab, &switch, "brc", "s-dir0", &director, "d0");
    plug(lab, &switch, "brr", "s-dir1", &director, "d1");
    let real_servers = (1..=n_rs)
        .map(|i| {
            let addr = format!("203.0.113.{}", 10 + i);
            host(lab, &switch, "brr", &format!("rs{i}"), &addr, "r0")
        })
        .collect();
    TwoNets {
        switch,
        client,
        director,
        real_servers,
    }
}

/// The repository's root (for `deploy/` and `tests/scripts/`).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `deploy/realserver/<script> ARGS` inside a real server's namespace.
pub fn realserver_setup(lab: &Lab, rs: &Host, script: &str, args: &[&str]) -> String {
    let path = repo().join("deploy/realserver").join(script);
    let mut cmd = vec![path.to_str().expect("UTF-8 path")];
    cmd.extend_from_slice(args);
    lab.exec(&rs.ns, &cmd)
}

/// Starts `tests/scripts/lbtool.py SUB ARGS` in a namespace; returns the process index.
pub fn lbtool(lab: &mut Lab, ns: &str, name: &str, args: &[&str]) -> usize {
    let script = repo().join("tests/scripts/lbtool.py");
    let mut cmd = vec!["python3", "-u", script.to_str().expect("UTF-8 path")];
    cmd.extend_from_slice(args);
    lab.spawn(ns, name, &cmd)
}

/// Starts `lbtool.py KIND` (a server that answers with the real server's name) on `bind:port`
/// in `rs`'s namespace, logging as `KIND-NAME`; waits until it listens.
fn named_server(lab: &mut Lab, rs: &Host, kind: &str, bind: &str, port: u16) -> usize {
    let port = port.to_string();
    let log = format!("{}-{}", kind.trim_end_matches("-server"), rs.name);
    let args = [kind, "--bind", bind, "--port", &port, "--name", &rs.name];
    let p = lbtool(lab, &rs.ns, &log, &args);
    lab.wait_for_log(p, "listening on", Duration::from_secs(10));
    p
}

/// Starts an HTTP server on a real server answering with its name; waits until it listens.
pub fn http_server(lab: &mut Lab, rs: &Host, bind: &str, port: u16) -> usize {
    named_server(lab, rs, "http-server", bind, port)
}

/// Starts a line echo server greeting with its name; waits until it listens.
pub fn echo_server(lab: &mut Lab, rs: &Host, bind: &str, port: u16) -> usize {
    named_server(lab, rs, "echo-server", bind, port)
}

/// Starts a UDP server on a real server that logs every datagram and answers with its name;
/// waits until it is bound.
pub fn udp_server(lab: &mut Lab, rs: &Host, bind: &str, port: u16) -> usize {
    named_server(lab, rs, "udp-server", bind, port)
}

/// Sends `n` datagrams `TAG-0`.. from one socket bound to `source` (`ADDR:PORT`) in `ns`, one
/// at a time, each waiting 2 s for its answer: per datagram, the answering server's name or the
/// error.
pub fn udp_exchange(
    lab: &Lab,
    ns: &str,
    source: &str,
    host: &str,
    port: u16,
    tag: &str,
    n: usize,
) -> Vec<Result<String, String>> {
    let script = repo().join("tests/scripts/lbtool.py");
    let (port, n_s) = (port.to_string(), n.to_string());
    let out = lab.exec(
        ns,
        &[
            "python3",
            "-u",
            script.to_str().expect("UTF-8 path"),
            "udp-client",
            "--host",
            host,
            "--port",
            &port,
            "--source",
            source,
            "--count",
            &n_s,
            "--tag",
            tag,
        ],
    );
    let answers: Vec<Result<String, String>> = out
        .lines()
        .map(|l| match l.strip_prefix("reply ") {
            Some(name) => Ok(name.to_string()),
            None => Err(l.to_string()),
        })
        .collect();
    assert_eq!(answers.len(), n, "one line per datagram expected:\n{out}");
    answers
}

/// The `(peer, payload)` of a UDP server's `datagram IP:PORT PAYLOAD` log lines, in order.
pub fn datagrams(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|l| l.strip_prefix("datagram "))
        .filter_map(|d| d.split_once(' '))
        .map(|(peer, payload)| (peer.to_string(), payload.to_string()))
        .collect()
}

/// The addresses in a server's `peer IP:PORT` log lines, in order.
pub fn peers(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.strip_prefix("peer "))
        .filter_map(|p| p.rsplit_once(':').map(|(ip, _)| ip.to_string()))
        .collect()
}

/// One HTTP GET with curl from `ns` (2 s to connect, 4 s in all): the body, or curl's error.
pub fn http_get(lab: &Lab, ns: &str, url: &str) -> Result<String, String> {
    let out = lab.try_exec(
        ns,
        &[
            "curl",
            "-sS",
            "--connect-timeout",
            "2",
            "--max-time",
            "4",
            url,
        ],
    );
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// `n` GETs, each on a new connection: how many answers each body (server name) got, and the
/// errors; stops after three errors so that a broken director fails the test quickly.
pub fn http_names(
    lab: &Lab,
    ns: &str,
    url: &str,
    n: usize,
) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut names = BTreeMap::new();
    let mut errors = Vec::new();
    for i in 0..n {
        match http_get(lab, ns, url) {
            Ok(body) => *names.entry(body).or_insert(0) += 1,
            Err(e) => errors.push(format!("request {i}: {e}")),
        }
        if errors.len() == 3 {
            break;
        }
    }
    (names, errors)
}

/// The MAC address of an interface inside a namespace, as `ip link` shows it.
pub fn mac_of(lab: &Lab, ns: &str, ifname: &str) -> String {
    let out = lab.exec(ns, &["ip", "-o", "link", "show", ifname]);
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in `{out}`"))
        .to_string()
}

/// A MAC address as `ip link` prints it (`02:00:5e:00:53:01`).
pub fn mac_string(b: &[u8]) -> String {
    let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    hex.join(":")
}

/// CPUs this process may run on (`Cpus_allowed_list`), for the workers' `worker_cpus`.
fn allowed_cpus() -> Vec<u16> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or("0")
        .trim();
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
            cpus.extend(a..=b);
        }
    }
    if cpus.is_empty() {
        cpus.push(0);
    }
    cpus
}

/// A data port of the daemon: its name, the director's veth end and the director's address.
pub struct PortSpec<'a> {
    /// `dp0`, `dp1`, …
    pub name: &'a str,
    /// The kernel interface the `net_af_packet` device opens.
    pub iface: &'a str,
    /// The director's address with prefix length.
    pub address: &'a str,
}

/// Writes the daemon's configuration: `workers` workers (one queue pair each on every port, the
/// main lcore on the first allowed CPU and the workers spread over the others), the API on
/// [`API`], the ports, then `rest` verbatim (`[fullnat]`, `[[route]]`, `[[service]]`, …).
pub fn daemon_config(lab: &Lab, workers: u16, ports: &[PortSpec], rest: &str) -> PathBuf {
    let cpus = allowed_cpus();
    let main_cpu = cpus[0];
    let worker_cpus: Vec<String> = (0..usize::from(workers))
        .map(|w| cpus[(w + 1) % cpus.len()].to_string())
        .collect();
    let mut text = format!(
        r#"[eal]
file_prefix = "{prefix}"
args = ["--no-huge", "-m", "512", "--no-telemetry"]

[cpu]
main_cpu = {main_cpu}
workers = {workers}
worker_cpus = [{worker_cpus}]

[mempool]
mbufs = 8191

[dataplane]
max_connections = 65536

[api]
listen = "{api}"
"#,
        prefix = lab.prefix(),
        worker_cpus = worker_cpus.join(", "),
        api = API.trim_start_matches("http://"),
    );
    for (i, p) in ports.iter().enumerate() {
        text.push_str(&format!(
            r#"
[[port]]
name = "{name}"
device = "net_af_packet{i},iface={iface},qpairs={workers}"
addresses = ["{address}"]
"#,
            name = p.name,
            iface = p.iface,
            address = p.address,
        ));
    }
    text.push('\n');
    text.push_str(rest);
    let path = lab.dir().join("ironvs.toml");
    std::fs::write(&path, text).expect("write ironvs.toml");
    path
}

/// Starts `ironvs` in the director namespace and waits for "workers running".
pub fn start_ironvs(lab: &mut Lab, director: &str, config: &Path) -> usize {
    let daemon = lab.spawn(
        director,
        "ironvs",
        &[
            env!("CARGO_BIN_EXE_ironvs"),
            "--config",
            config.to_str().expect("UTF-8 path"),
        ],
    );
    lab.wait_for_log(daemon, "workers running", Duration::from_secs(60));
    daemon
}

/// Stops the daemon with SIGTERM; asserts it exits 0; returns its whole log.
pub fn stop_ironvs(lab: &mut Lab, daemon: usize) -> String {
    let code = lab.terminate(daemon, Duration::from_secs(20));
    let log = lab.log(daemon);
    assert_eq!(code, Some(0), "ironvs did not exit 0 on SIGTERM:\n{log}");
    log
}

/// The `ironvsadm` binary, built next to `ironvs` by `cargo build -p control-api --bin ironvsadm`.
pub fn ironvsadm_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_ironvs")).with_file_name("ironvsadm");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p control-api --bin ironvsadm` \
         (same profile as the tests)",
        bin.display()
    );
    bin
}

/// Runs `ironvsadm ARGS` against the daemon's API inside the director namespace; panics with its
/// output when it fails.
pub fn ironvsadm(lab: &Lab, director: &str, args: &[&str]) -> String {
    let bin = ironvsadm_bin();
    let mut cmd = vec![bin.to_str().expect("UTF-8 path"), "--server", API];
    cmd.extend_from_slice(args);
    lab.exec(director, &cmd)
}

/// `GET {API}{path}` from inside the director namespace, parsed as JSON.
pub fn api_get(lab: &Lab, director: &str, path: &str) -> serde_json::Value {
    let url = format!("{API}{path}");
    let body = lab.exec(
        director,
        &["curl", "-sS", "--fail", "--max-time", "5", &url],
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {body}"))
}

/// Drops of `reason` summed over the workers of a `/api/v1/stats` answer
/// (`workers[].drops.{reason}`; a reason absent from a worker counts 0).
pub fn worker_drops(stats: &serde_json::Value, reason: &str) -> u64 {
    workers(stats)
        .iter()
        .map(|w| w["drops"][reason].as_u64().unwrap_or(0))
        .sum()
}

/// The `workers` array of a `/api/v1/stats` answer.
pub fn workers(stats: &serde_json::Value) -> &Vec<serde_json::Value> {
    stats["workers"]
        .as_array()
        .unwrap_or_else(|| panic!("no workers[] in /api/v1/stats: {stats}"))
}

/// Connections scheduled for a service, in all and per real server (`"addr:port"`), from a
/// `/api/v1/stats` answer (`services[].stats.conns`, `services[].real_servers[].stats.conns`).
pub fn service_conns(
    stats: &serde_json::Value,
    vip: &str,
    port: u16,
) -> (u64, BTreeMap<String, u64>) {
    let svc = stats["services"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|s| s["vip"].as_str() == Some(vip) && s["port"].as_u64() == Some(port.into()))
        })
        .unwrap_or_else(|| panic!("no service {vip}:{port} in /api/v1/stats: {stats}"));
    let per_rs = svc["real_servers"]
        .as_array()
        .unwrap_or_else(|| panic!("no real_servers[] in {svc}"))
        .iter()
        .map(|r| {
            let key = format!("{}:{}", r["addr"].as_str().unwrap_or("?"), r["port"]);
            (key, r["stats"]["conns"].as_u64().unwrap_or(0))
        })
        .collect();
    (svc["stats"]["conns"].as_u64().unwrap_or(0), per_rs)
}

/// Whether the daemon already prints `worker N: … reply_misses=M …` when it stops. While false,
/// [`check_worker_lines`] checks those lines only when they are there; switch it on once the
/// daemon's stop log has them, so that their absence fails the tests.
pub const STRICT_WORKER_LINES: bool = true;

/// Checks the per-worker lines of the daemon's stop log: one per worker, each with
/// `reply_misses=0` (no reply of a connection reached a core that does not hold it).
pub fn check_worker_lines(log: &str, workers: usize) {
    for line in log.lines().filter(|l| l.contains("] worker ")) {
        eprintln!("{line}");
    }
    let lines = worker_counters(log);
    if lines.is_empty() && !STRICT_WORKER_LINES {
        eprintln!("note: ironvs printed no `worker N: …` counter lines; not checked yet");
        return;
    }
    assert_eq!(lines.len(), workers, "one counter line per worker:\n{log}");
    for (i, w) in lines.iter().enumerate() {
        assert_eq!(
            w.get("reply_misses"),
            Some(&0),
            "worker {i}: replies missed their connection's core: {w:?}"
        );
    }
}

/// The per-worker counter lines the daemon prints when it stops, `worker N: key=value …` (also
/// `key value` pairs), as one map per worker in worker order; empty when it prints none.
pub fn worker_counters(log: &str) -> Vec<BTreeMap<String, u64>> {
    let mut out: BTreeMap<u32, BTreeMap<String, u64>> = BTreeMap::new();
    for line in log.lines() {
        let Some(at) = line.find("worker ") else {
            continue;
        };
        let rest = &line[at + "worker ".len()..];
        let Some((id, counters)) = rest.split_once(':') else {
            continue;
        };
        let Ok(id) = id.trim().parse::<u32>() else {
            continue;
        };
        let words: Vec<&str> = counters
            .split(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ']'))
            .filter(|w| !w.is_empty())
            .collect();
        let map = out.entry(id).or_default();
        let mut i = 0;
        while i < words.len() {
            if let Some((k, v)) = words[i].split_once('=') {
                if let Ok(v) = v.parse() {
                    map.insert(k.to_string(), v);
                }
            } else if let Some(Ok(v)) = words.get(i + 1).map(|n| n.parse::<u64>()) {
                map.insert(words[i].to_string(), v);
                i += 1;
            }
            i += 1;
        }
    }
    out.into_values().filter(|m| !m.is_empty()).collect()
}

/// A running `tcpdump -w` in a namespace.
pub struct Capture {
    proc: usize,
    file: PathBuf,
}

/// Starts capturing every frame of `ifname` in `ns` (full length, written packet by packet);
/// returns once tcpdump listens.
pub fn start_capture(lab: &mut Lab, ns: &str, ifname: &str, name: &str) -> Capture {
    let file = lab.dir().join(format!("{name}.pcap"));
    let proc = lab.spawn(
        ns,
        &format!("tcpdump-{name}"),
        &[
            "tcpdump",
            "-i",
            ifname,
            "-n",
            "-U",
            "--immediate-mode",
            "-s",
            "0",
            "-Z",
            "root",
            "-w",
            file.to_str().expect("UTF-8 path"),
        ],
    );
    lab.wait_for_log(proc, "listening on", Duration::from_secs(10));
    Capture { proc, file }
}

/// Stops a capture and returns its frames; frames still in flight get 300 ms to arrive first.
pub fn stop_capture(lab: &mut Lab, cap: Capture) -> Vec<Vec<u8>> {
    std::thread::sleep(Duration::from_millis(300));
    let code = lab.terminate(cap.proc, Duration::from_secs(10));
    assert_eq!(code, Some(0), "tcpdump: {}", lab.log(cap.proc));
    let bytes = std::fs::read(&cap.file).expect("read capture");
    super::pcap::frames(&bytes).unwrap_or_else(|e| panic!("{}: {e}", cap.file.display()))
}
