//! ipvsadm's command line, parsed with clap, and the address/mask parsers it needs.
//!
//! FullNAT is `-F`/`--fullnat`: `-b` stays ipvsadm's `--sched-flags` so that classic ipvsadm
//! command lines keep their meaning (DPVS uses `-b` for FullNAT instead).

use std::net::{IpAddr, Ipv4Addr};

use clap::Parser;
use dataplane::flow::Proto;

/// ipvsadm-compatible administration of IronVS over its REST API.
#[derive(Parser, Debug, Default)]
#[command(
    name = "ironvsadm",
    disable_version_flag = true,
    about = "IronVS administration, ipvsadm-compatible (talks to the IronVS REST API)"
)]
pub struct Args {
    /// Add a virtual service.
    #[arg(short = 'A', long = "add-service")]
    pub add_service: bool,
    /// Edit a virtual service.
    #[arg(short = 'E', long = "edit-service")]
    pub edit_service: bool,
    /// Delete a virtual service.
    #[arg(short = 'D', long = "delete-service")]
    pub delete_service: bool,
    /// Clear the whole virtual service table.
    #[arg(short = 'C', long = "clear")]
    pub clear: bool,
    /// Restore rules from stdin (ipvsadm-save format).
    #[arg(short = 'R', long = "restore")]
    pub restore: bool,
    /// Save rules to stdout (ipvsadm-save format).
    #[arg(short = 'S', long = "save")]
    pub save: bool,
    /// Add a real server to a virtual service.
    #[arg(short = 'a', long = "add-server")]
    pub add_server: bool,
    /// Edit a real server.
    #[arg(short = 'e', long = "edit-server")]
    pub edit_server: bool,
    /// Delete a real server.
    #[arg(short = 'd', long = "delete-server")]
    pub delete_server: bool,
    /// List the table.
    #[arg(short = 'L', long = "list", short_alias = 'l')]
    pub list: bool,
    /// Zero the packet, byte and rate counters of a service (-t/-u) or of all services.
    #[arg(short = 'Z', long = "zero")]
    pub zero: bool,
    /// Set the TCP, TCP FIN and UDP timeouts in seconds (0 leaves one unchanged).
    #[arg(long = "set", num_args = 3, value_names = ["TCP", "TCPFIN", "UDP"])]
    pub set: Option<Vec<u32>>,
    /// Add a FullNAT local address (with -z).
    #[arg(long = "add-laddr", visible_alias = "al")]
    pub add_laddr: bool,
    /// Delete a FullNAT local address (with -z).
    #[arg(long = "del-laddr", visible_alias = "dl")]
    pub del_laddr: bool,
    /// List the FullNAT local addresses.
    #[arg(long = "get-laddr", visible_alias = "gl")]
    pub get_laddr: bool,
    /// Show the program version.
    #[arg(short = 'v', long = "version")]
    pub version: bool,

    /// TCP service VIP:port.
    #[arg(short = 't', long = "tcp-service", value_name = "VIP:PORT")]
    pub tcp: Option<String>,
    /// UDP service VIP:port.
    #[arg(short = 'u', long = "udp-service", value_name = "VIP:PORT")]
    pub udp: Option<String>,
    /// Scheduler (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh); default wlc.
    #[arg(short = 's', long = "scheduler")]
    pub scheduler: Option<String>,
    /// Persistent service, timeout in seconds (default 300).
    #[arg(short = 'p', long = "persistent", num_args = 0..=1, default_missing_value = "300")]
    pub persistent: Option<u32>,
    /// Persistence netmask (dotted IPv4 mask or prefix length).
    #[arg(short = 'M', long = "netmask")]
    pub netmask: Option<String>,
    /// Scheduler flags: sh-fallback, sh-port, mh-fallback, mh-port, flag-1, flag-2.
    #[arg(short = 'b', long = "sched-flags")]
    pub sched_flags: Option<String>,
    /// One-packet scheduling (UDP).
    #[arg(short = 'o', long = "ops")]
    pub ops: bool,
    /// Real server address, and `:port` when it is not the service's.
    #[arg(short = 'r', long = "real-server", value_name = "RS[:PORT]")]
    pub real: Option<String>,
    /// Direct routing (default).
    #[arg(short = 'g', long = "gatewaying")]
    pub gatewaying: bool,
    /// IPIP tunnelling.
    #[arg(short = 'i', long = "ipip")]
    pub ipip: bool,
    /// Masquerading (NAT).
    #[arg(short = 'm', long = "masquerading")]
    pub masquerading: bool,
    /// Full NAT (ipvsadm's -b is --sched-flags, so FullNAT is -F).
    #[arg(short = 'F', long = "fullnat")]
    pub fullnat: bool,
    /// Weight 0..65535 (default 1).
    #[arg(short = 'w', long = "weight")]
    pub weight: Option<u32>,
    /// Upper connection threshold.
    #[arg(short = 'x', long = "u-threshold")]
    pub upper: Option<u32>,
    /// Lower connection threshold.
    #[arg(short = 'y', long = "l-threshold")]
    pub lower: Option<u32>,
    /// FullNAT local address.
    #[arg(short = 'z', long = "laddr")]
    pub laddr: Option<String>,
    /// Numeric output (always on: names are never resolved).
    #[arg(short = 'n', long = "numeric")]
    pub numeric: bool,
    /// List connections.
    #[arg(short = 'c', long = "connection")]
    pub connection: bool,
    /// List with statistics.
    #[arg(long = "stats")]
    pub stats: bool,
    /// List with rates.
    #[arg(long = "rate")]
    pub rate: bool,
    /// List the timeouts.
    #[arg(long = "timeout")]
    pub timeout: bool,
    /// List thresholds.
    #[arg(long = "thresholds")]
    pub thresholds: bool,
    /// List the counters of each worker lcore (IronVS only).
    #[arg(long = "workers")]
    pub workers: bool,
    /// Exact numbers in --stats/--rate/--workers.
    #[arg(short = 'X', long = "exact")]
    pub exact: bool,
    /// Sorted output (always on).
    #[arg(long = "sort")]
    pub sort: bool,

    /// IronVS API base URL.
    #[arg(
        long = "server",
        env = "IRONVS_API",
        default_value = "http://127.0.0.1:9180"
    )]
    pub server: String,
    /// Bearer token for changes.
    #[arg(long = "token", env = "IRONVS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// The one command a command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    AddService,
    EditService,
    DeleteService,
    Clear,
    Restore,
    Save,
    AddServer,
    EditServer,
    DeleteServer,
    List,
    Zero,
    Set,
    AddLaddr,
    DelLaddr,
    GetLaddr,
    Version,
}

impl Args {
    /// The command; listing when none is given (like ipvsadm with no arguments).
    pub fn command(&self) -> Result<Cmd, String> {
        let all = [
            (self.add_service, Cmd::AddService, "-A"),
            (self.edit_service, Cmd::EditService, "-E"),
            (self.delete_service, Cmd::DeleteService, "-D"),
            (self.clear, Cmd::Clear, "-C"),
            (self.restore, Cmd::Restore, "-R"),
            (self.save, Cmd::Save, "-S"),
            (self.add_server, Cmd::AddServer, "-a"),
            (self.edit_server, Cmd::EditServer, "-e"),
            (self.delete_server, Cmd::DeleteServer, "-d"),
            (self.list, Cmd::List, "-L"),
            (self.zero, Cmd::Zero, "-Z"),
            (self.set.is_some(), Cmd::Set, "--set"),
            (self.add_laddr, Cmd::AddLaddr, "--add-laddr"),
            (self.del_laddr, Cmd::DelLaddr, "--del-laddr"),
            (self.get_laddr, Cmd::GetLaddr, "--get-laddr"),
            (self.version, Cmd::Version, "-v"),
        ];
        let chosen: Vec<(Cmd, &str)> = all
            .iter()
            .filter(|(on, _, _)| *on)
            .map(|(_, c, name)| (*c, *name))
            .collect();
        match chosen.as_slice() {
            [] => Ok(Cmd::List),
            [(Cmd::List, _)] => Ok(Cmd::List),
            // `-Z --workers` must not read as "zero the workers' counters".
            [(_, name)] if self.workers => Err(format!("--workers cannot be combined with {name}")),
            [(c, _)] => Ok(*c),
            _ => Err("multiple commands specified".into()),
        }
    }

    /// True for the `--workers` listing; refused with the options that choose another listing
    /// or a service, since it lists every worker and nothing else.
    pub fn workers_listing(&self) -> Result<bool, String> {
        if !self.workers {
            return Ok(false);
        }
        let clashes = [
            (self.connection, "-c"),
            (self.stats, "--stats"),
            (self.rate, "--rate"),
            (self.thresholds, "--thresholds"),
            (self.timeout, "--timeout"),
            (self.tcp.is_some(), "-t"),
            (self.udp.is_some(), "-u"),
        ];
        match clashes.iter().find(|(on, _)| *on) {
            Some((_, name)) => Err(format!("--workers cannot be combined with {name}")),
            None => Ok(true),
        }
    }

    /// The service given with -t or -u, if any.
    pub fn service(&self) -> Result<Option<(Proto, IpAddr, u16)>, String> {
        match (&self.tcp, &self.udp) {
            (Some(_), Some(_)) => Err("only one of -t and -u may be given".into()),
            (Some(s), None) => parse_addr_port(s, None).map(|(a, p)| Some((Proto::Tcp, a, p))),
            (None, Some(s)) => parse_addr_port(s, None).map(|(a, p)| Some((Proto::Udp, a, p))),
            (None, None) => Ok(None),
        }
    }

    /// The service, which the command requires.
    pub fn need_service(&self) -> Result<(Proto, IpAddr, u16), String> {
        self.service()?
            .ok_or_else(|| "a service must be given with -t VIP:PORT or -u VIP:PORT".into())
    }

    /// The forwarding mode name for the API (`dr` when none is given).
    pub fn mode(&self) -> Result<&'static str, String> {
        let modes = [
            (self.gatewaying, "dr"),
            (self.ipip, "tun"),
            (self.masquerading, "nat"),
            (self.fullnat, "fullnat"),
        ];
        let on: Vec<&str> = modes.iter().filter(|(b, _)| *b).map(|(_, m)| *m).collect();
        match on.as_slice() {
            [] => Ok("dr"),
            [m] => Ok(m),
            _ => Err("only one of -g, -i, -m, -F may be given".into()),
        }
    }

    /// Scheduler flags from -b as (fallback, hash_port).
    pub fn sched_flags(&self) -> Result<(bool, bool), String> {
        let mut out = (false, false);
        if let Some(list) = &self.sched_flags {
            for f in list.split(',').filter(|f| !f.is_empty()) {
                match f {
                    "sh-fallback" | "mh-fallback" | "flag-1" => out.0 = true,
                    "sh-port" | "mh-port" | "flag-2" => out.1 = true,
                    _ => return Err(format!("invalid scheduler flag {f:?}")),
                }
            }
        }
        Ok(out)
    }
}

/// Parses `ADDR[:PORT]` or `[V6ADDR][:PORT]`; a missing port is `default` (or 0).
pub fn parse_addr_port(s: &str, default: Option<u16>) -> Result<(IpAddr, u16), String> {
    let bad = || format!("invalid address {s:?} (expected ADDR[:PORT] or [IPV6][:PORT])");
    let (addr, port) = if let Some(rest) = s.strip_prefix('[') {
        let (a, tail) = rest.split_once(']').ok_or_else(bad)?;
        match tail {
            "" => (a, None),
            t => (a, Some(t.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else if s.matches(':').count() == 1 {
        let (a, p) = s.split_once(':').ok_or_else(bad)?;
        (a, Some(p))
    } else {
        (s, None)
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("invalid port {p:?} in {s:?}"))?,
        None => default.unwrap_or(0),
    };
    Ok((addr, port))
}

/// Parses a persistence netmask: a dotted IPv4 mask or a prefix length.
pub fn parse_netmask(s: &str) -> Result<u8, String> {
    if let Ok(n) = s.parse::<u8>() {
        return Ok(n);
    }
    let m: Ipv4Addr = s.parse().map_err(|_| format!("invalid netmask {s:?}"))?;
    let bits = u32::from(m);
    let len = bits.leading_ones();
    if bits.checked_shl(len).unwrap_or(0) != 0 {
        return Err(format!("netmask {s} is not contiguous"));
    }
    Ok(len as u8)
}

/// The dotted IPv4 mask of a prefix length.
pub fn prefix_to_mask(len: u8) -> Ipv4Addr {
    let bits = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    };
    Ipv4Addr::from(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_addr_port() {
        let v4 = |s| parse_addr_port(s, Some(80)).unwrap();
        assert_eq!(v4("192.0.2.1:8080"), ("192.0.2.1".parse().unwrap(), 8080));
        assert_eq!(v4("192.0.2.1"), ("192.0.2.1".parse().unwrap(), 80));
        assert_eq!(v4("[2001:db8::1]:53"), ("2001:db8::1".parse().unwrap(), 53));
        assert_eq!(v4("[2001:db8::1]"), ("2001:db8::1".parse().unwrap(), 80));
        assert_eq!(v4("2001:db8::1"), ("2001:db8::1".parse().unwrap(), 80));
        assert!(parse_addr_port("192.0.2.1:99999", None).is_err());
        assert!(parse_addr_port("host.example:80", None).is_err());
    }

    #[test]
    fn test_netmask() {
        assert_eq!(parse_netmask("255.255.255.0").unwrap(), 24);
        assert_eq!(parse_netmask("64").unwrap(), 64);
        assert!(parse_netmask("255.0.255.0").is_err());
        assert_eq!(prefix_to_mask(24).to_string(), "255.255.255.0");
        assert_eq!(prefix_to_mask(32).to_string(), "255.255.255.255");
    }

    #[test]
    fn test_classic_command_lines() {
        let a = Args::try_parse_from("ironvsadm -A -t 192.0.2.1:80 -s rr -p".split(' ')).unwrap();
        assert_eq!(a.command().unwrap(), Cmd::AddService);
        assert_eq!(a.persistent, Some(300));
        let a =
            Args::try_parse_from("ironvsadm -a -t 192.0.2.1:80 -r 10.0.0.1:80 -m -w 3".split(' '))
                .unwrap();
        assert_eq!(
            (a.command().unwrap(), a.mode().unwrap(), a.weight),
            (Cmd::AddServer, "nat", Some(3))
        );
        let a = Args::try_parse_from("ironvsadm -Ln --stats".split(' ')).unwrap();
        assert!(a.list && a.numeric && a.stats);
        let a = Args::try_parse_from("ironvsadm --set 900 120 300".split(' ')).unwrap();
        assert_eq!(a.set, Some(vec![900, 120, 300]));
        let a =
            Args::try_parse_from("ironvsadm -A -t 192.0.2.1:80 -p 600 -M 255.255.255.0".split(' '))
                .unwrap();
        assert_eq!(
            (a.persistent, a.netmask.as_deref()),
            (Some(600), Some("255.255.255.0"))
        );
        let a = Args::try_parse_from("ironvsadm -C -L".split(' ')).unwrap();
        assert!(a.command().is_err());
    }

    #[test]
    fn test_zero_command_lines() {
        let a = Args::try_parse_from(["ironvsadm", "-Z"]).unwrap();
        assert_eq!(
            (a.command().unwrap(), a.service().unwrap()),
            (Cmd::Zero, None)
        );
        let a = Args::try_parse_from(["ironvsadm", "--zero"]).unwrap();
        assert_eq!(a.command().unwrap(), Cmd::Zero);
        let a = Args::try_parse_from("ironvsadm -Z -t 192.0.2.1:80".split(' ')).unwrap();
        assert_eq!(
            (a.command().unwrap(), a.service().unwrap()),
            (
                Cmd::Zero,
                Some((Proto::Tcp, "192.0.2.1".parse().unwrap(), 80))
            )
        );
        let a = Args::try_parse_from("ironvsadm -Z -u [2001:db8::1]:53".split(' ')).unwrap();
        assert_eq!(
            a.service().unwrap(),
            Some((Proto::Udp, "2001:db8::1".parse().unwrap(), 53))
        );
        let a = Args::try_parse_from("ironvsadm -Z -L".split(' ')).unwrap();
        assert_eq!(a.command().unwrap_err(), "multiple commands specified");
        // No firewall-mark services: -f is refused like any unknown option.
        let e = Args::try_parse_from("ironvsadm -Z -f 1".split(' ')).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
    }

    #[test]
    fn test_workers_command_lines() {
        let parse = |l: &str| Args::try_parse_from(l.split(' ')).unwrap();
        for line in [
            "ironvsadm --workers",
            "ironvsadm -L --workers",
            "ironvsadm -Ln --workers -X",
            "ironvsadm --list --numeric --workers --exact --sort",
        ] {
            let a = parse(line);
            assert_eq!(
                (a.command().unwrap(), a.workers_listing().unwrap()),
                (Cmd::List, true),
                "{line}"
            );
        }
        let a = parse("ironvsadm -Ln --workers -X");
        assert!(a.numeric && a.exact);
        let a = parse("ironvsadm -L -n --stats");
        assert!(!a.workers_listing().unwrap());
        let clash = |opt: &str| format!("--workers cannot be combined with {opt}");
        for (line, opt) in [
            ("-L --workers -c", "-c"),
            ("--workers --stats", "--stats"),
            ("--workers --rate", "--rate"),
            ("--workers --thresholds", "--thresholds"),
            ("--workers --timeout", "--timeout"),
            ("--workers -t 192.0.2.1:80", "-t"),
            ("--workers -u 192.0.2.1:53", "-u"),
        ] {
            let a = parse(&format!("ironvsadm {line}"));
            assert_eq!(a.command().unwrap(), Cmd::List, "{line}");
            assert_eq!(a.workers_listing().unwrap_err(), clash(opt), "{line}");
        }
        for (line, opt) in [
            ("-Z --workers", "-Z"),
            ("-C --workers", "-C"),
            ("--workers --get-laddr", "--get-laddr"),
        ] {
            let a = parse(&format!("ironvsadm {line}"));
            assert_eq!(a.command().unwrap_err(), clash(opt), "{line}");
        }
        let a = parse("ironvsadm --workers -Z -L");
        assert_eq!(a.command().unwrap_err(), "multiple commands specified");
        // A long option only: no short form, and no argument.
        let e = Args::try_parse_from(["ironvsadm", "-W"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
        let e = Args::try_parse_from(["ironvsadm", "--workers=1"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::TooManyValues);
    }
}
