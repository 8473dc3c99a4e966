//! The DPDK Environment Abstraction Layer, initialised once per process.
//!
//! [`Eal::init`] wraps `rte_eal_init`; a second call in the same process returns
//! [`EalError::AlreadyInitialised`] instead of undefined behaviour. Dropping the [`Eal`] calls
//! `rte_eal_cleanup`: drop it last, after every port, pool and ring.

use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{EalError, Errno};
use crate::lcore::LcoreId;
use crate::sys;

/// Set once `rte_eal_init` has been entered; DPDK itself refuses a second successful init.
static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Proof that EAL is initialised; cleans EAL up when dropped.
#[derive(Debug)]
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Runs `rte_eal_init` with `args` (without the program name, which is supplied).
    ///
    /// Typical test arguments: `["--no-huge", "--no-pci", "--file-prefix=ironvs-test-<pid>",
    /// "--lcores=0@0,1@0", "--vdev=net_null0"]`.
    pub fn init(args: &[impl AsRef<str>]) -> Result<Eal, EalError> {
        let mut owned = Vec::with_capacity(args.len() + 1);
        owned.push(CString::new("ironvs").map_err(|_| EalError::NulInArgument)?);
        for arg in args {
            owned.push(CString::new(arg.as_ref()).map_err(|_| EalError::NulInArgument)?);
        }
        if INITIALISED.swap(true, Ordering::AcqRel) {
            return Err(EalError::AlreadyInitialised);
        }
        // EAL may keep pointers into argv (and permutes the array), so the strings live for the
        // rest of the process: leaked once, since EAL initialises at most once.
        let mut argv: Vec<*mut c_char> = owned.into_iter().map(CString::into_raw).collect();
        let argc = i32::try_from(argv.len()).map_err(|_| EalError::Other(Errno(libc::E2BIG)))?;
        argv.push(std::ptr::null_mut());
        let argv = argv.leak();
        // SAFETY: argv holds argc valid NUL-terminated strings plus a terminating NULL, all
        // leaked so they outlive EAL; INITIALISED guarantees no concurrent or repeated call from
        // this crate.
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            let no_huge = args.iter().any(|a| a.as_ref() == "--no-huge");
            let err = EalError::from_init(Errno::last(), no_huge, hugepages_total());
            if err != EalError::AlreadyInitialised {
                // DPDK allows another attempt after most failures (e.g. retry with --no-huge).
                INITIALISED.store(false, Ordering::Release);
            }
            return Err(err);
        }
        Ok(Eal { _private: () })
    }

    /// The main lcore (the one that ran `rte_eal_init`).
    pub fn main_lcore(&self) -> LcoreId {
        // SAFETY: EAL is initialised (self exists); the call only reads its configuration.
        LcoreId(unsafe { sys::rte_get_main_lcore() })
    }

    /// All enabled lcores except the main one, in id order.
    pub fn worker_lcores(&self) -> Vec<LcoreId> {
        let mut workers = Vec::new();
        let mut id = u32::MAX; // rte_get_next_lcore starts after i, so -1 starts at 0.
        loop {
            // SAFETY: EAL is initialised; rte_get_next_lcore only reads the lcore table.
            id = unsafe { sys::rte_get_next_lcore(id, 1, 0) };
            if id >= sys::RTE_MAX_LCORE {
                return workers;
            }
            workers.push(LcoreId(id));
        }
    }

    /// Number of enabled lcores, main included.
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: EAL is initialised; reads its configuration.
        unsafe { sys::rte_lcore_count() }
    }

    /// NUMA socket of the calling thread (`SOCKET_ID_ANY` = -1 when unknown).
    pub fn socket_id(&self) -> i32 {
        // SAFETY: reads per-thread EAL state; valid from any thread once EAL is up.
        unsafe { sys::rte_socket_id() as i32 }
    }

    /// The DPDK version this process runs with.
    pub fn version(&self) -> &'static str {
        crate::dpdk_version()
    }
}

/// `HugePages_Total` from /proc/meminfo (pages of the default size reserved), if readable.
fn hugepages_total() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Total:"))
        .and_then(|v| v.trim().parse().ok())
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: EAL was initialised by this value and is cleaned up exactly once; the type
        // documents that every DPDK object must be dropped before it.
        let ret = unsafe { sys::rte_eal_cleanup() };
        if ret < 0 {
            eprintln!("rte_eal_cleanup failed: {}", Errno::from_ret(ret));
        }
    }
}
