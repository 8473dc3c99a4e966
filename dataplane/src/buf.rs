//! The one thing the data plane needs from a packet buffer.
//!
//! The daemon implements [`PacketBuf`] for DPDK's `rte_mbuf`; tests and benches use [`VecBuf`].
//! Headroom matters: TUN encapsulation prepends an outer IPv4 header without copying the frame.

/// Why a buffer could not be resized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufError {
    /// Not enough headroom in front of the frame to prepend.
    NoHeadroom,
    /// Not enough tailroom behind the frame to append.
    NoTailroom,
    /// Asked to remove more bytes than the frame holds.
    TooShort,
}

/// A frame in a buffer with head- and tailroom.
pub trait PacketBuf {
    /// The frame, starting at the Ethernet header.
    fn frame(&self) -> &[u8];
    /// The frame, writable.
    fn frame_mut(&mut self) -> &mut [u8];
    /// Grows the frame by `n` bytes at the front (the new bytes are unspecified).
    fn prepend(&mut self, n: usize) -> Result<(), BufError>;
    /// Removes `n` bytes from the front of the frame.
    fn trim_front(&mut self, n: usize) -> Result<(), BufError>;
    /// Grows the frame by `n` bytes at the end (the new bytes are unspecified).
    fn append(&mut self, n: usize) -> Result<(), BufError>;
    /// Removes `n` bytes from the end of the frame.
    fn trim_back(&mut self, n: usize) -> Result<(), BufError>;
    /// Length of the frame in bytes.
    fn len(&self) -> usize {
        self.frame().len()
    }
    /// True when the frame is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A heap buffer with fixed head- and tailroom, like an mbuf; for tests and benches.
#[derive(Debug, Clone)]
pub struct VecBuf {
    storage: Vec<u8>,
    start: usize,
    end: usize,
}

impl VecBuf {
    /// Headroom a DPDK mbuf has by default (`RTE_PKTMBUF_HEADROOM`).
    pub const DEFAULT_HEADROOM: usize = 128;
    /// Room a 2 KiB mbuf data area leaves behind a frame.
    pub const DEFAULT_CAPACITY: usize = 2048;

    /// A buffer holding `frame` with the default headroom and capacity (grown if the frame is larger).
    pub fn new(frame: &[u8]) -> Self {
        Self::with_room(frame, Self::DEFAULT_HEADROOM, Self::DEFAULT_CAPACITY)
    }

    /// A buffer holding `frame` after `headroom` bytes, with at least `capacity` bytes of data room.
    pub fn with_room(frame: &[u8], headroom: usize, capacity: usize) -> Self {
        let size = capacity.max(headroom + frame.len());
        let mut storage = vec![0u8; size];
        storage[headroom..headroom + frame.len()].copy_from_slice(frame);
        Self {
            storage,
            start: headroom,
            end: headroom + frame.len(),
        }
    }

    /// Replaces the frame, keeping the buffer's room (no allocation if it fits).
    pub fn reset(&mut self, frame: &[u8], headroom: usize) {
        if self.storage.len() < headroom + frame.len() {
            self.storage.resize(headroom + frame.len(), 0);
        }
        self.start = headroom;
        self.end = headroom + frame.len();
        self.storage[self.start..self.end].copy_from_slice(frame);
    }

    /// Bytes free in front of the frame.
    pub fn headroom(&self) -> usize {
        self.start
    }
}

// Inlined as `Mbuf`'s are, so that benches on `VecBuf` pay what the worker pays.
impl PacketBuf for VecBuf {
    #[inline]
    fn frame(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }
    #[inline]
    fn frame_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.end]
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> Result<(), BufError> {
        if n > self.start {
            return Err(BufError::NoHeadroom);
        }
        self.start -= n;
        Ok(())
    }
    #[inline]
    fn trim_front(&mut self, n: usize) -> Result<(), BufError> {
        if n > self.end - self.start {
            return Err(BufError::TooShort);
        }
        self.start += n;
        Ok(())
    }
    #[inline]
    fn append(&mut self, n: usize) -> Result<(), BufError> {
        if n > self.storage.len() - self.end {
            return Err(BufError::NoTailroom);
        }
        self.end += n;
        Ok(())
    }
    #[inline]
    fn trim_back(&mut self, n: usize) -> Result<(), BufError> {
        if n > self.end - self.start {
            return Err(BufError::TooShort);
        }
        self.end -= n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_prepend_and_trim() {
        let mut b = VecBuf::with_room(&[1, 2, 3], 4, 16);
        b.prepend(2).unwrap();
        assert_eq!(b.len(), 5);
        b.frame_mut()[..2].copy_from_slice(&[9, 9]);
        assert_eq!(b.frame(), &[9, 9, 1, 2, 3]);
        assert_eq!(b.prepend(3), Err(BufError::NoHeadroom));
        b.trim_front(2).unwrap();
        b.trim_back(1).unwrap();
        assert_eq!(b.frame(), &[1, 2]);
        assert_eq!(b.trim_back(3), Err(BufError::TooShort));
        b.append(2).unwrap();
        assert_eq!(b.len(), 4);
        assert_eq!(b.append(100), Err(BufError::NoTailroom));
    }
}
