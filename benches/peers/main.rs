//! Peers in the lab: short TCP connections (HTTP/1.1, `Connection: close`, a fixed number of
//! requests at a fixed concurrency) from a client namespace to a VIP served by two nginx real
//! servers, through ironvs DR, ironvs FullNAT, HAProxy `mode tcp` and nginx `stream`, all on
//! the same namespaces and veths in one run, plus the client talking to the real servers
//! directly (the ceiling set by the client and the servers).
//!
//! Rounds interleave the setups (in a rotated order each round), so that whatever else runs on
//! the box hits them alike. Pinning: the balancer (ironvs's worker lcore, HAProxy's one thread,
//! nginx's one worker) on `--balancer-cpu` (1); the client, both real servers and ironvs's main
//! thread on `--rest-cpu` (0). Run as root:
//!
//! ```text
//! cargo bench --bench peers -- [--requests 10000] [--concurrency 32] [--rounds 3] [--warmup 1000]
//! ```
//! See BENCHMARKS.md ("Peers") for what the numbers mean and what they do not.

mod client;
mod lab;
mod report;
mod setups;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use lab::{Error, Lab};
use report::Sample;
use setups::{Cpus, Setup, Topo};

/// The repository root (for `deploy/realserver/`).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Command-line options of the bench.
struct Options {
    requests: usize,
    concurrency: usize,
    rounds: usize,
    warmup: usize,
    cpus: Cpus,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("client") {
        client::parse(&args[1..]).and_then(client::run)
    } else {
        options(&args).and_then(bench)
    };
    if let Err(e) = result {
        eprintln!("peers: {e}");
        std::process::exit(1);
    }
}

fn options(args: &[String]) -> Result<Options, Error> {
    let mut o = Options {
        requests: 10_000,
        concurrency: 32,
        rounds: 3,
        warmup: 1_000,
        cpus: Cpus {
            balancer: 1,
            rest: 0,
        },
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue; // cargo bench passes it to harness=false targets
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || value.parse::<usize>().map_err(|e| format!("{flag} {value}: {e}"));
        match flag.as_str() {
            "--requests" => o.requests = num()?,
            "--concurrency" => o.concurrency = num()?,
            "--rounds" => o.rounds = num()?.max(1),
            "--warmup" => o.warmup = num()?,
            "--balancer-cpu" => o.cpus.balancer = num()? as u16,
            "--rest-cpu" => o.cpus.rest = num()? as u16,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

fn bench(o: Options) -> Result<(), Error> {
    preflight()?;
    let started = Instant::now();
    println!(
        "peers: {} requests x {} rounds per setup (+{} warm-up), {} concurrent connections; balancer on CPU {}, client + real servers on CPU {}",
        o.requests, o.rounds, o.warmup, o.concurrency, o.cpus.balancer, o.cpus.rest
    );
    println!("peers: load average before: {}", loadavg());
    let mut lab = Lab::new()?;
    let topo = setups::build(&mut lab, o.cpus)?;
    println!("peers: lab {}-* built", lab.tag());
    let mut samples: Vec<Sample> = Vec::new();
    for round in 0..o.rounds {
        let mut order = Setup::ALL.to_vec();
        let n = order.len();
        order.rotate_left(round % n);
        for setup in order {
            lab.check_signal()?;
            let s = measure(&mut lab, &topo, setup, &o)?;
            println!(
                "round {} {:<15} {:>7.0} conn/s  ok {} errors {}  CPU0 {:.0}% CPU1 {:.0}%  director {:.0}%",
                round + 1,
                setup.name(),
                s.rate(),
                s.ok,
                s.errors,
                s.cpu.first().map_or(0.0, |c| c.0),
                s.cpu.get(1).map_or(0.0, |c| c.0),
                s.director_cpu
            );
            samples.push(s);
        }
    }
    let rows: Vec<_> = Setup::ALL
        .iter()
        .map(|&setup| {
            let mine: Vec<&Sample> = samples.iter().filter(|s| s.setup == setup).collect();
            report::row(setup, &mine)
        })
        .collect();
    report::print(&rows);
    println!();
    println!(
        "peers: load average after: {}; whole run {:.0} s",
        loadavg(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Brings one setup up, warms it up, measures one run, takes it down.
fn measure(lab: &mut Lab, topo: &Topo, setup: Setup, o: &Options) -> Result<Sample, Error> {
    let running = setups::start(lab, topo, setup, o.cpus)?;
    let result = (|| {
        if o.warmup > 0 {
            client_run(lab, topo, setup, o, o.warmup, "warmup")?;
        }
        let director_before = ns_cpu_ticks(&topo.director);
        let cpu_before = report::cpu_ticks();
        let (text, latencies, elapsed) = client_run(lab, topo, setup, o, o.requests, "run")?;
        let cpu = report::cpu_percent(&cpu_before, &report::cpu_ticks());
        let director_ticks = ns_cpu_ticks(&topo.director).saturating_sub(director_before);
        let director_cpu = 100.0 * director_ticks as f64 / clk_tck() / elapsed.as_secs_f64();
        parse_result(setup, &text, latencies, cpu, director_cpu)
    })();
    let stop_line = setups::stop(lab, topo, running)?;
    if let Some(line) = stop_line {
        println!("    ironvs {}", line.trim());
    }
    result
}

/// Runs the client in its namespace, pinned; its stdout, latencies and wall time.
fn client_run(
    lab: &mut Lab,
    topo: &Topo,
    setup: Setup,
    o: &Options,
    requests: usize,
    what: &str,
) -> Result<(String, Vec<u32>, Duration), Error> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = lab.dir().join(format!("latencies-{what}.txt"));
    let (cpu, n, c) = (
        o.cpus.rest.to_string(),
        requests.to_string(),
        o.concurrency.to_string(),
    );
    let args = [
        "taskset",
        "-c",
        &cpu,
        exe.to_str().ok_or("path")?,
        "client",
        "--target",
        setup.targets(),
        "--requests",
        &n,
        "--concurrency",
        &c,
        "--timeout-ms",
        "3000",
        "--out",
        out.to_str().ok_or("path")?,
    ];
    let start = Instant::now();
    let p = lab.spawn(&topo.client, &format!("client-{what}"), &args)?;
    // Bounded in time: 3 s per request at worst for each slot, capped at two minutes.
    let limit = Duration::from_secs(((requests / o.concurrency.max(1)) as u64 * 3).clamp(20, 120));
    let text = lab.wait_exit(p, limit)?;
    let elapsed = start.elapsed();
    let lat = std::fs::read_to_string(&out)
        .map_err(|e| format!("{}: {e}", out.display()))?
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    Ok((text, lat, elapsed))
}

fn parse_result(
    setup: Setup,
    text: &str,
    latencies_us: Vec<u32>,
    cpu: Vec<(f64, f64)>,
    director_cpu: f64,
) -> Result<Sample, Error> {
    let mut fields = BTreeMap::new();
    let mut bodies = BTreeMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["result", rest @ ..] => {
                for kv in rest {
                    if let Some((k, v)) = kv.split_once('=') {
                        fields.insert(k.to_string(), v.parse::<u64>().unwrap_or(0));
                    }
                }
            }
            ["body", name, n] => {
                bodies.insert(name.to_string(), n.parse().unwrap_or(0));
            }
            ["error", kind, n] => eprintln!("    {}: {n} x {kind}", setup.name()),
            _ => {}
        }
    }
    let get = |k: &str| fields.get(k).copied().ok_or(format!("no {k} in client output: {text}"));
    Ok(Sample {
        setup,
        ok: get("ok")? as usize,
        errors: get("errors")? as usize,
        elapsed_us: get("elapsed_us")?,
        latencies_us,
        bodies,
        cpu,
        director_cpu,
    })
}

/// utime + stime of every process in a namespace (ticks), as `/proc/PID/stat` counts them.
fn ns_cpu_ticks(ns: &str) -> u64 {
    let pids = lab::run(&["ip", "netns", "pids", ns]).unwrap_or_default();
    pids.split_whitespace()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
            let rest = stat.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

fn clk_tck() -> f64 {
    lab::run(&["getconf", "CLK_TCK"])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Root, the tools, and the nginx stream module.
fn preflight() -> Result<(), Error> {
    let uid = lab::run(&["id", "-u"])?;
    if uid.trim() != "0" {
        return Err("needs root (network namespaces, DPDK)".into());
    }
    for tool in ["ip", "ethtool", "taskset", "ss", "haproxy", "nginx", "getconf"] {
        lab::run(&["sh", "-c", &format!("command -v {tool}")])
            .map_err(|_| format!("{tool} is missing: run deploy/install-deps.sh"))?;
    }
    let module = Path::new("/usr/lib/nginx/modules/ngx_stream_module.so");
    if !module.exists() {
        return Err("nginx's stream module is missing: apt-get install libnginx-mod-stream".into());
    }
    Ok(())
}
