//! Schedulers: pick a real server for a new connection, with IPVS semantics (ipvsadm(8) and the
//! kernel's `ip_vs_*.c`).
//!
//! The work is split by who owns what:
//! - [`SchedPlan`] is built once per configuration snapshot by the control thread (it may
//!   allocate: wrr's max weight and gcd, the 256-bucket sh/dh tables, the Maglev lookup table) and
//!   is shared read-only by every worker core.
//! - [`SchedState`] is per worker core and per service (rr/wrr cursors, the lblc/lblcr locality
//!   tables of fixed capacity); it is allocated once and mutated by [`schedule`] without
//!   allocating.
//! - [`DestLoad`] holds the per-core connection counts of each real server, indexed by [`DestId`].
//!
//! [`schedule`] never allocates, never panics and never reads a clock (time comes in
//! [`SchedInput::now_ms`]); it costs O(1) for the hash schedulers and O(number of servers) for
//! the others. Every scheduler skips a server of weight 0 (quiesced: no new connections) and a
//! server whose [`DestLoad::overloaded`] is set (IPVS's `IP_VS_DEST_F_OVERLOAD`).

mod hashing;
mod least;
mod load;
mod locality;
mod maglev;
mod plan;
mod rr;
mod state;

pub use load::{DestId, DestLoad};
pub use plan::{PlanError, SchedConfig, SchedPlan};
pub use state::SchedState;

use crate::flow::Addr;
use crate::model::{RealServer, SchedulerKind};

/// The scheduler's view of one real server of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dest {
    /// Stable slot of the server: indexes the per-core [`DestLoad`] array.
    pub id: DestId,
    /// The server's address.
    pub addr: Addr,
    /// The server's port.
    pub port: u16,
    /// Relative capacity; 0 quiesces the server.
    pub weight: u32,
}

impl Dest {
    /// The scheduler's view of a configured real server living in slot `id`.
    pub fn new(id: DestId, rs: &RealServer) -> Dest {
        Dest {
            id,
            addr: Addr::from(rs.key.addr),
            port: rs.key.port,
            weight: rs.weight,
        }
    }
}

/// What a scheduler may look at about the new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedInput {
    /// Client address (hashed by sh and mh).
    pub saddr: Addr,
    /// Client port (hashed by sh and mh with the port flag).
    pub sport: u16,
    /// Destination (virtual) address (hashed by dh, the key of lblc/lblcr).
    pub daddr: Addr,
    /// Destination port.
    pub dport: u16,
    /// Monotonic time in milliseconds (drives lblc/lblcr expiry).
    pub now_ms: u64,
}

/// Picks a server for a new connection: an index into [`SchedPlan::dests`], or `None` when no
/// server may take it.
///
/// `load` is this core's load array indexed by [`DestId`]; a slot beyond its end counts as idle.
pub fn schedule(
    state: &mut SchedState,
    plan: &SchedPlan,
    load: &[DestLoad],
    input: &SchedInput,
) -> Option<usize> {
    state.sync(plan);
    let dests = plan.dests();
    match plan.kind() {
        SchedulerKind::Rr => rr::rr(state.rr_mut(), dests, load),
        SchedulerKind::Wrr => rr::wrr(state.wrr_mut(), plan.wrr(), dests, load),
        SchedulerKind::Lc => least::lc(dests, load),
        SchedulerKind::Wlc => least::wlc(dests, load),
        SchedulerKind::Sed => least::sed(dests, load),
        SchedulerKind::Nq => least::nq(dests, load),
        SchedulerKind::Fo => least::fo(dests, load),
        SchedulerKind::Ovf => least::ovf(dests, load, plan.config().cores),
        SchedulerKind::Sh => hashing::sh(plan, load, input),
        SchedulerKind::Dh => hashing::dh(plan, load, input),
        SchedulerKind::Mh => maglev::mh(plan, load, input),
        SchedulerKind::Lblc => locality::lblc(state.locality_mut(), plan, load, input),
        SchedulerKind::Lblcr => locality::lblcr(state.locality_mut(), plan, load, input),
    }
}

/// Load of an idle server, for slots beyond the end of the load array.
const IDLE: DestLoad = DestLoad {
    active: 0,
    inactive: 0,
    persistent: 0,
    upper: 0,
    lower: 0,
    overloaded: false,
};

/// This core's load of `d`.
#[inline]
fn load_of<'a>(load: &'a [DestLoad], d: &Dest) -> &'a DestLoad {
    load.get(d.id.index()).unwrap_or(&IDLE)
}

/// True when `d` may take new connections: weight above 0 and not overloaded.
#[inline]
fn usable(d: &Dest, load: &[DestLoad]) -> bool {
    d.weight > 0 && !load_of(load, d).overloaded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServiceFlags;

    fn dests(weights: &[u32]) -> Vec<Dest> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Dest {
                id: DestId(i as u32),
                addr: Addr::v4([10, 0, 0, i as u8 + 1]),
                port: 80,
                weight: w,
            })
            .collect()
    }

    fn input(i: u32) -> SchedInput {
        let b = i.to_be_bytes();
        SchedInput {
            saddr: Addr::v4([192, b[1], b[2], b[3]]),
            sport: 1024 + (i % 50000) as u16,
            daddr: Addr::v4([172, 16, b[2], b[3]]),
            dport: 80,
            now_ms: 1000 + u64::from(i),
        }
    }

    fn plan(kind: SchedulerKind, weights: &[u32], fallback: bool) -> SchedPlan {
        let flags = ServiceFlags {
            fallback,
            ..ServiceFlags::default()
        };
        SchedPlan::new(kind, flags, dests(weights))
    }

    #[test]
    fn test_dest_from_real_server() {
        let rs = RealServer {
            key: crate::model::RealServerKey {
                addr: "192.0.2.7".parse().unwrap(),
                port: 8080,
            },
            weight: 3,
            mode: crate::model::FwdMode::Nat,
            upper_threshold: 0,
            lower_threshold: 0,
        };
        let d = Dest::new(DestId(5), &rs);
        assert_eq!(d.addr, Addr::v4([192, 0, 2, 7]));
        assert_eq!((d.id, d.port, d.weight), (DestId(5), 8080, 3));
    }

    #[test]
    fn test_empty_and_all_quiesced_give_none() {
        for kind in SchedulerKind::ALL {
            for weights in [&[][..], &[0, 0, 0][..]] {
                for fallback in [false, true] {
                    let p = plan(kind, weights, fallback);
                    let mut st = SchedState::new(&p);
                    for i in 0..50 {
                        assert_eq!(schedule(&mut st, &p, &[], &input(i)), None, "{kind}");
                    }
                }
            }
        }
    }

    #[test]
    fn test_quiesced_and_overloaded_never_picked() {
        // Server 0 is quiesced, server 1 overloaded, server 2 usable.
        let mut load = vec![DestLoad::default(); 3];
        load[1].overloaded = true;
        for kind in SchedulerKind::ALL {
            let p = plan(kind, &[0, 5, 5], true);
            let mut st = SchedState::new(&p);
            for i in 0..500 {
                let got = schedule(&mut st, &p, &load, &input(i));
                assert!(got.is_none() || got == Some(2), "{kind}: {got:?}");
                if !matches!(
                    kind,
                    SchedulerKind::Sh | SchedulerKind::Dh | SchedulerKind::Mh
                ) {
                    assert_eq!(got, Some(2), "{kind}");
                }
            }
        }
    }

    #[test]
    fn test_all_overloaded_gives_none() {
        let load = vec![
            DestLoad {
                overloaded: true,
                ..DestLoad::default()
            };
            2
        ];
        for kind in SchedulerKind::ALL {
            let p = plan(kind, &[1, 2], true);
            let mut st = SchedState::new(&p);
            for i in 0..20 {
                assert_eq!(schedule(&mut st, &p, &load, &input(i)), None, "{kind}");
            }
        }
    }

    #[test]
    fn test_every_scheduler_uses_a_usable_server() {
        let load = vec![DestLoad::default(); 3];
        for kind in SchedulerKind::ALL {
            let p = plan(kind, &[1, 2, 3], false);
            let mut st = SchedState::new(&p);
            for i in 0..100 {
                let got = schedule(&mut st, &p, &load, &input(i));
                assert!(matches!(got, Some(0..=2)), "{kind}: {got:?}");
            }
        }
    }

    #[test]
    fn test_new_plan_with_fewer_servers() {
        // Cursors left past the end of a shrunken list restart cleanly.
        for kind in [SchedulerKind::Rr, SchedulerKind::Wrr] {
            let big = plan(kind, &[3, 3, 3, 3], false);
            let mut st = SchedState::new(&big);
            for i in 0..4 {
                assert_eq!(schedule(&mut st, &big, &[], &input(i)), Some(i as usize));
            }
            let small = plan(kind, &[1, 1], false);
            let picks: Vec<_> = (0..4)
                .map(|i| schedule(&mut st, &small, &[], &input(i)).unwrap())
                .collect();
            assert_eq!(picks, [0, 1, 0, 1], "{kind}");
        }
    }
}
