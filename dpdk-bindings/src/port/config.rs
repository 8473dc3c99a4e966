//! Port configuration and report types: what to ask of a device and what it answers.

/// RSS hash-function bits (`RTE_ETH_RSS_*`) for [`RssConfig::hf`].
#[allow(clippy::unnecessary_cast)] // bindgen types macros u32 or u64 by value.
pub mod rss_hf {
    use crate::sys;
    /// IPv4 addresses of any IPv4 packet.
    pub const IPV4: u64 = sys::RTE_ETH_RSS_IPV4 as u64;
    /// IPv4 addresses and TCP ports.
    pub const IPV4_TCP: u64 = sys::RTE_ETH_RSS_NONFRAG_IPV4_TCP as u64;
    /// IPv4 addresses and UDP ports.
    pub const IPV4_UDP: u64 = sys::RTE_ETH_RSS_NONFRAG_IPV4_UDP as u64;
    /// IPv6 addresses of any IPv6 packet.
    pub const IPV6: u64 = sys::RTE_ETH_RSS_IPV6 as u64;
    /// IPv6 addresses and TCP ports.
    pub const IPV6_TCP: u64 = sys::RTE_ETH_RSS_NONFRAG_IPV6_TCP as u64;
    /// IPv6 addresses and UDP ports.
    pub const IPV6_UDP: u64 = sys::RTE_ETH_RSS_NONFRAG_IPV6_UDP as u64;
    /// All IP-only hash types (`RTE_ETH_RSS_IP`).
    pub const IP: u64 = sys::RTE_ETH_RSS_IP as u64;
    /// All TCP hash types (`RTE_ETH_RSS_TCP`).
    pub const TCP: u64 = sys::RTE_ETH_RSS_TCP as u64;
    /// All UDP hash types (`RTE_ETH_RSS_UDP`).
    pub const UDP: u64 = sys::RTE_ETH_RSS_UDP as u64;
}

/// TX offload capability bits (`RTE_ETH_TX_OFFLOAD_*`) for [`PortConfig::tx_offloads`].
#[allow(clippy::unnecessary_cast)] // bindgen types macros u32 or u64 by value.
pub mod tx_offload {
    use crate::sys;
    /// IPv4 header checksum.
    pub const IPV4_CKSUM: u64 = sys::RTE_ETH_TX_OFFLOAD_IPV4_CKSUM as u64;
    /// UDP checksum.
    pub const UDP_CKSUM: u64 = sys::RTE_ETH_TX_OFFLOAD_UDP_CKSUM as u64;
    /// TCP checksum.
    pub const TCP_CKSUM: u64 = sys::RTE_ETH_TX_OFFLOAD_TCP_CKSUM as u64;
}

/// RSS settings: a 40-byte Toeplitz key and the wanted hash functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RssConfig {
    /// The key. Devices with longer keys get it repeated (which keeps a symmetric `6d5a…` key
    /// symmetric); devices that take no key use their own.
    pub key: [u8; 40],
    /// Wanted hash functions ([`rss_hf`]); masked with what the device supports.
    pub hf: u64,
}

/// How to set a port up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortConfig {
    /// RX queues (one per worker, typically).
    pub rx_queues: u16,
    /// TX queues.
    pub tx_queues: u16,
    /// RX descriptors per queue (adjusted to the device's limits).
    pub rx_desc: u16,
    /// TX descriptors per queue (adjusted to the device's limits).
    pub tx_desc: u16,
    /// RSS across the RX queues; `None` disables it.
    pub rss: Option<RssConfig>,
    /// MTU; `None` keeps the device default.
    pub mtu: Option<u16>,
    /// Receive frames for any destination MAC.
    pub promiscuous: bool,
    /// TX offloads to enable ([`tx_offload`]); masked with what the device supports.
    pub tx_offloads: u64,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            rss: None,
            mtu: None,
            promiscuous: false,
            tx_offloads: 0,
        }
    }
}

/// What a device reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// PMD name, e.g. `net_ring`, `net_ice`.
    pub driver_name: String,
    /// Most RX queues the device supports.
    pub max_rx_queues: u16,
    /// Most TX queues the device supports.
    pub max_tx_queues: u16,
    /// RSS hash functions the device supports (`flow_type_rss_offloads`).
    pub flow_type_rss_offloads: u64,
    /// Redirection-table size (0 without RSS).
    pub reta_size: u16,
    /// RSS key size in bytes (0 if the key cannot be set).
    pub hash_key_size: u8,
    /// RX offload capabilities (`RTE_ETH_RX_OFFLOAD_*`).
    pub rx_offload_capa: u64,
    /// TX offload capabilities (`RTE_ETH_TX_OFFLOAD_*`).
    pub tx_offload_capa: u64,
    /// Smallest MTU.
    pub min_mtu: u16,
    /// Largest MTU.
    pub max_mtu: u16,
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// Carrier up.
    pub up: bool,
    /// Speed in Mbit/s (0 when unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Basic port counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// RX packets dropped by the hardware (queues full).
    pub imissed: u64,
    /// Erroneous RX packets.
    pub ierrors: u64,
    /// Failed TX packets.
    pub oerrors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}
