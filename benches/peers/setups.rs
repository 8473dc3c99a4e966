//! The lab's topology and the five ways of serving the VIP on it: directly (no balancer, the
//! ceiling of client and servers), HAProxy `mode tcp`, nginx `stream`, ironvs DR, ironvs FullNAT.
//!
//! ```text
//!            client net 198.51.100.0/24 (brc)          real-server net 203.0.113.0/24 (brr)
//! client c0 .2 ──┐                                  ┌── r0 .11 rs1 (r1 198.51.100.11 on brc)
//!                ├─ brc ── d0 [director] d1 ── brr ─┤
//!   rs1 r1 .11 ──┤   VIP 198.51.100.100             └── r0 .12 rs2 (r1 198.51.100.12 on brc)
//!   rs2 r1 .12 ──┘
//! ```
//! Each real server is on both nets: DR forwards to its client-net address on the director's `d0`
//! and it answers the client directly from the VIP (held on `lo`, arp_ignore=1/arp_announce=2,
//! as in `deploy/realserver/dr.sh`); FullNAT and the proxies reach it on the real-server net
//! through `d1`. The wiring never changes between setups; only the director does: for the
//! proxies its kernel holds 198.51.100.1 and the VIP on `d0` and 203.0.113.1 on `d1`; for ironvs
//! the kernel holds nothing and ironvs opens both veths with `net_af_packet`.

use std::time::Duration;

use crate::lab::{Error, Lab, ProcId};

/// The VIP, on the client net.
pub const VIP: &str = "198.51.100.100";
/// The FullNAT local address.
/// The FullNAT local address of round `round` (0-based): 203.0.113.200, .201, …
///
/// A fresh one per round, because each round starts a fresh director, whose port allocator
/// starts over: with the previous round's address, its first connections would reuse the
/// (local address, port) → real server tuples the real servers still hold in TIME_WAIT (they
/// close first); with the clients' per-connection random TCP timestamps, Linux answers a
/// third of such SYNs with the old connection's ACK (in our runs), the client resets and
/// retries a second later.
/// A long-running director does not restart its allocator; see README, "FullNAT and the real
/// servers' TIME_WAIT".
pub fn laddr(round: usize) -> String {
    format!("203.0.113.{}", 200 + round % 50)
}

/// The lab's namespaces.
pub struct Topo {
    /// The client's namespace.
    pub client: String,
    /// The director's namespace (`d0` to the clients, `d1` to the real servers).
    pub director: String,
    /// Namespaces with neighbour caches to flush between setups.
    pub all: Vec<String>,
}

/// Which CPU runs what (the box has two).
#[derive(Clone, Copy)]
pub struct Cpus {
    /// The balancer: ironvs's worker, HAProxy, nginx.
    pub balancer: u16,
    /// The client, the real servers, ironvs's main (control) thread.
    pub rest: u16,
}

/// One way of serving the VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// No balancer: the client alternates between the real servers' client-net addresses.
    Direct,
    /// HAProxy, `mode tcp`, roundrobin.
    Haproxy,
    /// nginx `stream`, round-robin upstream.
    NginxStream,
    /// ironvs, direct routing.
    IronvsDr,
    /// ironvs, FullNAT with one local address.
    IronvsFullnat,
}

impl Setup {
    /// All setups, in the order of the first round.
    pub const ALL: [Setup; 5] = [
        Setup::Direct,
        Setup::Haproxy,
        Setup::NginxStream,
        Setup::IronvsDr,
        Setup::IronvsFullnat,
    ];

    /// The setup a `--setups` key names: direct, haproxy, nginx, dr, fullnat.
    pub fn from_key(key: &str) -> Option<Setup> {
        Some(match key {
            "direct" => Setup::Direct,
            "haproxy" => Setup::Haproxy,
            "nginx" => Setup::NginxStream,
            "dr" => Setup::IronvsDr,
            "fullnat" => Setup::IronvsFullnat,
            _ => return None,
        })
    }

    /// Its name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Setup::Direct => "direct (no LB)",
            Setup::Haproxy => "haproxy tcp",
            Setup::NginxStream => "nginx stream",
            Setup::IronvsDr => "ironvs DR",
            Setup::IronvsFullnat => "ironvs FullNAT",
        }
    }

    /// Where the client connects.
    pub fn targets(self) -> &'static str {
        match self {
            Setup::Direct => "198.51.100.11:80,198.51.100.12:80",
            _ => "198.51.100.100:80",
        }
    }
}

/// Builds the namespaces and wiring, and starts nginx on the real servers (pinned to `rest`).
pub fn build(lab: &mut Lab, cpus: Cpus, nice: i32) -> Result<Topo, Error> {
    let sw = lab.netns("sw")?;
    for br in ["brc", "brr"] {
        lab.exec(&sw, &["ip", "link", "add", br, "type", "bridge"])?;
        lab.exec(&sw, &["ip", "link", "set", br, "up"])?;
    }
    let client = lab.netns("cli")?;
    plug(lab, &sw, "brc", "s-cli", &client, "c0")?;
    lab.exec(
        &client,
        &["ip", "addr", "add", "198.51.100.2/24", "dev", "c0"],
    )?;
    let director = lab.netns("dir")?;
    plug(lab, &sw, "brc", "s-dir0", &director, "d0")?;
    plug(lab, &sw, "brr", "s-dir1", &director, "d1")?;
    // Wide ephemeral ranges: the client and a proxy open one connection per request.
    for ns in [&client, &director] {
        lab.sysctl(ns, "net.ipv4.ip_local_port_range", "1024 65000")?;
    }
    let mut real_servers = Vec::new();
    for i in 1..=2 {
        let ns = lab.netns(&format!("rs{i}"))?;
        plug(lab, &sw, "brr", &format!("s-rs{i}r"), &ns, "r0")?;
        plug(lab, &sw, "brc", &format!("s-rs{i}c"), &ns, "r1")?;
        let r0 = format!("203.0.113.1{i}/24");
        let r1 = format!("198.51.100.1{i}/24");
        lab.exec(&ns, &["ip", "addr", "add", &r0, "dev", "r0"])?;
        lab.exec(&ns, &["ip", "addr", "add", &r1, "dev", "r1"])?;
        let dr = crate::repo().join("deploy/realserver/dr.sh");
        lab.exec(&ns, &[dr.to_str().ok_or("path")?, "up", VIP])?;
        start_real_server(lab, &ns, &format!("rs{i}"), cpus.rest, nice)?;
        real_servers.push(ns);
    }
    let mut all = vec![client.clone(), director.clone()];
    all.extend(real_servers.iter().cloned());
    Ok(Topo {
        client,
        director,
        all,
    })
}

/// A veth from `ns`'s `ifname` to `bridge`, offloads off on both ends (af_packet reads raw
/// frames: complete checksums, no GSO super-frames), both ends up.
fn plug(
    lab: &Lab,
    sw: &str,
    bridge: &str,
    port: &str,
    ns: &str,
    ifname: &str,
) -> Result<(), Error> {
    lab.veth(ns, ifname, sw, port)?;
    lab.exec(sw, &["ip", "link", "set", port, "master", bridge])?;
    for (n, i) in [(sw, port), (ns, ifname)] {
        let off = [
            "tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off",
        ];
        let mut cmd = vec!["ethtool", "-K", i];
        cmd.extend_from_slice(&off);
        lab.exec(n, &cmd)?;
        lab.exec(n, &["ip", "link", "set", i, "up"])?;
    }
    Ok(())
}

/// nginx with one worker serving a 4-byte static file (its name), no logs, no keep-alive.
fn start_real_server(
    lab: &mut Lab,
    ns: &str,
    name: &str,
    cpu: u16,
    nice: i32,
) -> Result<ProcId, Error> {
    let root = lab.dir().join(name);
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    std::fs::write(root.join("index.html"), format!("{name}\n")).map_err(|e| e.to_string())?;
    let conf = format!(
        r#"worker_processes 1;
daemon off;
user root;
pid {dir}/{name}-nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_timeout 0;
    sendfile on;
    server {{
        listen 80 reuseport backlog=4096;
        root {root};
    }}
}}
"#,
        dir = lab.dir().display(),
        root = root.display(),
    );
    let path = lab.dir().join(format!("{name}-nginx.conf"));
    std::fs::write(&path, conf).map_err(|e| e.to_string())?;
    let (cpu, nice) = (cpu.to_string(), nice.to_string());
    let p = lab.spawn(
        ns,
        &format!("{name}-nginx"),
        &[
            "nice",
            "-n",
            &nice,
            "taskset",
            "-c",
            &cpu,
            "nginx",
            "-e",
            "stderr",
            "-c",
            path.to_str().ok_or("path")?,
        ],
    )?;
    let ns = ns.to_string();
    lab.wait_until(p, Duration::from_secs(10), |lab| listening(lab, &ns))?;
    Ok(p)
}

/// True once something in `ns` listens on TCP port 80.
fn listening(lab: &Lab, ns: &str) -> bool {
    lab.exec(ns, &["ss", "-Hltn", "sport = :80"])
        .map(|s| !s.trim().is_empty())
        .unwrap_or(false)
}

/// A director process of a running setup (none for `Direct`).
pub struct Running {
    setup: Setup,
    proc: Option<ProcId>,
}

/// Brings a setup up on the director; returns once it accepts connections.
pub fn start(
    lab: &mut Lab,
    topo: &Topo,
    setup: Setup,
    round: usize,
    cpus: Cpus,
    nice: i32,
) -> Result<Running, Error> {
    for ns in &topo.all {
        lab.exec(ns, &["ip", "neigh", "flush", "all"])?;
    }
    let dir = topo.director.clone();
    let bal = cpus.balancer.to_string();
    let nice = nice.to_string();
    let proc = match setup {
        Setup::Direct => None,
        Setup::Haproxy | Setup::NginxStream => {
            kernel_addresses(lab, &dir, true)?;
            let (name, cmd) = if setup == Setup::Haproxy {
                let cfg = write(lab, "haproxy.cfg", &haproxy_config())?;
                (
                    "haproxy",
                    vec!["haproxy".to_string(), "-db".into(), "-f".into(), cfg],
                )
            } else {
                let cfg = write(lab, "nginx-stream.conf", &nginx_stream_config(lab))?;
                let e = "stderr".to_string();
                (
                    "nginx-stream",
                    vec!["nginx".into(), "-e".into(), e, "-c".into(), cfg],
                )
            };
            let mut full = vec!["nice", "-n", &nice, "taskset", "-c", &bal];
            full.extend(cmd.iter().map(String::as_str));
            let p = lab.spawn(&dir, name, &full)?;
            lab.wait_until(p, Duration::from_secs(10), |lab| listening(lab, &dir))?;
            Some(p)
        }
        Setup::IronvsDr | Setup::IronvsFullnat => {
            kernel_addresses(lab, &dir, false)?;
            let cfg = write(lab, "ironvs.toml", &ironvs_config(lab, setup, round, cpus))?;
            let p = lab.spawn(
                &dir,
                "ironvs",
                &[
                    "nice",
                    "-n",
                    &nice,
                    env!("CARGO_BIN_EXE_ironvs"),
                    "--config",
                    &cfg,
                ],
            )?;
            lab.wait_until(p, Duration::from_secs(60), |lab| {
                lab.log(p).contains("workers running")
            })?;
            Some(p)
        }
    };
    Ok(Running { setup, proc })
}

/// Stops a setup; for ironvs returns its `worker 0: rx … tx …` stop line.
pub fn stop(lab: &mut Lab, topo: &Topo, run: Running) -> Result<Option<String>, Error> {
    let Some(p) = run.proc else {
        return Ok(None);
    };
    let code = lab.terminate(p, Duration::from_secs(20));
    let log = lab.log(p);
    match run.setup {
        Setup::IronvsDr | Setup::IronvsFullnat => {
            if code != Some(0) {
                return Err(format!("ironvs exited with {code:?}:\n{log}"));
            }
            Ok(log
                .lines()
                .find(|l| l.contains("worker 0: rx "))
                .map(str::to_string))
        }
        _ => {
            // A killed nginx master may leave its worker behind: nothing may stay listening.
            for pid in crate::lab::run(&["ip", "netns", "pids", &topo.director])
                .unwrap_or_default()
                .split_whitespace()
            {
                let _ = crate::lab::run(&["kill", "-KILL", pid]);
            }
            kernel_addresses(lab, &topo.director, false)?;
            Ok(None)
        }
    }
}

/// Gives the director's kernel its addresses (for the proxies) or takes them all away.
fn kernel_addresses(lab: &Lab, dir: &str, on: bool) -> Result<(), Error> {
    for i in ["d0", "d1"] {
        lab.exec(dir, &["ip", "addr", "flush", "dev", i])?;
    }
    if on {
        lab.exec(dir, &["ip", "addr", "add", "198.51.100.1/24", "dev", "d0"])?;
        lab.exec(
            dir,
            &["ip", "addr", "add", "198.51.100.100/32", "dev", "d0"],
        )?;
        lab.exec(dir, &["ip", "addr", "add", "203.0.113.1/24", "dev", "d1"])?;
    }
    Ok(())
}

fn write(lab: &Lab, name: &str, text: &str) -> Result<String, Error> {
    let path = lab.dir().join(name);
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    path.to_str().map(str::to_string).ok_or("path".into())
}

/// HAProxy: one thread, `mode tcp`, roundrobin, no health checks (ironvs runs none either).
fn haproxy_config() -> String {
    format!(
        r#"global
    nbthread 1
    maxconn 4096
defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend vip
    bind {VIP}:80 backlog 4096
    default_backend rs
backend rs
    balance roundrobin
    server rs1 203.0.113.11:80
    server rs2 203.0.113.12:80
"#
    )
}

/// nginx `stream`: one worker, round-robin upstream of the two real servers.
fn nginx_stream_config(lab: &Lab) -> String {
    format!(
        r#"load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1;
daemon off;
pid {dir}/nginx-stream.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
stream {{
    upstream rs {{
        server 203.0.113.11:80;
        server 203.0.113.12:80;
    }}
    server {{
        listen {VIP}:80 backlog=4096;
        proxy_pass rs;
        proxy_connect_timeout 2s;
    }}
}}
"#,
        dir = lab.dir().display()
    )
}

/// ironvs: one worker on the balancer CPU, both veths as `net_af_packet` ports, one service.
fn ironvs_config(lab: &Lab, setup: Setup, round: usize, cpus: Cpus) -> String {
    let (rs, mode, fullnat) = match setup {
        Setup::IronvsFullnat => (
            ["203.0.113.11", "203.0.113.12"],
            "fullnat",
            format!("[fullnat]\nlocal_addresses = [\"{}\"]\n", laddr(round)),
        ),
        _ => (["198.51.100.11", "198.51.100.12"], "dr", String::new()),
    };
    let mut text = format!(
        r#"[eal]
file_prefix = "{tag}"
args = ["--no-huge", "-m", "512", "--no-telemetry"]

[cpu]
main_cpu = {main}
workers = 1
worker_cpus = [{worker}]

[mempool]
mbufs = 8191

[dataplane]
max_connections = 262144

[api]
listen = "127.0.0.1:9180"

[[port]]
name = "dp0"
device = "net_af_packet0,iface=d0"
addresses = ["198.51.100.1/24"]

[[port]]
name = "dp1"
device = "net_af_packet1,iface=d1"
addresses = ["203.0.113.1/24"]

{fullnat}
[[service]]
proto = "tcp"
vip = "{VIP}"
port = 80
scheduler = "rr"
"#,
        tag = lab.tag(),
        main = cpus.rest,
        worker = cpus.balancer,
    );
    for addr in rs {
        text.push_str(&format!(
            "\n[[service.real_server]]\naddress = \"{addr}\"\nport = 80\nweight = 1\nmode = \"{mode}\"\n"
        ));
    }
    text
}
