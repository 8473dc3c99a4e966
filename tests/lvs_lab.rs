//! The LVS labs themselves, checked without `ironvs`: the Linux kernel stands in for the director
//! (a static neighbour entry in place of DR's MAC rewrite, plain routing in place of NAT), or a
//! small Python director on an AF_PACKET socket (tests/scripts/standin_director.py) for DR and
//! TUN, so a failure here is a lab or test problem, not a daemon bug.

mod common;

use std::time::Duration;

use common::lvs::{self, Host, Segment};
use common::{tun, Lab};
use etherparse::{Ipv4HeaderSlice, TcpHeaderSlice};

/// The TCP SYNs to `dst:dport` in frames sent to `mac` (the bridge floods frames for MACs it has
/// not learnt yet to every port), as (IPv4 header, TCP segment) bytes.
fn syns_to(frames: &[Vec<u8>], mac: &str, dst: &str, dport: u16) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for f in frames {
        if f.len() < 14 || f[12..14] != [0x08, 0x00] || lvs::mac_string(&f[0..6]) != mac {
            continue;
        }
        let Ok(ip) = Ipv4HeaderSlice::from_slice(&f[14..]) else {
            continue;
        };
        if ip.protocol() != etherparse::IpNumber::TCP || ip.destination_addr().to_string() != dst {
            continue;
        }
        let l4 = &f[14 + ip.slice().len()..14 + usize::from(ip.total_len())];
        let Ok(tcp) = TcpHeaderSlice::from_slice(l4) else {
            continue;
        };
        if tcp.syn() && !tcp.ack() && tcp.destination_port() == dport {
            out.push((ip.slice().to_vec(), l4.to_vec()));
        }
    }
    out
}

/// Asserts the TCP checksum of a segment is complete and right (no offload left it partial).
fn assert_tcp_checksum(ip: &[u8], l4: &[u8]) {
    let ip = Ipv4HeaderSlice::from_slice(ip).unwrap();
    let tcp = TcpHeaderSlice::from_slice(l4).unwrap();
    let want = tcp
        .calc_checksum_ipv4(&ip, &l4[tcp.slice().len()..])
        .unwrap();
    assert_eq!(tcp.checksum(), want, "partial or wrong TCP checksum");
}

fn offloads_off(lab: &Lab, h: &Host) {
    let k = lab.exec(&h.ns, &["ethtool", "-k", &h.ifname]);
    for feature in [
        "tx-checksumming: off",
        "rx-checksumming: off",
        "tcp-segmentation-offload: off",
        "generic-segmentation-offload: off",
        "generic-receive-offload: off",
    ] {
        assert!(
            k.contains(feature),
            "{}: {feature} expected:\n{k}",
            h.ifname
        );
    }
}

#[test]
fn segment_serves_dr_real_servers() {
    require_root!();
    let mut lab = Lab::new();
    let seg = lvs::segment(&mut lab, 2);
    for rs in &seg.real_servers {
        let out = lvs::realserver_setup(&lab, rs, "dr.sh", &["up", lvs::SEG_VIP]);
        assert!(out.contains("arp_ignore=1"), "{out}");
        // Idempotent: a second run changes nothing and does not fail.
        lvs::realserver_setup(&lab, rs, "dr.sh", &["up", lvs::SEG_VIP]);
        let lo = lab.exec(&rs.ns, &["ip", "-4", "-o", "addr", "show", "dev", "lo"]);
        assert_eq!(lo.matches("192.0.2.100/32").count(), 1, "{lo}");
        lvs::http_server(&mut lab, rs, lvs::SEG_VIP, 80);
        offloads_off(&lab, rs);
    }
    offloads_off(&lab, &seg.client);
    let dir_addrs = lab.exec(&seg.director, &["ip", "-o", "addr", "show", "dev", "d0"]);
    assert_eq!(
        dir_addrs.trim(),
        "",
        "the director's d0 has kernel addresses"
    );

    // Nobody answers ARP for the VIP yet: the real servers ignore it (arp_ignore=1).
    let url = format!("http://{}/", lvs::SEG_VIP);
    assert!(lvs::http_get(&lab, &seg.client.ns, &url).is_err());
    let neigh = lab.exec(&seg.client.ns, &["ip", "neigh", "show", lvs::SEG_VIP]);
    assert!(
        !neigh.contains("lladdr"),
        "a real server answered ARP for the VIP: {neigh}"
    );

    // Stand-in for DR: the client sends VIP frames straight to one real server's MAC.
    let cap = lvs::start_capture(&mut lab, &seg.real_servers[0].ns, "r0", "rs1");
    let mut names = Vec::new();
    for rs in &seg.real_servers {
        let mac = lvs::mac_of(&lab, &rs.ns, &rs.ifname);
        lab.exec(
            &seg.client.ns,
            &[
                "ip",
                "neigh",
                "replace",
                lvs::SEG_VIP,
                "lladdr",
                &mac,
                "dev",
                "c0",
                "nud",
                "permanent",
            ],
        );
        names.push(lvs::http_get(&lab, &seg.client.ns, &url).expect("GET through the stand-in"));
    }
    assert_eq!(names, ["rs1", "rs2"]);
    let frames = lvs::stop_capture(&mut lab, cap);
    let rs1_mac = lvs::mac_of(&lab, &seg.real_servers[0].ns, "r0");
    // The SYN of the connection rs1 served (the refused first attempt's SYN, queued while ARP
    // was unresolved, also leaves when the neighbour entry is set).
    let rs1_log = lab.log(0);
    let port: u16 = rs1_log
        .lines()
        .find_map(|l| l.strip_prefix("peer ")?.rsplit_once(':')?.1.parse().ok())
        .expect("rs1 logged its peer");
    let syns: Vec<_> = syns_to(&frames, &rs1_mac, lvs::SEG_VIP, 80)
        .into_iter()
        .filter(|(_, tcp)| tcp[0..2] == port.to_be_bytes())
        .collect();
    assert_eq!(
        syns.len(),
        1,
        "one SYN of the served connection reached rs1"
    );
    assert_tcp_checksum(&syns[0].0, &syns[0].1);
    for p in 0..2 {
        let log = lab.log(p);
        assert_eq!(lvs::peers(&log), [lvs::SEG_CLIENT], "{log}");
    }
}

#[test]
fn two_nets_route_through_a_kernel_director() {
    require_root!();
    let mut lab = Lab::new();
    let nets = lvs::two_nets(&mut lab, 2);
    for rs in &nets.real_servers {
        lvs::realserver_setup(&lab, rs, "nat.sh", &["up", lvs::NET_RS_DIRECTOR, "r0"]);
        lvs::realserver_setup(&lab, rs, "nat.sh", &["up", lvs::NET_RS_DIRECTOR, "r0"]);
        let routes = lab.exec(&rs.ns, &["ip", "route", "show", "default"]);
        assert_eq!(routes.trim(), "default via 203.0.113.1 dev r0", "{routes}");
        lvs::http_server(&mut lab, rs, "0.0.0.0", 8080);
    }
    // Stand-in for the director: the kernel routes between the two subnets (the real tests leave
    // these addresses to ironvs and forwarding off).
    let d = &nets.director;
    lab.exec(d, &["ip", "addr", "add", "198.51.100.1/24", "dev", "d0"]);
    lab.exec(d, &["ip", "addr", "add", "203.0.113.1/24", "dev", "d1"]);
    lab.sysctl(d, "net.ipv4.ip_forward", "1");
    lab.exec(
        &nets.client.ns,
        &[
            "ip",
            "route",
            "add",
            "203.0.113.0/24",
            "via",
            lvs::NET_CLIENT_DIRECTOR,
        ],
    );
    for (i, rs) in nets.real_servers.iter().enumerate() {
        let url = format!("http://{}:8080/", rs.addr);
        let (names, errors) = lvs::http_names(&lab, &nets.client.ns, &url, 3);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(names.get(&rs.name), Some(&3), "{names:?}");
        let log = lab.log(i);
        assert_eq!(lvs::peers(&log), [lvs::NET_CLIENT; 3], "{log}");
    }
    let nat = lvs::realserver_setup(
        &lab,
        &nets.real_servers[0],
        "nat.sh",
        &["down", "203.0.113.1"],
    );
    assert!(nat.contains("no default route"), "{nat}");
    let routes = lab.exec(
        &nets.real_servers[0].ns,
        &["ip", "route", "show", "default"],
    );
    assert_eq!(routes.trim(), "");
}

/// The capture path of the TUN test: an IPIP packet sent by the kernel (raw socket, protocol 4)
/// is captured on the real server and read back byte for byte.
#[test]
fn capture_reads_ipip_packets() {
    require_root!();
    let mut lab = Lab::new();
    let seg = lvs::segment(&mut lab, 1);
    let rs = &seg.real_servers[0];
    // tun.sh either sets tunl0 up or says the kernel lacks IPIP; it never half-configures.
    let script = lvs::repo().join("deploy/realserver/tun.sh");
    let out = lab.try_exec(&rs.ns, &[script.to_str().unwrap(), "up", lvs::SEG_VIP]);
    let has_tunl0 = lab
        .try_exec(&rs.ns, &["ip", "link", "show", "tunl0"])
        .status
        .success();
    if out.status.success() {
        assert!(has_tunl0);
        let a = lab.exec(&rs.ns, &["ip", "-o", "addr", "show", "dev", "tunl0"]);
        assert!(a.contains("192.0.2.100/32"), "{a}");
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no IPIP support"), "{err}");
    }

    let cap = lvs::start_capture(&mut lab, &rs.ns, "r0", "rs1");
    // Inner packet: 192.0.2.2:40000 -> 192.0.2.100:80 SYN, checksums computed by Python.
    let send = r#"
import socket, struct, sys
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
src, dst = socket.inet_aton("192.0.2.2"), socket.inet_aton("192.0.2.100")
tcp = struct.pack("!HHIIBBHHH", 40000, 80, 12345, 0, 5 << 4, 0x02, 64240, 0, 0)
tcp = tcp[:16] + struct.pack("!H", csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 7, 0x4000, 64, 6, 0, src, dst)
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 4)
s.sendto(ip + tcp, (sys.argv[1], 0))
"#;
    lab.exec(&seg.client.ns, &["python3", "-c", send, &rs.addr]);
    std::thread::sleep(Duration::from_millis(300));
    let frames = lvs::stop_capture(&mut lab, cap);
    let ipip: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|f| f.len() > 34 && f[12..14] == [0x08, 0x00] && f[23] == 4)
        .collect();
    assert_eq!(ipip.len(), 1, "{} frames captured", frames.len());
    let outer = Ipv4HeaderSlice::from_slice(&ipip[0][14..]).unwrap();
    assert_eq!(outer.source_addr().to_string(), lvs::SEG_CLIENT);
    assert_eq!(outer.destination_addr().to_string(), rs.addr);
    let inner = &ipip[0][14 + outer.slice().len()..];
    let mac = lvs::mac_string(&ipip[0][0..6]);
    let syns = syns_to(&[[&ipip[0][..14], inner].concat()], &mac, lvs::SEG_VIP, 80);
    assert_eq!(syns.len(), 1);
    assert_tcp_checksum(&syns[0].0, &syns[0].1);
    let ih = Ipv4HeaderSlice::from_slice(&syns[0].0).unwrap();
    assert_eq!(ih.header_checksum(), ih.to_header().calc_header_checksum());
}

/// Starts the Python stand-in director on the segment's `d0` for VIP:80 in `mode`.
fn standin(lab: &mut Lab, seg: &Segment, mode: &str) -> usize {
    let script = lvs::repo().join("tests/scripts/standin_director.py");
    let rs: Vec<String> = seg
        .real_servers
        .iter()
        .map(|r| format!("{}={}", r.addr, lvs::mac_of(lab, &r.ns, &r.ifname)))
        .collect();
    let mut cmd = vec![
        "python3",
        script.to_str().unwrap(),
        "--iface",
        "d0",
        "--addr",
        lvs::SEG_DIRECTOR,
        "--vip",
        lvs::SEG_VIP,
        "--port",
        "80",
        "--mode",
        mode,
    ];
    cmd.extend(rs.iter().map(String::as_str));
    let p = lab.spawn(&seg.director.clone(), "standin", &cmd);
    lab.wait_for_log(p, "ready", Duration::from_secs(10));
    p
}

/// The DR test's flow against the stand-in: the VIP resolves to the director's MAC, round robin
/// splits exactly, the real servers see the client.
#[test]
fn standin_dr_director_balances_the_segment() {
    require_root!();
    let mut lab = Lab::new();
    let seg = lvs::segment(&mut lab, 2);
    for rs in &seg.real_servers {
        lvs::realserver_setup(&lab, rs, "dr.sh", &["up", lvs::SEG_VIP]);
        lvs::http_server(&mut lab, rs, lvs::SEG_VIP, 80);
    }
    standin(&mut lab, &seg, "dr");
    let url = format!("http://{}/", lvs::SEG_VIP);
    let (names, errors) = lvs::http_names(&lab, &seg.client.ns, &url, 10);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(names.get("rs1"), Some(&5), "{names:?}");
    assert_eq!(names.get("rs2"), Some(&5), "{names:?}");
    for p in 0..2 {
        assert_eq!(lvs::peers(&lab.log(p)), vec![lvs::SEG_CLIENT; 5]);
    }
    let neigh = lab.exec(&seg.client.ns, &["ip", "neigh", "show", lvs::SEG_VIP]);
    let d0 = lvs::mac_of(&lab, &seg.director, "d0");
    assert!(neigh.contains(&format!("lladdr {d0}")), "{neigh} vs {d0}");
}

/// The TUN test's wire check against the stand-in, which encapsulates as ironvs documents.
#[test]
fn standin_tun_director_passes_the_wire_check() {
    require_root!();
    let mut lab = Lab::new();
    let seg = lvs::segment(&mut lab, 2);
    standin(&mut lab, &seg, "tun");
    let ports_at = tun::check_tun_wire(&mut lab, &seg, 4);
    assert!(ports_at[0].is_disjoint(&ports_at[1]), "{ports_at:?}");
    assert_eq!([ports_at[0].len(), ports_at[1].len()], [2, 2]);
}
