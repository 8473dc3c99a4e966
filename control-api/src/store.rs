//! The one place configuration changes happen: copy, change, validate, save, publish.
//!
//! A change runs on a copy of the current [`Config`]; if it fails, or the state file cannot be
//! written, nothing is published and the old configuration stays. Changes are serialised by a
//! mutex, so the file and the data plane see them in the order they were made.
//!
//! The store also keeps the counters' zero points (`ipvsadm -Z`, see [`Baselines`]) under the
//! same mutex, so a zero point can never be taken for one object and applied to another that
//! replaced it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use dataplane::model::ServiceKey;

use crate::baseline::Baselines;
use crate::config::Config;
use crate::dataplane::{Dataplane, StatsSnapshot};
use crate::persist::{self, PersistError};
use crate::validate::{self, ConfigError};

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The change itself was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The new state could not be saved.
    #[error(transparent)]
    Persist(#[from] PersistError),
}

struct Current {
    cfg: Arc<Config>,
    zero: Baselines,
}

/// The current configuration, its state file and the data plane it is published to.
pub struct Store {
    current: Mutex<Current>,
    state_file: Option<PathBuf>,
    dataplane: Arc<dyn Dataplane>,
}

impl Store {
    /// Loads the state file (if any, a missing file being empty) and publishes it.
    pub fn open(
        state_file: Option<PathBuf>,
        dataplane: Arc<dyn Dataplane>,
    ) -> Result<Store, PersistError> {
        let cfg = match &state_file {
            Some(p) => persist::load(p)?,
            None => Config::default(),
        };
        let cfg = Arc::new(cfg);
        dataplane.apply(&cfg);
        Ok(Store {
            current: Mutex::new(Current {
                cfg,
                zero: Baselines::default(),
            }),
            state_file,
            dataplane,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<Config> {
        self.lock().cfg.clone()
    }

    /// The configuration in force and the data plane's counters counted from their zero points
    /// (what `ipvsadm -L --stats` shows); the raw totals are `dataplane().stats()`.
    pub fn stats(&self) -> (Arc<Config>, StatsSnapshot) {
        let guard = self.lock();
        let mut snap = self.dataplane.stats();
        guard.zero.apply(&mut snap);
        (guard.cfg.clone(), snap)
    }

    /// Zeroes the counters of one service and its real servers, or of every service when `only`
    /// is `None` (`ipvsadm -Z`); returns the raw snapshot taken as the zero point.
    pub fn zero_stats(&self, only: Option<&ServiceKey>) -> Result<StatsSnapshot, ConfigError> {
        let mut guard = self.lock();
        if let Some(k) = only {
            if guard.cfg.service(k).is_none() {
                return Err(ConfigError::NotFound(format!(
                    "service {}",
                    validate::service_name(k)
                )));
            }
        }
        let snap = self.dataplane.stats();
        let Current { cfg, zero } = &mut *guard;
        zero.zero(cfg, &snap, only);
        Ok(snap)
    }

    /// The data plane this store publishes to.
    pub fn dataplane(&self) -> &Arc<dyn Dataplane> {
        &self.dataplane
    }

    /// Applies `change` to a copy; on success saves and publishes it and returns `change`'s value.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut Config) -> Result<T, ConfigError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.lock();
        let mut next = Config::clone(&guard.cfg);
        next.set_busy_slots(self.dataplane.busy_slots());
        let out = change(&mut next)?;
        if next == *guard.cfg {
            return Ok(out);
        }
        if let Some(p) = &self.state_file {
            persist::save(p, &next)?;
        }
        let next = Arc::new(next);
        guard.cfg = next.clone();
        self.dataplane.apply(&next);
        guard.zero.retain(&next);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::MemoryDataplane;
    use dataplane::model::LocalAddr;

    #[test]
    fn test_update_avoids_the_data_planes_busy_slots() {
        use dataplane::flow::Proto;
        use dataplane::model::{
            FwdMode, RealServer, RealServerKey, SchedulerKind, Service, ServiceFlags, ServiceKey,
        };
        use dataplane::sched::DestId;
        let dp = Arc::new(MemoryDataplane::new(16));
        let store = Store::open(None, dp.clone()).unwrap();
        let key = ServiceKey {
            proto: Proto::Tcp,
            vip: "192.0.2.1".parse().unwrap(),
            port: 80,
        };
        let service = Service {
            key,
            scheduler: SchedulerKind::Rr,
            persistence: None,
            flags: ServiceFlags::default(),
        };
        store.update(|c| c.add_service(service, vec![])).unwrap();
        let real = |ip: &str| RealServer {
            key: RealServerKey {
                addr: ip.parse().unwrap(),
                port: 80,
            },
            weight: 1,
            mode: FwdMode::Dr,
            upper_threshold: 0,
            lower_threshold: 0,
        };
        dp.set_busy_slots([0, 1].into());
        let slot = store.update(|c| c.add_real_server(&key, real("10.0.0.1")));
        assert_eq!(slot.unwrap(), DestId(2));
        dp.set_busy_slots([].into());
        let slot = store.update(|c| c.add_real_server(&key, real("10.0.0.2")));
        assert_eq!(slot.unwrap(), DestId(0));
    }

    #[test]
    fn test_update_saves_and_publishes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let dp = Arc::new(MemoryDataplane::new(16));
        let store = Store::open(Some(path.clone()), dp.clone()).unwrap();
        assert_eq!(dp.apply_count(), 1);
        let l = LocalAddr {
            addr: "198.51.100.1".parse().unwrap(),
        };
        store.update(|c| c.add_laddr(l)).unwrap();
        assert_eq!(dp.apply_count(), 2);
        assert_eq!(dp.applied().unwrap().laddrs().count(), 1);
        let err = store.update(|c| c.add_laddr(l)).unwrap_err();
        assert!(matches!(err, StoreError::Config(ConfigError::Exists(_))));
        assert_eq!(dp.apply_count(), 2, "a failed change is not published");
        let reopened = Store::open(Some(path), Arc::new(MemoryDataplane::new(16))).unwrap();
        assert_eq!(*reopened.current(), *store.current());
    }

    #[test]
    fn test_unwritable_state_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("state.json");
        let dp = Arc::new(MemoryDataplane::new(16));
        let store = Store::open(Some(path), dp.clone()).unwrap();
        let l = LocalAddr {
            addr: "198.51.100.1".parse().unwrap(),
        };
        let err = store.update(|c| c.add_laddr(l)).unwrap_err();
        assert!(matches!(err, StoreError::Persist(_)));
        assert_eq!(store.current().laddrs().count(), 0);
        assert_eq!(dp.apply_count(), 1);
    }
}
