#!/usr/bin/env bash
# Installs what IronVS needs to build, test and run its lab on Debian 12 (as root).
# Idempotent: does nothing when every package is already there.
set -euo pipefail

APT_PACKAGES=(
  # build: DPDK 22.11 LTS headers and libraries, pkg-config, libclang for bindgen
  dpdk libdpdk-dev pkg-config libclang-dev
  # lab and end-to-end tests: namespaces, veth, ping, captures, traffic
  iproute2 iputils-ping ethtool tcpdump curl python3
  # control-plane tests: promtool checks the /metrics exposition
  prometheus
  haproxy nginx libnginx-mod-stream  # benches/peers: the L4 proxies ironvs is compared with
  dpdk-dev linux-perf  # benches/dpdk_fwd.rs: the dpdk-testpmd baseline and perf profiles
  valgrind  # benches/callgrind/run.sh: instructions per packet
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# control-plane tests: schemathesis fuzzes the REST API against its OpenAPI document
if ! command -v st >/dev/null; then
  echo "install-deps: installing schemathesis (pip)"
  python3 -m pip install --quiet --disable-pip-version-check "schemathesis==4.32.5"
fi

if ! command -v cargo >/dev/null; then
  echo "install-deps: cargo not found: install a Rust toolchain (https://rustup.rs) first" >&2
  exit 1
fi
