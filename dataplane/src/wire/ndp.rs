//! IPv6 neighbor discovery (RFC 4861 §4.3–4.4, §7.2): the IPv6 counterpart of answering ARP
//! for VIPs and local addresses.
//!
//! ```text
//! NS: | 135 | 0 | checksum | reserved (4)      | target (16) | options: source link-layer addr
//! NA: | 136 | 0 | checksum | R S O | reserved  | target (16) | options: target link-layer addr
//! ```

use super::ethernet::{self, EtherType, MacAddr};
use super::icmpv6::{types, Icmpv6Packet};
use super::ip_proto;
use super::ipv6::Ipv6Repr;
use super::{get_array, EmitError, ParsedFrame};
use crate::checksum;

/// Option type: source link-layer address.
const OPT_SOURCE_LLA: u8 = 1;
/// Option type: target link-layer address.
const OPT_TARGET_LLA: u8 = 2;
/// NA flag: solicited.
const FLAG_SOLICITED: u8 = 0x40;
/// NA flag: override.
const FLAG_OVERRIDE: u8 = 0x20;
/// Length of an NA with one link-layer address option.
const ADVERT_LEN: usize = 32;

/// `ff02::1`, all nodes: where an answer to duplicate address detection goes.
pub const ALL_NODES: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// The fields of a neighbor solicitation the answer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborSolicit {
    /// The address being resolved.
    pub target: [u8; 16],
    /// The solicitor's MAC from the source link-layer address option, if present.
    pub source_mac: Option<MacAddr>,
}

/// Reads a neighbor solicitation from an ICMPv6 message (bounded at the IPv6 payload end);
/// `None` unless it is a well-formed NS (type 135, code 0, 24+ bytes, no zero-length option).
pub fn parse_solicit(icmp: &[u8]) -> Option<NeighborSolicit> {
    let m = Icmpv6Packet::new_checked(icmp).ok()?;
    if m.msg_type() != types::NEIGHBOR_SOLICIT || m.code() != 0 || icmp.len() < 24 {
        return None;
    }
    let target = get_array(icmp, 8);
    let mut source_mac = None;
    let mut opts = &icmp[24..];
    while let [kind, len, ..] = *opts {
        let n = usize::from(len) * 8;
        if n == 0 || n > opts.len() {
            return None;
        }
        if kind == OPT_SOURCE_LLA && n == 8 {
            source_mac = Some(MacAddr(get_array(opts, 2)));
        }
        opts = &opts[n..];
    }
    Some(NeighborSolicit { target, source_mac })
}

/// Writes Ethernet + IPv6 + neighbor advertisement for `target` at `our_mac` into `out`;
/// returns the frame length (86). Hop limit is 255 as RFC 4861 requires.
pub fn emit_advert(
    out: &mut [u8],
    our_mac: MacAddr,
    target: &[u8; 16],
    dst_mac: MacAddr,
    dst_ip: &[u8; 16],
    solicited: bool,
) -> Result<usize, EmitError> {
    let total = ethernet::HEADER_LEN + 40 + ADVERT_LEN;
    let frame = out.get_mut(..total).ok_or(EmitError::BufferTooShort)?;
    ethernet::emit(frame, dst_mac, our_mac, EtherType::IPV6)?;
    Ipv6Repr {
        src: *target,
        dst: *dst_ip,
        next_header: ip_proto::ICMPV6,
        hop_limit: 255,
        traffic_class: 0,
        flow_label: 0,
        payload_len: ADVERT_LEN as u16,
    }
    .emit(&mut frame[ethernet::HEADER_LEN..])?;
    let msg = &mut frame[ethernet::HEADER_LEN + 40..];
    msg[4] = FLAG_OVERRIDE | if solicited { FLAG_SOLICITED } else { 0 };
    msg[5..8].fill(0);
    msg[8..24].copy_from_slice(target);
    msg[24] = OPT_TARGET_LLA;
    msg[25] = 1;
    msg[26..32].copy_from_slice(&our_mac.0);
    let mut m = Icmpv6Packet::new_unchecked(msg);
    m.set_msg_type(types::NEIGHBOR_ADVERT);
    m.set_code(0);
    m.fill_checksum(checksum::pseudo_v6(
        target,
        dst_ip,
        ip_proto::ICMPV6,
        ADVERT_LEN as u32,
    ));
    Ok(total)
}

/// Answers the solicitation `ns` that arrived in the frame `pf` describes (from `eth_src`):
/// unicast and solicited to the solicitor, or to all nodes for duplicate address detection
/// (unspecified source). The caller has checked the target is ours and the hop limit is 255.
pub fn answer(
    out: &mut [u8],
    pf: &ParsedFrame,
    eth_src: MacAddr,
    ns: &NeighborSolicit,
    our_mac: MacAddr,
) -> Result<usize, EmitError> {
    if pf.src.0 == [0; 16] {
        let all_nodes_mac = MacAddr([0x33, 0x33, 0, 0, 0, 1]);
        emit_advert(out, our_mac, &ns.target, all_nodes_mac, &ALL_NODES, false)
    } else {
        let mac = ns.source_mac.unwrap_or(eth_src);
        emit_advert(out, our_mac, &ns.target, mac, &pf.src.0, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv6::Ipv6Packet;
    use crate::wire::{parse_frame, EthernetFrame};

    const HOST: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
    ];
    const VIP: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80,
    ];
    const HOST_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);

    /// NS from 2001:db8::1 for 2001:db8::80 to its solicited-node group ff02::1:ff00:80.
    fn ns_frame(src: [u8; 16], with_slla: bool) -> Vec<u8> {
        let group = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0x80];
        let mut f = vec![0u8; 14 + 40];
        ethernet::emit(
            &mut f,
            MacAddr([0x33, 0x33, 0xff, 0, 0, 0x80]),
            HOST_MAC,
            0x86dd,
        )
        .unwrap();
        let mut msg = vec![135, 0, 0, 0, 0, 0, 0, 0];
        msg.extend_from_slice(&VIP);
        if with_slla {
            msg.extend_from_slice(&[1, 1]);
            msg.extend_from_slice(&HOST_MAC.0);
        }
        let ps = checksum::pseudo_v6(&src, &group, 58, msg.len() as u32);
        let c = checksum::l4_checksum(ps, &msg);
        msg[2..4].copy_from_slice(&c.to_be_bytes());
        Ipv6Repr {
            src,
            dst: group,
            next_header: 58,
            hop_limit: 255,
            traffic_class: 0,
            flow_label: 0,
            payload_len: msg.len() as u16,
        }
        .emit(&mut f[14..])
        .unwrap();
        f.extend_from_slice(&msg);
        f
    }

    #[test]
    fn test_parse_solicit() {
        let f = ns_frame(HOST, true);
        let pf = parse_frame(&f).unwrap();
        assert_eq!((pf.icmp_type, pf.ttl), (135, 255));
        let ns = parse_solicit(&f[usize::from(pf.l4_off)..pf.l3_end()]).unwrap();
        assert_eq!(ns.target, VIP);
        assert_eq!(ns.source_mac, Some(HOST_MAC));
        let mut bad = f.clone();
        bad[14 + 40 + 25] = 0; // zero-length option
        assert_eq!(parse_solicit(&bad[54..]), None);
        assert_eq!(parse_solicit(&f[54..70]), None);
        let mut echo = f.clone();
        echo[54] = 128;
        assert_eq!(parse_solicit(&echo[54..]), None);
    }

    #[test]
    fn test_answer_unicast() {
        let f = ns_frame(HOST, false);
        let pf = parse_frame(&f).unwrap();
        let ns = parse_solicit(&f[54..]).unwrap();
        assert_eq!(ns.source_mac, None);
        let mut out = [0u8; 128];
        let n = answer(&mut out, &pf, HOST_MAC, &ns, OUR_MAC).unwrap();
        assert_eq!(n, 86);
        let eth = EthernetFrame::new_checked(&out[..n]).unwrap();
        assert_eq!((eth.dst(), eth.src()), (HOST_MAC, OUR_MAC));
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        assert_eq!((ip.src(), ip.dst(), ip.hop_limit()), (VIP, HOST, 255));
        let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(m.verify_checksum(checksum::pseudo_v6(&VIP, &HOST, 58, 32)));
        assert_eq!(m.msg_type(), 136);
        assert_eq!(&ip.payload()[4..8], &[0x60, 0, 0, 0]);
        assert_eq!(&ip.payload()[8..24], &VIP);
        assert_eq!(&ip.payload()[24..32], &[2, 1, 2, 0, 0, 0, 0, 0x0a]);
        assert_eq!(
            answer(&mut out[..85], &pf, HOST_MAC, &ns, OUR_MAC),
            Err(EmitError::BufferTooShort)
        );
    }

    #[test]
    fn test_answer_dad_goes_to_all_nodes() {
        let f = ns_frame([0; 16], false);
        let pf = parse_frame(&f).unwrap();
        let ns = parse_solicit(&f[54..]).unwrap();
        let mut out = [0u8; 86];
        answer(&mut out, &pf, HOST_MAC, &ns, OUR_MAC).unwrap();
        assert_eq!(&out[..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(&out[38..54], &ALL_NODES);
        assert_eq!(out[54 + 4], 0x20); // override only, not solicited
    }
}
