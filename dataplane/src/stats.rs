//! Per-core counters: written by exactly one worker core, read by anyone.
//!
//! A [`Counter`] is an `AtomicU64` updated with a relaxed load and store instead of a locked
//! read-modify-write: with a single writer nothing is lost, and on x86-64 it compiles to plain
//! moves, so counting costs no more than a non-atomic increment. Readers (the control plane)
//! sum the per-core values.

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter with one writer (its core) and any number of readers.
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct Counter(AtomicU64);

impl Counter {
    /// A counter at zero.
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    /// Adds `n`. Only the owning core may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// Subtracts `n` (takes back a count made in error). Only the owning core may call this.
    #[inline]
    pub fn sub(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_sub(n), Ordering::Relaxed);
    }

    /// Adds one. Only the owning core may call this.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// The current value (from any thread).
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge with one writer: a value that goes up and down (e.g. table occupancy).
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Sets the value. Only the owning core may call this.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The current value (from any thread).
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn test_single_writer_counts_exactly() {
        let c = Arc::new(Counter::new());
        let w = Arc::clone(&c);
        let t = std::thread::spawn(move || {
            for _ in 0..100_000 {
                w.inc();
            }
            w.add(5);
        });
        // A concurrent reader sees monotonically growing values.
        let mut last = 0;
        while !t.is_finished() {
            let v = c.get();
            assert!(v >= last);
            last = v;
        }
        t.join().unwrap();
        assert_eq!(c.get(), 100_005);
    }
}
