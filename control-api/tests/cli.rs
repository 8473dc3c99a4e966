//! `ironvsadm` golden output: the built binary against an in-process server with a
//! `MemoryDataplane`. Expected layouts were produced with ipvsadm's own printf formats.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use control_api::{
    ConnEntry, ControlPlane, Counters, Dataplane, MemoryDataplane, Options, RealServerStats,
    ServiceStats, WorkerStats,
};
use dataplane::flow::Proto;
use dataplane::model::{RealServerKey, ServiceKey};

struct Server {
    rt: tokio::runtime::Runtime,
    cp: Option<ControlPlane>,
    dp: Arc<MemoryDataplane>,
    url: String,
}

impl Server {
    fn start(token: Option<&str>, state_file: Option<PathBuf>) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dp = Arc::new(MemoryDataplane::new(4096));
        let opts = Options {
            listen: "127.0.0.1:0".parse().unwrap(),
            token: token.map(str::to_string),
            state_file,
        };
        let cp = rt.block_on(ControlPlane::start(opts, dp.clone())).unwrap();
        let url = format!("http://{}", cp.local_addr());
        Server {
            rt,
            cp: Some(cp),
            dp,
            url,
        }
    }

    fn adm(&self, args: &str) -> Output {
        self.adm_stdin(args, None)
    }

    fn adm_stdin(&self, args: &str, stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ironvsadm"))
            .args(args.split_whitespace())
            .env("IRONVS_API", &self.url)
            .env_remove("IRONVS_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &str) -> String {
        let o = self.adm(args);
        assert!(
            o.status.success(),
            "ironvsadm {args}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(cp) = self.cp.take() {
            let _ = self.rt.block_on(cp.shutdown());
        }
    }
}

fn lines(l: &[&str]) -> String {
    let mut s = l.join("\n");
    s.push('\n');
    s
}

const SETUP: &[&str] = &[
    "-A -t 192.0.2.10:80 -s wrr",
    "-a -t 192.0.2.10:80 -r 10.0.0.1:80 -g -w 3",
    "-a -t 192.0.2.10:80 -r 10.0.0.2:8080 -m",
    "-A -u 192.0.2.10:53 -s sh -b sh-fallback,sh-port -p 600 -M 255.255.255.0",
    "-a -u 192.0.2.10:53 -r 10.0.0.3 -i -w 2 -x 100 -y 50",
    "-A -t [2001:db8::10]:443 -s mh",
    "-a -t [2001:db8::10]:443 -r [2001:db8::20]:8443 --fullnat -w 5",
];

const SAVED: &[&str] = &[
    "-A -t 192.0.2.10:80 -s wrr",
    "-a -t 192.0.2.10:80 -r 10.0.0.1:80 -g -w 3",
    "-a -t 192.0.2.10:80 -r 10.0.0.2:8080 -m -w 1",
    "-A -t [2001:db8::10]:443 -s mh",
    "-a -t [2001:db8::10]:443 -r [2001:db8::20]:8443 --fullnat -w 5",
    "-A -u 192.0.2.10:53 -s sh -p 600 -M 255.255.255.0 -b sh-fallback,sh-port",
    "-a -u 192.0.2.10:53 -r 10.0.0.3:53 -i -w 2 -x 100 -y 50",
];

fn set_traffic(dp: &MemoryDataplane) {
    let c = |conns, inpkts, outpkts, inbytes, outbytes| Counters {
        conns,
        inpkts,
        outpkts,
        inbytes,
        outbytes,
    };
    let rs = |addr: &str, port, counters, active_conns, inactive_conns| RealServerStats {
        key: RealServerKey {
            addr: addr.parse().unwrap(),
            port,
        },
        counters,
        active_conns,
        inactive_conns,
    };
    let mut snap = dp.stats();
    snap.services = vec![ServiceStats {
        key: ServiceKey {
            proto: Proto::Tcp,
            vip: "192.0.2.10".parse().unwrap(),
            port: 80,
        },
        counters: c(12, 345, 300, 123_456_789, 98_765),
        real_servers: vec![
            rs("10.0.0.1", 80, c(7, 200, 180, 100_000_000, 50_000), 2, 1),
            rs("10.0.0.2", 8080, c(5, 145, 120, 23_456_789, 48_765), 0, 0),
        ],
    }];
    dp.set_stats(snap);
    let conn = |proto,
                client: &str,
                cport,
                vip: &str,
                vport,
                real: &str,
                rport,
                state: &str,
                expires_s| ConnEntry {
        proto,
        client_addr: client.parse().unwrap(),
        client_port: cport,
        vip: vip.parse().unwrap(),
        vport,
        local_addr: None,
        local_port: 0,
        real_addr: real.parse().unwrap(),
        real_port: rport,
        state: state.into(),
        expires_s,
    };
    dp.set_connections(vec![
        conn(
            Proto::Tcp,
            "198.51.100.7",
            40001,
            "192.0.2.10",
            80,
            "10.0.0.1",
            80,
            "ESTABLISHED",
            895,
        ),
        conn(
            Proto::Tcp,
            "2001:db8::99",
            40002,
            "2001:db8::10",
            443,
            "2001:db8::20",
            8443,
            "FIN_WAIT",
            61,
        ),
        conn(
            Proto::Udp,
            "198.51.100.8",
            5353,
            "192.0.2.10",
            53,
            "10.0.0.3",
            53,
            "UDP",
            299,
        ),
    ]);
}

#[test]
fn test_listings_golden() {
    let s = Server::start(None, None);
    for cmd in SETUP {
        s.ok(cmd);
    }
    set_traffic(&s.dp);
    let want_list = lines(&[
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        "TCP  192.0.2.10:80 wrr",
        "  -> 10.0.0.1:80                  Route   3      2          1         ",
        "  -> 10.0.0.2:8080                Masq    1      0          0         ",
        "TCP  [2001:db8::10]:443 mh",
        "  -> [2001:db8::20]:8443          FullNat 5      0          0         ",
        "UDP  192.0.2.10:53 sh (sh-fallback,sh-port) persistent 600 mask 255.255.255.0",
        "  -> 10.0.0.3:53                  Tunnel  2      0          0         ",
    ]);
    assert_eq!(s.ok("-L -n"), want_list);
    assert_eq!(s.ok("-Ln"), want_list);
    assert_eq!(s.ok(""), want_list, "no command lists, like ipvsadm");
    assert_eq!(
        s.ok("-L -n --stats"),
        lines(&[
            "IP Virtual Server version 1.2.1 (size=4096)",
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
            "  -> RemoteAddress:Port",
            "TCP  192.0.2.10:80                      12      345      300  123456K    98765",
            "  -> 10.0.0.1:80                         7      200      180  100000K    50000",
            "  -> 10.0.0.2:8080                       5      145      120 23456789    48765",
            "TCP  [2001:db8::10]:443                  0        0        0        0        0",
            "  -> [2001:db8::20]:8443                 0        0        0        0        0",
            "UDP  192.0.2.10:53                       0        0        0        0        0",
            "  -> 10.0.0.3:53                         0        0        0        0        0",
        ])
    );
    // Counters are constant, so every estimator sample sees a zero delta: rates are exactly 0.
    assert_eq!(
        s.ok("-L -n --rate"),
        lines(&[
            "IP Virtual Server version 1.2.1 (size=4096)",
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS",
            "  -> RemoteAddress:Port",
            "TCP  192.0.2.10:80                       0        0        0        0        0",
            "  -> 10.0.0.1:80                         0        0        0        0        0",
            "  -> 10.0.0.2:8080                       0        0        0        0        0",
            "TCP  [2001:db8::10]:443                  0        0        0        0        0",
            "  -> [2001:db8::20]:8443                 0        0        0        0        0",
            "UDP  192.0.2.10:53                       0        0        0        0        0",
            "  -> 10.0.0.3:53                         0        0        0        0        0",
        ])
    );
    assert_eq!(
        s.ok("-L -n -c"),
        lines(&[
            "IPVS connection entries",
            "pro expire state       source             virtual            destination",
            "TCP 14:55  ESTABLISHED 198.51.100.7:40001 192.0.2.10:80      10.0.0.1:80",
            "TCP 01:01  FIN_WAIT    [2001:db8::99]:40002 [2001:db8::10]:443 [2001:db8::20]:8443",
            "UDP 04:59  UDP         198.51.100.8:5353  192.0.2.10:53      10.0.0.3:53",
        ])
    );
    assert_eq!(
        s.ok("-L -n -t 192.0.2.10:80"),
        lines(&[
            "Prot LocalAddress:Port Scheduler Flags",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
            "TCP  192.0.2.10:80 wrr",
            "  -> 10.0.0.1:80                  Route   3      2          1         ",
            "  -> 10.0.0.2:8080                Masq    1      0          0         ",
        ])
    );
    assert_eq!(
        s.ok("-L --timeout"),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    s.ok("--set 0 60 30");
    assert_eq!(
        s.ok("-L --timeout"),
        "Timeout (tcp tcpfin udp): 900 60 30\n"
    );
}

#[test]
fn test_save_clear_restore_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let s = Server::start(None, Some(state.clone()));
    for cmd in SETUP {
        s.ok(cmd);
    }
    s.ok("--add-laddr -z 198.51.100.50");
    let saved = s.ok("-S -n");
    assert_eq!(saved, lines(SAVED));
    let before = s.dp.applied().unwrap();
    s.ok("-C");
    assert_eq!(s.ok("-S"), "");
    let o = s.adm_stdin("-R", Some(&saved));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(s.ok("-S"), saved);
    // Same configuration (slots may differ: they follow creation order).
    assert_eq!(
        control_api::persist::to_text(&s.dp.applied().unwrap()),
        control_api::persist::to_text(&before)
    );
    assert_eq!(s.ok("--get-laddr"), "LocalAddress\n198.51.100.50\n");

    // Edit and delete through the CLI, then restart from the state file.
    s.ok("-e -t 192.0.2.10:80 -r 10.0.0.1:80 -g -w 0");
    s.ok("-d -t 192.0.2.10:80 -r 10.0.0.2:8080");
    s.ok("-E -t 192.0.2.10:80 -s rr -p 60");
    s.ok("-D -u 192.0.2.10:53");
    let after = s.ok("-S");
    assert_eq!(
        after,
        lines(&[
            "-A -t 192.0.2.10:80 -s rr -p 60",
            "-a -t 192.0.2.10:80 -r 10.0.0.1:80 -g -w 0",
            "-A -t [2001:db8::10]:443 -s mh",
            "-a -t [2001:db8::10]:443 -r [2001:db8::20]:8443 --fullnat -w 5",
        ])
    );
    drop(s);
    let s2 = Server::start(None, Some(state));
    assert_eq!(s2.ok("-S"), after, "restart restores the saved state");
    assert_eq!(s2.ok("--get-laddr"), "LocalAddress\n198.51.100.50\n");
}

#[test]
fn test_restore_error_names_line() {
    let s = Server::start(None, None);
    let o = s.adm_stdin(
        "-R",
        Some("-A -t 192.0.2.10:80 -s rr\n\n-A -t 192.0.2.11:80 -s bogus\n"),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.starts_with("ironvsadm: line 3: scheduler: unknown variant `bogus`"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    assert_eq!(s.ok("-S"), "-A -t 192.0.2.10:80 -s rr\n");
}

#[test]
fn test_errors_one_line_and_exit_codes() {
    let s = Server::start(Some("tok"), None);
    let fail = |o: Output, code: i32, starts: &str| {
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(o.status.code(), Some(code), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(starts), "{err}");
    };
    fail(
        s.adm("-A -t 192.0.2.10:80 -s rr"),
        1,
        "ironvsadm: this request changes state",
    );
    fail(
        s.adm("-A -t 192.0.2.10:80 -s rr --token wrong"),
        1,
        "ironvsadm: this request changes state",
    );
    s.ok("-A -t 192.0.2.10:80 -s rr --token tok");
    fail(
        s.adm("-A -t 192.0.2.10:80 -s rr --token tok"),
        1,
        "ironvsadm: service tcp:192.0.2.10:80 already exists",
    );
    fail(
        s.adm("-a -t 192.0.2.10:80 -r 10.0.0.1:8080 -g --token tok"),
        1,
        "ironvsadm: port: must equal the virtual port 80",
    );
    fail(
        s.adm("-A -t 192.0.2.10:80 --bogus"),
        2,
        "ironvsadm: unexpected argument",
    );
    fail(
        s.adm("-A -t 192.0.2.10:99999"),
        2,
        "ironvsadm: invalid port",
    );
    fail(s.adm("-A -s rr"), 2, "ironvsadm: a service must be given");
    fail(s.adm("-C -L"), 2, "ironvsadm: multiple commands specified");
    fail(
        s.adm("-D -t 192.0.2.99:80 --token tok"),
        1,
        "ironvsadm: service tcp:192.0.2.99:80 does not exist",
    );
    let o = Command::new(env!("CARGO_BIN_EXE_ironvsadm"))
        .args(["-L", "-n", "--server", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    fail(
        o,
        1,
        "ironvsadm: cannot reach the IronVS API at http://127.0.0.1:1",
    );
}

#[test]
fn test_classic_howto_lines() {
    let s = Server::start(None, None);
    for sched in ["rr", "wrr", "lc", "wlc", "sh", "dh", "sed", "nq"] {
        s.ok("-C");
        s.ok(&format!("-A -t 192.0.2.10:80 -s {sched}"));
        s.ok("-a -t 192.0.2.10:80 -r 10.0.0.1:80 -g -w 1");
        s.ok("-a -t 192.0.2.10:80 -r 10.0.0.2:80 -m -w 2");
        s.ok("-a -t 192.0.2.10:80 -r 10.0.0.3:80 -i -w 3");
        let listing = s.ok("-L -n --stats");
        assert_eq!(listing.lines().count(), 3 + 1 + 3, "{listing}");
    }
}

#[test]
fn test_zero_counters() {
    let s = Server::start(Some("tok"), None);
    for cmd in SETUP {
        s.ok(&format!("{cmd} --token tok"));
    }
    set_traffic(&s.dp);
    let stats = |s: &Server| s.ok("-L -n --stats");
    let header = [
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
        "  -> RemoteAddress:Port",
    ];
    let zeroed = |svc: &str| format!("{svc:<33} {:>8} {:>8} {:>8} {:>8} {:>8}", 0, 0, 0, 0, 0);
    let v6 = [
        zeroed("TCP  [2001:db8::10]:443"),
        zeroed("  -> [2001:db8::20]:8443"),
        zeroed("UDP  192.0.2.10:53"),
        zeroed("  -> 10.0.0.3:53"),
    ];

    // A change: without the token the API refuses it and nothing is zeroed.
    let o = s.adm("-Z -t 192.0.2.10:80");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("ironvsadm: this request changes state"));
    assert!(stats(&s).contains("TCP  192.0.2.10:80                      12      345"));

    // One service: silent, exit 0, that service and its real servers read 0, the others stay.
    let o = s.adm("-Z -t 192.0.2.10:80 --token tok");
    assert_eq!(
        (o.status.code(), o.stdout.as_slice(), o.stderr.as_slice()),
        (Some(0), &b""[..], &b""[..])
    );
    let mut want: Vec<String> = header.iter().map(|l| l.to_string()).collect();
    want.extend([
        zeroed("TCP  192.0.2.10:80"),
        zeroed("  -> 10.0.0.1:80"),
        zeroed("  -> 10.0.0.2:8080"),
    ]);
    want.extend(v6.iter().cloned());
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_eq!(stats(&s), lines(&want));
    // /metrics keeps the raw totals.
    let metrics = ureq::get(&format!("{}/metrics", s.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains(
            r#"ironvs_service_connections_total{port="80",proto="tcp",vip="192.0.2.10"} 12"#
        ),
        "{metrics}"
    );

    // Traffic after zeroing counts from zero.
    let mut snap = s.dp.stats();
    snap.services[0].counters.conns += 3;
    snap.services[0].real_servers[1].counters.inpkts += 10;
    s.dp.set_stats(snap);
    let listing = stats(&s);
    assert!(
        listing.contains(&format!("{:<33} {:>8} {:>8}", "TCP  192.0.2.10:80", 3, 0)),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("{:<33} {:>8} {:>8}", "  -> 10.0.0.2:8080", 0, 10)),
        "{listing}"
    );

    // All services, in the long form too.
    s.ok("--zero --token tok");
    let mut want: Vec<String> = header.iter().map(|l| l.to_string()).collect();
    want.extend([
        zeroed("TCP  192.0.2.10:80"),
        zeroed("  -> 10.0.0.1:80"),
        zeroed("  -> 10.0.0.2:8080"),
    ]);
    want.extend(v6.iter().cloned());
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_eq!(stats(&s), lines(&want));
    s.ok("-Z -u 192.0.2.10:53 --token tok");

    // Unknown service: ipvsadm's message, exit 1; -f (no fwmark services): a usage error.
    let o = s.adm("-Z -t 192.0.2.99:80 --token tok");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(o.stderr).unwrap(),
        "ironvsadm: No such service\n"
    );
    let o = s.adm("-Z -f 1 --token tok");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("ironvsadm: unexpected argument '-f'"));
    let o = s.adm("-Z -t 192.0.2.10:80 -u 192.0.2.10:53 --token tok");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn test_workers_listing() {
    let s = Server::start(None, None);
    let title = "Worker   RxPkts   TxPkts  FwdPkts KernPkts    Drops NewConns  ConnTab Neigh(R/P)     Held DropReasons";
    assert_eq!(
        s.ok("--workers"),
        lines(&[title]),
        "no workers: the title only"
    );
    let mut snap = s.dp.stats();
    snap.workers = vec![
        WorkerStats {
            worker: 0,
            rx_packets: 5000,
            tx_packets: 4990,
            drops: [("no_service".into(), 0), ("tx_full".into(), 0)].into(),
            new_connections: 40,
            forwarded_packets: 4900,
            kernel_packets: 90,
            neighbour_entries: 2,
            conn_table_entries: 38,
            ..WorkerStats::default()
        },
        WorkerStats {
            worker: 1,
            rx_packets: 250_000_000,
            tx_packets: 240_000_000,
            drops: [("hold_full".into(), 3), ("no_service".into(), 9_000_000)].into(),
            new_connections: 7_000_000,
            forwarded_packets: 239_000_000,
            kernel_packets: 1_000_000,
            aliases_inbox_full: 2,
            neighbour_entries: 5,
            neighbour_pending_entries: 1,
            neighbour_held_packets: 3,
            conn_table_entries: 2_000_000,
            ..WorkerStats::default()
        },
    ];
    s.dp.set_stats(snap);
    let want = lines(&[
        title,
        "0          5000     4990     4900       90        0       40       38        2/0        0 -",
        "1       250000K  240000K  239000K  1000000  9000003  7000000  2000000        4/1        3 hold_full=3,no_service=9000000,aliases_inbox_full=2",
    ]);
    assert_eq!(s.ok("--workers"), want);
    assert_eq!(s.ok("-L -n --workers"), want);
    assert_eq!(
        s.ok("-Ln --workers --exact").lines().nth(2),
        Some("1      250000000 240000000 239000000  1000000  9000003  7000000  2000000        4/1        3 hold_full=3,no_service=9000000,aliases_inbox_full=2")
    );

    // Usage errors (exit 2) and an unreachable API (exit 1), as for the other listings.
    let unreachable = "ironvsadm: cannot reach the IronVS API at http://127.0.0.1:1";
    for (args, code, err) in [
        (
            "--workers --stats",
            2,
            "ironvsadm: --workers cannot be combined with --stats\n",
        ),
        (
            "-Z --workers",
            2,
            "ironvsadm: --workers cannot be combined with -Z\n",
        ),
        ("--workers -W", 2, "ironvsadm: unexpected argument '-W'"),
        ("--workers --server http://127.0.0.1:1", 1, unreachable),
    ] {
        let o = s.adm(args);
        let stderr = String::from_utf8(o.stderr).unwrap();
        assert_eq!((o.status.code(), o.stdout.len()), (Some(code), 0), "{args}");
        assert!(stderr.starts_with(err), "{args}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args}: {stderr}");
    }
}
