//! Safe wrappers over DPDK 22.11 for IronVS.
//!
//! The raw bindgen output lives in [`sys`]; everything else is RAII: [`Eal`] cleans EAL up,
//! [`Mempool`], [`Mbuf`], [`Port`] and [`Ring`] free themselves on drop, RX bursts are owning
//! [`MbufBurst`]s, and [`lcore::launch`] turns a panic on a worker lcore into an error instead of
//! unwinding into C. FFI failures become typed [`Error`]s where the C call returns.
//!
//! This is the only IronVS crate with `unsafe`; every block states why it is sound.

pub mod burst;
pub mod eal;
pub mod error;
mod excl;
pub mod lcore;
pub mod mbuf;
pub mod mem;
pub mod mempool;
pub mod port;
pub mod ring;
pub mod tsc;

/// Raw bindgen output over `wrapper.h` (narrow allowlist); prefer the safe wrappers.
#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    unnecessary_transmutes,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc,
    clippy::ptr_offset_with_cast
)]
pub mod sys {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub use burst::{MbufBurst, RxBurst, TxBurst};
pub use eal::Eal;
pub use error::{EalError, Errno, Error, Result};
pub use lcore::{current_lcore, LaunchHandle, LcoreId, LcorePanic};
pub use mbuf::{L4Cksum, Mbuf, TxOffload};
pub use mempool::Mempool;
pub use port::{LinkStatus, Port, PortConfig, PortId, PortInfo, PortStats, QueueId, RssConfig};
pub use ring::{Ring, RingFlags};
pub use tsc::Clock;

/// The DPDK version the crate was built against (from pkg-config), e.g. `22.11.11`.
pub const DPDK_BUILD_VERSION: &str = env!("IRONVS_DPDK_VERSION");

/// The DPDK version linked at run time (`rte_version()`), e.g. `DPDK 22.11.11`.
pub fn dpdk_version() -> &'static str {
    // SAFETY: rte_version returns a pointer to a static NUL-terminated string.
    let v = unsafe { std::ffi::CStr::from_ptr(sys::rte_version()) };
    v.to_str().unwrap_or("DPDK (non-UTF-8 version)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    #[test]
    fn test_thread_safety_contract() {
        // Shared by every worker: port (per-queue flags), pool, ring, EAL token.
        send_sync::<Port>();
        send_sync::<Mempool>();
        send_sync::<Ring>();
        send_sync::<Eal>();
        // Owned packets move between cores but are never shared.
        send::<Mbuf>();
        send::<MbufBurst>();
    }

    #[test]
    fn test_versions_agree() {
        // rte_version() is "DPDK 22.11.11"; pkg-config reports "22.11.11".
        assert_eq!(dpdk_version(), format!("DPDK {DPDK_BUILD_VERSION}"));
    }
}
