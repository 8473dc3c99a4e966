//! Data plane benches: ns per packet of `Forwarder::process` on established flows (DR, NAT,
//! FullNAT at 1k, 64k and 1M flows), the cost of a new FullNAT connection (SYN → schedule →
//! insert, with its later expiry), and Maglev table builds. `established_burst` runs the same
//! flows through `Forwarder::process_burst`, 32 frames at a time, as the daemon's worker does.
//!
//! Frames are rebuilt in one reused `VecBuf` per packet (a 54-byte copy plus the flow's client
//! address and port), so nothing allocates while measuring. Throughput is in packets.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dataplane::buf::VecBuf;
use dataplane::conn::ConnTableConfig;
use dataplane::flow::Addr;
use dataplane::fwd::{Forwarder, ForwarderConfig, Route, Snapshot, SnapshotBuilder, Topology};
use dataplane::model::{
    FwdMode, LocalAddr, RealServer, RealServerKey, SchedulerKind, Service, ServiceFlags, ServiceKey,
};
use dataplane::sched::{Dest, DestId, SchedPlan};
use dataplane::wire::MacAddr;
use ironvs::prefetch::CpuPrefetch;

/// Everything is on port 1 and resolved.
struct Flat;

impl Topology for Flat {
    #[inline]
    fn route(&self, dst: &Addr) -> Option<Route> {
        Some(Route {
            port: 1,
            next_hop: *dst,
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
        })
    }
    #[inline]
    fn neighbour(&self, _port: u16, _ip: &Addr) -> Option<MacAddr> {
        Some(MacAddr([2, 0, 0, 0, 1, 1]))
    }
}

const VIP: [u8; 4] = [198, 51, 100, 10];

fn snapshot(mode: FwdMode) -> Snapshot {
    let mut b = SnapshotBuilder::new();
    let svc = Service {
        key: ServiceKey {
            proto: dataplane::flow::Proto::Tcp,
            vip: IpAddr::V4(Ipv4Addr::from(VIP)),
            port: 80,
        },
        scheduler: SchedulerKind::Wlc,
        persistence: None,
        flags: ServiceFlags::default(),
    };
    let dests: Vec<(DestId, RealServer)> = (0..8u8)
        .map(|i| {
            let rs = RealServer {
                key: RealServerKey {
                    addr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1 + i)),
                    port: 80,
                },
                weight: 1,
                mode,
                upper_threshold: 0,
                lower_threshold: 0,
            };
            (DestId(u32::from(i)), rs)
        })
        .collect();
    b.service(0, &svc, &dests).unwrap();
    // 20 local addresses: 1M FullNAT flows need more than one address's 64k ports.
    for i in 0..20u8 {
        b.local_addr(LocalAddr {
            addr: IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1 + i)),
        });
    }
    b.port(1, &[IpAddr::V4(Ipv4Addr::new(10, 1, 0, 254))], 1500);
    b.build()
}

/// An Ethernet/IPv4/TCP frame (checksums are not verified by the forwarder; left zero).
fn template(flags: u8) -> [u8; 54] {
    let mut f = [0u8; 54];
    f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14..24].copy_from_slice(&[0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6]);
    f[30..34].copy_from_slice(&VIP);
    f[36..38].copy_from_slice(&80u16.to_be_bytes());
    f[46] = 0x50;
    f[47] = flags;
    f[48..50].copy_from_slice(&[0xff, 0xff]);
    f
}

/// Writes flow `i`'s client address (100.64.0.0/10 + i / 16) and port (10000 + i % 16).
#[inline]
fn set_flow(frame: &mut [u8], i: u32) {
    let a = (100u32 << 24 | 64 << 16) + (i >> 4);
    frame[26..30].copy_from_slice(&a.to_be_bytes());
    frame[34..36].copy_from_slice(&(10000 + (i & 15) as u16).to_be_bytes());
}

fn forwarder(capacity: u32) -> Forwarder {
    Forwarder::new(ForwarderConfig {
        table: ConnTableConfig {
            capacity,
            dest_capacity: 64,
            seed: Some(1),
            ..ConnTableConfig::default()
        },
        service_capacity: 4,
        ..ForwarderConfig::default()
    })
}

fn established(c: &mut Criterion) {
    let mut g = c.benchmark_group("established");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));
    for (name, mode) in [
        ("dr", FwdMode::Dr),
        ("nat", FwdMode::Nat),
        ("fullnat", FwdMode::FullNat),
    ] {
        let snap = snapshot(mode);
        for (label, flows) in [("1k", 1_000u32), ("64k", 65_536), ("1m", 1_000_000)] {
            let capacity = (flows + flows / 4).next_multiple_of(4);
            let mut f = forwarder(capacity);
            let mut buf = VecBuf::new(&[0u8; 64]);
            let syn = template(0x02);
            for i in 0..flows {
                buf.reset(&syn, VecBuf::DEFAULT_HEADROOM);
                set_flow(buf_frame(&mut buf), i);
                let v = f.process(&snap, &Flat, 0, &mut buf, 1000);
                assert!(
                    matches!(v, dataplane::fwd::Verdict::Forward { .. }),
                    "{v:?}"
                );
            }
            let ack = template(0x10);
            let mut i = 0u32;
            g.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter(|| {
                    buf.reset(&ack, VecBuf::DEFAULT_HEADROOM);
                    set_flow(buf_frame(&mut buf), i);
                    i += 1;
                    if i == flows {
                        i = 0;
                    }
                    black_box(f.process(&snap, &Flat, 0, &mut buf, 2000))
                })
            });
        }
    }
    g.finish();
}

/// The same flows as [`established`] through `Forwarder::process_burst`, 32 frames at a time as
/// the worker receives them: the burst's index and entry misses overlap (per-packet figures).
fn established_burst(c: &mut Criterion) {
    const BURST: usize = 32;
    let mut g = c.benchmark_group("established_burst");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(BURST as u64));
    for (name, mode) in [
        ("dr", FwdMode::Dr),
        ("nat", FwdMode::Nat),
        ("fullnat", FwdMode::FullNat),
    ] {
        let snap = snapshot(mode);
        for (label, flows) in [("1k", 1_000u32), ("64k", 65_536), ("1m", 1_000_000)] {
            let capacity = (flows + flows / 4).next_multiple_of(4);
            let mut f = forwarder(capacity);
            let mut bufs: Vec<VecBuf> = (0..BURST).map(|_| VecBuf::new(&[0u8; 64])).collect();
            let mut verdicts = [dataplane::fwd::Verdict::Kernel; BURST];
            let syn = template(0x02);
            for i in 0..flows {
                bufs[0].reset(&syn, VecBuf::DEFAULT_HEADROOM);
                set_flow(buf_frame(&mut bufs[0]), i);
                let v = f.process(&snap, &Flat, 0, &mut bufs[0], 1000);
                assert!(
                    matches!(v, dataplane::fwd::Verdict::Forward { .. }),
                    "{v:?}"
                );
            }
            let ack = template(0x10);
            let mut i = 0u32;
            g.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter(|| {
                    for buf in bufs.iter_mut() {
                        buf.reset(&ack, VecBuf::DEFAULT_HEADROOM);
                        set_flow(buf_frame(buf), i);
                        i += 1;
                        if i == flows {
                            i = 0;
                        }
                    }
                    f.process_burst(
                        &snap,
                        &Flat,
                        &CpuPrefetch,
                        0,
                        &mut bufs,
                        &mut verdicts,
                        2000,
                    );
                    black_box(&verdicts);
                })
            });
        }
    }
    g.finish();
}

#[inline]
fn buf_frame(b: &mut VecBuf) -> &mut [u8] {
    dataplane::buf::PacketBuf::frame_mut(b)
}

fn new_connection(c: &mut Criterion) {
    let mut g = c.benchmark_group("new_conn");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));
    for (name, mode) in [("nat", FwdMode::Nat), ("fullnat", FwdMode::FullNat)] {
        let snap = snapshot(mode);
        let mut f = forwarder(1 << 16);
        let mut buf = VecBuf::new(&[0u8; 64]);
        let syn = template(0x02);
        let mut i = 0u32;
        let mut now = 1000u64;
        // Each SYN opens a connection; it expires 60 s (60 packets) later, in SYN_RECV.
        g.bench_function(BenchmarkId::new(name, "syn+expire"), |b| {
            b.iter(|| {
                buf.reset(&syn, VecBuf::DEFAULT_HEADROOM);
                set_flow(buf_frame(&mut buf), i);
                i = (i + 1) & 0xf_ffff;
                now += 1000;
                f.expire(now, 4);
                black_box(f.process(&snap, &Flat, 0, &mut buf, now))
            })
        });
    }
    g.finish();
}

fn maglev_build(c: &mut Criterion) {
    let mut g = c.benchmark_group("maglev_build_65537");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for n in [10u32, 100] {
        let dests: Vec<Dest> = (0..n)
            .map(|i| Dest {
                id: DestId(i),
                addr: Addr::v4([10, 1, (i >> 8) as u8, i as u8]),
                port: 80,
                weight: 1 + i % 3,
            })
            .collect();
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                black_box(SchedPlan::new(
                    SchedulerKind::Mh,
                    ServiceFlags::default(),
                    dests.clone(),
                ))
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    established,
    established_burst,
    new_connection,
    maglev_build
);
criterion_main!(benches);
