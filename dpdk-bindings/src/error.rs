//! Typed errors for the DPDK boundary.
//!
//! Every negative return code or `rte_errno` becomes an [`Error`] right where the C call returns,
//! tagged with the name of that call. Errors are small `Copy` values (no allocation on the hot
//! path); the human text (`rte_strerror`) is looked up only when an error is displayed.

use std::ffi::CStr;
use std::fmt;

use crate::lcore::LcoreId;
use crate::port::PortId;
use crate::sys;

/// Result of a DPDK wrapper call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A positive errno value as DPDK reports it (`rte_errno` or a negated return code).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

/// `E_RTE_SECONDARY` from rte_errno.h: operation not allowed in a secondary process.
const E_RTE_SECONDARY: i32 = 1001;
/// `E_RTE_NO_CONFIG` from rte_errno.h: missing rte_config.
const E_RTE_NO_CONFIG: i32 = 1002;

impl Errno {
    /// The calling thread's current `rte_errno`.
    pub fn last() -> Errno {
        // SAFETY: reads this thread's per-lcore (thread-local) rte_errno; no preconditions.
        Errno(unsafe { sys::ironvs_rte_errno() })
    }

    /// Errno from a negative DPDK return code (`-EINVAL` → `EINVAL`).
    pub fn from_ret(ret: i32) -> Errno {
        Errno(ret.saturating_neg())
    }

    /// The symbolic name (`"EINVAL"`), or `"E?"` for a value not in the table.
    pub fn name(self) -> &'static str {
        match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::EIO => "EIO",
            libc::ENXIO => "ENXIO",
            libc::E2BIG => "E2BIG",
            libc::ENOEXEC => "ENOEXEC",
            libc::EAGAIN => "EAGAIN",
            libc::ENOMEM => "ENOMEM",
            libc::EACCES => "EACCES",
            libc::EFAULT => "EFAULT",
            libc::EBUSY => "EBUSY",
            libc::EEXIST => "EEXIST",
            libc::ENODEV => "ENODEV",
            libc::EINVAL => "EINVAL",
            libc::ENOSPC => "ENOSPC",
            libc::ERANGE => "ERANGE",
            libc::ENAMETOOLONG => "ENAMETOOLONG",
            libc::ENOSYS => "ENOSYS",
            libc::EPROTO => "EPROTO",
            libc::ENOBUFS => "ENOBUFS",
            libc::EALREADY => "EALREADY",
            libc::ENOTSUP => "ENOTSUP",
            E_RTE_SECONDARY => "E_RTE_SECONDARY",
            E_RTE_NO_CONFIG => "E_RTE_NO_CONFIG",
            _ => "E?",
        }
    }

    /// DPDK's description of this errno (`rte_strerror`), copied out of its per-thread buffer.
    pub fn message(self) -> String {
        // SAFETY: rte_strerror accepts any int and returns a NUL-terminated string that stays valid
        // until the next call on this thread; we copy it before returning.
        unsafe {
            let text = sys::rte_strerror(self.0);
            if text.is_null() {
                return String::from("unknown error");
            }
            CStr::from_ptr(text).to_string_lossy().into_owned()
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.message())
    }
}

/// Why a DPDK wrapper call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The mempool has no free mbuf (pool exhausted; packets are still in flight or leaked).
    NoMbufs,
    /// A DPDK call returned an error.
    Dpdk {
        /// The C function that failed.
        call: &'static str,
        /// Its errno.
        errno: Errno,
    },
    /// Another live [`crate::Port`] value already owns this port.
    PortTaken(PortId),
    /// The lcore is not a launchable worker (main lcore, disabled, or out of range).
    NotWorker(LcoreId),
    /// The worker lcore is still running an earlier job.
    LcoreBusy(LcoreId),
    /// A name is too long or contains a NUL byte.
    InvalidName,
    /// A configuration value the device or the wrapper cannot accept.
    InvalidConfig(&'static str),
}

impl Error {
    /// The error for a failed `call` that left its cause in `rte_errno`.
    pub fn last(call: &'static str) -> Error {
        Error::Dpdk {
            call,
            errno: Errno::last(),
        }
    }

    /// The error for a `call` that returned a negative errno.
    pub fn from_ret(call: &'static str, ret: i32) -> Error {
        Error::Dpdk {
            call,
            errno: Errno::from_ret(ret),
        }
    }

    /// The errno, when the error came from DPDK.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Dpdk { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// Turns a DPDK return code (negative errno on failure) into a `Result`.
pub(crate) fn check(call: &'static str, ret: i32) -> Result<i32> {
    if ret < 0 {
        Err(Error::from_ret(call, ret))
    } else {
        Ok(ret)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoMbufs => f.write_str(
                "mempool exhausted: no free mbuf (raise the pool size or find the leak)",
            ),
            Error::Dpdk { call, errno } => {
                write!(f, "{call} failed: {errno}")?;
                if errno.0 == libc::ENODEV {
                    f.write_str(
                        "; no such device: check the vdev string / PCI address / dpdk-devbind.py",
                    )?;
                }
                Ok(())
            }
            Error::PortTaken(port) => write!(f, "{port:?} is already owned by another Port handle"),
            Error::NotWorker(lcore) => {
                write!(
                    f,
                    "{lcore:?} is not an enabled worker lcore (check -l/--lcores)"
                )
            }
            Error::LcoreBusy(lcore) => write!(f, "{lcore:?} is still running a job"),
            Error::InvalidName => f.write_str("name is too long or contains a NUL byte"),
            Error::InvalidConfig(what) => write!(f, "invalid configuration: {what}"),
        }
    }
}

impl std::error::Error for Error {}

/// Why `rte_eal_init` failed, with the fix in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EalError {
    /// EAL was already initialised in this process (it can be initialised only once).
    AlreadyInitialised,
    /// An argument contains a NUL byte.
    NulInArgument,
    /// Hugepage memory could not be set up.
    Hugepages(Errno),
    /// A device named on the command line (vdev, PCI address) is missing or failed to probe.
    NoDevice(Errno),
    /// The process lacks privileges (hugepage files, /dev/vfio, raw sockets).
    Permission(Errno),
    /// EAL rejected its arguments.
    InvalidArguments(Errno),
    /// Any other failure.
    Other(Errno),
}

impl EalError {
    /// Classifies the `rte_errno` that `rte_eal_init` left behind.
    ///
    /// Observed with DPDK 22.11: no hugepages reserved → `EACCES` (see [`Self::from_init`]), an
    /// unknown `--vdev` driver → `ENODEV`, bad or conflicting options → `EINVAL`.
    pub fn from_errno(errno: Errno) -> EalError {
        match errno.0 {
            libc::EALREADY => EalError::AlreadyInitialised,
            libc::ENOMEM => EalError::Hugepages(errno),
            libc::EACCES | libc::EPERM => EalError::Permission(errno),
            libc::EINVAL => EalError::InvalidArguments(errno),
            // A failed device probe (unknown vdev driver, unbound PCI device), a missing PCI bus.
            libc::ENODEV | libc::ENOTSUP | libc::EPROTO | libc::ENOENT => EalError::NoDevice(errno),
            _ => EalError::Other(errno),
        }
    }

    /// Like [`Self::from_errno`], but tells a missing hugepage reservation from a permission
    /// problem: EAL reports both as `EACCES`.
    pub fn from_init(errno: Errno, no_huge: bool, hugepages_total: Option<u64>) -> EalError {
        if errno.0 == libc::EACCES && !no_huge && hugepages_total == Some(0) {
            return EalError::Hugepages(errno);
        }
        EalError::from_errno(errno)
    }
}

impl fmt::Display for EalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EalError::AlreadyInitialised => f.write_str(
                "EAL is already initialised in this process; it can be initialised only once, share the Eal handle",
            ),
            EalError::NulInArgument => f.write_str("an EAL argument contains a NUL byte"),
            EalError::Hugepages(e) => write!(
                f,
                "EAL memory setup failed ({e}): reserve hugepages (echo 1024 > /proc/sys/vm/nr_hugepages) \
                 and mount hugetlbfs, or run with --no-huge for tests"
            ),
            EalError::NoDevice(e) => write!(
                f,
                "EAL device probe failed ({e}): no such device: check the vdev string / PCI address / \
                 dpdk-devbind.py (is the NIC bound to vfio-pci?)"
            ),
            EalError::Permission(e) => write!(
                f,
                "EAL lacks privileges ({e}): run as root (or grant CAP_NET_ADMIN, CAP_IPC_LOCK, \
                 CAP_SYS_ADMIN and access to /dev/hugepages and /dev/vfio); without hugepages \
                 configured this also means: echo 1024 > /proc/sys/vm/nr_hugepages, or use --no-huge"
            ),
            EalError::InvalidArguments(e) => write!(
                f,
                "EAL rejected its arguments ({e}): see the EAL log above; note --in-memory cannot be \
                 combined with --no-huge in DPDK 22.11"
            ),
            EalError::Other(e) => write!(f, "EAL initialisation failed: {e}"),
        }
    }
}

impl std::error::Error for EalError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_errno_from_ret_and_name() {
        assert_eq!(Errno::from_ret(-libc::EINVAL), Errno(libc::EINVAL));
        assert_eq!(Errno(libc::EINVAL).name(), "EINVAL");
        assert_eq!(Errno(E_RTE_SECONDARY).name(), "E_RTE_SECONDARY");
        assert_eq!(Errno(9999).name(), "E?");
        assert_eq!(format!("{:?}", Errno(libc::ENODEV)), "ENODEV(19)");
    }

    #[test]
    fn test_check() {
        assert_eq!(check("f", 3), Ok(3));
        assert_eq!(
            check("rte_eth_dev_start", -libc::EIO),
            Err(Error::Dpdk {
                call: "rte_eth_dev_start",
                errno: Errno(libc::EIO)
            })
        );
    }

    #[test]
    fn test_enodev_display_names_the_fix() {
        let e = Error::from_ret("rte_eth_dev_get_port_by_name", -libc::ENODEV);
        let text = e.to_string();
        assert!(
            text.starts_with("rte_eth_dev_get_port_by_name failed: ENODEV ("),
            "{text}"
        );
        assert!(text.contains("dpdk-devbind.py"), "{text}");
    }

    #[test]
    fn test_eal_error_classification() {
        assert_eq!(
            EalError::from_errno(Errno(libc::EALREADY)),
            EalError::AlreadyInitialised
        );
        assert_eq!(
            EalError::from_errno(Errno(libc::ENOMEM)),
            EalError::Hugepages(Errno(libc::ENOMEM))
        );
        assert_eq!(
            EalError::from_errno(Errno(libc::EACCES)),
            EalError::Permission(Errno(libc::EACCES))
        );
        assert_eq!(
            EalError::from_errno(Errno(libc::ENOTSUP)),
            EalError::NoDevice(Errno(libc::ENOTSUP))
        );
        assert_eq!(
            EalError::from_errno(Errno(libc::EINVAL)),
            EalError::InvalidArguments(Errno(libc::EINVAL))
        );
        assert_eq!(
            EalError::from_errno(Errno(libc::EIO)),
            EalError::Other(Errno(libc::EIO))
        );
        assert_eq!(
            EalError::from_errno(Errno(libc::ENODEV)),
            EalError::NoDevice(Errno(libc::ENODEV))
        );
        let eacces = Errno(libc::EACCES);
        assert_eq!(
            EalError::from_init(eacces, false, Some(0)),
            EalError::Hugepages(eacces)
        );
        assert_eq!(
            EalError::from_init(eacces, false, Some(512)),
            EalError::Permission(eacces)
        );
        assert_eq!(
            EalError::from_init(eacces, true, Some(0)),
            EalError::Permission(eacces)
        );
    }

    #[test]
    fn test_eal_error_messages_explain_the_fix() {
        assert!(EalError::Hugepages(Errno(libc::ENOMEM))
            .to_string()
            .contains("--no-huge"));
        assert!(EalError::Hugepages(Errno(libc::ENOMEM))
            .to_string()
            .contains("/proc/sys/vm/nr_hugepages"));
        assert!(EalError::NoDevice(Errno(libc::ENOTSUP))
            .to_string()
            .contains("no such device"));
        assert!(EalError::Permission(Errno(libc::EACCES))
            .to_string()
            .contains("root"));
        assert!(EalError::AlreadyInitialised
            .to_string()
            .contains("already initialised"));
    }
}
