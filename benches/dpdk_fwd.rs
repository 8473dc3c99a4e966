//! Forwarding benchmark of the real `ironvs` daemon against `dpdk-testpmd` on the same virtual
//! ports, cores and mbuf pool (see `benches/dpdk/lab.rs` for the lab), plus the connection
//! set-up rate and the memory per connection. One command:
//!
//! ```text
//! cargo bench --bench dpdk_fwd            # everything, ~6 minutes on 2 cores
//! cargo bench --bench dpdk_fwd -- --quick # 1k and 64k flows only
//! cargo bench --bench dpdk_fwd -- --rounds 3 --modes dr,fullnat --no-newconns --no-mem
//! ```
//!
//! Options: `--flows 1024,65536`, `--modes dr,tun,nat,fullnat`, `--rounds 1` (per flow count,
//! testpmd and every mode run this many times, interleaved: each round's ratio divides by the
//! testpmd runs just before it, and the table shows the medians and the range of the ratios),
//! `--window-ms 2000`,
//! `--warmup-ms 500`, `--order opened|random` (the flows in the order they were opened, the
//! default, or in a fixed random permutation, as real traffic visits them), `--no-fwd`, `--no-testpmd`, `--no-newconns`, `--no-mem`, `--perf DIR` (records the
//! worker CPU with `perf` in extra runs: DR and FullNAT, or the `--modes` given, at the middle
//! of the `--flows` counts, and the new-connections run),
//! `--keep` (keeps pcaps, configs and logs), `--no-ceiling`. `IRONVS_BIN` overrides the daemon
//! binary (default: the one cargo built for this bench, with the release profile).
//!
//! The ceiling row: the same daemon, built from this source with the `bench-ceiling` feature
//! into `target/ceiling` at the start of the run, on the DR case (SYN pass and all), with its
//! forwarder bypassed on the load port (`src/worker/ceiling.rs`): what the daemon forwards when
//! forwarding costs nothing. A mode's share of the ceiling is the part of the testpmd gap that
//! its forwarding work causes.
//!
//! Rates are packets the sink port transmitted in a fixed window after a warm-up, divided by the
//! window, read from the daemon's REST API or testpmd's `show port stats`. testpmd runs at its
//! default burst (32) and at the worker's ([`ironvs::worker::BURST`]), and every ratio divides
//! by the faster of the two in its round. Every figure comes from this one run; nothing here
//! asserts a time.

#[path = "dpdk/api.rs"]
mod api;
#[path = "dpdk/lab.rs"]
mod lab;
#[path = "dpdk/mem.rs"]
mod mem;
#[path = "dpdk/pcap.rs"]
mod pcap;
#[path = "dpdk/run.rs"]
mod run;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lab::{Case, EalMemory, Load, Mode, Order};
use run::{Measure, Timing};

struct Opts {
    flows: Vec<u32>,
    modes: Vec<Mode>,
    rounds: u32,
    memory: EalMemory,
    order: Order,
    timing: Timing,
    testpmd: bool,
    newconns: bool,
    mem: bool,
    perf: Option<PathBuf>,
    keep: bool,
    ceiling: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        flows: vec![1 << 10, 1 << 16, 1 << 20],
        modes: vec![Mode::Dr, Mode::Tun, Mode::Nat, Mode::FullNat],
        rounds: 1,
        memory: EalMemory::Small,
        order: Order::Opened,
        timing: Timing {
            warmup: Duration::from_millis(500),
            window: Duration::from_millis(2000),
        },
        testpmd: true,
        newconns: true,
        mem: true,
        perf: None,
        ceiling: true,
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--bench" => {}
            "--quick" => o.flows = vec![1 << 10, 1 << 16],
            "--flows" => {
                o.flows = val()
                    .split(',')
                    .map(|v| flow_count(v).unwrap_or_else(|| usage(&format!("--flows: {v:?}"))))
                    .collect()
            }
            "--modes" => {
                o.modes = val()
                    .split(',')
                    .map(|m| match m {
                        "dr" => Mode::Dr,
                        "tun" => Mode::Tun,
                        "nat" => Mode::Nat,
                        "fullnat" => Mode::FullNat,
                        _ => usage(&format!("--modes: {m:?} (dr, tun, nat, fullnat)")),
                    })
                    .collect()
            }
            "--rounds" => {
                let v = val();
                o.rounds = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage(&format!("--rounds: {v:?}")))
            }
            "--window-ms" => {
                o.timing.window = Duration::from_millis(val().parse().expect("--window-ms"))
            }
            "--warmup-ms" => {
                o.timing.warmup = Duration::from_millis(val().parse().expect("--warmup-ms"))
            }
            "--huge" => o.memory = EalMemory::Huge,
            "--order" => {
                o.order = match val().as_str() {
                    "opened" => Order::Opened,
                    "random" => Order::Random,
                    v => usage(&format!("--order: {v:?} (opened, random)")),
                }
            }
            "--no-testpmd" => o.testpmd = false,
            "--no-fwd" => o.flows.clear(),
            "--no-newconns" => o.newconns = false,
            "--no-mem" => o.mem = false,
            "--perf" => o.perf = Some(PathBuf::from(val())),
            "--keep" => o.keep = true,
            "--no-ceiling" => o.ceiling = false,
            other => usage(other),
        }
    }
    o
}

/// A flow count as the tables print it: `1000`, `64k` (× 1024) or `1M` (× 1024²).
fn flow_count(v: &str) -> Option<u32> {
    let (digits, unit) = match v.strip_suffix(['k', 'K']) {
        Some(d) => (d, 1 << 10),
        None => match v.strip_suffix('M') {
            Some(d) => (d, 1 << 20),
            None => (v, 1),
        },
    };
    digits.parse::<u32>().ok()?.checked_mul(unit)
}

/// Says what was wrong with the command line and exits (status 2).
fn usage(what: &str) -> ! {
    eprintln!(
        "dpdk_fwd: bad option {what} (flows: 1000, 64k or 1M, comma-separated; rounds: a count \
         of at least 1; see the comment at the top of benches/dpdk_fwd.rs)"
    );
    std::process::exit(2)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{model}, {cores} cores available")
}

/// The ceiling row's name in the table.
const CEILING: &str = "ironvs, forwarder bypassed (ceiling)";

/// Builds the daemon with the `bench-ceiling` feature (see the top of this file) and returns its
/// path: a target directory of its own, so that the bench's own build is left as it is.
fn build_ceiling() -> Result<PathBuf, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("ceiling");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the ceiling daemon in {}", target.display());
    let st = std::process::Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--bin",
            "ironvs",
            "--features",
            "bench-ceiling",
        ])
        .arg("--target-dir")
        .arg(&target)
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !st.success() {
        return Err(format!("cargo build --features bench-ceiling: {st}"));
    }
    Ok(target.join("release").join("ironvs"))
}

/// One run: a line of the forwarding table when there is one round.
struct Row {
    what: String,
    flows: u32,
    m: Result<Measure, String>,
    /// The testpmd rate of the same round.
    base: Option<f64>,
}

/// The median of `v` (the mean of the middle two for an even count); `None` when empty.
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// A line of the forwarding table: the rounds of one mode at one flow count.
struct Line<'a> {
    what: &'a str,
    flows: u32,
    runs: Vec<&'a Row>,
}

impl Line<'_> {
    fn mpps(&self) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| Some(r.m.as_ref().ok()?.mpps()))
            .collect()
    }

    /// Each round's rate over the testpmd rate of that round.
    fn ratios(&self) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| Some(r.m.as_ref().ok()?.mpps() / r.base?))
            .collect()
    }
}

/// The rows grouped by (what, flows), in first-run order.
fn lines(rows: &[Row]) -> Vec<Line<'_>> {
    let mut out: Vec<Line> = Vec::new();
    for r in rows {
        match out
            .iter_mut()
            .find(|l| l.what == r.what && l.flows == r.flows)
        {
            Some(l) => l.runs.push(r),
            None => out.push(Line {
                what: &r.what,
                flows: r.flows,
                runs: vec![r],
            }),
        }
    }
    out
}

fn flows_label(n: u32) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}M", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}k", n >> 10),
        n => n.to_string(),
    }
}

/// Extra runs of DR and FullNAT under `perf record` (not in the table: perf costs cycles), and
/// the worker thread's hottest symbols.
fn profile(
    daemon: run::Daemon,
    dir: &std::path::Path,
    out: &std::path::Path,
    flows: u32,
    modes: &[Mode],
    t: Timing,
    (memory, order): (EalMemory, Order),
) {
    let _ = std::fs::create_dir_all(out);
    println!();
    println!("## Profile (perf record of the daemon during the window, worker thread)");
    for &mode in modes {
        let case = Case {
            mode,
            flows,
            load: Load::Forward,
            memory,
            order,
        };
        let files = lab::write_pcaps(dir, &case).expect("pcaps");
        let data = out.join(format!("perf-{}-{flows}.data", mode.name()));
        let m = run::ironvs(daemon, dir, &case, &files, t, Some(&data));
        std::thread::sleep(Duration::from_millis(500));
        println!();
        println!(
            "{} {} flows ({:.3} Mpps under perf), {}:",
            mode.name(),
            flows_label(flows),
            m.as_ref().map_or(0.0, Measure::mpps),
            data.display()
        );
        print_report(&data);
    }
}

/// The worker thread's hottest symbols in a `perf record` file.
fn print_report(data: &std::path::Path) {
    let rep = std::process::Command::new("perf")
        .args(["report", "--no-children", "--comms", "rte-worker-1"])
        .args([
            "--percentage",
            "relative",
            "--sort",
            "dso,symbol",
            "-g",
            "none",
        ])
        .args(["--stdio", "--percent-limit", "1", "-i"])
        .arg(data)
        .output();
    match rep {
        Ok(o) => {
            for l in String::from_utf8_lossy(&o.stdout).lines() {
                if l.contains('%') && !l.starts_with('#') {
                    println!("    {}", l.trim_end());
                }
            }
        }
        Err(e) => println!("    perf report: {e}"),
    }
}

fn main() {
    let o = parse_opts();
    let bin = std::env::var_os("IRONVS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ironvs")));
    let dir = std::env::temp_dir().join(format!("ironvs-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let started = Instant::now();
    println!("# IronVS forwarding benchmark");
    println!("machine: {}", machine());
    println!("daemon: {}", bin.display());
    println!(
        "window {} ms after {} ms warm-up; flows replayed in {} order; scratch {}",
        o.timing.window.as_millis(),
        o.timing.warmup.as_millis(),
        match o.order {
            Order::Opened => "opened",
            Order::Random => "random",
        },
        dir.display()
    );
    let check = pcap::frame(
        &pcap::Segment {
            src: pcap::client(0).0,
            dst: lab::VIP,
            sport: 1024,
            dport: 80,
            flags: pcap::ACK,
            seq: 1,
            ack: 1,
        },
        true,
        1,
    );
    pcap::verify(&check).expect("generated frames verify with etherparse");

    let daemon = run::Daemon {
        bin: &bin,
        env: &[],
        tag: "",
    };
    let ceiling_bin = match (o.ceiling && !o.flows.is_empty()).then(build_ceiling) {
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => {
            println!("ceiling: not measured ({e})");
            None
        }
        None => None,
    };
    let route = format!("{}:{}", lab::LOAD_PORT, lab::SINK_PORT);
    let ceiling_env = [("IRONVS_BENCH_CEILING", route.as_str())];
    let ceiling = ceiling_bin.as_deref().map(|bin| run::Daemon {
        bin,
        env: &ceiling_env,
        tag: "ceiling-",
    });

    let mut rows: Vec<Row> = Vec::new();
    let perf_flows = o.flows.get(o.flows.len() / 2).copied();
    for &flows in &o.flows {
        for _round in 0..o.rounds {
            let mut base = None;
            // testpmd and the ceiling replay the DR case's pcaps.
            let case = Case {
                mode: Mode::Dr,
                flows,
                load: Load::Forward,
                memory: o.memory,
                order: o.order,
            };
            let files = (o.testpmd || ceiling.is_some())
                .then(|| lab::write_pcaps(&dir, &case).expect("pcaps"));
            if let (true, Some(files)) = (o.testpmd, &files) {
                // Each round's baseline is the faster of testpmd's default burst and the
                // worker's, so a burst that suits ironvs cannot flatter its ratio.
                for burst in run::testpmd_bursts() {
                    let m = run::testpmd(&dir, &case, files, "io", burst, o.timing);
                    let mpps = m.as_ref().ok().map(Measure::mpps);
                    base = match (base, mpps) {
                        (Some(b), Some(m)) => Some(f64::max(b, m)),
                        (b, m) => b.or(m),
                    };
                    eprintln!("testpmd io burst {burst} {flows}: {mpps:?}");
                    rows.push(Row {
                        what: format!("testpmd io, burst {burst}"),
                        flows,
                        m,
                        base: None,
                    });
                }
            }
            if let (Some(d), Some(files)) = (ceiling, &files) {
                let m = run::ironvs(d, &dir, &case, files, o.timing, None);
                eprintln!("{CEILING} {flows}: {:?}", m.as_ref().map(Measure::mpps));
                rows.push(Row {
                    what: CEILING.into(),
                    flows,
                    m,
                    base,
                });
            }
            for &mode in &o.modes {
                let loads: &[Load] = match mode {
                    Mode::Nat | Mode::FullNat => &[Load::Forward, Load::Reply],
                    _ => &[Load::Forward],
                };
                for &load in loads {
                    let case = Case {
                        mode,
                        flows,
                        load,
                        memory: o.memory,
                        order: o.order,
                    };
                    let files = lab::write_pcaps(&dir, &case).expect("pcaps");
                    let m = run::ironvs(daemon, &dir, &case, &files, o.timing, None);
                    let what = match load {
                        Load::Reply => format!("ironvs {} reply", mode.name()),
                        _ => format!("ironvs {}", mode.name()),
                    };
                    eprintln!("{what} {flows}: {:?}", m.as_ref().map(Measure::mpps));
                    rows.push(Row {
                        what,
                        flows,
                        m,
                        base,
                    });
                }
            }
        }
    }

    println!();
    println!("## Forwarding (64-byte TCP, one worker)");
    println!();
    if o.rounds > 1 {
        println!(
            "{} interleaved rounds: medians; the ratio range is the lowest and highest round.",
            o.rounds
        );
        println!();
    }
    println!("| mode | flows | Mpps | × best testpmd io | ratio range | notes |");
    println!("|---|---|---|---|---|---|");
    let table = lines(&rows);
    for l in &table {
        let ratios = l.ratios();
        let mpps = median(l.mpps()).map_or("failed".into(), |m| format!("{m:.3}"));
        let ratio = median(ratios.clone()).map_or("—".into(), |r| format!("{r:.2}"));
        let range = match (
            ratios.iter().copied().reduce(f64::min),
            ratios.iter().copied().reduce(f64::max),
        ) {
            (Some(lo), Some(hi)) if ratios.len() > 1 => format!("{lo:.2}–{hi:.2}"),
            _ => "—".into(),
        };
        let mut notes: Vec<String> = Vec::new();
        for r in &l.runs {
            let got = match &r.m {
                Ok(m) => m.notes.clone(),
                Err(e) => vec![format!("failed: {e}")],
            };
            for n in got {
                if !notes.contains(&n) {
                    notes.push(n);
                }
            }
        }
        println!(
            "| {} | {} | {mpps} | {ratio} | {range} | {} |",
            l.what,
            flows_label(l.flows),
            notes.join("; ")
        );
    }

    if let (Some(d), Some(flows)) = (&o.perf, perf_flows) {
        // DR and FullNAT unless other modes were asked for.
        let modes: Vec<Mode> = if o.modes.len() == 4 {
            vec![Mode::Dr, Mode::FullNat]
        } else {
            o.modes.clone()
        };
        profile(
            daemon,
            &dir,
            d,
            flows,
            &modes,
            o.timing,
            (o.memory, o.order),
        );
    }

    let mut newconn = None;
    if o.newconns {
        let case = Case {
            mode: Mode::FullNat,
            flows: 1 << 20,
            load: Load::NewConns,
            memory: o.memory,
            order: o.order,
        };
        let files = lab::write_pcaps(&dir, &case).expect("pcaps");
        let m = run::ironvs(daemon, &dir, &case, &files, o.timing, None);
        println!();
        println!("## New connections (FullNAT SYNs of distinct tuples, one worker)");
        println!();
        match &m {
            Ok(m) => {
                let rate = m.new_conns as f64 / m.secs;
                println!(
                    "{:.0} conns/s ({} connections in {:.0} ms; SYNs forwarded {:.3} Mpps){}",
                    rate,
                    m.new_conns,
                    m.secs * 1e3,
                    m.mpps(),
                    if m.notes.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", m.notes.join("; "))
                    }
                );
                newconn = Some(rate);
            }
            Err(e) => println!("failed: {e}"),
        }
        if let Some(out) = &o.perf {
            // An extra run under perf (not the figure above: perf costs cycles).
            let _ = std::fs::create_dir_all(out);
            let data = out.join("perf-newconns.data");
            let m = run::ironvs(daemon, &dir, &case, &files, o.timing, Some(&data));
            std::thread::sleep(Duration::from_millis(500));
            println!();
            println!(
                "new connections under perf: {:.0} conns/s, {}:",
                m.as_ref().map_or(0.0, |m| m.new_conns as f64 / m.secs),
                data.display()
            );
            print_report(&data);
        }
    }

    let mut mems = Vec::new();
    if o.mem {
        println!();
        println!("## Memory per connection (FullNAT entries, table capacity = connections)");
        println!();
        println!(
            "| connections | inserted | bytes/entry | table bytes/conn | RSS bytes/conn | inserts/s |"
        );
        println!("|---|---|---|---|---|---|");
        for n in [1u32 << 20, 10 << 20] {
            let f = mem::measure(n);
            println!(
                "| {} | {} | {} | {:.2} | {:.2} | {:.0} |",
                flows_label(n),
                f.inserted,
                f.entry_bytes,
                f.table_bytes_per_conn,
                f.rss_bytes_per_conn,
                f.inserts_per_sec
            );
            mems.push(f);
        }
    }

    println!();
    println!("## Targets");
    println!();
    let line = |what: &str, flows: u32| table.iter().find(|l| l.what == what && l.flows == flows);
    let ratio = |mode: &str, flows: u32| line(mode, flows).and_then(|l| median(l.ratios()));
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not measured",
    };
    for (what, mode, flows, want) in [
        (
            "DR at 64k flows ≥ 0.80 × testpmd io",
            "ironvs dr",
            1 << 16,
            0.80,
        ),
        (
            "FullNAT at 64k flows ≥ 0.60 × testpmd io",
            "ironvs fullnat",
            1 << 16,
            0.60,
        ),
        (
            "DR at 1M flows ≥ 0.50 × testpmd io",
            "ironvs dr",
            1 << 20,
            0.50,
        ),
    ] {
        let r = ratio(mode, flows);
        println!(
            "- {what}: {} ({})",
            r.map_or("—".into(), |r| format!("{r:.2}")),
            verdict(r.map(|r| r >= want))
        );
    }
    println!(
        "- new connections ≥ 2,000,000/s: {} ({})",
        newconn.map_or("—".into(), |r| format!("{r:.0}")),
        verdict(newconn.map(|r| r >= 2e6))
    );
    for f in &mems {
        println!(
            "- memory at {} connections ≤ 128 bytes/conn: {} per entry; {:.2} table, {:.2} RSS with the fixed part ({})",
            flows_label(f.conns),
            f.entry_bytes,
            f.table_bytes_per_conn,
            f.rss_bytes_per_conn,
            verdict(Some(f.entry_bytes <= 128))
        );
    }
    let shares: Vec<String> = o
        .flows
        .iter()
        .filter_map(|&flows| {
            let of = |what: &str| median(line(what, flows)?.mpps());
            let (dr, top) = (of("ironvs dr")?, of(CEILING)?);
            Some(format!("{:.2} at {}", dr / top, flows_label(flows)))
        })
        .collect();
    if !shares.is_empty() {
        println!(
            "- DR's share of the ceiling (not a target): {}",
            shares.join(", ")
        );
    }
    println!();
    println!("total wall time {:.0} s", started.elapsed().as_secs_f64());
    if !o.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    for p in [
        format!("/var/run/dpdk/ivsbench{}", std::process::id()),
        format!("/var/run/dpdk/tpbench{}", std::process::id()),
    ] {
        let _ = std::fs::remove_dir_all(p);
    }
}
