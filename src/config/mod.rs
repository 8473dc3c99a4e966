//! The daemon's TOML configuration: EAL arguments, CPU layout, mbuf pool and ports.
//!
//! Parsing never guesses: unknown keys are errors, and every error names the line and column (TOML
//! syntax and type errors) or the port and field (checks across fields).
//!
//! The file's sections and their defaults live in `sections`, the string-typed values (MACs,
//! devices, interface addresses) in `values`, the checks across fields in `check`, and the EAL
//! command line derived from it all in `eal`; this module loads and parses the file.

mod check;
mod eal;
mod sections;
mod values;

use std::path::Path;

use serde::Deserialize;

pub use sections::{
    ApiSection, CpuSection, DataplaneSection, EalSection, FullNatSection, MempoolSection,
    NeighbourSection, PortSection, RealServerSection, RouteSection, RssMode, ServiceSection,
};
pub use values::{Device, IfAddr, Mac};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax or a value of the wrong type or form; the message carries line and column.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// toml's message, which starts with "TOML parse error at line L, column C".
        message: String,
    },
    /// Values that parse but do not fit together.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong and where.
        message: String,
    },
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// DPDK EAL settings.
    #[serde(default)]
    pub eal: EalSection,
    /// Which CPUs run the control thread and the workers.
    #[serde(default)]
    pub cpu: CpuSection,
    /// The packet buffer pool.
    #[serde(default)]
    pub mempool: MempoolSection,
    /// Data ports (at least one).
    #[serde(rename = "port")]
    pub ports: Vec<PortSection>,
    /// Connection table and scheduler sizing.
    #[serde(default)]
    pub dataplane: DataplaneSection,
    /// The REST API and saved state.
    #[serde(default)]
    pub api: ApiSection,
    /// FullNAT local addresses.
    #[serde(default)]
    pub fullnat: FullNatSection,
    /// Static routes (connected subnets come from the ports' addresses).
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteSection>,
    /// Virtual services applied at start when there is no saved state.
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceSection>,
    /// Static neighbours: next hops whose MAC is configured, never resolved with ARP/NDP.
    #[serde(default, rename = "neighbour")]
    pub neighbours: Vec<NeighbourSection>,
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.check().map_err(|message| ConfigError::Invalid {
            path: origin.to_string(),
            message,
        })?;
        Ok(cfg)
    }

    /// The static neighbours as (port index, address, MAC); port names were checked at load.
    pub fn static_neighbours(&self) -> Vec<(u16, dataplane::flow::Addr, dataplane::wire::MacAddr)> {
        self.neighbours
            .iter()
            .filter_map(|n| {
                let port = self.ports.iter().position(|p| p.name == n.port)?;
                Some((port as u16, dataplane::flow::Addr::from(n.address), n.mac.0))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    pub(super) const GOOD: &str = r#"
[eal]
args = ["--no-huge", "-m", "256"]

[cpu]
workers = 2
worker_cpus = [1]

[[port]]
name = "dp0"
device = "net_af_packet0,iface=veth0"
addresses = ["192.0.2.1/24", "2001:db8::1/64"]
"#;

    #[test]
    fn test_syntax_error_names_line_and_column() {
        let bad = GOOD.replace("workers = 2", "workers = two");
        let err = Config::parse(&bad, "t.toml").unwrap_err().to_string();
        assert!(err.contains("line 6, column 11"), "{err}");
    }

    #[test]
    fn test_unknown_key_and_bad_address_are_located() {
        let bad = GOOD.replace("worker_cpus", "worker_cpu");
        let err = Config::parse(&bad, "t.toml").unwrap_err().to_string();
        assert!(
            err.contains("line 7") && err.contains("unknown field"),
            "{err}"
        );
        let bad = GOOD.replace("192.0.2.1/24", "192.0.2.1/33");
        let err = Config::parse(&bad, "t.toml").unwrap_err().to_string();
        assert!(err.contains("line 12") && err.contains("0..=32"), "{err}");
    }

    #[test]
    fn test_static_neighbours() {
        let text = format!(
            "{GOOD}\n[[port]]\nname = \"dp1\"\ndevice = \"net_null0\"\n\n[[neighbour]]\nport = \"dp1\"\naddress = \"10.0.0.11\"\nmac = \"02:00:00:00:00:0B\"\n\n[[neighbour]]\nport = \"dp0\"\naddress = \"2001:db8::11\"\nmac = \"52:54:00:12:34:56\"\n"
        );
        let c = Config::parse(&text, "t").unwrap();
        use dataplane::flow::Addr;
        use dataplane::wire::MacAddr;
        assert_eq!(
            c.static_neighbours(),
            vec![
                (1, Addr::v4([10, 0, 0, 11]), MacAddr([2, 0, 0, 0, 0, 0x0b])),
                (
                    0,
                    Addr::from("2001:db8::11".parse::<IpAddr>().unwrap()),
                    MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56])
                ),
            ]
        );
        let err = Config::parse(&text.replace("port = \"dp1\"", "port = \"dp9\""), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no [[port]] is named `dp9`"), "{err}");
        for (bad, why) in [
            ("02:00:00:00:0b", "not a MAC"),
            ("02:00:00:00:00:0b:01", "not a MAC"),
            ("02:00:00:00:00:zz", "not a MAC"),
            ("01:00:5e:00:00:01", "unicast"),
            ("00:00:00:00:00:00", "unicast"),
        ] {
            let err = Config::parse(&text.replace("02:00:00:00:00:0B", bad), "t")
                .unwrap_err()
                .to_string();
            assert!(err.contains(why) && err.contains("line 21"), "{bad}: {err}");
        }
    }
}
