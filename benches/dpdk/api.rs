//! Reading the daemon's counters from its REST API (`GET /api/v1/stats`) with a bare HTTP/1.1
//! client, and the subset of the answer the benchmark checks.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The counters one sample holds.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// When the answer arrived (the counters were read just before).
    pub at: Option<Instant>,
    /// Per port (config order): (rx_packets, tx_packets).
    pub ports: Vec<(u64, u64)>,
    /// Worker 0 rx, tx.
    pub worker_rx: u64,
    /// Worker 0 tx.
    pub worker_tx: u64,
    /// All drops by reason, summed over forwarder and worker.
    pub drops: BTreeMap<String, u64>,
    /// Connections created (the service's `conns`).
    pub new_conns: u64,
    /// Connection-table entries in use.
    pub entries: u64,
}

impl Sample {
    /// Reasons whose count grew from `before` to `self`, with the growth.
    pub fn drops_since(&self, before: &Sample) -> Vec<(String, u64)> {
        self.drops
            .iter()
            .filter_map(|(k, v)| {
                let d = v - before.drops.get(k).copied().unwrap_or(0);
                (d > 0).then(|| (k.clone(), d))
            })
            .collect()
    }
}

/// One GET; the body of a 200 answer.
pub fn get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("truncated HTTP answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(head.lines().next().unwrap_or_default().to_string());
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Ok(dechunk(body));
    }
    Ok(body.to_string())
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Reads `/api/v1/stats`.
pub fn sample(addr: SocketAddr) -> Result<Sample, String> {
    let body = get(addr, "/api/v1/stats")?;
    let at = Instant::now();
    let v: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let mut s = Sample {
        at: Some(at),
        ..Sample::default()
    };
    for p in v["ports"].as_array().into_iter().flatten() {
        s.ports.push((n(&p["rx_packets"]), n(&p["tx_packets"])));
    }
    for w in v["workers"].as_array().into_iter().flatten() {
        s.worker_rx += n(&w["rx_packets"]);
        s.worker_tx += n(&w["tx_packets"]);
        for (k, d) in w["drops"].as_object().into_iter().flatten() {
            *s.drops.entry(k.clone()).or_default() += n(d);
        }
    }
    for svc in v["services"].as_array().into_iter().flatten() {
        s.new_conns += n(&svc["stats"]["conns"]);
    }
    s.entries = n(&v["conn_table"]["entries"]);
    Ok(s)
}

/// Polls until the API answers or `timeout` passes.
pub fn wait_up(addr: SocketAddr, timeout: Duration) -> Result<Sample, String> {
    let end = Instant::now() + timeout;
    loop {
        match sample(addr) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() > end => return Err(format!("API not up: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
