//! TCP headers (RFC 9293) and their options.
//!
//! ```text
//! | src port | dst port | seq (4) | ack (4) | off|rsv | flags | window | checksum | urgent | options ...
//! ```
//! `new_checked` guarantees `20 <= header_len <= buffer length`. The options walk
//! ([`TcpOptions`]) never panics: a malformed option ends it with [`TcpOption::Malformed`].

use super::{get16, get32, set16, set32, ParseError};
use crate::checksum;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
    pub const MIN_LEN: usize = 20;
}

/// Length of a TCP header without options.
pub const MIN_HEADER_LEN: usize = field::MIN_LEN;

/// TCP flag bits (byte 13 of the header).
pub mod flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer field significant.
    pub const URG: u8 = 0x20;
    /// ECN echo.
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced.
    pub const CWR: u8 = 0x80;
}

/// Option kinds.
mod kind {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WS: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

/// A view of a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps a buffer holding at least the full header (options included).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        if b.len() < field::MIN_LEN {
            return Err(ParseError::Truncated);
        }
        let hlen = usize::from(b[field::OFFSET] >> 4) * 4;
        if hlen < field::MIN_LEN {
            return Err(ParseError::BadHeaderLength);
        }
        if hlen > b.len() {
            return Err(ParseError::Truncated);
        }
        Ok(TcpPacket { buffer })
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

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        get32(self.buffer.as_ref(), field::SEQ)
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        get32(self.buffer.as_ref(), field::ACK)
    }

    /// Header length in bytes (data offset × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::OFFSET] >> 4) * 4
    }

    /// The eight flag bits (see [`flags`]).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// FIN flag.
    #[inline]
    pub fn fin(&self) -> bool {
        self.flags() & flags::FIN != 0
    }

    /// SYN flag.
    #[inline]
    pub fn syn(&self) -> bool {
        self.flags() & flags::SYN != 0
    }

    /// RST flag.
    #[inline]
    pub fn rst(&self) -> bool {
        self.flags() & flags::RST != 0
    }

    /// PSH flag.
    #[inline]
    pub fn psh(&self) -> bool {
        self.flags() & flags::PSH != 0
    }

    /// ACK flag.
    #[inline]
    pub fn ack(&self) -> bool {
        self.flags() & flags::ACK != 0
    }

    /// URG flag.
    #[inline]
    pub fn urg(&self) -> bool {
        self.flags() & flags::URG != 0
    }

    /// ECE flag.
    #[inline]
    pub fn ece(&self) -> bool {
        self.flags() & flags::ECE != 0
    }

    /// CWR flag.
    #[inline]
    pub fn cwr(&self) -> bool {
        self.flags() & flags::CWR != 0
    }

    /// Receive window.
    #[inline]
    pub fn window(&self) -> u16 {
        get16(self.buffer.as_ref(), field::WINDOW)
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent(&self) -> u16 {
        get16(self.buffer.as_ref(), field::URGENT)
    }

    /// The raw options bytes.
    #[inline]
    pub fn options_raw(&self) -> &[u8] {
        &self.buffer.as_ref()[field::MIN_LEN..self.header_len()]
    }

    /// An iterator over the options.
    #[inline]
    pub fn options(&self) -> TcpOptions<'_> {
        TcpOptions {
            data: self.options_raw(),
        }
    }

    /// The MSS option, if present and well-formed.
    #[inline]
    pub fn mss(&self) -> Option<u16> {
        self.options().find_map(|o| match o {
            TcpOption::Mss(m) => Some(m),
            _ => None,
        })
    }

    /// The payload (everything after the header in the buffer).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// True if the checksum is valid under `pseudo_sum` (the whole buffer is the segment).
    #[inline]
    pub fn verify_checksum(&self, pseudo_sum: u16) -> bool {
        checksum::add(pseudo_sum, checksum::sum(self.buffer.as_ref())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
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

    /// Sets the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, v: u32) {
        set32(self.buffer.as_mut(), field::SEQ, v);
    }

    /// Sets the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, v: u32) {
        set32(self.buffer.as_mut(), field::ACK, v);
    }

    /// Sets the header length in bytes (a multiple of 4, 20..=60); reserved bits cleared.
    #[inline]
    pub fn set_header_len(&mut self, len: u8) {
        self.buffer.as_mut()[field::OFFSET] = (len / 4) << 4;
    }

    /// Sets the flag byte.
    #[inline]
    pub fn set_flags(&mut self, f: u8) {
        self.buffer.as_mut()[field::FLAGS] = f;
    }

    /// Sets the window.
    #[inline]
    pub fn set_window(&mut self, w: u16) {
        set16(self.buffer.as_mut(), field::WINDOW, w);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        set16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent(&mut self, u: u16) {
        set16(self.buffer.as_mut(), field::URGENT, u);
    }

    /// Replaces the source port, updating the checksum incrementally; returns the old port.
    #[inline]
    pub fn rewrite_src_port(&mut self, p: u16) -> u16 {
        let old = self.src_port();
        self.set_src_port(p);
        let c = checksum::update16(self.checksum(), old, p);
        self.set_checksum(c);
        old
    }

    /// Replaces the destination port, updating the checksum incrementally; returns the old port.
    #[inline]
    pub fn rewrite_dst_port(&mut self, p: u16) -> u16 {
        let old = self.dst_port();
        self.set_dst_port(p);
        let c = checksum::update16(self.checksum(), old, p);
        self.set_checksum(c);
        old
    }

    /// Computes and stores the checksum over the whole buffer under `pseudo_sum`.
    #[inline]
    pub fn fill_checksum(&mut self, pseudo_sum: u16) {
        self.set_checksum(0);
        let c = checksum::l4_checksum(pseudo_sum, self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Lowers a well-formed MSS option above `max` to `max`, updating the checksum incrementally
    /// (MSS clamping for tunnels); returns the MSS now in the segment.
    pub fn clamp_mss(&mut self, max: u16) -> Option<u16> {
        let hlen = self.header_len();
        let mut off = field::MIN_LEN;
        let mut found = None;
        {
            let mut it = self.options();
            while let Some(opt) = it.next() {
                let consumed = hlen - field::MIN_LEN - it.data.len();
                if let TcpOption::Mss(m) = opt {
                    // The option started `4` bytes before the iterator's cursor.
                    off = field::MIN_LEN + consumed - 4;
                    found = Some(m);
                    break;
                }
            }
        }
        let mss = found?;
        if mss <= max {
            return Some(mss);
        }
        set16(self.buffer.as_mut(), off + 2, max);
        // The option value starts at an even offset (MSS must be word-aligned to update as a word).
        let c = if off & 1 == 0 {
            checksum::update16(self.checksum(), mss, max)
        } else {
            let b = self.buffer.as_ref();
            // Odd alignment: the two bytes straddle words; update each containing word.
            let w1_old = u16::from_be_bytes([b[off + 1], (mss >> 8) as u8]);
            let w1_new = u16::from_be_bytes([b[off + 1], (max >> 8) as u8]);
            let w2_old = u16::from_be_bytes([mss as u8, b[off + 4]]);
            let w2_new = u16::from_be_bytes([max as u8, b[off + 4]]);
            let c = checksum::update16(self.checksum(), w1_old, w1_new);
            checksum::update16(c, w2_old, w2_new)
        };
        self.set_checksum(c);
        Some(max)
    }
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// Maximum segment size.
    Mss(u16),
    /// Window scale shift.
    WindowScale(u8),
    /// SACK permitted.
    SackPermitted,
    /// SACK blocks (raw, 8 bytes per block).
    Sack(&'a [u8]),
    /// Timestamps.
    Timestamps {
        /// TSval.
        tsval: u32,
        /// TSecr.
        tsecr: u32,
    },
    /// Any other option, or a known kind with an unexpected length.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data after kind and length.
        data: &'a [u8],
    },
    /// The rest of the options could not be parsed (bad length); the walk ends here.
    Malformed,
}

/// An iterator over TCP options; NOPs are skipped, end-of-list stops it.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    data: &'a [u8],
}

impl<'a> TcpOptions<'a> {
    /// Iterates over raw option bytes.
    pub fn new(data: &'a [u8]) -> Self {
        TcpOptions { data }
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = TcpOption<'a>;

    fn next(&mut self) -> Option<TcpOption<'a>> {
        loop {
            let (&k, rest) = self.data.split_first()?;
            match k {
                kind::END => {
                    self.data = &[];
                    return None;
                }
                kind::NOP => {
                    self.data = rest;
                    continue;
                }
                _ => {}
            }
            let len = match rest.first() {
                Some(&l) if usize::from(l) >= 2 && usize::from(l) <= self.data.len() => {
                    usize::from(l)
                }
                _ => {
                    self.data = &[];
                    return Some(TcpOption::Malformed);
                }
            };
            let (opt, tail) = self.data.split_at(len);
            self.data = tail;
            let body = &opt[2..];
            return Some(match (k, body.len()) {
                (kind::MSS, 2) => TcpOption::Mss(get16(body, 0)),
                (kind::WS, 1) => TcpOption::WindowScale(body[0]),
                (kind::SACK_PERMITTED, 0) => TcpOption::SackPermitted,
                (kind::SACK, n) if n % 8 == 0 && n > 0 => TcpOption::Sack(body),
                (kind::TIMESTAMPS, 8) => TcpOption::Timestamps {
                    tsval: get32(body, 0),
                    tsecr: get32(body, 4),
                },
                _ => TcpOption::Unknown {
                    kind: k,
                    data: body,
                },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::wire::fixtures::TCP_SYN as SYN;

    #[test]
    fn test_parse_syn() {
        let t = TcpPacket::new_checked(&SYN[..]).unwrap();
        assert_eq!(t.src_port(), 40000);
        assert_eq!(t.dst_port(), 80);
        assert_eq!(t.seq_number(), 0x01020304);
        assert_eq!(t.ack_number(), 0);
        assert_eq!(t.header_len(), 40);
        assert!(t.syn() && !t.ack() && !t.fin() && !t.rst() && !t.psh());
        assert!(!t.urg() && !t.ece() && !t.cwr());
        assert_eq!(t.window(), 64240);
        assert!(t.payload().is_empty());
        let opts: Vec<_> = t.options().collect();
        assert_eq!(
            opts,
            vec![
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamps {
                    tsval: 123456,
                    tsecr: 0
                },
                TcpOption::WindowScale(7),
            ]
        );
        assert_eq!(t.mss(), Some(1460));
    }

    #[test]
    fn test_truncated_and_bad_offset() {
        assert_eq!(
            TcpPacket::new_checked(&SYN[..19]).unwrap_err(),
            ParseError::Truncated
        );
        assert_eq!(
            TcpPacket::new_checked(&SYN[..39]).unwrap_err(),
            ParseError::Truncated
        );
        let mut b = SYN;
        b[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err(),
            ParseError::BadHeaderLength
        );
    }

    #[test]
    fn test_garbage_options() {
        fn walk(d: &[u8]) -> Vec<TcpOption<'_>> {
            TcpOptions::new(d).collect()
        }
        assert_eq!(walk(&[2, 4, 5]), vec![TcpOption::Malformed]);
        assert_eq!(walk(&[2, 1, 0, 0]), vec![TcpOption::Malformed]);
        assert_eq!(walk(&[1, 1, 0, 2, 4, 5, 0xb4]), vec![]);
        assert_eq!(
            walk(&[2, 3, 9, 30, 2, 0xaa, 0xbb]),
            vec![
                TcpOption::Unknown {
                    kind: 2,
                    data: &[9]
                },
                TcpOption::Unknown {
                    kind: 30,
                    data: &[]
                },
                TcpOption::Malformed
            ]
        );
        let sack = [5, 10, 0, 0, 0, 1, 0, 0, 0, 2];
        assert_eq!(walk(&sack), vec![TcpOption::Sack(&sack[2..])]);
    }

    #[test]
    fn test_rewrite_ports_and_clamp_mss() {
        let mut b = SYN;
        let ps = checksum::pseudo_v4([192, 0, 2, 1], [192, 0, 2, 2], 6, 40);
        let mut t = TcpPacket::new_checked(&mut b[..]).unwrap();
        t.fill_checksum(ps);
        assert!(t.verify_checksum(ps));
        assert_eq!(t.rewrite_dst_port(8080), 80);
        assert_eq!(t.rewrite_src_port(1024), 40000);
        assert!(t.verify_checksum(ps));
        assert_eq!(t.clamp_mss(1440), Some(1440));
        assert_eq!(t.mss(), Some(1440));
        assert!(t.verify_checksum(ps));
        assert_eq!(t.clamp_mss(1500), Some(1440));

        // MSS at an odd offset (after one NOP).
        let mut odd = [0u8; 28];
        odd[..20].copy_from_slice(&SYN[..20]);
        odd[12] = 0x70;
        odd[20..28].copy_from_slice(&[1, 2, 4, 0x23, 0x28, 1, 1, 0]);
        let mut t = TcpPacket::new_checked(&mut odd[..]).unwrap();
        let ps = checksum::pseudo_v4([192, 0, 2, 1], [192, 0, 2, 2], 6, 28);
        t.fill_checksum(ps);
        assert_eq!(t.mss(), Some(9000));
        assert_eq!(t.clamp_mss(1400), Some(1400));
        assert_eq!(t.mss(), Some(1400));
        assert!(t.verify_checksum(ps));

        let mut none = [0u8; 20];
        none.copy_from_slice(&SYN[..20]);
        none[12] = 0x50;
        assert_eq!(
            TcpPacket::new_checked(&mut none[..]).unwrap().clamp_mss(1),
            None
        );
    }
}
