//! Bursts that mix the common frame with frames only the full parse reads, over several bursts
//! on one forwarder: the uncommon frames' parses are kept in the forwarder between the passes
//! (`Forwarder::parsed`), and a slot one burst filled must never leak into the next.

use super::props::{client, syn_from, two_servers};
use super::*;
use crate::prefetch::NoPrefetch;
use proptest::prelude::*;

/// `f` (an untagged IPv4 frame without options) with four bytes of IPv4 options (NOP, NOP,
/// NOP, EOL): the same packet to every later stage, but not the fixed-offset head.
fn with_ip_options(f: &[u8]) -> Vec<u8> {
    let mut g = f[..34].to_vec();
    g.extend_from_slice(&[1, 1, 1, 0]);
    g.extend_from_slice(&f[34..]);
    g[14] = 0x46;
    let total = u16::from_be_bytes([g[16], g[17]]) + 4;
    g[16..18].copy_from_slice(&total.to_be_bytes());
    g[24..26].copy_from_slice(&[0, 0]);
    let sum: u32 = g[14..38]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    let c = !(((folded & 0xffff) + (folded >> 16)) as u16);
    g[24..26].copy_from_slice(&c.to_be_bytes());
    g
}

/// One frame of flow `cport`: common and uncommon TCP of the service, UDP to its address, ARP
/// and a truncated frame.
fn mixed_frame(cport: u16, kind: usize) -> Vec<u8> {
    match kind {
        0 => syn_from(CLIENT, cport, 80),
        1 => client(cport, ACK, 64),
        2 => with_ip_options(&client(cport, ACK, 64)),
        3 => with_ip_options(&client(cport, 0x11, 64)),
        4 => with_ip_options(&syn_from(CLIENT, cport, 80)),
        5 => frame(
            MAC_P0,
            MAC_ROUTER,
            CLIENT,
            VIP,
            64,
            L4::Udp {
                sport: cport,
                dport: 80,
            },
            b"u",
        ),
        6 => client(cport, ACK, 64)[..30].to_vec(),
        _ => {
            // An ARP request for the VIP.
            let mut f = vec![0xff; 6];
            f.extend_from_slice(&MAC_ROUTER);
            f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
            f.extend_from_slice(&MAC_ROUTER);
            f.extend_from_slice(&CLIENT.v4_octets());
            f.extend_from_slice(&[0; 6]);
            f.extend_from_slice(&VIP.v4_octets());
            f
        }
    }
}

proptest! {
    /// Frames of every kind, cut into bursts of random sizes and run through one forwarder,
    /// get exactly the verdicts, bytes and counters the same frames get one by one.
    #[test]
    fn prop_mixed_bursts_equal_one_by_one(
        mode in 0usize..4,
        seq in prop::collection::vec((0u16..4, 0usize..8), 1..160),
        cuts in prop::collection::vec(1usize..80, 1..8),
    ) {
        let snap = two_servers(FwdMode::ALL[mode]);
        let frames: Vec<Vec<u8>> = seq.iter().map(|&(f, k)| mixed_frame(40000 + f, k)).collect();
        let (one, single) = one_by_one(&snap, &frames);
        let mut burst = forwarder();
        let mut bufs: Vec<VecBuf> = frames.iter().map(|f| VecBuf::new(f)).collect();
        let mut v = vec![Verdict::Kernel; frames.len()];
        let (mut at, mut cut) = (0, cuts.iter().cycle());
        while at < frames.len() {
            let end = (at + cut.next().unwrap()).min(frames.len());
            burst.process_burst(&snap, &Topo, &NoPrefetch, 1, &mut bufs[at..end], &mut v[at..end], 1000);
            at = end;
        }
        same_as_one_by_one(&single, (&v, &bufs), (&one, &burst))?;
    }
}

#[test]
fn test_ip_options_frame_is_valid_and_uncommon() {
    let f = with_ip_options(&client(40000, ACK, 64));
    assert_eq!(f.len(), client(40000, ACK, 64).len() + 4);
    assert!(crate::wire::Ipv4TcpHead::read(&f).is_none());
    let pf = crate::wire::parse_frame(&f).unwrap();
    assert_eq!((pf.l4_off, pf.sport, pf.dport), (38, 40000, 80));
    let h = etherparse::Ipv4HeaderSlice::from_slice(&f[14..]).unwrap();
    assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
}
