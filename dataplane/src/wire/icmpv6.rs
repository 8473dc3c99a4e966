//! ICMP for IPv6 (RFC 4443): echo, and errors (packet-too-big above all) that quote a packet.
//!
//! ```text
//! | type | code | checksum | rest of header (4): echo id+seq, MTU, or pointer |
//! | data: for errors, as much of the offending packet as fits in 1280 bytes     |
//! ```
//! The checksum covers an IPv6 pseudo-header ([`crate::checksum::pseudo_v6`]) and the whole
//! message, so the view's buffer should end where the IPv6 payload ends.

use super::ethernet::EthernetFrame;
use super::icmpv4::{quoted_ports, Quoted};
use super::ip_proto;
use super::ipv6::{walk_ext, Ipv6Packet, Ipv6Repr};
use super::{get16, get32, get_array, set16, set32, EmitError, ParseError, ParsedFrame};
use crate::checksum;
use crate::flow::Addr;

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const REST: usize = 4;
    pub const IDENT: usize = 4;
    pub const SEQ: usize = 6;
    pub const LEN: usize = 8;
}

/// Length of the ICMPv6 header.
pub const HEADER_LEN: usize = field::LEN;

/// The IPv6 minimum MTU; an ICMPv6 error must fit in it (RFC 4443 §2.4(c)).
pub const MIN_MTU: usize = 1280;

/// ICMPv6 message types.
pub mod types {
    /// Destination unreachable.
    pub const DEST_UNREACH: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Neighbor solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// A view of an ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps a buffer without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// Wraps a buffer holding at least the 8-byte header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        if buffer.as_ref().len() < field::LEN {
            return Err(ParseError::Truncated);
        }
        Ok(Icmpv6Packet { buffer })
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

    /// The rest-of-header word (the MTU of a packet-too-big, the pointer of a parameter problem).
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        get32(self.buffer.as_ref(), field::REST)
    }

    /// The MTU of a packet-too-big message.
    #[inline]
    pub fn mtu(&self) -> u32 {
        self.rest_of_header()
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

    /// True for error messages (types below 128), which quote a packet.
    #[inline]
    pub fn is_error(&self) -> bool {
        self.msg_type() < 128
    }

    /// The bytes after the header.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::LEN..]
    }

    /// True if the checksum verifies under the pseudo-header sum.
    #[inline]
    pub fn verify_checksum(&self, pseudo_sum: u16) -> bool {
        checksum::add(pseudo_sum, checksum::sum(self.buffer.as_ref())) == 0xffff
    }

    /// The flow of the quoted packet of an error (inner IPv6 header, extension headers, ports).
    pub fn quoted(&self) -> Result<Quoted, ParseError> {
        let b = self.buffer.as_ref();
        let ip = field::LEN;
        let inner = b.get(ip..).ok_or(ParseError::Truncated)?;
        if inner.len() < 40 {
            return Err(ParseError::Truncated);
        }
        if inner[0] >> 4 != 6 {
            return Err(ParseError::BadVersion);
        }
        let up = walk_ext(inner, inner[6], 40)?;
        let (sport, dport) = quoted_ports(inner, up.offset, up.proto, up.frag)?;
        Ok(Quoted {
            src: Addr::v6(get_array(inner, 8)),
            dst: Addr::v6(get_array(inner, 24)),
            proto: up.proto,
            sport,
            dport,
            ip_off: ip,
            l4_off: ip + up.offset,
            frag: up.frag,
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
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

    /// Computes and stores the checksum under the pseudo-header sum.
    #[inline]
    pub fn fill_checksum(&mut self, pseudo_sum: u16) {
        self.set_checksum(0);
        let c = checksum::l4_checksum(pseudo_sum, self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Turns an echo request into the echo reply, checksum updated incrementally (swapping the
    /// addresses, as a reply does, leaves the pseudo-header sum unchanged).
    #[inline]
    pub fn make_echo_reply(&mut self) {
        let old = get16(self.buffer.as_ref(), field::TYPE);
        self.set_msg_type(types::ECHO_REPLY);
        let new = get16(self.buffer.as_ref(), field::TYPE);
        let c = checksum::update16(self.checksum(), old, new);
        self.set_checksum(c);
    }
}

/// Answers an IPv6 echo request frame in place: MACs and addresses swapped, hop limit set,
/// type set to echo reply. The frame must be what `pf` describes.
pub fn echo_reply_in_place(
    frame: &mut [u8],
    pf: &ParsedFrame,
    hop_limit: u8,
) -> Result<(), EmitError> {
    let l3 = usize::from(pf.l3_off);
    let l4 = usize::from(pf.l4_off);
    let ip_end = l3 + usize::from(pf.ip_len);
    {
        let icmp = frame.get_mut(l4..ip_end).ok_or(EmitError::BufferTooShort)?;
        let mut m = Icmpv6Packet::new_checked(icmp)?;
        if m.msg_type() != types::ECHO_REQUEST {
            return Err(EmitError::NotApplicable);
        }
        m.make_echo_reply();
    }
    {
        let ip = frame.get_mut(l3..).ok_or(EmitError::BufferTooShort)?;
        let mut p = Ipv6Packet::new_checked(ip)?;
        let (s, d) = (p.src(), p.dst());
        p.set_src(&d);
        p.set_dst(&s);
        p.set_hop_limit(hop_limit);
    }
    EthernetFrame::new_checked(frame)?.swap_addrs();
    Ok(())
}

/// True if RFC 4443 §2.4(e) allows an error of type `msg_type` about `orig`: never about an
/// ICMPv6 error, never from an unspecified/multicast source, and to a multicast destination only
/// for packet-too-big.
pub fn error_allowed<T: AsRef<[u8]>>(orig: &Ipv6Packet<T>, msg_type: u8) -> bool {
    let (s, d) = (orig.src(), orig.dst());
    if s[0] == 0xff || s == [0; 16] {
        return false;
    }
    if d[0] == 0xff && msg_type != types::PACKET_TOO_BIG {
        return false;
    }
    match orig.upper_layer() {
        Ok(up) if up.proto == ip_proto::ICMPV6 => orig
            .packet()
            .get(up.offset..)
            .and_then(|m| Icmpv6Packet::new_checked(m).ok())
            .is_some_and(|m| !m.is_error()),
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Writes an ICMPv6 error datagram (IPv6 header + ICMPv6 header + quote) from `src` to the
/// source of `orig` into `out`; returns its length. The quote is as much of `orig` as fits in
/// [`MIN_MTU`] bytes in total (and in `out`, which must hold at least the headers and 48 bytes).
pub fn emit_error(
    out: &mut [u8],
    src: &[u8; 16],
    hop_limit: u8,
    msg_type: u8,
    code: u8,
    rest: u32,
    orig: &[u8],
) -> Result<usize, EmitError> {
    let o = Ipv6Packet::new_checked(orig)?;
    let orig_len = o.total_len();
    let room = out.len().min(MIN_MTU);
    if room < 48 + orig_len.min(48) {
        return Err(EmitError::BufferTooShort);
    }
    let quote = orig_len.min(room - 48);
    let total = 48 + quote;
    let dst = o.src();
    let msg_len = (total - 40) as u16;
    Ipv6Repr {
        src: *src,
        dst,
        next_header: ip_proto::ICMPV6,
        hop_limit,
        traffic_class: 0,
        flow_label: 0,
        payload_len: msg_len,
    }
    .emit(out)?;
    let msg = &mut out[40..total];
    msg[8..].copy_from_slice(&orig[..quote]);
    let mut m = Icmpv6Packet::new_unchecked(msg);
    m.set_msg_type(msg_type);
    m.set_code(code);
    m.set_rest_of_header(rest);
    m.fill_checksum(checksum::pseudo_v6(
        src,
        &dst,
        ip_proto::ICMPV6,
        u32::from(msg_len),
    ));
    Ok(total)
}

/// Writes a packet-too-big error with `mtu` about `orig`; see [`emit_error`].
pub fn emit_packet_too_big(
    out: &mut [u8],
    src: &[u8; 16],
    mtu: u32,
    orig: &[u8],
) -> Result<usize, EmitError> {
    emit_error(out, src, 64, types::PACKET_TOO_BIG, 0, mtu, orig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv6::Ipv6Repr;
    use crate::wire::Frag;

    const CLIENT: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
    ];
    const VIP: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80,
    ];
    const ROUTER: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe,
    ];

    fn tcp_v6(payload: usize) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        Ipv6Repr {
            src: CLIENT,
            dst: VIP,
            next_header: 6,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            payload_len: (20 + payload) as u16,
        }
        .emit(&mut p)
        .unwrap();
        p.extend_from_slice(&crate::wire::fixtures::TCP_SYN[..20]);
        p[52] = 0x50;
        p.resize(60 + payload, 0x77);
        p
    }

    #[test]
    fn test_packet_too_big_round_trip() {
        let orig = tcp_v6(1400);
        let mut out = vec![0u8; 2000];
        let n = emit_packet_too_big(&mut out, &ROUTER, 1280, &orig).unwrap();
        assert_eq!(n, 1280);
        let ip = Ipv6Packet::new_checked(&out[..n]).unwrap();
        assert_eq!(ip.dst(), CLIENT);
        assert_eq!(ip.next_header(), 58);
        assert_eq!(ip.payload_len(), 1240);
        let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        let ps = checksum::pseudo_v6(&ROUTER, &CLIENT, 58, 1240);
        assert!(m.verify_checksum(ps));
        assert!(m.is_error());
        assert_eq!((m.msg_type(), m.code(), m.mtu()), (2, 0, 1280));
        assert_eq!(m.data(), &orig[..1232]);
        let q = m.quoted().unwrap();
        assert_eq!((q.src, q.dst), (Addr::v6(CLIENT), Addr::v6(VIP)));
        assert_eq!((q.proto, q.sport, q.dport), (6, 40000, 80));
        assert_eq!((q.ip_off, q.l4_off, q.frag), (8, 48, Frag::None));
    }

    #[test]
    fn test_small_original_quoted_whole() {
        let orig = tcp_v6(0);
        let mut out = [0u8; 200];
        let n = emit_error(&mut out, &ROUTER, 64, types::TIME_EXCEEDED, 0, 0, &orig).unwrap();
        assert_eq!(n, 48 + 60);
        assert_eq!(&out[48..n], &orig[..]);
        assert_eq!(
            emit_error(&mut out[..95], &ROUTER, 64, 3, 0, 0, &orig),
            Err(EmitError::BufferTooShort)
        );
    }

    #[test]
    fn test_error_allowed() {
        let orig = tcp_v6(0);
        let p = Ipv6Packet::new_checked(&orig[..]).unwrap();
        assert!(error_allowed(&p, types::PACKET_TOO_BIG));
        let mut mc = orig.clone();
        mc[24] = 0xff;
        let p = Ipv6Packet::new_checked(&mc[..]).unwrap();
        assert!(error_allowed(&p, types::PACKET_TOO_BIG));
        assert!(!error_allowed(&p, types::DEST_UNREACH));
        let mut out = [0u8; 200];
        let n = emit_packet_too_big(&mut out, &ROUTER, 1280, &orig).unwrap();
        let e = Ipv6Packet::new_checked(&out[..n]).unwrap();
        assert!(!error_allowed(&e, types::PACKET_TOO_BIG));
    }

    #[test]
    fn test_quoted_truncated() {
        let mut m = vec![2, 0, 0, 0, 0, 0, 5, 0];
        m.extend_from_slice(&tcp_v6(0)[..42]);
        assert_eq!(
            Icmpv6Packet::new_checked(&m[..]).unwrap().quoted(),
            Err(ParseError::Truncated)
        );
        m.extend_from_slice(&[0, 0x50]);
        assert_eq!(
            Icmpv6Packet::new_checked(&m[..])
                .unwrap()
                .quoted()
                .unwrap()
                .dport,
            80
        );
        m[8] = 0x45;
        assert_eq!(
            Icmpv6Packet::new_checked(&m[..]).unwrap().quoted(),
            Err(ParseError::BadVersion)
        );
    }
}
