//! The wire check of LVS-TUN: captures on the client and on every real server while the client
//! opens connections to the VIP, then every encapsulated frame is parsed and compared with the
//! SYN the client sent.
//!
//! Nobody decapsulates in the lab (the test kernel has no `ipip`), so every attempt ends in a
//! timeout and only SYNs (and their retransmissions) are on the wire. As
//! `dataplane/src/fwd/mod.rs` documents, TUN decrements the inner TTL by one (and updates the
//! inner header checksum); every other byte of the inner packet must be the client's.

use std::collections::{BTreeMap, BTreeSet};

use etherparse::{IpNumber, Ipv4HeaderSlice, TcpHeaderSlice};

use super::lvs::{self, Segment};
use super::Lab;

/// A client SYN as captured: IPv4 header and TCP segment bytes.
struct Syn {
    ip: Vec<u8>,
    tcp: Vec<u8>,
}

impl Syn {
    fn sport(&self) -> u16 {
        u16::from_be_bytes([self.tcp[0], self.tcp[1]])
    }
}

/// Parses an IPv4 packet that must be a TCP SYN from the client to VIP:80.
fn client_syn(packet: &[u8]) -> Option<Syn> {
    let ip = Ipv4HeaderSlice::from_slice(packet).ok()?;
    let end = usize::from(ip.total_len());
    if ip.protocol() != IpNumber::TCP
        || ip.source_addr().to_string() != lvs::SEG_CLIENT
        || ip.destination_addr().to_string() != lvs::SEG_VIP
        || end > packet.len()
    {
        return None;
    }
    let tcp_bytes = &packet[ip.slice().len()..end];
    let tcp = TcpHeaderSlice::from_slice(tcp_bytes).ok()?;
    (tcp.syn() && !tcp.ack() && tcp.destination_port() == 80).then(|| Syn {
        ip: ip.slice().to_vec(),
        tcp: tcp_bytes.to_vec(),
    })
}

fn ethertype_ipv4(f: &[u8]) -> bool {
    f.len() > 34 && f[12..14] == [0x08, 0x00]
}

/// Opens `connections` connections from the client to VIP:80 (each times out) and checks the
/// tunnel packets the real servers received: Ethernet from the director's `d0`, outer IPv4 from
/// the director's address to the real server, protocol 4, valid checksum, and inside the client's
/// SYN untouched but for TTL − 1; every SYN the client sent reached exactly one real server once.
/// Returns the client ports each real server received, in real-server order.
pub fn check_tun_wire(lab: &mut Lab, seg: &Segment, connections: usize) -> Vec<BTreeSet<u16>> {
    let director_mac = lvs::mac_of(lab, &seg.director, "d0");
    let client_mac = lvs::mac_of(lab, &seg.client.ns, "c0");
    let client_cap = lvs::start_capture(lab, &seg.client.ns, "c0", "client");
    let rs_caps: Vec<_> = seg
        .real_servers
        .iter()
        .map(|rs| lvs::start_capture(lab, &rs.ns, "r0", &rs.name))
        .collect();
    let url = format!("http://{}/", lvs::SEG_VIP);
    for _ in 0..connections {
        // Nobody decapsulates: each attempt ends in a timeout (or an ICMP error relayed back).
        let out = lab.try_exec(
            &seg.client.ns,
            &[
                "curl",
                "-sS",
                "--connect-timeout",
                "1",
                "--max-time",
                "2",
                &url,
            ],
        );
        assert!(
            !out.status.success(),
            "a TUN real server without ipip answered"
        );
    }
    let client_frames = lvs::stop_capture(lab, client_cap);
    let rs_frames: Vec<Vec<Vec<u8>>> = rs_caps
        .into_iter()
        .map(|c| lvs::stop_capture(lab, c))
        .collect();

    // What the client sent: its SYNs by TCP segment (a retransmission carries a new timestamp
    // option, so it is a segment of its own), with the IPv4 headers it went out with.
    let mut sent: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
    for f in &client_frames {
        if !ethertype_ipv4(f) || lvs::mac_string(&f[6..12]) != client_mac {
            continue;
        }
        if let Some(syn) = client_syn(&f[14..]) {
            sent.entry(syn.tcp.clone()).or_default().push(syn.ip);
        }
    }
    let ports: BTreeSet<u16> = sent
        .keys()
        .map(|t| u16::from_be_bytes([t[0], t[1]]))
        .collect();
    assert_eq!(
        ports.len(),
        connections,
        "client SYNs captured: {}",
        sent.len()
    );

    let mut received: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut ports_at: Vec<BTreeSet<u16>> = Vec::new();
    for (rs, frames) in seg.real_servers.iter().zip(&rs_frames) {
        let rs_mac = lvs::mac_of(lab, &rs.ns, "r0");
        let mut ports_here = BTreeSet::new();
        // The bridge floods frames for MACs it has not learnt: keep those sent to this server.
        for f in frames
            .iter()
            .filter(|f| ethertype_ipv4(f) && lvs::mac_string(&f[0..6]) == rs_mac)
        {
            let outer = Ipv4HeaderSlice::from_slice(&f[14..]).expect("outer IPv4 header");
            if outer.protocol() != IpNumber::IPV4 {
                continue;
            }
            assert_eq!(lvs::mac_string(&f[6..12]), director_mac, "Ethernet source");
            assert_eq!(outer.source_addr().to_string(), lvs::SEG_DIRECTOR);
            assert_eq!(outer.destination_addr().to_string(), rs.addr);
            assert_eq!(outer.ihl(), 5, "outer header without options");
            assert!(outer.ttl() > 0);
            assert_eq!(
                outer.header_checksum(),
                outer.to_header().calc_header_checksum(),
                "outer header checksum"
            );
            let end = 14 + usize::from(outer.total_len());
            assert!(end <= f.len(), "outer total length beyond the frame");
            let inner = &f[14 + 20..end];
            let syn = client_syn(inner).expect("the inner packet is a client SYN to VIP:80");
            assert_eq!(
                syn.ip.len() + syn.tcp.len(),
                inner.len(),
                "bytes after the inner packet"
            );
            // The TCP segment is untouched, byte for byte: it is one the client sent.
            let Some(orig_ips) = sent.get(&syn.tcp) else {
                let same_port: Vec<&Vec<u8>> =
                    sent.keys().filter(|t| t[0..2] == syn.tcp[0..2]).collect();
                panic!(
                    "inner TCP segment {:?} is none the client sent; from that port: {same_port:?}",
                    syn.tcp
                );
            };
            // The IPv4 header differs only by TTL − 1 and the checksum that follows from it.
            let mask = |h: &[u8]| -> Vec<u8> {
                let mut h = h.to_vec();
                h[8] = 0;
                h[10] = 0;
                h[11] = 0;
                h
            };
            let orig = orig_ips
                .iter()
                .find(|o| mask(o) == mask(&syn.ip))
                .unwrap_or_else(|| {
                    panic!("inner IPv4 header {:?} differs from {orig_ips:?}", syn.ip)
                });
            assert_eq!(
                syn.ip[8],
                orig[8] - 1,
                "inner TTL is the client's minus one"
            );
            let ih = Ipv4HeaderSlice::from_slice(&syn.ip).unwrap();
            assert_eq!(
                ih.header_checksum(),
                ih.to_header().calc_header_checksum(),
                "inner header checksum"
            );
            *received.entry(syn.tcp.clone()).or_insert(0) += 1;
            ports_here.insert(syn.sport());
        }
        ports_at.push(ports_here);
    }

    // Every SYN the client sent (retransmissions too) reached exactly one real server, once.
    let sent_counts: BTreeMap<Vec<u8>, usize> =
        sent.iter().map(|(k, ips)| (k.clone(), ips.len())).collect();
    assert_eq!(received, sent_counts, "encapsulated vs sent SYNs");
    ports_at
}
