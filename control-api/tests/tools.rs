//! External validators: `promtool check metrics` on real `/metrics` output, and schemathesis
//! against the served OpenAPI document (0 server errors allowed).
//!
//! CI installs the tools first:
//!   apt-get install -y prometheus        # promtool
//!   pip install schemathesis             # st
//! The schemathesis command run here is
//!   st run http://127.0.0.1:PORT/api/v1/openapi.json --checks all \
//!      --exclude-checks positive_data_acceptance,unsupported_method \
//!      --max-examples 40 --seed 1 --workers 1
//! Both tests fail (with these instructions) when the tool is missing.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use control_api::{ControlPlane, Dataplane, MemoryDataplane, Options, WorkerStats};

fn start(state: &std::path::Path) -> (tokio::runtime::Runtime, ControlPlane, Arc<MemoryDataplane>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dp = Arc::new(MemoryDataplane::new(1 << 20));
    let opts = Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: None,
        state_file: Some(state.to_path_buf()),
    };
    let cp = rt.block_on(ControlPlane::start(opts, dp.clone())).unwrap();
    (rt, cp, dp)
}

fn need(tool: &str, install: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{tool}` is not installed; install it with: {install}"
    );
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    ureq::get(&format!("http://{addr}{path}"))
        .call()
        .unwrap()
        .into_string()
        .unwrap()
}

fn http_send(addr: std::net::SocketAddr, path: &str, body: serde_json::Value) {
    ureq::post(&format!("http://{addr}{path}"))
        .send_json(body)
        .unwrap();
}

#[test]
fn test_promtool_check_metrics() {
    need("promtool", "apt-get install -y prometheus");
    let dir = tempfile::tempdir().unwrap();
    let (rt, cp, dp) = start(&dir.path().join("state.json"));
    let addr = cp.local_addr();
    http_send(
        addr,
        "/api/v1/services",
        serde_json::json!({
        "proto": "tcp", "vip": "192.0.2.10", "port": 80,
        "real_servers": [{"addr": "10.0.0.1"}, {"addr": "10.0.0.2", "weight": 0}]}),
    );
    let mut snap = dp.stats();
    snap.workers = vec![WorkerStats {
        worker: 0,
        rx_packets: 10,
        tx_packets: 9,
        drops: [("no_service".to_string(), 1)].into(),
        new_connections: 3,
        aliases_sent: 2,
        ..Default::default()
    }];
    snap.ports = vec![control_api::PortStats {
        port: 0,
        rx_packets: 10,
        ..Default::default()
    }];
    dp.set_stats(snap);
    let text = http_get(addr, "/metrics");
    assert!(text.contains("ironvs_real_server_weight{"), "{text}");
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = rt.block_on(cp.shutdown());
}

#[test]
fn test_schemathesis_no_server_errors() {
    need("st", "pip install schemathesis");
    let dir = tempfile::tempdir().unwrap();
    let (rt, cp, _dp) = start(&dir.path().join("state.json"));
    let url = format!("http://{}/api/v1/openapi.json", cp.local_addr());
    let out = Command::new("st")
        .args([
            "run",
            &url,
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance,unsupported_method",
            "--max-examples",
            "40",
            "--seed",
            "1",
            "--workers",
            "1",
        ])
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary must show that operations were exercised, not skipped.
    println!("{stdout}");
    assert!(stdout.contains("API Operations:"), "{stdout}");
    assert!(!stdout.contains("0 selected"), "{stdout}");
    let _ = rt.block_on(cp.shutdown());
}
