//! Zero-copy views of the headers the load balancer reads and writes, and the one per-frame parse.
//!
//! Each header has a view `XxxPacket<T: AsRef<[u8]>>` over a borrowed or owned buffer (smoltcp
//! style): getters need `T: AsRef<[u8]>`, setters also `AsMut<[u8]>`. Fields are read at named
//! offsets (a private `mod field` per header) with big-endian helpers; nothing is cast to a packed
//! struct.
//!
//! # The length contract
//!
//! `new_checked` validates the buffer **once**: after it returns `Ok`, no getter or setter of that
//! view can panic, whatever the bytes say. Length-like fields that accessors rely on (IHL, total
//! length, TCP data offset, ...) are part of that check. `new_unchecked` skips it and is only for
//! buffers the caller has already checked (or is about to fill with `emit`). Setters that change
//! such a length field (`set_total_len`, `set_header_len`, `set_payload_len`, an ethertype of
//! 0x8100, ...) void the guarantee for that view until the buffer is checked again; the rewrite
//! helpers the forwarder uses per packet (addresses, ports, TTL) never touch them.
//!
//! Emit helpers take `&mut [u8]`, check its length once, and return [`EmitError`] rather than
//! panic. Hot-path errors are small `Copy` enums usable as counter indices ([`ParseError::index`]).
//!
//! [`parse_frame`] is what the forwarder calls once per received frame: it returns a
//! [`ParsedFrame`] with every offset and field later stages need, so nothing parses twice.

pub mod arp;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipip;
pub mod ipv4;
pub mod ipv6;
pub mod ndp;
mod parse;
pub mod tcp;
pub mod udp;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod xcheck;

pub use ethernet::{EtherType, EthernetFrame, MacAddr};
pub use parse::{
    parse_frame, parse_frame_into, parse_uncommon_into, Ipv4TcpHead, L3Kind, ParsedFrame,
};

/// IP protocol numbers used on the wire.
pub mod ip_proto {
    /// IPv6 hop-by-hop options (0).
    pub const HOPOPT: u8 = 0;
    /// ICMP for IPv4 (1).
    pub const ICMP: u8 = 1;
    /// IPv4 encapsulated in IP (4, RFC 2003).
    pub const IPIP: u8 = 4;
    /// TCP (6).
    pub const TCP: u8 = 6;
    /// UDP (17).
    pub const UDP: u8 = 17;
    /// IPv6 encapsulated in IP (41).
    pub const IPV6: u8 = 41;
    /// IPv6 routing header (43).
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 fragment header (44).
    pub const IPV6_FRAG: u8 = 44;
    /// Encapsulating security payload (50).
    pub const ESP: u8 = 50;
    /// Authentication header (51).
    pub const AH: u8 = 51;
    /// ICMP for IPv6 (58).
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header" (59).
    pub const IPV6_NONXT: u8 = 59;
    /// IPv6 destination options (60).
    pub const IPV6_OPTS: u8 = 60;
}

/// Where a packet sits in a fragmented datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Frag {
    /// Not a fragment (an IPv6 atomic fragment, offset 0 without M, counts as this too).
    #[default]
    None,
    /// The first fragment: offset 0, more to come; the L4 header is present.
    First,
    /// A later fragment: non-zero offset; no L4 header, ports unknown.
    Later,
}

/// Why a frame or header was rejected; doubles as a drop-reason counter index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ParseError {
    /// The buffer ends before a header does.
    Truncated = 0,
    /// The IP version nibble does not match the ethertype.
    BadVersion,
    /// A header length field is below its minimum (IPv4 IHL < 5, TCP data offset < 5).
    BadHeaderLength,
    /// The IP total/payload length is smaller than the header or larger than the buffer.
    BadTotalLength,
    /// A UDP length field disagrees with the IP payload.
    BadL4Length,
    /// An ethertype other than IPv4/IPv6/ARP (after at most one 802.1Q tag).
    UnsupportedEthertype,
    /// ARP other than Ethernet/IPv4.
    UnsupportedArp,
    /// An IPv6 extension header in a place or shape RFC 8200 forbids.
    BadExtHeader,
    /// More IPv6 extension headers than we are willing to walk.
    TooManyExtHeaders,
    /// An IPv6 source or destination in `::ffff:0:0/96`: IPv4-mapped addresses stand for IPv4
    /// nodes inside a host and never belong on the wire (RFC 4291 2.5.5.2; RFC 6890: not
    /// forwardable). Here they would read as the IPv4 addresses they map, so that an IPv6
    /// packet could pose as an IPv4 flow's.
    MappedAddress,
}

impl ParseError {
    /// Number of variants: the size of a drop counter array indexed by [`ParseError::index`].
    pub const COUNT: usize = 10;

    /// Dense index of this error, in `0..COUNT`.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// Short stable name for stats output.
    pub fn name(self) -> &'static str {
        match self {
            ParseError::Truncated => "truncated",
            ParseError::BadVersion => "bad_version",
            ParseError::BadHeaderLength => "bad_header_length",
            ParseError::BadTotalLength => "bad_total_length",
            ParseError::BadL4Length => "bad_l4_length",
            ParseError::UnsupportedEthertype => "unsupported_ethertype",
            ParseError::UnsupportedArp => "unsupported_arp",
            ParseError::BadExtHeader => "bad_ext_header",
            ParseError::TooManyExtHeaders => "too_many_ext_headers",
            ParseError::MappedAddress => "mapped_address",
        }
    }
}

/// Why an emit helper could not write a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EmitError {
    /// The output buffer is too small for what must be written.
    BufferTooShort,
    /// The packet to quote or answer is itself malformed.
    Malformed(ParseError),
    /// A length would not fit its header field.
    TooLong,
    /// The packet is not one this helper answers (e.g. not an echo request).
    NotApplicable,
}

impl From<ParseError> for EmitError {
    fn from(e: ParseError) -> Self {
        EmitError::Malformed(e)
    }
}

/// Reads a big-endian `u16` at `off` (callers guarantee `off + 2 <= b.len()`).
#[inline(always)]
pub(crate) fn get16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

/// Reads a big-endian `u32` at `off` (callers guarantee `off + 4 <= b.len()`).
#[inline(always)]
pub(crate) fn get32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Writes a big-endian `u16` at `off` (callers guarantee `off + 2 <= b.len()`).
#[inline(always)]
pub(crate) fn set16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

/// Writes a big-endian `u32` at `off` (callers guarantee `off + 4 <= b.len()`).
#[inline(always)]
pub(crate) fn set32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

/// Copies `N` bytes at `off` into an array (callers guarantee the range).
#[inline(always)]
pub(crate) fn get_array<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_error_index_is_dense() {
        let all = [
            ParseError::Truncated,
            ParseError::BadVersion,
            ParseError::BadHeaderLength,
            ParseError::BadTotalLength,
            ParseError::BadL4Length,
            ParseError::UnsupportedEthertype,
            ParseError::UnsupportedArp,
            ParseError::BadExtHeader,
            ParseError::TooManyExtHeaders,
            ParseError::MappedAddress,
        ];
        assert_eq!(all.len(), ParseError::COUNT);
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.index(), i);
        }
        let names: std::collections::HashSet<_> = all.iter().map(|e| e.name()).collect();
        assert_eq!(names.len(), ParseError::COUNT);
    }

    #[test]
    fn test_be_helpers() {
        let mut b = [0u8; 6];
        set16(&mut b, 0, 0x1234);
        set32(&mut b, 2, 0xdead_beef);
        assert_eq!(b, [0x12, 0x34, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(get16(&b, 0), 0x1234);
        assert_eq!(get32(&b, 2), 0xdead_beef);
        assert_eq!(get_array::<3>(&b, 1), [0x34, 0xde, 0xad]);
    }
}
