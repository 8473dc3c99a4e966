//! IPv6 headers (RFC 8200) and the walk over extension headers to the upper layer.
//!
//! ```text
//! | ver | traffic class | flow label (20) | payload length | next header | hop limit |
//! | source address (16) | destination address (16) |                     40 bytes
//! ```
//! `new_checked` guarantees `40 + payload_len <= buffer length`. [`walk_ext`] follows hop-by-hop,
//! routing, fragment, destination-options and AH headers and stops at anything else (TCP, UDP,
//! ICMPv6, ESP, no-next-header, ...), or at a fragment header with a non-zero offset, whose data
//! is not a header.

use super::ip_proto::{AH, HOPOPT, IPV6_FRAG, IPV6_OPTS, IPV6_ROUTE};
use super::{get16, get32, get_array, set16, set32, EmitError, Frag, ParseError};
use crate::flow::Addr;

mod field {
    pub const VER_TC_FL: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
    pub const LEN: usize = 40;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = field::LEN;

/// The most extension headers [`walk_ext`] follows before giving up.
pub const MAX_EXT_HEADERS: usize = 8;

/// Where the upper-layer header of an IPv6 packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upper {
    /// Upper-layer protocol (for a later fragment: the protocol of the whole datagram).
    pub proto: u8,
    /// Offset of the upper-layer header (or fragment data) from the start of the IPv6 header.
    pub offset: usize,
    /// Fragment status.
    pub frag: Frag,
    /// Offset of the fragment header, if one was seen (atomic fragments included).
    pub frag_header: Option<usize>,
}

/// Walks extension headers in `packet` (bounded at the end of the IPv6 payload) starting with
/// header type `next` at offset `start`.
#[inline]
pub fn walk_ext(packet: &[u8], next: u8, start: usize) -> Result<Upper, ParseError> {
    let mut nh = next;
    let mut off = start;
    let mut frag = Frag::None;
    let mut frag_header = None;
    for i in 0..=MAX_EXT_HEADERS {
        if !matches!(nh, HOPOPT | IPV6_ROUTE | IPV6_FRAG | IPV6_OPTS | AH) {
            return Ok(Upper {
                proto: nh,
                offset: off,
                frag,
                frag_header,
            });
        }
        if i == MAX_EXT_HEADERS {
            break;
        }
        // Hop-by-hop options may only come right after the IPv6 header.
        if nh == HOPOPT && i != 0 {
            return Err(ParseError::BadExtHeader);
        }
        // Every extension header is at least 8 bytes long.
        let hdr: [u8; 8] = packet
            .get(off..off + 8)
            .and_then(|h| h.try_into().ok())
            .ok_or(ParseError::Truncated)?;
        let len = match nh {
            AH => (usize::from(hdr[1]) + 2) * 4,
            IPV6_FRAG => 8,
            _ => (usize::from(hdr[1]) + 1) * 8,
        };
        if nh == IPV6_FRAG {
            if frag_header.is_some() {
                return Err(ParseError::BadExtHeader);
            }
            frag_header = Some(off);
            let fo = get16(&hdr, 2);
            if fo & 0xfff8 != 0 {
                return Ok(Upper {
                    proto: hdr[0],
                    offset: off + 8,
                    frag: Frag::Later,
                    frag_header,
                });
            }
            if fo & 1 != 0 {
                frag = Frag::First;
            }
        }
        if off + len > packet.len() {
            return Err(ParseError::Truncated);
        }
        nh = hdr[0];
        off += len;
    }
    Err(ParseError::TooManyExtHeaders)
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer after checking the version and that the payload length fits.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        if b.len() < field::LEN {
            return Err(ParseError::Truncated);
        }
        if b[field::VER_TC_FL] >> 4 != 6 {
            return Err(ParseError::BadVersion);
        }
        if field::LEN + usize::from(get16(b, field::PAYLOAD_LEN)) > b.len() {
            return Err(ParseError::BadTotalLength);
        }
        Ok(Ipv6Packet { buffer })
    }

    /// The underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version nibble (6 after `new_checked`).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FL] >> 4
    }

    /// Traffic class (DSCP << 2 | ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (get16(self.buffer.as_ref(), field::VER_TC_FL) >> 4) as u8
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        get32(self.buffer.as_ref(), field::VER_TC_FL) & 0x000f_ffff
    }

    /// Payload length (everything after the fixed header, extension headers included).
    #[inline]
    pub fn payload_len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// Total length: 40 + payload length.
    #[inline]
    pub fn total_len(&self) -> usize {
        field::LEN + usize::from(self.payload_len())
    }

    /// The next-header field of the fixed header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> [u8; 16] {
        get_array(self.buffer.as_ref(), field::SRC)
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> [u8; 16] {
        get_array(self.buffer.as_ref(), field::DST)
    }

    /// Source as a flow address.
    #[inline]
    pub fn src_addr(&self) -> Addr {
        Addr::v6(self.src())
    }

    /// Destination as a flow address.
    #[inline]
    pub fn dst_addr(&self) -> Addr {
        Addr::v6(self.dst())
    }

    /// The packet up to its payload length (Ethernet padding excluded).
    #[inline]
    pub fn packet(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.total_len()]
    }

    /// The payload (extension headers included), padding excluded.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::LEN..self.total_len()]
    }

    /// Walks the extension headers to the upper layer.
    #[inline]
    pub fn upper_layer(&self) -> Result<Upper, ParseError> {
        walk_ext(self.packet(), self.next_header(), field::LEN)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets version 6, traffic class and flow label.
    #[inline]
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let v = (6 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        set32(self.buffer.as_mut(), field::VER_TC_FL, v);
    }

    /// Sets the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, len: u16) {
        set16(self.buffer.as_mut(), field::PAYLOAD_LEN, len);
    }

    /// Sets the next-header field.
    #[inline]
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = nh;
    }

    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, hl: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hl;
    }

    /// Decrements the hop limit (0 stays 0); returns the new value. IPv6 has no header checksum.
    #[inline]
    pub fn decrement_hop_limit(&mut self) -> u8 {
        let hl = self.hop_limit().saturating_sub(1);
        self.set_hop_limit(hl);
        hl
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src(&mut self, a: &[u8; 16]) {
        self.buffer.as_mut()[field::SRC..field::SRC + 16].copy_from_slice(a);
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst(&mut self, a: &[u8; 16]) {
        self.buffer.as_mut()[field::DST..field::DST + 16].copy_from_slice(a);
    }
}

/// The fields of an IPv6 header without extension headers, for emitting one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Next header (upper-layer protocol).
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Payload length.
    pub payload_len: u16,
}

impl Ipv6Repr {
    /// Writes the 40-byte header into the front of `buf`.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), EmitError> {
        let hdr = buf.get_mut(..field::LEN).ok_or(EmitError::BufferTooShort)?;
        let mut p = Ipv6Packet::new_unchecked(hdr);
        p.set_version_tc_flow(self.traffic_class, self.flow_label);
        p.set_payload_len(self.payload_len);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src(&self.src);
        p.set_dst(&self.dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
    ];
    const DST: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
    ];

    fn packet(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        Ipv6Repr {
            src: SRC,
            dst: DST,
            next_header: next,
            hop_limit: 64,
            traffic_class: 0xb8,
            flow_label: 0x12345,
            payload_len: payload.len() as u16,
        }
        .emit(&mut p)
        .unwrap();
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn test_parse_fixed_header() {
        let bytes = packet(17, &[0xaa; 8]);
        assert_eq!(&bytes[..8], &[0x6b, 0x81, 0x23, 0x45, 0x00, 0x08, 17, 64]);
        let p = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.src(), SRC);
        assert_eq!(p.dst_addr(), Addr::v6(DST));
        let up = p.upper_layer().unwrap();
        assert_eq!(
            (up.proto, up.offset, up.frag, up.frag_header),
            (17, 40, Frag::None, None)
        );
    }

    #[test]
    fn test_hop_by_hop_and_first_fragment() {
        // HBH (router alert + padding) -> fragment (offset 0, M=1) -> TCP.
        let ext = [
            44, 0, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00, // HBH: next=frag, len 0, RA, PadN
            6, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef, // frag: next=TCP, offset 0, M=1, id
            0x00, 0x50, 0x1f, 0x90, // start of TCP
        ];
        let bytes = packet(0, &ext);
        let up = Ipv6Packet::new_checked(&bytes[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(up.proto, 6);
        assert_eq!(up.offset, 56);
        assert_eq!(up.frag, Frag::First);
        assert_eq!(up.frag_header, Some(48));
    }

    #[test]
    fn test_later_fragment_stops_walk() {
        // dest-opts (16 bytes) -> fragment offset 1448 -> data
        let mut ext = vec![44, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        ext.extend_from_slice(&[17, 0, 0x05, 0xa8, 0, 0, 0, 7]);
        ext.extend_from_slice(&[0x55; 10]);
        let bytes = packet(60, &ext);
        let up = Ipv6Packet::new_checked(&bytes[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(up.proto, 17);
        assert_eq!(up.offset, 40 + 16 + 8);
        assert_eq!(up.frag, Frag::Later);
    }

    #[test]
    fn test_atomic_fragment_and_ah() {
        // AH (len 4 -> 24 bytes) -> atomic fragment -> UDP
        let mut ext = vec![44, 4];
        ext.resize(24, 0);
        ext.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 1]);
        let bytes = packet(51, &ext);
        let up = Ipv6Packet::new_checked(&bytes[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!((up.proto, up.offset, up.frag), (17, 72, Frag::None));
        assert_eq!(up.frag_header, Some(64));
    }

    #[test]
    fn test_bad_chains() {
        let walk = |next: u8, ext: &[u8]| {
            let b = packet(next, ext);
            Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer()
        };
        // HBH after a routing header.
        let mut e = vec![0, 0, 0, 0, 0, 0, 0, 0];
        e.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(walk(43, &e), Err(ParseError::BadExtHeader));
        // Two fragment headers.
        let e2 = [44, 0, 0, 1, 0, 0, 0, 1, 6, 0, 0, 1, 0, 0, 0, 1];
        assert_eq!(walk(44, &e2), Err(ParseError::BadExtHeader));
        // Dest-opts claiming 16 bytes with only 8 present.
        assert_eq!(
            walk(60, &[6, 1, 0, 0, 0, 0, 0, 0]),
            Err(ParseError::Truncated)
        );
        // Chain of nine dest-opts headers.
        let e3: Vec<u8> = (0..9).flat_map(|_| [60, 0, 0, 0, 0, 0, 0, 0]).collect();
        assert_eq!(walk(60, &e3), Err(ParseError::TooManyExtHeaders));
        // Eight are fine.
        let mut e4: Vec<u8> = (0..7).flat_map(|_| [60, 0, 0, 0, 0, 0, 0, 0]).collect();
        e4.extend_from_slice(&[59, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(walk(60, &e4).unwrap().offset, 40 + 64);
    }

    #[test]
    fn test_truncated() {
        let bytes = packet(17, &[0xaa; 8]);
        let err = |b: &[u8]| Ipv6Packet::new_checked(b).unwrap_err();
        assert_eq!(err(&bytes[..39]), ParseError::Truncated);
        assert_eq!(err(&bytes[..47]), ParseError::BadTotalLength);
        let mut b = bytes.clone();
        b[0] = 0x45;
        assert_eq!(err(&b), ParseError::BadVersion);
    }

    #[test]
    fn test_setters() {
        let mut bytes = packet(6, &[]);
        let mut p = Ipv6Packet::new_checked(&mut bytes[..]).unwrap();
        p.set_dst(&SRC);
        p.set_src(&DST);
        assert_eq!(p.decrement_hop_limit(), 63);
        assert_eq!(p.src(), DST);
        assert_eq!(p.dst(), SRC);
        p.set_hop_limit(0);
        assert_eq!(p.decrement_hop_limit(), 0);
    }
}
