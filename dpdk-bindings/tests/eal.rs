//! EAL-backed tests. EAL initialises once per process, so every test lives in this one binary
//! and shares one [`Eal`] (`--no-huge --no-pci`, unique `--file-prefix`, two lcores on CPU 0).
//! Each test uses its own pool, rings and port names so they can run in parallel; the lcore
//! tests share the worker and take a lock. Needs root: otherwise each test prints
//! "skipped: needs root" and returns.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use dataplane::buf::{BufError, PacketBuf};
use dpdk_bindings::{
    lcore, port::rss_hf, tsc, Eal, EalError, Error, LcoreId, Mbuf, MbufBurst, Mempool, Port,
    PortConfig, QueueId, Ring, RingFlags, RssConfig,
};

const Q0: QueueId = QueueId(0);
/// Data room of test pools (DPDK's default: 2048 + 128 headroom).
const DATA_ROOM: u16 = 2176;

static EAL: OnceLock<Option<Eal>> = OnceLock::new();
static LCORES: Mutex<()> = Mutex::new(());

/// The shared EAL, or `None` (with a message) when not running as root.
fn eal() -> Option<&'static Eal> {
    EAL.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        remove_stale_runtime_dirs();
        let args = [
            "--no-huge".to_owned(),
            "--no-pci".to_owned(),
            "--no-telemetry".to_owned(),
            "-m".to_owned(),
            "256".to_owned(),
            format!("--file-prefix=ironvs-test-{}", std::process::id()),
            "--lcores=0@0,1@0".to_owned(),
            "--vdev=net_null0".to_owned(),
            // IRONVS_TEST_EAL_LOG=*:debug shows what EAL and the PMDs do.
            format!(
                "--log-level={}",
                std::env::var("IRONVS_TEST_EAL_LOG").unwrap_or_else(|_| "*:warning".to_owned())
            ),
        ];
        Some(Eal::init(&args).unwrap_or_else(|e| panic!("EAL init failed: {e}")))
    })
    .as_ref()
    .or_else(|| {
        eprintln!("skipped: needs root (DPDK EAL)");
        None
    })
}

/// EAL leaves /var/run/dpdk/<prefix> behind; drop the ones of test processes that are gone.
fn remove_stale_runtime_dirs() {
    let Ok(dir) = std::fs::read_dir("/var/run/dpdk") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("ironvs-test-") {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn lock(m: &'static Mutex<()>) -> MutexGuard<'static, ()> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A pool without per-lcore cache, so `available`/`in_use` are exact.
fn pool(name: &str, n: u32) -> Mempool {
    Mempool::new_pktmbuf(name, n, 0, DATA_ROOM, -1).unwrap()
}

fn mbuf_with(pool: &Mempool, bytes: &[u8]) -> Mbuf {
    let mut m = pool.alloc().unwrap();
    m.set_data(bytes).unwrap();
    m
}

/// A frame of `len` bytes whose bytes encode `tag` and their index.
fn frame(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| tag.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

fn ring(name: &str, count: u32) -> Ring {
    Ring::create(name, count, -1, RingFlags::default()).unwrap()
}

fn started(mut port: Port, pool: &Mempool, cfg: &PortConfig) -> Port {
    port.configure(cfg, pool).unwrap();
    port.start().unwrap();
    port
}

fn small_cfg() -> PortConfig {
    PortConfig {
        rx_desc: 64,
        tx_desc: 64,
        ..PortConfig::default()
    }
}

#[test]
fn test_second_init_is_an_error() {
    let Some(_eal) = eal() else { return };
    assert_eq!(
        Eal::init(&["--no-huge"]).unwrap_err(),
        EalError::AlreadyInitialised
    );
}

#[test]
fn test_eal_helpers_and_version() {
    let Some(eal) = eal() else { return };
    assert_eq!(eal.lcore_count(), 2);
    assert_eq!(eal.main_lcore(), LcoreId(0));
    assert_eq!(eal.worker_lcores(), vec![LcoreId(1)]);
    assert_eq!(
        eal.version(),
        format!("DPDK {}", dpdk_bindings::DPDK_BUILD_VERSION)
    );
    assert!(tsc::tsc_hz() > 1_000_000);
    let clock = tsc::Clock::new().unwrap();
    assert!(clock.now_ms() < 60_000);
}

#[test]
fn test_mempool_exhaustion_is_an_error_and_drop_returns_mbufs() {
    let Some(_eal) = eal() else { return };
    let pool = pool("t_exhaust", 63);
    assert_eq!((pool.available(), pool.in_use()), (63, 0));
    let held: Vec<Mbuf> = (0..63).map(|_| pool.alloc().unwrap()).collect();
    assert_eq!((pool.available(), pool.in_use()), (0, 63));
    assert_eq!(pool.alloc().unwrap_err(), Error::NoMbufs);
    let mut burst = MbufBurst::<8>::new();
    assert_eq!(pool.alloc_bulk(&mut burst, 4), Err(Error::NoMbufs));
    assert!(burst.is_empty());
    drop(held);
    assert_eq!((pool.available(), pool.in_use()), (63, 0));
    pool.alloc_bulk(&mut burst, 8).unwrap();
    assert_eq!(pool.in_use(), 8);
    drop(burst);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn test_mbuf_prepend_adj_trim_append_change_data_exactly() {
    let Some(_eal) = eal() else { return };
    let pool = pool("t_mbuf_ops", 7);
    let mut m = mbuf_with(&pool, &[1, 2, 3, 4, 5]);
    assert_eq!(m.headroom(), 128);
    assert_eq!(m.tailroom(), usize::from(DATA_ROOM) - 128 - 5);
    m.prepend(2).unwrap();
    m.data_mut()[..2].copy_from_slice(&[8, 9]);
    assert_eq!(m.data(), &[8, 9, 1, 2, 3, 4, 5]);
    assert_eq!((m.headroom(), m.len(), m.pkt_len()), (126, 7, 7));
    m.adj(3).unwrap();
    assert_eq!(m.data(), &[2, 3, 4, 5]);
    m.trim(1).unwrap();
    assert_eq!(m.data(), &[2, 3, 4]);
    m.append(2).unwrap();
    m.data_mut()[3..].copy_from_slice(&[6, 7]);
    assert_eq!(m.data(), &[2, 3, 4, 6, 7]);
    assert_eq!(m.pkt_len(), 5);

    // Failures leave the buffer unchanged.
    let head = m.headroom() as u16;
    assert_eq!(m.prepend(head + 1), Err(BufError::NoHeadroom));
    assert_eq!(m.adj(6), Err(BufError::TooShort));
    assert_eq!(m.trim(6), Err(BufError::TooShort));
    let tail = m.tailroom() as u16;
    assert_eq!(Mbuf::append(&mut m, tail + 1), Err(BufError::NoTailroom));
    assert_eq!(m.data(), &[2, 3, 4, 6, 7]);

    // The same through the data plane's trait.
    fn encap<B: PacketBuf>(b: &mut B) -> Result<(), BufError> {
        b.prepend(20)?;
        b.frame_mut()[..20].fill(0x45);
        b.trim_back(2)
    }
    encap(&mut m).unwrap();
    assert_eq!(PacketBuf::len(&m), 23);
    assert_eq!(&m.frame()[18..], &[0x45, 0x45, 2, 3, 4]);
    assert_eq!(
        PacketBuf::prepend(&mut m, 70_000),
        Err(BufError::NoHeadroom)
    );
    PacketBuf::trim_front(&mut m, 20).unwrap();
    assert_eq!(m.frame(), &[2, 3, 4]);

    let raw = m.into_raw();
    assert_eq!(pool.in_use(), 1);
    // SAFETY: `raw` came from into_raw just above and is owned by nobody else.
    drop(unsafe { Mbuf::from_raw(raw) });
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn test_ring_ports_carry_bytes_and_count_packets() {
    let Some(_eal) = eal() else { return };
    let pool = pool("t_wire", 255);
    let (a, b) = (ring("t_wire_a", 64), ring("t_wire_b", 64));
    let cfg = PortConfig {
        rss: Some(RssConfig {
            key: [0x6d, 0x5a].repeat(20).try_into().unwrap(),
            hf: rss_hf::IP | rss_hf::TCP,
        }),
        ..small_cfg()
    };
    let p0 = started(
        Port::from_rings("t_wire_p0", &[&a], &[&b]).unwrap(),
        &pool,
        &cfg,
    );
    let p1 = started(
        Port::from_rings("t_wire_p1", &[&b], &[&a]).unwrap(),
        &pool,
        &small_cfg(),
    );
    assert_eq!(p0.name().unwrap(), "net_ring_t_wire_p0");
    let info = p0.info().unwrap();
    assert_eq!(info.driver_name, "net_ring");
    // The ring PMD hashes nothing, so the RSS request is masked away instead of failing.
    assert_eq!(info.flow_type_rss_offloads, 0);
    assert_eq!(p0.rss_hf(), 0);
    assert!(p0.link().unwrap().up);

    let frames = [frame(1, 60), frame(2, 64), frame(3, 1514)];
    let mut tx = MbufBurst::<32>::new();
    for f in &frames {
        tx.push(mbuf_with(&pool, f)).unwrap();
    }
    assert_eq!(p0.tx_burst(Q0, &mut tx), 3);
    assert!(tx.is_empty());
    assert_eq!(b.count(), 3);

    let mut rx = MbufBurst::<32>::new();
    assert_eq!(p1.rx_burst(Q0, &mut rx), 3);
    let got: Vec<Vec<u8>> = rx.drain().map(|m| m.data().to_vec()).collect();
    assert_eq!(got, frames);
    assert_eq!(p1.rx_burst(Q0, &mut rx), 0);

    assert_eq!(
        (p0.stats().unwrap().opackets, p1.stats().unwrap().ipackets),
        (3, 3)
    );
    p0.reset_stats().unwrap();
    assert_eq!(p0.stats().unwrap().opackets, 0);
    // An unconfigured queue moves nothing instead of crashing.
    assert_eq!(p1.rx_burst(QueueId(5), &mut rx), 0);
    drop((p0, p1));
    assert_eq!(pool.in_use(), 0);
    // The names are free again once the ports are gone.
    drop(Port::from_rings("t_wire_p0", &[&a], &[&b]).unwrap());
}

#[test]
fn test_leased_queues_are_the_lessee_s_alone_until_dropped() {
    let Some(_eal) = eal() else { return };
    let pool = pool("t_lease", 255);
    let (a, b) = (ring("t_lease_a", 64), ring("t_lease_b", 64));
    let p0 = started(
        Port::from_rings("t_lease_p0", &[&a], &[&b]).unwrap(),
        &pool,
        &small_cfg(),
    );
    let p1 = Arc::new(started(
        Port::from_rings("t_lease_p1", &[&b], &[&a]).unwrap(),
        &pool,
        &small_cfg(),
    ));
    let send = |tags: &[u8]| {
        let mut tx = MbufBurst::<32>::new();
        for &t in tags {
            tx.push(mbuf_with(&pool, &frame(t, 60))).unwrap();
        }
        assert_eq!(p0.tx_burst(Q0, &mut tx), tags.len());
    };
    // A frame's first byte is 31 × its tag.
    let tags =
        |rx: &mut MbufBurst<32>| -> Vec<u8> { rx.drain().map(|m| m.data()[0] / 31).collect() };
    let lease = p1.lease_rx(Q0).unwrap();
    assert_eq!(lease.port().name().unwrap(), "net_ring_t_lease_p1");
    // Held: a second lease and per-burst calls get nothing, even with packets waiting.
    assert!(p1.lease_rx(Q0).is_none());
    assert!(p1.lease_rx(QueueId(5)).is_none());
    send(&[1, 2]);
    let mut rx = MbufBurst::<32>::new();
    assert_eq!(p1.rx_burst(Q0, &mut rx), 0);
    assert_eq!(lease.rx_burst(&mut rx), 2);
    assert_eq!(tags(&mut rx), [1, 2]);
    // Dropped: the queue is free again, for bursts and for a new lease.
    drop(lease);
    send(&[3]);
    assert_eq!(p1.rx_burst(Q0, &mut rx), 1);
    assert_eq!(tags(&mut rx), [3]);
    let again = p1.lease_rx(Q0).unwrap();
    send(&[4]);
    assert_eq!(again.rx_burst(&mut rx), 1);
    assert_eq!(tags(&mut rx), [4]);
    drop(again);
    // TX: while p0's queue is leased, only the lease sends.
    let p0 = Arc::new(p0);
    let tx = p0.lease_tx(Q0).unwrap();
    assert!(p0.lease_tx(Q0).is_none());
    let mut out = MbufBurst::<32>::new();
    out.push(mbuf_with(&pool, &frame(5, 60))).unwrap();
    assert_eq!(p0.tx_burst(Q0, &mut out), 0);
    assert_eq!(out.len(), 1);
    assert_eq!(tx.tx_burst(&mut out), 1);
    assert!(out.is_empty());
    assert_eq!(tx.tx_burst(&mut out), 0);
    assert_eq!(p1.rx_burst(Q0, &mut rx), 1);
    assert_eq!(tags(&mut rx), [5]);
    drop(tx);
    out.push(mbuf_with(&pool, &frame(6, 60))).unwrap();
    assert_eq!(p0.tx_burst(Q0, &mut out), 1);
    assert_eq!(p1.rx_burst(Q0, &mut rx), 1);
    assert_eq!(tags(&mut rx), [6]);
    drop((p0, p1));
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn test_tx_burst_keeps_what_the_ring_did_not_take() {
    let Some(_eal) = eal() else { return };
    let pool = pool("t_full", 63);
    let (rx, txr) = (ring("t_full_rx", 8), ring("t_full_tx", 4));
    let port = started(
        Port::from_rings("t_full_p", &[&rx], &[&txr]).unwrap(),
        &pool,
        &small_cfg(),
    );
    let mut tx = MbufBurst::<8>::new();
    for tag in 0..6 {
        tx.push(mbuf_with(&pool, &frame(tag, 64))).unwrap();
    }
    assert_eq!(port.tx_burst(Q0, &mut tx), 4);
    assert_eq!(tx.len(), 2);
    assert_eq!(tx.get(0).unwrap().data(), frame(4, 64).as_slice());
    assert_eq!(tx.get(1).unwrap().data(), frame(5, 64).as_slice());
    assert_eq!(port.tx_burst(Q0, &mut tx), 0);
    assert_eq!(pool.in_use(), 6);

    // Make room, retry: the leftovers go out in order.
    let mut out = MbufBurst::<8>::new();
    assert_eq!(txr.dequeue_burst(&mut out), 4);
    assert_eq!(port.tx_burst(Q0, &mut tx), 2);
    assert!(tx.is_empty());
    drop(out);
    let mut out = MbufBurst::<8>::new();
    assert_eq!(txr.dequeue_burst(&mut out), 2);
    assert_eq!(out.get(0).unwrap().data(), frame(4, 64).as_slice());
    drop(out);
    // Unsent mbufs left in a dropped burst return to the pool.
    tx.push(pool.alloc().unwrap()).unwrap();
    drop(tx);
    assert_eq!(pool.in_use(), 0);
    drop(port);
}

#[test]
fn test_ring_moves_mbufs_and_frees_leftovers_on_drop() {
    let Some(_eal) = eal() else { return };
    let pool = pool("t_ring", 31);
    let r = Ring::create(
        "t_ring_r",
        16,
        -1,
        RingFlags {
            single_producer: true,
            single_consumer: true,
        },
    )
    .unwrap();
    assert_eq!((r.capacity(), r.name().as_str()), (16, "t_ring_r"));
    assert!(matches!(
        Ring::create("t_ring_r", 16, -1, RingFlags::default()),
        Err(Error::Dpdk { call: "rte_ring_create", errno }) if errno.0 == libc::EEXIST
    ));
    let mut burst = MbufBurst::<4>::new();
    for tag in 0..3 {
        burst.push(mbuf_with(&pool, &[tag])).unwrap();
    }
    assert_eq!(r.enqueue_burst(&mut burst), 3);
    assert_eq!((r.count(), r.free_count()), (3, 13));
    let mut back = MbufBurst::<2>::new();
    assert_eq!(r.dequeue_burst(&mut back), 2);
    let tags: Vec<u8> = back.drain().map(|m| m.data()[0]).collect();
    assert_eq!(tags, [0, 1]);
    // A worker thread takes the last one; the handle is shared.
    let r2 = r.clone();
    let tag = std::thread::spawn(move || {
        let mut b = MbufBurst::<4>::new();
        assert_eq!(r2.dequeue_burst(&mut b), 1);
        b.pop().unwrap().data()[0]
    })
    .join()
    .unwrap();
    assert_eq!(tag, 2);
    r.enqueue_burst(&mut {
        let mut b = MbufBurst::<1>::new();
        b.push(pool.alloc().unwrap()).unwrap();
        b
    });
    assert_eq!(pool.in_use(), 1);
    drop(r);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn test_null_port_accepts_tx_and_rejects_a_second_owner() {
    let Some(_eal) = eal() else { return };
    let pool = pool("t_null", 127);
    let port = started(Port::by_name("net_null0").unwrap(), &pool, &small_cfg());
    assert_eq!(
        Port::by_name("net_null0").unwrap_err(),
        Error::PortTaken(port.id())
    );
    assert_eq!(port.info().unwrap().driver_name, "net_null");
    let mut tx = MbufBurst::<32>::new();
    for _ in 0..5 {
        tx.push(mbuf_with(&pool, &frame(7, 64))).unwrap();
    }
    assert_eq!(port.tx_burst(Q0, &mut tx), 5);
    assert!(tx.is_empty());
    assert_eq!(port.stats().unwrap().opackets, 5);
    assert_eq!(pool.in_use(), 0);
    let err = Port::by_name("net_nosuch0").unwrap_err();
    assert_eq!(err.errno().map(|e| e.0), Some(libc::ENODEV));
    assert!(err.to_string().contains("no such device"), "{err}");
}

#[test]
fn test_runtime_vdev_attach_detach() {
    let Some(_eal) = eal() else { return };
    let pool = pool("t_vdev", 127);
    let port = started(
        Port::attach_vdev("net_null9,size=128").unwrap(),
        &pool,
        &small_cfg(),
    );
    assert_eq!(port.name().unwrap(), "net_null9");
    let mut rx = MbufBurst::<16>::new();
    // net_null fabricates `size`-byte packets on RX.
    assert_eq!(port.rx_burst(Q0, &mut rx), 16);
    assert!(rx.drain().all(|m| m.len() == 128 && m.port() == port.id()));
    assert!(Port::attach_vdev("net_null9").is_err());
    drop(port);
    // Dropping the port removed the vdev, so the name can be reused.
    drop(Port::attach_vdev("net_null9").unwrap());
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn test_lcore_launch_runs_closure_and_reports_panic() {
    let Some(eal) = eal() else { return };
    let _guard = lock(&LCORES);
    let worker = eal.worker_lcores()[0];
    let seen = Arc::new(AtomicU32::new(u32::MAX));
    let seen2 = Arc::clone(&seen);
    let h = lcore::launch(worker, move || {
        let id = lcore::current_lcore().map_or(u32::MAX - 1, |l| l.0);
        seen2.store(id, Ordering::SeqCst);
    })
    .unwrap();
    assert_eq!(h.lcore(), worker);
    h.join().unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), worker.0);

    let err = lcore::launch(worker, || panic!("worker exploded"))
        .unwrap()
        .join()
        .unwrap_err();
    assert_eq!(err.lcore, worker);
    assert_eq!(err.message, "worker exploded");

    // The worker survives a panicking job.
    let h = lcore::launch(worker, || {}).unwrap();
    assert_eq!(lcore::wait_all([h]), Ok(()));
    assert_eq!(
        lcore::launch(eal.main_lcore(), || {}).unwrap_err(),
        Error::NotWorker(LcoreId(0))
    );
    assert_eq!(
        lcore::launch(LcoreId(7), || {}).unwrap_err(),
        Error::NotWorker(LcoreId(7))
    );
}

/// A classic little-endian pcap file (Ethernet link type) holding `frames`.
fn pcap_file(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for word in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        for word in [i as u32, 0, f.len() as u32, f.len() as u32] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(f);
    }
    out
}

/// The packets of a pcap file written by DPDK (microsecond, little-endian).
fn pcap_frames(file: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= file.len() {
        let incl = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
        frames.push(file[at + 16..at + 16 + incl].to_vec());
        at += 16 + incl;
    }
    frames
}

#[test]
fn test_pcap_port_stats_count_packets_and_bytes() {
    let Some(_eal) = eal() else { return };
    let pool = pool("t_pcap", 127);
    let dir = std::env::temp_dir();
    let (rx_file, tx_file) = (
        dir.join(format!("ironvs-test-{}-in.pcap", std::process::id())),
        dir.join(format!("ironvs-test-{}-out.pcap", std::process::id())),
    );
    let frames = [frame(1, 60), frame(2, 342), frame(3, 1514)];
    let total: usize = frames.iter().map(Vec::len).sum();
    std::fs::write(&rx_file, pcap_file(&frames)).unwrap();
    let devargs = format!(
        "net_pcap7,rx_pcap={},tx_pcap={}",
        rx_file.display(),
        tx_file.display()
    );
    let port = started(Port::attach_vdev(&devargs).unwrap(), &pool, &small_cfg());

    let mut burst = MbufBurst::<32>::new();
    assert_eq!(port.rx_burst(Q0, &mut burst), 3);
    let got: Vec<Vec<u8>> = (0..3)
        .map(|i| burst.get(i).unwrap().data().to_vec())
        .collect();
    assert_eq!(got, frames);
    assert_eq!(port.tx_burst(Q0, &mut burst), 3);
    let stats = port.stats().unwrap();
    assert_eq!((stats.ipackets, stats.ibytes), (3, total as u64));
    assert_eq!((stats.opackets, stats.obytes), (3, total as u64));
    assert_eq!((stats.ierrors, stats.oerrors, stats.rx_nombuf), (0, 0, 0));
    drop(port); // closes the dumper, flushing the file
    assert_eq!(pcap_frames(&std::fs::read(&tx_file).unwrap()), frames);
    assert_eq!(pool.in_use(), 0);
    let _ = std::fs::remove_file(rx_file);
    let _ = std::fs::remove_file(tx_file);
}

#[test]
fn test_rss_request_is_masked_to_device_support() {
    let Some(_eal) = eal() else { return };
    if !std::path::Path::new("/dev/net/tun").exists() {
        eprintln!("skipped: /dev/net/tun missing (net_tap)");
        return;
    }
    // The tap interface is created in the calling thread's network namespace: give this test
    // thread a private one so nothing appears on the host.
    // SAFETY: unshare only changes this thread's namespace membership; no memory is involved.
    let ret = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        ret,
        0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
    let pool = pool("t_rss", 255);
    let mut port = Port::attach_vdev(&format!("net_tap3,iface=ivt{}", std::process::id())).unwrap();
    let supported = port.info().unwrap().flow_type_rss_offloads;
    let wanted = rss_hf::IPV4 | rss_hf::IPV4_TCP | rss_hf::IPV6_UDP | (1 << 63);
    let cfg = PortConfig {
        rx_queues: 2,
        tx_queues: 2,
        rss: Some(RssConfig {
            key: [0x6d, 0x5a].repeat(20).try_into().unwrap(),
            hf: wanted,
        }),
        ..small_cfg()
    };
    port.configure(&cfg, &pool).unwrap();
    assert_ne!(supported & rss_hf::IPV4_TCP, 0);
    assert_eq!(port.rss_hf(), wanted & supported);
    assert_eq!((port.rx_queues(), port.tx_queues()), (2, 2));
    // The redirection table, where the device has one, reads back as written.
    let size = usize::from(port.info().unwrap().reta_size);
    if size >= 64 {
        let table: Vec<u16> = (0..size).map(|i| (i % 2) as u16).collect();
        match port.set_reta(&table) {
            Ok(()) => assert_eq!(port.reta().unwrap(), table),
            Err(e) => eprintln!("net_tap does not program its redirection table: {e}"),
        }
    }
}

#[test]
fn test_burst_as_mut_slice_edits_in_place_and_keeps_ownership() {
    let Some(_eal) = eal() else { return };
    let pool = pool("t_burst_slice", 15);
    let mut burst = MbufBurst::<8>::new();
    assert!(burst.as_mut_slice().is_empty());
    for tag in 0..3 {
        burst.push(mbuf_with(&pool, &[tag, 0])).unwrap();
    }
    for (i, m) in burst.as_mut_slice().iter_mut().enumerate() {
        m.data_mut()[1] = 10 + i as u8;
    }
    // Reordering through the slice moves ownership with the pointers.
    burst.as_mut_slice().swap(0, 2);
    assert_eq!(burst.as_mut_slice().len(), 3);
    assert_eq!(pool.in_use(), 3);
    let frames: Vec<Vec<u8>> = burst.drain().map(|m| m.data().to_vec()).collect();
    assert_eq!(frames, [vec![2, 12], vec![1, 11], vec![0, 10]]);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn test_mbuf_head_tail_ops_match_dpdk() {
    let Some(_eal) = eal() else { return };
    let pool = pool("t_mbuf_diff", 7);
    let mut ours = mbuf_with(&pool, &[7; 60]);
    let theirs = mbuf_with(&pool, &[7; 60]);
    let p = theirs.as_ptr();
    let state = |m: &Mbuf| (m.headroom(), m.len(), m.pkt_len(), m.tailroom());
    // Every operation, in and out of range, from both ends.
    let ops: [(u8, u16); 12] = [
        (0, 20),
        (3, 6),
        (1, 14),
        (2, 100),
        (0, 200),
        (1, 5000),
        (3, 5000),
        (2, 5000),
        (0, 114),
        (1, 0),
        (3, 150),
        (2, 1),
    ];
    for (op, n) in ops {
        // SAFETY: `theirs` is a valid single-segment mbuf we own; these calls check bounds.
        let c_ok = unsafe {
            match op {
                0 => !dpdk_bindings::sys::rte_pktmbuf_prepend(p, n).is_null(),
                1 => !dpdk_bindings::sys::rte_pktmbuf_adj(p, n).is_null(),
                2 => !dpdk_bindings::sys::rte_pktmbuf_append(p, n).is_null(),
                _ => dpdk_bindings::sys::rte_pktmbuf_trim(p, n) == 0,
            }
        };
        let ok = match op {
            0 => ours.prepend(n).is_ok(),
            1 => ours.adj(n).is_ok(),
            2 => ours.append(n).is_ok(),
            _ => ours.trim(n).is_ok(),
        };
        assert_eq!(ok, c_ok, "op {op} n {n}");
        assert_eq!(state(&ours), state(&theirs), "op {op} n {n}");
    }
}

#[test]
fn test_burst_take_from_moves_what_fits_in_order() {
    let Some(_eal) = eal() else { return };
    let pool = pool("t_burst_take", 15);
    let mut src = MbufBurst::<8>::new();
    for tag in 0..5 {
        src.push(mbuf_with(&pool, &[tag])).unwrap();
    }
    let mut dst = MbufBurst::<4>::new();
    dst.push(mbuf_with(&pool, &[9])).unwrap();
    assert_eq!(dst.take_from(&mut src), 3);
    assert_eq!((dst.len(), src.len(), pool.in_use()), (4, 2, 6));
    assert_eq!(dst.take_from(&mut src), 0);
    let tags = |b: &mut MbufBurst<8>| b.drain().map(|m| m.data()[0]).collect::<Vec<u8>>();
    let mut back = MbufBurst::<8>::new();
    assert_eq!(back.take_from(&mut dst), 4);
    assert_eq!(tags(&mut back), [9, 0, 1, 2]);
    assert_eq!(tags(&mut src), [3, 4]);
    assert_eq!(pool.in_use(), 0);
}
