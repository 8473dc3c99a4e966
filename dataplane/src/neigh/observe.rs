//! What received ARP and NDP frames tell about neighbours: the `(ip, mac)` pair to give
//! [`super::NeighCache::learn`].
//!
//! Sources (RFC 826, RFC 4861 §7.2.3–7.2.5): an ARP reply's or request's sender; a neighbour
//! advertisement's target with its target link-layer address option; a solicitation's source with
//! its source link-layer address option. NDP is only believed with hop limit 255, code 0 and a
//! valid ICMPv6 checksum (checked here: these frames are rare, and they steer traffic). Nothing
//! is learned for unspecified or multicast addresses, nor for group, zero or missing MACs.

use crate::checksum;
use crate::flow::Addr;
use crate::wire::arp::ArpPacket;
use crate::wire::icmpv6::types;
use crate::wire::{get_array, ip_proto, ndp, parse_frame, L3Kind, MacAddr, ParsedFrame};

/// Option type: target link-layer address.
const OPT_TARGET_LLA: u8 = 2;

/// The neighbour `frame` (already parsed into `pf`) reveals, if any.
#[inline]
pub fn observe(frame: &[u8], pf: &ParsedFrame) -> Option<(Addr, MacAddr)> {
    let (ip, mac) = match pf.l3 {
        L3Kind::Arp => {
            let arp = ArpPacket::new_checked(frame.get(usize::from(pf.l3_off)..)?).ok()?;
            let ip = arp.sender_ip();
            if ip == [0; 4] || ip[0] >= 224 {
                return None;
            }
            (Addr::v4(ip), arp.sender_mac())
        }
        L3Kind::Ipv6
            if pf.proto == ip_proto::ICMPV6
                && pf.ttl == 255
                && pf.icmp_code == 0
                && !pf.is_fragment() =>
        {
            let msg = frame.get(usize::from(pf.l4_off)..pf.l3_end())?;
            if !matches!(
                pf.icmp_type,
                types::NEIGHBOR_SOLICIT | types::NEIGHBOR_ADVERT
            ) {
                return None;
            }
            // A message of ~64 KiB cannot arrive in a frame; the length fits.
            let pseudo =
                checksum::pseudo_v6(&pf.src.0, &pf.dst.0, ip_proto::ICMPV6, msg.len() as u32);
            if checksum::add(pseudo, checksum::sum(msg)) != 0xffff {
                return None;
            }
            if pf.icmp_type == types::NEIGHBOR_SOLICIT {
                (pf.src, ndp::parse_solicit(msg)?.source_mac?)
            } else {
                parse_advert(msg)?
            }
        }
        _ => return None,
    };
    let ip_ok = if ip.is_v4() {
        true
    } else {
        ip != Addr::UNSPECIFIED && ip.0[0] != 0xff
    };
    (ip_ok && !mac.is_multicast() && mac != MacAddr::ZERO).then_some((ip, mac))
}

/// Parses `frame` and returns the neighbour it reveals, if any.
pub fn observe_frame(frame: &[u8]) -> Option<(Addr, MacAddr)> {
    observe(frame, &parse_frame(frame).ok()?)
}

/// The target and target link-layer address of a neighbour advertisement.
fn parse_advert(msg: &[u8]) -> Option<(Addr, MacAddr)> {
    let target = Addr::v6(get_array(msg.get(..24)?, 8));
    let mut opts = msg.get(24..)?;
    let mut mac = None;
    while let [kind, len, ..] = *opts {
        let n = usize::from(len) * 8;
        if n == 0 || n > opts.len() {
            return None;
        }
        if kind == OPT_TARGET_LLA && n == 8 {
            mac = Some(MacAddr(get_array(opts, 2)));
        }
        opts = &opts[n..];
    }
    Some((target, mac?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::{PacketBuf, VecBuf};
    use crate::host::{self, HostIface, HostVerdict};
    use crate::neigh::{emit, Lookup, NeighCache, NeighConfig, Request};
    use crate::wire::fixtures;

    const OUR: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 1]);
    const PEER: MacAddr = MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]);

    fn ip(s: &str) -> Addr {
        Addr::from(s.parse::<std::net::IpAddr>().unwrap())
    }

    /// The peer host, owning `addr`, as `host::handle` sees it.
    fn peer(addr: &str) -> HostIface {
        HostIface::new(PEER, [(addr.parse().unwrap(), 64)])
    }

    /// Our request for `target` answered by a peer owning it: the answer frame.
    fn answered(req: &Request, owner: &str) -> VecBuf {
        let mut b = VecBuf::new(&[]);
        let len = if req.target.is_v4() {
            emit::ARP_FRAME_LEN
        } else {
            emit::NS_FRAME_LEN
        };
        emit::into_buf(&mut b, len, |f| emit::request(f, OUR, req)).unwrap();
        assert_eq!(host::handle(&mut b, &peer(owner)), HostVerdict::Reply);
        b
    }

    #[test]
    fn test_arp_sender_is_observed() {
        let f = fixtures::ETH_ARP_REQUEST;
        assert_eq!(observe_frame(&f), Some((ip("192.0.2.1"), PEER)));
        // An ARP probe (sender 0.0.0.0, RFC 5227) teaches nothing.
        let mut probe = f;
        probe[28..32].fill(0);
        assert_eq!(observe_frame(&probe), None);
        let mut group = f;
        group[22] = 0x01;
        assert_eq!(observe_frame(&group), None);
        assert_eq!(observe_frame(&fixtures::ETH_IPV4_TCP_SYN), None);
    }

    #[test]
    fn test_resolution_round_trip_v4() {
        let mut c: NeighCache<u32> = NeighCache::new(NeighConfig::default());
        let (gw, src) = (ip("192.0.2.254"), ip("192.0.2.1"));
        assert_eq!(c.resolve(0, gw, src, 0), Lookup::Pending);
        c.hold(0, &gw, 41).unwrap();
        let mut reqs = Vec::new();
        c.poll(0, |r| reqs.push(r), |_| {});
        let reply = answered(&reqs[0], "192.0.2.254");
        let (who, mac) = observe_frame(reply.frame()).unwrap();
        assert_eq!((who, mac), (gw, PEER));
        assert_eq!(c.learn(0, &who, mac, 3).collect::<Vec<_>>(), vec![41]);
        assert_eq!(c.resolve(0, gw, src, 4), Lookup::Known(PEER));
    }

    #[test]
    fn test_resolution_round_trip_v6() {
        let mut c: NeighCache<u32> = NeighCache::new(NeighConfig::default());
        let (rs, src) = (ip("2001:db8::80"), ip("2001:db8::1"));
        assert_eq!(c.resolve(2, rs, src, 0), Lookup::Pending);
        c.hold(2, &rs, 1).unwrap();
        c.hold(2, &rs, 2).unwrap();
        let mut reqs = Vec::new();
        c.poll(0, |r| reqs.push(r), |_| {});
        assert_eq!(reqs[0].port, 2);
        // The peer's stack sees our NS and learns us from it.
        let mut ns = VecBuf::new(&[]);
        emit::into_buf(&mut ns, emit::NS_FRAME_LEN, |f| {
            emit::request(f, OUR, &reqs[0])
        })
        .unwrap();
        assert_eq!(observe_frame(ns.frame()), Some((src, OUR)));
        // Its advertisement teaches us the peer.
        let na = answered(&reqs[0], "2001:db8::80");
        assert_eq!(
            &na.frame()[..6],
            &OUR.0,
            "answered to our link-layer address option"
        );
        let (who, mac) = observe_frame(na.frame()).unwrap();
        assert_eq!((who, mac), (rs, PEER));
        assert_eq!(c.learn(2, &who, mac, 1).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(c.get(2, &rs), Some(PEER));
    }

    #[test]
    fn test_unsolicited_na_is_observed() {
        let mut f = [0u8; emit::NA_FRAME_LEN];
        emit::unsolicited_na(&mut f, PEER, &ip("2001:db8::9").0).unwrap();
        assert_eq!(observe_frame(&f), Some((ip("2001:db8::9"), PEER)));
        // Hop limit below 255: it crossed a router, ignore it.
        let mut routed = f;
        routed[14 + 7] = 254;
        assert_eq!(observe_frame(&routed), None);
        // A corrupted checksum.
        let mut bad = f;
        bad[14 + 40 + 23] ^= 1;
        assert_eq!(observe_frame(&bad), None);
        // Without the target link-layer address option there is no MAC to learn.
        let mut short = f[..14 + 40 + 24].to_vec();
        short[14 + 5] = 24;
        let c = checksum::pseudo_v6(&ip("2001:db8::9").0, &ndp::ALL_NODES, 58, 24);
        short[14 + 40 + 2..14 + 40 + 4].fill(0);
        let sum = checksum::l4_checksum(c, &short[54..]);
        short[56..58].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(checksum::add(c, checksum::sum(&short[54..])), 0xffff);
        assert!(parse_frame(&short).is_ok());
        assert_eq!(observe_frame(&short), None);
    }

    #[test]
    fn test_dad_probe_teaches_nothing() {
        let mut f = [0u8; emit::NS_FRAME_LEN];
        let target = ip("2001:db8::80").0;
        emit::neighbour_solicit(&mut f, PEER, &[0; 16], &target, None).unwrap();
        assert_eq!(observe_frame(&f), None);
    }

    #[test]
    fn test_truncated_frames_never_panic() {
        let mut na = [0u8; emit::NA_FRAME_LEN];
        emit::unsolicited_na(&mut na, PEER, &ip("2001:db8::9").0).unwrap();
        let mut ns = [0u8; emit::NS_FRAME_LEN];
        emit::neighbour_solicit(
            &mut ns,
            PEER,
            &ip("2001:db8::1").0,
            &ip("2001:db8::9").0,
            None,
        )
        .unwrap();
        for f in [&na[..], &ns[..], &fixtures::ETH_ARP_REQUEST[..]] {
            for n in 0..f.len() {
                let _ = observe_frame(&f[..n]);
            }
            assert!(observe_frame(f).is_some());
        }
    }
}
