#!/usr/bin/env bash
# The IronVS lab: the classic LVS direct-routing set-up, in network namespaces on this machine.
#
#   client 192.0.2.10 ─┐
#   ironvs 192.0.2.1  ─┼─ bridge ─ one L2 segment (192.0.2.0/24, RFC 5737)
#   rs1    192.0.2.11 ─┤            VIP 192.0.2.100:80 → rs1, rs2 (rr, direct routing)
#   rs2    192.0.2.12 ─┘            the VIP also on each real server's lo (arp_ignore=1/arp_announce=2)
#
# It installs what it needs, builds ironvs and ironvsadm, starts ironvs on the director's veth end
# (DPDK net_af_packet, no hugepages), configures the service with ironvsadm exactly as the LVS
# how-tos do with ipvsadm, sends 20 HTTP requests from the client, prints how many each real
# server answered, and removes everything, even on failure. Run as root on Debian 12. Nothing
# outside the lab's own namespaces is touched.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
"$top/deploy/install-deps.sh"

echo "== building ironvs and ironvsadm (release)"
cargo build --release --quiet --manifest-path "$top/Cargo.toml" --bin ironvs
cargo build --release --quiet --manifest-path "$top/Cargo.toml" -p control-api --bin ironvsadm
ironvs="$top/target/release/ironvs"
ironvsadm="$top/target/release/ironvsadm"
"$ironvs" --version | head -1

tag="ivs$$"
sw="$tag-sw"; cli="$tag-cli"; dir="$tag-dir"; rs1="$tag-rs1"; rs2="$tag-rs2"
work=$(mktemp -d)
daemon_pid=""

cleanup() {
  set +e
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null
  fi
  for ns in "$cli" "$dir" "$rs1" "$rs2" "$sw"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

at() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# One veth from a host namespace to the bridge; offloads off, since af_packet reads raw frames.
attach() {
  local ns=$1 ifname=$2 port=$3
  ip link add "$ifname" netns "$ns" type veth peer name "$port" netns "$sw"
  at "$sw" ip link set "$port" master br0 up
  at "$ns" ip link set lo up
  at "$ns" ethtool -K "$ifname" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
  at "$ns" sysctl -q -w "net.ipv6.conf.$ifname.disable_ipv6=1"
  at "$ns" ip link set "$ifname" up
}

echo "== building the lab (namespaces $tag-*)"
for ns in "$sw" "$cli" "$dir" "$rs1" "$rs2"; do ip netns add "$ns"; done
at "$sw" ip link add br0 type bridge
at "$sw" ip link set br0 up
attach "$cli" c0 p-cli
attach "$dir" d0 p-dir
attach "$rs1" r0 p-rs1
attach "$rs2" r0 p-rs2
at "$cli" ip addr add 192.0.2.10/24 dev c0
for n in 1 2; do
  ns="$tag-rs$n"
  at "$ns" ip addr add "192.0.2.1$n/24" dev r0
  at "$ns" "$top/deploy/realserver/dr.sh" up 192.0.2.100 >/dev/null
  mkdir -p "$work/rs$n"
  echo "rs$n" > "$work/rs$n/index.html"
  at "$ns" python3 -m http.server 80 --bind 0.0.0.0 --directory "$work/rs$n" >/dev/null 2>&1 &
done

cat > "$work/ironvs.toml" <<TOML
[eal]
file_prefix = "$tag"
args = ["--no-huge", "-m", "512", "--no-telemetry"]

[cpu]
workers = 1
worker_cpus = [0]

[mempool]
mbufs = 8191

[dataplane]
max_connections = 65536

[[port]]
name = "dp0"
device = "net_af_packet0,iface=d0"
addresses = ["192.0.2.1/24"]
TOML

echo "== starting ironvs in $dir"
ip netns exec "$dir" "$ironvs" --config "$work/ironvs.toml" >"$work/ironvs.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 300); do
  grep -q "workers running" "$work/ironvs.log" && break
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/ironvs.log"; exit 1; }
  sleep 0.1
done
grep -E "ironvs::ports|workers running" "$work/ironvs.log" | sed 's/^/   /'

adm() { echo "# ironvsadm $*"; at "$dir" "$ironvsadm" "$@"; }
echo "== the classic LVS-DR configuration, typed with ironvsadm"
adm -C
adm -A -t 192.0.2.100:80 -s rr
adm -a -t 192.0.2.100:80 -r 192.0.2.11:80 -g -w 1
adm -a -t 192.0.2.100:80 -r 192.0.2.12:80 -g -w 1
adm -L -n

echo "== pinging the director and the VIP from the client"
at "$cli" ping -c 2 -i 0.2 -W 2 192.0.2.1 | tail -2
at "$cli" ping -c 2 -i 0.2 -W 2 192.0.2.100 | tail -2

echo "== 20 requests to http://192.0.2.100/ from the client"
for _ in $(seq 1 20); do
  for n in 1 2 3; do  # a real server still starting is retried, at most three times
    if body=$(at "$cli" curl -s --max-time 3 http://192.0.2.100/); then break; fi
    sleep 0.2
  done
  echo "$body"
done | sort | uniq -c | sed 's/^/   /'
echo "== the client's neighbour entry for the VIP (the director's MAC)"
at "$cli" ip neigh show 192.0.2.100 dev c0 | sed 's/^/   /'
adm -L -n --stats

echo "== stopping ironvs"
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=""
grep -E "worker 0|stopped|ERROR|error" "$work/ironvs.log" | sed 's/^/   /' || true
echo "== ironvs exited with $rc; lab removed"
exit "$rc"
