//! Ethernet II frames, with at most one 802.1Q VLAN tag.
//!
//! ```text
//! | dst mac (6) | src mac (6) | [0x8100 | TCI (2)] | ethertype (2) | payload ...
//! ```
//! [`EthernetFrame::ethertype`] is always the type *after* the tag, and [`EthernetFrame::header_len`]
//! the offset of the L3 header (14 or 18). Stacked tags (QinQ) are not decoded: the inner 0x8100
//! shows up as the ethertype, which the parser rejects.

use super::{get16, get_array, set16, EmitError, ParseError};
use std::fmt;

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// The all-zero address.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// True for group (multicast or broadcast) addresses.
    #[inline]
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Ethertype values the data plane knows.
pub struct EtherType;

impl EtherType {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag (QinQ outer).
    pub const QINQ: u16 = 0x88a8;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
}

mod field {
    pub const DST: usize = 0;
    pub const SRC: usize = 6;
    pub const TYPE: usize = 12;
    pub const TCI: usize = 14;
    pub const INNER_TYPE: usize = 16;
    pub const HEADER_LEN: usize = 14;
    pub const TAGGED_LEN: usize = 18;
}

/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = field::HEADER_LEN;
/// Length of an Ethernet header with one 802.1Q tag.
pub const TAGGED_HEADER_LEN: usize = field::TAGGED_LEN;

/// A view of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer that holds the full header (18 bytes if the frame is tagged).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        if b.len() < field::HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        if get16(b, field::TYPE) == EtherType::VLAN && b.len() < field::TAGGED_LEN {
            return Err(ParseError::Truncated);
        }
        Ok(EthernetFrame { buffer })
    }

    /// The underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC.
    #[inline]
    pub fn dst(&self) -> MacAddr {
        MacAddr(get_array(self.buffer.as_ref(), field::DST))
    }

    /// Source MAC.
    #[inline]
    pub fn src(&self) -> MacAddr {
        MacAddr(get_array(self.buffer.as_ref(), field::SRC))
    }

    /// True if the frame carries an 802.1Q tag.
    #[inline]
    pub fn is_tagged(&self) -> bool {
        get16(self.buffer.as_ref(), field::TYPE) == EtherType::VLAN
    }

    /// The tag control information (PCP, DEI, VLAN id) if tagged.
    #[inline]
    pub fn vlan_tci(&self) -> Option<u16> {
        if self.is_tagged() {
            Some(get16(self.buffer.as_ref(), field::TCI))
        } else {
            None
        }
    }

    /// The VLAN id (low 12 bits of the TCI) if tagged.
    #[inline]
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan_tci().map(|t| t & 0x0fff)
    }

    /// The ethertype after the tag, if any.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        get16(self.buffer.as_ref(), self.type_offset())
    }

    /// Offset of the L3 header: 14, or 18 with a tag.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            field::TAGGED_LEN
        } else {
            field::HEADER_LEN
        }
    }

    #[inline]
    fn type_offset(&self) -> usize {
        if self.is_tagged() {
            field::INNER_TYPE
        } else {
            field::TYPE
        }
    }

    /// The bytes after the Ethernet header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC.
    #[inline]
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DST..field::DST + 6].copy_from_slice(&mac.0);
    }

    /// Sets the source MAC.
    #[inline]
    pub fn set_src(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 6].copy_from_slice(&mac.0);
    }

    /// Swaps source and destination MACs (for replies sent back the way the frame came).
    #[inline]
    pub fn swap_addrs(&mut self) {
        let (src, dst) = (self.src(), self.dst());
        self.set_dst(src);
        self.set_src(dst);
    }

    /// Sets the ethertype after the tag, if any.
    #[inline]
    pub fn set_ethertype(&mut self, ty: u16) {
        let off = self.type_offset();
        set16(self.buffer.as_mut(), off, ty);
    }

    /// The bytes after the Ethernet header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let off = self.header_len();
        &mut self.buffer.as_mut()[off..]
    }
}

/// Writes an untagged Ethernet header into the first 14 bytes of `buf`.
#[inline]
pub fn emit(buf: &mut [u8], dst: MacAddr, src: MacAddr, ethertype: u16) -> Result<(), EmitError> {
    let hdr = buf
        .get_mut(..field::HEADER_LEN)
        .ok_or(EmitError::BufferTooShort)?;
    hdr[field::DST..field::DST + 6].copy_from_slice(&dst.0);
    hdr[field::SRC..field::SRC + 6].copy_from_slice(&src.0);
    set16(hdr, field::TYPE, ethertype);
    Ok(())
}

/// Writes an Ethernet header with one 802.1Q tag into the first 18 bytes of `buf`.
#[inline]
pub fn emit_tagged(
    buf: &mut [u8],
    dst: MacAddr,
    src: MacAddr,
    tci: u16,
    ethertype: u16,
) -> Result<(), EmitError> {
    let hdr = buf
        .get_mut(..field::TAGGED_LEN)
        .ok_or(EmitError::BufferTooShort)?;
    hdr[field::DST..field::DST + 6].copy_from_slice(&dst.0);
    hdr[field::SRC..field::SRC + 6].copy_from_slice(&src.0);
    set16(hdr, field::TYPE, EtherType::VLAN);
    set16(hdr, field::TCI, tci);
    set16(hdr, field::INNER_TYPE, ethertype);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNTAGGED: [u8; 16] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src
        0x08, 0x00, // IPv4
        0x45, 0x00,
    ];

    const TAGGED: [u8; 20] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src
        0x81, 0x00, 0xa0, 0x64, // 802.1Q, PCP 5, VLAN 100
        0x86, 0xdd, // IPv6
        0x60, 0x00,
    ];

    #[test]
    fn test_parse_untagged() {
        let f = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.src().to_string(), "02:00:00:00:00:02");
        assert_eq!(f.ethertype(), EtherType::IPV4);
        assert_eq!(f.vlan_tci(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn test_parse_tagged() {
        let f = EthernetFrame::new_checked(&TAGGED[..]).unwrap();
        assert!(f.dst().is_multicast());
        assert_eq!(f.vlan_tci(), Some(0xa064));
        assert_eq!(f.vlan_id(), Some(100));
        assert_eq!(f.ethertype(), EtherType::IPV6);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0x60, 0x00]);
    }

    #[test]
    fn test_truncated() {
        assert_eq!(
            EthernetFrame::new_checked(&UNTAGGED[..13]).unwrap_err(),
            ParseError::Truncated
        );
        assert_eq!(
            EthernetFrame::new_checked(&TAGGED[..17]).unwrap_err(),
            ParseError::Truncated
        );
        // 14 bytes are enough for an untagged header with no payload.
        assert_eq!(
            EthernetFrame::new_checked(&UNTAGGED[..14])
                .unwrap()
                .payload()
                .len(),
            0
        );
    }

    #[test]
    fn test_emit_and_setters() {
        let mut buf = [0u8; 18];
        emit_tagged(
            &mut buf,
            MacAddr::BROADCAST,
            MacAddr([2, 0, 0, 0, 0, 2]),
            0xa064,
            0x86dd,
        )
        .unwrap();
        assert_eq!(buf, TAGGED[..18]);
        let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        f.swap_addrs();
        f.set_ethertype(EtherType::ARP);
        assert_eq!(f.dst(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(f.src(), MacAddr::BROADCAST);
        assert_eq!(&buf[16..18], &[0x08, 0x06]);

        let mut plain = [0u8; 14];
        emit(
            &mut plain,
            MacAddr([2, 0, 0, 0, 0, 1]),
            MacAddr([2, 0, 0, 0, 0, 2]),
            0x0800,
        )
        .unwrap();
        assert_eq!(plain, UNTAGGED[..14]);
        assert_eq!(
            emit(&mut plain[..13], MacAddr::ZERO, MacAddr::ZERO, 0),
            Err(EmitError::BufferTooShort)
        );
    }
}
