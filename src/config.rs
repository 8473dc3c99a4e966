//! The daemon's TOML configuration: EAL arguments, CPU layout, mbuf pool and ports.
//!
//! Parsing never guesses: unknown keys are errors, and every error names the line and column (TOML
//! syntax and type errors) or the port and field (checks across fields).

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;

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

/// `[[neighbour]]`: a permanent neighbour entry, like `ip neigh add … nud permanent`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighbourSection {
    /// Name of the data port it is reached through.
    pub port: String,
    /// Its IPv4 or IPv6 address.
    pub address: IpAddr,
    /// Its MAC, `02:00:00:00:00:0b`.
    pub mac: Mac,
}

/// A unicast MAC address written as six colon-separated hex bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub dataplane::wire::MacAddr);

impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a MAC address like 02:00:00:00:00:0b");
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut out {
            let p = parts.next().filter(|p| p.len() == 2).ok_or_else(bad)?;
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        if out[0] & 1 != 0 || out == [0; 6] {
            return Err(format!(
                "`{s}` is a group or all-zero MAC; a neighbour needs a unicast one"
            ));
        }
        Ok(Mac(dataplane::wire::MacAddr(out)))
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `[dataplane]`: per-worker table sizes, fixed at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataplaneSection {
    /// Connection-table capacity of each worker (128 bytes each).
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Real-server slots (across all services).
    #[serde(default = "default_max_real_servers")]
    pub max_real_servers: u32,
    /// Packets each worker holds at most while ARP/NDP resolves their next hops (all next hops
    /// together; each one also keeps only its latest 4). Beyond it packets are dropped and counted
    /// as `hold_cap_drop`, so that unresolvable next hops cannot take the mbuf pool.
    #[serde(default = "default_max_held_packets")]
    pub max_held_packets: u32,
}

impl Default for DataplaneSection {
    fn default() -> Self {
        Self {
            max_connections: default_max_connections(),
            max_real_servers: default_max_real_servers(),
            max_held_packets: default_max_held_packets(),
        }
    }
}

impl DataplaneSection {
    /// The neighbour cache settings of each worker.
    pub fn neigh_config(&self) -> dataplane::neigh::NeighConfig {
        dataplane::neigh::NeighConfig {
            max_held: self.max_held_packets as usize,
            ..Default::default()
        }
    }
}

fn default_max_connections() -> u32 {
    1 << 20
}

fn default_max_real_servers() -> u32 {
    4096
}

fn default_max_held_packets() -> u32 {
    dataplane::neigh::NeighConfig::default().max_held as u32
}

/// `[api]`: the control plane's REST listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Where the REST API listens; keep it on localhost or a management network.
    #[serde(default = "default_api_listen")]
    pub listen: std::net::SocketAddr,
    /// Bearer token required for changes; none means changes are open to whoever reaches `listen`.
    pub token: Option<String>,
    /// File the configuration is saved to on every change and restored from at start.
    pub state_file: Option<std::path::PathBuf>,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            listen: default_api_listen(),
            token: None,
            state_file: None,
        }
    }
}

fn default_api_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 9180))
}

/// `[fullnat]`: source addresses for FullNAT connections to real servers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullNatSection {
    /// Local addresses (each must be on a port's connected subnet towards the real servers).
    #[serde(default)]
    pub local_addresses: Vec<IpAddr>,
}

/// `[[route]]`: a static route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// Destination prefix, e.g. `0.0.0.0/0` or `2001:db8:100::/48`.
    pub prefix: IfAddr,
    /// The gateway; it must be on a connected subnet of one of the ports.
    pub via: IpAddr,
}

/// `[[service]]`: a virtual service, like `ipvsadm -A`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    /// `tcp` or `udp`.
    pub proto: dataplane::flow::Proto,
    /// The virtual IP.
    pub vip: IpAddr,
    /// The virtual port.
    pub port: u16,
    /// Scheduler name (`rr`, `wrr`, `wlc`, `mh`, …).
    #[serde(default = "default_scheduler")]
    pub scheduler: dataplane::model::SchedulerKind,
    /// Persistence timeout in seconds (`-p`); absent means no persistence.
    pub persistence: Option<u32>,
    /// Persistence netmask as a prefix length (`-M`); 32 or 128 by default.
    pub persistence_prefix: Option<u8>,
    /// Scheduler flags (`fallback`, `hash_port`, `one_packet`).
    #[serde(default)]
    pub flags: dataplane::model::ServiceFlags,
    /// Real servers (`ipvsadm -a`).
    #[serde(default, rename = "real_server")]
    pub real_servers: Vec<RealServerSection>,
}

fn default_scheduler() -> dataplane::model::SchedulerKind {
    dataplane::model::SchedulerKind::Wlc
}

/// `[[service.real_server]]`: a real server, like `ipvsadm -a`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServerSection {
    /// Its address.
    pub address: IpAddr,
    /// Its port; the virtual port when absent.
    pub port: Option<u16>,
    /// Weight 0..=65535.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// `dr`, `nat`, `tun` or `fullnat`.
    pub mode: dataplane::model::FwdMode,
    /// `-x`: upper connection threshold.
    #[serde(default)]
    pub upper_threshold: u32,
    /// `-y`: lower connection threshold.
    #[serde(default)]
    pub lower_threshold: u32,
}

fn default_weight() -> u32 {
    1
}

impl ServiceSection {
    /// The service as the data-plane model describes it.
    pub fn to_model(&self) -> dataplane::model::Service {
        use dataplane::model::{Persistence, Service, ServiceKey};
        let full = if self.vip.is_ipv4() { 32 } else { 128 };
        Service {
            key: ServiceKey {
                proto: self.proto,
                vip: self.vip,
                port: self.port,
            },
            scheduler: self.scheduler,
            persistence: self.persistence.map(|timeout| Persistence {
                timeout,
                prefix_len: self.persistence_prefix.unwrap_or(full),
            }),
            flags: self.flags,
        }
    }

    /// The real servers as the data-plane model describes them.
    pub fn real_servers_model(&self) -> Vec<dataplane::model::RealServer> {
        use dataplane::model::{RealServer, RealServerKey};
        self.real_servers
            .iter()
            .map(|r| RealServer {
                key: RealServerKey {
                    addr: r.address,
                    port: r.port.unwrap_or(self.port),
                },
                weight: r.weight,
                mode: r.mode,
                upper_threshold: r.upper_threshold,
                lower_threshold: r.lower_threshold,
            })
            .collect()
    }
}

/// `[eal]`: arguments passed to `rte_eal_init`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EalSection {
    /// Runtime-file prefix; lets several DPDK processes share a host.
    #[serde(default = "default_file_prefix")]
    pub file_prefix: String,
    /// Extra arguments, e.g. `["--no-huge", "-m", "512"]` or `["--log-level", "pmd.net.af_packet:debug"]`.
    #[serde(default)]
    pub args: Vec<String>,
}

impl Default for EalSection {
    fn default() -> Self {
        Self {
            file_prefix: default_file_prefix(),
            args: Vec::new(),
        }
    }
}

fn default_file_prefix() -> String {
    "ironvs".into()
}

/// `[cpu]`: the main lcore serves the control plane; each worker lcore polls one queue per port.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuSection {
    /// CPU of the main (control) thread.
    #[serde(default)]
    pub main_cpu: u16,
    /// Number of worker lcores; each owns RX/TX queue i of every port.
    #[serde(default = "default_workers")]
    pub workers: u16,
    /// CPUs the workers are pinned to, assigned round-robin; empty means the main CPU's neighbours.
    #[serde(default)]
    pub worker_cpus: Vec<u16>,
}

impl Default for CpuSection {
    fn default() -> Self {
        Self {
            main_cpu: 0,
            workers: default_workers(),
            worker_cpus: Vec::new(),
        }
    }
}

fn default_workers() -> u16 {
    1
}

/// `[mempool]`: one pool of packet buffers shared by all ports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MempoolSection {
    /// Number of mbufs; 2^n - 1 is the most memory-efficient.
    #[serde(default = "default_mbufs")]
    pub mbufs: u32,
    /// Per-lcore cache size.
    #[serde(default = "default_cache")]
    pub cache: u32,
}

impl Default for MempoolSection {
    fn default() -> Self {
        Self {
            mbufs: default_mbufs(),
            cache: default_cache(),
        }
    }
}

fn default_mbufs() -> u32 {
    16383
}

fn default_cache() -> u32 {
    256
}

/// `[[port]]`: one data port.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSection {
    /// A name for logs and metrics, e.g. `dp0`.
    pub name: String,
    /// A DPDK vdev string (`net_af_xdp0,iface=veth0`) or a PCI address (`0000:3b:00.0`).
    pub device: Device,
    /// The director's own addresses on this port, with prefix length (`192.0.2.1/24`).
    #[serde(default)]
    pub addresses: Vec<IfAddr>,
    /// MTU to set; the device's default when absent.
    pub mtu: Option<u16>,
    /// RX descriptors per queue.
    #[serde(default = "default_desc")]
    pub rx_desc: u16,
    /// TX descriptors per queue.
    #[serde(default = "default_desc")]
    pub tx_desc: u16,
    /// Receive everything, not only frames for the port's MAC.
    #[serde(default)]
    pub promiscuous: bool,
    /// Name of a kernel interface (DPDK `net_tap`) that gets the traffic the data plane does not
    /// handle (SSH, BGP, …) and whose packets go out of this port: the exception path.
    pub kernel_interface: Option<String>,
    /// How flows are spread over workers: `hardware` (the NIC's Toeplitz RSS with our key),
    /// `software` (workers re-steer by the same hash), or `auto` (hardware when the device has it).
    #[serde(default)]
    pub rss: RssMode,
}

/// How a port spreads flows over the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RssMode {
    /// Hardware when the device supports Toeplitz RSS over IP and ports, else software.
    #[default]
    Auto,
    /// The NIC's RSS, programmed with IronVS's key and redirection table.
    Hardware,
    /// Workers compute the same Toeplitz hash and pass packets to the owning worker.
    Software,
}

fn default_desc() -> u16 {
    1024
}

/// A DPDK device: a virtual device created from a vdev string, or a PCI device bound to a DPDK driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// `--vdev` argument; the ethdev is named by the part before the first comma.
    Vdev(String),
    /// A PCI address for `-a`.
    Pci(String),
}

impl Device {
    /// The ethdev name DPDK gives the device (`rte_eth_dev_get_port_by_name`).
    pub fn ethdev_name(&self) -> &str {
        match self {
            Device::Vdev(s) => s.split(',').next().unwrap_or(s),
            Device::Pci(s) => s,
        }
    }
}

impl FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if is_pci_address(s) {
            let full = if s.matches(':').count() == 1 {
                format!("0000:{s}")
            } else {
                s.to_string()
            };
            return Ok(Device::Pci(full));
        }
        let name = s.split(',').next().unwrap_or_default();
        if name.starts_with("net_") && name.len() > 4 {
            return Ok(Device::Vdev(s.to_string()));
        }
        Err(format!(
            "`{s}` is neither a PCI address (0000:3b:00.0) nor a DPDK vdev string (net_af_xdp0,iface=eth1)"
        ))
    }
}

fn is_pci_address(s: &str) -> bool {
    // [dddd:]bb:dd.f in hex
    let (domain_bus, devfn) = match s.rsplit_once(':') {
        Some(x) => x,
        None => return false,
    };
    let hex = |t: &str, n: usize| t.len() == n && t.chars().all(|c| c.is_ascii_hexdigit());
    let bus_ok = match domain_bus.split_once(':') {
        Some((d, b)) => hex(d, 4) && hex(b, 2),
        None => hex(domain_bus, 2),
    };
    let devfn_ok = match devfn.split_once('.') {
        Some((d, f)) => hex(d, 2) && f.len() == 1 && f.chars().all(|c| ('0'..='7').contains(&c)),
        None => false,
    };
    bus_ok && devfn_ok
}

impl<'de> Deserialize<'de> for Device {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An interface address with its prefix length, like `ip addr` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length of the connected subnet.
    pub prefix: u8,
}

impl FromStr for IfAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` needs a prefix length, e.g. 192.0.2.1/24"))?;
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IPv4 or IPv6 address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| format!("prefix length `{p}` must be 0..={max}"))?;
        Ok(IfAddr { addr, prefix })
    }
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl<'de> Deserialize<'de> for IfAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
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

    fn check(&self) -> Result<(), String> {
        if self.ports.is_empty() {
            return Err("no [[port]] section: at least one data port is needed".into());
        }
        if self.cpu.workers == 0 {
            return Err("[cpu] workers must be at least 1".into());
        }
        if self.mempool.mbufs < 1024 {
            return Err(format!(
                "[mempool] mbufs = {} is too small: use at least 1024 (8191 or more for real traffic)",
                self.mempool.mbufs
            ));
        }
        let held = u64::from(self.dataplane.max_held_packets) * u64::from(self.cpu.workers);
        if held > u64::from(self.mempool.mbufs / 2) {
            return Err(format!(
                "[dataplane] max_held_packets = {} x {} workers may hold {held} mbufs, more than half of [mempool] mbufs = {}: lower it or add mbufs",
                self.dataplane.max_held_packets, self.cpu.workers, self.mempool.mbufs
            ));
        }
        for (i, p) in self.ports.iter().enumerate() {
            if self.ports[..i].iter().any(|q| q.name == p.name) {
                return Err(format!("port name `{}` is used twice", p.name));
            }
            if self.ports[..i]
                .iter()
                .any(|q| q.device.ethdev_name() == p.device.ethdev_name())
            {
                return Err(format!(
                    "port `{}`: device name `{}` is used by another port (vdev names must be unique, e.g. net_af_packet0, net_af_packet1)",
                    p.name,
                    p.device.ethdev_name()
                ));
            }
            if !p.rx_desc.is_power_of_two() || !p.tx_desc.is_power_of_two() {
                return Err(format!(
                    "port `{}`: rx_desc and tx_desc must be powers of two",
                    p.name
                ));
            }
            if let Some(mtu) = p.mtu {
                if !(68..=9600).contains(&mtu) {
                    return Err(format!("port `{}`: mtu {mtu} must be 68..=9600", p.name));
                }
            }
        }
        for n in &self.neighbours {
            if !self.ports.iter().any(|p| p.name == n.port) {
                return Err(format!(
                    "[[neighbour]] {}: no [[port]] is named `{}`",
                    n.address, n.port
                ));
            }
        }
        Ok(())
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

    /// The lcore layout as an EAL `--lcores` value: lcore 0 on the main CPU, workers 1..=n on theirs.
    pub fn lcores_arg(&self) -> String {
        let mut parts = vec![format!("0@{}", self.cpu.main_cpu)];
        for w in 0..self.cpu.workers {
            let cpu = if self.cpu.worker_cpus.is_empty() {
                self.cpu.main_cpu + 1 + w
            } else {
                self.cpu.worker_cpus[usize::from(w) % self.cpu.worker_cpus.len()]
            };
            parts.push(format!("{}@{cpu}", w + 1));
        }
        parts.join(",")
    }

    /// The EAL arguments (without the program name).
    pub fn eal_args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--lcores={}", self.lcores_arg()),
            "--main-lcore=0".to_string(),
            format!("--file-prefix={}", self.eal.file_prefix),
        ];
        let mut any_pci = false;
        for p in &self.ports {
            match &p.device {
                Device::Vdev(v) => args.push(format!("--vdev={v}")),
                Device::Pci(a) => {
                    any_pci = true;
                    args.push(format!("--allow={a}"));
                }
            }
        }
        let user_sets_pci = self
            .eal
            .args
            .iter()
            .any(|a| a == "--no-pci" || a.starts_with("-a") || a.starts_with("--allow"));
        if !any_pci && !user_sets_pci {
            args.push("--no-pci".to_string());
        }
        args.extend(self.eal.args.iter().cloned());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
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
    fn test_parse_good() {
        let c = Config::parse(GOOD, "t.toml").unwrap();
        assert_eq!(c.ports[0].device.ethdev_name(), "net_af_packet0");
        assert_eq!(c.ports[0].addresses[1].prefix, 64);
        assert_eq!(c.lcores_arg(), "0@0,1@1,2@1");
        let args = c.eal_args();
        assert!(args.contains(&"--vdev=net_af_packet0,iface=veth0".to_string()));
        assert!(args.contains(&"--no-pci".to_string()));
        assert_eq!(&args[args.len() - 3..], ["--no-huge", "-m", "256"]);
    }

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
    fn test_devices() {
        assert_eq!(
            "3b:00.0".parse::<Device>().unwrap(),
            Device::Pci("0000:3b:00.0".into())
        );
        assert!("eth0".parse::<Device>().is_err());
        let cfg = GOOD.replace("net_af_packet0,iface=veth0", "0000:3b:00.1");
        let c = Config::parse(&cfg, "t").unwrap();
        assert!(c.eal_args().contains(&"--allow=0000:3b:00.1".to_string()));
        assert!(!c.eal_args().contains(&"--no-pci".to_string()));
    }

    #[test]
    fn test_services_routes_and_api() {
        let text = format!(
            r#"{GOOD}
[api]
listen = "127.0.0.1:9999"
state_file = "/var/lib/ironvs/state.json"

[fullnat]
local_addresses = ["203.0.113.200"]

[[route]]
prefix = "0.0.0.0/0"
via = "192.0.2.254"

[[service]]
proto = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "wrr"
persistence = 600

[[service.real_server]]
address = "192.0.2.11"
weight = 3
mode = "dr"

[[service.real_server]]
address = "192.0.2.12"
port = 8080
mode = "nat"
"#
        );
        let c = Config::parse(&text, "t").unwrap();
        assert_eq!(c.api.listen.port(), 9999);
        assert_eq!(c.routes[0].prefix.prefix, 0);
        let svc = c.services[0].to_model();
        assert_eq!(svc.scheduler, dataplane::model::SchedulerKind::Wrr);
        assert_eq!(svc.persistence.unwrap().prefix_len, 32);
        let rs = c.services[0].real_servers_model();
        assert_eq!((rs[0].key.port, rs[0].weight), (80, 3));
        assert_eq!((rs[1].key.port, rs[1].weight), (8080, 1));
        assert_eq!(rs[1].mode, dataplane::model::FwdMode::Nat);
        let bad = text.replace("scheduler = \"wrr\"", "scheduler = \"wrrr\"");
        let err = Config::parse(&bad, "t").unwrap_err().to_string();
        assert!(err.contains("line 29") && err.contains("wrr"), "{err}");
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

    #[test]
    fn test_cross_field_checks() {
        let twice = format!("{GOOD}\n[[port]]\nname = \"dp0\"\ndevice = \"net_null0\"\n");
        let err = Config::parse(&twice, "t").unwrap_err().to_string();
        assert!(err.contains("used twice"), "{err}");
        let err = Config::parse("port = []", "t").unwrap_err().to_string();
        assert!(err.contains("at least one data port"), "{err}");
    }

    #[test]
    fn test_max_held_packets() {
        let c = Config::parse(GOOD, "t").unwrap();
        assert_eq!(c.dataplane.max_held_packets, 256);
        assert_eq!(c.dataplane.neigh_config().max_held, 256);
        let text =
            format!("{GOOD}\n[dataplane]\nmax_held_packets = 64\n\n[mempool]\nmbufs = 1024\n");
        let c = Config::parse(&text, "t").unwrap();
        let n = c.dataplane.neigh_config();
        assert_eq!(n.max_held, 64);
        assert_eq!(
            n.capacity,
            dataplane::neigh::NeighConfig::default().capacity
        );
        // 2 workers x 256 = 512 = half of 1024 mbufs: allowed; one more each is not.
        let ok = text.replace("= 64", "= 256");
        assert_eq!(
            Config::parse(&ok, "t").unwrap().dataplane.max_held_packets,
            256
        );
        let err = Config::parse(&text.replace("= 64", "= 257"), "t")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("max_held_packets = 257 x 2 workers may hold 514 mbufs")
                && err.contains("mbufs = 1024"),
            "{err}"
        );
        let err = Config::parse(&text.replace("= 64", "= -1"), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 15"), "{err}");
    }
}
