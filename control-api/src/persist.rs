//! The saved state file: the configuration written after every change and read back at start.
//!
//! The file is JSON (one service per object, real servers inside it). It is replaced atomically:
//! written to a temporary file in the same directory, flushed to disk, renamed over the old one,
//! and the directory flushed, so a crash leaves either the old or the new state, never a mix.
//! Reading it validates every value exactly like the API does; an error names the line (for
//! syntax) or the object (for values) to fix.

use std::fs::{self, File};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use dataplane::model::{LocalAddr, RealServer, Service, Timeouts};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::validate::{self, ConfigError};

/// Format version written into the file.
pub const STATE_VERSION: u32 = 1;

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Reading or writing failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("state file {path}: line {line} column {column}: {msg}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong.
        msg: String,
    },
    /// A value in the file is refused by validation.
    #[error("state file {path}: {object}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Which object (`service tcp:192.0.2.1:80`).
        object: String,
        /// The validation error.
        source: ConfigError,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedState {
    version: u32,
    timeouts: Timeouts,
    laddrs: Vec<IpAddr>,
    services: Vec<SavedService>,
}

#[derive(Serialize, Deserialize)]
struct SavedService {
    #[serde(flatten)]
    service: Service,
    real_servers: Vec<RealServer>,
}

/// The file's text for a configuration.
pub fn to_text(cfg: &Config) -> String {
    let state = SavedState {
        version: STATE_VERSION,
        timeouts: *cfg.timeouts(),
        laddrs: cfg.laddrs().map(|l| l.addr).collect(),
        services: cfg
            .services()
            .map(|s| SavedService {
                service: s.service.clone(),
                real_servers: s.real_servers.values().map(|r| r.server).collect(),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&state).unwrap_or_default();
    text.push('\n');
    text
}

/// Parses and validates the file's text; `path` is used in error messages only.
pub fn from_text(path: &Path, text: &str) -> Result<Config, PersistError> {
    let state: SavedState = serde_json::from_str(text).map_err(|e| PersistError::Parse {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        msg: strip_position(&e.to_string()),
    })?;
    let invalid = |object: String| {
        let path = path.to_path_buf();
        move |source| PersistError::Invalid {
            path,
            object,
            source,
        }
    };
    if state.version != STATE_VERSION {
        return Err(invalid("file".into())(ConfigError::invalid(
            "version",
            format!(
                "unsupported version {}, expected {STATE_VERSION}",
                state.version
            ),
        )));
    }
    let mut cfg = Config::default();
    cfg.set_timeouts(state.timeouts)
        .map_err(invalid("timeouts".into()))?;
    for addr in state.laddrs {
        cfg.add_laddr(LocalAddr { addr })
            .map_err(invalid(format!("local address {addr}")))?;
    }
    for s in state.services {
        let name = format!("service {}", validate::service_name(&s.service.key));
        cfg.add_service(s.service, s.real_servers)
            .map_err(invalid(name))?;
    }
    Ok(cfg)
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Reads the state file; a missing file is an empty configuration.
pub fn load(path: &Path) -> Result<Config, PersistError> {
    match fs::read_to_string(path) {
        Ok(text) => from_text(path, &text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Config::default()),
        Err(source) => Err(PersistError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes the state file atomically (temporary file, fsync, rename, fsync of the directory).
pub fn save(path: &Path, cfg: &Config) -> Result<(), PersistError> {
    let io_err = |source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(to_text(cfg).as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::flow::Proto;
    use dataplane::model::{
        FwdMode, Persistence, RealServerKey, SchedulerKind, ServiceFlags, ServiceKey,
    };

    fn sample() -> Config {
        let mut c = Config::default();
        let s = Service {
            key: ServiceKey {
                proto: Proto::Udp,
                vip: "2001:db8::10".parse().unwrap(),
                port: 0,
            },
            scheduler: SchedulerKind::Sh,
            persistence: Some(Persistence {
                timeout: 600,
                prefix_len: 64,
            }),
            flags: ServiceFlags {
                fallback: true,
                hash_port: false,
                one_packet: true,
            },
        };
        let rs = RealServer {
            key: RealServerKey {
                addr: "2001:db8::20".parse().unwrap(),
                port: 0,
            },
            weight: 3,
            mode: FwdMode::Tun,
            upper_threshold: 100,
            lower_threshold: 50,
        };
        c.add_service(s, vec![rs]).unwrap();
        c.add_laddr(LocalAddr {
            addr: "198.51.100.7".parse().unwrap(),
        })
        .unwrap();
        c.set_timeouts(Timeouts {
            udp: 42,
            ..Timeouts::default()
        })
        .unwrap();
        c
    }

    #[test]
    fn test_save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ironvs.json");
        let c = sample();
        save(&path, &c).unwrap();
        assert_eq!(load(&path).unwrap(), c);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary file left behind");
        assert_eq!(
            load(&dir.path().join("missing")).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn test_parse_error_names_line() {
        let text = to_text(&sample()).replace("\"weight\": 3", "\"weight\": three");
        let line = text.lines().position(|l| l.contains("three")).unwrap() + 1;
        let err = from_text(Path::new("s.json"), &text).unwrap_err();
        match &err {
            PersistError::Parse { line: l, .. } => assert_eq!(*l, line),
            other => panic!("{other}"),
        }
        assert!(err
            .to_string()
            .starts_with(&format!("state file s.json: line {line} column")));
    }

    #[test]
    fn test_invalid_value_names_object() {
        let text = to_text(&sample()).replace("\"weight\": 3", "\"weight\": 70000");
        let err = from_text(Path::new("s.json"), &text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "state file s.json: service udp:[2001:db8::10]:0: real_servers[0].weight: must be \
             0..=65535, got 70000"
        );
    }
}
