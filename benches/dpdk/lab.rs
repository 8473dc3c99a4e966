//! The virtual lab every measurement runs on, the same for `ironvs` and `dpdk-testpmd`:
//!
//! ```text
//!   port 0 "syn"  net_pcap, rx_pcap = one SYN per flow (read once)      tx: dropped
//!   port 1 "load" net_pcap, rx_pcap = the measured packets, infinite_rx  tx: dropped
//!   port 2 "sink" net_null, no-rx                                        tx: counted, freed
//! ```
//!
//! The SYN pass creates every connection before the measured window; the load port then replays
//! established-flow packets (client ACKs, or for the reply direction the real server's ACKs)
//! whose forwarded copies all leave through the sink. Addresses: VIP 192.0.2.100:80, real server
//! 10.0.0.11 (port 80 for DR/TUN, 8080 for NAT/FullNAT), FullNAT local addresses 10.0.1.x, clients
//! 100.64.0.0/10 behind the default gateway 10.0.0.254; both of them static neighbours on "sink".

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use dataplane::flow::Addr;
use dataplane::fwd::{LocalPorts, PortRange};

use crate::pcap::{self, Segment, ACK, SYN};

/// The virtual IP.
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// The real server.
pub const RS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
/// Local ports per local address (FullNAT's default range 1024..=65535).
const PORTS_PER_LIP: u32 = 65535 - 1024 + 1;
/// Bytes one mbuf takes in the pool: with `--no-huge` the pages are 4 KiB and a mempool object
/// (2176 data room + 128 header + pool header) may not cross a page, so one page each.
const MBUF_BYTES: u64 = 4096;
/// The same on huge pages, where objects pack (2176 + 128 + the pool's header, rounded up).
const MBUF_BYTES_HUGE: u64 = 2560;

/// Forwarding mode under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Direct routing.
    Dr,
    /// IP-in-IP tunnel.
    Tun,
    /// Destination NAT.
    Nat,
    /// Full NAT (SNAT + DNAT).
    FullNat,
}

impl Mode {
    /// Name in the configuration and the table.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Dr => "dr",
            Mode::Tun => "tun",
            Mode::Nat => "nat",
            Mode::FullNat => "fullnat",
        }
    }

    fn rport(self) -> u16 {
        match self {
            Mode::Dr | Mode::Tun => 80,
            Mode::Nat | Mode::FullNat => 8080,
        }
    }
}

/// What the load port replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Client → VIP ACKs of established flows.
    Forward,
    /// Real server → client (NAT) or → local address (FullNAT) ACKs.
    Reply,
    /// A SYN of a new tuple per packet (connection set-up rate); no SYN pass.
    NewConns,
}

/// Where both programs' EAL memory (mbufs, rings) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EalMemory {
    /// `--no-huge`: anonymous 4 KiB pages; needs nothing from the host.
    Small,
    /// `--in-memory` on 2 MiB huge pages the host has reserved (`vm.nr_hugepages`; the bench
    /// never changes it): no hugetlbfs mount and no files left behind.
    Huge,
}

impl EalMemory {
    /// The EAL arguments for `mb` MiB of memory.
    pub fn args(self, mb: u64) -> [String; 3] {
        let mode = match self {
            EalMemory::Small => "--no-huge",
            EalMemory::Huge => "--in-memory",
        };
        [mode.into(), "-m".into(), mb.to_string()]
    }
}

/// One measured configuration.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Forwarding mode.
    pub mode: Mode,
    /// Flows (= connections; for `NewConns` the distinct SYN tuples).
    pub flows: u32,
    /// What is replayed.
    pub load: Load,
    /// EAL memory of both programs.
    pub memory: EalMemory,
    /// The order the replayed packets visit the flows in.
    pub order: Order,
}

/// The order of the flows in a replayed pcap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The order the SYNs opened them: consecutive packets use neighbouring connection entries
    /// (the table allocates slots in order), which share cache lines and which the hardware
    /// prefetchers follow.
    Opened,
    /// A fixed random permutation (the same in every run): each packet's entry is anywhere in
    /// the table, as with real traffic.
    Random,
}

impl Order {
    /// The flow the `i`-th packet of `flows` carries.
    fn permutation(self, flows: u32) -> Vec<u32> {
        let mut v: Vec<u32> = (0..flows).collect();
        if self == Order::Random {
            // Fisher-Yates with a fixed xorshift64 stream: the same permutation in every run.
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            for i in (1..v.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.swap(i, (x % (i as u64 + 1)) as usize);
            }
        }
        v
    }

    /// How pcap file names tell the orders apart.
    fn tag(self) -> &'static str {
        match self {
            Order::Opened => "",
            Order::Random => "random-",
        }
    }
}

impl Case {
    /// Local addresses FullNAT needs for `flows` connections (one spare).
    pub fn laddrs(&self) -> Vec<Ipv4Addr> {
        if self.mode != Mode::FullNat {
            return Vec::new();
        }
        let n = self.flows.div_ceil(PORTS_PER_LIP) + 1;
        (1..=n)
            .map(|i| Ipv4Addr::new(10, 0, 1 + (i >> 8) as u8, i as u8))
            .collect()
    }

    /// SYNs in the SYN pass.
    pub fn syns(&self) -> u32 {
        if self.load == Load::NewConns {
            0
        } else {
            self.flows
        }
    }

    /// Packets the load pcap holds (all preloaded into mbufs by `infinite_rx`).
    pub fn load_packets(&self) -> u32 {
        self.flows
    }

    /// Mbufs for the pool: the preloaded packets plus room for rings and caches.
    pub fn mbufs(&self) -> u32 {
        self.load_packets() + 32 * 1024 - 1
    }

    /// EAL `-m` in MiB for that pool (the same for both programs).
    pub fn mem_mb(&self) -> u64 {
        let per_mbuf = match self.memory {
            EalMemory::Small => MBUF_BYTES,
            EalMemory::Huge => MBUF_BYTES_HUGE,
        };
        u64::from(self.mbufs()) * per_mbuf / (1 << 20) + 1024
    }
}

/// The files of one case.
pub struct Files {
    /// The SYN pass (may be empty).
    pub syn: PathBuf,
    /// The replayed packets.
    pub load: PathBuf,
}

fn syn_segment(i: u32) -> Segment {
    let (c, cport) = pcap::client(i);
    Segment {
        src: c,
        dst: VIP,
        sport: cport,
        dport: 80,
        flags: SYN,
        seq: i.wrapping_mul(7919),
        ack: 0,
    }
}

/// Writes the pcaps of `case` into `dir` (named by their content, reused when present).
pub fn write_pcaps(dir: &Path, case: &Case) -> std::io::Result<Files> {
    let syn = dir.join(format!("syn-{}.pcap", case.syns()));
    if !syn.exists() {
        pcap::write(&syn, case.syns(), |i| {
            pcap::frame(&syn_segment(i), true, i as u16)
        })?;
    }
    let o = case.order.tag();
    let name = match case.load {
        Load::Forward => format!("ack-{o}{}.pcap", case.flows),
        Load::NewConns => format!("newsyn-{}.pcap", case.flows),
        Load::Reply => format!("reply-{o}{}-{}.pcap", case.mode.name(), case.flows),
    };
    let load = dir.join(name);
    if load.exists() {
        return Ok(Files { syn, load });
    }
    let flow = case.order.permutation(case.flows);
    match case.load {
        Load::Forward => pcap::write(&load, case.flows, |i| {
            let i = flow[i as usize];
            let s = syn_segment(i);
            let ack = Segment {
                flags: ACK,
                seq: s.seq.wrapping_add(1),
                ack: 1,
                ..s
            };
            pcap::frame(&ack, true, i as u16)
        })?,
        Load::NewConns => pcap::write(&load, case.flows, |i| {
            pcap::frame(&syn_segment(i), true, i as u16)
        })?,
        Load::Reply => {
            let dsts = reply_destinations(case);
            pcap::write(&load, case.flows, |i| {
                let i = flow[i as usize];
                let (dst, dport) = dsts[i as usize];
                let s = Segment {
                    src: RS,
                    dst,
                    sport: case.mode.rport(),
                    dport,
                    flags: ACK,
                    seq: 1,
                    ack: syn_segment(i).seq.wrapping_add(1),
                };
                pcap::frame(&s, false, i as u16)
            })?
        }
    }
    Ok(Files { syn, load })
}

/// Where the real server's answer of flow `i` goes: the client (NAT) or the local address and
/// port the director chose (FullNAT). One worker allocates local ports without RSS, in SYN
/// order, from the sorted local addresses: the same allocator, run here, predicts its choice
/// (and the daemon's `reply_miss` counter would show a wrong prediction).
fn reply_destinations(case: &Case) -> Vec<(Ipv4Addr, u16)> {
    if case.mode != Mode::FullNat {
        return (0..case.flows).map(pcap::client).collect();
    }
    let mut lports = LocalPorts::new(PortRange::default(), None);
    let mut laddrs = case.laddrs();
    laddrs.sort();
    let addrs: Vec<Addr> = laddrs.iter().map(|a| Addr::v4(a.octets())).collect();
    lports.set_addrs(&addrs);
    let rs = Addr::v4(RS.octets());
    (0..case.flows)
        .map(|_| {
            let (a, p) = lports
                .alloc(&rs, case.mode.rport(), |_, _| false)
                .expect("enough local ports for the flows");
            (Ipv4Addr::from(a.v4_octets()), p)
        })
        .collect()
}

/// The vdev arguments of the three ports.
pub fn vdevs(files: &Files) -> [String; 3] {
    [
        format!("net_pcap0,rx_pcap={}", files.syn.display()),
        format!("net_pcap1,rx_pcap={},infinite_rx=1", files.load.display()),
        "net_null0,no-rx=1".to_string(),
    ]
}

/// The data ports' indices, in the order [`vdevs`] lists them and [`ironvs_config`] names them
/// (the ceiling run joins the load port to the sink).
pub const LOAD_PORT: usize = 1;
pub const SINK_PORT: usize = 2;

/// The daemon's configuration for `case`.
pub fn ironvs_config(case: &Case, files: &Files, prefix: &str, api: SocketAddr) -> String {
    let [syn, load, sink] = vdevs(files);
    let mut c = String::new();
    let capacity = (2 * case.flows).max(1 << 20);
    let _ = write!(
        c,
        r#"[eal]
file_prefix = "{prefix}"
args = [{eal}]

[cpu]
main_cpu = 0
workers = 1
worker_cpus = [1]

[mempool]
mbufs = {mbufs}
cache = 256

[dataplane]
max_connections = {capacity}

[api]
listen = "{api}"

[[port]]
name = "syn"
device = "{syn}"
addresses = ["192.0.2.1/24"]

[[port]]
name = "load"
device = "{load}"
addresses = ["198.51.100.1/24"]

[[port]]
name = "sink"
device = "{sink}"
addresses = ["10.0.0.1/16"]

[[route]]
prefix = "0.0.0.0/0"
via = "10.0.0.254"

[[neighbour]]
port = "sink"
address = "{RS}"
mac = "02:00:00:00:00:0b"

[[neighbour]]
port = "sink"
address = "10.0.0.254"
mac = "02:00:00:00:00:fe"

[[service]]
proto = "tcp"
vip = "{VIP}"
port = 80
scheduler = "rr"

[[service.real_server]]
address = "{RS}"
port = {rport}
mode = "{mode}"
"#,
        eal = case
            .memory
            .args(case.mem_mb())
            .map(|a| format!("{a:?}"))
            .join(", "),
        mbufs = case.mbufs(),
        rport = case.mode.rport(),
        mode = case.mode.name(),
    );
    let laddrs = case.laddrs();
    if !laddrs.is_empty() {
        let list: Vec<String> = laddrs.iter().map(|a| format!("\"{a}\"")).collect();
        let _ = write!(c, "\n[fullnat]\nlocal_addresses = [{}]\n", list.join(", "));
    }
    c
}
