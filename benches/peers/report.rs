//! Results: one [`Sample`] per measured client run, pooled per setup into a [`Row`], printed as
//! a table with the ratios to HAProxy and to nginx. Rates are the median over rounds (the box is
//! shared, so the min–max spread is printed too); latency percentiles pool every request of
//! every round (nearest rank).

use std::collections::BTreeMap;

use crate::setups::Setup;

/// CPU time counters of one CPU from `/proc/stat`, in clock ticks.
#[derive(Clone, Copy, Default)]
pub struct CpuTicks {
    /// Everything but idle and iowait.
    pub busy: u64,
    /// Softirq (where veth and the kernel's TCP receive work lands).
    pub softirq: u64,
    /// All.
    pub total: u64,
}

/// `/proc/stat`'s `cpuN` lines.
pub fn cpu_ticks() -> Vec<CpuTicks> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let get = |i: usize| v.get(i).copied().unwrap_or(0);
            let total: u64 = v.iter().take(8).sum();
            CpuTicks {
                busy: total - get(3) - get(4),
                softirq: get(6),
                total,
            }
        })
        .collect()
}

/// Percentages busy and in softirq per CPU between two readings.
pub fn cpu_percent(before: &[CpuTicks], after: &[CpuTicks]) -> Vec<(f64, f64)> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| {
            let total = a.total.saturating_sub(b.total).max(1) as f64;
            (
                100.0 * a.busy.saturating_sub(b.busy) as f64 / total,
                100.0 * a.softirq.saturating_sub(b.softirq) as f64 / total,
            )
        })
        .collect()
}

/// One measured client run.
pub struct Sample {
    /// Which setup.
    pub setup: Setup,
    /// Completed requests.
    pub ok: usize,
    /// Failed requests (any kind).
    pub errors: usize,
    /// Wall time of the run.
    pub elapsed_us: u64,
    /// Latency of each completed request.
    pub latencies_us: Vec<u32>,
    /// Responses per body (real server name).
    pub bodies: BTreeMap<String, usize>,
    /// Per CPU: busy % and softirq % during the run (everything on the box).
    pub cpu: Vec<(f64, f64)>,
    /// CPU time of the director's processes during the run, % of one CPU (user, system).
    pub director_cpu: (f64, f64),
    /// Syscalls of the director's processes during the run (all, sendto), with `--syscalls`.
    pub syscalls: Option<(u64, u64)>,
}

impl Sample {
    /// Completed connections per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 * 1e6 / self.elapsed_us.max(1) as f64
    }
}

/// A setup's pooled results.
pub struct Row {
    /// Which setup.
    pub setup: Setup,
    /// Median rate over rounds, and min and max.
    pub rate: (f64, f64, f64),
    /// p50, p99, p99.9 in milliseconds over all requests of all rounds.
    pub p50: f64,
    /// p99.
    pub p99: f64,
    /// p99.9.
    pub p999: f64,
    /// Failed requests over all rounds.
    pub errors: usize,
    /// Responses per real server over all rounds.
    pub bodies: BTreeMap<String, usize>,
    /// Mean per-CPU busy % over rounds.
    pub cpu: Vec<(f64, f64)>,
    /// Mean director-process CPU % over rounds (user, system).
    pub director_cpu: (f64, f64),
    /// Director syscalls per completed connection (all, sendto), with `--syscalls`.
    pub syscalls_per_conn: Option<(f64, f64)>,
}

/// Nearest-rank percentile of sorted values; 0 when empty.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Pools the samples of one setup.
pub fn row(setup: Setup, samples: &[&Sample]) -> Row {
    let mut rates: Vec<f64> = samples.iter().map(|s| s.rate()).collect();
    rates.sort_by(f64::total_cmp);
    let mut lat: Vec<u32> = samples
        .iter()
        .flat_map(|s| s.latencies_us.iter().copied())
        .collect();
    lat.sort_unstable();
    let ms = |p| f64::from(percentile(&lat, p)) / 1000.0;
    let mut bodies = BTreeMap::new();
    for s in samples {
        for (k, v) in &s.bodies {
            *bodies.entry(k.clone()).or_default() += v;
        }
    }
    let n = samples.len().max(1) as f64;
    let ncpu = samples.first().map_or(0, |s| s.cpu.len());
    let cpu = (0..ncpu)
        .map(|c| {
            let busy: f64 = samples.iter().map(|s| s.cpu[c].0).sum();
            let soft: f64 = samples.iter().map(|s| s.cpu[c].1).sum();
            (busy / n, soft / n)
        })
        .collect();
    Row {
        setup,
        rate: (
            rates.get(rates.len() / 2).copied().unwrap_or(0.0),
            rates.first().copied().unwrap_or(0.0),
            rates.last().copied().unwrap_or(0.0),
        ),
        p50: ms(50.0),
        p99: ms(99.0),
        p999: ms(99.9),
        errors: samples.iter().map(|s| s.errors).sum(),
        bodies,
        cpu,
        director_cpu: (
            samples.iter().map(|s| s.director_cpu.0).sum::<f64>() / n,
            samples.iter().map(|s| s.director_cpu.1).sum::<f64>() / n,
        ),
        syscalls_per_conn: syscalls_per_conn(samples),
    }
}

fn syscalls_per_conn(samples: &[&Sample]) -> Option<(f64, f64)> {
    let mut all = 0;
    let mut sendto = 0;
    let mut conns = 0;
    for s in samples {
        let (a, b) = s.syscalls?;
        all += a;
        sendto += b;
        conns += s.ok;
    }
    let conns = conns.max(1) as f64;
    Some((all as f64 / conns, sendto as f64 / conns))
}

/// Prints the results table and the ratio table.
pub fn print(rows: &[Row]) {
    println!();
    println!(
        "| setup | conn/s (median) | conn/s min–max | p50 ms | p99 ms | p99.9 ms | errors | split | CPU0 busy/softirq % | CPU1 busy/softirq % | director procs CPU % user/sys |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|");
    for r in rows {
        let split: Vec<String> = r.bodies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let cpu = |c: usize| {
            r.cpu
                .get(c)
                .map_or("-".into(), |(b, s)| format!("{b:.0}/{s:.0}"))
        };
        println!(
            "| {} | {:.0} | {:.0}–{:.0} | {:.3} | {:.3} | {:.3} | {} | {} | {} | {} | {:.0}/{:.0} |",
            r.setup.name(),
            r.rate.0,
            r.rate.1,
            r.rate.2,
            r.p50,
            r.p99,
            r.p999,
            r.errors,
            split.join(" "),
            cpu(0),
            cpu(1),
            r.director_cpu.0,
            r.director_cpu.1,
        );
    }
    if rows.iter().any(|r| r.syscalls_per_conn.is_some()) {
        println!();
        println!("| setup | director syscalls / connection | of which sendto |");
        println!("|---|---:|---:|");
        for r in rows {
            if let Some((a, b)) = r.syscalls_per_conn {
                println!("| {} | {a:.1} | {b:.1} |", r.setup.name());
            }
        }
    }
    let find = |s: Setup| rows.iter().find(|r| r.setup == s);
    let (Some(hap), Some(ngx)) = (find(Setup::Haproxy), find(Setup::NginxStream)) else {
        return;
    };
    println!();
    println!(
        "| setup | conn/s ÷ haproxy | conn/s ÷ nginx | p50 ÷ haproxy | p50 ÷ nginx | p99 ÷ haproxy | p99 ÷ nginx |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    for r in rows {
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.setup.name(),
            div(r.rate.0, hap.rate.0),
            div(r.rate.0, ngx.rate.0),
            div(r.p50, hap.p50),
            div(r.p50, ngx.p50),
            div(r.p99, hap.p99),
            div(r.p99, ngx.p99),
        );
    }
}
