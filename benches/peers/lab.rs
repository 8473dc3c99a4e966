//! Network namespaces, veth pairs and processes that the bench creates itself and removes when
//! the [`Lab`] is dropped: after a normal run, an error, a panic, or SIGINT/SIGTERM/SIGHUP (the
//! waits poll a flag set by the signal handler and unwind from there).
//!
//! Nothing outside the lab's own namespaces is touched: every command runs through
//! `ip netns exec`, and sysctls are written only inside those namespaces.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the bench stopped early.
pub type Error = String;

/// A process started in a namespace, killed when the lab is dropped.
struct Proc {
    name: String,
    child: Child,
}

/// Index of a process started with [`Lab::spawn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcId(usize);

/// The namespaces, processes and scratch directory of one bench run.
pub struct Lab {
    tag: String,
    namespaces: Vec<String>,
    procs: Vec<Option<Proc>>,
    logs: Vec<PathBuf>,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
}

impl Lab {
    /// An empty lab; names start with `ivp<pid>`; SIGINT/SIGTERM/SIGHUP make waits fail.
    pub fn new() -> Result<Lab, Error> {
        let tag = format!("ivp{}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(format!("{tag}-peers"));
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            signal_hook::flag::register(sig, Arc::clone(&stop))
                .map_err(|e| format!("signal handler: {e}"))?;
        }
        Ok(Lab {
            tag,
            namespaces: Vec::new(),
            procs: Vec::new(),
            logs: Vec::new(),
            dir,
            stop,
        })
    }

    /// The prefix of every name in this lab (also DPDK's `--file-prefix`).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Scratch directory for configurations and logs (removed on drop).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Fails once a stop signal arrived.
    pub fn check_signal(&self) -> Result<(), Error> {
        if self.stop.load(Ordering::Relaxed) {
            Err("interrupted by a signal".into())
        } else {
            Ok(())
        }
    }

    /// Creates namespace `<tag>-<short>` with IPv6 off; returns its name.
    pub fn netns(&mut self, short: &str) -> Result<String, Error> {
        let ns = format!("{}-{short}", self.tag);
        run(&["ip", "netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        self.sysctl(&ns, "net.ipv6.conf.all.disable_ipv6", "1")?;
        self.sysctl(&ns, "net.ipv6.conf.default.disable_ipv6", "1")?;
        self.exec(&ns, &["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Sets a sysctl inside a namespace of the lab.
    pub fn sysctl(&self, ns: &str, key: &str, value: &str) -> Result<(), Error> {
        self.exec(ns, &["sysctl", "-q", "-w", &format!("{key}={value}")])
            .map(drop)
    }

    /// Runs a command inside a namespace; its stdout, or an error with its stderr.
    pub fn exec(&self, ns: &str, cmd: &[&str]) -> Result<String, Error> {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(cmd);
        run(&full)
    }

    /// Connects `a_if` in `a` with `b_if` in `b` through a veth pair.
    pub fn veth(&self, a: &str, a_if: &str, b: &str, b_if: &str) -> Result<(), Error> {
        run(&[
            "ip", "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b,
        ])
        .map(drop)
    }

    /// Starts `cmd` inside `ns`, stdout and stderr to `<dir>/<name>-<n>.log`.
    pub fn spawn(&mut self, ns: &str, name: &str, cmd: &[&str]) -> Result<ProcId, Error> {
        let log = self.dir.join(format!("{name}-{}.log", self.logs.len()));
        let file = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("start {name}: {e}"))?;
        self.procs.push(Some(Proc {
            name: name.to_string(),
            child,
        }));
        self.logs.push(log);
        Ok(ProcId(self.procs.len() - 1))
    }

    /// Everything a process wrote so far (also after it stopped).
    pub fn log(&self, p: ProcId) -> String {
        fs::read_to_string(&self.logs[p.0]).unwrap_or_default()
    }

    /// Waits until `ready()` holds; fails if the process exits, a signal arrives or time runs out.
    pub fn wait_until(
        &mut self,
        p: ProcId,
        timeout: Duration,
        mut ready: impl FnMut(&Lab) -> bool,
    ) -> Result<(), Error> {
        let start = Instant::now();
        loop {
            if ready(self) {
                return Ok(());
            }
            self.check_signal()?;
            let proc = self.procs[p.0].as_mut().ok_or("process already stopped")?;
            if let Ok(Some(status)) = proc.child.try_wait() {
                let name = proc.name.clone();
                return Err(format!("{name} exited ({status}):\n{}", self.log(p)));
            }
            if start.elapsed() > timeout {
                let name = proc.name.clone();
                return Err(format!(
                    "{name} not ready after {timeout:?}:\n{}",
                    self.log(p)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for a process to exit on its own; kills it after `timeout` or on a signal.
    pub fn wait_exit(&mut self, p: ProcId, timeout: Duration) -> Result<String, Error> {
        let start = Instant::now();
        loop {
            let interrupted = self.check_signal();
            let proc = self.procs[p.0].as_mut().ok_or("process already stopped")?;
            match proc.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(self.log(p)),
                Ok(Some(status)) => {
                    let name = proc.name.clone();
                    return Err(format!("{name} failed ({status}):\n{}", self.log(p)));
                }
                _ => {}
            }
            if interrupted.is_err() || start.elapsed() > timeout {
                let name = proc.name.clone();
                self.kill(p);
                interrupted?;
                return Err(format!("{name} still running after {timeout:?}; killed"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM, waits up to `grace`, then SIGKILL; returns the exit code, if any.
    pub fn terminate(&mut self, p: ProcId, grace: Duration) -> Option<i32> {
        let mut proc = self.procs[p.0].take()?;
        if let Ok(Some(status)) = proc.child.try_wait() {
            return status.code();
        }
        let _ = Command::new("kill")
            .args(["-TERM", &proc.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let start = Instant::now();
        while start.elapsed() < grace {
            if let Ok(Some(status)) = proc.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = proc.child.kill();
        proc.child.wait().ok().and_then(|s| s.code())
    }

    /// Sends a signal (`INT`, `TERM`, …) to a running process.
    pub fn signal(&self, p: ProcId, sig: &str) {
        if let Some(proc) = self.procs[p.0].as_ref() {
            let _ = Command::new("kill")
                .args([&format!("-{sig}"), &proc.child.id().to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Kills a process at once.
    pub fn kill(&mut self, p: ProcId) {
        if let Some(mut proc) = self.procs[p.0].take() {
            let _ = proc.child.kill();
            let _ = proc.child.wait();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for i in (0..self.procs.len()).rev() {
            self.terminate(ProcId(i), Duration::from_secs(3));
        }
        for ns in self.namespaces.iter().rev() {
            // Children of our children (nginx workers) live in the namespace too.
            if let Ok(pids) = run(&["ip", "netns", "pids", ns]) {
                for pid in pids.split_whitespace() {
                    let _ = Command::new("kill")
                        .args(["-KILL", pid])
                        .stderr(Stdio::null())
                        .status();
                }
            }
            let _ = run(&["ip", "netns", "del", ns]);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Runs a command; its stdout, or an error naming it with its stderr.
pub fn run(cmd: &[&str]) -> Result<String, Error> {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", cmd.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            cmd.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
