//! A fixed-capacity burst of owned mbufs, used for both RX and TX.
//!
//! The array lives inline (no allocation per burst). Every pointer in `0..len` is an mbuf the
//! burst owns: RX fills it, TX sends from the front and keeps what the NIC did not take at the
//! front, and whatever is left when the burst drops is freed.

use std::iter::FusedIterator;

use crate::mbuf::Mbuf;
use crate::sys;

/// Default burst size (DPDK's customary 32).
pub const DEFAULT_BURST: usize = 32;

/// Up to `N` owned mbufs.
pub struct MbufBurst<const N: usize = DEFAULT_BURST> {
    ptrs: [*mut sys::rte_mbuf; N],
    len: usize,
}

/// An RX burst (same type as [`TxBurst`]).
pub type RxBurst<const N: usize = DEFAULT_BURST> = MbufBurst<N>;
/// A TX burst (same type as [`RxBurst`]).
pub type TxBurst<const N: usize = DEFAULT_BURST> = MbufBurst<N>;

// SAFETY: the burst uniquely owns its mbufs (like a Vec<Mbuf>), and Mbuf is Send.
unsafe impl<const N: usize> Send for MbufBurst<N> {}

impl<const N: usize> Default for MbufBurst<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> MbufBurst<N> {
    /// An empty burst.
    pub const fn new() -> Self {
        MbufBurst {
            ptrs: [std::ptr::null_mut(); N],
            len: 0,
        }
    }

    /// Mbufs held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no more mbufs fit.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == N
    }

    /// Capacity `N`.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Free slots.
    #[inline]
    pub fn spare(&self) -> usize {
        N - self.len
    }

    /// Adds an mbuf at the back; hands it back if the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == N {
            return Err(m);
        }
        self.ptrs[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Moves mbufs from the front of `src` to the back of this burst, as many as fit (the rest
    /// stay in `src`, in order); returns how many moved.
    #[inline]
    pub fn take_from<const M: usize>(&mut self, src: &mut MbufBurst<M>) -> usize {
        let k = self.spare().min(src.len);
        self.ptrs[self.len..self.len + k].copy_from_slice(&src.ptrs[..k]);
        self.len += k;
        src.consume_front(k);
        k
    }

    /// Removes the last mbuf.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot `len` held an owned mbuf and is now outside 0..len, so ownership moves out.
        Some(unsafe { Mbuf::from_raw(self.ptrs[self.len]) })
    }

    /// The mbuf at `i`, borrowed.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&Mbuf> {
        if i >= self.len {
            return None;
        }
        // SAFETY: Mbuf is a transparent-sized NonNull wrapper around the same pointer; slots in
        // 0..len are owned non-null mbufs, and the borrow ties the view to &self.
        Some(unsafe { &*(self.ptrs.as_ptr().add(i).cast::<Mbuf>()) })
    }

    /// The mbuf at `i`, mutably borrowed.
    #[inline]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Mbuf> {
        if i >= self.len {
            return None;
        }
        // SAFETY: as in `get`, with exclusive access through &mut self.
        Some(unsafe { &mut *(self.ptrs.as_mut_ptr().add(i).cast::<Mbuf>()) })
    }

    /// The held mbufs as a slice, e.g. to process a whole burst in place.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: Mbuf is #[repr(transparent)] over NonNull<rte_mbuf> (its other field is a
        // zero-sized PhantomData), so it has the layout of `*mut rte_mbuf`; slots 0..len are owned
        // non-null mbufs. The slice borrows `self` mutably, so the mbufs cannot be moved out,
        // freed or replaced while it lives, and writing an Mbuf through it (e.g. mem::swap) keeps
        // every slot an owned mbuf.
        unsafe { std::slice::from_raw_parts_mut(self.ptrs.as_mut_ptr().cast::<Mbuf>(), self.len) }
    }

    /// Takes every mbuf out, front to back; mbufs the iterator does not yield are freed.
    #[inline]
    pub fn drain(&mut self) -> Drain<'_, N> {
        let end = self.len;
        // Ownership moves to the iterator; if it is leaked, the mbufs leak but never double-free.
        self.len = 0;
        Drain {
            burst: self,
            next: 0,
            end,
        }
    }

    /// Frees every mbuf.
    pub fn clear(&mut self) {
        if self.len > 0 {
            // SAFETY: slots 0..len are owned mbufs; after the call the burst is empty.
            unsafe { sys::rte_pktmbuf_free_bulk(self.ptrs.as_mut_ptr(), self.len as u32) };
            self.len = 0;
        }
    }

    /// The owned pointers, e.g. for `rte_eth_tx_burst`.
    #[inline]
    pub fn as_ptr(&mut self) -> *mut *mut sys::rte_mbuf {
        self.ptrs.as_mut_ptr()
    }

    /// Pointer to the first free slot and the number of free slots, for C calls that fill them.
    #[inline]
    pub(crate) fn spare_ptr(&mut self) -> (*mut *mut sys::rte_mbuf, usize) {
        let spare = N - self.len;
        // SAFETY: len <= N, so the offset stays within (or one past) the array.
        (unsafe { self.ptrs.as_mut_ptr().add(self.len) }, spare)
    }

    /// Marks `n` spare slots as filled.
    ///
    /// # Safety
    /// The first `n` spare slots must hold mbufs whose ownership passes to the burst.
    #[inline]
    pub(crate) unsafe fn commit(&mut self, n: usize) {
        debug_assert!(n <= N - self.len);
        self.len += n;
    }

    /// Drops the first `n` mbufs from the burst's ownership (they were handed to C) and moves the
    /// rest to the front.
    #[inline]
    pub(crate) fn consume_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.ptrs.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

impl<const N: usize> Drop for MbufBurst<N> {
    fn drop(&mut self) {
        self.clear();
    }
}

impl<const N: usize> std::fmt::Debug for MbufBurst<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MbufBurst<{N}>(len {})", self.len)
    }
}

/// Iterator returned by [`MbufBurst::drain`].
pub struct Drain<'a, const N: usize> {
    burst: &'a mut MbufBurst<N>,
    next: usize,
    end: usize,
}

impl<const N: usize> Iterator for Drain<'_, N> {
    type Item = Mbuf;

    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        if self.next >= self.end {
            return None;
        }
        let p = self.burst.ptrs[self.next];
        self.next += 1;
        // SAFETY: slots next..end are owned by the drain and each is yielded once.
        Some(unsafe { Mbuf::from_raw(p) })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl<const N: usize> ExactSizeIterator for Drain<'_, N> {}
impl<const N: usize> FusedIterator for Drain<'_, N> {}

impl<const N: usize> Drop for Drain<'_, N> {
    fn drop(&mut self) {
        let rest = self.end - self.next;
        if rest > 0 {
            // SAFETY: slots next..end are still owned by the drain and freed exactly once.
            unsafe {
                sys::rte_pktmbuf_free_bulk(self.burst.ptrs.as_mut_ptr().add(self.next), rest as u32)
            };
        }
    }
}
