//! The sections of the configuration file as serde reads them, with their defaults and their
//! conversions to the data-plane model.
//!
//! Every section denies unknown keys, so a typo is an error rather than a silent default; an absent
//! optional section or key takes the default written next to it here.

use std::net::IpAddr;

use serde::Deserialize;

use super::values::{Device, IfAddr, Mac};

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
    /// together; each one also keeps only its latest 64). Beyond it packets are dropped and counted
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

#[cfg(test)]
mod tests {
    use super::super::tests::GOOD;
    use super::super::Config;

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
}
