#!/usr/bin/env bash
# Instructions per packet of the forwarding pipeline, counted by callgrind (deterministic, no
# timing): each mode runs twice, with N and M packets over the same established flows, and
#   instructions/packet = (Ir(M) − Ir(N)) / (M − N)
# so set-up, start-up and exit cancel out. The "harness" row is the loop alone (copying the
# 60-byte frame into the buffer, checking the verdict); it is included in every other row, and
# the "pipeline" column subtracts it. The "fullnat-syn" and "dr-syn" rows are the new-connection
# path: every packet a SYN of a new tuple, so the runs open N and M connections.
#
# Usage: benches/callgrind/run.sh [flows] [N] [M]     (defaults: 1000 20000 120000)
# Env:   PIPELINE_BIN=path  use this binary instead of building `cargo bench --bench pipeline`
#        MODES="dr fullnat" only these modes; NO_EPOCH_MODES: these also without a topology
#        epoch (no egress cache; default "dr fullnat")
#        SYN_MODES="fullnat-syn dr-syn" the new-connection rows (empty: none)
#        KEEP=dir           keep the callgrind.out files there (for callgrind_annotate)
set -euo pipefail

flows=${1:-1000}
n=${2:-20000}
m=${3:-120000}
modes=${MODES:-"dr nat fullnat tun nat-reply fullnat-reply"}
no_epoch_modes=${NO_EPOCH_MODES:-"dr fullnat"}
syn_modes=${SYN_MODES-"fullnat-syn dr-syn"}
root=$(cd "$(dirname "$0")/../.." && pwd)

command -v valgrind >/dev/null || { echo "run.sh: valgrind not found (deploy/install-deps.sh)" >&2; exit 1; }

bin=${PIPELINE_BIN:-}
if [ -z "$bin" ]; then
  bin=$(cd "$root" && cargo bench --bench pipeline --no-run --message-format=json 2>/dev/null |
    grep '"kind":\["bench"\]' | grep '"name":"pipeline"' |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
fi
[ -x "$bin" ] || { echo "run.sh: no pipeline binary (cargo bench --bench pipeline --no-run)" >&2; exit 1; }

# Every mode's output is checked with an independent parser first (natively, fast).
"$bin" check "$flows" >/dev/null

out=${KEEP:-$(mktemp -d)}
mkdir -p "$out"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$out"' EXIT

# Total instructions of one run: mode packets [no-epoch]. A `*-syn` mode opens a connection per
# packet, so it is given as many flows (SYNs of distinct tuples) as the longer run sends.
ir() {
  local f="$out/callgrind.out.$1${3:+-$3}.$2" fl=$flows
  case $1 in *-syn) fl=$m ;; esac
  valgrind --tool=callgrind --callgrind-out-file="$f" "$bin" "$1" "$fl" "$2" ${3:-} >/dev/null 2>&1 ||
    { echo "run.sh: $1 $fl $2 ${3:-} failed" >&2; exit 1; }
  sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$f"
}

per_packet() { # mode [no-epoch] -> instructions per packet, one decimal
  local a b
  a=$(ir "$1" "$n" "${2:-}")
  b=$(ir "$1" "$m" "${2:-}")
  awk -v a="$a" -v b="$b" -v n="$n" -v m="$m" 'BEGIN { printf "%.1f", (b - a) / (m - n) }'
}

harness=$(per_packet harness)
printf '%-24s %12s %12s %10s\n' mode flows "Ir/packet" pipeline
printf '%-24s %12s %12s %10s\n' harness "$flows" "$harness" -
row() { # label mode [no-epoch]
  local total net
  total=$(per_packet "$2" "${3:-}")
  net=$(awk -v t="$total" -v h="$harness" 'BEGIN { printf "%.1f", t - h }')
  printf '%-24s %12s %12s %10s\n' "$1" "${flows_label:-$flows}" "$total" "$net"
}
for mode in $modes; do
  row "$mode" "$mode"
done
# The daemon's topology without an epoch: route and neighbour looked up for every packet.
for mode in $no_epoch_modes; do
  row "$mode (no epoch)" "$mode" no-epoch
done
# New connections: every packet a SYN of a new tuple (its flows column: the table fills from
# N to M connections while it is measured).
for mode in $syn_modes; do
  flows_label="$n-$m" row "$mode" "$mode"
done
