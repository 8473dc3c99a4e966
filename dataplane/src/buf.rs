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
///
/// Offsets are 16-bit, as an mbuf segment's are, and the storage always spans twice their
/// range, so that [`PacketBuf::frame`] is bounds-check free, as `Mbuf`'s is: a bench on
/// `VecBuf` then pays for a frame what the worker pays: three loads and an add, where the
/// two bounds checks of a `Vec` slice made it nine instructions.
#[derive(Debug, Clone)]
pub struct VecBuf {
    storage: Box<[u8; VecBuf::STORAGE]>,
    start: u16,
    len: u16,
    /// Where the data room ends: `start + len <= room`.
    room: u16,
}

impl VecBuf {
    /// Headroom a DPDK mbuf has by default (`RTE_PKTMBUF_HEADROOM`).
    pub const DEFAULT_HEADROOM: usize = 128;
    /// Room a 2 KiB mbuf data area leaves behind a frame.
    pub const DEFAULT_CAPACITY: usize = 2048;
    /// The most data room a buffer has (an mbuf segment's 16-bit lengths).
    pub const MAX_ROOM: usize = u16::MAX as usize;
    /// Bytes allocated: any 16-bit start plus any 16-bit length is in bounds (128 KiB, a
    /// test buffer's price for a check-free frame; only the room is ever written).
    const STORAGE: usize = 2 << 16;

    /// A buffer holding `frame` with the default headroom and capacity (grown if the frame is larger).
    pub fn new(frame: &[u8]) -> Self {
        Self::with_room(frame, Self::DEFAULT_HEADROOM, Self::DEFAULT_CAPACITY)
    }

    /// A buffer holding `frame` after `headroom` bytes, with at least `capacity` bytes of data room.
    ///
    /// # Panics
    /// When `headroom + frame.len()` exceeds [`VecBuf::MAX_ROOM`].
    pub fn with_room(frame: &[u8], headroom: usize, capacity: usize) -> Self {
        let storage = vec![0u8; Self::STORAGE]
            .into_boxed_slice()
            .try_into()
            .unwrap_or_else(|_| unreachable!("the vector has STORAGE bytes"));
        let mut b = Self {
            storage,
            start: 0,
            len: 0,
            room: Self::room_for(capacity.max(headroom + frame.len())),
        };
        b.reset(frame, headroom);
        b
    }

    /// `bytes` as a room, or a panic naming the limit.
    fn room_for(bytes: usize) -> u16 {
        u16::try_from(bytes).unwrap_or_else(|_| {
            panic!(
                "VecBuf holds at most {} bytes (headroom and frame), not {bytes}",
                Self::MAX_ROOM
            )
        })
    }

    /// Replaces the frame, keeping the buffer's room (grown if the frame does not fit).
    ///
    /// # Panics
    /// When `headroom + frame.len()` exceeds [`VecBuf::MAX_ROOM`].
    pub fn reset(&mut self, frame: &[u8], headroom: usize) {
        let end = Self::room_for(headroom + frame.len());
        self.room = self.room.max(end);
        // Both fit u16, since their sum does.
        self.start = headroom as u16;
        self.len = frame.len() as u16;
        self.storage[headroom..usize::from(end)].copy_from_slice(frame);
    }

    /// Bytes free in front of the frame.
    pub fn headroom(&self) -> usize {
        usize::from(self.start)
    }

    /// Where the frame ends in the storage.
    fn end(&self) -> usize {
        usize::from(self.start) + usize::from(self.len)
    }
}

// Inlined as `Mbuf`'s are, so that benches on `VecBuf` pay what the worker pays.
impl PacketBuf for VecBuf {
    #[inline]
    fn frame(&self) -> &[u8] {
        // Both ends below 2^17 = STORAGE: the compiler drops the bounds checks.
        let start = usize::from(self.start);
        &self.storage[start..start + usize::from(self.len)]
    }
    #[inline]
    fn frame_mut(&mut self) -> &mut [u8] {
        let start = usize::from(self.start);
        &mut self.storage[start..start + usize::from(self.len)]
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> Result<(), BufError> {
        if n > usize::from(self.start) {
            return Err(BufError::NoHeadroom);
        }
        // n <= start, and the frame stays where it ends: both fit u16.
        self.start -= n as u16;
        self.len += n as u16;
        Ok(())
    }
    #[inline]
    fn trim_front(&mut self, n: usize) -> Result<(), BufError> {
        if n > usize::from(self.len) {
            return Err(BufError::TooShort);
        }
        self.start += n as u16;
        self.len -= n as u16;
        Ok(())
    }
    #[inline]
    fn append(&mut self, n: usize) -> Result<(), BufError> {
        if n > usize::from(self.room) - self.end() {
            return Err(BufError::NoTailroom);
        }
        // end + n <= room, a u16.
        self.len += n as u16;
        Ok(())
    }
    #[inline]
    fn trim_back(&mut self, n: usize) -> Result<(), BufError> {
        if n > usize::from(self.len) {
            return Err(BufError::TooShort);
        }
        self.len -= n as u16;
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
        // The room is 16 bytes, and the frame (from 4) now ends at 8.
        b.append(8).unwrap();
        assert_eq!(b.append(1), Err(BufError::NoTailroom));
        assert_eq!(b.len(), 12);
    }

    #[test]
    fn test_reset_grows_the_room_and_limits_it() {
        let mut b = VecBuf::with_room(&[1, 2], 2, 8);
        b.reset(&[7; 20], 4);
        assert_eq!((b.headroom(), b.len()), (4, 20));
        assert_eq!(b.append(0), Ok(()));
        assert_eq!(b.append(1), Err(BufError::NoTailroom));
        let big = vec![5u8; VecBuf::MAX_ROOM - 128];
        let b = VecBuf::new(&big);
        assert_eq!(b.frame(), &big[..]);
        let too_big = std::panic::catch_unwind(|| VecBuf::new(&[0u8; VecBuf::MAX_ROOM]));
        assert!(too_big.is_err());
    }
}
