//! Memory per connection: a connection table of capacity `n` filled with `n` FullNAT
//! connections (the largest kind: both directions indexed), measured two ways: what the table
//! says it holds (`ConnTable::memory_bytes`) and how much the process's resident set grew.

use std::time::Instant;

use dataplane::conn::{ConnTable, ConnTableConfig, NewConn};
use dataplane::flow::{Addr, Proto};
use dataplane::model::FwdMode;
use dataplane::sched::DestId;

/// One measured table.
#[derive(Debug, Clone, Copy)]
pub struct MemFigure {
    /// Capacity = connections inserted.
    pub conns: u32,
    /// Connections the table accepted.
    pub inserted: u32,
    /// Bytes each entry adds (`ConnTable::bytes_per_conn`: slab entry + its share of the index).
    pub entry_bytes: usize,
    /// `memory_bytes() / conns` (adds the fixed expiry wheel and load counts).
    pub table_bytes_per_conn: f64,
    /// Resident-set growth / conns.
    pub rss_bytes_per_conn: f64,
    /// Insertions per second while filling (one core, no packets).
    pub inserts_per_sec: f64,
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Builds and fills a table of `n` entries.
pub fn measure(n: u32) -> MemFigure {
    let before = rss_bytes();
    let mut t = ConnTable::new(ConnTableConfig {
        capacity: n,
        dest_capacity: 1024,
        seed: Some(0x5eed),
        ..ConnTableConfig::default()
    });
    let start = Instant::now();
    let mut inserted = 0;
    for i in 0..n {
        let c = NewConn {
            proto: Proto::Tcp,
            client: Addr::v4((0x6440_0000 + (i >> 14) + 1).to_be_bytes()),
            cport: 1024 + (i & 0x3fff) as u16,
            vip: Addr::v4([192, 0, 2, 100]),
            vport: 80,
            local: Addr::v4((0x0a01_0000 + (i >> 16)).to_be_bytes()),
            lport: i as u16,
            real: Addr::v4([10, 0, 0, 11]),
            rport: 8080,
            mode: FwdMode::FullNat,
            dest: DestId(0),
            svc: 0,
            template: None,
        };
        if t.insert(c, 0).is_ok() {
            inserted += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let after = rss_bytes();
    let fig = MemFigure {
        conns: n,
        inserted,
        entry_bytes: t.bytes_per_conn(),
        table_bytes_per_conn: t.memory_bytes() as f64 / f64::from(n),
        rss_bytes_per_conn: after.saturating_sub(before) as f64 / f64::from(n),
        inserts_per_sec: f64::from(inserted) / secs,
    };
    drop(t);
    fig
}
