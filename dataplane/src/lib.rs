//! IronVS packet logic, free of DPDK so that it can be unit-tested and benchmarked anywhere.
//!
//! A received frame lives in something that implements [`buf::PacketBuf`] (an `rte_mbuf` in the
//! daemon, a `Vec<u8>` in tests). The way of a packet through this crate:
//! [`wire`] parses it, [`conn`] finds or creates its connection, [`sched`] picks a real server for a
//! new one, [`fwd`] rewrites the frame in place and returns a verdict.
#![deny(unsafe_code)]

pub mod buf;
pub mod checksum;
pub mod conn;
pub mod flow;
pub mod fwd;
pub mod host;
pub mod model;
pub mod neigh;
pub mod prefetch;
pub mod route;
pub mod rss;
pub mod sched;
pub mod stats;
pub mod wire;
