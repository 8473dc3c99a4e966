//! Backs each worker's connection table with transparent huge pages.
//!
//! The table (slab and hash index) is allocated once, at start-up, for `max_connections`; with
//! a million connections it spans ~130 MiB, and on 4 KiB pages nearly every lookup misses the
//! TLB. The daemon calls [`back_conn_table`] right after building each worker's forwarder,
//! before the worker starts (the kernel copies the pages, ~0.3 s per 100 MiB; the huge pages
//! come from the node that holds the small ones). Where the kernel cannot (no THP, no
//! `MADV_COLLAPSE`), the table stays on small pages and a log line says so.

use dataplane::fwd::Forwarder;
use dpdk_bindings::mem::{self, HugeOutcome};

/// What [`back_conn_table`] did, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backed {
    /// Bytes of the table's regions that huge pages can back (their 2 MiB-aligned interiors).
    pub eligible: u64,
    /// Of those, bytes collapsed into huge pages now.
    pub collapsed: u64,
    /// Of those, bytes only advised (the kernel has no `MADV_COLLAPSE`).
    pub advised: u64,
}

/// Advises and collapses the connection table of `fwd` into huge pages; logs the outcome for
/// worker `worker`, with the process's `AnonHugePages` before and after.
pub fn back_conn_table(worker: u16, fwd: &Forwarder) -> Backed {
    let before = mem::anon_huge_bytes().ok();
    let mut b = Backed::default();
    for region in fwd.conns().memory_regions() {
        match mem::advise_huge_pages(region) {
            Ok(a) => {
                b.eligible += a.bytes as u64;
                match a.outcome {
                    HugeOutcome::Collapsed => b.collapsed += a.bytes as u64,
                    HugeOutcome::Advised => b.advised += a.bytes as u64,
                    HugeOutcome::Unsupported | HugeOutcome::TooSmall => {}
                }
            }
            Err(e) => log::warn!(
                "worker {worker}: connection table region of {} bytes not backed by huge pages: {e}",
                region.1
            ),
        }
    }
    let after = mem::anon_huge_bytes().ok();
    let mib = |n: u64| n as f64 / f64::from(1 << 20);
    let total: usize = fwd.conns().memory_regions().iter().map(|r| r.1).sum();
    log::info!(
        "worker {worker}: connection table huge pages: {:.0} MiB collapsed, {:.0} MiB advised of \
         {:.0} MiB eligible, {:.1} MiB of the {:.0} MiB table on small pages (used last) \
         (process AnonHugePages {} -> {} MiB)",
        mib(b.collapsed),
        mib(b.advised),
        mib(b.eligible),
        mib(total as u64 - b.eligible),
        mib(total as u64),
        before.map_or("?".into(), |v| format!("{:.0}", mib(v))),
        after.map_or("?".into(), |v| format!("{:.0}", mib(v))),
    );
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::conn::ConnTableConfig;
    use dataplane::fwd::ForwarderConfig;

    #[test]
    fn test_back_conn_table_covers_the_aligned_table() {
        let fwd = Forwarder::new(ForwarderConfig {
            table: ConnTableConfig {
                capacity: 1 << 16,
                ..ConnTableConfig::default()
            },
            ..ForwarderConfig::default()
        });
        let regions = fwd.conns().memory_regions();
        let want: u64 = regions
            .iter()
            .filter_map(|&r| mem::huge_interior(r))
            .map(|(_, n)| n as u64)
            .sum();
        // 2^16 entries: a 7 MiB slab and a 1 MiB index; the slab holds at least 2 huge pages.
        assert!(want >= 4 << 20, "{want}");
        let b = back_conn_table(0, &fwd);
        assert_eq!(b.eligible, want);
        // All or nothing: the kernel either supports the advice or it does not.
        let done = b.collapsed + b.advised;
        assert!(done == b.eligible || done == 0, "{b:?}");
    }
}
