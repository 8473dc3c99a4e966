//! The CPU's prefetch instruction for the data plane's burst pipeline (see
//! [`dataplane::prefetch`], which cannot issue it itself).

use dataplane::prefetch::Prefetch;

/// Prefetches into L2 with `PREFETCHT1` ([`dpdk_bindings::mem::prefetch`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuPrefetch;

impl Prefetch for CpuPrefetch {
    #[inline(always)]
    fn prefetch<T>(&self, p: *const T) {
        dpdk_bindings::mem::prefetch(p);
    }
}
