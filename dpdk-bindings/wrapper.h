/* The DPDK headers IronVS binds; build.rs runs bindgen over this file and compiles the
 * generated static-inline wrappers with `#include "wrapper.h"`. */
#ifndef IRONVS_DPDK_WRAPPER_H
#define IRONVS_DPDK_WRAPPER_H

#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_version.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ethdev.h>
#include <rte_eth_ring.h>
#include <rte_bus_vdev.h>
#include <rte_dev.h>

/* Hand-written in csrc/shim.c: macros bindgen cannot see through. */
int ironvs_rte_errno(void);
void ironvs_set_rte_errno(int value);

#endif
