//! IPv4 headers (RFC 791).
//!
//! ```text
//! | ver|ihl | tos | total length    | ident           |DF|MF| frag offset |
//! | ttl     | proto | checksum     | source address  | destination address | options ...
//! ```
//! `new_checked` guarantees `20 <= header_len <= total_len <= buffer length`, so header, options
//! and payload slices are always in range. Ethernet padding after `total_len` is excluded from
//! [`Ipv4Packet::payload`].

use super::{get16, get_array, set16, EmitError, ParseError};
use crate::checksum;
use crate::flow::Addr;

mod field {
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
    pub const MIN_LEN: usize = 20;
}

/// Length of an IPv4 header without options.
pub const MIN_HEADER_LEN: usize = field::MIN_LEN;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after checking version, IHL and total length against it.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        if b.len() < field::MIN_LEN {
            return Err(ParseError::Truncated);
        }
        let vi = b[field::VER_IHL];
        if vi >> 4 != 4 {
            return Err(ParseError::BadVersion);
        }
        let hlen = usize::from(vi & 0x0f) * 4;
        if hlen < field::MIN_LEN {
            return Err(ParseError::BadHeaderLength);
        }
        if hlen > b.len() {
            return Err(ParseError::Truncated);
        }
        let tlen = usize::from(get16(b, field::LENGTH));
        if tlen < hlen || tlen > b.len() {
            return Err(ParseError::BadTotalLength);
        }
        Ok(Ipv4Packet { buffer })
    }

    /// The underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version nibble (4 after `new_checked`).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The TOS byte (DSCP << 2 | ECN).
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    /// Total length (header + payload) in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        get16(self.buffer.as_ref(), field::IDENT)
    }

    /// The don't-fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        get16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_DF != 0
    }

    /// The more-fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        get16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field × 8).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (get16(self.buffer.as_ref(), field::FLG_OFF) & OFFSET_MASK) << 3
    }

    /// True if this packet is a fragment (MF set or non-zero offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        get16(self.buffer.as_ref(), field::FLG_OFF) & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> [u8; 4] {
        get_array(self.buffer.as_ref(), field::SRC)
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> [u8; 4] {
        get_array(self.buffer.as_ref(), field::DST)
    }

    /// Source as a flow address.
    #[inline]
    pub fn src_addr(&self) -> Addr {
        Addr::v4(self.src())
    }

    /// Destination as a flow address.
    #[inline]
    pub fn dst_addr(&self) -> Addr {
        Addr::v4(self.dst())
    }

    /// The options bytes (possibly empty).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::MIN_LEN..self.header_len()]
    }

    /// The header, options included.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// The payload up to the total length (padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }

    /// True if the header checksum is valid.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.header())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4, 20..=60).
    #[inline]
    pub fn set_version_and_header_len(&mut self, len: u8) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((len / 4) & 0x0f);
    }

    /// Sets the TOS byte.
    #[inline]
    pub fn set_tos(&mut self, tos: u8) {
        self.buffer.as_mut()[field::TOS] = tos;
    }

    /// Sets the total length.
    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        set16(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, id: u16) {
        set16(self.buffer.as_mut(), field::IDENT, id);
    }

    /// Sets DF, MF and the fragment offset (in bytes, a multiple of 8).
    #[inline]
    pub fn set_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset >> 3) & OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        set16(self.buffer.as_mut(), field::FLG_OFF, v);
    }

    /// Sets the TTL.
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol.
    #[inline]
    pub fn set_protocol(&mut self, proto: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = proto;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        set16(self.buffer.as_mut(), field::CHECKSUM, csum);
    }

    /// Sets the source address (checksum untouched).
    #[inline]
    pub fn set_src(&mut self, a: [u8; 4]) {
        self.buffer.as_mut()[field::SRC..field::SRC + 4].copy_from_slice(&a);
    }

    /// Sets the destination address (checksum untouched).
    #[inline]
    pub fn set_dst(&mut self, a: [u8; 4]) {
        self.buffer.as_mut()[field::DST..field::DST + 4].copy_from_slice(&a);
    }

    /// Recomputes the header checksum from scratch.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }

    /// Replaces the source address, updating the header checksum incrementally; returns the old one.
    #[inline]
    pub fn rewrite_src(&mut self, new: [u8; 4]) -> [u8; 4] {
        let old = self.src();
        self.set_src(new);
        let c = checksum::update_addr4(self.checksum(), old, new);
        self.set_checksum(c);
        old
    }

    /// Replaces the destination address, updating the header checksum incrementally; returns the old one.
    #[inline]
    pub fn rewrite_dst(&mut self, new: [u8; 4]) -> [u8; 4] {
        let old = self.dst();
        self.set_dst(new);
        let c = checksum::update_addr4(self.checksum(), old, new);
        self.set_checksum(c);
        old
    }

    /// Decrements the TTL with an incremental checksum update; returns the new TTL (0 stays 0).
    #[inline]
    pub fn decrement_ttl(&mut self) -> u8 {
        let b = self.buffer.as_ref();
        let old_word = get16(b, field::TTL);
        let ttl = b[field::TTL].saturating_sub(1);
        self.set_ttl(ttl);
        let new_word = get16(self.buffer.as_ref(), field::TTL);
        let c = checksum::update16(self.checksum(), old_word, new_word);
        self.set_checksum(c);
        ttl
    }

    /// The payload up to the total length, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (h, t) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[h..t]
    }
}

/// The fields of an option-less IPv4 header, for emitting one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Payload protocol.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// TOS byte.
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't-fragment flag.
    pub dont_frag: bool,
    /// Payload length in bytes (total length minus 20).
    pub payload_len: u16,
}

impl Ipv4Repr {
    /// Writes a 20-byte header, checksum filled, into the front of `buf`.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), EmitError> {
        let mut p = self.emit_raw(buf)?;
        p.fill_checksum();
        Ok(())
    }

    /// Writes a 20-byte header with a zero checksum, for the NIC to fill (IPv4 checksum offload).
    #[inline]
    pub fn emit_for_offload(&self, buf: &mut [u8]) -> Result<(), EmitError> {
        self.emit_raw(buf).map(|_| ())
    }

    #[inline]
    fn emit_raw<'a>(&self, buf: &'a mut [u8]) -> Result<Ipv4Packet<&'a mut [u8]>, EmitError> {
        let hdr = buf
            .get_mut(..field::MIN_LEN)
            .ok_or(EmitError::BufferTooShort)?;
        let total = u16::try_from(usize::from(self.payload_len) + field::MIN_LEN)
            .map_err(|_| EmitError::TooLong)?;
        let mut p = Ipv4Packet::new_unchecked(hdr);
        p.set_version_and_header_len(field::MIN_LEN as u8);
        p.set_tos(self.tos);
        p.set_total_len(total);
        p.set_ident(self.ident);
        p.set_frag(self.dont_frag, false, 0);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_checksum(0);
        p.set_src(self.src);
        p.set_dst(self.dst);
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10.0.0.1 -> 10.0.0.2, TCP, ident 0x1c46, DF, TTL 64, 4 bytes of payload, plus 2 padding bytes.
    const PACKET: [u8; 26] = [
        0x45, 0x00, 0x00, 0x18, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x0a, 0x98, 10, 0, 0, 1, 10, 0,
        0, 2, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00,
    ];

    #[test]
    fn test_parse() {
        let p = Ipv4Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 24);
        assert_eq!(p.ident(), 0x1c46);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 6);
        assert_eq!(p.src(), [10, 0, 0, 1]);
        assert_eq!(p.dst_addr(), Addr::v4([10, 0, 0, 2]));
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(p.options().is_empty());
        assert!(p.verify_checksum());
    }

    #[test]
    fn test_fragment_fields_and_options() {
        let mut b = PACKET;
        b[0] = 0x46; // IHL 6: 4 option bytes (the 0xdeadbeef)
        b[6] = 0x20; // MF, offset 0x0b9 * 8
        b[7] = 0xb9;
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.options(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(p.payload().is_empty());
        assert!(p.more_frags());
        assert!(!p.dont_frag());
        assert_eq!(p.frag_offset(), 0xb9 * 8);
        assert!(p.is_fragment());
    }

    #[test]
    fn test_truncated() {
        let err = |b: &[u8]| Ipv4Packet::new_checked(b).unwrap_err();
        assert_eq!(err(&PACKET[..19]), ParseError::Truncated);
        assert_eq!(err(&PACKET[..23]), ParseError::BadTotalLength);
        let mut b = PACKET;
        b[0] = 0x65;
        assert_eq!(err(&b), ParseError::BadVersion);
        b[0] = 0x44;
        assert_eq!(err(&b), ParseError::BadHeaderLength);
        b[0] = 0x4f; // 60-byte header in a 26-byte buffer
        assert_eq!(err(&b), ParseError::Truncated);
        b[0] = 0x46;
        b[3] = 0x14; // total 20 < header 24
        assert_eq!(err(&b), ParseError::BadTotalLength);
    }

    #[test]
    fn test_emit() {
        let repr = Ipv4Repr {
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
            protocol: 6,
            ttl: 64,
            tos: 0,
            ident: 0x1c46,
            dont_frag: true,
            payload_len: 4,
        };
        let mut buf = [0u8; 20];
        repr.emit(&mut buf).unwrap();
        assert_eq!(buf, PACKET[..20]);
        repr.emit_for_offload(&mut buf).unwrap();
        assert_eq!(&buf[10..12], &[0, 0]);
        assert_eq!(repr.emit(&mut buf[..19]), Err(EmitError::BufferTooShort));
        let big = Ipv4Repr {
            payload_len: 65516,
            ..repr
        };
        assert_eq!(big.emit(&mut buf), Err(EmitError::TooLong));
    }

    #[test]
    fn test_rewrites_keep_checksum_valid() {
        let mut b = PACKET;
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.rewrite_dst([192, 168, 1, 20]), [10, 0, 0, 2]);
        assert_eq!(p.rewrite_src([172, 16, 0, 9]), [10, 0, 0, 1]);
        assert_eq!(p.decrement_ttl(), 63);
        assert!(p.verify_checksum());
        let incremental = p.checksum();
        p.fill_checksum();
        assert_eq!(p.checksum(), incremental);
        p.set_ttl(0);
        p.fill_checksum();
        assert_eq!(p.decrement_ttl(), 0);
        assert!(p.verify_checksum());
    }
}
