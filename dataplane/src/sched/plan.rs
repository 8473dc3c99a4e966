//! The immutable, per-snapshot half of a scheduler: the servers and every table derived from them.
//!
//! A plan is built by the control thread whenever a service or its servers change (building may
//! allocate and, for Maglev, costs O(table size × log)); workers share it read-only. Each plan
//! carries a unique generation so that a worker's [`SchedState`](super::SchedState) notices a new
//! plan and adjusts its cursors, as IPVS's `dest_changed` hooks do.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{hashing, maglev, rr, Dest};
use crate::model::{SchedulerKind, ServiceFlags};

/// Tunables of the schedulers; the defaults follow IPVS where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedConfig {
    /// mh: size of the Maglev lookup table, a prime larger than the number of servers. Bigger
    /// tables follow weights more closely and move fewer keys on a change; IPVS compiles in 4093
    /// (`CONFIG_IP_VS_MH_TAB_INDEX`), the Maglev paper uses 65537.
    pub mh_table_size: u32,
    /// lblc/lblcr: destination entries each core's locality table holds (IPVS lets its table
    /// grow past 16384 entries before collecting idle ones; ours is fixed and evicts the least
    /// recently used entry of a full bucket).
    pub locality_capacity: u32,
    /// lblc/lblcr: an entry unused this long is forgotten, and an lblcr server set unchanged this
    /// long drops its most loaded member (sysctl `lblc_expiration`/`lblcr_expiration`, 24 h).
    pub locality_expiration_ms: u64,
    /// Worker cores sharing the service. Connection counts are per core, so the comparisons of
    /// active connections with a weight (ovf, lblc/lblcr's overload rule) scale the core's
    /// count by this to estimate the service-wide count, assuming RSS spreads clients evenly.
    pub cores: u32,
}

impl SchedConfig {
    /// Maximum number of servers in one lblcr replication set.
    pub const LBLCR_SET_MAX: usize = 8;
}

impl Default for SchedConfig {
    fn default() -> Self {
        SchedConfig {
            mh_table_size: 65537,
            locality_capacity: 16384,
            locality_expiration_ms: 24 * 60 * 60 * 1000,
            cores: 1,
        }
    }
}

/// Why a plan could not be built from a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanError {
    /// The Maglev table size is not a prime.
    TableSizeNotPrime(u32),
    /// Maglev needs more table entries than servers.
    TooManyDests {
        /// Servers in the service.
        dests: usize,
        /// The configured table size.
        table_size: u32,
    },
    /// A locality table needs room for at least one entry, and `cores` must be at least 1.
    ZeroSize,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::TableSizeNotPrime(n) => {
                write!(f, "mh table size {n} is not a prime; use e.g. 4093 or 65537")
            }
            PlanError::TooManyDests { dests, table_size } => write!(
                f,
                "{dests} real servers do not fit an mh table of {table_size} entries; raise the table size"
            ),
            PlanError::ZeroSize => f.write_str("locality capacity and core count must be at least 1"),
        }
    }
}

impl std::error::Error for PlanError {}

/// Source of plan generations: unique for the life of the process.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// Everything a scheduler needs that changes only with the configuration.
pub struct SchedPlan {
    kind: SchedulerKind,
    flags: ServiceFlags,
    config: SchedConfig,
    dests: Box<[Dest]>,
    generation: u64,
    wrr: rr::WrrPlan,
    /// sh/dh: 256 buckets of server indexes; empty for other schedulers.
    buckets: Box<[u32]>,
    /// mh: the Maglev lookup table of server indexes; empty for other schedulers.
    maglev: Box<[u32]>,
}

impl SchedPlan {
    /// A plan with the default configuration (which always builds).
    ///
    /// With more servers than the default Maglev table holds (far beyond what ipvsadm allows),
    /// an mh plan keeps an empty table and schedules nothing; [`SchedPlan::with_config`] reports
    /// that case as an error instead.
    pub fn new(kind: SchedulerKind, flags: ServiceFlags, dests: Vec<Dest>) -> SchedPlan {
        let config = SchedConfig::default();
        let size = config.mh_table_size;
        let maglev = if kind == SchedulerKind::Mh && dests.len() < size as usize {
            maglev::build(&dests, size)
        } else {
            Box::new([])
        };
        Self::assemble(kind, flags, dests, config, maglev)
    }

    /// A plan with explicit tunables.
    pub fn with_config(
        kind: SchedulerKind,
        flags: ServiceFlags,
        dests: Vec<Dest>,
        config: SchedConfig,
    ) -> Result<SchedPlan, PlanError> {
        if config.locality_capacity == 0 || config.cores == 0 {
            return Err(PlanError::ZeroSize);
        }
        let maglev = if kind == SchedulerKind::Mh {
            if !maglev::is_prime(config.mh_table_size) {
                return Err(PlanError::TableSizeNotPrime(config.mh_table_size));
            }
            if dests.len() >= config.mh_table_size as usize {
                return Err(PlanError::TooManyDests {
                    dests: dests.len(),
                    table_size: config.mh_table_size,
                });
            }
            maglev::build(&dests, config.mh_table_size)
        } else {
            Box::new([])
        };
        Ok(Self::assemble(kind, flags, dests, config, maglev))
    }

    fn assemble(
        kind: SchedulerKind,
        flags: ServiceFlags,
        dests: Vec<Dest>,
        config: SchedConfig,
        maglev: Box<[u32]>,
    ) -> SchedPlan {
        let buckets = match kind {
            SchedulerKind::Sh => hashing::sh_table(&dests),
            SchedulerKind::Dh => hashing::dh_table(&dests),
            _ => Box::new([]),
        };
        SchedPlan {
            kind,
            flags,
            config,
            wrr: rr::WrrPlan::new(&dests),
            dests: dests.into_boxed_slice(),
            generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
            buckets,
            maglev,
        }
    }

    /// The scheduling algorithm.
    pub fn kind(&self) -> SchedulerKind {
        self.kind
    }

    /// The service's scheduler flags.
    pub fn flags(&self) -> ServiceFlags {
        self.flags
    }

    /// The tunables the plan was built with.
    pub fn config(&self) -> &SchedConfig {
        &self.config
    }

    /// The servers, in the order [`schedule`](super::schedule) indexes them.
    pub fn dests(&self) -> &[Dest] {
        &self.dests
    }

    /// Unique id of this plan.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Share of the mh lookup table owned by each server, in entries (for display and tests).
    pub fn mh_shares(&self) -> Vec<u32> {
        let mut shares = vec![0; self.dests.len()];
        for &i in self.maglev.iter() {
            if let Some(s) = shares.get_mut(i as usize) {
                *s += 1;
            }
        }
        shares
    }

    pub(super) fn wrr(&self) -> &rr::WrrPlan {
        &self.wrr
    }

    pub(super) fn buckets(&self) -> &[u32] {
        &self.buckets
    }

    pub(super) fn maglev(&self) -> &[u32] {
        &self.maglev
    }
}

impl fmt::Debug for SchedPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The tables are summarised: a Maglev table has tens of thousands of entries.
        f.debug_struct("SchedPlan")
            .field("kind", &self.kind)
            .field("flags", &self.flags)
            .field("generation", &self.generation)
            .field("dests", &self.dests)
            .field("buckets", &self.buckets.len())
            .field("maglev", &self.maglev.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Addr;
    use crate::sched::DestId;

    fn dests(n: usize) -> Vec<Dest> {
        (0..n)
            .map(|i| Dest {
                id: DestId(i as u32),
                addr: Addr::v4([10, 0, 0, i as u8]),
                port: 80,
                weight: 1,
            })
            .collect()
    }

    #[test]
    fn test_generations_are_unique() {
        let a = SchedPlan::new(SchedulerKind::Rr, ServiceFlags::default(), dests(2));
        let b = SchedPlan::new(SchedulerKind::Rr, ServiceFlags::default(), dests(2));
        assert_ne!(a.generation(), b.generation());
    }

    #[test]
    fn test_config_errors() {
        let cfg = SchedConfig {
            mh_table_size: 65536,
            ..SchedConfig::default()
        };
        let err = SchedPlan::with_config(SchedulerKind::Mh, ServiceFlags::default(), dests(2), cfg)
            .unwrap_err();
        assert_eq!(err, PlanError::TableSizeNotPrime(65536));
        assert!(err.to_string().contains("not a prime"));
        let cfg = SchedConfig {
            mh_table_size: 7,
            ..SchedConfig::default()
        };
        let err = SchedPlan::with_config(SchedulerKind::Mh, ServiceFlags::default(), dests(7), cfg)
            .unwrap_err();
        assert_eq!(
            err,
            PlanError::TooManyDests {
                dests: 7,
                table_size: 7
            }
        );
        let cfg = SchedConfig {
            cores: 0,
            ..SchedConfig::default()
        };
        let err =
            SchedPlan::with_config(SchedulerKind::Ovf, ServiceFlags::default(), dests(1), cfg)
                .unwrap_err();
        assert_eq!(err, PlanError::ZeroSize);
        // The same small table is fine for a scheduler that does not use it.
        let cfg = SchedConfig {
            mh_table_size: 7,
            ..SchedConfig::default()
        };
        assert!(
            SchedPlan::with_config(SchedulerKind::Wlc, ServiceFlags::default(), dests(9), cfg)
                .is_ok()
        );
    }
}
