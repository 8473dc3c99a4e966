//! Port set-up: the data ports with one queue pair per worker and their flow steering, and the
//! kernel interfaces of the exception path.

use dataplane::wire::MacAddr;
use dpdk_bindings::port::rss_hf;
use dpdk_bindings::{Mempool, Port, PortConfig, RssConfig};
use log::{info, warn};

use crate::config::{PortSection, RssMode};
use crate::daemon::{dpdk, DaemonError};

/// The RSS key IronVS programs and hashes with in software (the well-known Microsoft key,
/// whose published test vectors `dataplane::rss` is checked against).
pub const RSS_KEY: [u8; 40] = dataplane::rss::MS_DEFAULT_KEY;

/// Entries of the redirection table IronVS programs and predicts (DPDK's default for many NICs).
pub const RETA_SIZE: u16 = 128;

/// Hash types requested from hardware RSS.
const RSS_TYPES: u64 = rss_hf::IPV4
    | rss_hf::IPV4_TCP
    | rss_hf::IPV4_UDP
    | rss_hf::IPV6
    | rss_hf::IPV6_TCP
    | rss_hf::IPV6_UDP;

/// How a port's received flows reach the worker that owns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steering {
    /// One worker: nothing to steer.
    Single,
    /// The NIC hashes with our key and redirection table: every flow arrives on its owner's queue.
    Hardware,
    /// The device spreads flows its own way; workers hash in software and pass packets on.
    Software,
}

/// An opened data port.
pub struct DataPort {
    /// The DPDK port.
    pub port: Port,
    /// Its MAC.
    pub mac: MacAddr,
    /// How flows reach their worker.
    pub steering: Steering,
}

/// Finds, configures and starts one data port with `workers` queue pairs.
pub fn open_data_port(
    pc: &PortSection,
    workers: u16,
    pool: &Mempool,
) -> Result<DataPort, DaemonError> {
    let name = pc.device.ethdev_name();
    let mut port = Port::by_name(name).map_err(dpdk(format!(
        "port {}: device `{name}` not found (check the vdev string, or that the PCI device is bound to a DPDK driver with dpdk-devbind.py)",
        pc.name
    )))?;
    let info = port
        .info()
        .map_err(dpdk(format!("port {}: device info", pc.name)))?;
    if info.max_rx_queues < workers || info.max_tx_queues < workers {
        return Err(DaemonError::Config(format!(
            "port {}: device `{name}` ({}) has {} RX / {} TX queues but {workers} workers need one each (for net_af_packet add qpairs={workers} to the vdev string; for net_af_xdp queue_count={workers})",
            pc.name, info.driver_name, info.max_rx_queues, info.max_tx_queues
        )));
    }
    let hw_capable = info.flow_type_rss_offloads & (rss_hf::IPV4_TCP | rss_hf::IPV4_UDP)
        == (rss_hf::IPV4_TCP | rss_hf::IPV4_UDP)
        && info.reta_size >= RETA_SIZE
        && matches!(info.hash_key_size, 0 | 40);
    let mut steering = match (pc.rss, workers) {
        (_, 1) => Steering::Single,
        (RssMode::Software, _) => Steering::Software,
        (RssMode::Auto, _) if hw_capable => Steering::Hardware,
        (RssMode::Auto, _) => Steering::Software,
        (RssMode::Hardware, _) if hw_capable => Steering::Hardware,
        (RssMode::Hardware, _) => {
            return Err(DaemonError::Config(format!(
                "port {}: rss = \"hardware\" but `{name}` ({}) has no Toeplitz RSS over TCP/UDP ports with a redirection table of {RETA_SIZE}+ entries; use rss = \"auto\" or \"software\"",
                pc.name, info.driver_name
            )))
        }
    };
    let pcfg = PortConfig {
        rx_queues: workers,
        tx_queues: workers,
        rx_desc: pc.rx_desc,
        tx_desc: pc.tx_desc,
        rss: (steering == Steering::Hardware).then_some(RssConfig {
            key: RSS_KEY,
            hf: RSS_TYPES,
        }),
        mtu: pc.mtu,
        promiscuous: pc.promiscuous,
        tx_offloads: 0,
    };
    port.configure(&pcfg, pool)
        .map_err(dpdk(format!("port {}: configure", pc.name)))?;
    port.start()
        .map_err(dpdk(format!("port {}: start", pc.name)))?;
    if steering == Steering::Hardware {
        let reta: Vec<u16> = (0..info.reta_size).map(|i| i % workers).collect();
        if let Err(e) = port.set_reta(&reta) {
            if pc.rss == RssMode::Hardware {
                return Err(DaemonError::Dpdk {
                    what: format!("port {}: program the RSS redirection table", pc.name),
                    source: e,
                });
            }
            warn!(
                "port {}: cannot program the redirection table ({e}); steering in software",
                pc.name
            );
            steering = Steering::Software;
        }
    }
    let mac = MacAddr(
        port.mac_addr()
            .map_err(dpdk(format!("port {}: MAC address", pc.name)))?,
    );
    let link = port
        .link()
        .ok()
        .map(|l| {
            if l.up {
                format!("up {} Mb/s", l.speed_mbps)
            } else {
                "down".into()
            }
        })
        .unwrap_or_else(|| "unknown".into());
    let addrs: Vec<String> = pc.addresses.iter().map(|a| a.to_string()).collect();
    info!(
        "port {} ({name}, {}): MAC {mac} link {link} addresses [{}] steering {steering:?}",
        pc.name,
        info.driver_name,
        addrs.join(", ")
    );
    Ok(DataPort {
        port,
        mac,
        steering,
    })
}

/// Creates the kernel interface of a data port's exception path (a `net_tap` with the port's MAC
/// and one queue pair per worker), gives it the port's addresses and brings it up.
pub fn open_kernel_port(
    pc: &PortSection,
    ifname: &str,
    index: usize,
    mac: MacAddr,
    workers: u16,
    pool: &Mempool,
) -> Result<Port, DaemonError> {
    let devargs = format!("net_tap_ivs{index},iface={ifname},mac={mac}");
    let mut port = Port::attach_vdev(&devargs).map_err(dpdk(format!(
        "port {}: create kernel interface {ifname} (needs /dev/net/tun and CAP_NET_ADMIN)",
        pc.name
    )))?;
    let pcfg = PortConfig {
        rx_queues: workers,
        tx_queues: workers,
        rx_desc: 512,
        tx_desc: 512,
        ..PortConfig::default()
    };
    port.configure(&pcfg, pool)
        .map_err(dpdk(format!("port {}: configure {ifname}", pc.name)))?;
    port.start()
        .map_err(dpdk(format!("port {}: start {ifname}", pc.name)))?;
    for a in &pc.addresses {
        run_ip(&["addr", "replace", &a.to_string(), "dev", ifname])?;
    }
    run_ip(&["link", "set", ifname, "up"])?;
    info!(
        "port {}: kernel interface {ifname} (exception path) with the port's addresses",
        pc.name
    );
    Ok(port)
}

fn run_ip(args: &[&str]) -> Result<(), DaemonError> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| DaemonError::Config(format!("cannot run `ip {}`: {e}", args.join(" "))))?;
    if !out.status.success() {
        return Err(DaemonError::Config(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}
