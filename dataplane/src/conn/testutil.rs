//! Fixtures shared by the connection table's tests.

use super::{ConnTable, ConnTableConfig, NewConn};
use crate::flow::{Addr, Proto};
use crate::model::{FwdMode, Timeouts};
use crate::sched::DestId;

/// A table of `capacity` entries and 4 real server slots, 1 s ticks, fixed seed.
pub fn table(capacity: u32) -> ConnTable {
    ConnTable::new(ConnTableConfig {
        capacity,
        dest_capacity: 4,
        timeouts: Timeouts::default(),
        tick_ms: 1000,
        seed: Some(0x5eed),
        core: 0,
    })
}

/// Connection number `i` of client 198.51.100.x to 192.0.2.1:80 via real server `dest`
/// (10.0.0.`dest`:8080); FullNAT uses local address 10.0.1.1, port 5000 + `i`.
pub fn new_conn(i: u16, mode: FwdMode, dest: u32) -> NewConn {
    let fnat = mode == FwdMode::FullNat;
    NewConn {
        proto: Proto::Tcp,
        client: Addr::v4([198, 51, 100, (i % 7) as u8]),
        cport: 10_000 + i,
        vip: Addr::v4([192, 0, 2, 1]),
        vport: 80,
        local: if fnat {
            Addr::v4([10, 0, 1, 1])
        } else {
            Addr::UNSPECIFIED
        },
        lport: if fnat { 5000 + i } else { 0 },
        real: Addr::v4([10, 0, 0, dest as u8]),
        rport: if matches!(mode, FwdMode::Dr | FwdMode::Tun) {
            80
        } else {
            8080
        },
        mode,
        dest: DestId(dest),
        svc: 0,
        template: None,
    }
}
