#!/usr/bin/env bash
# Prepares a Linux real server for IronVS NAT (LVS-NAT, masquerading).
#
# The director rewrites the destination of client packets to this server and must see the replies
# to rewrite their source back to the VIP, so the server's replies to clients must go through the
# director: `up` makes the director's address on the real-server network the default gateway.
# (FullNAT needs no set-up at all: the director also rewrites the source to one of its local
# addresses, so replies come back to it by ordinary routing.) `down` removes that default route.
# Run as root on the real server; running it twice changes nothing.
set -euo pipefail

usage() {
  cat <<USAGE
usage: $(basename "$0") up|down DIRECTOR_ADDRESS [DEV]

  up    default route via DIRECTOR_ADDRESS (the director's address on this server's network),
        through DEV when given
  down  remove the default route if it goes via DIRECTOR_ADDRESS

example: $(basename "$0") up 203.0.113.1 eth0
USAGE
}

case "${1:-}" in -h|--help) usage; exit 0 ;; esac
[ $# -ge 2 ] && [ $# -le 3 ] || { usage >&2; exit 2; }
action=$1
gw=$2
dev=${3:-}
case "$action" in up|down) ;; *) usage >&2; exit 2 ;; esac

family=-4
case "$gw" in *:*) family=-6 ;; esac
devargs=()
[ -n "$dev" ] && devargs=(dev "$dev")

if [ "$action" = up ]; then
  ip "$family" route replace default via "$gw" "${devargs[@]}"
  echo "nat: default route via $gw${dev:+ dev $dev}"
else
  if ip "$family" route show default | grep -q "via $gw "; then
    ip "$family" route del default via "$gw" "${devargs[@]}"
  fi
  echo "nat: no default route via $gw"
fi
