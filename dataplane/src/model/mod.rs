//! The configuration model shared by the data plane and the control plane: virtual services, real
//! servers, FullNAT local addresses and protocol timeouts, with ipvsadm's names and defaults.
//!
//! These are plain values: the control plane validates and stores them, the data plane compiles
//! them into per-worker tables.

mod names;
mod service;
mod timeouts;

pub use names::{FwdMode, ParseNameError, SchedulerKind};
pub use service::{
    LocalAddr, Persistence, RealServer, RealServerKey, Service, ServiceFlags, ServiceKey,
};
pub use timeouts::Timeouts;
