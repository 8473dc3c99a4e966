//! The DPDK EAL command line the configuration implies: the lcore layout from `[cpu]`, one
//! `--vdev` or `--allow` per port, and the user's `[eal]` arguments last so that they win.

use super::{Config, Device};

impl Config {
    /// The lcore layout as an EAL `--lcores` value: lcore 0 on the main CPU, workers 1..=n on theirs.
    pub fn lcores_arg(&self) -> String {
        let mut parts = vec![format!("0@{}", self.cpu.main_cpu)];
        for w in 0..self.cpu.workers {
            let cpu = if self.cpu.worker_cpus.is_empty() {
                self.cpu.main_cpu + 1 + w
            } else {
                self.cpu.worker_cpus[usize::from(w) % self.cpu.worker_cpus.len()]
            };
            parts.push(format!("{}@{cpu}", w + 1));
        }
        parts.join(",")
    }

    /// The EAL arguments (without the program name).
    pub fn eal_args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--lcores={}", self.lcores_arg()),
            "--main-lcore=0".to_string(),
            format!("--file-prefix={}", self.eal.file_prefix),
        ];
        let mut any_pci = false;
        for p in &self.ports {
            match &p.device {
                Device::Vdev(v) => args.push(format!("--vdev={v}")),
                Device::Pci(a) => {
                    any_pci = true;
                    args.push(format!("--allow={a}"));
                }
            }
        }
        let user_sets_pci = self
            .eal
            .args
            .iter()
            .any(|a| a == "--no-pci" || a.starts_with("-a") || a.starts_with("--allow"));
        if !any_pci && !user_sets_pci {
            args.push("--no-pci".to_string());
        }
        args.extend(self.eal.args.iter().cloned());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::GOOD;
    use super::*;

    #[test]
    fn test_parse_good() {
        let c = Config::parse(GOOD, "t.toml").unwrap();
        assert_eq!(c.ports[0].device.ethdev_name(), "net_af_packet0");
        assert_eq!(c.ports[0].addresses[1].prefix, 64);
        assert_eq!(c.lcores_arg(), "0@0,1@1,2@1");
        let args = c.eal_args();
        assert!(args.contains(&"--vdev=net_af_packet0,iface=veth0".to_string()));
        assert!(args.contains(&"--no-pci".to_string()));
        assert_eq!(&args[args.len() - 3..], ["--no-huge", "-m", "256"]);
    }
}
