#!/usr/bin/env bash
# Prepares a Linux real server for IronVS direct routing (LVS-DR).
#
# The director forwards client packets unchanged, only with this server's MAC as destination, so
# the server must accept packets addressed to the VIP and answer the client directly from the VIP.
# `up` puts each VIP on the loopback interface and stops the server from answering ARP for it
# (arp_ignore=1: answer only for addresses on the asking interface; arp_announce=2: announce the
# best local address of the outgoing interface, never the VIP), so that only the director owns the
# VIP on the shared segment. `down` removes the VIPs and restores the kernel's ARP defaults.
# Run as root on the real server; running it twice changes nothing.
set -euo pipefail

usage() {
  cat <<USAGE
usage: $(basename "$0") up|down VIP [VIP...]

  up    add each VIP to lo (/32, or /128 for IPv6) and set arp_ignore=1, arp_announce=2
  down  remove each VIP from lo and set arp_ignore=0, arp_announce=0 again

example: $(basename "$0") up 192.0.2.100
USAGE
}

case "${1:-}" in -h|--help) usage; exit 0 ;; esac
[ $# -ge 2 ] || { usage >&2; exit 2; }
action=$1
shift
case "$action" in up|down) ;; *) usage >&2; exit 2 ;; esac

prefix_of() { case "$1" in *:*) echo 128 ;; *) echo 32 ;; esac; }

arp() {
  sysctl -q -w "net.ipv4.conf.all.arp_ignore=$1" "net.ipv4.conf.lo.arp_ignore=$1" \
    "net.ipv4.conf.all.arp_announce=$2" "net.ipv4.conf.lo.arp_announce=$2"
}

for vip in "$@"; do
  case "$vip" in
    */*) echo "$(basename "$0"): give the VIP without a prefix length: $vip" >&2; exit 2 ;;
  esac
done

if [ "$action" = up ]; then
  arp 1 2
  ip link set lo up
  for vip in "$@"; do
    ip addr replace "$vip/$(prefix_of "$vip")" dev lo
  done
  echo "dr: VIPs on lo: $*; arp_ignore=1 arp_announce=2"
else
  for vip in "$@"; do
    ip addr del "$vip/$(prefix_of "$vip")" dev lo 2>/dev/null || true
  done
  arp 0 0
  echo "dr: VIPs removed from lo: $*; ARP defaults restored"
fi
