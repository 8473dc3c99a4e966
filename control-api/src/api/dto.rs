//! The JSON shapes of the REST API, and their conversion to and from the model.
//!
//! Request bodies reject unknown fields (a misspelt field is an error, not a silent default).
//! The same types are used by `ironvsadm` to read responses.

use std::net::IpAddr;

use dataplane::flow::Proto;
use dataplane::model::{
    FwdMode, Persistence, RealServer, RealServerKey, SchedulerKind, Service, ServiceFlags,
    ServiceKey, Timeouts,
};
use serde::{Deserialize, Deserializer, Serialize};

use crate::config::{RealServerEntry, ServiceEntry};
use crate::dataplane::{ConnEntry, ConnTableStats, Counters, PortStats, WorkerStats};
use crate::estimator::Rates;

fn default_scheduler() -> SchedulerKind {
    SchedulerKind::Wlc
}
fn default_mode() -> FwdMode {
    FwdMode::Dr
}
fn default_weight() -> u32 {
    1
}
fn default_persistence_timeout() -> u32 {
    Persistence::DEFAULT_TIMEOUT
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Client affinity (`ipvsadm -p TIMEOUT -M NETMASK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistenceSpec {
    /// Seconds, default 300.
    #[serde(default = "default_persistence_timeout")]
    pub timeout: u32,
    /// Client netmask as a prefix length; default 32 (IPv4) or 128 (IPv6).
    #[serde(default)]
    pub prefix_len: Option<u8>,
}

impl PersistenceSpec {
    fn to_model(self, vip: IpAddr) -> Persistence {
        Persistence {
            timeout: self.timeout,
            prefix_len: self
                .prefix_len
                .unwrap_or(if vip.is_ipv4() { 32 } else { 128 }),
        }
    }
}

/// Scheduler flags (`ipvsadm -b sh-fallback,sh-port`, `-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlagsSpec {
    /// sh/mh: fall back to another server when the chosen one is unavailable.
    pub fallback: bool,
    /// sh/mh: hash the source port too.
    pub hash_port: bool,
    /// UDP one-packet scheduling.
    pub one_packet: bool,
}

impl From<FlagsSpec> for ServiceFlags {
    fn from(f: FlagsSpec) -> ServiceFlags {
        ServiceFlags {
            fallback: f.fallback,
            hash_port: f.hash_port,
            one_packet: f.one_packet,
        }
    }
}

impl From<ServiceFlags> for FlagsSpec {
    fn from(f: ServiceFlags) -> FlagsSpec {
        FlagsSpec {
            fallback: f.fallback,
            hash_port: f.hash_port,
            one_packet: f.one_packet,
        }
    }
}

/// Body of `POST /api/v1/services`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// `tcp` or `udp`.
    pub proto: Proto,
    /// Virtual IP.
    pub vip: IpAddr,
    /// Virtual port (0 = all ports, persistent services only).
    pub port: u16,
    /// Scheduler, default `wlc`.
    #[serde(default = "default_scheduler")]
    pub scheduler: SchedulerKind,
    /// Client affinity.
    #[serde(default)]
    pub persistence: Option<PersistenceSpec>,
    /// Scheduler flags.
    #[serde(default)]
    pub flags: FlagsSpec,
    /// Real servers to create with the service.
    #[serde(default)]
    pub real_servers: Vec<RealServerSpec>,
}

impl ServiceSpec {
    /// The model service (without its real servers).
    pub fn to_model(&self) -> Service {
        Service {
            key: ServiceKey {
                proto: self.proto,
                vip: self.vip,
                port: self.port,
            },
            scheduler: self.scheduler,
            persistence: self.persistence.map(|p| p.to_model(self.vip)),
            flags: self.flags.into(),
        }
    }
}

/// Body of `PUT /api/v1/services/{proto}/{vip}/{port}` (`ipvsadm -E`: all of these are replaced).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceUpdate {
    /// Scheduler, default `wlc`.
    #[serde(default = "default_scheduler")]
    pub scheduler: SchedulerKind,
    /// Client affinity; absent or null removes it.
    #[serde(default)]
    pub persistence: Option<PersistenceSpec>,
    /// Scheduler flags.
    #[serde(default)]
    pub flags: FlagsSpec,
}

impl ServiceUpdate {
    /// The model service with this key.
    pub fn to_model(&self, key: ServiceKey) -> Service {
        Service {
            key,
            scheduler: self.scheduler,
            persistence: self.persistence.map(|p| p.to_model(key.vip)),
            flags: self.flags.into(),
        }
    }
}

/// Body of `PATCH /api/v1/services/{proto}/{vip}/{port}`: only the fields given change.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePatch {
    /// New scheduler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<SchedulerKind>,
    /// New persistence; `null` removes it.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub persistence: Option<Option<PersistenceSpec>>,
    /// New flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<FlagsSpec>,
}

impl ServicePatch {
    /// `current` with the patch applied.
    pub fn apply(&self, current: &Service) -> Service {
        let mut s = current.clone();
        if let Some(sched) = self.scheduler {
            s.scheduler = sched;
        }
        if let Some(p) = self.persistence {
            s.persistence = p.map(|p| p.to_model(s.key.vip));
        }
        if let Some(f) = self.flags {
            s.flags = f.into();
        }
        s
    }
}

/// Body of `POST .../real-servers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServerSpec {
    /// Address.
    pub addr: IpAddr,
    /// Port; default (and, for dr/tun, required value) the virtual port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Weight 0..=65535, default 1.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Forwarding mode, default `dr`.
    #[serde(default = "default_mode")]
    pub mode: FwdMode,
    /// Upper connection threshold (0 = none).
    #[serde(default)]
    pub upper_threshold: u32,
    /// Lower connection threshold (0 = 3/4 of upper).
    #[serde(default)]
    pub lower_threshold: u32,
}

impl RealServerSpec {
    /// The model real server for a service on `vport`.
    pub fn to_model(&self, vport: u16) -> RealServer {
        RealServer {
            key: RealServerKey {
                addr: self.addr,
                port: self.port.unwrap_or(vport),
            },
            weight: self.weight,
            mode: self.mode,
            upper_threshold: self.upper_threshold,
            lower_threshold: self.lower_threshold,
        }
    }
}

/// Body of `PUT .../real-servers/{addr}/{port}` (`ipvsadm -e`: all of these are replaced).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServerUpdate {
    /// Weight 0..=65535, default 1.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Forwarding mode, default `dr`.
    #[serde(default = "default_mode")]
    pub mode: FwdMode,
    /// Upper connection threshold.
    #[serde(default)]
    pub upper_threshold: u32,
    /// Lower connection threshold.
    #[serde(default)]
    pub lower_threshold: u32,
}

/// Body of `PATCH .../real-servers/{addr}/{port}`; `{"weight": 0}` drains the server.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServerPatch {
    /// New weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// New mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<FwdMode>,
    /// New upper threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_threshold: Option<u32>,
    /// New lower threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_threshold: Option<u32>,
}

impl RealServerPatch {
    /// `rs` with the patch applied.
    pub fn apply(&self, rs: &RealServer) -> RealServer {
        RealServer {
            key: rs.key,
            weight: self.weight.unwrap_or(rs.weight),
            mode: self.mode.unwrap_or(rs.mode),
            upper_threshold: self.upper_threshold.unwrap_or(rs.upper_threshold),
            lower_threshold: self.lower_threshold.unwrap_or(rs.lower_threshold),
        }
    }
}

/// A real server as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServerView {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Weight.
    pub weight: u32,
    /// Forwarding mode.
    pub mode: FwdMode,
    /// Upper connection threshold.
    pub upper_threshold: u32,
    /// Lower connection threshold.
    pub lower_threshold: u32,
    /// Stable counter slot in the data plane.
    pub slot: u32,
}

impl From<&RealServerEntry> for RealServerView {
    fn from(e: &RealServerEntry) -> RealServerView {
        RealServerView {
            addr: e.server.key.addr,
            port: e.server.key.port,
            weight: e.server.weight,
            mode: e.server.mode,
            upper_threshold: e.server.upper_threshold,
            lower_threshold: e.server.lower_threshold,
            slot: e.slot.0,
        }
    }
}

/// Persistence as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistenceView {
    /// Seconds.
    pub timeout: u32,
    /// Client netmask prefix length.
    pub prefix_len: u8,
}

/// A service as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    /// `tcp` or `udp`.
    pub proto: Proto,
    /// Virtual IP.
    pub vip: IpAddr,
    /// Virtual port.
    pub port: u16,
    /// Scheduler.
    pub scheduler: SchedulerKind,
    /// Client affinity, or null.
    pub persistence: Option<PersistenceView>,
    /// Scheduler flags.
    pub flags: FlagsSpec,
    /// Real servers, sorted by address and port.
    pub real_servers: Vec<RealServerView>,
}

impl From<&ServiceEntry> for ServiceView {
    fn from(e: &ServiceEntry) -> ServiceView {
        let s = &e.service;
        ServiceView {
            proto: s.key.proto,
            vip: s.key.vip,
            port: s.key.port,
            scheduler: s.scheduler,
            persistence: s.persistence.map(|p| PersistenceView {
                timeout: p.timeout,
                prefix_len: p.prefix_len,
            }),
            flags: s.flags.into(),
            real_servers: e.real_servers.values().map(RealServerView::from).collect(),
        }
    }
}

/// Body of `POST /api/v1/laddrs` and items of its listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaddrSpec {
    /// The local address.
    pub addr: IpAddr,
}

/// Protocol timeouts in seconds (`ipvsadm --set tcp tcpfin udp` are the first three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsDto {
    /// TCP ESTABLISHED.
    pub tcp_established: u32,
    /// TCP FIN_WAIT.
    pub tcp_fin_wait: u32,
    /// UDP.
    pub udp: u32,
    /// TCP SYN_SENT.
    pub tcp_syn_sent: u32,
    /// TCP SYN_RECV.
    pub tcp_syn_recv: u32,
    /// TCP TIME_WAIT.
    pub tcp_time_wait: u32,
    /// TCP CLOSE.
    pub tcp_close: u32,
    /// TCP CLOSE_WAIT.
    pub tcp_close_wait: u32,
    /// TCP LAST_ACK.
    pub tcp_last_ack: u32,
    /// TCP LISTEN.
    pub tcp_listen: u32,
    /// TCP SYN_ACK.
    pub tcp_syn_ack: u32,
}

impl From<Timeouts> for TimeoutsDto {
    fn from(t: Timeouts) -> TimeoutsDto {
        TimeoutsDto {
            tcp_established: t.tcp_established,
            tcp_fin_wait: t.tcp_fin_wait,
            udp: t.udp,
            tcp_syn_sent: t.tcp_syn_sent,
            tcp_syn_recv: t.tcp_syn_recv,
            tcp_time_wait: t.tcp_time_wait,
            tcp_close: t.tcp_close,
            tcp_close_wait: t.tcp_close_wait,
            tcp_last_ack: t.tcp_last_ack,
            tcp_listen: t.tcp_listen,
            tcp_syn_ack: t.tcp_syn_ack,
        }
    }
}

impl From<TimeoutsDto> for Timeouts {
    fn from(t: TimeoutsDto) -> Timeouts {
        Timeouts {
            tcp_established: t.tcp_established,
            tcp_fin_wait: t.tcp_fin_wait,
            udp: t.udp,
            tcp_syn_sent: t.tcp_syn_sent,
            tcp_syn_recv: t.tcp_syn_recv,
            tcp_time_wait: t.tcp_time_wait,
            tcp_close: t.tcp_close,
            tcp_close_wait: t.tcp_close_wait,
            tcp_last_ack: t.tcp_last_ack,
            tcp_listen: t.tcp_listen,
            tcp_syn_ack: t.tcp_syn_ack,
        }
    }
}

/// Counters, rates and connections of a real server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServerStatsView {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Totals since creation.
    pub stats: Counters,
    /// Smoothed rates.
    pub rates: Rates,
    /// Connections in ESTABLISHED.
    pub active_conns: u64,
    /// Connections in other states.
    pub inactive_conns: u64,
}

/// Counters and rates of a service and its real servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatsView {
    /// `tcp` or `udp`.
    pub proto: Proto,
    /// Virtual IP.
    pub vip: IpAddr,
    /// Virtual port.
    pub port: u16,
    /// Totals since creation.
    pub stats: Counters,
    /// Smoothed rates.
    pub rates: Rates,
    /// Sum of the real servers' active connections.
    pub active_conns: u64,
    /// Sum of the real servers' inactive connections.
    pub inactive_conns: u64,
    /// Per real server.
    pub real_servers: Vec<RealServerStatsView>,
}

/// `GET /api/v1/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsView {
    /// Per service.
    pub services: Vec<ServiceStatsView>,
    /// Per worker.
    pub workers: Vec<WorkerStats>,
    /// Per NIC port.
    pub ports: Vec<PortStats>,
    /// Connection table.
    pub conn_table: ConnTableStats,
}

/// `GET /api/v1/connections`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnPageView {
    /// Matching connections in total.
    pub total: u64,
    /// Index of the first entry returned.
    pub offset: usize,
    /// Page size asked for.
    pub limit: usize,
    /// The entries.
    pub connections: Vec<ConnEntry>,
}

/// `GET /api/v1/version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionView {
    /// `ironvs`.
    pub name: String,
    /// Crate version.
    pub version: String,
    /// API version (`v1`).
    pub api: String,
    /// IPVS version emulated in listings.
    pub ipvs_version: String,
    /// Connection table capacity.
    pub conn_table_size: u64,
}
