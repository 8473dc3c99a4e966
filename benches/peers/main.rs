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
    nice: i32,
    syscalls: bool,
    /// The setups to run, in first-round order.
    setups: Vec<Setup>,
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
        nice: 0,
        syscalls: false,
        setups: Setup::ALL.to_vec(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue; // cargo bench passes it to harness=false targets
        }
        if flag == "--syscalls" {
            o.syscalls = true;
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<usize>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--requests" => o.requests = num()?,
            "--concurrency" => o.concurrency = num()?,
            "--rounds" => o.rounds = num()?.max(1),
            "--warmup" => o.warmup = num()?,
            "--balancer-cpu" => o.cpus.balancer = num()? as u16,
            "--rest-cpu" => o.cpus.rest = num()? as u16,
            "--nice" => o.nice = value.parse().map_err(|e| format!("--nice {value}: {e}"))?,
            "--setups" => {
                o.setups = value
                    .split(',')
                    .map(|k| {
                        Setup::from_key(k).ok_or(format!(
                            "--setups {k}: one of direct, haproxy, nginx, dr, fullnat"
                        ))
                    })
                    .collect::<Result<_, _>>()?
            }
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
    let topo = setups::build(&mut lab, o.cpus, o.nice)?;
    println!("peers: lab {}-* built", lab.tag());
    let mut samples: Vec<Sample> = Vec::new();
    for round in 0..o.rounds {
        let mut order = o.setups.clone();
        let n = order.len();
        order.rotate_left(round % n);
        for setup in order {
            lab.check_signal()?;
            let s = measure(&mut lab, &topo, setup, round, &o)?;
            println!(
                "round {} {:<15} {:>7.0} conn/s  ok {} errors {}  CPU0 {:.0}% CPU1 {:.0}%  director {:.0}%",
                round + 1,
                setup.name(),
                s.rate(),
                s.ok,
                s.errors,
                s.cpu.first().map_or(0.0, |c| c.0),
                s.cpu.get(1).map_or(0.0, |c| c.0),
                s.director_cpu.0 + s.director_cpu.1
            );
            samples.push(s);
        }
    }
    let rows: Vec<_> = o
        .setups
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
fn measure(
    lab: &mut Lab,
    topo: &Topo,
    setup: Setup,
    round: usize,
    o: &Options,
) -> Result<Sample, Error> {
    let running = setups::start(lab, topo, setup, round, o.cpus, o.nice)?;
    let result = (|| {
        if o.warmup > 0 {
            client_run(lab, topo, setup, o, o.warmup, "warmup")?;
        }
        let perf = match o.syscalls && setup != Setup::Direct {
            true => Some(start_perf(lab, topo)?),
            false => None,
        };
        let director_before = ns_cpu_ticks(&topo.director);
        let cpu_before = report::cpu_ticks();
        let (text, latencies, elapsed) = client_run(lab, topo, setup, o, o.requests, "run")?;
        let cpu = report::cpu_percent(&cpu_before, &report::cpu_ticks());
        let director_after = ns_cpu_ticks(&topo.director);
        let pct = |t: u64| 100.0 * t as f64 / clk_tck() / elapsed.as_secs_f64();
        let director_cpu = (
            pct(director_after.0.saturating_sub(director_before.0)),
            pct(director_after.1.saturating_sub(director_before.1)),
        );
        let mut sample = parse_result(setup, &text, latencies, cpu, director_cpu)?;
        if let Some((p, file)) = perf {
            lab.signal(p, "INT"); // perf prints its counts and re-raises SIGINT
            let file2 = file.clone();
            lab.wait_until(p, Duration::from_secs(10), |_| {
                std::fs::read_to_string(&file2).is_ok_and(|t| t.contains("sys_enter_sendto"))
            })
            .or_else(|e| if e.contains("exited") { Ok(()) } else { Err(e) })?;
            lab.terminate(p, Duration::from_secs(5));
            sample.syscalls = parse_perf(&file)?;
        }
        Ok(sample)
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
    let nice = o.nice.to_string();
    let args = [
        "nice",
        "-n",
        &nice,
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
    director_cpu: (f64, f64),
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
    let get = |k: &str| {
        fields
            .get(k)
            .copied()
            .ok_or(format!("no {k} in client output: {text}"))
    };
    Ok(Sample {
        setup,
        ok: get("ok")? as usize,
        errors: get("errors")? as usize,
        elapsed_us: get("elapsed_us")?,
        latencies_us,
        bodies,
        cpu,
        director_cpu,
        syscalls: None,
    })
}

/// Starts `perf stat` counting the syscalls (all, and sendto) of every director process.
fn start_perf(lab: &mut Lab, topo: &Topo) -> Result<(lab::ProcId, std::path::PathBuf), Error> {
    let pids = lab::run(&["ip", "netns", "pids", &topo.director])?;
    let pids: Vec<&str> = pids.split_whitespace().collect();
    let file = lab.dir().join("perf-stat.csv");
    // perf runs in the client's namespace so that its own CPU time is not the director's.
    let p = lab.spawn(
        &topo.client,
        "perf",
        &[
            "perf",
            "stat",
            "-x,",
            "-e",
            "raw_syscalls:sys_enter,syscalls:sys_enter_sendto",
            "-p",
            &pids.join(","),
            "-o",
            file.to_str().ok_or("path")?,
        ],
    )?;
    std::thread::sleep(Duration::from_millis(500)); // let it attach to every thread
    Ok((p, file))
}

/// (all syscalls, sendto) from `perf stat -x,` output.
fn parse_perf(file: &Path) -> Result<Option<(u64, u64)>, Error> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let count = |event: &str| {
        text.lines()
            .find(|l| l.contains(event))
            .and_then(|l| l.split(',').next())
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    Ok(count("raw_syscalls:sys_enter").zip(count("sys_enter_sendto")))
}

/// (utime, stime) of every process in a namespace (ticks), as `/proc/PID/stat` counts them.
fn ns_cpu_ticks(ns: &str) -> (u64, u64) {
    let pids = lab::run(&["ip", "netns", "pids", ns]).unwrap_or_default();
    pids.split_whitespace()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
            let rest = stat.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((
                f.get(11)?.parse::<u64>().ok()?,
                f.get(12)?.parse::<u64>().ok()?,
            ))
        })
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
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
    for tool in [
        "ip", "ethtool", "taskset", "ss", "haproxy", "nginx", "getconf",
    ] {
        lab::run(&["sh", "-c", &format!("command -v {tool}")])
            .map_err(|_| format!("{tool} is missing: run deploy/install-deps.sh"))?;
    }
    let module = Path::new("/usr/lib/nginx/modules/ngx_stream_module.so");
    if !module.exists() {
        return Err("nginx's stream module is missing: apt-get install libnginx-mod-stream".into());
    }
    Ok(())
}
