//! The immutable configuration every worker reads: services with their scheduler plans and real
//! servers, FullNAT local addresses, the director's own addresses and MTU per port.
//!
//! The control thread builds a [`Snapshot`] with [`SnapshotBuilder`] (allocating freely) and
//! publishes it; workers share it read-only (`Send + Sync`). Services and real servers keep the
//! slots the control plane gives them (`svc` slot, [`DestId`]) across snapshots, so per-core
//! counters, loads and live connections stay attached to them.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::flow::{Addr, Proto};
use crate::model::{FwdMode, LocalAddr, Persistence, RealServer, Service, ServiceFlags, Timeouts};
use crate::sched::{Dest, DestId, PlanError, SchedConfig, SchedPlan};

/// MTU of a port the snapshot says nothing about.
pub const DEFAULT_MTU: u16 = 1500;

/// A small multiplicative hasher for the service and address maps (keys are not attacker-chosen
/// in a way that matters: the maps hold only configured entries, and misses cost one probe).
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.write_u64(u64::from(v));
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// What an address means to the director.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddrRole {
    /// A virtual address of at least one service.
    Vip,
    /// A FullNAT local address.
    Local,
}

/// A real server as the forwarder sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapDest {
    /// Stable slot.
    pub id: DestId,
    /// Address.
    pub addr: Addr,
    /// Port.
    pub port: u16,
    /// Forwarding mode.
    pub mode: FwdMode,
    /// Weight (0: quiesced).
    pub weight: u32,
    /// Upper connection threshold (0: none).
    pub upper: u32,
    /// Lower connection threshold (0: 3/4 of upper).
    pub lower: u32,
}

/// A virtual service compiled for the workers.
pub struct SnapService {
    /// Stable slot (indexes per-service counters; recorded in connections).
    pub slot: u32,
    /// Protocol.
    pub proto: Proto,
    /// Virtual address.
    pub vip: Addr,
    /// Virtual port (0: all ports).
    pub port: u16,
    /// Client affinity.
    pub persistence: Option<Persistence>,
    /// Flags.
    pub flags: ServiceFlags,
    /// The scheduler plan; its `dests()` are in the same order as [`SnapService::dests`].
    pub plan: SchedPlan,
    /// The real servers.
    pub dests: Box<[SnapDest]>,
}

impl SnapService {
    /// The real server in slot `id`, if still part of the service.
    #[inline]
    pub fn dest_by_id(&self, id: DestId) -> Option<&SnapDest> {
        self.dests.iter().find(|d| d.id == id)
    }
}

impl fmt::Debug for SnapService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapService")
            .field("slot", &self.slot)
            .field("proto", &self.proto)
            .field("vip", &self.vip)
            .field("port", &self.port)
            .field("dests", &self.dests.len())
            .finish()
    }
}

/// The director's view of one of its ports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortInfo {
    /// Addresses the director owns on the port (first IPv4 one: TUN outer source, ICMP source).
    pub addrs: Vec<Addr>,
    /// Largest IP packet the port sends.
    pub mtu: u16,
}

/// Why a snapshot could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotError {
    /// Two services with the same protocol, address and port.
    DuplicateService,
    /// Two services with the same slot.
    DuplicateSlot(u32),
    /// NAT/FullNAT/DR real server of another address family than its IPv6/IPv4 service.
    FamilyMismatch,
    /// The scheduler plan could not be built.
    Plan(PlanError),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateService => f.write_str("service defined twice"),
            Self::DuplicateSlot(s) => write!(f, "service slot {s} used twice"),
            Self::FamilyMismatch => {
                f.write_str("real server address family differs from the virtual address")
            }
            Self::Plan(e) => write!(f, "scheduler: {e}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// The configuration workers forward by; see the module documentation.
pub struct Snapshot {
    generation: u64,
    services: Box<[SnapService]>,
    by_key: FastMap<(Proto, Addr, u16), u32>,
    roles: FastMap<Addr, AddrRole>,
    own: FastMap<Addr, ()>,
    reply_sources: FastMap<(Proto, Addr, u16), ()>,
    local_addrs: Box<[Addr]>,
    ports: Box<[PortInfo]>,
    timeouts: Timeouts,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("generation", &self.generation)
            .field("services", &self.services)
            .field("local_addrs", &self.local_addrs)
            .field("ports", &self.ports)
            .finish()
    }
}

impl Snapshot {
    /// Unique id of this snapshot (for the workers' lazy install check).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every service, in index order.
    pub fn services(&self) -> &[SnapService] {
        &self.services
    }

    /// FullNAT local addresses.
    pub fn local_addrs(&self) -> &[Addr] {
        &self.local_addrs
    }

    /// Protocol timeouts.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// The index of the service for a packet to `vip:port`, falling back to a port-0 service.
    #[inline]
    pub fn find_service(&self, proto: Proto, vip: &Addr, port: u16) -> Option<usize> {
        self.by_key
            .get(&(proto, *vip, port))
            .or_else(|| self.by_key.get(&(proto, *vip, 0)))
            .map(|&i| i as usize)
    }

    /// The service at `idx` (from [`Snapshot::find_service`]).
    #[inline]
    pub fn service(&self, idx: usize) -> Option<&SnapService> {
        self.services.get(idx)
    }

    /// The service whose slot is `slot` (a linear scan: not for the packet path).
    pub fn service_by_slot(&self, slot: u32) -> Option<&SnapService> {
        self.services.iter().find(|s| s.slot == slot)
    }

    #[inline]
    pub(crate) fn role(&self, a: &Addr) -> Option<AddrRole> {
        if self.roles.is_empty() {
            return None;
        }
        self.roles.get(a).copied()
    }

    /// True if `addr:port` is where a NAT or FullNAT real server of some service answers from:
    /// such a packet without a connection is a reply that missed its connection.
    #[inline]
    pub fn is_reply_source(&self, proto: Proto, addr: &Addr, port: u16) -> bool {
        !self.reply_sources.is_empty() && self.reply_sources.contains_key(&(proto, *addr, port))
    }

    /// True if `a` is one of the director's own port addresses.
    #[inline]
    pub fn is_own(&self, a: &Addr) -> bool {
        !self.own.is_empty() && self.own.contains_key(a)
    }

    /// The MTU of `port`.
    #[inline]
    pub fn mtu(&self, port: u16) -> u16 {
        self.ports
            .get(usize::from(port))
            .map_or(DEFAULT_MTU, |p| p.mtu)
    }

    /// The director's first address of `a`'s family on `port`.
    #[inline]
    pub fn port_addr(&self, port: u16, v4: bool) -> Option<Addr> {
        self.ports
            .get(usize::from(port))?
            .addrs
            .iter()
            .find(|a| a.is_v4() == v4)
            .copied()
    }
}

/// Builds a [`Snapshot`] from the configuration model.
#[derive(Default)]
pub struct SnapshotBuilder {
    services: Vec<SnapService>,
    local_addrs: Vec<Addr>,
    ports: Vec<PortInfo>,
    sched: SchedConfig,
    timeouts: Timeouts,
}

impl SnapshotBuilder {
    /// An empty configuration with default scheduler tunables and timeouts.
    pub fn new() -> SnapshotBuilder {
        SnapshotBuilder::default()
    }

    /// Scheduler tunables for the services added after this call.
    pub fn sched_config(&mut self, c: SchedConfig) -> &mut Self {
        self.sched = c;
        self
    }

    /// Protocol timeouts.
    pub fn timeouts(&mut self, t: Timeouts) -> &mut Self {
        self.timeouts = t;
        self
    }

    /// Adds service `svc` in slot `slot` with its real servers and their stable slots.
    pub fn service(
        &mut self,
        slot: u32,
        svc: &Service,
        dests: &[(DestId, RealServer)],
    ) -> Result<&mut Self, SnapshotError> {
        let vip = Addr::from(svc.key.vip);
        if self.services.iter().any(|s| s.slot == slot) {
            return Err(SnapshotError::DuplicateSlot(slot));
        }
        if self
            .services
            .iter()
            .any(|s| (s.proto, s.vip, s.port) == (svc.key.proto, vip, svc.key.port))
        {
            return Err(SnapshotError::DuplicateService);
        }
        let mut snap_dests = Vec::with_capacity(dests.len());
        let mut sched_dests = Vec::with_capacity(dests.len());
        for (id, rs) in dests {
            let addr = Addr::from(rs.key.addr);
            // TUN carries IPv4 only: a v6 service with TUN servers drops at run time instead.
            if rs.mode != FwdMode::Tun && addr.is_v4() != vip.is_v4() {
                return Err(SnapshotError::FamilyMismatch);
            }
            snap_dests.push(SnapDest {
                id: *id,
                addr,
                port: rs.key.port,
                mode: rs.mode,
                weight: rs.weight,
                upper: rs.upper_threshold,
                lower: rs.lower_threshold,
            });
            sched_dests.push(Dest::new(*id, rs));
        }
        let plan = SchedPlan::with_config(svc.scheduler, svc.flags, sched_dests, self.sched)
            .map_err(SnapshotError::Plan)?;
        self.services.push(SnapService {
            slot,
            proto: svc.key.proto,
            vip,
            port: svc.key.port,
            persistence: svc.persistence,
            flags: svc.flags,
            plan,
            dests: snap_dests.into_boxed_slice(),
        });
        Ok(self)
    }

    /// Adds a FullNAT local address.
    pub fn local_addr(&mut self, l: LocalAddr) -> &mut Self {
        let a = Addr::from(l.addr);
        if !self.local_addrs.contains(&a) {
            self.local_addrs.push(a);
        }
        self
    }

    /// Describes port `port`: the director's addresses there and its MTU.
    pub fn port(&mut self, port: u16, addrs: &[IpAddr], mtu: u16) -> &mut Self {
        let i = usize::from(port);
        if self.ports.len() <= i {
            self.ports.resize(
                i + 1,
                PortInfo {
                    addrs: Vec::new(),
                    mtu: DEFAULT_MTU,
                },
            );
        }
        self.ports[i] = PortInfo {
            addrs: addrs.iter().map(|&a| Addr::from(a)).collect(),
            mtu,
        };
        self
    }

    /// The finished snapshot.
    pub fn build(self) -> Snapshot {
        let mut by_key = FastMap::default();
        let mut roles = FastMap::default();
        let mut reply_sources = FastMap::default();
        for (i, s) in self.services.iter().enumerate() {
            by_key.insert((s.proto, s.vip, s.port), i as u32);
            roles.insert(s.vip, AddrRole::Vip);
            for d in s.dests.iter() {
                if matches!(d.mode, FwdMode::Nat | FwdMode::FullNat) {
                    let port = if d.port == 0 { s.port } else { d.port };
                    reply_sources.insert((s.proto, d.addr, port), ());
                }
            }
        }
        for a in &self.local_addrs {
            roles.entry(*a).or_insert(AddrRole::Local);
        }
        let mut own = FastMap::default();
        for p in &self.ports {
            for a in &p.addrs {
                own.insert(*a, ());
            }
        }
        Snapshot {
            generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
            services: self.services.into_boxed_slice(),
            by_key,
            roles,
            own,
            reply_sources,
            local_addrs: self.local_addrs.into_boxed_slice(),
            ports: self.ports.into_boxed_slice(),
            timeouts: self.timeouts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RealServerKey, SchedulerKind, ServiceKey};

    fn svc(vip: &str, port: u16) -> Service {
        Service {
            key: ServiceKey {
                proto: Proto::Tcp,
                vip: vip.parse().unwrap(),
                port,
            },
            scheduler: SchedulerKind::Rr,
            persistence: None,
            flags: ServiceFlags::default(),
        }
    }

    fn rs(addr: &str, mode: FwdMode) -> RealServer {
        RealServer {
            key: RealServerKey {
                addr: addr.parse().unwrap(),
                port: 80,
            },
            weight: 1,
            mode,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn test_lookup_and_roles() {
        assert_send_sync::<Snapshot>();
        let mut b = SnapshotBuilder::new();
        b.service(
            7,
            &svc("10.0.0.1", 80),
            &[(DestId(3), rs("10.1.0.1", FwdMode::Nat))],
        )
        .unwrap();
        b.service(9, &svc("10.0.0.2", 0), &[]).unwrap();
        b.local_addr(LocalAddr {
            addr: "10.2.0.1".parse().unwrap(),
        });
        b.port(1, &["10.9.0.1".parse().unwrap()], 9000);
        let s = b.build();
        let vip = Addr::v4([10, 0, 0, 1]);
        assert_eq!(s.find_service(Proto::Tcp, &vip, 80), Some(0));
        assert_eq!(s.find_service(Proto::Tcp, &vip, 81), None);
        assert_eq!(s.find_service(Proto::Udp, &vip, 80), None);
        assert_eq!(
            s.find_service(Proto::Tcp, &Addr::v4([10, 0, 0, 2]), 4242),
            Some(1)
        );
        assert_eq!(s.service(0).unwrap().slot, 7);
        assert_eq!(
            s.service(0).unwrap().dest_by_id(DestId(3)).unwrap().port,
            80
        );
        assert_eq!(s.role(&vip), Some(AddrRole::Vip));
        assert_eq!(s.role(&Addr::v4([10, 2, 0, 1])), Some(AddrRole::Local));
        assert_eq!(s.role(&Addr::v4([10, 9, 0, 1])), None);
        assert!(s.is_own(&Addr::v4([10, 9, 0, 1])));
        assert_eq!(
            (s.mtu(1), s.mtu(0), s.mtu(5)),
            (9000, DEFAULT_MTU, DEFAULT_MTU)
        );
        assert_eq!(s.port_addr(1, true), Some(Addr::v4([10, 9, 0, 1])));
        assert_eq!(s.port_addr(1, false), None);
    }

    #[test]
    fn test_builder_errors() {
        let mut b = SnapshotBuilder::new();
        b.service(1, &svc("10.0.0.1", 80), &[]).unwrap();
        assert_eq!(
            b.service(1, &svc("10.0.0.3", 80), &[]).err(),
            Some(SnapshotError::DuplicateSlot(1))
        );
        assert_eq!(
            b.service(2, &svc("10.0.0.1", 80), &[]).err(),
            Some(SnapshotError::DuplicateService)
        );
        assert_eq!(
            b.service(
                3,
                &svc("2001:db8::1", 80),
                &[(DestId(0), rs("10.1.0.1", FwdMode::Nat))]
            )
            .err(),
            Some(SnapshotError::FamilyMismatch)
        );
        // TUN to a v6 service is accepted here and dropped per packet.
        assert!(b
            .service(
                4,
                &svc("2001:db8::1", 80),
                &[(DestId(0), rs("10.1.0.1", FwdMode::Tun))]
            )
            .is_ok());
    }
}
