//! The Grafana dashboard in `deploy/grafana/` must keep matching what `/metrics` exports.
//!
//! Every `ironvs_*` metric named in a panel query or a templating query must appear in
//! [`control_api::metrics::render`]'s output, and every label it is matched on, grouped by or
//! shown in a legend must be one that metric (or, for `by`/legend, one metric of the query)
//! carries. Literal matcher values (`event="new"`, `event=~"expired|reused"`) must be values the
//! metric really takes. Renaming a metric or a label in `metrics.rs` therefore fails this test
//! until the dashboard follows.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use control_api::{
    Config, ConnTableStats, Counters, PortStats, RealServerStats, ServiceStats, StatsSnapshot,
    WorkerStats,
};
use dataplane::flow::Proto;
use dataplane::model::{
    FwdMode, RealServer, RealServerKey, SchedulerKind, Service, ServiceFlags, ServiceKey,
};
use serde_json::Value;

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/grafana/ironvs-dashboard.json"
);

/// Labels Prometheus adds to every scraped series (target labels), absent from `/metrics`.
const TARGET_LABELS: &[&str] = &["instance", "job"];

/// Metric name -> label name -> values seen.
type Families = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// `/metrics` text for a configuration and snapshot where every metric family has a series.
fn rendered() -> String {
    let key = ServiceKey {
        proto: Proto::Tcp,
        vip: "192.0.2.100".parse().unwrap(),
        port: 80,
    };
    let rk = RealServerKey {
        addr: "192.0.2.10".parse().unwrap(),
        port: 8080,
    };
    let mut cfg = Config::default();
    cfg.add_service(
        Service {
            key,
            scheduler: SchedulerKind::Wlc,
            persistence: None,
            flags: ServiceFlags::default(),
        },
        vec![RealServer {
            key: rk,
            weight: 1,
            mode: FwdMode::Nat,
            upper_threshold: 0,
            lower_threshold: 0,
        }],
    )
    .unwrap();
    let c = Counters {
        conns: 1,
        inpkts: 1,
        outpkts: 1,
        inbytes: 1,
        outbytes: 1,
    };
    let snap = StatsSnapshot {
        services: vec![ServiceStats {
            key,
            counters: c,
            real_servers: vec![RealServerStats {
                key: rk,
                counters: c,
                active_conns: 1,
                inactive_conns: 1,
            }],
        }],
        workers: vec![WorkerStats {
            worker: 0,
            drops: [("no_service".to_string(), 1)].into(),
            ..WorkerStats::default()
        }],
        ports: vec![PortStats::default()],
        conn_table: ConnTableStats {
            entries: 1,
            capacity: 2,
        },
    };
    control_api::metrics::render(&cfg, &snap).unwrap()
}

/// Splits `name{a="x",b="y"} 1` lines into families with their labels and values.
fn families(text: &str) -> Families {
    let mut out = Families::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = line.find(['{', ' ']).unwrap();
        let fam = out.entry(line[..end].to_string()).or_default();
        if line[end..].starts_with('{') {
            let close = line.rfind('}').unwrap();
            for (k, v) in matchers(&line[end + 1..close]) {
                fam.entry(k).or_default().insert(v.1);
            }
        }
    }
    out
}

/// Parses `k="v", k2=~"a|b"` into (key, (operator, value)); quoted values may hold commas.
fn matchers(s: &str) -> Vec<(String, (String, String))> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let op_at = rest
            .find(['=', '!'])
            .expect("label matcher without operator");
        let key = rest[..op_at].trim().to_string();
        let after = &rest[op_at..];
        let op_len =
            if after.starts_with("=~") || after.starts_with("!=") || after.starts_with("!~") {
                2
            } else {
                1
            };
        let op = after[..op_len].to_string();
        let quoted = after[op_len..].trim_start();
        assert!(quoted.starts_with('"'), "unquoted label value in {s}");
        let mut value = String::new();
        let mut chars = quoted[1..].char_indices();
        let mut consumed = None;
        while let Some((i, ch)) = chars.next() {
            match ch {
                '\\' => value.extend(chars.next().map(|(_, c)| c)),
                '"' => {
                    consumed = Some(i + 2);
                    break;
                }
                _ => value.push(ch),
            }
        }
        let consumed = consumed.unwrap_or_else(|| panic!("unterminated label value in {s}"));
        out.push((key, (op, value)));
        rest = quoted[consumed..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    out
}

/// A metric reference in a query: its name and its `{...}` matchers.
struct Use {
    name: String,
    matchers: Vec<(String, (String, String))>,
}

/// Every `ironvs_[a-z_]+` name in `expr`, with the selector that follows it, if any.
fn uses(expr: &str) -> Vec<Use> {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = expr[i..].find("ironvs_").map(|p| p + i) {
        let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
        if at > 0 && ident(b[at - 1]) {
            i = at + 1;
            continue;
        }
        let mut end = at;
        while end < b.len() && ident(b[end]) {
            end += 1;
        }
        let mut ms = Vec::new();
        if expr[end..].starts_with('{') {
            let close = end + expr[end..].find('}').expect("unclosed selector");
            ms = matchers(&expr[end + 1..close]);
            i = close + 1;
        } else {
            i = end;
        }
        out.push(Use {
            name: expr[at..end].to_string(),
            matchers: ms,
        });
    }
    out
}

/// Labels named in `by (...)` / `without (...)` clauses and `{{label}}` legend placeholders.
fn grouping_labels(expr: &str, legend: &str) -> Vec<String> {
    let mut out = Vec::new();
    for kw in ["by", "without"] {
        let mut rest = expr;
        while let Some(p) = rest.find(kw) {
            let before_ok = p == 0 || !rest.as_bytes()[p - 1].is_ascii_alphanumeric();
            let tail = rest[p + kw.len()..].trim_start();
            if before_ok && tail.starts_with('(') {
                let close = tail.find(')').unwrap();
                out.extend(
                    tail[1..close]
                        .split(',')
                        .map(|l| l.trim().to_string())
                        .filter(|l| !l.is_empty()),
                );
            }
            rest = &rest[p + kw.len()..];
        }
    }
    let mut rest = legend;
    while let Some(p) = rest.find("{{") {
        let close = rest[p..].find("}}").unwrap() + p;
        out.push(rest[p + 2..close].trim().to_string());
        rest = &rest[close + 2..];
    }
    out
}

/// (where, expr, legend) for every panel target and templating query.
fn queries(dash: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("target without expr").to_string();
            let legend = t["legendFormat"].as_str().unwrap_or("").to_string();
            out.push((format!("panel {} {}", p["id"], p["title"]), expr, legend));
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        let def = v["definition"].as_str().unwrap();
        assert_eq!(
            v["query"]["query"].as_str(),
            Some(def),
            "variable {}",
            v["name"]
        );
        // label_values(selector, label): the label must be on the selector's metric.
        let label = def
            .trim_end_matches(')')
            .rsplit(',')
            .next()
            .unwrap()
            .trim()
            .to_string();
        out.push((format!("variable {}", v["name"]), def.to_string(), label));
    }
    out
}

/// Everything wrong with the dashboard's queries against the rendered metrics, one line each.
fn problems(dash: &Value, fams: &Families) -> Vec<String> {
    let mut bad = Vec::new();
    for (place, expr, legend) in queries(dash) {
        let us = uses(&expr);
        if us.is_empty() {
            bad.push(format!("{place}: no ironvs_ metric in {expr}"));
        }
        for u in &us {
            let Some(labels) = fams.get(&u.name) else {
                bad.push(format!("{place}: metric {} is not exported", u.name));
                continue;
            };
            for (key, (op, value)) in &u.matchers {
                if TARGET_LABELS.contains(&key.as_str()) {
                    continue;
                }
                let Some(values) = labels.get(key) else {
                    bad.push(format!("{place}: {} has no label {key}", u.name));
                    continue;
                };
                // Literal values (no template variable) must be values the metric takes.
                if value.contains('$') || op.starts_with('!') {
                    continue;
                }
                let wanted: Vec<&str> = if op == "=~" {
                    value.split('|').collect()
                } else {
                    vec![value.as_str()]
                };
                for w in wanted {
                    if !values.contains(w) {
                        bad.push(format!("{place}: {}{{{key}}} never takes {w:?}", u.name));
                    }
                }
            }
        }
        // Grouping and legend labels must be carried by at least one metric of the query.
        for l in grouping_labels(&expr, "").into_iter().chain(
            // A template's "legend" is the label_values label; a panel's, its placeholders.
            if place.starts_with("variable") {
                vec![legend.clone()]
            } else {
                grouping_labels("", &legend)
            },
        ) {
            let on_some = TARGET_LABELS.contains(&l.as_str())
                || us
                    .iter()
                    .any(|u| fams.get(&u.name).is_some_and(|f| f.contains_key(&l)));
            if !on_some {
                bad.push(format!("{place}: no metric of the query has label {l}"));
            }
        }
    }
    bad
}

fn load() -> Value {
    let text = std::fs::read_to_string(DASHBOARD).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

#[test]
fn test_dashboard_shape() {
    let dash = load();
    let panels = dash["panels"].as_array().expect("panels list");
    assert!(!panels.is_empty());
    let mut ids = HashSet::new();
    for p in panels {
        let id = p["id"].as_u64().expect("numeric panel id");
        assert!(ids.insert(id), "duplicate panel id {id}");
    }
    assert_eq!(dash["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(dash["__inputs"][0]["pluginId"], "prometheus");
    let vars: Vec<&str> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(vars, ["instance", "vip"]);
    // Rates follow the scrape interval, never a fixed window.
    for (place, expr, _) in queries(&dash) {
        if expr.contains("rate(") {
            assert!(expr.contains("[$__rate_interval]"), "{place}: {expr}");
        }
    }
}

#[test]
fn test_dashboard_queries_match_metrics() {
    let fams = families(&rendered());
    let bad = problems(&load(), &fams);
    assert!(bad.is_empty(), "dashboard out of date:\n{}", bad.join("\n"));
}

#[test]
fn test_checker_catches_misspelled_names() {
    let fams = families(&rendered());
    let mut dash = load();
    let good = dash["panels"][2]["targets"][0]["expr"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(good.contains("ironvs_worker_connections_total"), "{good}");
    for (from, to, why) in [
        (
            "ironvs_worker_connections_total",
            "ironvs_worker_conections_total",
            "is not exported",
        ),
        ("event=\"new\"", "evnt=\"new\"", "has no label evnt"),
        (
            "event=\"new\"",
            "event=\"created\"",
            "never takes \"created\"",
        ),
        ("(instance, worker)", "(instance, wrker)", "has label wrker"),
    ] {
        dash["panels"][2]["targets"][0]["expr"] = Value::String(good.replace(from, to));
        let bad = problems(&dash, &fams);
        assert!(
            bad.iter().any(|b| b.contains(why)),
            "{from} -> {to}: {bad:?}"
        );
    }
}
