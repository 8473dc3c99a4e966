//! UDP headers (RFC 768).
//!
//! ```text
//! | src port | dst port | length | checksum | payload ...
//! ```
//! `new_checked` guarantees `8 <= length <= buffer length`. A first IP fragment carries a UDP
//! header whose length covers the whole datagram; read its ports with [`UdpPacket::new_unchecked`]
//! after checking 8 bytes, as [`super::parse_frame`] does. Over IPv4 a zero checksum means "none";
//! the rewrite helpers keep it zero (see [`crate::checksum::udp_update16`]).

use super::{get16, set16, ParseError};
use crate::checksum;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
    pub const LEN: usize = 8;
}

/// Length of a UDP header.
pub const HEADER_LEN: usize = field::LEN;

/// A view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without checking it (only the 8 header bytes may be relied on then).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps a buffer holding the header and the datagram its length field claims.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        if b.len() < field::LEN {
            return Err(ParseError::Truncated);
        }
        let len = usize::from(get16(b, field::LENGTH));
        if len < field::LEN || len > b.len() {
            return Err(ParseError::BadL4Length);
        }
        Ok(UdpPacket { buffer })
    }

    /// The underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field (header + payload).
    #[inline]
    pub fn len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::LENGTH)
    }

    /// True if the length field says there is no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= field::LEN
    }

    /// Checksum field (0 = none, IPv4 only).
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The payload as the length field bounds it.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::LEN..usize::from(self.len())]
    }

    /// The header and payload as the length field bounds them.
    #[inline]
    pub fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.len())]
    }

    /// True if the checksum verifies under `pseudo_sum`, or is absent (zero).
    #[inline]
    pub fn verify_checksum(&self, pseudo_sum: u16) -> bool {
        self.checksum() == 0 || checksum::add(pseudo_sum, checksum::sum(self.datagram())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, p: u16) {
        set16(self.buffer.as_mut(), field::SRC_PORT, p);
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, p: u16) {
        set16(self.buffer.as_mut(), field::DST_PORT, p);
    }

    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, l: u16) {
        set16(self.buffer.as_mut(), field::LENGTH, l);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        set16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// Replaces the source port (zero checksum kept zero); returns the old port.
    #[inline]
    pub fn rewrite_src_port(&mut self, p: u16) -> u16 {
        let old = self.src_port();
        self.set_src_port(p);
        let c = checksum::udp_update16(self.checksum(), old, p);
        self.set_checksum(c);
        old
    }

    /// Replaces the destination port (zero checksum kept zero); returns the old port.
    #[inline]
    pub fn rewrite_dst_port(&mut self, p: u16) -> u16 {
        let old = self.dst_port();
        self.set_dst_port(p);
        let c = checksum::udp_update16(self.checksum(), old, p);
        self.set_checksum(c);
        old
    }

    /// Computes and stores the checksum over the datagram (never zero).
    #[inline]
    pub fn fill_checksum(&mut self, pseudo_sum: u16) {
        self.set_checksum(0);
        let c = checksum::l4_checksum(pseudo_sum, self.datagram());
        self.set_checksum(checksum::udp_finish(c));
    }
}

/// Writes a UDP header (checksum zero) into the first 8 bytes of `buf`.
#[inline]
pub fn emit(buf: &mut [u8], sport: u16, dport: u16, len: u16) -> Result<(), super::EmitError> {
    let b = buf
        .get_mut(..field::LEN)
        .ok_or(super::EmitError::BufferTooShort)?;
    let mut u = UdpPacket::new_unchecked(b);
    u.set_src_port(sport);
    u.set_dst_port(dport);
    u.set_len(len);
    u.set_checksum(0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DNS query header: 10.0.0.1:53000 -> 10.0.0.53:53, 12 bytes of payload, checksum filled below.
    const DNS: [u8; 20] = [
        0xcf, 0x08, 0x00, 0x35, 0x00, 0x14, 0x00, 0x00, 0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn test_parse() {
        let u = UdpPacket::new_checked(&DNS[..]).unwrap();
        assert_eq!(u.src_port(), 53000);
        assert_eq!(u.dst_port(), 53);
        assert_eq!(u.len(), 20);
        assert!(!u.is_empty());
        assert_eq!(u.payload().len(), 12);
        assert_eq!(u.checksum(), 0);
        assert!(u.verify_checksum(0x1234));
    }

    #[test]
    fn test_bad_lengths() {
        assert_eq!(
            UdpPacket::new_checked(&DNS[..7]).unwrap_err(),
            ParseError::Truncated
        );
        assert_eq!(
            UdpPacket::new_checked(&DNS[..19]).unwrap_err(),
            ParseError::BadL4Length
        );
        let mut b = DNS;
        b[5] = 7;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            ParseError::BadL4Length
        );
        // Trailing padding beyond the length field is allowed and excluded.
        let mut padded = DNS.to_vec();
        padded.extend_from_slice(&[0; 6]);
        let u = UdpPacket::new_checked(&padded[..]).unwrap();
        assert_eq!(u.datagram().len(), 20);
    }

    #[test]
    fn test_checksum_and_rewrites() {
        let mut b = DNS;
        let ps = checksum::pseudo_v4([10, 0, 0, 1], [10, 0, 0, 53], 17, 20);
        let mut u = UdpPacket::new_checked(&mut b[..]).unwrap();
        u.fill_checksum(ps);
        assert_ne!(u.checksum(), 0);
        assert!(u.verify_checksum(ps));
        assert_eq!(u.rewrite_src_port(1), 53000);
        assert_eq!(u.rewrite_dst_port(5353), 53);
        assert!(u.verify_checksum(ps));
        assert!(!u.verify_checksum(ps.wrapping_add(1)));
        // Zero checksum stays zero through rewrites.
        u.set_checksum(0);
        u.rewrite_dst_port(53);
        assert_eq!(u.checksum(), 0);
    }

    #[test]
    fn test_emit() {
        let mut b = [0xffu8; 8];
        emit(&mut b, 53000, 53, 20).unwrap();
        assert_eq!(b, DNS[..8]);
        assert!(emit(&mut b[..7], 1, 2, 8).is_err());
    }
}
