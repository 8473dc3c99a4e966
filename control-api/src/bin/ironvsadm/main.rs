//! `ironvsadm`: ipvsadm's command line over the IronVS REST API.
//!
//! Exit status: 0 on success, 1 when the API refuses a change or cannot be reached, 2 for a
//! command line that does not parse (as ipvsadm). Errors are one line on stderr.

mod args;
mod client;
mod print;
mod workers;

use std::io::{self, BufRead, Write};
use std::net::IpAddr;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use control_api::api::dto::{
    ConnPageView, LaddrSpec, ServiceView, StatsView, TimeoutsDto, VersionView,
};
use control_api::api::MAX_CONN_PAGE;
use dataplane::flow::Proto;
use serde_json::{json, Value};

use args::{parse_addr_port, parse_netmask, Args, Cmd};
use client::Client;
use print::Format;

/// A failure and the exit status it maps to.
enum Fail {
    Usage(String),
    Runtime(String),
}

fn usage(msg: impl Into<String>) -> Fail {
    Fail::Usage(msg.into())
}

fn runtime(msg: String) -> Fail {
    Fail::Runtime(msg)
}

fn service_path(proto: Proto, vip: IpAddr, port: u16) -> String {
    let p = match proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    };
    format!("/api/v1/services/{p}/{vip}/{port}")
}

fn service_body(a: &Args) -> Result<Value, Fail> {
    let (_, vip, _) = a.need_service().map_err(usage)?;
    let (fallback, hash_port) = a.sched_flags().map_err(usage)?;
    let persistence = match a.persistent {
        Some(timeout) => {
            let prefix = match &a.netmask {
                Some(m) => parse_netmask(m).map_err(usage)?,
                None if vip.is_ipv4() => 32,
                None => 128,
            };
            json!({"timeout": timeout, "prefix_len": prefix})
        }
        None if a.netmask.is_some() => return Err(usage("-M requires -p")),
        None => Value::Null,
    };
    Ok(json!({
        "scheduler": a.scheduler.as_deref().unwrap_or("wlc"),
        "persistence": persistence,
        "flags": {"fallback": fallback, "hash_port": hash_port, "one_packet": a.ops},
    }))
}

fn real_server(a: &Args, vport: u16) -> Result<(IpAddr, u16), Fail> {
    let r = a
        .real
        .as_deref()
        .ok_or_else(|| usage("a real server must be given with -r ADDR[:PORT]"))?;
    parse_addr_port(r, Some(vport)).map_err(usage)
}

fn laddr(a: &Args) -> Result<IpAddr, Fail> {
    let z = a
        .laddr
        .as_deref()
        .ok_or_else(|| usage("a local address must be given with -z ADDR"))?;
    z.parse()
        .map_err(|_| usage(format!("invalid local address {z:?}")))
}

/// Runs one command; `out` receives what ipvsadm would print.
fn run(a: &Args, c: &Client, out: &mut String, in_restore: bool) -> Result<(), Fail> {
    let cmd = a.command().map_err(usage)?;
    if in_restore
        && matches!(
            cmd,
            Cmd::Restore | Cmd::Save | Cmd::List | Cmd::GetLaddr | Cmd::Version
        )
    {
        return Err(usage("only changes can be restored"));
    }
    match cmd {
        Cmd::AddService => {
            let (proto, vip, port) = a.need_service().map_err(usage)?;
            let mut body = service_body(a)?;
            body["proto"] = json!(proto);
            body["vip"] = json!(vip);
            body["port"] = json!(port);
            c.send("POST", "/api/v1/services", Some(&body))
                .map_err(runtime)?;
        }
        Cmd::EditService => {
            let (proto, vip, port) = a.need_service().map_err(usage)?;
            let body = service_body(a)?;
            c.send("PUT", &service_path(proto, vip, port), Some(&body))
                .map_err(runtime)?;
        }
        Cmd::DeleteService => {
            let (proto, vip, port) = a.need_service().map_err(usage)?;
            c.send("DELETE", &service_path(proto, vip, port), None)
                .map_err(runtime)?;
        }
        Cmd::Clear => {
            c.send("DELETE", "/api/v1/services", None)
                .map_err(runtime)?;
        }
        Cmd::AddServer | Cmd::EditServer => {
            let (proto, vip, port) = a.need_service().map_err(usage)?;
            let (raddr, rport) = real_server(a, port)?;
            let mut body = json!({
                "weight": a.weight.unwrap_or(1),
                "mode": a.mode().map_err(usage)?,
                "upper_threshold": a.upper.unwrap_or(0),
                "lower_threshold": a.lower.unwrap_or(0),
            });
            let svc = service_path(proto, vip, port);
            if cmd == Cmd::AddServer {
                body["addr"] = json!(raddr);
                body["port"] = json!(rport);
                c.send("POST", &format!("{svc}/real-servers"), Some(&body))
                    .map_err(runtime)?;
            } else {
                c.send(
                    "PUT",
                    &format!("{svc}/real-servers/{raddr}/{rport}"),
                    Some(&body),
                )
                .map_err(runtime)?;
            }
        }
        Cmd::DeleteServer => {
            let (proto, vip, port) = a.need_service().map_err(usage)?;
            let (raddr, rport) = real_server(a, port)?;
            let svc = service_path(proto, vip, port);
            c.send(
                "DELETE",
                &format!("{svc}/real-servers/{raddr}/{rport}"),
                None,
            )
            .map_err(runtime)?;
        }
        Cmd::Set => {
            let v = a.set.as_deref().unwrap_or_default();
            let mut t: TimeoutsDto = c.get("/api/v1/timeouts").map_err(runtime)?;
            for (slot, new) in [&mut t.tcp_established, &mut t.tcp_fin_wait, &mut t.udp]
                .into_iter()
                .zip(v)
            {
                if *new != 0 {
                    *slot = *new;
                }
            }
            let body = serde_json::to_value(t).map_err(|e| runtime(e.to_string()))?;
            c.send("PUT", "/api/v1/timeouts", Some(&body))
                .map_err(runtime)?;
        }
        Cmd::AddLaddr => {
            let body = json!({"addr": laddr(a)?});
            c.send("POST", "/api/v1/laddrs", Some(&body))
                .map_err(runtime)?;
        }
        Cmd::DelLaddr => {
            c.send("DELETE", &format!("/api/v1/laddrs/{}", laddr(a)?), None)
                .map_err(runtime)?;
        }
        Cmd::GetLaddr => {
            let l: Vec<LaddrSpec> = c.get("/api/v1/laddrs").map_err(runtime)?;
            out.push_str("LocalAddress\n");
            for x in l {
                out.push_str(&format!("{}\n", x.addr));
            }
        }
        Cmd::Version => {
            out.push_str(&format!(
                "ironvsadm v{} (ipvsadm 1.2.1 compatible)\n",
                env!("CARGO_PKG_VERSION")
            ));
        }
        Cmd::Save => {
            let s: Vec<ServiceView> = c.get("/api/v1/services").map_err(runtime)?;
            out.push_str(&print::rules(&filter(s, a)?));
        }
        Cmd::Zero => zero(a, c)?,
        Cmd::List => list(a, c, out)?,
        Cmd::Restore => restore(c, out)?,
    }
    Ok(())
}

fn filter(services: Vec<ServiceView>, a: &Args) -> Result<Vec<ServiceView>, Fail> {
    Ok(match a.service().map_err(usage)? {
        Some((proto, vip, port)) => {
            let vip = vip.to_canonical();
            let one: Vec<ServiceView> = services
                .into_iter()
                .filter(|s| s.proto == proto && s.vip == vip && s.port == port)
                .collect();
            if one.is_empty() {
                return Err(runtime("No such service".into()));
            }
            one
        }
        None => services,
    })
}

/// `-Z [-t|-u VIP:PORT]`: silent on success; an unknown service is "No such service", as
/// ipvsadm says.
fn zero(a: &Args, c: &Client) -> Result<(), Fail> {
    let path = match a.service().map_err(usage)? {
        Some((proto, vip, port)) => format!("{}/stats/zero", service_path(proto, vip, port)),
        None => "/api/v1/stats/zero".into(),
    };
    match c.request_status("POST", &path, None) {
        Ok(_) => Ok(()),
        // An API older than -Z has no such route: say so rather than blame the service.
        Err((Some(404), m)) if m == "no such route" => Err(runtime(format!(
            "the IronVS API at {} does not support -Z ({m})",
            a.server
        ))),
        Err((Some(404), _)) => Err(runtime("No such service".into())),
        Err((_, m)) => Err(runtime(m)),
    }
}

fn list(a: &Args, c: &Client, out: &mut String) -> Result<(), Fail> {
    if a.workers_listing().map_err(usage)? {
        let stats: StatsView = c.get("/api/v1/stats").map_err(runtime)?;
        out.push_str(&workers::listing(&stats.workers, a.exact));
        return Ok(());
    }
    if a.timeout {
        let t: TimeoutsDto = c.get("/api/v1/timeouts").map_err(runtime)?;
        out.push_str(&format!(
            "Timeout (tcp tcpfin udp): {} {} {}\n",
            t.tcp_established, t.tcp_fin_wait, t.udp
        ));
        return Ok(());
    }
    if a.connection {
        let mut conns = Vec::new();
        loop {
            let page: ConnPageView = c
                .get(&format!(
                    "/api/v1/connections?offset={}&limit={MAX_CONN_PAGE}",
                    conns.len()
                ))
                .map_err(runtime)?;
            let got = page.connections.len();
            conns.extend(page.connections);
            if got == 0 || conns.len() as u64 >= page.total {
                break;
            }
        }
        out.push_str(&print::connections(&conns));
        return Ok(());
    }
    let fmt = if a.stats {
        Format::Stats
    } else if a.rate {
        Format::Rate
    } else if a.thresholds {
        Format::Thresholds
    } else {
        Format::Plain
    };
    let services: Vec<ServiceView> = c.get("/api/v1/services").map_err(runtime)?;
    let one = a.service().map_err(usage)?.is_some();
    let services = filter(services, a)?;
    let stats: StatsView = c.get("/api/v1/stats").map_err(runtime)?;
    let size = if one {
        None
    } else {
        let v: VersionView = c.get("/api/v1/version").map_err(runtime)?;
        Some(v.conn_table_size)
    };
    out.push_str(&print::listing(size, &services, Some(&stats), fmt, a.exact));
    Ok(())
}

fn restore(c: &Client, out: &mut String) -> Result<(), Fail> {
    let stdin = io::stdin();
    for (i, line) in stdin.lock().lines().enumerate() {
        let line = line.map_err(|e| runtime(format!("reading stdin: {e}")))?;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let words = std::iter::once("ironvsadm").chain(trimmed.split_whitespace());
        let args = Args::try_parse_from(words)
            .map_err(|e| runtime(format!("line {}: {}", i + 1, first_line(&e.to_string()))))?;
        run(&args, c, out, true).map_err(|f| match f {
            Fail::Usage(m) | Fail::Runtime(m) => runtime(format!("line {}: {m}", i + 1)),
        })?;
    }
    Ok(())
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_string()
}

fn main() -> ExitCode {
    let a = match Args::try_parse() {
        Ok(a) => a,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ironvsadm: {}", first_line(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    let client = Client::new(&a.server, a.token.clone());
    let mut out = String::new();
    let res = run(&a, &client, &mut out, false);
    let _ = io::stdout().write_all(out.as_bytes());
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::Usage(m)) => {
            eprintln!("ironvsadm: {m}");
            ExitCode::from(2)
        }
        Err(Fail::Runtime(m)) => {
            eprintln!("ironvsadm: {m}");
            ExitCode::from(1)
        }
    }
}
