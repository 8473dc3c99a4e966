#!/usr/bin/env bash
# Prepares a host for IronVS on a physical NIC: hugepages, the vfio-pci driver, and binding the
# NIC to it. Usage: setup-nic.sh PCI_ADDRESS [HUGEPAGES_2M]   (as root)
# The NIC leaves the kernel: do not run this on the interface you are logged in through.
set -euo pipefail
pci=${1:?usage: setup-nic.sh PCI_ADDRESS [HUGEPAGES_2M]}
pages=${2:-1024}

echo "$pages" > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
got=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)
[ "$got" -ge "$pages" ] || echo "warning: only $got of $pages hugepages reserved (memory fragmented? reserve at boot: hugepages=$pages)" >&2
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages

modprobe vfio-pci
if [ ! -d /sys/kernel/iommu_groups ] || [ -z "$(ls -A /sys/kernel/iommu_groups)" ]; then
  echo "note: no IOMMU groups; enable intel_iommu=on / amd_iommu=on, or use vfio-pci no-IOMMU mode" >&2
fi
dpdk-devbind.py --bind=vfio-pci "$pci"
dpdk-devbind.py --status-dev net | grep -F "$pci"
