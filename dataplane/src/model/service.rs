//! Virtual services, real servers and FullNAT local addresses.

use std::net::IpAddr;

use super::{FwdMode, SchedulerKind};
use crate::flow::Proto;

/// What identifies a virtual service: protocol, virtual IP and port (`-t|-u VIP:port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ServiceKey {
    /// TCP or UDP.
    pub proto: Proto,
    /// The virtual IP.
    pub vip: IpAddr,
    /// The virtual port; 0 means every port (with persistence, like IPVS).
    pub port: u16,
}

/// Client affinity (`-p TIMEOUT -M NETMASK`): clients within one netmask stick to one real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Persistence {
    /// Seconds a template outlives its last connection (ipvsadm's default is 300).
    pub timeout: u32,
    /// Prefix length of the client netmask (32 or 128 means one client address).
    pub prefix_len: u8,
}

impl Persistence {
    /// ipvsadm's default persistence timeout, seconds.
    pub const DEFAULT_TIMEOUT: u32 = 300;
}

/// Scheduler flags of ipvsadm `-b` (sh-fallback, sh-port, mh-fallback, mh-port) and one-packet
/// scheduling (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct ServiceFlags {
    /// sh/mh: when the chosen server is unavailable, pick another one.
    pub fallback: bool,
    /// sh/mh: hash the source port too.
    pub hash_port: bool,
    /// UDP: schedule every datagram on its own (no connection entry).
    pub one_packet: bool,
}

/// A virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Service {
    /// Protocol, VIP and port.
    pub key: ServiceKey,
    /// How new connections are spread.
    pub scheduler: SchedulerKind,
    /// Client affinity, if any.
    pub persistence: Option<Persistence>,
    /// Scheduler and packet flags.
    pub flags: ServiceFlags,
}

/// What identifies a real server within its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RealServerKey {
    /// The real server's address.
    pub addr: IpAddr,
    /// The real server's port (for DR and TUN it must equal the virtual port).
    pub port: u16,
}

/// A real server behind a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RealServer {
    /// Address and port.
    pub key: RealServerKey,
    /// Relative capacity, 0..=65535; 0 quiesces the server (no new connections).
    pub weight: u32,
    /// How packets are forwarded to it.
    pub mode: FwdMode,
    /// ipvsadm `-x`: stop scheduling above this many connections (0 = no limit).
    pub upper_threshold: u32,
    /// ipvsadm `-y`: resume scheduling below this many connections (0 = 3/4 of the upper).
    pub lower_threshold: u32,
}

impl RealServer {
    /// ipvsadm's maximum weight.
    pub const MAX_WEIGHT: u32 = 65535;
}

/// A FullNAT local address: a source address the director owns for connections to real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LocalAddr {
    /// The address.
    pub addr: IpAddr,
}
