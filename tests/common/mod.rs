//! A network-namespace lab for end-to-end tests: namespaces, veth pairs and processes that the test
//! creates itself and that are removed when the [`Lab`] is dropped, even when the test panics.
//!
//! Nothing here touches the host's own interfaces or global sysctls: every command runs inside a
//! namespace of the lab (`ip netns exec`), and only documentation address ranges are used.
#![allow(dead_code)]

pub mod lvs;
pub mod pcap;
pub mod tun;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// True when the process may create namespaces and run DPDK (root).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Returns early from a test with a clear message when not root; CI runs as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::common::is_root() {
            eprintln!(
                "skipped: this test needs root (network namespaces, DPDK); CI runs it as root"
            );
            return;
        }
    };
}

/// A process started in the lab, killed when the lab is dropped.
pub struct Proc {
    /// What it is, for messages.
    pub name: String,
    /// The child process.
    pub child: Child,
    /// File holding its stdout and stderr.
    pub log: PathBuf,
}

/// A set of namespaces and processes owned by one test.
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    procs: Vec<Proc>,
    dir: tempfile::TempDir,
}

impl Lab {
    /// A new, empty lab; names get a prefix unique to this process and lab.
    pub fn new() -> Lab {
        let n = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("ivs{}x{}", std::process::id() % 100_000, n);
        Lab {
            prefix,
            namespaces: Vec::new(),
            procs: Vec::new(),
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// A short prefix unique to this lab (also usable for DPDK's --file-prefix).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The lab's scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Creates a namespace with loopback up; returns its full name.
    pub fn netns(&mut self, short: &str) -> String {
        let name = format!("{}-{short}", self.prefix);
        run(&["ip", "netns", "add", &name]);
        self.namespaces.push(name.clone());
        self.exec(&name, &["ip", "link", "set", "lo", "up"]);
        name
    }

    /// Creates a veth pair with one end in each namespace (interfaces stay down).
    pub fn veth(&mut self, ns_a: &str, if_a: &str, ns_b: &str, if_b: &str) {
        run(&[
            "ip", "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b,
            "netns", ns_b,
        ]);
    }

    /// Runs a command in a namespace and returns its output; panics with the output on failure.
    pub fn exec(&self, ns: &str, cmd: &[&str]) -> String {
        let out = self.try_exec(ns, cmd);
        if !out.status.success() {
            panic!(
                "in {ns}: `{}` failed ({}):\n{}{}",
                cmd.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command in a namespace and returns its raw output, whatever its exit status.
    pub fn try_exec(&self, ns: &str, cmd: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(cmd)
            .output()
            .expect("ip netns exec")
    }

    /// Sets a sysctl inside a namespace (never on the host).
    pub fn sysctl(&self, ns: &str, key: &str, value: &str) {
        self.exec(ns, &["sysctl", "-q", "-w", &format!("{key}={value}")]);
    }

    /// Starts a long-running process in a namespace; its output goes to a log file in the lab dir.
    pub fn spawn(&mut self, ns: &str, name: &str, cmd: &[&str]) -> usize {
        let log = self.dir.path().join(format!("{name}.log"));
        let file = fs::File::create(&log).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.procs.push(Proc {
            name: name.to_string(),
            child,
            log,
        });
        self.procs.len() - 1
    }

    /// The log of a process started with [`Lab::spawn`].
    pub fn log(&self, proc: usize) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.procs[proc].log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Waits until a process's log contains `needle`; panics with the log if it exits or times out.
    pub fn wait_for_log(&mut self, proc: usize, needle: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            let log = self.log(proc);
            if log.contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.procs[proc].child.try_wait() {
                panic!(
                    "{} exited ({status}) before printing `{needle}`:\n{log}",
                    self.procs[proc].name
                );
            }
            if start.elapsed() > timeout {
                panic!(
                    "{} did not print `{needle}` within {timeout:?}:\n{log}",
                    self.procs[proc].name
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM to a process and waits for it; returns its exit code.
    pub fn terminate(&mut self, proc: usize, timeout: Duration) -> Option<i32> {
        let pid = self.procs[proc].child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.procs[proc].child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in &mut self.procs {
            if let Ok(None) = p.child.try_wait() {
                let _ = p.child.kill();
            }
            let _ = p.child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            // Kill anything still running in the namespace, then remove it (and its interfaces).
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::thread::panicking() || std::env::var_os("IRONVS_TEST_LOGS").is_some() {
            for p in &self.procs {
                if let Ok(log) = fs::read_to_string(&p.log) {
                    eprintln!("---- log of {} ----\n{log}", p.name);
                }
            }
        }
    }
}

/// Runs a host-level `ip` command that creates lab objects; panics with its output on failure.
fn run(cmd: &[&str]) {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", cmd[0]));
    if !out.status.success() {
        panic!(
            "`{}` failed: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
