//! IPv4-in-IPv4 encapsulation (RFC 2003, IP protocol 4), IPVS's "tunnel" forwarding mode.
//!
//! ```text
//! before: | eth | inner IPv4 | L4 ...
//! after:  | eth | outer IPv4 (proto 4, LB -> real server) | inner IPv4 | L4 ...
//! ```
//! The outer header copies the inner TOS and DF bit (RFC 2003 §3.1); its total length is the inner
//! total length + 20, so the encapsulated packet must fit the path MTU (the forwarder checks that
//! and answers with fragmentation-needed otherwise).

use super::ip_proto;
use super::ipv4::{Ipv4Packet, Ipv4Repr, MIN_HEADER_LEN};
use super::{EmitError, ParseError};
use crate::buf::PacketBuf;

/// Bytes the outer header adds.
pub const OVERHEAD: usize = MIN_HEADER_LEN;

/// The outer header for `inner`, from `src` to `dst`.
#[inline]
pub fn outer_repr<T: AsRef<[u8]>>(
    inner: &Ipv4Packet<T>,
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    ident: u16,
) -> Result<Ipv4Repr, EmitError> {
    if usize::from(inner.total_len()) + OVERHEAD > usize::from(u16::MAX) {
        return Err(EmitError::TooLong);
    }
    Ok(Ipv4Repr {
        src,
        dst,
        protocol: ip_proto::IPIP,
        ttl,
        tos: inner.tos(),
        ident,
        dont_frag: inner.dont_frag(),
        payload_len: inner.total_len(),
    })
}

/// Encapsulates the IPv4 packet at `l2_len` in `buf`: prepends 20 bytes, moves the L2 header to
/// the front and writes the outer header after it. Ethernet padding after the inner packet is
/// trimmed. With `offload_csum` the outer checksum is left zero for the NIC.
pub fn encapsulate<B: PacketBuf + ?Sized>(
    buf: &mut B,
    l2_len: usize,
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    ident: u16,
    offload_csum: bool,
) -> Result<(), EmitError> {
    let (repr, inner_end) = {
        let frame = buf.frame();
        let ip = frame.get(l2_len..).ok_or(ParseError::Truncated)?;
        let inner = Ipv4Packet::new_checked(ip)?;
        (
            outer_repr(&inner, src, dst, ttl, ident)?,
            l2_len + usize::from(inner.total_len()),
        )
    };
    let padding = buf.len() - inner_end;
    let outer = make_room(buf, l2_len, padding)?;
    if offload_csum {
        repr.emit_for_offload(outer)
    } else {
        repr.emit(outer)
    }
}

/// Trims `padding` bytes of Ethernet padding, prepends room for the outer header and moves the
/// `l2_len`-byte L2 header to the front; returns where the outer header goes.
#[inline]
fn make_room<B: PacketBuf + ?Sized>(
    buf: &mut B,
    l2_len: usize,
    padding: usize,
) -> Result<&mut [u8], EmitError> {
    if padding > 0 {
        buf.trim_back(padding)
            .map_err(|_| EmitError::BufferTooShort)?;
    }
    buf.prepend(OVERHEAD)
        .map_err(|_| EmitError::BufferTooShort)?;
    let frame = buf.frame_mut();
    frame.copy_within(OVERHEAD..OVERHEAD + l2_len, 0);
    Ok(&mut frame[l2_len..])
}

/// [`encapsulate`] for the common frame (untagged Ethernet, IPv4 without options at 14) that
/// [`crate::wire::Ipv4TcpHead::read`] took: the same bytes and errors, with the inner header's
/// fields read at fixed offsets instead of through a checked view (its version, header length
/// and total length were checked by `read`).
#[inline]
pub fn encapsulate_common<B: PacketBuf + ?Sized>(
    buf: &mut B,
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    ident: u16,
) -> Result<(), EmitError> {
    const L2_LEN: usize = 14;
    let (repr, inner_end) = {
        let h = buf
            .frame()
            .first_chunk::<34>()
            .ok_or(ParseError::Truncated)?;
        let total = u16::from_be_bytes([h[16], h[17]]);
        if usize::from(total) + OVERHEAD > usize::from(u16::MAX) {
            return Err(EmitError::TooLong);
        }
        let repr = Ipv4Repr {
            src,
            dst,
            protocol: ip_proto::IPIP,
            ttl,
            tos: h[15],
            ident,
            dont_frag: h[20] & 0x40 != 0,
            payload_len: total,
        };
        (repr, L2_LEN + usize::from(total))
    };
    let padding = buf
        .len()
        .checked_sub(inner_end)
        .ok_or(ParseError::BadTotalLength)?;
    repr.emit(make_room(buf, L2_LEN, padding)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use crate::wire::{parse_frame, Frag, L3Kind};

    fn frame() -> Vec<u8> {
        let mut f = vec![
            0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00, // eth
            0x45, 0xb8, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x3f, 0x11, 0x00, 0x00, 192, 0, 2, 1,
            198, 51, 100, 10, // inner IPv4, DSCP EF, DF, UDP
            0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00, // UDP 12345 -> 53
        ];
        Ipv4Packet::new_checked(&mut f[14..])
            .unwrap()
            .fill_checksum();
        f.resize(60, 0); // Ethernet minimum with padding
        f
    }

    #[test]
    fn test_encapsulate_round_trip() {
        let orig = frame();
        let mut b = VecBuf::new(&orig);
        encapsulate(&mut b, 14, [10, 0, 0, 1], [10, 0, 0, 9], 64, 7, false).unwrap();
        let f = b.frame();
        assert_eq!(f.len(), 14 + 20 + 28);
        assert_eq!(&f[..14], &orig[..14]);
        assert_eq!(&f[34..], &orig[14..42]);
        let outer = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(outer.verify_checksum());
        assert_eq!(outer.protocol(), 4);
        assert_eq!(outer.total_len(), 48);
        assert_eq!(outer.tos(), 0xb8);
        assert!(outer.dont_frag());
        assert_eq!((outer.src(), outer.dst()), ([10, 0, 0, 1], [10, 0, 0, 9]));
        assert_eq!((outer.ttl(), outer.ident()), (64, 7));
        let pf = parse_frame(f).unwrap();
        assert_eq!(pf.l3, L3Kind::Ipv4);
        assert_eq!(pf.proto, 4);
        assert_eq!(pf.l4_off, 34);
        assert_eq!(pf.frag, Frag::None);
        let inner = parse_frame(&[&f[..12], &[0x08, 0x00][..], &f[34..]].concat()).unwrap();
        assert_eq!((inner.sport, inner.dport), (12345, 53));
    }

    /// The common-frame shortcut writes what the general encapsulation writes: TCP frames with
    /// and without DF, with a TOS, padded to the Ethernet minimum or not, and without headroom.
    #[test]
    fn test_encapsulate_common_matches_encapsulate() {
        for (df, tos, payload) in [(true, 0xb8, 0usize), (false, 0, 0), (true, 0x10, 40)] {
            let mut f = vec![
                0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00, // eth
                0x45, tos, 0x00, 0x00, 0x12, 0x34, 0x00, 0x00, 0x40, 0x06, 0x00, 0x00, 192, 0, 2,
                1, 198, 51, 100, 10, // inner IPv4, TCP
                0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 2, 0x50, 0x10, 0x01, 0x00, 0, 0, 0,
                0, // TCP ACK
            ];
            f.resize(54 + payload, 7);
            let total = (40 + payload) as u16;
            f[16..18].copy_from_slice(&total.to_be_bytes());
            if df {
                f[20] = 0x40;
            }
            Ipv4Packet::new_checked(&mut f[14..])
                .unwrap()
                .fill_checksum();
            f.resize(f.len().max(60), 0);
            let (src, dst) = ([10, 0, 0, 1], [10, 0, 0, 9]);
            let mut a = VecBuf::new(&f);
            let mut b = VecBuf::new(&f);
            encapsulate(&mut a, 14, src, dst, 64, 9, false).unwrap();
            encapsulate_common(&mut b, src, dst, 64, 9).unwrap();
            assert_eq!(a.frame(), b.frame(), "df {df} tos {tos} payload {payload}");
            let mut none = VecBuf::with_room(&f, 0, VecBuf::DEFAULT_CAPACITY);
            assert_eq!(
                encapsulate_common(&mut none, src, dst, 64, 9),
                Err(EmitError::BufferTooShort)
            );
        }
    }

    #[test]
    fn test_encapsulate_offload_and_errors() {
        let mut b = VecBuf::new(&frame());
        encapsulate(&mut b, 14, [10, 0, 0, 1], [10, 0, 0, 9], 64, 7, true).unwrap();
        assert_eq!(&b.frame()[24..26], &[0, 0]);

        let mut no_room = VecBuf::with_room(&frame(), 10, 2048);
        assert_eq!(
            encapsulate(&mut no_room, 14, [0; 4], [0; 4], 64, 0, false),
            Err(EmitError::BufferTooShort)
        );
        let mut short = VecBuf::new(&frame()[..40]);
        assert_eq!(
            encapsulate(&mut short, 14, [0; 4], [0; 4], 64, 0, false),
            Err(EmitError::Malformed(ParseError::BadTotalLength))
        );
        let mut big = frame();
        big[16..18].copy_from_slice(&65530u16.to_be_bytes());
        big.resize(14 + 65530, 0);
        let inner = Ipv4Packet::new_checked(&big[14..]).unwrap();
        assert_eq!(
            outer_repr(&inner, [0; 4], [0; 4], 1, 1),
            Err(EmitError::TooLong)
        );
    }
}
