//! Running one case: the `ironvs` daemon (counters from its REST API) or `dpdk-testpmd`
//! (counters from `show port stats`), a warm-up, then a fixed window whose packet count on the
//! sink port gives the rate.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::api::{self, Sample};
use crate::lab::{self, Case, Files, Load};

/// Port index of the sink.
pub const SINK: usize = 2;
/// Port index of the load port.
pub const LOAD: usize = 1;

/// Timing of a run.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// After the SYN pass, before the window.
    pub warmup: Duration,
    /// The measured window.
    pub window: Duration,
}

/// What one window measured.
#[derive(Debug, Clone, Default)]
pub struct Measure {
    /// Packets the sink transmitted in the window.
    pub packets: u64,
    /// Window length, seconds.
    pub secs: f64,
    /// Packets the load port received in the window.
    pub received: u64,
    /// Drops in the window, by reason (ironvs only).
    pub drops: Vec<(String, u64)>,
    /// Connections created in the window (ironvs only).
    pub new_conns: u64,
    /// Connection-table entries at the end.
    pub entries: u64,
    /// Problems that make the figure suspect.
    pub notes: Vec<String>,
}

impl Measure {
    /// Million packets per second.
    pub fn mpps(&self) -> f64 {
        self.packets as f64 / self.secs / 1e6
    }
}

/// A free TCP port on localhost for the REST API.
pub fn free_api_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address")
}

fn stop(child: &mut Child) {
    // testpmd has usually quit, and been reaped, by now: its pid may then name another process.
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stderr(Stdio::null())
        .status();
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The daemon binary to run, and what to add to its environment.
#[derive(Clone, Copy)]
pub struct Daemon<'a> {
    pub bin: &'a Path,
    pub env: &'a [(&'a str, &'a str)],
    /// Names its logs and configurations apart from the plain daemon's.
    pub tag: &'a str,
}

/// Runs the daemon on `case` and measures; `perf` records the worker CPU during the window.
pub fn ironvs(
    d: Daemon,
    dir: &Path,
    case: &Case,
    files: &Files,
    t: Timing,
    perf: Option<&Path>,
) -> Result<Measure, String> {
    let tag = format!(
        "{}{}-{}-{:?}",
        d.tag,
        case.mode.name(),
        case.flows,
        case.load
    )
    .to_lowercase();
    let api = free_api_addr();
    let prefix = format!("ivsbench{}", std::process::id());
    let cfg = dir.join(format!("ironvs-{tag}.toml"));
    std::fs::write(&cfg, lab::ironvs_config(case, files, &prefix, api))
        .map_err(|e| e.to_string())?;
    let log =
        std::fs::File::create(dir.join(format!("ironvs-{tag}.log"))).map_err(|e| e.to_string())?;
    let mut child = Command::new(d.bin)
        .envs(d.env.iter().copied())
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", d.bin.display()))?;
    let r = measure_ironvs(api, case, t, perf.map(|p| (p, child.id())));
    stop(&mut child);
    r.map_err(|e| format!("{e} (log: {}/ironvs-{tag}.log)", dir.display()))
}

fn measure_ironvs(
    api: SocketAddr,
    case: &Case,
    t: Timing,
    perf: Option<(&Path, u32)>,
) -> Result<Measure, String> {
    api::wait_up(api, Duration::from_secs(120))?;
    // The SYN pass: every SYN read and every connection in the table.
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let s = api::sample(api)?;
        let syn_rx = s.ports.first().map_or(0, |p| p.0);
        if syn_rx >= u64::from(case.syns()) && s.entries >= u64::from(case.syns()) {
            break;
        }
        if Instant::now() > end {
            return Err(format!(
                "SYN pass incomplete: {syn_rx} of {} SYNs read, {} connections; drops {:?}",
                case.syns(),
                s.entries,
                s.drops
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if case.load == Load::NewConns {
        // The first pass over the tuples lasts about half a second; record its middle only
        // (not the daemon's exit).
        let span = t.window.min(Duration::from_millis(300));
        let recorder = perf.map(|(p, pid)| record(p, pid, span));
        let m = measure_new_conns(api, case, t);
        if let Some(r) = recorder {
            r?;
        }
        return m;
    }
    std::thread::sleep(t.warmup);
    let recorder = perf.map(|(p, pid)| record(p, pid, t.window));
    let s0 = api::sample(api)?;
    std::thread::sleep(t.window);
    let s1 = api::sample(api)?;
    if let Some(r) = recorder {
        r?;
    }
    let mut m = window(&s0, &s1);
    m.new_conns = s1.new_conns - s0.new_conns;
    m.drops = s1.drops_since(&s0);
    if !m.drops.is_empty() {
        m.notes.push(format!("drops in window: {:?}", m.drops));
    }
    if m.new_conns > 0 {
        m.notes
            .push(format!("{} connections created in window", m.new_conns));
    }
    if m.received.abs_diff(m.packets) > m.packets / 1000 {
        m.notes.push(format!(
            "load rx {} != sink tx {} in window",
            m.received, m.packets
        ));
    }
    if m.entries < u64::from(case.syns()) {
        m.notes.push(format!(
            "{} connections, {} expected",
            m.entries,
            case.syns()
        ));
    }
    if m.packets == 0 {
        return Err(format!("nothing forwarded; drops {:?}", s1.drops));
    }
    Ok(m)
}

fn window(s0: &Sample, s1: &Sample) -> Measure {
    let (a, b) = (s0.at.expect("timed"), s1.at.expect("timed"));
    let tx = |s: &Sample| s.ports.get(SINK).map_or(0, |p| p.1);
    let rx = |s: &Sample| s.ports.get(LOAD).map_or(0, |p| p.0);
    Measure {
        packets: tx(s1) - tx(s0),
        received: rx(s1) - rx(s0),
        secs: (b - a).as_secs_f64(),
        entries: s1.entries,
        ..Measure::default()
    }
}

/// Connection set-up rate: sampled every 20 ms while the first pass over the distinct tuples
/// runs; the rate is taken between 10 % and 90 % of the tuples (steady state, no start-up and
/// no tail where repeated tuples hit existing connections).
fn measure_new_conns(api: SocketAddr, case: &Case, t: Timing) -> Result<Measure, String> {
    let total = u64::from(case.flows);
    let end = Instant::now() + t.window + Duration::from_secs(30);
    let mut samples = Vec::new();
    loop {
        let s = api::sample(api)?;
        let done = s.new_conns >= total * 9 / 10;
        samples.push(s);
        if done || Instant::now() > end {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let first = samples
        .iter()
        .find(|s| s.new_conns >= total / 10)
        .ok_or("too few connections created")?;
    let last = samples
        .iter()
        .rev()
        .find(|s| s.new_conns <= total * 9 / 10)
        .ok_or("no sample in the steady range")?;
    let mut m = window(first, last);
    m.new_conns = last.new_conns - first.new_conns;
    m.drops = last.drops_since(first);
    if !m.drops.is_empty() {
        m.notes.push(format!("drops in window: {:?}", m.drops));
    }
    if m.secs < 0.05 {
        m.notes.push(format!(
            "window only {:.0} ms: use more tuples",
            m.secs * 1e3
        ));
    }
    Ok(m)
}

/// Records the daemon's threads (only its process: other DPDK programs may share the CPU).
fn record(out: &Path, pid: u32, window: Duration) -> Result<(), String> {
    let st = Command::new("perf")
        .args(["record", "-q", "-p", &pid.to_string(), "-o"])
        .arg(out)
        .args(["--", "sleep"])
        .arg(format!("{:.3}", window.as_secs_f64()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("perf: {e}"))?;
    // perf runs alongside the window; the caller samples meanwhile and waits below.
    let mut st = st;
    std::thread::spawn(move || {
        let _ = st.wait();
    });
    Ok(())
}

/// Lines testpmd printed, with the time each was read.
type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

struct Testpmd {
    child: Child,
    stdin: ChildStdin,
    lines: Lines,
}

impl Testpmd {
    fn send(&mut self, cmd: &str) -> Result<(), String> {
        writeln!(self.stdin, "{cmd}").map_err(|e| format!("testpmd stdin: {e}"))?;
        self.stdin.flush().map_err(|e| e.to_string())
    }

    /// Waits for a line containing `needle` after line `from`; returns its index and time.
    fn wait_for(
        &self,
        from: usize,
        needle: &str,
        timeout: Duration,
    ) -> Result<(usize, Instant), String> {
        let end = Instant::now() + timeout;
        loop {
            {
                let l = self.lines.lock().expect("lines");
                if let Some(i) = l[from.min(l.len())..]
                    .iter()
                    .position(|(_, s)| s.contains(needle))
                {
                    return Ok((from + i, l[from + i].0));
                }
            }
            if Instant::now() > end {
                return Err(format!("testpmd: no `{needle}` within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn len(&self) -> usize {
        self.lines.lock().expect("lines").len()
    }

    /// The sink's and the load port's counters: ((time, sink TX-packets), load RX-packets).
    fn stats(&mut self) -> Result<(Instant, u64, u64), String> {
        let from = self.len();
        self.send("show port stats all")?;
        let (h, _) = self.wait_for(
            from,
            &format!("statistics for port {LOAD} "),
            Duration::from_secs(5),
        )?;
        let (rx_line, _) = self.wait_for(h, "RX-packets:", Duration::from_secs(5))?;
        let (h2, _) = self.wait_for(
            rx_line,
            &format!("statistics for port {SINK} "),
            Duration::from_secs(5),
        )?;
        let (i, at) = self.wait_for(h2, "TX-packets:", Duration::from_secs(5))?;
        let l = self.lines.lock().expect("lines");
        Ok((
            at,
            field(&l[i].1, "TX-packets:")?,
            field(&l[rx_line].1, "RX-packets:")?,
        ))
    }
}

fn field(line: &str, name: &str) -> Result<u64, String> {
    line.split(name)
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("cannot read `{name}` in `{line}`"))
}

/// The bursts testpmd runs at: its default (32) and the worker's, once each.
pub fn testpmd_bursts() -> Vec<usize> {
    let mut b = vec![TESTPMD_DEFAULT_BURST, ironvs::worker::BURST];
    b.dedup();
    b
}

/// `dpdk-testpmd`'s `--burst` default (`DEF_PKT_BURST`).
const TESTPMD_DEFAULT_BURST: usize = 32;

/// Runs `dpdk-testpmd --forward-mode=fwd_mode --burst=burst` on the same ports, cores and pool
/// and measures.
pub fn testpmd(
    dir: &Path,
    case: &Case,
    files: &Files,
    fwd_mode: &str,
    burst: usize,
    t: Timing,
) -> Result<Measure, String> {
    let prefix = format!("tpbench{}", std::process::id());
    let mut args: Vec<String> = vec!["-l".into(), "0,1".into(), "--main-lcore=0".into()];
    args.extend(case.memory.args(case.mem_mb()));
    args.extend(["--no-pci".into(), format!("--file-prefix={prefix}")]);
    for v in lab::vdevs(files) {
        args.push(format!("--vdev={v}"));
    }
    args.extend(
        [
            "--",
            "-i",
            "--port-topology=chained",
            "--nb-cores=1",
            "--rxq=1",
            "--txq=1",
            "--rxd=1024",
            "--txd=1024",
            "--mbcache=256",
            "--mbuf-size=2176",
        ]
        .map(String::from),
    );
    args.push(format!("--burst={burst}"));
    args.push(format!("--total-num-mbufs={}", case.mbufs()));
    args.push(format!("--forward-mode={fwd_mode}"));
    let log_path = dir.join(format!("testpmd-{fwd_mode}-{}.log", case.flows));
    // testpmd's stdout is a pipe here: without stdbuf its answers would wait in a full buffer.
    let mut child = Command::new("stdbuf")
        .args(["-oL", "-eL", "dpdk-testpmd"])
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start stdbuf dpdk-testpmd: {e}"))?;
    let lines: Lines = Arc::default();
    for out in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().expect("lines").push((Instant::now(), l));
            }
        });
    }
    let stdin = child.stdin.take().expect("stdin");
    let mut tp = Testpmd {
        child,
        stdin,
        lines,
    };
    let r = measure_testpmd(&mut tp, case, t);
    let _ = tp.send("stop");
    let _ = tp.send("quit");
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end && !matches!(tp.child.try_wait(), Ok(Some(_))) {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop(&mut tp.child);
    let text: Vec<String> = tp
        .lines
        .lock()
        .expect("lines")
        .iter()
        .map(|(_, l)| l.clone())
        .collect();
    let _ = std::fs::write(&log_path, text.join("\n"));
    r.map_err(|e| format!("{e} (log: {})", log_path.display()))
}

fn measure_testpmd(tp: &mut Testpmd, case: &Case, t: Timing) -> Result<Measure, String> {
    // The prompt has no newline: send at once, testpmd reads it when initialised.
    tp.send("start")?;
    tp.wait_for(0, "packet forwarding - ports=", Duration::from_secs(120))?;
    // The same SYN pass as the daemon's (forwarded from port 0 to port 1).
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let from = tp.len();
        tp.send("show port stats 0")?;
        let (h, _) = tp.wait_for(from, "RX-packets:", Duration::from_secs(5))?;
        let rx = field(&tp.lines.lock().expect("lines")[h].1, "RX-packets:")?;
        if rx >= u64::from(case.syns()) {
            break;
        }
        if Instant::now() > end {
            return Err(format!("SYN pass incomplete: {rx} of {}", case.syns()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(t.warmup);
    let (a, tx0, rx0) = tp.stats()?;
    std::thread::sleep(t.window);
    let (b, tx1, rx1) = tp.stats()?;
    let mut m = Measure {
        packets: tx1 - tx0,
        received: rx1 - rx0,
        secs: (b - a).as_secs_f64(),
        ..Measure::default()
    };
    if m.packets == 0 {
        return Err("testpmd forwarded nothing".into());
    }
    if m.received.abs_diff(m.packets) > m.packets / 1000 {
        m.notes
            .push(format!("load rx {} != sink tx {}", m.received, m.packets));
    }
    Ok(m)
}
