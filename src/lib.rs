//! The IronVS daemon as a library: configuration, EAL and port set-up, the worker poll loop, the
//! control plane's view of the workers. `src/main.rs` is the thin `ironvs` binary over it; benches
//! and tests use the same pieces.
#![deny(unsafe_code)]

pub mod build_info;
pub mod config;
pub mod control;
pub mod daemon;
pub mod hugepages;
pub mod mailbox;
pub mod ports;
pub mod prefetch;
pub mod state;
pub mod worker;
