//! ipvsadm's output layouts, column for column (ipvsadm 1.31 `print_title`,
//! `print_service_entry`, `print_largenum`, `print_conn`), always numeric.

use std::fmt::Write;
use std::net::IpAddr;

use control_api::api::dto::{ServiceStatsView, ServiceView, StatsView};
use control_api::ConnEntry;
use dataplane::flow::Proto;
use dataplane::model::{FwdMode, SchedulerKind};

use crate::args::prefix_to_mask;

/// Which listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Plain,
    Stats,
    Rate,
    Thresholds,
}

fn addr_port(a: IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn proto_upper(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "TCP",
        Proto::Udp => "UDP",
    }
}

fn proto_switch(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "-t",
        Proto::Udp => "-u",
    }
}

fn truncate(mut s: String, len: usize) -> String {
    s.truncate(len);
    s
}

fn svc_name(proto: Proto, vip: IpAddr, port: u16) -> String {
    let s = format!("{:<4} {}", proto_upper(proto), addr_port(vip, port));
    if vip.is_ipv4() {
        truncate(s, 33)
    } else {
        s
    }
}

fn dest_name(addr: IpAddr, port: u16) -> String {
    let s = addr_port(addr, port);
    if addr.is_ipv4() {
        truncate(s, 28)
    } else {
        s
    }
}

fn sched_flags(s: &ServiceView) -> String {
    let (fb, port) = match s.scheduler {
        SchedulerKind::Sh => ("sh-fallback", "sh-port"),
        SchedulerKind::Mh => ("mh-fallback", "mh-port"),
        _ => ("flag-1", "flag-2"),
    };
    let mut v = Vec::new();
    if s.flags.fallback {
        v.push(fb);
    }
    if s.flags.hash_port {
        v.push(port);
    }
    v.join(",")
}

fn mask_text(vip: IpAddr, prefix: u8) -> Option<String> {
    match vip {
        IpAddr::V4(_) if prefix != 32 => Some(prefix_to_mask(prefix).to_string()),
        IpAddr::V6(_) if prefix != 128 => Some(prefix.to_string()),
        _ => None,
    }
}

fn fwd_switch(m: FwdMode) -> &'static str {
    match m {
        FwdMode::Dr => "-g",
        FwdMode::Nat => "-m",
        FwdMode::Tun => "-i",
        FwdMode::FullNat => "--fullnat",
    }
}

/// `print_largenum`: 9 columns, scaled by K/M/G/T unless exact.
pub fn largenum(i: u64, exact: bool) -> String {
    if exact {
        let len = i.to_string().len();
        let w = if len <= 8 { 9 } else { len + 1 };
        return format!("{i:>w$}");
    }
    if i < 100_000_000 {
        format!("{i:>9}")
    } else if i < 1_000_000_000 {
        format!("{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        format!("{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        format!("{:>8}G", i / 1_000_000_000)
    } else {
        format!("{:>8}T", i / 1_000_000_000_000)
    }
}

/// The column titles.
pub fn title(fmt: Format) -> String {
    match fmt {
        Format::Stats => format!(
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        ),
        Format::Rate => format!(
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        ),
        Format::Thresholds => format!(
            "{:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        ),
        Format::Plain => {
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           \
                          Forward Weight ActiveConn InActConn\n"
                .to_string()
        }
    }
}

/// One service and its real servers in a listing.
pub fn service(s: &ServiceView, st: Option<&ServiceStatsView>, fmt: Format, exact: bool) -> String {
    let mut out = String::new();
    let name = svc_name(s.proto, s.vip, s.port);
    let conns = |addr: IpAddr, port: u16| {
        st.and_then(|st| {
            st.real_servers
                .iter()
                .find(|r| r.addr == addr && r.port == port)
        })
    };
    match fmt {
        Format::Stats | Format::Rate => {
            let _ = write!(out, "{name:<33}");
            if let Some(st) = st {
                let v = if fmt == Format::Stats {
                    let c = st.stats;
                    [c.conns, c.inpkts, c.outpkts, c.inbytes, c.outbytes]
                } else {
                    let r = st.rates;
                    [r.cps, r.inpps, r.outpps, r.inbps, r.outbps]
                };
                for n in v {
                    out.push_str(&largenum(n, exact));
                }
            }
        }
        Format::Thresholds => out.push_str(&name),
        Format::Plain => {
            let _ = write!(out, "{name} {}", s.scheduler);
            let flags = sched_flags(s);
            if !flags.is_empty() {
                let _ = write!(out, " ({flags})");
            }
            if let Some(p) = s.persistence {
                let _ = write!(out, " persistent {}", p.timeout);
                if let Some(m) = mask_text(s.vip, p.prefix_len) {
                    let _ = write!(out, " mask {m}");
                }
            }
            if s.flags.one_packet {
                out.push_str(" ops");
            }
        }
    }
    out.push('\n');
    for r in &s.real_servers {
        let d = dest_name(r.addr, r.port);
        let rs = conns(r.addr, r.port);
        let (act, inact) = rs.map_or((0, 0), |x| (x.active_conns, x.inactive_conns));
        match fmt {
            Format::Stats => {
                let _ = write!(out, "  -> {d:<28}");
                let c = rs.map(|x| x.stats).unwrap_or_default();
                for n in [c.conns, c.inpkts, c.outpkts, c.inbytes, c.outbytes] {
                    out.push_str(&largenum(n, exact));
                }
                out.push('\n');
            }
            Format::Rate => {
                let r = rs.map(|x| x.rates).unwrap_or_default();
                let _ = write!(
                    out,
                    "  -> {d:<28} {:>8} {:>8} {:>8}",
                    r.cps, r.inpps, r.outpps
                );
                out.push_str(&largenum(r.inbps, exact));
                out.push_str(&largenum(r.outbps, exact));
                out.push('\n');
            }
            Format::Thresholds => {
                let _ = writeln!(
                    out,
                    "  -> {d:<28} {:<10} {:<10} {:<10} {:<10}",
                    r.upper_threshold, r.lower_threshold, act, inact
                );
            }
            Format::Plain => {
                let _ = writeln!(
                    out,
                    "  -> {d:<28} {:<7} {:<6} {:<10} {:<10}",
                    r.mode.ipvsadm_word(),
                    r.weight,
                    act,
                    inact
                );
            }
        }
    }
    out
}

/// The whole table (`-L -n`, `--stats`, `--rate`, `--thresholds`).
pub fn listing(
    size: Option<u64>,
    services: &[ServiceView],
    stats: Option<&StatsView>,
    fmt: Format,
    exact: bool,
) -> String {
    let mut out = String::new();
    if let Some(size) = size {
        let _ = writeln!(out, "IP Virtual Server version 1.2.1 (size={size})");
    }
    out.push_str(&title(fmt));
    for s in services {
        let st = stats.and_then(|st| {
            st.services
                .iter()
                .find(|x| x.proto == s.proto && x.vip == s.vip && x.port == s.port)
        });
        out.push_str(&service(s, st, fmt, exact));
    }
    out
}

/// ipvsadm-save lines (`-S`); thresholds are appended as `-x`/`-y` when set.
pub fn rules(services: &[ServiceView]) -> String {
    let mut out = String::new();
    for s in services {
        let svc = format!("{} {}", proto_switch(s.proto), addr_port(s.vip, s.port));
        let _ = write!(out, "-A {svc} -s {}", s.scheduler);
        if let Some(p) = s.persistence {
            let _ = write!(out, " -p {}", p.timeout);
            if let Some(m) = mask_text(s.vip, p.prefix_len) {
                let _ = write!(out, " -M {m}");
            }
        }
        if s.flags.one_packet {
            out.push_str(" -o");
        }
        let flags = sched_flags(s);
        if !flags.is_empty() {
            let _ = write!(out, " -b {flags}");
        }
        out.push('\n');
        for r in &s.real_servers {
            let _ = write!(
                out,
                "-a {svc} -r {} {} -w {}",
                addr_port(r.addr, r.port),
                fwd_switch(r.mode),
                r.weight
            );
            if r.upper_threshold != 0 {
                let _ = write!(out, " -x {}", r.upper_threshold);
            }
            if r.lower_threshold != 0 {
                let _ = write!(out, " -y {}", r.lower_threshold);
            }
            out.push('\n');
        }
    }
    out
}

/// The connection listing (`-L -c`).
pub fn connections(conns: &[ConnEntry]) -> String {
    let mut out = String::from("IPVS connection entries\n");
    let _ = writeln!(
        out,
        "pro expire {:<11} {:<18} {:<18} destination",
        "state", "source", "virtual"
    );
    for c in conns {
        let expire = format!("{:02}:{:02}", c.expires_s / 60, c.expires_s % 60);
        let _ = writeln!(
            out,
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
            proto_upper(c.proto),
            expire,
            c.state,
            addr_port(c.client_addr, c.client_port),
            addr_port(c.vip, c.vport),
            addr_port(c.real_addr, c.real_port)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_largenum() {
        assert_eq!(largenum(12, false), "       12");
        assert_eq!(largenum(99_999_999, false), " 99999999");
        assert_eq!(largenum(123_456_789, false), "  123456K");
        assert_eq!(largenum(12_345_678_901, false), "   12345M");
        assert_eq!(largenum(123_456_789, true), " 123456789");
        assert_eq!(largenum(7, true), "        7");
    }

    #[test]
    fn test_titles_match_ipvsadm() {
        assert_eq!(
            title(Format::Stats),
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n"
        );
        assert_eq!(
            title(Format::Plain),
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        );
    }
}
