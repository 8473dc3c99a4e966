#!/usr/bin/env bash
# Prepares a Linux real server for IronVS IP tunnelling (LVS-TUN).
#
# The director wraps each client packet in an outer IPv4 header (protocol 4, IPIP) addressed to
# this server. The kernel's ipip module decapsulates it on the fallback device tunl0; the inner
# packet is addressed to the VIP, so `up` puts the VIP on tunl0, keeps the server from answering
# ARP for it (arp_ignore=1, arp_announce=2, as for DR), and turns reverse-path filtering off on
# tunl0 (the client is reachable through the physical interface, not through tunl0, so strict
# rp_filter would drop every decapsulated packet). Replies go straight to the client from the VIP.
# `down` removes the VIPs and restores the defaults. Run as root; running it twice changes nothing.
set -euo pipefail

usage() {
  cat <<USAGE
usage: $(basename "$0") up|down VIP [VIP...]

  up    load ipip, bring tunl0 up with each VIP (/32), rp_filter=0 on tunl0,
        arp_ignore=1, arp_announce=2
  down  remove the VIPs from tunl0, set tunl0 down, restore arp_ignore=0, arp_announce=0

The kernel needs IPIP support (CONFIG_NET_IPIP, module ipip).
example: $(basename "$0") up 192.0.2.100
USAGE
}

case "${1:-}" in -h|--help) usage; exit 0 ;; esac
[ $# -ge 2 ] || { usage >&2; exit 2; }
action=$1
shift
case "$action" in up|down) ;; *) usage >&2; exit 2 ;; esac

for vip in "$@"; do
  case "$vip" in
    */*) echo "$(basename "$0"): give the VIP without a prefix length: $vip" >&2; exit 2 ;;
    *:*) echo "$(basename "$0"): IPIP carries IPv4 only; $vip is IPv6" >&2; exit 2 ;;
  esac
done

arp() {
  sysctl -q -w "net.ipv4.conf.all.arp_ignore=$1" "net.ipv4.conf.all.arp_announce=$2"
}

if [ "$action" = up ]; then
  if ! ip link show tunl0 >/dev/null 2>&1; then
    modprobe ipip 2>/dev/null || true
    # In a fresh network namespace tunl0 appears once the module is loaded; creating an ipip
    # device makes sure of it.
    ip link add ivs-ipip-probe type ipip 2>/dev/null && ip link del ivs-ipip-probe
  fi
  if ! ip link show tunl0 >/dev/null 2>&1; then
    echo "$(basename "$0"): this kernel has no IPIP support (modprobe ipip failed, no tunl0):" \
      "LVS-TUN real servers need CONFIG_NET_IPIP" >&2
    exit 1
  fi
  arp 1 2
  ip link set tunl0 up
  sysctl -q -w net.ipv4.conf.tunl0.rp_filter=0 net.ipv4.conf.all.rp_filter=0
  for vip in "$@"; do
    ip addr replace "$vip/32" dev tunl0
  done
  echo "tun: VIPs on tunl0: $*; rp_filter=0; arp_ignore=1 arp_announce=2"
else
  if ip link show tunl0 >/dev/null 2>&1; then
    for vip in "$@"; do
      ip addr del "$vip/32" dev tunl0 2>/dev/null || true
    done
    ip link set tunl0 down
  fi
  arp 0 0
  echo "tun: VIPs removed from tunl0: $*; ARP defaults restored"
fi
