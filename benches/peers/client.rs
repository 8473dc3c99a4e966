//! The load generator: a FIXED number of HTTP/1.1 requests, each on its own TCP connection
//! (`Connection: close`), at a FIXED concurrency, on one thread (run it pinned to one CPU).
//!
//! A request's latency runs from just before `connect()` to the end of the response (the server
//! closes), so it includes the three-way handshake that a layer-4 balancer handles, unlike
//! wrk's, which starts once the socket is writable. The server closes first, so the client holds
//! no TIME_WAIT and the run is bounded by ports only through the servers' TIME_WAIT reuse.
//!
//! Output (stdout): one `result ok=… errors=… elapsed_us=…` line, one `body NAME COUNT` line per
//! distinct response body (which real server answered), one `error KIND COUNT` line per kind of
//! failure; latencies, in microseconds, one per line, go to the file given with `--out`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// What one client run is asked to do.
pub struct Plan {
    /// Servers, used round-robin by request number (one VIP, or several real servers).
    pub targets: Vec<SocketAddr>,
    /// Requests in all.
    pub requests: usize,
    /// Connections open at once.
    pub concurrency: usize,
    /// Limit for one request (connect to end of response).
    pub timeout: Duration,
    /// Where latencies go.
    pub out: std::path::PathBuf,
}

/// What one task saw.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    bodies: BTreeMap<String, usize>,
    errors: BTreeMap<&'static str, usize>,
}

/// Parses `client --target A[,B] --requests N --concurrency C --timeout-ms T --out FILE`.
pub fn parse(args: &[String]) -> Result<Plan, String> {
    let mut plan = Plan {
        targets: Vec::new(),
        requests: 0,
        concurrency: 1,
        timeout: Duration::from_secs(2),
        out: std::path::PathBuf::new(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--target" => {
                for t in value.split(',') {
                    plan.targets.push(t.parse().map_err(|e| bad(&e))?);
                }
            }
            "--requests" => plan.requests = value.parse().map_err(|e| bad(&e))?,
            "--concurrency" => plan.concurrency = value.parse().map_err(|e| bad(&e))?,
            "--timeout-ms" => {
                plan.timeout = Duration::from_millis(value.parse().map_err(|e| bad(&e))?)
            }
            "--out" => plan.out = value.into(),
            _ => return Err(format!("unknown client flag {flag}")),
        }
    }
    if plan.targets.is_empty() || plan.requests == 0 || plan.concurrency == 0 {
        return Err("client needs --target, --requests and --concurrency".into());
    }
    Ok(plan)
}

/// Runs the plan on a single-threaded runtime and prints the summary.
pub fn run(plan: Plan) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let plan = Arc::new(plan);
    let start = Instant::now();
    let tally = rt.block_on(async {
        let next = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..plan.concurrency.min(plan.requests))
            .map(|_| tokio::spawn(worker(Arc::clone(&plan), Arc::clone(&next))))
            .collect();
        let mut all = Tally::default();
        for t in tasks {
            let t = t.await.map_err(|e| e.to_string())?;
            all.latencies_us.extend(t.latencies_us);
            for (k, v) in t.bodies {
                *all.bodies.entry(k).or_default() += v;
            }
            for (k, v) in t.errors {
                *all.errors.entry(k).or_default() += v;
            }
        }
        Ok::<_, String>(all)
    })?;
    let elapsed = start.elapsed();
    let mut out = std::fs::File::create(&plan.out).map_err(|e| e.to_string())?;
    let text: String = tally
        .latencies_us
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    out.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    let errors: usize = tally.errors.values().sum();
    println!(
        "result ok={} errors={errors} elapsed_us={}",
        tally.latencies_us.len(),
        elapsed.as_micros()
    );
    for (body, n) in &tally.bodies {
        println!("body {body} {n}");
    }
    for (kind, n) in &tally.errors {
        println!("error {kind} {n}");
    }
    Ok(())
}

/// One connection slot: takes request numbers until all are taken.
async fn worker(plan: Arc<Plan>, next: Arc<AtomicUsize>) -> Tally {
    let mut tally = Tally::default();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= plan.requests {
            return tally;
        }
        let target = plan.targets[n % plan.targets.len()];
        let start = Instant::now();
        match tokio::time::timeout(plan.timeout, request(target, &mut buf)).await {
            Ok(Ok(body)) => {
                let us = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
                tally.latencies_us.push(us);
                *tally.bodies.entry(body).or_default() += 1;
            }
            Ok(Err(kind)) => *tally.errors.entry(kind).or_default() += 1,
            Err(_) => *tally.errors.entry("timeout").or_default() += 1,
        }
    }
}

/// One request on a new connection; the response's body (trimmed), or the kind of failure.
async fn request(target: SocketAddr, buf: &mut [u8]) -> Result<String, &'static str> {
    let stream = TcpStream::connect(target)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "refused",
            std::io::ErrorKind::ConnectionReset => "reset",
            _ => "connect",
        })?;
    stream.set_nodelay(true).map_err(|_| "socket")?;
    let req = format!(
        "GET /index.html HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.ip()
    );
    let mut sent = 0;
    while sent < req.len() {
        stream.writable().await.map_err(|_| "write")?;
        match stream.try_write(&req.as_bytes()[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return Err("write"),
        }
    }
    let mut len = 0;
    loop {
        stream.readable().await.map_err(|_| "read")?;
        match stream.try_read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Err("reset"),
            Err(_) => return Err("read"),
        }
        if len == buf.len() {
            return Err("too_long");
        }
    }
    let resp = std::str::from_utf8(&buf[..len]).map_err(|_| "not_utf8")?;
    if !resp.starts_with("HTTP/1.1 200") {
        return Err("status");
    }
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim())
        .ok_or("truncated")?;
    Ok(body.to_string())
}
