//! Schedulers: pick a real server for a new connection, with IPVS semantics (ipvsadm(8)).

mod load;

pub use load::{DestId, DestLoad};
