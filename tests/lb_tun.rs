//! End to end, IP tunnelling (LVS-TUN): `ironvs` wraps each client packet in an outer IPv4 header
//! (protocol 4) from its own address on the port to the real server.
//!
//! The test kernel has no `ipip` module, so the real servers cannot decapsulate (their set-up,
//! deploy/realserver/tun.sh, needs it); the test checks the wire instead: captures on the client
//! and on both real servers, a few connection attempts that time out, then every encapsulated
//! frame is parsed and compared with the SYN the client sent. As `dataplane/src/fwd/mod.rs`
//! documents, TUN decrements the inner TTL by one (and updates the inner header checksum); every
//! other byte of the inner packet is the client's.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::lvs::{self, PortSpec};
use common::Lab;
use etherparse::{IpNumber, Ipv4HeaderSlice, TcpHeaderSlice};

const CONNECTIONS: usize = 4;

/// A client SYN as captured: IPv4 header and TCP segment bytes.
struct Syn {
    ip: Vec<u8>,
    tcp: Vec<u8>,
}

impl Syn {
    fn sport(&self) -> u16 {
        u16::from_be_bytes([self.tcp[0], self.tcp[1]])
    }
    fn seq(&self) -> u32 {
        u32::from_be_bytes([self.tcp[4], self.tcp[5], self.tcp[6], self.tcp[7]])
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

#[test]
fn tun_encapsulates_the_client_syn_to_the_real_server() {
    require_root!();
    let mut lab = Lab::new();
    let seg = lvs::segment(&mut lab, 2);
    let config = lvs::daemon_config(
        &lab,
        1,
        &[PortSpec {
            name: "dp0",
            iface: "d0",
            address: "192.0.2.1/24",
        }],
        r#"
[[service]]
proto = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "rr"

[[service.real_server]]
address = "192.0.2.11"
port = 80
weight = 1
mode = "tun"

[[service.real_server]]
address = "192.0.2.12"
port = 80
weight = 1
mode = "tun"
"#,
    );
    let daemon = lvs::start_ironvs(&mut lab, &seg.director, &config);
    let director_mac = lvs::mac_of(&lab, &seg.director, "d0");
    let client_mac = lvs::mac_of(&lab, &seg.client.ns, "c0");

    let client_cap = lvs::start_capture(&mut lab, &seg.client.ns, "c0", "client");
    let rs_caps: Vec<_> = seg
        .real_servers
        .iter()
        .map(|rs| lvs::start_capture(&mut lab, &rs.ns, "r0", &rs.name))
        .collect();
    let url = format!("http://{}/", lvs::SEG_VIP);
    for _ in 0..CONNECTIONS {
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
    let client_frames = lvs::stop_capture(&mut lab, client_cap);
    let rs_frames: Vec<Vec<Vec<u8>>> = rs_caps
        .into_iter()
        .map(|c| lvs::stop_capture(&mut lab, c))
        .collect();

    // What the client sent: its SYNs by (source port, sequence number), retransmissions counted.
    let mut sent: BTreeMap<(u16, u32), (Syn, usize)> = BTreeMap::new();
    for f in &client_frames {
        if !ethertype_ipv4(f) || lvs::mac_string(&f[6..12]) != client_mac {
            continue;
        }
        if let Some(syn) = client_syn(&f[14..]) {
            sent.entry((syn.sport(), syn.seq())).or_insert((syn, 0)).1 += 1;
        }
    }
    let ports: BTreeSet<u16> = sent.keys().map(|k| k.0).collect();
    assert_eq!(
        ports.len(),
        CONNECTIONS,
        "client SYNs captured: {}",
        sent.len()
    );

    let mut received: BTreeMap<(u16, u32), usize> = BTreeMap::new();
    let mut ports_at: Vec<BTreeSet<u16>> = Vec::new();
    for (rs, frames) in seg.real_servers.iter().zip(&rs_frames) {
        let rs_mac = lvs::mac_of(&lab, &rs.ns, "r0");
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
            let (orig, _) = sent
                .get(&(syn.sport(), syn.seq()))
                .unwrap_or_else(|| panic!("SYN from port {} was never sent", syn.sport()));
            // The TCP segment is untouched, byte for byte.
            assert_eq!(
                syn.tcp, orig.tcp,
                "inner TCP segment differs from the client's"
            );
            // The IPv4 header differs only by TTL − 1 and the checksum that follows from it.
            assert_eq!(
                syn.ip[8],
                orig.ip[8] - 1,
                "inner TTL is the client's minus one"
            );
            let mask = |h: &[u8]| -> Vec<u8> {
                let mut h = h.to_vec();
                h[8] = 0;
                h[10] = 0;
                h[11] = 0;
                h
            };
            assert_eq!(mask(&syn.ip), mask(&orig.ip), "inner IPv4 header differs");
            let ih = Ipv4HeaderSlice::from_slice(&syn.ip).unwrap();
            assert_eq!(
                ih.header_checksum(),
                ih.to_header().calc_header_checksum(),
                "inner header checksum"
            );
            *received.entry((syn.sport(), syn.seq())).or_insert(0) += 1;
            ports_here.insert(syn.sport());
        }
        ports_at.push(ports_here);
    }

    // Every SYN the client sent (retransmissions too) reached exactly one real server, once.
    let sent_counts: BTreeMap<(u16, u32), usize> =
        sent.iter().map(|(k, (_, n))| (*k, *n)).collect();
    assert_eq!(received, sent_counts, "encapsulated vs sent SYNs");
    // Round robin: two connections per real server, each one sticking to its server.
    assert!(ports_at[0].is_disjoint(&ports_at[1]), "{ports_at:?}");
    assert_eq!(
        [ports_at[0].len(), ports_at[1].len()],
        [CONNECTIONS / 2, CONNECTIONS / 2],
        "{ports_at:?}"
    );

    let stats = lvs::api_get(&lab, &seg.director, "/api/v1/stats");
    let (total, _) = lvs::service_conns(&stats, lvs::SEG_VIP, 80);
    assert_eq!(total, CONNECTIONS as u64, "{stats}");
    let log = lvs::stop_ironvs(&mut lab, daemon);
    lvs::check_worker_lines(&log, 1);
}
