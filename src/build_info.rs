//! Build facts embedded by `build.rs`, shown by `ironvs --version`.

/// Package version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The multi-line text of `ironvs --version`: version, git revision, DPDK found at build, target.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ngit revision: ",
    env!("IRONVS_GIT_REV"),
    "\nDPDK (build): ",
    env!("IRONVS_BUILD_DPDK"),
    "\ntarget: ",
    env!("IRONVS_TARGET"),
    " (",
    env!("IRONVS_PROFILE"),
    ")"
);
