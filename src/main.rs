//! The IronVS daemon.
fn main() {}
