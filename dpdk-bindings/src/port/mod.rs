//! Ethernet ports: find or create a device, configure queues and RSS, move packet bursts.
//!
//! A [`Port`] owns its ethdev port id (at most one `Port` per id in the process) and stops and
//! closes the device on drop (and removes a vdev it created). Control methods take `&mut self`;
//! the per-queue fast path ([`Port::rx_burst`], [`Port::tx_burst`]) takes `&self`, so one
//! `Arc<Port>` can be shared by every worker. DPDK queues are single-threaded: each queue must be
//! used by one thread at a time, and a per-queue busy flag enforces it (a call that finds the
//! queue busy moves nothing and returns 0). A thread that uses a queue for good leases it
//! ([`Port::lease_rx`], [`Port::lease_tx`]): the flag is taken once, and its bursts need no
//! atomic operation.

use std::ffi::{c_char, CStr, CString};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::burst::MbufBurst;
use crate::error::{check, Error, Result};
use crate::excl::Exclusive;
use crate::mempool::Mempool;
use crate::ring::Ring;
use crate::sys;

mod config;
mod lease;
pub use config::{rss_hf, tx_offload, LinkStatus, PortConfig, PortInfo, PortStats, RssConfig};
pub use lease::{RxQueue, TxQueue};

/// An ethdev port id; prints as `port0`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(pub u16);

impl fmt::Debug for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port{}", self.0)
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An RX or TX queue index on a port; prints as `q1`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueId(pub u16);

impl fmt::Debug for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "q{}", self.0)
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Port ids owned by a live `Port` (one bit per id).
static OWNED: AtomicU64 = AtomicU64::new(0);
const _: () = assert!(sys::RTE_MAX_ETHPORTS <= 64);

/// An ethdev port.
#[derive(Debug)]
pub struct Port {
    id: PortId,
    started: bool,
    promiscuous: bool,
    rss_hf: u64,
    rxq: Box<[Exclusive]>,
    txq: Box<[Exclusive]>,
    /// Refills the RX queues; kept alive as long as the port.
    pool: Option<Mempool>,
    /// Backing rings of a `from_rings` port, kept alive as long as the port.
    _rings: Vec<Ring>,
    /// The vdev this handle created, removed again on drop.
    vdev: Option<CString>,
}

impl Port {
    /// Takes the port of an existing device (`--vdev` / PCI probed by EAL), by its ethdev name
    /// (e.g. `net_null0`, `0000:3b:00.0`).
    pub fn by_name(name: &str) -> Result<Port> {
        let cname = CString::new(name).map_err(|_| Error::InvalidName)?;
        let mut id = 0u16;
        // SAFETY: cname is a valid C string and id a valid out pointer.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        check("rte_eth_dev_get_port_by_name", ret)?;
        Port::claim(PortId(id), None, Vec::new())
    }

    /// Creates a virtual device from `devargs` (`"net_null0,size=64"`) and takes its port.
    pub fn attach_vdev(devargs: &str) -> Result<Port> {
        let (name, args) = devargs.split_once(',').unwrap_or((devargs, ""));
        let cname = CString::new(name).map_err(|_| Error::InvalidName)?;
        let cargs = CString::new(args).map_err(|_| Error::InvalidName)?;
        // SAFETY: both are valid C strings for the duration of the call.
        let ret = unsafe { sys::rte_vdev_init(cname.as_ptr(), cargs.as_ptr()) };
        check("rte_vdev_init", ret)?;
        let mut id = 0u16;
        // SAFETY: as in `by_name`.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if let Err(e) = check("rte_eth_dev_get_port_by_name", ret) {
            // SAFETY: we created this vdev just above and nothing else refers to it.
            unsafe { sys::rte_vdev_uninit(cname.as_ptr()) };
            return Err(e);
        }
        Port::claim(PortId(id), Some(cname), Vec::new())
    }

    /// Creates a port (ethdev name `net_ring_<name>`) whose RX queue i reads `rx_rings[i]` and TX queue i writes
    /// `tx_rings[i]` (`rte_eth_from_rings`). Two such ports cross-connected through the same
    /// two rings form a wire.
    pub fn from_rings(name: &str, rx_rings: &[&Ring], tx_rings: &[&Ring]) -> Result<Port> {
        let cname = CString::new(name).map_err(|_| Error::InvalidName)?;
        if rx_rings.is_empty() || tx_rings.is_empty() {
            return Err(Error::InvalidConfig(
                "from_rings needs at least one RX and one TX ring",
            ));
        }
        let rx: Vec<*mut sys::rte_ring> = rx_rings.iter().map(|r| r.as_ptr()).collect();
        let tx: Vec<*mut sys::rte_ring> = tx_rings.iter().map(|r| r.as_ptr()).collect();
        // SAFETY: the C string and both pointer arrays are valid for the call; the rings stay
        // alive as long as the port because it keeps clones of their handles.
        let ret = unsafe {
            sys::rte_eth_from_rings(
                cname.as_ptr(),
                rx.as_ptr(),
                rx.len() as u32,
                tx.as_ptr(),
                tx.len() as u32,
                sys::rte_socket_id(),
            )
        };
        if ret < 0 {
            return Err(Error::last("rte_eth_from_rings"));
        }
        let rings = rx_rings
            .iter()
            .chain(tx_rings)
            .map(|r| (*r).clone())
            .collect();
        let id = u16::try_from(ret).map_err(|_| Error::InvalidConfig("port id out of range"))?;
        // DPDK names the vdev and its ethdev `net_ring_<name>`; removed again on drop.
        let vdev = CString::new(format!("net_ring_{name}")).map_err(|_| Error::InvalidName)?;
        Port::claim(PortId(id), Some(vdev), rings)
    }

    fn claim(id: PortId, vdev: Option<CString>, rings: Vec<Ring>) -> Result<Port> {
        let bit = 1u64 << id.0;
        if OWNED.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
            // Another handle owns the id; if we just created a vdev, it cannot be ours.
            return Err(Error::PortTaken(id));
        }
        Ok(Port {
            id,
            started: false,
            promiscuous: false,
            rss_hf: 0,
            rxq: Box::new([]),
            txq: Box::new([]),
            pool: None,
            _rings: rings,
            vdev,
        })
    }

    /// The port id.
    #[inline]
    pub fn id(&self) -> PortId {
        self.id
    }

    /// The ethdev name.
    pub fn name(&self) -> Result<String> {
        let mut buf = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: buf has the RTE_ETH_NAME_MAX_LEN bytes the call may write.
        let ret = unsafe { sys::rte_eth_dev_get_name_by_port(self.id.0, buf.as_mut_ptr()) };
        check("rte_eth_dev_get_name_by_port", ret)?;
        // SAFETY: the call wrote a NUL-terminated string into buf.
        Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned())
    }

    /// Device capabilities.
    pub fn info(&self) -> Result<PortInfo> {
        let raw = self.raw_info()?;
        let driver_name = if raw.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: the PMD's static, NUL-terminated driver name.
            unsafe { CStr::from_ptr(raw.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        Ok(PortInfo {
            driver_name,
            max_rx_queues: raw.max_rx_queues,
            max_tx_queues: raw.max_tx_queues,
            flow_type_rss_offloads: raw.flow_type_rss_offloads,
            reta_size: raw.reta_size,
            hash_key_size: raw.hash_key_size,
            rx_offload_capa: raw.rx_offload_capa,
            tx_offload_capa: raw.tx_offload_capa,
            min_mtu: raw.min_mtu,
            max_mtu: raw.max_mtu,
        })
    }

    /// Programs the RSS redirection table: hash bucket `i` goes to queue `table[i]`. The length
    /// must be the device's `reta_size`. IronVS sets it explicitly so that software can predict
    /// which queue a tuple lands on.
    pub fn set_reta(&self, table: &[u16]) -> Result<()> {
        let group = sys::RTE_ETH_RETA_GROUP_SIZE as usize;
        let size = u16::try_from(table.len())
            .map_err(|_| Error::InvalidConfig("redirection table longer than 65535"))?;
        if table.is_empty() || !table.len().is_multiple_of(group) {
            return Err(Error::InvalidConfig(
                "redirection table size must be a non-zero multiple of 64",
            ));
        }
        let mut conf: Vec<sys::rte_eth_rss_reta_entry64> = table
            .chunks(group)
            .map(|chunk| {
                let mut e = sys::rte_eth_rss_reta_entry64 {
                    mask: u64::MAX,
                    ..Default::default()
                };
                e.reta[..chunk.len()].copy_from_slice(chunk);
                e
            })
            .collect();
        // SAFETY: conf holds size/64 entries, as the call reads for a table of `size`.
        let ret = unsafe { sys::rte_eth_dev_rss_reta_update(self.id.0, conf.as_mut_ptr(), size) };
        check("rte_eth_dev_rss_reta_update", ret).map(|_| ())
    }

    /// Reads the RSS redirection table (`reta_size` entries).
    pub fn reta(&self) -> Result<Vec<u16>> {
        let size = self.raw_info()?.reta_size;
        let group = sys::RTE_ETH_RETA_GROUP_SIZE as usize;
        if size == 0 || !usize::from(size).is_multiple_of(group) {
            return Err(Error::InvalidConfig("device has no redirection table"));
        }
        let mut conf: Vec<sys::rte_eth_rss_reta_entry64> = (0..usize::from(size) / group)
            .map(|_| sys::rte_eth_rss_reta_entry64 {
                mask: u64::MAX,
                ..Default::default()
            })
            .collect();
        // SAFETY: conf holds size/64 writable entries.
        let ret = unsafe { sys::rte_eth_dev_rss_reta_query(self.id.0, conf.as_mut_ptr(), size) };
        check("rte_eth_dev_rss_reta_query", ret)?;
        Ok(conf.iter().flat_map(|e| e.reta.iter().copied()).collect())
    }

    fn raw_info(&self) -> Result<sys::rte_eth_dev_info> {
        let mut raw = sys::rte_eth_dev_info::default();
        // SAFETY: raw is a valid out structure of the expected type.
        let ret = unsafe { sys::rte_eth_dev_info_get(self.id.0, &mut raw) };
        check("rte_eth_dev_info_get", ret)?;
        Ok(raw)
    }

    /// Configures queues, RSS, MTU and offloads, with `pool` refilling the RX queues. The port
    /// must be stopped.
    pub fn configure(&mut self, cfg: &PortConfig, pool: &Mempool) -> Result<()> {
        if self.started {
            return Err(Error::InvalidConfig("stop the port before configuring it"));
        }
        let info = self.raw_info()?;
        if cfg.rx_queues == 0 || cfg.rx_queues > info.max_rx_queues {
            return Err(Error::InvalidConfig(
                "rx_queues must be between 1 and the device's max_rx_queues",
            ));
        }
        if cfg.tx_queues == 0 || cfg.tx_queues > info.max_tx_queues {
            return Err(Error::InvalidConfig(
                "tx_queues must be between 1 and the device's max_tx_queues",
            ));
        }
        let mut conf = sys::rte_eth_conf::default();
        let mut key = Vec::new();
        let rss_hf = cfg.rss.map_or(0, |r| r.hf & info.flow_type_rss_offloads);
        if let (Some(rss), true) = (cfg.rss, rss_hf != 0) {
            conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            let rss_conf = &mut conf.rx_adv_conf.rss_conf;
            rss_conf.rss_hf = rss_hf;
            if info.hash_key_size > 0 {
                key = rss
                    .key
                    .iter()
                    .copied()
                    .cycle()
                    .take(usize::from(info.hash_key_size))
                    .collect();
                rss_conf.rss_key = key.as_mut_ptr();
                rss_conf.rss_key_len = info.hash_key_size;
            }
            conf.rxmode.offloads |=
                info.rx_offload_capa & u64::from(sys::RTE_ETH_RX_OFFLOAD_RSS_HASH);
        }
        if let Some(mtu) = cfg.mtu {
            if mtu < info.min_mtu || mtu > info.max_mtu {
                return Err(Error::InvalidConfig(
                    "mtu outside the device's min_mtu..=max_mtu",
                ));
            }
            conf.rxmode.mtu = u32::from(mtu);
        }
        conf.txmode.offloads = cfg.tx_offloads & info.tx_offload_capa;
        let id = self.id.0;
        // SAFETY: conf (and the key it points to) is valid for the call; the port is stopped.
        let ret = unsafe { sys::rte_eth_dev_configure(id, cfg.rx_queues, cfg.tx_queues, &conf) };
        check("rte_eth_dev_configure", ret)?;
        drop(key);
        let (mut rxd, mut txd) = (cfg.rx_desc, cfg.tx_desc);
        // SAFETY: both out pointers are valid u16s.
        let ret = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rxd, &mut txd) };
        check("rte_eth_dev_adjust_nb_rx_tx_desc", ret)?;
        // SAFETY: plain query; SOCKET_ID_ANY (-1) becomes the "any socket" value as unsigned.
        let socket = unsafe { sys::rte_eth_dev_socket_id(id) } as u32;
        for q in 0..cfg.rx_queues {
            // SAFETY: configured port, valid queue index, NULL rxconf selects the defaults; the
            // pool outlives the queue because the port stores a clone of it below.
            let ret = unsafe {
                sys::rte_eth_rx_queue_setup(id, q, rxd, socket, std::ptr::null(), pool.as_ptr())
            };
            check("rte_eth_rx_queue_setup", ret)?;
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: configured port, valid queue index, NULL txconf selects the defaults.
            let ret = unsafe { sys::rte_eth_tx_queue_setup(id, q, txd, socket, std::ptr::null()) };
            check("rte_eth_tx_queue_setup", ret)?;
        }
        self.rxq = (0..cfg.rx_queues).map(|_| Exclusive::default()).collect();
        self.txq = (0..cfg.tx_queues).map(|_| Exclusive::default()).collect();
        self.pool = Some(pool.clone());
        self.rss_hf = rss_hf;
        self.promiscuous = cfg.promiscuous;
        Ok(())
    }

    /// RSS hash functions in effect after `configure` (requested ∩ supported).
    pub fn rss_hf(&self) -> u64 {
        self.rss_hf
    }

    /// Configured RX queues.
    pub fn rx_queues(&self) -> u16 {
        self.rxq.len() as u16
    }

    /// Configured TX queues.
    pub fn tx_queues(&self) -> u16 {
        self.txq.len() as u16
    }

    /// Starts the device (after `configure`).
    pub fn start(&mut self) -> Result<()> {
        if self.rxq.is_empty() {
            return Err(Error::InvalidConfig(
                "configure the port before starting it",
            ));
        }
        // SAFETY: configured port; the control path holds &mut self.
        check("rte_eth_dev_start", unsafe {
            sys::rte_eth_dev_start(self.id.0)
        })?;
        self.started = true;
        if self.promiscuous {
            // SAFETY: started port.
            let ret = unsafe { sys::rte_eth_promiscuous_enable(self.id.0) };
            // Some virtual devices have no MAC filter to open; that is not an error here.
            if ret != -libc::ENOTSUP {
                check("rte_eth_promiscuous_enable", ret)?;
            }
        }
        Ok(())
    }

    /// Stops the device (queues keep their configuration).
    pub fn stop(&mut self) -> Result<()> {
        if !self.started {
            return Ok(());
        }
        // SAFETY: started port; &mut self means no burst is in flight through this handle.
        check("rte_eth_dev_stop", unsafe {
            sys::rte_eth_dev_stop(self.id.0)
        })?;
        self.started = false;
        Ok(())
    }

    /// True between `start` and `stop`.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// The port's MAC address.
    pub fn mac_addr(&self) -> Result<[u8; 6]> {
        let mut mac = sys::rte_ether_addr::default();
        // SAFETY: mac is a valid out structure.
        check("rte_eth_macaddr_get", unsafe {
            sys::rte_eth_macaddr_get(self.id.0, &mut mac)
        })?;
        Ok(mac.addr_bytes)
    }

    /// Link state, without waiting for autonegotiation.
    pub fn link(&self) -> Result<LinkStatus> {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: link is a valid out structure.
        check("rte_eth_link_get_nowait", unsafe {
            sys::rte_eth_link_get_nowait(self.id.0, &mut link)
        })?;
        let speed = link.link_speed;
        Ok(LinkStatus {
            up: link.link_status() != 0,
            speed_mbps: if speed == sys::RTE_ETH_SPEED_NUM_UNKNOWN {
                0
            } else {
                speed
            },
            full_duplex: u32::from(link.link_duplex()) == sys::RTE_ETH_LINK_FULL_DUPLEX,
        })
    }

    /// The basic counters.
    pub fn stats(&self) -> Result<PortStats> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: s is a valid out structure.
        check("rte_eth_stats_get", unsafe {
            sys::rte_eth_stats_get(self.id.0, &mut s)
        })?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Zeroes the basic counters.
    pub fn reset_stats(&self) -> Result<()> {
        // SAFETY: plain control call on a valid port.
        check("rte_eth_stats_reset", unsafe {
            sys::rte_eth_stats_reset(self.id.0)
        })?;
        Ok(())
    }

    /// Receives up to `out.spare()` packets from queue `q` into `out`; returns how many.
    ///
    /// Returns 0 for an unconfigured queue, a stopped port, or a queue another thread is using.
    #[inline]
    pub fn rx_burst<const N: usize>(&self, q: QueueId, out: &mut MbufBurst<N>) -> usize {
        let Some(excl) = self.rxq.get(usize::from(q.0)) else {
            return 0;
        };
        if !self.started {
            return 0;
        }
        let (ptr, spare) = out.spare_ptr();
        let spare = u16::try_from(spare).unwrap_or(u16::MAX);
        let n = excl
            .with(|| {
                // SAFETY: started port, configured queue, entered by this thread only; ptr has
                // `spare` writable slots.
                unsafe { sys::rte_eth_rx_burst(self.id.0, q.0, ptr, spare) }
            })
            .unwrap_or(0);
        // SAFETY: the PMD wrote n received mbufs, now owned by the burst.
        unsafe { out.commit(usize::from(n)) };
        usize::from(n)
    }

    /// Sends mbufs from the front of `burst` on queue `q`; what the NIC did not take stays in
    /// `burst`, shifted to the front, for a retry or to be dropped. Returns how many were sent.
    #[inline]
    pub fn tx_burst<const N: usize>(&self, q: QueueId, burst: &mut MbufBurst<N>) -> usize {
        let Some(excl) = self.txq.get(usize::from(q.0)) else {
            return 0;
        };
        if !self.started || burst.is_empty() {
            return 0;
        }
        let len = u16::try_from(burst.len()).unwrap_or(u16::MAX);
        let ptr = burst.as_ptr();
        let n = excl
            .with(|| {
                // SAFETY: started port, configured queue, entered by this thread only; slots
                // 0..len are owned mbufs; the PMD takes ownership of the first n.
                unsafe { sys::rte_eth_tx_burst(self.id.0, q.0, ptr, len) }
            })
            .unwrap_or(0);
        burst.consume_front(usize::from(n));
        usize::from(n)
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        let id = self.id.0;
        if self.started {
            // SAFETY: we own the port; &mut self means no burst is in flight.
            let _ = unsafe { sys::rte_eth_dev_stop(id) };
        }
        // SAFETY: we own the port and never use the id again; close frees queued mbufs.
        let _ = unsafe { sys::rte_eth_dev_close(id) };
        if let Some(name) = &self.vdev {
            // SAFETY: we created this vdev; its port is closed.
            let _ = unsafe { sys::rte_vdev_uninit(name.as_ptr()) };
        }
        OWNED.fetch_and(!(1u64 << id), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_id_debug() {
        assert_eq!(format!("{:?}", PortId(0)), "port0");
        assert_eq!(format!("{:?}", QueueId(1)), "q1");
        assert_eq!(QueueId(12).to_string(), "q12");
    }

    #[test]
    fn test_rss_constants_match_dpdk_bits() {
        assert_eq!(rss_hf::IPV4, 1 << 2);
        assert_eq!(rss_hf::IPV4_TCP, 1 << 4);
        assert_eq!(rss_hf::IPV4_UDP, 1 << 5);
        assert_eq!(rss_hf::IPV6, 1 << 8);
        assert_eq!(rss_hf::IPV6_TCP, 1 << 10);
        assert_eq!(rss_hf::IPV6_UDP, 1 << 11);
        assert_eq!(rss_hf::TCP & rss_hf::IPV4_TCP, rss_hf::IPV4_TCP);
        assert_eq!(tx_offload::IPV4_CKSUM, 1 << 1);
        assert_eq!(tx_offload::TCP_CKSUM, 1 << 3);
    }
}
