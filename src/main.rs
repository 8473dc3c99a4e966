//! `ironvs`: the IronVS daemon. Reads its TOML configuration, initialises DPDK, configures the
//! ports with one RX/TX queue pair per worker and runs lcore-pinned poll loops until SIGINT/SIGTERM.
#![deny(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;
use ironvs::{build_info, config, daemon};

/// Command line of the daemon.
#[derive(Debug, Parser)]
#[command(name = "ironvs", version = build_info::VERSION, long_version = build_info::LONG_VERSION, about = "IronVS: a DPDK layer-4 load balancer (LVS/IPVS feature set)")]
struct Args {
    /// Configuration file (TOML).
    #[arg(short, long, value_name = "FILE")]
    config: PathBuf,
    /// Check the configuration and exit without starting DPDK.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let cfg = match config::Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ironvs: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        println!(
            "{}: ok ({} port(s), {} worker(s))",
            args.config.display(),
            cfg.ports.len(),
            cfg.cpu.workers
        );
        return ExitCode::SUCCESS;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            eprintln!("ironvs: cannot install a handler for signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    match daemon::run(&cfg, stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ironvs: {e}");
            ExitCode::FAILURE
        }
    }
}
