//! `--workers`: one line per worker lcore from `/api/v1/stats`, so that an operator sees the
//! core that falls behind or drops.
//!
//! ipvsadm has no such listing; its numbers are printed as `--stats` prints them
//! ([`largenum`]: scaled by K/M/G/T, exact with `-X`), its rows sorted by worker index.

use std::fmt::Write;

use control_api::WorkerStats;

use crate::print::largenum;

/// The column titles.
pub fn title() -> String {
    format!(
        "{:<6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>8} {}\n",
        "Worker",
        "RxPkts",
        "TxPkts",
        "FwdPkts",
        "KernPkts",
        "Drops",
        "NewConns",
        "ConnTab",
        "Neigh(R/P)",
        "Held",
        "DropReasons"
    )
}

/// Packets dropped for any reason.
fn drops_total(w: &WorkerStats) -> u64 {
    w.drops.values().fold(0, |sum, n| sum.saturating_add(*n))
}

/// The non-zero drop reasons as `reason=count,...`, then the NAT reply aliases lost (not packets,
/// so not in the Drops column, but each may cost a `reply_miss` later); `-` when none.
fn reasons(w: &WorkerStats) -> String {
    let aliases = [
        ("aliases_overflow", w.aliases_overflow),
        ("aliases_inbox_full", w.aliases_inbox_full),
        ("aliases_refused", w.aliases_refused),
    ];
    let all: Vec<String> = w
        .drops
        .iter()
        .map(|(reason, n)| (reason.as_str(), *n))
        .chain(aliases)
        .filter(|(_, n)| *n != 0)
        .map(|(reason, n)| format!("{reason}={n}"))
        .collect();
    if all.is_empty() {
        "-".into()
    } else {
        all.join(",")
    }
}

/// One worker's line.
pub fn row(w: &WorkerStats, exact: bool) -> String {
    let mut out = format!("{:<6}", w.worker);
    for n in [
        w.rx_packets,
        w.tx_packets,
        w.forwarded_packets,
        w.kernel_packets,
        drops_total(w),
        w.new_connections,
        w.conn_table_entries,
    ] {
        out.push_str(&largenum(n, exact));
    }
    let neigh = format!(
        "{}/{}",
        w.neighbour_resolved_entries(),
        w.neighbour_pending_entries
    );
    let _ = write!(out, " {neigh:>10}");
    out.push_str(&largenum(w.neighbour_held_packets, exact));
    let _ = writeln!(out, " {}", reasons(w));
    out
}

/// The title and one line per worker (only the title when the daemon reports none).
pub fn listing(workers: &[WorkerStats], exact: bool) -> String {
    let mut sorted: Vec<&WorkerStats> = workers.iter().collect();
    sorted.sort_by_key(|w| w.worker);
    let mut out = title();
    for w in sorted {
        out.push_str(&row(w, exact));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worker 1 is busy and dropping; worker 0 is quiet and clean.
    fn two_workers() -> Vec<WorkerStats> {
        let busy = WorkerStats {
            worker: 1,
            rx_packets: 123_456_789,
            tx_packets: 98_765_432,
            drops: [
                ("hold_full".to_string(), 7),
                ("no_service".to_string(), 0),
                ("table_full".to_string(), 1500),
                ("tx_full".to_string(), 3),
            ]
            .into(),
            new_connections: 40_000,
            expired_connections: 39_000,
            forwarded_packets: 98_700_000,
            kernel_packets: 65_432,
            aliases_inbox_full: 4,
            neighbour_entries: 14,
            neighbour_pending_entries: 2,
            neighbour_held_packets: 9,
            conn_table_entries: 1_048_576,
            ..WorkerStats::default()
        };
        let quiet = WorkerStats {
            worker: 0,
            rx_packets: 1200,
            tx_packets: 1100,
            drops: [("no_service".to_string(), 0), ("tx_full".to_string(), 0)].into(),
            new_connections: 12,
            forwarded_packets: 1100,
            kernel_packets: 100,
            neighbour_entries: 3,
            conn_table_entries: 10,
            ..WorkerStats::default()
        };
        vec![busy, quiet]
    }

    const TITLE: &str = "Worker   RxPkts   TxPkts  FwdPkts KernPkts    Drops NewConns  ConnTab Neigh(R/P)     Held DropReasons\n";

    #[test]
    fn test_listing_scaled() {
        assert_eq!(
            listing(&two_workers(), false),
            [
                TITLE,
                "0          1200     1100     1100      100        0       12       10        3/0        0 -\n",
                "1       123456K 98765432 98700000    65432     1510    40000  1048576       12/2        9 hold_full=7,table_full=1500,tx_full=3,aliases_inbox_full=4\n",
            ]
            .concat()
        );
    }

    #[test]
    fn test_listing_exact() {
        let out = listing(&two_workers(), true);
        assert_eq!(
            out.lines().nth(2).unwrap(),
            "1      123456789 98765432 98700000    65432     1510    40000  1048576       12/2        9 hold_full=7,table_full=1500,tx_full=3,aliases_inbox_full=4"
        );
        assert_eq!(out.lines().count(), 3);
    }

    #[test]
    fn test_no_workers_prints_the_title() {
        assert_eq!(listing(&[], false), TITLE);
    }

    #[test]
    fn test_pending_above_entries_saturates() {
        // The two gauges are read at slightly different instants.
        let w = WorkerStats {
            neighbour_entries: 1,
            neighbour_pending_entries: 2,
            drops: [
                ("malformed".to_string(), u64::MAX),
                ("tx_full".to_string(), 5),
            ]
            .into(),
            ..WorkerStats::default()
        };
        let line = row(&w, true);
        assert!(line.contains("        0/2 "), "{line}");
        assert!(line.contains(&format!(" {} ", u64::MAX)), "{line}");
    }
}
