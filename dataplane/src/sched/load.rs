//! Per-core load of each real server: the connection counts schedulers weigh, kept by the
//! connection table as connections are bound, change state and expire.
//!
//! Counts are per worker core (each core owns its table), so no atomics are needed; the control
//! plane sums them for display, as ipvsadm shows ActiveConn/InActConn.

/// Stable slot of a real server, the same across configuration snapshots, so its counts survive
/// an update. Indexes per-core arrays of [`DestLoad`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DestId(pub u32);

impl DestId {
    /// The slot as an array index.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Connection counts and overload state of one real server on one core.
///
/// IPVS semantics: a connection is *active* in TCP ESTABLISHED and *inactive* in any other state
/// (UDP connections are inactive). With an upper threshold set, a server becomes overloaded when
/// its connections reach it and recovers below the lower threshold (or 3/4 of the upper one when
/// no lower threshold is set) — `ip_vs_bind_dest`/`ip_vs_unbind_dest` in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DestLoad {
    /// Connections in TCP ESTABLISHED.
    pub active: u32,
    /// Connections in every other state.
    pub inactive: u32,
    /// Persistence templates pointing at this server.
    pub persistent: u32,
    /// Upper connection threshold (ipvsadm `-x`); 0 means none.
    pub upper: u32,
    /// Lower connection threshold (ipvsadm `-y`); 0 means 3/4 of `upper`.
    pub lower: u32,
    /// Set at `upper`, cleared below the lower threshold.
    pub overloaded: bool,
}

impl DestLoad {
    /// All connections, active or not.
    #[inline]
    pub fn conns(&self) -> u32 {
        self.active + self.inactive
    }

    /// IPVS's load estimate used by lc/wlc/lblc/lblcr: an active connection weighs 256 inactive ones.
    #[inline]
    pub fn overhead(&self) -> u32 {
        (self.active << 8).saturating_add(self.inactive)
    }

    /// A new connection is bound to this server (it starts inactive, or active when `active`).
    #[inline]
    pub fn bind(&mut self, active: bool) {
        if active {
            self.active += 1;
        } else {
            self.inactive += 1;
        }
        if self.upper != 0 && self.conns() >= self.upper {
            self.overloaded = true;
        }
    }

    /// A connection of this server ended.
    #[inline]
    pub fn unbind(&mut self, active: bool) {
        if active {
            self.active = self.active.saturating_sub(1);
        } else {
            self.inactive = self.inactive.saturating_sub(1);
        }
        self.refresh_overload();
    }

    /// A connection moved between active and inactive.
    #[inline]
    pub fn set_active(&mut self, now_active: bool) {
        if now_active {
            self.inactive = self.inactive.saturating_sub(1);
            self.active += 1;
        } else {
            self.active = self.active.saturating_sub(1);
            self.inactive += 1;
        }
    }

    /// Applies new thresholds (a configuration change) and re-evaluates the overload state.
    pub fn set_thresholds(&mut self, upper: u32, lower: u32) {
        self.upper = upper;
        self.lower = lower;
        if upper == 0 {
            self.overloaded = false;
        } else if self.conns() >= upper {
            self.overloaded = true;
        } else {
            self.refresh_overload();
        }
    }

    fn refresh_overload(&mut self) {
        if !self.overloaded {
            return;
        }
        let conns = self.conns();
        let below = if self.lower != 0 {
            conns < self.lower
        } else {
            conns * 4 < self.upper * 3
        };
        if self.upper == 0 || below {
            self.overloaded = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_overload_hysteresis_default_lower() {
        let mut l = DestLoad::default();
        l.set_thresholds(4, 0);
        for _ in 0..4 {
            l.bind(false);
        }
        assert!(l.overloaded);
        l.unbind(false); // 3 conns: 12 < 12 is false, stays overloaded
        assert!(l.overloaded);
        l.unbind(false); // 2 conns: 8 < 12
        assert!(!l.overloaded);
    }

    #[test]
    fn test_overload_explicit_lower() {
        let mut l = DestLoad::default();
        l.set_thresholds(3, 1);
        for _ in 0..3 {
            l.bind(true);
        }
        assert!(l.overloaded);
        l.unbind(true);
        l.unbind(true);
        assert!(
            l.overloaded,
            "1 connection is not below the lower threshold 1"
        );
        l.unbind(true);
        assert!(!l.overloaded);
        assert_eq!(l.overhead(), 0);
    }
}
