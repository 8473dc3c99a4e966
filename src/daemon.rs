//! Bringing the data plane up and down: EAL, the mbuf pool, ports with one queue pair per worker,
//! lcore-pinned workers; then waiting for a stop signal and tearing down in reverse order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dataplane::host::HostIface;
use dataplane::wire::MacAddr;
use dpdk_bindings::{Eal, EalError, LaunchHandle, Mempool, Port, PortConfig, QueueId};
use log::{error, info, warn};

use crate::config::{Config, PortSection};
use crate::worker::{self, WorkerCounters, WorkerDrop, WorkerPort};

/// Data room of each mbuf: 2048 bytes of frame plus DPDK's default 128-byte headroom.
const MBUF_DATA_ROOM: u16 = 2048 + 128;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// EAL refused to start; the message says how to fix it.
    #[error("DPDK EAL initialisation failed: {0}")]
    Eal(#[from] EalError),
    /// A DPDK call failed while setting something up.
    #[error("{what}: {source}")]
    Dpdk {
        /// What was being set up.
        what: String,
        /// DPDK's error.
        source: dpdk_bindings::Error,
    },
    /// A worker lcore panicked.
    #[error("worker failed: {0}")]
    Worker(String),
}

fn dpdk(what: impl Into<String>) -> impl FnOnce(dpdk_bindings::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Dpdk { what, source }
}

/// Runs the data plane until `stop` becomes true; returns once everything is torn down.
pub fn run(cfg: &Config, stop: Arc<AtomicBool>) -> Result<(), DaemonError> {
    let eal = Eal::init(&cfg.eal_args())?;
    info!("{} up; workers on {}", eal.version(), cfg.lcores_arg());
    let workers = eal.worker_lcores();
    if workers.len() != usize::from(cfg.cpu.workers) {
        return Err(DaemonError::Worker(format!(
            "EAL gave {} worker lcores, configuration asks for {}",
            workers.len(),
            cfg.cpu.workers
        )));
    }
    let pool = Mempool::new_pktmbuf(
        "ironvs_mbufs",
        cfg.mempool.mbufs,
        cfg.mempool.cache,
        MBUF_DATA_ROOM,
        eal.socket_id(),
    )
    .map_err(dpdk(format!(
        "cannot create a pool of {} mbufs (raise -m / hugepages, or lower [mempool] mbufs)",
        cfg.mempool.mbufs
    )))?;

    let mut ports = Vec::with_capacity(cfg.ports.len());
    for pc in &cfg.ports {
        ports.push(open_port(pc, cfg.cpu.workers, &pool)?);
    }
    let ports: Vec<(Arc<Port>, Arc<HostIface>)> = ports
        .into_iter()
        .map(|(p, i)| (Arc::new(p), Arc::new(i)))
        .collect();

    let mut handles: Vec<LaunchHandle> = Vec::with_capacity(workers.len());
    let mut counters = Vec::with_capacity(workers.len());
    let mut finished = Vec::with_capacity(workers.len());
    let mut launch_error = None;
    for (i, &lcore) in workers.iter().enumerate() {
        let wports = ports
            .iter()
            .map(|(p, iface)| WorkerPort {
                port: Arc::clone(p),
                queue: QueueId(i as u16),
                iface: Arc::clone(iface),
            })
            .collect();
        let c = Arc::new(WorkerCounters::default());
        counters.push(Arc::clone(&c));
        let s = Arc::clone(&stop);
        let done = Arc::new(AtomicBool::new(false));
        finished.push(Arc::clone(&done));
        let job = move || {
            let _mark = MarkOnDrop(done);
            worker::run(wports, c, s)
        };
        match dpdk_bindings::lcore::launch(lcore, job) {
            Ok(h) => handles.push(h),
            Err(e) => {
                launch_error = Some(DaemonError::Dpdk {
                    what: format!("cannot launch worker on {lcore:?}"),
                    source: e,
                });
                stop.store(true, Ordering::Relaxed);
                break;
            }
        }
    }
    if launch_error.is_none() {
        info!("{} workers running", handles.len());
    }

    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if finished.iter().any(|f| f.load(Ordering::Relaxed)) && !stop.load(Ordering::Relaxed) {
            warn!("a worker stopped unexpectedly; shutting down");
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut worker_error = None;
    for h in handles {
        let lcore = h.lcore();
        if let Err(e) = h.join() {
            error!("worker on {lcore:?} failed: {e}");
            worker_error = Some(DaemonError::Worker(e.to_string()));
        }
    }
    for (i, c) in counters.iter().enumerate() {
        let drops: Vec<String> = WorkerDrop::ALL
            .iter()
            .map(|d| format!("{}={}", d.name(), c.drops[*d as usize].get()))
            .collect();
        info!(
            "worker {i}: rx {} tx {} host replies {} drops {}",
            c.rx.get(),
            c.tx.get(),
            c.host_replies.get(),
            drops.join(" ")
        );
    }
    for ((port, _), pc) in ports.into_iter().zip(&cfg.ports) {
        if let Ok(s) = port.stats() {
            info!(
                "port {}: rx {} tx {} missed {} rx errors {} tx errors {}",
                pc.name, s.ipackets, s.opackets, s.imissed, s.ierrors, s.oerrors
            );
        }
        match Arc::try_unwrap(port) {
            Ok(mut p) => {
                if let Err(e) = p.stop() {
                    warn!("port {}: stop failed: {e}", pc.name);
                }
            }
            Err(_) => warn!("port {} still shared at shutdown", pc.name),
        }
    }
    drop(pool);
    drop(eal);
    if let Some(e) = launch_error.or(worker_error) {
        return Err(e);
    }
    info!("stopped cleanly");
    Ok(())
}

/// Sets its flag when dropped, even by a panic: tells the main thread a worker has ended.
struct MarkOnDrop(Arc<AtomicBool>);

impl Drop for MarkOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Finds, configures and starts one port with a queue pair per worker.
fn open_port(
    pc: &PortSection,
    workers: u16,
    pool: &Mempool,
) -> Result<(Port, HostIface), DaemonError> {
    let name = pc.device.ethdev_name();
    let mut port = Port::by_name(name).map_err(dpdk(format!(
        "port {}: device `{name}` not found (check the vdev string or that the PCI device is bound to a DPDK driver with dpdk-devbind.py)",
        pc.name
    )))?;
    let pcfg = PortConfig {
        rx_queues: workers,
        tx_queues: workers,
        rx_desc: pc.rx_desc,
        tx_desc: pc.tx_desc,
        rss: None,
        mtu: pc.mtu,
        promiscuous: pc.promiscuous,
        tx_offloads: 0,
    };
    port.configure(&pcfg, pool)
        .map_err(dpdk(format!("port {}: configure", pc.name)))?;
    port.start()
        .map_err(dpdk(format!("port {}: start", pc.name)))?;
    let mac = port
        .mac_addr()
        .map_err(dpdk(format!("port {}: MAC address", pc.name)))?;
    let link = port.link().ok();
    let addrs: Vec<String> = pc.addresses.iter().map(|a| a.to_string()).collect();
    info!(
        "port {} ({name}): MAC {} link {} addresses [{}]",
        pc.name,
        MacAddr(mac),
        link.map(|l| if l.up {
            format!("up {} Mb/s", l.speed_mbps)
        } else {
            "down".into()
        })
        .unwrap_or_else(|| "unknown".into()),
        addrs.join(", ")
    );
    let iface = HostIface::new(
        MacAddr(mac),
        pc.addresses.iter().map(|a| (a.addr, a.prefix)),
    );
    Ok((port, iface))
}
