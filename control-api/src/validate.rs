//! Validation of configuration values, with errors that name the field and say what to fix.
//!
//! Every function returns the value in canonical form (IPv4-mapped IPv6 addresses become IPv4,
//! a DR/TUN real-server port of 0 becomes the virtual port) so equal things compare equal.

use std::net::IpAddr;

use dataplane::flow::Proto;
use dataplane::model::{
    FwdMode, LocalAddr, Persistence, RealServer, Service, ServiceKey, Timeouts,
};

/// Why a configuration change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value is out of range or inconsistent (HTTP 422).
    #[error("{field}: {reason}")]
    Invalid {
        /// The offending field, as a JSON path (`real_servers[1].weight`).
        field: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// The object already exists (HTTP 409).
    #[error("{0} already exists")]
    Exists(String),
    /// The object does not exist (HTTP 404).
    #[error("{0} does not exist")]
    NotFound(String),
}

impl ConfigError {
    /// An invalid-value error.
    pub fn invalid(field: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    /// Prefixes the field of an invalid-value error with its parent's path.
    pub fn in_field(self, parent: &str) -> ConfigError {
        match self {
            ConfigError::Invalid { field, reason } => ConfigError::Invalid {
                field: format!("{parent}.{field}"),
                reason,
            },
            other => other,
        }
    }
}

/// Longest persistence timeout accepted, seconds (31 days).
pub const MAX_PERSISTENCE_TIMEOUT: u32 = 31 * 24 * 3600;
/// Longest protocol timeout accepted, seconds (31 days).
pub const MAX_TIMEOUT: u32 = 31 * 24 * 3600;

/// `tcp:192.0.2.1:80`, `udp:[2001:db8::1]:53`: a service's name in messages.
pub fn service_name(key: &ServiceKey) -> String {
    let proto = match key.proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    };
    format!("{proto}:{}", addr_port(key.vip, key.port))
}

/// `192.0.2.1:80` or `[2001:db8::1]:80`.
pub fn addr_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn unicast(field: &str, addr: IpAddr) -> Result<IpAddr, ConfigError> {
    let addr = addr.to_canonical();
    let bad = match addr {
        IpAddr::V4(a) => {
            if a.is_unspecified() {
                Some("the unspecified address 0.0.0.0")
            } else if a.is_multicast() {
                Some("a multicast address")
            } else if a.is_broadcast() {
                Some("the broadcast address")
            } else {
                None
            }
        }
        IpAddr::V6(a) => {
            if a.is_unspecified() {
                Some("the unspecified address ::")
            } else if a.is_multicast() {
                Some("a multicast address")
            } else {
                None
            }
        }
    };
    match bad {
        Some(what) => Err(ConfigError::invalid(
            field,
            format!("{addr} is {what}; a unicast address is required"),
        )),
        None => Ok(addr),
    }
}

/// The service key in canonical form (IPv4-mapped VIPs become IPv4).
pub fn service_key(key: ServiceKey) -> Result<ServiceKey, ConfigError> {
    Ok(ServiceKey {
        vip: unicast("vip", key.vip)?,
        ..key
    })
}

/// Checks a virtual service.
pub fn service(mut s: Service) -> Result<Service, ConfigError> {
    s.key = service_key(s.key)?;
    if let Some(p) = s.persistence {
        s.persistence = Some(persistence(s.key.vip, p)?);
    } else if s.key.port == 0 {
        return Err(ConfigError::invalid(
            "port",
            "port 0 (all ports) requires persistence",
        ));
    }
    if s.flags.one_packet && s.key.proto != Proto::Udp {
        return Err(ConfigError::invalid(
            "flags.one_packet",
            "one-packet scheduling applies to UDP services only",
        ));
    }
    Ok(s)
}

fn persistence(vip: IpAddr, p: Persistence) -> Result<Persistence, ConfigError> {
    if p.timeout == 0 || p.timeout > MAX_PERSISTENCE_TIMEOUT {
        return Err(ConfigError::invalid(
            "persistence.timeout",
            format!(
                "must be 1..={MAX_PERSISTENCE_TIMEOUT} seconds, got {}",
                p.timeout
            ),
        ));
    }
    let max = if vip.is_ipv4() { 32 } else { 128 };
    if p.prefix_len == 0 || p.prefix_len > max {
        return Err(ConfigError::invalid(
            "persistence.prefix_len",
            format!(
                "must be 1..={max} for an {} service, got {}",
                if vip.is_ipv4() { "IPv4" } else { "IPv6" },
                p.prefix_len
            ),
        ));
    }
    Ok(p)
}

/// Why one-packet scheduling excludes a mode: NAT and FullNAT rewrite replies through a
/// connection entry, and one-packet scheduling keeps none.
fn one_packet_excludes(mode: FwdMode) -> Option<String> {
    matches!(mode, FwdMode::Nat | FwdMode::FullNat).then(|| {
        format!(
            "one-packet scheduling keeps no connection, so the replies of {mode} mode could not \
             be rewritten; it works with dr and tun real servers only"
        )
    })
}

/// Checks a service's flags against the real servers it already has (`ipvsadm -E`): one-packet
/// scheduling is refused while a NAT or FullNAT real server is present.
pub fn service_with_reals<'a>(
    svc: &Service,
    reals: impl IntoIterator<Item = &'a RealServer>,
) -> Result<(), ConfigError> {
    if !svc.flags.one_packet {
        return Ok(());
    }
    for rs in reals {
        if let Some(reason) = one_packet_excludes(rs.mode) {
            return Err(ConfigError::invalid(
                "flags.one_packet",
                format!(
                    "{reason} (real server {} is {})",
                    addr_port(rs.key.addr, rs.key.port),
                    rs.mode
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a real server against the service it belongs to.
pub fn real_server(svc: &Service, mut rs: RealServer) -> Result<RealServer, ConfigError> {
    rs.key.addr = unicast("addr", rs.key.addr)?;
    if svc.flags.one_packet {
        if let Some(reason) = one_packet_excludes(rs.mode) {
            return Err(ConfigError::invalid(
                "mode",
                format!("{reason} (the service has flags.one_packet)"),
            ));
        }
    }
    if rs.weight > RealServer::MAX_WEIGHT {
        return Err(ConfigError::invalid(
            "weight",
            format!("must be 0..={}, got {}", RealServer::MAX_WEIGHT, rs.weight),
        ));
    }
    let vport = svc.key.port;
    match rs.mode {
        FwdMode::Dr | FwdMode::Tun => {
            if rs.key.port == 0 {
                rs.key.port = vport;
            }
            if rs.key.port != vport {
                return Err(ConfigError::invalid(
                    "port",
                    format!(
                        "must equal the virtual port {vport} (or be 0) in {} mode, which does \
                         not translate ports; got {}",
                        rs.mode, rs.key.port
                    ),
                ));
            }
        }
        FwdMode::Nat | FwdMode::FullNat => {
            if rs.key.port == 0 && vport != 0 {
                return Err(ConfigError::invalid(
                    "port",
                    format!("must be 1..=65535 in {} mode", rs.mode),
                ));
            }
        }
    }
    let same_family = rs.key.addr.is_ipv4() == svc.key.vip.is_ipv4();
    if !same_family && matches!(rs.mode, FwdMode::Dr | FwdMode::Nat) {
        return Err(ConfigError::invalid(
            "addr",
            format!(
                "{} is not of the virtual IP's family ({}); only tun and fullnat modes may mix \
                 IPv4 and IPv6",
                rs.key.addr, svc.key.vip
            ),
        ));
    }
    if rs.upper_threshold == 0 && rs.lower_threshold != 0 {
        return Err(ConfigError::invalid(
            "lower_threshold",
            "needs an upper_threshold (0 means no thresholds)",
        ));
    }
    if rs.lower_threshold > rs.upper_threshold {
        return Err(ConfigError::invalid(
            "lower_threshold",
            format!(
                "must not exceed upper_threshold {}, got {}",
                rs.upper_threshold, rs.lower_threshold
            ),
        ));
    }
    Ok(rs)
}

/// Checks a FullNAT local address.
pub fn laddr(l: LocalAddr) -> Result<LocalAddr, ConfigError> {
    Ok(LocalAddr {
        addr: unicast("addr", l.addr)?,
    })
}

/// Checks protocol timeouts: each 1..=[`MAX_TIMEOUT`] seconds.
pub fn timeouts(t: Timeouts) -> Result<Timeouts, ConfigError> {
    let fields = [
        ("tcp_established", t.tcp_established),
        ("tcp_fin_wait", t.tcp_fin_wait),
        ("udp", t.udp),
        ("tcp_syn_sent", t.tcp_syn_sent),
        ("tcp_syn_recv", t.tcp_syn_recv),
        ("tcp_time_wait", t.tcp_time_wait),
        ("tcp_close", t.tcp_close),
        ("tcp_close_wait", t.tcp_close_wait),
        ("tcp_last_ack", t.tcp_last_ack),
        ("tcp_listen", t.tcp_listen),
        ("tcp_syn_ack", t.tcp_syn_ack),
    ];
    for (name, v) in fields {
        if v == 0 || v > MAX_TIMEOUT {
            return Err(ConfigError::invalid(
                name,
                format!("must be 1..={MAX_TIMEOUT} seconds, got {v}"),
            ));
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::model::{RealServerKey, SchedulerKind, ServiceFlags};

    fn svc(vip: &str, port: u16) -> Service {
        Service {
            key: ServiceKey {
                proto: Proto::Tcp,
                vip: vip.parse().unwrap(),
                port,
            },
            scheduler: SchedulerKind::Rr,
            persistence: None,
            flags: ServiceFlags::default(),
        }
    }

    fn rs(addr: &str, port: u16, mode: FwdMode) -> RealServer {
        RealServer {
            key: RealServerKey {
                addr: addr.parse().unwrap(),
                port,
            },
            weight: 1,
            mode,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }

    fn field(e: ConfigError) -> String {
        match e {
            ConfigError::Invalid { field, .. } => field,
            other => panic!("not invalid: {other}"),
        }
    }

    #[test]
    fn test_service_rules() {
        assert_eq!(field(service(svc("0.0.0.0", 80)).unwrap_err()), "vip");
        assert_eq!(field(service(svc("224.0.0.1", 80)).unwrap_err()), "vip");
        assert_eq!(field(service(svc("192.0.2.1", 0)).unwrap_err()), "port");
        let mapped = service(svc("::ffff:192.0.2.1", 80)).unwrap();
        assert_eq!(mapped.key.vip, "192.0.2.1".parse::<IpAddr>().unwrap());
        let mut p = svc("192.0.2.1", 0);
        p.persistence = Some(Persistence {
            timeout: 300,
            prefix_len: 33,
        });
        assert_eq!(field(service(p).unwrap_err()), "persistence.prefix_len");
        let mut p6 = svc("2001:db8::1", 0);
        p6.persistence = Some(Persistence {
            timeout: 300,
            prefix_len: 64,
        });
        assert!(service(p6).is_ok());
        let mut op = svc("192.0.2.1", 80);
        op.flags.one_packet = true;
        assert_eq!(field(service(op).unwrap_err()), "flags.one_packet");
    }

    #[test]
    fn test_real_server_rules() {
        let s = svc("192.0.2.1", 80);
        let dr0 = real_server(&s, rs("10.0.0.1", 0, FwdMode::Dr)).unwrap();
        assert_eq!(dr0.key.port, 80);
        assert_eq!(
            field(real_server(&s, rs("10.0.0.1", 8080, FwdMode::Dr)).unwrap_err()),
            "port"
        );
        assert!(real_server(&s, rs("10.0.0.1", 8080, FwdMode::Nat)).is_ok());
        assert_eq!(
            field(real_server(&s, rs("10.0.0.1", 0, FwdMode::Nat)).unwrap_err()),
            "port"
        );
        assert_eq!(
            field(real_server(&s, rs("2001:db8::5", 80, FwdMode::Dr)).unwrap_err()),
            "addr"
        );
        assert!(real_server(&s, rs("2001:db8::5", 80, FwdMode::Tun)).is_ok());
        assert!(real_server(&s, rs("2001:db8::5", 8080, FwdMode::FullNat)).is_ok());
        let mut heavy = rs("10.0.0.1", 80, FwdMode::Dr);
        heavy.weight = 65536;
        assert_eq!(field(real_server(&s, heavy).unwrap_err()), "weight");
        let mut th = rs("10.0.0.1", 80, FwdMode::Dr);
        th.upper_threshold = 10;
        th.lower_threshold = 11;
        assert_eq!(field(real_server(&s, th).unwrap_err()), "lower_threshold");
        th.upper_threshold = 0;
        th.lower_threshold = 5;
        assert_eq!(field(real_server(&s, th).unwrap_err()), "lower_threshold");
    }

    #[test]
    fn test_one_packet_refuses_nat_and_fullnat() {
        let mut s = svc("192.0.2.1", 53);
        s.key.proto = Proto::Udp;
        s.flags.one_packet = true;
        let s = service(s).unwrap();
        assert!(real_server(&s, rs("10.0.0.1", 53, FwdMode::Dr)).is_ok());
        assert!(real_server(&s, rs("10.0.0.1", 53, FwdMode::Tun)).is_ok());
        for (mode, name) in [(FwdMode::Nat, "nat"), (FwdMode::FullNat, "fullnat")] {
            let e = real_server(&s, rs("10.0.0.1", 5353, mode)).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "mode: one-packet scheduling keeps no connection, so the replies of {name} \
                     mode could not be rewritten; it works with dr and tun real servers only \
                     (the service has flags.one_packet)"
                )
            );
        }
        let mut plain = s.clone();
        plain.flags.one_packet = false;
        assert!(real_server(&plain, rs("10.0.0.1", 5353, FwdMode::Nat)).is_ok());
        // Setting the flag on a service that has a NAT real server.
        let dr = rs("10.0.0.1", 53, FwdMode::Dr);
        let nat = rs("10.0.0.2", 5353, FwdMode::Nat);
        assert!(service_with_reals(&s, [&dr]).is_ok());
        assert!(service_with_reals(&plain, [&dr, &nat]).is_ok());
        let e = service_with_reals(&s, [&dr, &nat]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "flags.one_packet: one-packet scheduling keeps no connection, so the replies of nat \
             mode could not be rewritten; it works with dr and tun real servers only (real \
             server 10.0.0.2:5353 is nat)"
        );
    }

    #[test]
    fn test_timeouts_rules() {
        let mut t = Timeouts::default();
        assert!(timeouts(t).is_ok());
        t.tcp_fin_wait = 0;
        let e = timeouts(t).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tcp_fin_wait: must be 1..=2678400 seconds, got 0"
        );
    }
}
