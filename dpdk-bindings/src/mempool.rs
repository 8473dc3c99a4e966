//! Packet-buffer pools (`rte_mempool` of `rte_mbuf`s).
//!
//! A [`Mempool`] is a cheap, cloneable handle; ports keep a clone for their RX queues, so the pool
//! outlives every queue that refills from it. The pool is freed when the last handle goes, and
//! only if no mbuf is still out: a pool with mbufs in flight is deliberately leaked rather than
//! freed under them.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::burst::MbufBurst;
use crate::error::{Error, Result};
use crate::mbuf::Mbuf;
use crate::sys;

/// A pool of packet mbufs.
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    ptr: NonNull<sys::rte_mempool>,
}

// SAFETY: the pool is created with the default multi-producer/multi-consumer ops, so get/put
// from any thread is safe; the pointer itself is never written after creation.
unsafe impl Send for PoolInner {}
// SAFETY: as above; every method takes &self and relies on DPDK's thread-safe pool ops.
unsafe impl Sync for PoolInner {}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("available", &self.available())
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl Mempool {
    /// Creates a pool of `n` mbufs with `data_room` bytes each (headroom included; use
    /// `RTE_MBUF_DEFAULT_BUF_SIZE` = 2176 for standard frames), a per-lcore cache of
    /// `cache_size`, on NUMA `socket` (-1 for any).
    pub fn new_pktmbuf(
        name: &str,
        n: u32,
        cache_size: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Mempool> {
        let cname = CString::new(name).map_err(|_| Error::InvalidName)?;
        if name.len() >= sys::RTE_MEMPOOL_NAMESIZE as usize {
            return Err(Error::InvalidName);
        }
        if cache_size > sys::RTE_MEMPOOL_CACHE_MAX_SIZE {
            return Err(Error::InvalidConfig(
                "mempool cache_size above RTE_MEMPOOL_CACHE_MAX_SIZE (512)",
            ));
        }
        // SAFETY: cname is a valid C string for the call; the other arguments are plain values.
        let ptr = unsafe {
            sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache_size, 0, data_room, socket)
        };
        let ptr = NonNull::new(ptr).ok_or_else(|| Error::last("rte_pktmbuf_pool_create"))?;
        Ok(Mempool {
            inner: Arc::new(PoolInner { ptr }),
        })
    }

    /// Takes one mbuf from the pool; [`Error::NoMbufs`] when the pool is exhausted.
    #[inline]
    pub fn alloc(&self) -> Result<Mbuf> {
        // SAFETY: the pool pointer is valid while self lives; rte_pktmbuf_alloc returns NULL or
        // a freshly reset mbuf that we now own.
        let m = unsafe { sys::rte_pktmbuf_alloc(self.as_ptr()) };
        match NonNull::new(m) {
            // SAFETY: a non-null result is an mbuf owned by nobody else.
            Some(m) => Ok(unsafe { Mbuf::from_raw(m.as_ptr()) }),
            None => Err(Error::NoMbufs),
        }
    }

    /// Fills `burst` up to `count` mbufs in one bulk get (all or nothing).
    pub fn alloc_bulk<const N: usize>(&self, burst: &mut MbufBurst<N>, count: usize) -> Result<()> {
        if count > burst.spare() {
            return Err(Error::InvalidConfig(
                "alloc_bulk count exceeds the burst's spare capacity",
            ));
        }
        let (ptr, _) = burst.spare_ptr();
        // SAFETY: `ptr` points at `count` writable slots inside the burst (checked above); on
        // success each holds a fresh mbuf that the burst then owns.
        let ret = unsafe { sys::rte_pktmbuf_alloc_bulk(self.as_ptr(), ptr, count as u32) };
        if ret != 0 {
            return Err(Error::NoMbufs);
        }
        // SAFETY: the first `count` spare slots were just filled with owned mbufs.
        unsafe { burst.commit(count) };
        Ok(())
    }

    /// Mbufs free in the pool (per-lcore caches included).
    pub fn available(&self) -> u32 {
        // SAFETY: valid pool pointer; the call only reads counters.
        unsafe { sys::rte_mempool_avail_count(self.as_ptr()) }
    }

    /// Mbufs taken out of the pool and not yet returned.
    pub fn in_use(&self) -> u32 {
        // SAFETY: valid pool pointer; the call only reads counters.
        unsafe { sys::rte_mempool_in_use_count(self.as_ptr()) }
    }

    /// The raw pool, valid while any handle lives.
    pub fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.inner.ptr.as_ptr()
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // SAFETY: valid pool pointer; reading counters has no other precondition.
        let in_use = unsafe { sys::rte_mempool_in_use_count(self.ptr.as_ptr()) };
        if in_use == 0 {
            // SAFETY: no handle and no mbuf refers to the pool any more, so it can go.
            unsafe { sys::rte_mempool_free(self.ptr.as_ptr()) };
        } else {
            eprintln!("ironvs: leaking mempool with {in_use} mbufs still in use");
        }
    }
}
