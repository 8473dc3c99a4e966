//! Finds libdpdk with pkg-config, generates the raw bindings with bindgen and compiles the C
//! wrappers for DPDK's `static inline` functions (plus the tiny hand-written shim) with `cc`.
//!
//! Drivers: Debian builds DPDK as shared libraries and EAL loads every PMD found in its driver
//! directory (`RTE_EAL_PMD_PATH`, e.g. `/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0`) at
//! `rte_eal_init`, so vdevs such as `net_null`, `net_pcap`, `net_af_packet`, `net_tap`, ... work
//! without linking them. We link `librte_net_ring` (for `rte_eth_from_rings`) and
//! `librte_bus_vdev` (for `rte_vdev_init`) by name because our code calls into them; their SONAMEs
//! match the plugins in the driver directory, so the loader maps each library only once.

use std::env;
use std::path::PathBuf;

/// Libraries we call directly that Debian's `libdpdk.pc` does not list.
const EXTRA_LIBS: &[&str] = &["rte_net_ring", "rte_bus_vdev"];

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let dpdk = pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
        .unwrap_or_else(|e| {
            panic!("libdpdk not found by pkg-config ({e}); install DPDK 22.11 (Debian: apt install libdpdk-dev) or set PKG_CONFIG_PATH")
        });
    for lib in EXTRA_LIBS {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
    // Let this crate's tests find a DPDK outside the default search path (e.g. /usr/local);
    // link args do not propagate, so binaries of dependents rely on ld.so.conf for that case.
    for dir in &dpdk.link_paths {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }

    println!("cargo:rustc-env=IRONVS_DPDK_VERSION={}", dpdk.version);
    // Exposed to dependents' build scripts as DEP_RTE_EAL_VERSION (this crate `links = "rte_eal"`).
    println!("cargo:version={}", dpdk.version);

    let cflags = dpdk_cflags();
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let wrappers = out.join("static_fns");

    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&cflags)
        .clang_arg("-DALLOW_EXPERIMENTAL_API")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .wrap_static_fns(true)
        .wrap_static_fns_path(&wrappers)
        // Object-like macros built from RTE_BIT64() need clang to evaluate them.
        .clang_macro_fallback()
        .clang_macro_fallback_build_dir(&out)
        .allowlist_function("rte_eal_(init|cleanup|remote_launch|wait_lcore|mp_wait_lcore|get_lcore_state|process_type)")
        .allowlist_function("rte_(lcore_id|lcore_count|get_main_lcore|get_next_lcore|lcore_is_enabled|socket_id|lcore_to_socket_id)")
        .allowlist_function("rte_(rdtsc|rdtsc_precise|get_tsc_hz|get_tsc_cycles)")
        .allowlist_function("rte_(strerror|version)")
        .allowlist_function("rte_pktmbuf_(pool_create|alloc|alloc_bulk|free|free_bulk|prepend|adj|append|trim|headroom|tailroom|reset)")
        .allowlist_function("rte_mbuf_refcnt_(read|set|update)")
        .allowlist_function("rte_mempool_(free|lookup|avail_count|in_use_count)")
        .allowlist_function("rte_ring_(create|free|lookup|count|free_count|enqueue_burst|dequeue_burst)")
        .allowlist_function("rte_eth_(dev_get_port_by_name|dev_get_name_by_port|dev_info_get|dev_configure|rx_queue_setup|tx_queue_setup|dev_start|dev_stop|dev_close|dev_socket_id|dev_set_mtu|promiscuous_enable|promiscuous_disable|macaddr_get|link_get_nowait|stats_get|stats_reset|rx_burst|tx_burst|dev_count_avail|dev_is_valid_port|from_rings|dev_adjust_nb_rx_tx_desc|dev_rss_reta_update|dev_rss_reta_query)")
        .allowlist_function("rte_vdev_(init|uninit)")
        .allowlist_function("ironvs_.*")
        .allowlist_var("RTE_ETH_RSS_.*|RTE_ETH_TX_OFFLOAD_.*|RTE_ETH_RX_OFFLOAD_.*|RTE_MBUF_F_.*")
        .allowlist_var("RTE_MAX_ETHPORTS|RTE_MAX_LCORE|RTE_ETH_NAME_MAX_LEN|RTE_ETH_LINK_FULL_DUPLEX|RTE_ETH_SPEED_NUM_UNKNOWN|RTE_PKTMBUF_HEADROOM|RTE_MBUF_DEFAULT_BUF_SIZE|RTE_MEMPOOL_NAMESIZE|RTE_RING_NAMESIZE|RING_F_.*|LCORE_ID_ANY|SOCKET_ID_ANY|RTE_MEMPOOL_CACHE_MAX_SIZE|RTE_ETH_RETA_GROUP_SIZE")
        .allowlist_type("rte_eth_rss_conf|rte_lcore_state_t|rte_eth_mq_rx_mode|rte_eth_rss_reta_entry64")
        .rustified_enum("rte_lcore_state_t")
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .generate()
        .expect("bindgen failed on wrapper.h");
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("writing bindings.rs");

    // bindgen wrote `static_fns.c`, which `#include`s wrapper.h; compile it with DPDK's cflags.
    let mut build = cc::Build::new();
    build
        .file(wrappers.with_extension("c"))
        .file("csrc/shim.c")
        .include(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"))
        .define("ALLOW_EXPERIMENTAL_API", None)
        .warnings(false);
    for flag in &cflags {
        build.flag(flag);
    }
    build.compile("ironvs_dpdk_wrappers");
}

/// DPDK's compile flags (include dirs, `-include rte_config.h`, `-march=...`), as pkg-config gives them.
fn dpdk_cflags() -> Vec<String> {
    let output =
        std::process::Command::new(env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into()))
            .args(["--cflags", "libdpdk"])
            .output()
            .expect("running pkg-config --cflags libdpdk");
    assert!(
        output.status.success(),
        "pkg-config --cflags libdpdk failed"
    );
    String::from_utf8(output.stdout)
        .expect("pkg-config output is UTF-8")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}
