//! The CPU time-stamp counter, and a cheap monotonic millisecond clock built on it.
//!
//! Workers stamp connections with [`Clock::now_ms`] instead of a system call per packet.

use crate::sys;

/// Reads the time-stamp counter (inlined `rdtsc` on x86_64, DPDK's `rte_rdtsc` elsewhere).
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc exists on every x86_64 CPU and only reads the counter.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: rte_rdtsc reads the cycle counter; no preconditions.
        unsafe { sys::rte_rdtsc() }
    }
}

/// TSC ticks per second as EAL measured them (0 before EAL is initialised).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value EAL computed at init; returns 0 if EAL is not up.
    unsafe { sys::rte_get_tsc_hz() }
}

/// Converts TSC readings to monotonic milliseconds since the clock was made.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: u64,
    ticks_per_ms: u64,
}

impl Clock {
    /// A clock running at EAL's TSC frequency, starting at zero now; `None` before EAL is up.
    pub fn new() -> Option<Clock> {
        let hz = tsc_hz();
        (hz >= 1000).then(|| Clock::with_hz(rdtsc(), hz))
    }

    /// A clock that reads zero at TSC value `start` and ticks at `hz` (at least 1000).
    pub fn with_hz(start: u64, hz: u64) -> Clock {
        Clock {
            start,
            ticks_per_ms: (hz / 1000).max(1),
        }
    }

    /// Milliseconds since the clock started.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        self.tsc_to_ms(rdtsc())
    }

    /// Milliseconds from the clock's start to TSC value `tsc` (0 for earlier values).
    #[inline]
    pub fn tsc_to_ms(&self, tsc: u64) -> u64 {
        tsc.saturating_sub(self.start) / self.ticks_per_ms
    }

    /// TSC ticks in `ms` milliseconds (for deadlines compared against [`rdtsc`]).
    pub fn ms_to_ticks(&self, ms: u64) -> u64 {
        ms.saturating_mul(self.ticks_per_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_tsc_to_ms() {
        let c = Clock::with_hz(1_000, 2_000_000_000);
        assert_eq!(c.tsc_to_ms(1_000), 0);
        assert_eq!(c.tsc_to_ms(1_000 + 1_999_999), 0);
        assert_eq!(c.tsc_to_ms(1_000 + 2_000_000), 1);
        assert_eq!(c.tsc_to_ms(1_000 + 5 * 2_000_000_000), 5_000);
        assert_eq!(c.tsc_to_ms(0), 0);
        assert_eq!(c.ms_to_ticks(3), 6_000_000);
    }

    #[test]
    fn test_rdtsc_is_monotonic() {
        let a = rdtsc();
        let b = rdtsc();
        assert!(b >= a);
    }
}
