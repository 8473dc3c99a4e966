//! The scalar values written as strings in the file: MAC addresses, DPDK devices and interface
//! addresses.
//!
//! Each parses with `FromStr` (and serde through it), and a refusal says which form is expected,
//! so that toml can report it at the value's line and column.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;

/// A unicast MAC address written as six colon-separated hex bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub dataplane::wire::MacAddr);

impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a MAC address like 02:00:00:00:00:0b");
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut out {
            let p = parts.next().filter(|p| p.len() == 2).ok_or_else(bad)?;
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        if out[0] & 1 != 0 || out == [0; 6] {
            return Err(format!(
                "`{s}` is a group or all-zero MAC; a neighbour needs a unicast one"
            ));
        }
        Ok(Mac(dataplane::wire::MacAddr(out)))
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A DPDK device: a virtual device created from a vdev string, or a PCI device bound to a DPDK driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// `--vdev` argument; the ethdev is named by the part before the first comma.
    Vdev(String),
    /// A PCI address for `-a`.
    Pci(String),
}

impl Device {
    /// The ethdev name DPDK gives the device (`rte_eth_dev_get_port_by_name`).
    pub fn ethdev_name(&self) -> &str {
        match self {
            Device::Vdev(s) => s.split(',').next().unwrap_or(s),
            Device::Pci(s) => s,
        }
    }
}

impl FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if is_pci_address(s) {
            let full = if s.matches(':').count() == 1 {
                format!("0000:{s}")
            } else {
                s.to_string()
            };
            return Ok(Device::Pci(full));
        }
        let name = s.split(',').next().unwrap_or_default();
        if name.starts_with("net_") && name.len() > 4 {
            return Ok(Device::Vdev(s.to_string()));
        }
        Err(format!(
            "`{s}` is neither a PCI address (0000:3b:00.0) nor a DPDK vdev string (net_af_xdp0,iface=eth1)"
        ))
    }
}

fn is_pci_address(s: &str) -> bool {
    // [dddd:]bb:dd.f in hex
    let (domain_bus, devfn) = match s.rsplit_once(':') {
        Some(x) => x,
        None => return false,
    };
    let hex = |t: &str, n: usize| t.len() == n && t.chars().all(|c| c.is_ascii_hexdigit());
    let bus_ok = match domain_bus.split_once(':') {
        Some((d, b)) => hex(d, 4) && hex(b, 2),
        None => hex(domain_bus, 2),
    };
    let devfn_ok = match devfn.split_once('.') {
        Some((d, f)) => hex(d, 2) && f.len() == 1 && f.chars().all(|c| ('0'..='7').contains(&c)),
        None => false,
    };
    bus_ok && devfn_ok
}

impl<'de> Deserialize<'de> for Device {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An interface address with its prefix length, like `ip addr` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length of the connected subnet.
    pub prefix: u8,
}

impl FromStr for IfAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` needs a prefix length, e.g. 192.0.2.1/24"))?;
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IPv4 or IPv6 address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| format!("prefix length `{p}` must be 0..={max}"))?;
        Ok(IfAddr { addr, prefix })
    }
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl<'de> Deserialize<'de> for IfAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::GOOD;
    use super::super::Config;
    use super::*;

    #[test]
    fn test_devices() {
        assert_eq!(
            "3b:00.0".parse::<Device>().unwrap(),
            Device::Pci("0000:3b:00.0".into())
        );
        assert!("eth0".parse::<Device>().is_err());
        let cfg = GOOD.replace("net_af_packet0,iface=veth0", "0000:3b:00.1");
        let c = Config::parse(&cfg, "t").unwrap();
        assert!(c.eal_args().contains(&"--allow=0000:3b:00.1".to_string()));
        assert!(!c.eal_args().contains(&"--no-pci".to_string()));
    }
}
