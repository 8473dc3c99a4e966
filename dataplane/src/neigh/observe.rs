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
