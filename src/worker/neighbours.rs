//! The worker's neighbour side: frames waiting for ARP/NDP, the exception path to the kernel
//! interface, learning and sharing neighbours, and the gratuitous announcements of its addresses.

use dataplane::flow::Addr;
use dataplane::host::{self, HostVerdict};
use dataplane::neigh::{self, Lookup, NeighCache, NeighConfig};
use dataplane::wire::MacAddr;
use dpdk_bindings::{Mbuf, QueueId};

use super::tx::{push_or_flush, set_macs};
use super::{Bursts, Worker, WorkerDrop};
use crate::mailbox::Learned;
use crate::state::Published;

/// Frames one unresolved neighbour may hold while ARP/NDP asks (the oldest go first beyond it),
/// within the worker's `max_held_packets`. Linux holds ~100 per address (`unres_qlen`); four,
/// the data plane's default, dropped 28 of the 32 SYN-ACKs a cold FullNAT director received at
/// once in the peers bench, each a client retransmission a second later.
pub const HOLD_PER_NEIGHBOUR: usize = 64;

/// A worker's neighbour cache.
pub type Neighbours = NeighCache<Mbuf, HOLD_PER_NEIGHBOUR>;

/// A worker's neighbour cache with settings `cfg`, holding the configured static neighbours
/// (port index, IP, MAC).
pub fn neigh_cache(cfg: NeighConfig, statics: &[(u16, Addr, MacAddr)]) -> Neighbours {
    let mut cache = NeighCache::new(cfg);
    for &(port, ip, mac) in statics {
        if let Err(e) = cache.add_static(port, ip, mac) {
            log::warn!("static neighbour {ip:?} on port {port} not added: {e:?}");
        }
    }
    cache
}

impl Worker {
    /// The next hop's MAC is not known yet: send if the cache knows it now, else hold the frame
    /// while ARP/NDP asks.
    pub(super) fn resolve(
        &mut self,
        snap: &Published,
        port: u16,
        next_hop: Addr,
        m: Mbuf,
        b: &mut Bursts,
        now: u64,
    ) {
        let src = snap
            .routes
            .lookup(&next_hop)
            .map(|h| h.src)
            .or_else(|| snap.fwd.port_addr(port, next_hop.is_v4()))
            .unwrap_or(Addr::UNSPECIFIED);
        match self.neigh.resolve(port, next_hop, src, now) {
            Lookup::Known(mac) => {
                let mut m = m;
                set_macs(&mut m, mac, snap.macs[usize::from(port)]);
                self.tx(usize::from(port), m, b);
            }
            Lookup::Pending => {
                if self.neigh.hold(port, &next_hop, m).is_err() {
                    self.counters.count_drop(WorkerDrop::HoldFull);
                }
            }
            Lookup::Full => self.counters.count_drop(WorkerDrop::NeighFull),
        }
    }

    /// Not load-balanced: answer it as a host, learn neighbours from it, or give it to the kernel.
    pub(super) fn local(
        &mut self,
        snap: &Published,
        pi: usize,
        mut m: Mbuf,
        b: &mut Bursts,
        now: u64,
    ) {
        let learned = neigh::observe_frame(m.data());
        if let Some((ip, mac)) = learned {
            self.learn(snap, pi as u16, ip, mac, b, now);
            self.share_learned(Learned {
                port: pi as u16,
                ip,
                mac,
            });
        }
        let Some(host) = snap.hosts.get(pi) else {
            return;
        };
        match host::handle(&mut m, host) {
            HostVerdict::Reply => {
                self.counters.host_replies.inc();
                self.tx(pi, m, b);
            }
            HostVerdict::Malformed => self.counters.count_drop(WorkerDrop::Malformed),
            // A neighbour's ARP reply or advertisement was for us: learned above, and the kernel
            // (if any) resolves its own neighbours too.
            HostVerdict::NotForHost if learned.is_some() && self.ports[pi].kernel.is_none() => {}
            HostVerdict::NotForHost => {
                if self.ports[pi].kernel.is_some() {
                    self.counters.to_kernel.inc();
                    let out = self.ports[pi].kernel_egress(QueueId(self.index));
                    push_or_flush(&mut b.kernel[pi], m, out, &self.counters);
                } else {
                    self.counters.count_drop(WorkerDrop::NoKernelPath);
                    if log::log_enabled!(log::Level::Debug) {
                        log::debug!(
                            "worker {}: no kernel path on port {pi}: {}",
                            self.index,
                            describe(m.data())
                        );
                    }
                }
            }
        }
    }

    /// Records a neighbour and sends what was waiting for it.
    pub(super) fn learn(
        &mut self,
        snap: &Published,
        port: u16,
        ip: Addr,
        mac: MacAddr,
        b: &mut Bursts,
        now: u64,
    ) {
        let our = snap.macs[usize::from(port)];
        let Some(wp) = self.ports.get(usize::from(port)) else {
            return;
        };
        let q = QueueId(self.index);
        for mut m in self.neigh.learn(port, &ip, mac, now) {
            set_macs(&mut m, mac, our);
            push_or_flush(
                &mut b.tx[usize::from(port)],
                m,
                Some(wp.egress(q)),
                &self.counters,
            );
        }
    }

    pub(super) fn share_learned(&self, l: Learned) {
        for (i, mb) in self.mailboxes.iter().enumerate() {
            if i != usize::from(self.index) {
                let _ = mb.learned.push(l);
            }
        }
    }

    /// Starts resolving every real server's next hop as soon as a configuration names it, so the
    /// first connections do not wait for ARP/NDP (nor overflow the hold queues).
    pub(super) fn warm_neighbours(&mut self, snap: &Published, now: u64) {
        for s in snap.fwd.services() {
            for d in s.dests.iter() {
                if let Some(hit) = snap.routes.lookup(&d.addr) {
                    let _ = self.neigh.resolve(hit.port, hit.next_hop, hit.src, now);
                }
            }
        }
    }

    /// Gratuitous ARP / unsolicited NA for the port addresses, VIPs and local addresses.
    pub(super) fn announce(&mut self, snap: &Published, b: &mut Bursts) {
        for (pi, host) in snap.hosts.iter().enumerate() {
            let mac = snap.macs[pi];
            for (a, _) in host.addrs() {
                let len = if a.is_v4() {
                    neigh::emit::ARP_FRAME_LEN
                } else {
                    neigh::emit::NA_FRAME_LEN
                };
                if let Some(m) = self.emit(len, |out| neigh::emit::announce(out, mac, &a)) {
                    self.counters.announcements.inc();
                    self.tx(pi, m, b);
                }
            }
        }
    }

    /// A fresh mbuf holding a frame `write` builds.
    pub(super) fn emit(
        &self,
        len: usize,
        write: impl FnOnce(&mut [u8]) -> Result<usize, dataplane::wire::EmitError>,
    ) -> Option<Mbuf> {
        let Ok(mut m) = self.pool.alloc() else {
            self.counters.count_drop(WorkerDrop::NoMbuf);
            return None;
        };
        neigh::emit::into_buf(&mut m, len, write).ok()?;
        Some(m)
    }
}

/// A one-line account of a frame for debug logs: its Ethernet destination and type and, when it
/// parses, its addresses, protocol and ports (ICMP: type and code).
fn describe(frame: &[u8]) -> String {
    let dst = frame
        .get(..6)
        .map(|d| MacAddr(d.try_into().unwrap_or_default()).to_string())
        .unwrap_or_else(|| "?".into());
    match dataplane::wire::parse_frame(frame) {
        Ok(pf) => format!(
            "to {dst}, ethertype {:#06x}, {} -> {}, protocol {}, ports {} -> {}, icmp {}/{}",
            pf.ethertype, pf.src, pf.dst, pf.proto, pf.sport, pf.dport, pf.icmp_type, pf.icmp_code
        ),
        Err(e) => format!("to {dst}, {} bytes, not parsed ({e:?})", frame.len()),
    }
}
