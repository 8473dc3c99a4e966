//! Checks across fields and sections that the types alone cannot express: sizes that must fit
//! together, names that must be unique or must refer to a port.
//!
//! They run after parsing, so their errors name the section, port or field instead of a line.

use super::Config;

impl Config {
    /// Checks the parsed configuration; the error says what is wrong and where.
    pub(super) fn check(&self) -> Result<(), String> {
        if self.ports.is_empty() {
            return Err("no [[port]] section: at least one data port is needed".into());
        }
        if self.cpu.workers == 0 {
            return Err("[cpu] workers must be at least 1".into());
        }
        if self.mempool.mbufs < 1024 {
            return Err(format!(
                "[mempool] mbufs = {} is too small: use at least 1024 (8191 or more for real traffic)",
                self.mempool.mbufs
            ));
        }
        let max_conns = dataplane::conn::ConnTable::MAX_CAPACITY;
        if !(1..=max_conns).contains(&self.dataplane.max_connections) {
            return Err(format!(
                "[dataplane] max_connections = {} must be 1..={max_conns}",
                self.dataplane.max_connections
            ));
        }
        let held = u64::from(self.dataplane.max_held_packets) * u64::from(self.cpu.workers);
        if held > u64::from(self.mempool.mbufs / 2) {
            return Err(format!(
                "[dataplane] max_held_packets = {} x {} workers may hold {held} mbufs, more than half of [mempool] mbufs = {}: lower it or add mbufs",
                self.dataplane.max_held_packets, self.cpu.workers, self.mempool.mbufs
            ));
        }
        for (i, p) in self.ports.iter().enumerate() {
            if self.ports[..i].iter().any(|q| q.name == p.name) {
                return Err(format!("port name `{}` is used twice", p.name));
            }
            if self.ports[..i]
                .iter()
                .any(|q| q.device.ethdev_name() == p.device.ethdev_name())
            {
                return Err(format!(
                    "port `{}`: device name `{}` is used by another port (vdev names must be unique, e.g. net_af_packet0, net_af_packet1)",
                    p.name,
                    p.device.ethdev_name()
                ));
            }
            if !p.rx_desc.is_power_of_two() || !p.tx_desc.is_power_of_two() {
                return Err(format!(
                    "port `{}`: rx_desc and tx_desc must be powers of two",
                    p.name
                ));
            }
            if let Some(mtu) = p.mtu {
                if !(68..=9600).contains(&mtu) {
                    return Err(format!("port `{}`: mtu {mtu} must be 68..=9600", p.name));
                }
            }
        }
        for n in &self.neighbours {
            if !self.ports.iter().any(|p| p.name == n.port) {
                return Err(format!(
                    "[[neighbour]] {}: no [[port]] is named `{}`",
                    n.address, n.port
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::GOOD;
    use super::*;

    #[test]
    fn test_cross_field_checks() {
        let twice = format!("{GOOD}\n[[port]]\nname = \"dp0\"\ndevice = \"net_null0\"\n");
        let err = Config::parse(&twice, "t").unwrap_err().to_string();
        assert!(err.contains("used twice"), "{err}");
        let err = Config::parse("port = []", "t").unwrap_err().to_string();
        assert!(err.contains("at least one data port"), "{err}");
        for bad in [0u64, 1 << 30, u64::from(u32::MAX)] {
            let cfg = format!("[dataplane]\nmax_connections = {bad}\n{GOOD}");
            let err = Config::parse(&cfg, "t").unwrap_err().to_string();
            assert!(
                err.contains(&format!("max_connections = {bad} must be 1..=1073741823")),
                "{err}"
            );
        }
        let most = format!("[dataplane]\nmax_connections = 1073741823\n{GOOD}");
        assert!(Config::parse(&most, "t").is_ok());
    }

    #[test]
    fn test_max_held_packets() {
        let c = Config::parse(GOOD, "t").unwrap();
        assert_eq!(c.dataplane.max_held_packets, 256);
        assert_eq!(c.dataplane.neigh_config().max_held, 256);
        let text =
            format!("{GOOD}\n[dataplane]\nmax_held_packets = 64\n\n[mempool]\nmbufs = 1024\n");
        let c = Config::parse(&text, "t").unwrap();
        let n = c.dataplane.neigh_config();
        assert_eq!(n.max_held, 64);
        assert_eq!(
            n.capacity,
            dataplane::neigh::NeighConfig::default().capacity
        );
        // 2 workers x 256 = 512 = half of 1024 mbufs: allowed; one more each is not.
        let ok = text.replace("= 64", "= 256");
        assert_eq!(
            Config::parse(&ok, "t").unwrap().dataplane.max_held_packets,
            256
        );
        let err = Config::parse(&text.replace("= 64", "= 257"), "t")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("max_held_packets = 257 x 2 workers may hold 514 mbufs")
                && err.contains("mbufs = 1024"),
            "{err}"
        );
        let err = Config::parse(&text.replace("= 64", "= -1"), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 15"), "{err}");
    }
}
