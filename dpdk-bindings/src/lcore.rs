//! Logical cores: ids, and running a Rust closure on a worker lcore.
//!
//! [`launch`] boxes a `'static` closure, hands it to `rte_eal_remote_launch` through an
//! `extern "C"` trampoline and catches any panic there, so no unwind ever crosses into C. A
//! panic becomes an orderly stop of that job, reported by [`LaunchHandle::join`].

use std::any::Any;
use std::ffi::{c_int, c_void};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::sys;

/// An EAL logical core id; prints as `lcore3`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LcoreId(pub u32);

impl fmt::Debug for LcoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lcore{}", self.0)
    }
}

impl fmt::Display for LcoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The lcore the calling thread runs as, or `None` for a non-EAL thread.
pub fn current_lcore() -> Option<LcoreId> {
    // SAFETY: reads this thread's per-lcore id; valid on any thread.
    let id = unsafe { sys::rte_lcore_id() };
    (id != sys::LCORE_ID_ANY).then_some(LcoreId(id))
}

/// A job on a worker lcore panicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LcorePanic {
    /// Where the job ran.
    pub lcore: LcoreId,
    /// The panic message (if it was a string).
    pub message: String,
}

impl fmt::Display for LcorePanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job on {:?} panicked: {}", self.lcore, self.message)
    }
}

impl std::error::Error for LcorePanic {}

/// What the trampoline receives: the closure and where to leave a panic message.
struct Job {
    f: Box<dyn FnOnce() + Send + 'static>,
    panic: Arc<Mutex<Option<String>>>,
}

/// Return code of a job that panicked (anything non-zero; the closure itself returns nothing).
const PANICKED: c_int = -1;

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Box<Job>` leaked by `launch`; EAL passes it to exactly one call of
    // this function, so ownership is taken back once.
    let job = unsafe { Box::from_raw(arg.cast::<Job>()) };
    let Job { f, panic } = *job;
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => 0,
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            if let Ok(mut slot) = panic.lock() {
                *slot = Some(message);
            }
            PANICKED
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("non-string panic payload")
    }
}

/// A job running on a worker lcore; [`join`](Self::join) waits for it.
///
/// Dropping the handle without joining detaches the job; the lcore accepts a new job once the
/// detached one has returned.
#[derive(Debug)]
#[must_use = "join the handle to learn whether the job panicked"]
pub struct LaunchHandle {
    lcore: LcoreId,
    panic: Arc<Mutex<Option<String>>>,
}

impl LaunchHandle {
    /// The lcore running the job.
    pub fn lcore(&self) -> LcoreId {
        self.lcore
    }

    /// Blocks until the job returns; a panic in it becomes `Err(LcorePanic)`.
    pub fn join(self) -> Result<(), LcorePanic> {
        // SAFETY: the lcore id came from a successful launch, so it is a valid worker; waiting
        // has no other precondition (EAL documents it for the main lcore, which is only about
        // there being a single launcher/waiter).
        let ret = unsafe { sys::rte_eal_wait_lcore(self.lcore.0) };
        let message = self.panic.lock().ok().and_then(|mut slot| slot.take());
        match (ret, message) {
            (0, None) => Ok(()),
            (_, message) => Err(LcorePanic {
                lcore: self.lcore,
                message: message.unwrap_or_else(|| format!("job returned {ret}")),
            }),
        }
    }
}

/// Waits for all `handles`; returns the first panic, after every job has stopped.
pub fn wait_all(handles: impl IntoIterator<Item = LaunchHandle>) -> Result<(), LcorePanic> {
    let mut first = Ok(());
    for handle in handles {
        let res = handle.join();
        if first.is_ok() {
            first = res;
        }
    }
    first
}

/// Runs `f` on worker `lcore`.
///
/// Call from one control thread at a time (normally the main lcore). Fails with
/// [`Error::NotWorker`] for the main or a disabled lcore, and [`Error::LcoreBusy`] if the lcore is
/// still running an earlier job.
pub fn launch<F>(lcore: LcoreId, f: F) -> Result<LaunchHandle>
where
    F: FnOnce() + Send + 'static,
{
    if lcore.0 >= sys::RTE_MAX_LCORE {
        return Err(Error::NotWorker(lcore));
    }
    // SAFETY: both calls only read EAL's lcore table; the id is below RTE_MAX_LCORE.
    let (enabled, main) = unsafe {
        (
            sys::rte_lcore_is_enabled(lcore.0),
            sys::rte_get_main_lcore(),
        )
    };
    if enabled == 0 || lcore.0 == main {
        return Err(Error::NotWorker(lcore));
    }
    // SAFETY: valid worker id (checked above).
    let state = unsafe { sys::rte_eal_get_lcore_state(lcore.0) };
    if state == sys::rte_lcore_state_t::RUNNING {
        return Err(Error::LcoreBusy(lcore));
    }
    let panic = Arc::new(Mutex::new(None));
    let job = Box::new(Job {
        f: Box::new(f),
        panic: Arc::clone(&panic),
    });
    let arg = Box::into_raw(job).cast::<c_void>();
    // SAFETY: `trampoline` matches lcore_function_t and takes ownership of `arg` exactly once
    // when EAL runs it; `lcore` is an enabled worker.
    let ret = unsafe { sys::rte_eal_remote_launch(Some(trampoline), arg, lcore.0) };
    if ret < 0 {
        // SAFETY: the launch failed, so EAL never handed `arg` to the trampoline; reclaim it.
        drop(unsafe { Box::from_raw(arg.cast::<Job>()) });
        return Err(if ret == -libc::EBUSY {
            Error::LcoreBusy(lcore)
        } else {
            Error::from_ret("rte_eal_remote_launch", ret)
        });
    }
    Ok(LaunchHandle { lcore, panic })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_lcore_id_debug() {
        assert_eq!(format!("{:?}", LcoreId(3)), "lcore3");
        assert_eq!(LcoreId(7).to_string(), "lcore7");
    }

    #[test]
    fn test_panic_message() {
        let p = catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(p.as_ref()), "boom 1");
        let p = catch_unwind(|| std::panic::panic_any(5u8)).unwrap_err();
        assert_eq!(panic_message(p.as_ref()), "non-string panic payload");
    }

    #[test]
    fn test_non_eal_thread_has_no_lcore() {
        // A fresh thread is never an EAL thread, whether or not EAL is up.
        assert_eq!(std::thread::spawn(current_lcore).join().unwrap(), None);
    }
}
