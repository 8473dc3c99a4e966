//! An owned `rte_mbuf`: frame access, head/tail adjustment and TX offload requests.
//!
//! [`Mbuf`] owns one reference to a packet and frees it on drop. Frame access covers the first
//! segment (`buf_addr + data_off`, `data_len` bytes), read straight from the struct without an
//! FFI call; IronVS pools use one segment per frame. Head and tail adjustments of a single
//! segment are done in Rust too (DPDK's `static inline` functions would otherwise be a call
//! through bindgen's non-inlined wrappers per packet); chains fall back to DPDK. `Mbuf` is
//! `Send` (hand it to another core) but not `Sync`.

use std::marker::PhantomData;
use std::ptr::NonNull;

use dataplane::buf::{BufError, PacketBuf};

use crate::port::PortId;
use crate::sys;

/// An owned packet buffer (same layout as a `*mut rte_mbuf`).
#[repr(transparent)]
pub struct Mbuf {
    ptr: NonNull<sys::rte_mbuf>,
    /// Makes `Mbuf` !Sync (the struct is mutated through `&mut self` only, but C code may read it).
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

// SAFETY: an Mbuf is the unique owner of its rte_mbuf; moving it to another thread moves that
// ownership, and freeing from any thread is supported by the MP/MC mempool.
unsafe impl Send for Mbuf {}

/// TX offload flags (`RTE_MBUF_F_TX_*`) and RX status flags (`RTE_MBUF_F_RX_*`).
// bindgen types each macro u32 or u64 by its value, so some of these casts are no-ops.
#[allow(clippy::unnecessary_cast)]
pub mod flags {
    use crate::sys;
    /// The NIC computed a valid RSS hash for this packet.
    pub const RX_RSS_HASH: u64 = sys::RTE_MBUF_F_RX_RSS_HASH as u64;
    /// Mask of the RX IP-checksum status bits.
    pub const RX_IP_CKSUM_MASK: u64 = sys::RTE_MBUF_F_RX_IP_CKSUM_MASK as u64;
    /// RX IP checksum is bad.
    pub const RX_IP_CKSUM_BAD: u64 = sys::RTE_MBUF_F_RX_IP_CKSUM_BAD as u64;
    /// Mask of the RX L4-checksum status bits.
    pub const RX_L4_CKSUM_MASK: u64 = sys::RTE_MBUF_F_RX_L4_CKSUM_MASK as u64;
    /// RX L4 checksum is bad.
    pub const RX_L4_CKSUM_BAD: u64 = sys::RTE_MBUF_F_RX_L4_CKSUM_BAD as u64;
    /// The packet is IPv4 (required with TX checksum offloads).
    pub const TX_IPV4: u64 = sys::RTE_MBUF_F_TX_IPV4 as u64;
    /// The packet is IPv6 (required with TX L4 checksum offloads).
    pub const TX_IPV6: u64 = sys::RTE_MBUF_F_TX_IPV6 as u64;
    /// Let the NIC compute the IPv4 header checksum.
    pub const TX_IP_CKSUM: u64 = sys::RTE_MBUF_F_TX_IP_CKSUM as u64;
    /// Let the NIC compute the TCP checksum (the field must hold the pseudo-header sum).
    pub const TX_TCP_CKSUM: u64 = sys::RTE_MBUF_F_TX_TCP_CKSUM as u64;
    /// Let the NIC compute the UDP checksum (the field must hold the pseudo-header sum).
    pub const TX_UDP_CKSUM: u64 = sys::RTE_MBUF_F_TX_UDP_CKSUM as u64;
    /// Mask of the TX L4 checksum request bits.
    pub const TX_L4_MASK: u64 = sys::RTE_MBUF_F_TX_L4_MASK as u64;
}

/// Which L4 checksum the NIC should fill in on transmit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Cksum {
    /// None (software computed it, or no L4 header).
    None,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// Header lengths and checksum requests for TX offload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxOffload {
    /// Ethernet (+VLAN) header length; at most 127.
    pub l2_len: u8,
    /// IP header length; at most 511.
    pub l3_len: u16,
    /// L4 header length (needed for TSO only).
    pub l4_len: u8,
    /// True for IPv4, false for IPv6.
    pub ipv4: bool,
    /// Have the NIC compute the IPv4 header checksum (IPv4 only).
    pub ip_cksum: bool,
    /// Have the NIC compute this L4 checksum.
    pub l4_cksum: L4Cksum,
}

impl TxOffload {
    /// The `tx_offload` word: l2_len bits 0-6, l3_len bits 7-15, l4_len bits 16-23.
    fn word(&self) -> u64 {
        u64::from(self.l2_len & 0x7f)
            | (u64::from(self.l3_len & 0x1ff) << 7)
            | (u64::from(self.l4_len) << 16)
    }

    /// The `ol_flags` bits this request sets.
    fn flags(&self) -> u64 {
        let mut f = if self.ipv4 {
            flags::TX_IPV4
        } else {
            flags::TX_IPV6
        };
        if self.ip_cksum && self.ipv4 {
            f |= flags::TX_IP_CKSUM;
        }
        f | match self.l4_cksum {
            L4Cksum::None => 0,
            L4Cksum::Tcp => flags::TX_TCP_CKSUM,
            L4Cksum::Udp => flags::TX_UDP_CKSUM,
        }
    }
}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `ptr` must be a valid mbuf whose reference the caller owns and gives up.
    #[inline]
    pub unsafe fn from_raw(ptr: *mut sys::rte_mbuf) -> Mbuf {
        Mbuf {
            // SAFETY: the caller guarantees a valid (hence non-null) mbuf.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            _not_sync: PhantomData,
        }
    }

    /// Gives up ownership without freeing; pair with [`Mbuf::from_raw`].
    #[inline]
    pub fn into_raw(self) -> *mut sys::rte_mbuf {
        let ptr = self.ptr.as_ptr();
        std::mem::forget(self);
        ptr
    }

    /// The raw mbuf, still owned by `self`.
    #[inline]
    pub fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.ptr.as_ptr()
    }

    #[inline]
    fn raw(&self) -> &sys::rte_mbuf {
        // SAFETY: we own a valid mbuf; shared access through &self.
        unsafe { self.ptr.as_ref() }
    }

    #[inline]
    fn raw_mut(&mut self) -> &mut sys::rte_mbuf {
        // SAFETY: we own a valid mbuf; exclusive access through &mut self.
        unsafe { self.ptr.as_mut() }
    }

    /// The first segment's data.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: DPDK keeps data_off + data_len within the segment's buf_len bytes at buf_addr,
        // and the bytes belong to this mbuf.
        unsafe {
            std::slice::from_raw_parts(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// The first segment's data, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw_mut();
        // SAFETY: as in `data`; &mut self makes the access exclusive.
        unsafe {
            std::slice::from_raw_parts_mut(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// Bytes in the first segment.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.raw().data_len)
    }

    /// True when the first segment holds no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes in the whole packet (all segments).
    #[inline]
    pub fn pkt_len(&self) -> u32 {
        self.raw().pkt_len
    }

    /// Number of segments.
    #[inline]
    pub fn nb_segs(&self) -> u16 {
        self.raw().nb_segs
    }

    /// Free bytes in front of the data.
    #[inline]
    pub fn headroom(&self) -> usize {
        usize::from(self.raw().data_off)
    }

    /// Free bytes behind the data in the first segment.
    #[inline]
    pub fn tailroom(&self) -> usize {
        let m = self.raw();
        usize::from(m.buf_len).saturating_sub(usize::from(m.data_off) + usize::from(m.data_len))
    }

    /// Grows the data by `n` bytes at the front (contents unspecified).
    #[inline]
    pub fn prepend(&mut self, n: u16) -> Result<(), BufError> {
        // rte_pktmbuf_prepend, in Rust (no call per packet): the first segment only.
        let m = self.raw_mut();
        if n > m.data_off {
            return Err(BufError::NoHeadroom);
        }
        m.data_off -= n;
        m.data_len = m.data_len.wrapping_add(n);
        m.pkt_len = m.pkt_len.wrapping_add(u32::from(n));
        Ok(())
    }

    /// Removes `n` bytes from the front.
    #[inline]
    pub fn adj(&mut self, n: u16) -> Result<(), BufError> {
        // rte_pktmbuf_adj, in Rust: the first segment only.
        let m = self.raw_mut();
        if n > m.data_len {
            return Err(BufError::TooShort);
        }
        m.data_len -= n;
        m.data_off = m.data_off.wrapping_add(n);
        m.pkt_len = m.pkt_len.wrapping_sub(u32::from(n));
        Ok(())
    }

    /// Grows the data by `n` bytes at the end (contents unspecified).
    #[inline]
    pub fn append(&mut self, n: u16) -> Result<(), BufError> {
        if self.raw().nb_segs == 1 {
            // rte_pktmbuf_append of a single segment, in Rust.
            let m = self.raw_mut();
            let end = u32::from(m.data_off) + u32::from(m.data_len) + u32::from(n);
            if end > u32::from(m.buf_len) {
                return Err(BufError::NoTailroom);
            }
            m.data_len += n;
            m.pkt_len = m.pkt_len.wrapping_add(u32::from(n));
            return Ok(());
        }
        // SAFETY: valid owned mbuf; rte_pktmbuf_append returns NULL, unchanged, if the last
        // segment lacks tailroom.
        let p = unsafe { sys::rte_pktmbuf_append(self.as_ptr(), n) };
        if p.is_null() {
            Err(BufError::NoTailroom)
        } else {
            Ok(())
        }
    }

    /// Removes `n` bytes from the end.
    #[inline]
    pub fn trim(&mut self, n: u16) -> Result<(), BufError> {
        if self.raw().nb_segs == 1 {
            // rte_pktmbuf_trim of a single segment, in Rust.
            let m = self.raw_mut();
            if n > m.data_len {
                return Err(BufError::TooShort);
            }
            m.data_len -= n;
            m.pkt_len = m.pkt_len.wrapping_sub(u32::from(n));
            return Ok(());
        }
        // SAFETY: valid owned mbuf; rte_pktmbuf_trim returns -1, unchanged, if the last segment
        // holds fewer than n bytes.
        let ret = unsafe { sys::rte_pktmbuf_trim(self.as_ptr(), n) };
        if ret != 0 {
            Err(BufError::TooShort)
        } else {
            Ok(())
        }
    }

    /// The offload flags (`RTE_MBUF_F_*`, see [`flags`]).
    #[inline]
    pub fn ol_flags(&self) -> u64 {
        self.raw().ol_flags
    }

    /// Replaces the offload flags.
    #[inline]
    pub fn set_ol_flags(&mut self, flags: u64) {
        self.raw_mut().ol_flags = flags;
    }

    /// The raw `tx_offload` word (l2/l3/l4 lengths, TSO segment size, outer lengths).
    #[inline]
    pub fn tx_offload(&self) -> u64 {
        // SAFETY: every variant of this union is plain integer data of the same width.
        unsafe { self.raw().__bindgen_anon_3.tx_offload }
    }

    /// Requests TX checksum offload: sets l2/l3/l4 lengths and the matching `ol_flags` bits,
    /// replacing earlier TX checksum requests (other flags are kept). Only request what the port
    /// advertises in [`crate::PortInfo::tx_offload_capa`].
    #[inline]
    pub fn set_tx_offload(&mut self, req: TxOffload) {
        let m = self.raw_mut();
        m.__bindgen_anon_3.tx_offload = req.word();
        let keep = m.ol_flags
            & !(flags::TX_IPV4 | flags::TX_IPV6 | flags::TX_IP_CKSUM | flags::TX_L4_MASK);
        m.ol_flags = keep | req.flags();
    }

    /// The NIC's RSS hash, if the port computed one for this packet.
    #[inline]
    pub fn rss_hash(&self) -> Option<u32> {
        let m = self.raw();
        if m.ol_flags & flags::RX_RSS_HASH == 0 {
            return None;
        }
        // SAFETY: the union holds plain integers; with RX_RSS_HASH set `rss` is the valid view.
        Some(unsafe { m.__bindgen_anon_2.hash.rss })
    }

    /// The port the packet arrived on.
    #[inline]
    pub fn port(&self) -> PortId {
        PortId(self.raw().port)
    }

    /// The packet's VLAN TCI (valid when the RX VLAN-stripped flag is set).
    #[inline]
    pub fn vlan_tci(&self) -> u16 {
        self.raw().vlan_tci
    }

    /// Current reference count.
    pub fn refcnt(&self) -> u16 {
        // SAFETY: valid mbuf; the read is atomic.
        unsafe { sys::rte_mbuf_refcnt_read(self.as_ptr()) }
    }

    /// Replaces the data with `bytes`, resetting head/tailroom; fails if it does not fit.
    pub fn set_data(&mut self, bytes: &[u8]) -> Result<(), BufError> {
        let n = u16::try_from(bytes.len()).map_err(|_| BufError::NoTailroom)?;
        let len = self.len() as u16;
        self.trim(len)?;
        self.append(n)?;
        self.data_mut().copy_from_slice(bytes);
        Ok(())
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own one reference to a valid mbuf and release it exactly once.
        unsafe { sys::rte_pktmbuf_free(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf")
            .field("port", &self.port())
            .field("len", &self.len())
            .field("headroom", &self.headroom())
            .field("ol_flags", &format_args!("{:#x}", self.ol_flags()))
            .finish()
    }
}

/// Converts a `usize` request to DPDK's `u16`, mapping overflow to `err`.
fn len16(n: usize, err: BufError) -> Result<u16, BufError> {
    u16::try_from(n).map_err(|_| err)
}

impl PacketBuf for Mbuf {
    #[inline]
    fn frame(&self) -> &[u8] {
        self.data()
    }
    #[inline]
    fn frame_mut(&mut self) -> &mut [u8] {
        self.data_mut()
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> Result<(), BufError> {
        Mbuf::prepend(self, len16(n, BufError::NoHeadroom)?)
    }
    #[inline]
    fn trim_front(&mut self, n: usize) -> Result<(), BufError> {
        self.adj(len16(n, BufError::TooShort)?)
    }
    #[inline]
    fn append(&mut self, n: usize) -> Result<(), BufError> {
        Mbuf::append(self, len16(n, BufError::NoTailroom)?)
    }
    #[inline]
    fn trim_back(&mut self, n: usize) -> Result<(), BufError> {
        self.trim(len16(n, BufError::TooShort)?)
    }
    #[inline]
    fn len(&self) -> usize {
        Mbuf::len(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_tx_offload_word_matches_bindgen_bitfields() {
        let req = TxOffload {
            l2_len: 14,
            l3_len: 20,
            l4_len: 20,
            ipv4: true,
            ip_cksum: true,
            l4_cksum: L4Cksum::Tcp,
        };
        let mut reference = sys::rte_mbuf__bindgen_ty_3__bindgen_ty_1::default();
        reference.set_l2_len(14);
        reference.set_l3_len(20);
        reference.set_l4_len(20);
        let mut u = sys::rte_mbuf__bindgen_ty_3 { tx_offload: 0 };
        u.__bindgen_anon_1 = reference;
        // SAFETY: both union views are 64 bits of plain integer data.
        assert_eq!(req.word(), unsafe { u.tx_offload });
        assert_eq!(req.word(), 14 | (20 << 7) | (20 << 16));
    }

    #[test]
    fn test_tx_offload_flags() {
        let v4 = TxOffload {
            l2_len: 14,
            l3_len: 20,
            l4_len: 8,
            ipv4: true,
            ip_cksum: true,
            l4_cksum: L4Cksum::Udp,
        };
        assert_eq!(v4.flags(), (1 << 55) | (1 << 54) | (3 << 52));
        let v6 = TxOffload {
            ipv4: false,
            l4_cksum: L4Cksum::Tcp,
            ..v4
        };
        // IPv6 has no header checksum, so ip_cksum is ignored.
        assert_eq!(v6.flags(), (1 << 56) | (1 << 52));
    }

    #[test]
    fn test_len16() {
        assert_eq!(len16(65535, BufError::TooShort), Ok(65535));
        assert_eq!(
            len16(65536, BufError::NoHeadroom),
            Err(BufError::NoHeadroom)
        );
    }
}
