//! `rte_ring`: lock-free FIFO of pointers, used here to pass mbufs between cores and to back
//! ring ports (`rte_eth_from_rings`).
//!
//! A [`Ring`] is a cloneable handle; the ring is freed with the last handle of a ring this
//! process created. The mbuf methods move ownership in and out: whatever sits in a ring is an
//! owned mbuf, which is why pushing raw pointers is `unsafe`. Single-producer/consumer rings
//! check at run time that only one thread enqueues/dequeues at a time (see `excl`).

use std::ffi::{c_void, CStr, CString};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::burst::MbufBurst;
use crate::error::{Error, Result};
use crate::excl::Exclusive;
use crate::sys;

/// Producer/consumer mode of a new ring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingFlags {
    /// Only one thread enqueues (`RING_F_SP_ENQ`, faster).
    pub single_producer: bool,
    /// Only one thread dequeues (`RING_F_SC_DEQ`, faster).
    pub single_consumer: bool,
}

/// A handle to an `rte_ring` of mbuf pointers.
#[derive(Clone)]
pub struct Ring {
    inner: Arc<RingInner>,
}

struct RingInner {
    ptr: NonNull<sys::rte_ring>,
    owned: bool,
    /// Present for single-producer rings.
    enq: Option<Exclusive>,
    /// Present for single-consumer rings.
    deq: Option<Exclusive>,
}

// SAFETY: multi-producer/consumer ring operations are thread-safe; single-producer/consumer
// ones are serialised by the `Exclusive` flags, so sharing the handle across threads is sound.
unsafe impl Send for RingInner {}
// SAFETY: as above.
unsafe impl Sync for RingInner {}

impl Ring {
    /// Creates a ring holding exactly `count` entries on NUMA `socket` (-1 for any).
    pub fn create(name: &str, count: u32, socket: i32, flags: RingFlags) -> Result<Ring> {
        let cname = ring_name(name)?;
        let mut f = sys::RING_F_EXACT_SZ;
        if flags.single_producer {
            f |= sys::RING_F_SP_ENQ;
        }
        if flags.single_consumer {
            f |= sys::RING_F_SC_DEQ;
        }
        // SAFETY: cname is a valid C string; the rest are plain values.
        let ptr = unsafe { sys::rte_ring_create(cname.as_ptr(), count, socket, f) };
        let ptr = NonNull::new(ptr).ok_or_else(|| Error::last("rte_ring_create"))?;
        Ok(Ring::wrap(ptr, true))
    }

    /// Finds an existing ring by name; the handle does not free it.
    ///
    /// # Safety
    /// The ring must hold only owned mbuf pointers (true for rings made by [`Ring::create`] and
    /// used through this API), since dequeued entries become [`crate::Mbuf`]s; and a
    /// single-producer/consumer ring must not also be used through another handle at the same
    /// time (each handle has its own exclusivity flag).
    pub unsafe fn lookup(name: &str) -> Result<Ring> {
        let cname = ring_name(name)?;
        // SAFETY: cname is a valid C string.
        let ptr = unsafe { sys::rte_ring_lookup(cname.as_ptr()) };
        let ptr = NonNull::new(ptr).ok_or_else(|| Error::last("rte_ring_lookup"))?;
        Ok(Ring::wrap(ptr, false))
    }

    fn wrap(ptr: NonNull<sys::rte_ring>, owned: bool) -> Ring {
        // SAFETY: ptr is a live ring; `flags` is written once at creation.
        let flags = unsafe { ptr.as_ref().flags } as u32;
        Ring {
            inner: Arc::new(RingInner {
                ptr,
                owned,
                enq: (flags & sys::RING_F_SP_ENQ != 0).then(Exclusive::default),
                deq: (flags & sys::RING_F_SC_DEQ != 0).then(Exclusive::default),
            }),
        }
    }

    /// The ring's name.
    pub fn name(&self) -> String {
        // SAFETY: the name is a NUL-terminated array written at creation and never changed.
        unsafe { CStr::from_ptr(self.inner.ptr.as_ref().name.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    /// Entries the ring can hold.
    pub fn capacity(&self) -> u32 {
        // SAFETY: `capacity` is written once at creation.
        unsafe { self.inner.ptr.as_ref().capacity }
    }

    /// Entries currently queued.
    pub fn count(&self) -> u32 {
        // SAFETY: valid ring; reads the head/tail indexes.
        unsafe { sys::rte_ring_count(self.as_ptr()) }
    }

    /// Free entries.
    pub fn free_count(&self) -> u32 {
        // SAFETY: valid ring; reads the head/tail indexes.
        unsafe { sys::rte_ring_free_count(self.as_ptr()) }
    }

    /// The raw ring, valid while any handle lives.
    pub fn as_ptr(&self) -> *mut sys::rte_ring {
        self.inner.ptr.as_ptr()
    }

    /// Moves mbufs from the front of `burst` into the ring; what did not fit stays in `burst`
    /// (shifted to the front). Returns how many were enqueued.
    #[inline]
    pub fn enqueue_burst<const N: usize>(&self, burst: &mut MbufBurst<N>) -> usize {
        let len = burst.len();
        let ptrs = burst.as_ptr().cast::<*mut c_void>();
        // SAFETY: slots 0..len of the burst are owned mbufs; the enqueued prefix is then dropped
        // from the burst, so ownership moves into the ring.
        let n = unsafe { self.enqueue_raw_ptr(ptrs, len) };
        burst.consume_front(n);
        n
    }

    /// Moves up to `burst.spare()` mbufs from the ring into `burst`. Returns how many.
    #[inline]
    pub fn dequeue_burst<const N: usize>(&self, burst: &mut MbufBurst<N>) -> usize {
        let (ptr, spare) = burst.spare_ptr();
        let n = self.dequeue_raw_ptr(ptr.cast(), spare);
        // SAFETY: the ring holds only owned mbufs (module invariant); the n dequeued ones now
        // belong to the burst.
        unsafe { burst.commit(n) };
        n
    }

    /// Enqueues raw pointers; returns how many went in (a prefix of `objs`).
    ///
    /// # Safety
    /// Each pointer enqueued must be an mbuf whose ownership the caller gives to the ring.
    #[inline]
    pub unsafe fn enqueue_raw(&self, objs: &[*mut c_void]) -> usize {
        // SAFETY: forwarded from the caller; the slice is valid for reads of objs.len() entries.
        unsafe { self.enqueue_raw_ptr(objs.as_ptr(), objs.len()) }
    }

    /// Dequeues raw pointers into `out`; returns how many. The caller owns those mbufs (wrap them
    /// with [`crate::Mbuf::from_raw`] or they leak).
    #[inline]
    pub fn dequeue_raw(&self, out: &mut [*mut c_void]) -> usize {
        self.dequeue_raw_ptr(out.as_mut_ptr(), out.len())
    }

    /// # Safety
    /// `objs` must be valid for reading `n` owned-mbuf pointers.
    unsafe fn enqueue_raw_ptr(&self, objs: *const *mut c_void, n: usize) -> usize {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let go = || {
            // SAFETY: valid ring; objs is readable for n entries (caller contract); SP rings are
            // entered by one thread at a time via `enq`.
            unsafe { sys::rte_ring_enqueue_burst(self.as_ptr(), objs, n, std::ptr::null_mut()) }
        };
        let done = match &self.inner.enq {
            Some(excl) => excl.with(go).unwrap_or(0),
            None => go(),
        };
        done as usize
    }

    fn dequeue_raw_ptr(&self, out: *mut *mut c_void, n: usize) -> usize {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let go = || {
            // SAFETY: valid ring; out is writable for n entries (both callers pass a slice or
            // the burst's spare slots); SC rings are entered by one thread at a time via `deq`.
            unsafe { sys::rte_ring_dequeue_burst(self.as_ptr(), out, n, std::ptr::null_mut()) }
        };
        let done = match &self.inner.deq {
            Some(excl) => excl.with(go).unwrap_or(0),
            None => go(),
        };
        done as usize
    }
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("name", &self.name())
            .field("count", &self.count())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl Drop for RingInner {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let ring = self.ptr.as_ptr();
        // Free the mbufs still queued: they are owned by the ring (module invariant).
        let mut slot: [*mut c_void; 1] = [std::ptr::null_mut()];
        // SAFETY: last handle, so no other thread uses the ring; dequeued entries are owned mbufs.
        while unsafe {
            sys::rte_ring_dequeue_burst(ring, slot.as_mut_ptr(), 1, std::ptr::null_mut())
        } == 1
        {
            // SAFETY: an owned mbuf, freed once.
            unsafe { sys::rte_pktmbuf_free(slot[0].cast()) };
        }
        // SAFETY: created by this process via rte_ring_create; no handle remains.
        unsafe { sys::rte_ring_free(ring) };
    }
}

fn ring_name(name: &str) -> Result<CString> {
    if name.len() >= sys::RTE_RING_NAMESIZE as usize {
        return Err(Error::InvalidName);
    }
    CString::new(name).map_err(|_| Error::InvalidName)
}
