//! The mutable, per-core half of a scheduler: round-robin cursors and locality tables.
//!
//! One state per worker core and service, allocated off the packet path by [`SchedState::new`]
//! or [`SchedState::prepare`]; [`schedule`](super::schedule) mutates it without allocating. When
//! it meets a plan of another generation it adjusts its cursors the way IPVS's `dest_changed`
//! hooks do; locality entries name servers by [`DestId`](super::DestId) and are re-resolved
//! lazily, so they survive configuration changes.

use super::locality::LocalityTable;
use super::plan::{SchedConfig, SchedPlan};
use super::rr::{RrCursor, WrrCursor};
use crate::model::SchedulerKind;

/// Per-core scheduling state of one service.
#[derive(Debug)]
pub struct SchedState {
    generation: u64,
    rr: RrCursor,
    wrr: WrrCursor,
    locality: Option<LocalityTable>,
}

impl SchedState {
    /// A state ready for `plan` (allocates the locality table of lblc/lblcr).
    pub fn new(plan: &SchedPlan) -> SchedState {
        let mut st = SchedState {
            generation: plan.generation(),
            rr: RrCursor::default(),
            wrr: WrrCursor::new(plan.wrr()),
            locality: None,
        };
        st.prepare(plan);
        st
    }

    /// Makes the state ready for a newly published `plan`; call it off the packet path. It
    /// allocates only when the plan needs a locality table this state lacks (the scheduler
    /// changed to lblc/lblcr, or the capacity changed); without one, lblc and lblcr degrade to
    /// wlc rather than allocate while scheduling.
    pub fn prepare(&mut self, plan: &SchedPlan) {
        self.sync(plan);
        let set_max = match plan.kind() {
            SchedulerKind::Lblc => 1,
            SchedulerKind::Lblcr => SchedConfig::LBLCR_SET_MAX,
            _ => {
                self.locality = None;
                return;
            }
        };
        let capacity = plan.config().locality_capacity as usize;
        let fits = self
            .locality
            .as_ref()
            .is_some_and(|t| t.fits(capacity, set_max));
        if !fits {
            self.locality = Some(LocalityTable::new(capacity, set_max));
        }
    }

    /// Adjusts the cursors to a plan of another generation (no allocation).
    pub(super) fn sync(&mut self, plan: &SchedPlan) {
        if self.generation != plan.generation() {
            self.generation = plan.generation();
            self.rr.resync(plan.dests().len());
            self.wrr.resync(plan.wrr());
        }
    }

    pub(super) fn rr_mut(&mut self) -> &mut RrCursor {
        &mut self.rr
    }

    pub(super) fn wrr_mut(&mut self) -> &mut WrrCursor {
        &mut self.wrr
    }

    pub(super) fn locality_mut(&mut self) -> Option<&mut LocalityTable> {
        self.locality.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Addr;
    use crate::model::ServiceFlags;
    use crate::sched::{schedule, Dest, DestId, DestLoad, SchedInput};

    fn plan(kind: SchedulerKind) -> SchedPlan {
        let dests = (0..3)
            .map(|i| Dest {
                id: DestId(i),
                addr: Addr::v4([10, 0, 0, i as u8]),
                port: 80,
                weight: 1,
            })
            .collect();
        SchedPlan::new(kind, ServiceFlags::default(), dests)
    }

    #[test]
    fn test_prepare_allocates_only_for_locality() {
        let mut st = SchedState::new(&plan(SchedulerKind::Wlc));
        assert!(st.locality.is_none());
        let lblc = plan(SchedulerKind::Lblc);
        st.prepare(&lblc);
        assert!(st.locality.as_ref().unwrap().fits(16384, 1));
        st.prepare(&plan(SchedulerKind::Lblcr));
        assert!(st
            .locality
            .as_ref()
            .unwrap()
            .fits(16384, SchedConfig::LBLCR_SET_MAX));
        st.prepare(&plan(SchedulerKind::Rr));
        assert!(st.locality.is_none());
    }

    #[test]
    fn test_lblc_without_table_degrades_to_wlc() {
        let wlc = plan(SchedulerKind::Wlc);
        let lblc = plan(SchedulerKind::Lblc);
        let mut st = SchedState::new(&wlc);
        let mut load = vec![DestLoad::default(); 3];
        load[0].active = 2;
        load[1].active = 1;
        load[2].active = 3;
        let input = SchedInput {
            saddr: Addr::v4([1, 1, 1, 1]),
            sport: 1,
            daddr: Addr::v4([2, 2, 2, 2]),
            dport: 80,
            now_ms: 0,
        };
        // Not prepared for lblc: no table, plain weighted least connection.
        assert_eq!(schedule(&mut st, &lblc, &load, &input), Some(1));
        assert!(st.locality.is_none());
    }
}
