//! The per-worker series of the Prometheus export: one label value per worker lcore, so that a
//! core that falls behind, drops or fills its neighbour hold shows on its own.

use prometheus::Registry;

use super::{clamp, counter, gauge};
use crate::dataplane::WorkerStats;

/// Registers every per-worker counter and gauge in `reg`, filled from `workers`.
pub(super) fn export(reg: &Registry, workers: &[WorkerStats]) -> prometheus::Result<()> {
    let wpk = counter(
        reg,
        "ironvs_worker_packets_total",
        "Packets handled by the worker lcore by direction (rx, tx).",
        &["worker", "direction"],
    )?;
    let wdrop = counter(
        reg,
        "ironvs_worker_dropped_packets_total",
        "Packets dropped by the worker lcore, by reason.",
        &["worker", "reason"],
    )?;
    let wconn = counter(
        reg,
        "ironvs_worker_connections_total",
        "Connection events of the worker lcore (new: created, expired: removed by timeout, \
         reused: a closing connection taken over by a new SYN on the same ports).",
        &["worker", "event"],
    )?;
    let wfwd = counter(
        reg,
        "ironvs_worker_forwarded_packets_total",
        "Packets the worker lcore forwarded to a real server or back to a client.",
        &["worker"],
    )?;
    let wkernel = counter(
        reg,
        "ironvs_worker_kernel_packets_total",
        "Packets the worker lcore handed to the kernel (not load-balanced traffic).",
        &["worker"],
    )?;
    let wicmp = counter(
        reg,
        "ironvs_worker_icmp_relayed_total",
        "ICMP errors the worker lcore relayed to a client or real server.",
        &["worker"],
    )?;
    let wfrag = counter(
        reg,
        "ironvs_worker_frag_needed_sent_total",
        "ICMP fragmentation-needed errors the worker lcore sent for packets \
         too big to encapsulate.",
        &["worker"],
    )?;
    let walias = counter(
        reg,
        "ironvs_worker_aliases_total",
        "NAT reply aliases exchanged between worker lcores (sent: queued for the lcore that \
         receives the replies, overflow: not queued as the outbox was full, inbox_full: dropped \
         as the receiving lcore's inbox was full, accepted/refused: received from another lcore \
         and indexed or not).",
        &["worker", "event"],
    )?;
    let whost = counter(
        reg,
        "ironvs_worker_host_replies_total",
        "ARP, NDP and echo replies the worker lcore sent as a host.",
        &["worker"],
    )?;
    let wsteer = counter(
        reg,
        "ironvs_worker_steered_packets_total",
        "Frames moved between worker lcores by software steering (out: passed to the lcore that \
         owns the flow, in: received from another lcore).",
        &["worker", "direction"],
    )?;
    let wkpath = counter(
        reg,
        "ironvs_worker_kernel_path_packets_total",
        "Frames on the kernel exception path (to_kernel: from a data port to the kernel \
         interface, from_kernel: from the kernel interface out of the data port).",
        &["worker", "direction"],
    )?;
    let wraces = counter(
        reg,
        "ironvs_worker_reply_races_total",
        "NAT replies that arrived before their alias was read from the inbox and went through \
         on a second look.",
        &["worker"],
    )?;
    let wneigh = counter(
        reg,
        "ironvs_worker_neighbour_events_total",
        "ARP/NDP events of the worker lcore's neighbour cache (request: solicitation sent, \
         announcement: gratuitous ARP / unsolicited NA sent, learned: entry confirmed, failure: \
         resolution unanswered, held: packet queued for resolution, hold_drop: held packet \
         dropped as its queue was full, hold_cap_drop: packet refused as the worker held \
         max_held_packets, unresolved_drop: held packet dropped as resolution failed).",
        &["worker", "event"],
    )?;
    let wheld = gauge(
        reg,
        "ironvs_worker_neighbour_held_packets",
        "Packets the worker lcore holds now while ARP/NDP resolves their next hop (at most \
         max_held_packets).",
        &["worker"],
    )?;
    let wentries = gauge(
        reg,
        "ironvs_worker_neighbour_entries",
        "Entries in the worker lcore's neighbour cache by state (resolved: MAC known, pending: \
         resolution in progress).",
        &["worker", "state"],
    )?;
    let wct = gauge(
        reg,
        "ironvs_worker_conn_table_entries",
        "Connection-table entries in use on the worker lcore (ironvs_conn_table_entries is their \
         sum).",
        &["worker"],
    )?;
    for w in workers {
        let id = w.worker.to_string();
        let id = id.as_str();
        wpk.with_label_values(&[id, "rx"]).inc_by(w.rx_packets);
        wpk.with_label_values(&[id, "tx"]).inc_by(w.tx_packets);
        for (reason, n) in &w.drops {
            wdrop.with_label_values(&[id, reason.as_str()]).inc_by(*n);
        }
        for (event, n) in [
            ("new", w.new_connections),
            ("expired", w.expired_connections),
            ("reused", w.reused_connections),
        ] {
            wconn.with_label_values(&[id, event]).inc_by(n);
        }
        wfwd.with_label_values(&[id]).inc_by(w.forwarded_packets);
        wkernel.with_label_values(&[id]).inc_by(w.kernel_packets);
        wicmp.with_label_values(&[id]).inc_by(w.icmp_errors_relayed);
        wfrag.with_label_values(&[id]).inc_by(w.frag_needed_sent);
        for (event, n) in [
            ("sent", w.aliases_sent),
            ("accepted", w.aliases_accepted),
            ("refused", w.aliases_refused),
            ("overflow", w.aliases_overflow),
            ("inbox_full", w.aliases_inbox_full),
        ] {
            walias.with_label_values(&[id, event]).inc_by(n);
        }
        whost.with_label_values(&[id]).inc_by(w.host_replies);
        wsteer.with_label_values(&[id, "out"]).inc_by(w.steered_out);
        wsteer.with_label_values(&[id, "in"]).inc_by(w.steered_in);
        wkpath
            .with_label_values(&[id, "to_kernel"])
            .inc_by(w.to_kernel);
        wkpath
            .with_label_values(&[id, "from_kernel"])
            .inc_by(w.from_kernel);
        wraces.with_label_values(&[id]).inc_by(w.reply_races);
        for (event, n) in [
            ("request", w.neighbour_requests),
            ("announcement", w.neighbour_announcements),
            ("learned", w.neighbour_learned),
            ("failure", w.neighbour_failures),
            ("held", w.neighbour_held),
            ("hold_drop", w.neighbour_hold_drops),
            ("hold_cap_drop", w.neighbour_hold_cap_drops),
            ("unresolved_drop", w.neighbour_unresolved_drops),
        ] {
            wneigh.with_label_values(&[id, event]).inc_by(n);
        }
        wheld
            .with_label_values(&[id])
            .set(clamp(w.neighbour_held_packets));
        wentries
            .with_label_values(&[id, "resolved"])
            .set(clamp(w.neighbour_resolved_entries()));
        wentries
            .with_label_values(&[id, "pending"])
            .set(clamp(w.neighbour_pending_entries));
        wct.with_label_values(&[id])
            .set(clamp(w.conn_table_entries));
    }
    Ok(())
}
