//! ARP for Ethernet/IPv4 (RFC 826): answering who-has for VIPs and local addresses, and
//! announcing them (gratuitous ARP).
//!
//! ```text
//! | htype=1 (2) | ptype=0x0800 (2) | hlen=6 | plen=4 | oper (2) |
//! | sha (6) | spa (4) | tha (6) | tpa (4) |                        28 bytes
//! ```

use super::ethernet::{EtherType, EthernetFrame, MacAddr};
use super::{get16, get_array, set16, EmitError, ParseError};

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
    pub const LEN: usize = 28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::LEN;

/// ARP operation: request.
pub const OP_REQUEST: u16 = 1;
/// ARP operation: reply.
pub const OP_REPLY: u16 = 2;

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps a buffer holding a full Ethernet/IPv4 ARP packet.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        if b.len() < field::LEN {
            return Err(ParseError::Truncated);
        }
        if get16(b, field::HTYPE) != 1
            || get16(b, field::PTYPE) != EtherType::IPV4
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(ParseError::UnsupportedArp);
        }
        Ok(ArpPacket { buffer })
    }

    /// The operation ([`OP_REQUEST`], [`OP_REPLY`], ...).
    #[inline]
    pub fn operation(&self) -> u16 {
        get16(self.buffer.as_ref(), field::OPER)
    }

    /// Sender hardware address.
    #[inline]
    pub fn sender_mac(&self) -> MacAddr {
        MacAddr(get_array(self.buffer.as_ref(), field::SHA))
    }

    /// Sender protocol address.
    #[inline]
    pub fn sender_ip(&self) -> [u8; 4] {
        get_array(self.buffer.as_ref(), field::SPA)
    }

    /// Target hardware address.
    #[inline]
    pub fn target_mac(&self) -> MacAddr {
        MacAddr(get_array(self.buffer.as_ref(), field::THA))
    }

    /// Target protocol address.
    #[inline]
    pub fn target_ip(&self) -> [u8; 4] {
        get_array(self.buffer.as_ref(), field::TPA)
    }

    /// True for a gratuitous ARP (sender and target IP equal).
    #[inline]
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip() == self.target_ip()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, op: u16) {
        set16(self.buffer.as_mut(), field::OPER, op);
    }

    /// Sets the sender hardware and protocol addresses.
    #[inline]
    pub fn set_sender(&mut self, mac: MacAddr, ip: [u8; 4]) {
        let b = self.buffer.as_mut();
        b[field::SHA..field::SHA + 6].copy_from_slice(&mac.0);
        b[field::SPA..field::SPA + 4].copy_from_slice(&ip);
    }

    /// Sets the target hardware and protocol addresses.
    #[inline]
    pub fn set_target(&mut self, mac: MacAddr, ip: [u8; 4]) {
        let b = self.buffer.as_mut();
        b[field::THA..field::THA + 6].copy_from_slice(&mac.0);
        b[field::TPA..field::TPA + 4].copy_from_slice(&ip);
    }

    /// Turns a request for our address into the reply, in place: the requester becomes the
    /// target and `our_mac` answers for the IP that was asked about.
    #[inline]
    pub fn make_reply(&mut self, our_mac: MacAddr) {
        let (req_mac, req_ip, asked_ip) = (self.sender_mac(), self.sender_ip(), self.target_ip());
        self.set_operation(OP_REPLY);
        self.set_target(req_mac, req_ip);
        self.set_sender(our_mac, asked_ip);
    }
}

/// The fields of an Ethernet/IPv4 ARP packet, for building one from scratch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// Operation.
    pub op: u16,
    /// Sender MAC.
    pub sender_mac: MacAddr,
    /// Sender IPv4 address.
    pub sender_ip: [u8; 4],
    /// Target MAC (zero in a request).
    pub target_mac: MacAddr,
    /// Target IPv4 address.
    pub target_ip: [u8; 4],
}

impl ArpRepr {
    /// A gratuitous ARP request announcing that `ip` is at `mac`.
    pub fn gratuitous(mac: MacAddr, ip: [u8; 4]) -> ArpRepr {
        ArpRepr {
            op: OP_REQUEST,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: MacAddr::ZERO,
            target_ip: ip,
        }
    }

    /// Writes the 28-byte ARP packet into the front of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), EmitError> {
        let b = buf.get_mut(..field::LEN).ok_or(EmitError::BufferTooShort)?;
        set16(b, field::HTYPE, 1);
        set16(b, field::PTYPE, EtherType::IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        let mut p = ArpPacket::new_unchecked(b);
        p.set_operation(self.op);
        p.set_sender(self.sender_mac, self.sender_ip);
        p.set_target(self.target_mac, self.target_ip);
        Ok(())
    }
}

/// Answers an ARP request frame in place: Ethernet addresses swapped (source `our_mac`) and the
/// ARP payload at `l3_off` turned into the reply. The caller has checked the target IP is ours;
/// anything but a request is [`EmitError::NotApplicable`].
pub fn reply_in_place(frame: &mut [u8], l3_off: usize, our_mac: MacAddr) -> Result<(), EmitError> {
    let arp = frame.get_mut(l3_off..).ok_or(EmitError::BufferTooShort)?;
    let mut p = ArpPacket::new_checked(arp)?;
    if p.operation() != OP_REQUEST {
        return Err(EmitError::NotApplicable);
    }
    let requester = p.sender_mac();
    p.make_reply(our_mac);
    let mut eth = EthernetFrame::new_checked(frame)?;
    eth.set_dst(requester);
    eth.set_src(our_mac);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who has 192.0.2.10? Tell 192.0.2.1 (from 52:54:00:12:34:56), broadcast, padded to 60 bytes.
    fn request_frame() -> Vec<u8> {
        let mut f = vec![
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08,
            0x06, //
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, //
            0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 192, 0, 2, 1, //
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 192, 0, 2, 10,
        ];
        f.resize(60, 0);
        f
    }

    #[test]
    fn test_parse() {
        let f = request_frame();
        let p = ArpPacket::new_checked(&f[14..]).unwrap();
        assert_eq!(p.operation(), OP_REQUEST);
        assert_eq!(p.sender_mac(), MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]));
        assert_eq!(p.sender_ip(), [192, 0, 2, 1]);
        assert_eq!(p.target_mac(), MacAddr::ZERO);
        assert_eq!(p.target_ip(), [192, 0, 2, 10]);
        assert!(!p.is_gratuitous());
    }

    #[test]
    fn test_truncated_and_unsupported() {
        let f = request_frame();
        assert_eq!(
            ArpPacket::new_checked(&f[14..41]).unwrap_err(),
            ParseError::Truncated
        );
        let mut bad = f.clone();
        bad[18] = 8; // hlen 8
        assert_eq!(
            ArpPacket::new_checked(&bad[14..]).unwrap_err(),
            ParseError::UnsupportedArp
        );
    }

    #[test]
    fn test_reply_in_place() {
        let mut f = request_frame();
        let ours = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
        reply_in_place(&mut f, 14, ours).unwrap();
        let expected_head = [
            0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x02, 0, 0, 0, 0, 0x0a, 0x08, 0x06, //
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, //
            0x02, 0, 0, 0, 0, 0x0a, 192, 0, 2, 10, //
            0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 192, 0, 2, 1,
        ];
        assert_eq!(&f[..42], &expected_head);
        assert_eq!(f.len(), 60);
        // Now a reply: answering it again is refused.
        assert_eq!(
            reply_in_place(&mut f, 14, ours),
            Err(EmitError::NotApplicable)
        );
        assert_eq!(
            reply_in_place(&mut f[..30], 14, ours),
            Err(EmitError::Malformed(ParseError::Truncated))
        );
    }

    #[test]
    fn test_emit_gratuitous_round_trip() {
        let mac = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
        let mut buf = [0u8; 28];
        ArpRepr::gratuitous(mac, [198, 51, 100, 7])
            .emit(&mut buf)
            .unwrap();
        let p = ArpPacket::new_checked(&buf[..]).unwrap();
        assert!(p.is_gratuitous());
        assert_eq!(p.sender_mac(), mac);
        assert_eq!(p.operation(), OP_REQUEST);
        assert_eq!(&buf[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(
            ArpRepr::gratuitous(mac, [1, 2, 3, 4]).emit(&mut buf[..27]),
            Err(EmitError::BufferTooShort)
        );
    }
}
