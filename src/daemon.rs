//! Bringing the load balancer up and down: EAL, the mbuf pool, data ports with one queue pair per
//! worker, kernel interfaces, lcore-pinned workers, the control plane on its own tokio runtime;
//! then waiting for a stop signal and tearing down in reverse order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use control_api::{ControlPlane, Options};
use dataplane::conn::ConnTableConfig;
use dataplane::fwd::{DropReason, Forwarder, ForwarderConfig, PortRange, RssTarget};
use dataplane::model::LocalAddr;
use dataplane::rss::{RetaMap, Toeplitz};
use dpdk_bindings::{Eal, EalError, LaunchHandle, Mempool, Port, Ring, RingFlags};
use log::{error, info, warn};

use crate::config::Config;
use crate::control::{DaemonDataplane, WorkerView};
use crate::mailbox::Mailbox;
use crate::ports::{self, Steering, RETA_SIZE, RSS_KEY};
use crate::state::{compile, Fixed, PortFacts, ServiceSlots, Shared};
use crate::worker::{SteerRings, Worker, WorkerCounters, WorkerDrop, WorkerPort};

/// Data room of each mbuf: 2048 bytes of frame plus DPDK's default 128-byte headroom.
const MBUF_DATA_ROOM: u16 = 2048 + 128;

/// Service slots counted per core.
const SERVICE_CAPACITY: u32 = 1024;

/// Frames each software-steering ring holds.
const STEER_RING: u32 = 4096;

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
    /// The configuration does not fit the devices or the control plane refused it.
    #[error("{0}")]
    Config(String),
    /// A worker lcore panicked or could not start.
    #[error("worker failed: {0}")]
    Worker(String),
}

/// Wraps a DPDK error with what was being done.
pub fn dpdk(what: impl Into<String>) -> impl FnOnce(dpdk_bindings::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Dpdk { what, source }
}

/// Runs the load balancer until `stop` becomes true; returns once everything is torn down.
pub fn run(cfg: &Config, stop: Arc<AtomicBool>) -> Result<(), DaemonError> {
    let eal = Eal::init(&cfg.eal_args())?;
    info!("{} up; lcores {}", eal.version(), cfg.lcores_arg());
    let lcores = eal.worker_lcores();
    let n = usize::from(cfg.cpu.workers);
    if lcores.len() != n {
        return Err(DaemonError::Worker(format!(
            "EAL gave {} worker lcores, configuration asks for {n}",
            lcores.len()
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

    let mut data = Vec::new();
    let mut facts = Vec::new();
    let mut kernel = Vec::new();
    for (i, pc) in cfg.ports.iter().enumerate() {
        let dp = ports::open_data_port(pc, cfg.cpu.workers, &pool)?;
        facts.push(PortFacts {
            mac: dp.mac,
            addresses: pc.addresses.clone(),
            mtu: pc.mtu.unwrap_or(1500),
        });
        kernel.push(match &pc.kernel_interface {
            Some(ifname) => Some(Arc::new(ports::open_kernel_port(
                pc,
                ifname,
                i,
                dp.mac,
                cfg.cpu.workers,
                &pool,
            )?)),
            None => None,
        });
        data.push(dp);
    }
    let fixed = Fixed {
        ports: facts,
        routes: cfg.routes.clone(),
    };
    let first = compile(
        &control_api::Config::default(),
        &fixed,
        &ServiceSlots::default(),
    )
    .map_err(DaemonError::Config)?;
    let shared = Arc::new(Shared::new(first, n));
    let mailboxes: Arc<[Mailbox]> = (0..n).map(|_| Mailbox::default()).collect();
    let steering: Vec<Steering> = data.iter().map(|d| d.steering).collect();
    // One hash and one redirection table for everything that predicts a flow's worker: the
    // FullNAT port allocator, NAT reply aliases and software steering.
    let toeplitz = Arc::new(Toeplitz::new(&RSS_KEY));
    let reta = Arc::new(
        RetaMap::new(usize::from(RETA_SIZE), cfg.cpu.workers)
            .map_err(|e| DaemonError::Config(format!("redirection table: {e:?}")))?,
    );
    let steer = if steering.contains(&Steering::Software) {
        Some(Arc::new(steer_rings(
            n,
            eal.socket_id(),
            Arc::clone(&toeplitz),
            Arc::clone(&reta),
        )?))
    } else {
        None
    };
    let data_ports: Vec<Arc<Port>> = data.into_iter().map(|d| Arc::new(d.port)).collect();
    let mut port_index = vec![None; usize::from(dpdk_bindings::sys::RTE_MAX_ETHPORTS as u16)];
    for (i, p) in data_ports.iter().enumerate() {
        if let Some(slot) = port_index.get_mut(usize::from(p.id().0)) {
            *slot = Some(i as u16);
        }
    }

    let statics = cfg.static_neighbours();
    let ready = Arc::new(AtomicBool::new(false));
    let mut handles: Vec<LaunchHandle> = Vec::with_capacity(n);
    let mut views = Vec::with_capacity(n);
    let mut finished = Vec::with_capacity(n);
    let mut failure = None;
    for (i, &lcore) in lcores.iter().enumerate() {
        let fwd = Forwarder::new(ForwarderConfig {
            table: ConnTableConfig {
                capacity: cfg.dataplane.max_connections,
                dest_capacity: cfg.dataplane.max_real_servers,
                core: i as u16,
                ..ConnTableConfig::default()
            },
            service_capacity: SERVICE_CAPACITY,
            ports: PortRange::default(),
            rss: (n > 1).then(|| RssTarget {
                toeplitz: Arc::clone(&toeplitz),
                reta: Arc::clone(&reta),
                queue: i as u16,
            }),
        });
        // Before the worker starts: collapsing takes ~0.3 s per 100 MiB, which must delay neither
        // the poll loop nor the first configuration's acknowledgement.
        crate::hugepages::back_conn_table(i as u16, &fwd);
        let counters = Arc::new(WorkerCounters::new(cfg.dataplane.max_real_servers as usize));
        let neigh = crate::worker::neigh_cache(cfg.dataplane.neigh_config(), &statics);
        views.push(WorkerView {
            fwd: Arc::clone(fwd.stats()),
            counters: Arc::clone(&counters),
            neigh: Arc::clone(neigh.stats()),
        });
        let q = dpdk_bindings::QueueId(i as u16);
        let worker = Worker {
            index: i as u16,
            ports: data_ports
                .iter()
                .zip(&kernel)
                .zip(&steering)
                .map(|((p, k), s)| WorkerPort {
                    port: Arc::clone(p),
                    kernel: k.clone(),
                    steering: *s,
                    // Held by this worker from now on (its bursts take no flag).
                    rx: p.lease_rx(q),
                    tx: p.lease_tx(q),
                    kernel_rx: k.as_ref().and_then(|k| k.lease_rx(q)),
                    kernel_tx: k.as_ref().and_then(|k| k.lease_tx(q)),
                })
                .collect(),
            port_index: port_index.clone(),
            shared: Arc::clone(&shared),
            mailboxes: Arc::clone(&mailboxes),
            steer: steer.clone(),
            pool: pool.clone(),
            counters,
            fwd,
            neigh,
            stop: Arc::clone(&stop),
            ready: Arc::clone(&ready),
        };
        let done = Arc::new(AtomicBool::new(false));
        finished.push(Arc::clone(&done));
        let job = move || {
            let _mark = MarkOnDrop(done);
            worker.run();
        };
        match dpdk_bindings::lcore::launch(lcore, job) {
            Ok(h) => handles.push(h),
            Err(e) => {
                failure = Some(DaemonError::Dpdk {
                    what: format!("cannot launch worker on {lcore:?}"),
                    source: e,
                });
                stop.store(true, Ordering::Relaxed);
                break;
            }
        }
    }

    let dp = Arc::new(DaemonDataplane::new(
        Arc::clone(&shared),
        fixed,
        views,
        Arc::clone(&mailboxes),
        data_ports.clone(),
        u64::from(cfg.dataplane.max_connections) * n as u64,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ironvs-api")
        .enable_all()
        .build()
        .map_err(|e| DaemonError::Config(format!("cannot start the control-plane runtime: {e}")))?;
    let mut control = None;
    if failure.is_none() {
        match runtime.block_on(start_control(cfg, Arc::clone(&dp))) {
            Ok(c) => {
                info!("REST API on http://{}", c.local_addr());
                control = Some(c);
                ready.store(true, Ordering::Release);
            }
            Err(e) => {
                failure = Some(e);
                stop.store(true, Ordering::Relaxed);
            }
        }
    }
    if failure.is_none() {
        info!("{} workers running", handles.len());
    }

    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if finished.iter().any(|f| f.load(Ordering::Relaxed)) && !stop.load(Ordering::Relaxed) {
            warn!("a worker stopped unexpectedly; shutting down");
            break;
        }
    }
    if let Some(c) = control.take() {
        let _ = runtime.block_on(c.shutdown());
    }
    drop(runtime);
    stop.store(true, Ordering::Relaxed);
    let mut worker_error = None;
    for h in handles {
        let lcore = h.lcore();
        if let Err(e) = h.join() {
            error!("worker on {lcore:?} failed: {e}");
            worker_error = Some(DaemonError::Worker(e.to_string()));
        }
    }
    report(&dp, &data_ports, cfg);
    drop(dp);
    drop(mailboxes);
    drop(shared);
    for (p, pc) in data_ports.into_iter().zip(&cfg.ports) {
        match Arc::try_unwrap(p) {
            Ok(mut p) => {
                if let Err(e) = p.stop() {
                    warn!("port {}: stop failed: {e}", pc.name);
                }
            }
            Err(_) => warn!("port {} still shared at shutdown", pc.name),
        }
    }
    drop(kernel);
    drop(steer);
    drop(pool);
    drop(eal);
    if let Some(e) = failure.or(worker_error) {
        return Err(e);
    }
    info!("stopped cleanly");
    Ok(())
}

/// Starts the REST API and seeds the configuration file's services when nothing was saved.
async fn start_control(
    cfg: &Config,
    dp: Arc<DaemonDataplane>,
) -> Result<ControlPlane, DaemonError> {
    let opts = Options {
        listen: cfg.api.listen,
        token: cfg.api.token.clone(),
        state_file: cfg.api.state_file.clone(),
    };
    let control = ControlPlane::start(opts, dp)
        .await
        .map_err(|e| DaemonError::Config(format!("control plane: {e}")))?;
    let store = control.store();
    let saved = store.current();
    let empty = saved.service_count() == 0 && saved.laddrs().next().is_none();
    if !empty {
        if !cfg.services.is_empty() || !cfg.fullnat.local_addresses.is_empty() {
            info!("restored the saved state; [[service]] and [fullnat] of the configuration file are not applied");
        }
        return Ok(control);
    }
    store
        .update(|c| {
            for a in &cfg.fullnat.local_addresses {
                c.add_laddr(LocalAddr { addr: *a })?;
            }
            for s in &cfg.services {
                c.add_service(s.to_model(), s.real_servers_model())?;
            }
            Ok(())
        })
        .map_err(|e| DaemonError::Config(format!("configuration file services: {e}")))?;
    Ok(control)
}

/// Single-producer, single-consumer rings between every ordered pair of workers.
fn steer_rings(
    n: usize,
    socket: i32,
    toeplitz: Arc<Toeplitz>,
    reta: Arc<RetaMap>,
) -> Result<SteerRings, DaemonError> {
    let mut rings = Vec::with_capacity(n);
    for from in 0..n {
        let mut row = Vec::with_capacity(n);
        for to in 0..n {
            row.push(if from == to {
                None
            } else {
                Some(
                    Ring::create(
                        &format!("ivs_steer_{from}_{to}"),
                        STEER_RING,
                        socket,
                        RingFlags {
                            single_producer: true,
                            single_consumer: true,
                        },
                    )
                    .map_err(dpdk("software steering ring"))?,
                )
            });
        }
        rings.push(row);
    }
    Ok(SteerRings {
        rings,
        toeplitz,
        reta,
    })
}

/// Logs what every worker and port did, for the operator (and the tests) at shutdown.
fn report(dp: &DaemonDataplane, ports: &[Arc<Port>], cfg: &Config) {
    use control_api::Dataplane;
    let stats = dp.stats();
    for (i, v) in dp.worker_views().iter().enumerate() {
        let c = &v.counters;
        let mut drops: Vec<String> = Vec::new();
        for r in DropReason::ALL {
            let n = v.fwd.drops(r);
            if n > 0 {
                drops.push(format!("{}={n}", r.name()));
            }
        }
        for r in WorkerDrop::ALL {
            let n = c.drops[r as usize].get();
            if n > 0 {
                drops.push(format!("{}={n}", r.name()));
            }
        }
        info!(
            "worker {i}: rx {} tx {} new_conns={} host_replies={} steered_out={} steered_in={} aliases_sent={} aliases_accepted={} aliases_refused={} aliases_inbox_full={} reply_races={} reply_misses={} to_kernel={} from_kernel={} neigh_requests={} neigh_announcements={} neigh_learned={} neigh_failures={} neigh_held={} neigh_hold_drops={} neigh_hold_cap_drops={} neigh_unresolved_drops={} drops [{}]",
            c.rx.get(),
            c.tx.get(),
            v.fwd.new_conns.get(),
            c.host_replies.get(),
            c.steered_out.get(),
            c.steered_in.get(),
            v.fwd.aliases_sent.get(),
            v.fwd.aliases_accepted.get(),
            v.fwd.aliases_refused.get(),
            c.alias_inbox_full.get(),
            c.reply_races.get(),
            v.fwd.drops(DropReason::ReplyMiss),
            c.to_kernel.get(),
            c.from_kernel.get(),
            c.neigh_requests.get(),
            c.announcements.get(),
            v.neigh.learned.get(),
            v.neigh.failures.get(),
            v.neigh.held.get(),
            v.neigh.hold_drops.get(),
            v.neigh.hold_cap_drops.get(),
            v.neigh.unresolved_drops.get(),
            drops.join(" ")
        );
    }
    for s in &stats.services {
        for r in &s.real_servers {
            info!(
                "service {:?} {}:{} -> {}:{}: conns {} inpkts {} outpkts {}",
                s.key.proto,
                s.key.vip,
                s.key.port,
                r.key.addr,
                r.key.port,
                r.counters.conns,
                r.counters.inpkts,
                r.counters.outpkts
            );
        }
    }
    for (p, pc) in ports.iter().zip(&cfg.ports) {
        if let Ok(s) = p.stats() {
            info!(
                "port {}: rx {} tx {} missed {} rx errors {} tx errors {}",
                pc.name, s.ipackets, s.opackets, s.imissed, s.ierrors, s.oerrors
            );
        }
    }
}

/// Sets its flag when dropped, even by a panic: tells the main thread a worker has ended.
struct MarkOnDrop(Arc<AtomicBool>);

impl Drop for MarkOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
