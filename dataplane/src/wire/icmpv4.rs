//! ICMP for IPv4 (RFC 792, RFC 1191, RFC 1812 §4.3): echo, and errors that quote a packet.
//!
//! ```text
//! | type | code | checksum | rest of header (4): echo id+seq, or unused+next-hop MTU |
//! | data: for errors, the offending IP header + at least 8 bytes of its payload          |
//! ```
//! The view's buffer should end where the IP payload ends: the checksum covers all of it.
//! [`Quoted`] gives the flow of the packet an error is about, for connection lookup and NAT.

use super::ethernet::EthernetFrame;
use super::ip_proto;
use super::ipv4::{Ipv4Packet, Ipv4Repr};
use super::{get16, get32, get_array, set16, set32, EmitError, Frag, ParseError, ParsedFrame};
use crate::checksum;
use crate::flow::Addr;

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const REST: usize = 4;
    pub const IDENT: usize = 4;
    pub const SEQ: usize = 6;
    pub const MTU: usize = 6;
    pub const LEN: usize = 8;
}

/// Length of the ICMP header (type, code, checksum, rest of header).
pub const HEADER_LEN: usize = field::LEN;

/// Most bytes of an ICMP error datagram (RFC 1812 §4.3.2.3: no more than 576 in total).
pub const MAX_ERROR_LEN: usize = 576;

/// ICMPv4 message types.
pub mod types {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACH: u8 = 3;
    /// Source quench (deprecated).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
}

/// Destination-unreachable code: fragmentation needed and DF set (RFC 1191).
pub const CODE_FRAG_NEEDED: u8 = 4;
/// Time-exceeded code: TTL exceeded in transit.
pub const CODE_TTL_EXCEEDED: u8 = 0;

/// The flow of a packet quoted in an ICMP error, as its sender saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    /// Source of the quoted packet (usually us or a host behind us).
    pub src: Addr,
    /// Destination of the quoted packet.
    pub dst: Addr,
    /// Upper-layer protocol of the quoted packet.
    pub proto: u8,
    /// Quoted source port (0 when unknown: not TCP/UDP, or a later fragment).
    pub sport: u16,
    /// Quoted destination port (0 when unknown).
    pub dport: u16,
    /// Offset of the quoted IP header from the start of the ICMP header.
    pub ip_off: usize,
    /// Offset of the quoted L4 header from the start of the ICMP header.
    pub l4_off: usize,
    /// Fragment status of the quoted packet.
    pub frag: Frag,
}

/// Reads the ports of a quoted TCP/UDP header at `l4` if present; 0s otherwise.
#[inline]
pub(crate) fn quoted_ports(
    data: &[u8],
    l4: usize,
    proto: u8,
    frag: Frag,
) -> Result<(u16, u16), ParseError> {
    if frag == Frag::Later || !matches!(proto, ip_proto::TCP | ip_proto::UDP) {
        return Ok((0, 0));
    }
    if data.len() < l4 + 4 {
        return Err(ParseError::Truncated);
    }
    Ok((get16(data, l4), get16(data, l4 + 2)))
}

/// A view of an ICMPv4 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Wraps a buffer holding at least the 8-byte header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        if buffer.as_ref().len() < field::LEN {
            return Err(ParseError::Truncated);
        }
        Ok(Icmpv4Packet { buffer })
    }

    /// Message type (see [`types`]).
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The four rest-of-header bytes as one word.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        get32(self.buffer.as_ref(), field::REST)
    }

    /// Echo identifier.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        get16(self.buffer.as_ref(), field::IDENT)
    }

    /// Echo sequence number.
    #[inline]
    pub fn echo_seq(&self) -> u16 {
        get16(self.buffer.as_ref(), field::SEQ)
    }

    /// Next-hop MTU of a fragmentation-needed message.
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        get16(self.buffer.as_ref(), field::MTU)
    }

    /// True for error messages (which quote a packet).
    #[inline]
    pub fn is_error(&self) -> bool {
        matches!(
            self.msg_type(),
            types::DEST_UNREACH
                | types::SOURCE_QUENCH
                | types::REDIRECT
                | types::TIME_EXCEEDED
                | types::PARAM_PROBLEM
        )
    }

    /// True for destination-unreachable / fragmentation-needed.
    #[inline]
    pub fn is_frag_needed(&self) -> bool {
        self.msg_type() == types::DEST_UNREACH && self.code() == CODE_FRAG_NEEDED
    }

    /// The bytes after the header.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::LEN..]
    }

    /// True if the checksum over the whole buffer is valid.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref())
    }

    /// The flow of the quoted packet of an error message (inner IPv4 header + L4 ports).
    ///
    /// Only the quoted header is validated; its total length may exceed what was quoted.
    pub fn quoted(&self) -> Result<Quoted, ParseError> {
        let b = self.buffer.as_ref();
        let ip = field::LEN;
        if b.len() < ip + 20 {
            return Err(ParseError::Truncated);
        }
        let vi = b[ip];
        if vi >> 4 != 4 {
            return Err(ParseError::BadVersion);
        }
        let hlen = usize::from(vi & 0x0f) * 4;
        if hlen < 20 {
            return Err(ParseError::BadHeaderLength);
        }
        let fo = get16(b, ip + 6);
        let frag = if fo & 0x1fff != 0 {
            Frag::Later
        } else if fo & 0x2000 != 0 {
            Frag::First
        } else {
            Frag::None
        };
        let proto = b[ip + 9];
        let l4 = ip + hlen;
        let (sport, dport) = quoted_ports(b, l4, proto, frag)?;
        Ok(Quoted {
            src: Addr::v4(get_array(b, ip + 12)),
            dst: Addr::v4(get_array(b, ip + 16)),
            proto,
            sport,
            dport,
            ip_off: ip,
            l4_off: l4,
            frag,
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the type.
    #[inline]
    pub fn set_msg_type(&mut self, t: u8) {
        self.buffer.as_mut()[field::TYPE] = t;
    }

    /// Sets the code.
    #[inline]
    pub fn set_code(&mut self, c: u8) {
        self.buffer.as_mut()[field::CODE] = c;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        set16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// Sets the rest-of-header word.
    #[inline]
    pub fn set_rest_of_header(&mut self, v: u32) {
        set32(self.buffer.as_mut(), field::REST, v);
    }

    /// Recomputes the checksum over the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Turns an echo request into the echo reply, checksum updated incrementally.
    #[inline]
    pub fn make_echo_reply(&mut self) {
        let old = get16(self.buffer.as_ref(), field::TYPE);
        self.set_msg_type(types::ECHO_REPLY);
        let new = get16(self.buffer.as_ref(), field::TYPE);
        let c = checksum::update16(self.checksum(), old, new);
        self.set_checksum(c);
    }
}

/// Answers an IPv4 echo request frame in place: MACs and IP addresses swapped, TTL set to `ttl`,
/// type set to echo reply. The frame must be what `pf` describes.
pub fn echo_reply_in_place(frame: &mut [u8], pf: &ParsedFrame, ttl: u8) -> Result<(), EmitError> {
    let l3 = usize::from(pf.l3_off);
    let l4 = usize::from(pf.l4_off);
    let ip_end = l3 + usize::from(pf.ip_len);
    {
        let icmp = frame.get_mut(l4..ip_end).ok_or(EmitError::BufferTooShort)?;
        let mut m = Icmpv4Packet::new_checked(icmp)?;
        if m.msg_type() != types::ECHO_REQUEST {
            return Err(EmitError::NotApplicable);
        }
        m.make_echo_reply();
    }
    {
        let ip = frame.get_mut(l3..).ok_or(EmitError::BufferTooShort)?;
        let mut p = Ipv4Packet::new_checked(ip)?;
        let (s, d) = (p.src(), p.dst());
        // Swapping addresses leaves the header sum unchanged; only the TTL word moves it.
        p.set_src(d);
        p.set_dst(s);
        let old_ttl = p.ttl();
        if old_ttl != ttl {
            p.set_ttl(ttl);
            let c = checksum::update16(
                p.checksum(),
                u16::from(old_ttl) << 8 | u16::from(p.protocol()),
                u16::from(ttl) << 8 | u16::from(p.protocol()),
            );
            p.set_checksum(c);
        }
    }
    EthernetFrame::new_checked(frame)?.swap_addrs();
    Ok(())
}

/// True if RFC 1812 §4.3.2.7 allows an ICMP error about `orig`: not about an ICMP error, not a
/// later fragment, not to or from a multicast/broadcast/unspecified address.
pub fn error_allowed<T: AsRef<[u8]>>(orig: &Ipv4Packet<T>) -> bool {
    let (s, d) = (orig.src(), orig.dst());
    let bad_addr = |a: [u8; 4]| a[0] >= 224 || a == [0, 0, 0, 0];
    if orig.frag_offset() != 0 || bad_addr(s) || d[0] >= 224 {
        return false;
    }
    if orig.protocol() == ip_proto::ICMP {
        // An unreadable ICMP header is treated as an error message (no reply).
        return Icmpv4Packet::new_checked(orig.payload()).is_ok_and(|m| !m.is_error());
    }
    true
}

/// Writes an IPv4 ICMP error datagram (IP header + ICMP header + quote) into `out`, addressed
/// from `src` to the source of `orig` (the offending IP packet); returns its length.
///
/// The quote is as much of `orig` as fits in [`MAX_ERROR_LEN`] bytes in total (and in `out`,
/// which must hold at least the IP and ICMP headers and 28 quoted bytes).
#[allow(clippy::too_many_arguments)]
pub fn emit_error(
    out: &mut [u8],
    src: [u8; 4],
    ident: u16,
    ttl: u8,
    msg_type: u8,
    code: u8,
    rest: u32,
    orig: &[u8],
) -> Result<usize, EmitError> {
    let o = Ipv4Packet::new_checked(orig)?;
    let orig_len = usize::from(o.total_len());
    let room = out.len().min(MAX_ERROR_LEN);
    let quote_min = (o.header_len() + 8).min(orig_len);
    if room < 28 + quote_min {
        return Err(EmitError::BufferTooShort);
    }
    let quote = orig_len.min(room - 28);
    let total = 28 + quote;
    Ipv4Repr {
        src,
        dst: o.src(),
        protocol: ip_proto::ICMP,
        ttl,
        tos: 0xc0, // internetwork control, as Linux uses for ICMP errors
        ident,
        dont_frag: false,
        payload_len: (total - 20) as u16,
    }
    .emit(out)?;
    let msg = &mut out[20..total];
    msg[28 - 20..].copy_from_slice(&orig[..quote]);
    let mut m = Icmpv4Packet::new_unchecked(msg);
    m.set_msg_type(msg_type);
    m.set_code(code);
    m.set_rest_of_header(rest);
    m.fill_checksum();
    Ok(total)
}

/// Writes a destination-unreachable / fragmentation-needed error with next-hop `mtu` about
/// `orig` (RFC 1191); see [`emit_error`].
pub fn emit_frag_needed(
    out: &mut [u8],
    src: [u8; 4],
    ident: u16,
    mtu: u16,
    orig: &[u8],
) -> Result<usize, EmitError> {
    emit_error(
        out,
        src,
        ident,
        64,
        types::DEST_UNREACH,
        CODE_FRAG_NEEDED,
        u32::from(mtu),
        orig,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::TcpPacket;

    /// The TCP SYN 192.0.2.1:40000 -> 198.51.100.10:80 that a router could not forward.
    fn orig_syn() -> Vec<u8> {
        let mut p = vec![
            0x45, 0x00, 0x00, 0x3c, 0xab, 0xcd, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 192, 0, 2, 1,
            198, 51, 100, 10,
        ];
        p.extend_from_slice(&crate::wire::fixtures::TCP_SYN);
        Ipv4Packet::new_checked(&mut p[..]).unwrap().fill_checksum();
        p
    }

    #[test]
    fn test_frag_needed_round_trip() {
        let orig = orig_syn();
        let mut out = [0u8; 600];
        let n = emit_frag_needed(&mut out, [203, 0, 113, 1], 7, 1480, &orig).unwrap();
        assert_eq!(n, 20 + 8 + 60);
        let ip = Ipv4Packet::new_checked(&out[..n]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src(), [203, 0, 113, 1]);
        assert_eq!(ip.dst(), [192, 0, 2, 1]);
        assert_eq!(ip.protocol(), 1);
        let m = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert!(m.verify_checksum());
        assert!(m.is_error() && m.is_frag_needed());
        assert_eq!(m.next_hop_mtu(), 1480);
        assert_eq!(m.data(), &orig[..]);
        let q = m.quoted().unwrap();
        assert_eq!(q.src, Addr::v4([192, 0, 2, 1]));
        assert_eq!(q.dst, Addr::v4([198, 51, 100, 10]));
        assert_eq!((q.proto, q.sport, q.dport), (6, 40000, 80));
        assert_eq!((q.ip_off, q.l4_off, q.frag), (8, 28, Frag::None));
        let inner = TcpPacket::new_checked(&m.data()[20..]).unwrap();
        assert!(inner.syn());
    }

    #[test]
    fn test_quote_is_capped_at_576() {
        let mut orig = vec![0u8; 1500];
        orig[..20].copy_from_slice(&orig_syn()[..20]);
        orig[2..4].copy_from_slice(&1500u16.to_be_bytes());
        orig[9] = 17;
        let mut out = [0u8; 2000];
        let n = emit_frag_needed(&mut out, [203, 0, 113, 1], 7, 1400, &orig).unwrap();
        assert_eq!(n, 576);
        assert_eq!(&out[28..n], &orig[..548]);
        // Output room smaller than 576 shrinks the quote but keeps header + 8.
        let n = emit_frag_needed(&mut out[..56], [203, 0, 113, 1], 7, 1400, &orig).unwrap();
        assert_eq!(n, 56);
        assert_eq!(
            emit_frag_needed(&mut out[..55], [203, 0, 113, 1], 7, 1400, &orig),
            Err(EmitError::BufferTooShort)
        );
    }

    #[test]
    fn test_error_allowed() {
        let mut orig = orig_syn();
        assert!(error_allowed(&Ipv4Packet::new_checked(&orig[..]).unwrap()));
        orig[16] = 239; // multicast destination
        assert!(!error_allowed(&Ipv4Packet::new_checked(&orig[..]).unwrap()));
        orig[16] = 198;
        orig[7] = 1; // later fragment
        assert!(!error_allowed(&Ipv4Packet::new_checked(&orig[..]).unwrap()));
        // An ICMP error about an ICMP error is not allowed; about an echo it is.
        let mut out = [0u8; 600];
        let n = emit_frag_needed(&mut out, [203, 0, 113, 1], 7, 1480, &orig_syn()).unwrap();
        assert!(!error_allowed(&Ipv4Packet::new_checked(&out[..n]).unwrap()));
        out[20] = types::ECHO_REQUEST;
        assert!(error_allowed(&Ipv4Packet::new_checked(&out[..n]).unwrap()));
    }

    #[test]
    fn test_quoted_errors() {
        let q = |d: &[u8]| Icmpv4Packet::new_checked(d).unwrap().quoted();
        let mut m = vec![3, 4, 0, 0, 0, 0, 5, 0xc8];
        m.extend_from_slice(&orig_syn()[..22]);
        assert_eq!(q(&m).unwrap_err(), ParseError::Truncated);
        m.extend_from_slice(&orig_syn()[22..24]);
        assert_eq!(q(&m).unwrap().dport, 80);
        m[8] = 0x65;
        assert_eq!(q(&m).unwrap_err(), ParseError::BadVersion);
        m[8] = 0x43;
        assert_eq!(q(&m).unwrap_err(), ParseError::BadHeaderLength);
        assert_eq!(q(&m[..20]).unwrap_err(), ParseError::Truncated);
    }
}
