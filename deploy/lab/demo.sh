#!/usr/bin/env bash
# The IronVS lab: builds ironvs, creates a client and a director namespace joined by a veth pair,
# starts ironvs on the director's end (DPDK net_af_packet, no hugepages), pings it from the
# client and tears everything down, even on failure. Run as root on Debian 12.
#
# Nothing outside the lab's own namespaces is touched; addresses are from 192.0.2.0/24 (RFC 5737).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
"$top/deploy/install-deps.sh"

echo "== building ironvs (release)"
cargo build --release --quiet --manifest-path "$top/Cargo.toml" --bin ironvs
ironvs="$top/target/release/ironvs"
"$ironvs" --version | head -1

tag="ivslab$$"
cli="$tag-cli"
dir="$tag-dir"
work=$(mktemp -d)
daemon_pid=""

cleanup() {
  set +e
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null
  fi
  for ns in "$cli" "$dir"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p"; done
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

echo "== building the lab: $cli (192.0.2.2) <-veth-> $dir (ironvs, 192.0.2.1)"
ip netns add "$cli"
ip netns add "$dir"
ip link add c0 netns "$cli" type veth peer name d0 netns "$dir"
ip netns exec "$cli" ip link set lo up
ip netns exec "$cli" ip addr add 192.0.2.2/24 dev c0
ip netns exec "$cli" ip link set c0 up
ip netns exec "$dir" sysctl -q -w net.ipv6.conf.d0.disable_ipv6=1
ip netns exec "$dir" ip link set d0 up

cat > "$work/ironvs.toml" <<TOML
[eal]
file_prefix = "$tag"
args = ["--no-huge", "-m", "256", "--no-telemetry"]

[cpu]
workers = 1
worker_cpus = [0]

[mempool]
mbufs = 4095

[[port]]
name = "dp0"
device = "net_af_packet0,iface=d0"
addresses = ["192.0.2.1/24"]
TOML

echo "== starting ironvs"
ip netns exec "$dir" "$ironvs" --config "$work/ironvs.toml" >"$work/ironvs.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 300); do
  grep -q "workers running" "$work/ironvs.log" && break
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/ironvs.log"; exit 1; }
  sleep 0.1
done
grep -E "port|workers running" "$work/ironvs.log" | sed 's/^/   ironvs: /'

echo "== pinging 192.0.2.1 from the client"
ip netns exec "$cli" ping -c 5 -i 0.2 -W 2 192.0.2.1
echo "== the client's neighbour entry for 192.0.2.1"
ip netns exec "$cli" ip neigh show 192.0.2.1 dev c0

echo "== stopping ironvs"
kill -TERM "$daemon_pid"
wait "$daemon_pid"; rc=$?
daemon_pid=""
sed 's/^/   ironvs: /' "$work/ironvs.log" | tail -n 4
echo "== ironvs exited with $rc; lab removed"
exit "$rc"
