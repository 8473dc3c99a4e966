//! Test traffic for the forwarding benchmark: minimum-size (60 bytes + FCS = 64 on the wire)
//! IPv4/TCP frames with valid IP and TCP checksums, written as classic pcap files that DPDK's
//! `net_pcap` replays.
//!
//! Flow `i` is client `100.64.0.0 + (i >> 14) + 1`, port `1024 + (i & 0x3fff)`, to the VIP; every
//! flow has a distinct tuple, so `n` flows are `n` connections.

use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::Path;

/// Frame length without FCS: 14 Ethernet + 20 IPv4 + 20 TCP + 6 padding.
pub const FRAME_LEN: usize = 60;

/// TCP flag bits.
pub const SYN: u8 = 0x02;
/// TCP ACK.
pub const ACK: u8 = 0x10;

/// Client MAC written into client-side frames.
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
/// Real-server MAC written into server-side frames.
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
/// Destination MAC of every frame (the director's ports accept any: pcap and null devices do
/// not filter).
const DIRECTOR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// One TCP segment's addressing and flags.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// TCP flags.
    pub flags: u8,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
}

/// The client address and port of flow `i`.
pub fn client(i: u32) -> (Ipv4Addr, u16) {
    let ip = u32::from(Ipv4Addr::new(100, 64, 0, 0)) + (i >> 14) + 1;
    (Ipv4Addr::from(ip), 1024 + (i & 0x3fff) as u16)
}

/// One's-complement sum of 16-bit words, folded.
fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The 60-byte frame of `s`; `from_client` picks the source MAC.
pub fn frame(s: &Segment, from_client: bool, ip_id: u16) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&DIRECTOR_MAC);
    f[6..12].copy_from_slice(if from_client {
        &CLIENT_MAC
    } else {
        &SERVER_MAC
    });
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[4..6].copy_from_slice(&ip_id.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&s.src.octets());
    ip[16..20].copy_from_slice(&s.dst.octets());
    let c = fold(sum16(ip, 0));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let tcp = &mut f[34..54];
    tcp[0..2].copy_from_slice(&s.sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&s.dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&s.seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&s.ack.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = s.flags;
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&s.src.octets());
    pseudo[4..8].copy_from_slice(&s.dst.octets());
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&20u16.to_be_bytes());
    let c = fold(sum16(tcp, sum16(&pseudo, 0)));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    f
}

/// Writes `count` frames produced by `frame_of(i)` as a pcap file (microsecond timestamps,
/// Ethernet link type).
pub fn write(
    path: &Path,
    count: u32,
    mut frame_of: impl FnMut(u32) -> [u8; FRAME_LEN],
) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    w.write_all(&65535u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    for i in 0..count {
        let f = frame_of(i);
        w.write_all(&(i / 1_000_000).to_le_bytes())?;
        w.write_all(&(i % 1_000_000).to_le_bytes())?;
        w.write_all(&(FRAME_LEN as u32).to_le_bytes())?;
        w.write_all(&(FRAME_LEN as u32).to_le_bytes())?;
        w.write_all(&f)?;
    }
    w.flush()
}

/// Checks a frame with an independent parser: IPv4 and TCP checksums must verify.
pub fn verify(f: &[u8]) -> Result<(), String> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let p = SlicedPacket::from_ethernet(f).map_err(|e| e.to_string())?;
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        return Err("not IPv4".into());
    };
    let hdr = ip.header().to_header();
    if hdr.calc_header_checksum() != hdr.header_checksum {
        return Err("bad IPv4 header checksum".into());
    }
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
        return Err("not TCP".into());
    };
    let want = tcp
        .to_header()
        .calc_checksum_ipv4(&hdr, tcp.payload())
        .map_err(|e| e.to_string())?;
    if want != tcp.checksum() {
        return Err(format!(
            "bad TCP checksum {:#06x}, want {want:#06x}",
            tcp.checksum()
        ));
    }
    Ok(())
}
