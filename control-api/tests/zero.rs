//! `ipvsadm -Z` over REST: `POST /api/v1/stats/zero` and `POST .../stats/zero` zero what the
//! statistics endpoints report (counters and rates) while `/metrics` keeps the raw totals.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use control_api::api::{self, AppState};
use control_api::{
    Counters, Dataplane, Estimator, MemoryDataplane, RealServerStats, ServiceStats, StatsSnapshot,
    Store,
};
use dataplane::flow::Proto;
use dataplane::model::{RealServerKey, ServiceKey};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Harness {
    app: Router,
    dp: Arc<MemoryDataplane>,
    store: Arc<Store>,
    rates: Arc<Mutex<Estimator>>,
}

fn harness(token: Option<&str>) -> Harness {
    let dp = Arc::new(MemoryDataplane::new(4096));
    let store = Arc::new(Store::open(None, dp.clone()).unwrap());
    let rates = Arc::new(Mutex::new(Estimator::default()));
    let app = api::router(AppState {
        store: store.clone(),
        rates: rates.clone(),
        token: token.map(Arc::from),
    });
    Harness {
        app,
        dp,
        store,
        rates,
    }
}

const WEB: &str = "/api/v1/services/tcp/192.0.2.10/80";
const DNS: &str = "/api/v1/services/udp/192.0.2.10/53";

impl Harness {
    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_auth(method, uri, body, None).await
    }

    async fn call_auth(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let v = if text.is_empty() || !text.starts_with(['{', '[']) {
            Value::String(text)
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, v)
    }

    async fn ok(&self, method: Method, uri: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method.clone(), uri, body).await;
        assert!(s.is_success(), "{method} {uri} -> {s} {v}");
        v
    }

    /// Two services (tcp :80 with two real servers, udp :53 with one).
    async fn setup(&self) {
        self.ok(
            Method::POST,
            "/api/v1/services",
            Some(json!({"proto": "tcp", "vip": "192.0.2.10", "port": 80, "scheduler": "rr",
                "real_servers": [{"addr": "10.0.0.1", "mode": "nat"}, {"addr": "10.0.0.2", "mode": "nat"}]})),
        )
        .await;
        self.ok(
            Method::POST,
            "/api/v1/services",
            Some(
                json!({"proto": "udp", "vip": "192.0.2.10", "port": 53, "scheduler": "rr",
                "real_servers": [{"addr": "10.0.0.3", "mode": "nat"}]}),
            ),
        )
        .await;
    }

    /// Sets the data plane's raw counters: each real server of web gets `web`, dns's gets
    /// `dns`, and a service the sum of its real servers.
    fn traffic(&self, web: u64, dns: u64) {
        let rs = |addr: &str, port, n| RealServerStats {
            key: RealServerKey {
                addr: addr.parse().unwrap(),
                port,
            },
            counters: counters(n),
            active_conns: 1,
            inactive_conns: 0,
        };
        let mut services = Vec::new();
        if web > 0 {
            services.push(ServiceStats {
                key: key(Proto::Tcp, 80),
                counters: counters(2 * web),
                real_servers: vec![rs("10.0.0.1", 80, web), rs("10.0.0.2", 80, web)],
            });
        }
        if dns > 0 {
            services.push(ServiceStats {
                key: key(Proto::Udp, 53),
                counters: counters(dns),
                real_servers: vec![rs("10.0.0.3", 53, dns)],
            });
        }
        self.dp.set_stats(StatsSnapshot {
            services,
            ..self.dp.stats()
        });
    }

    /// `(service counters, [real server counters])` of one service as `GET /api/v1/stats` shows.
    async fn shown(&self, proto: &str, port: u16) -> (Value, Vec<Value>) {
        let all = self.ok(Method::GET, "/api/v1/stats", None).await;
        let s = all["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["proto"] == proto && s["port"] == port)
            .unwrap()
            .clone();
        let one = self
            .ok(
                Method::GET,
                &format!("/api/v1/services/{proto}/192.0.2.10/{port}/stats"),
                None,
            )
            .await;
        assert_eq!(one, s, "both endpoints agree");
        let reals = s["real_servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["stats"].clone())
            .collect();
        (s["stats"].clone(), reals)
    }

    async fn metric(&self, line_prefix: &str) -> u64 {
        let (s, text) = self.call(Method::GET, "/metrics", None).await;
        assert_eq!(s, StatusCode::OK);
        let text = text.as_str().unwrap().to_string();
        let line = text
            .lines()
            .find(|l| l.starts_with(line_prefix))
            .unwrap_or_else(|| panic!("no {line_prefix} in {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }
}

fn key(proto: Proto, port: u16) -> ServiceKey {
    ServiceKey {
        proto,
        vip: "192.0.2.10".parse().unwrap(),
        port,
    }
}

fn counters(n: u64) -> Counters {
    Counters {
        conns: n,
        inpkts: 10 * n,
        outpkts: 8 * n,
        inbytes: 1000 * n,
        outbytes: 5000 * n,
    }
}

fn json_counters(n: u64) -> Value {
    serde_json::to_value(counters(n)).unwrap()
}

const WEB_PKTS_IN: &str =
    r#"ironvs_service_packets_total{direction="in",port="80",proto="tcp",vip="192.0.2.10"}"#;
const RS1_CONNS: &str = r#"ironvs_real_server_connections_total{port="80",proto="tcp",real_addr="10.0.0.1",real_port="80",vip="192.0.2.10"}"#;

#[tokio::test]
async fn test_zero_all_resets_stats_not_metrics() {
    let h = harness(None);
    h.setup().await;
    h.traffic(7, 3);
    assert_eq!(
        h.shown("tcp", 80).await,
        (json_counters(14), vec![json_counters(7), json_counters(7)])
    );
    assert_eq!(h.metric(WEB_PKTS_IN).await, 140);

    let (s, v) = h.call(Method::POST, "/api/v1/stats/zero", None).await;
    assert_eq!(
        (s, v),
        (StatusCode::NO_CONTENT, Value::String(String::new()))
    );
    let zero = json_counters(0);
    assert_eq!(
        h.shown("tcp", 80).await,
        (zero.clone(), vec![zero.clone(); 2])
    );
    assert_eq!(h.shown("udp", 53).await, (zero.clone(), vec![zero.clone()]));
    // Gauges are not counters: active connections are still reported.
    let one = h.ok(Method::GET, &format!("{WEB}/stats"), None).await;
    assert_eq!(one["active_conns"], 2);
    // Prometheus sees the raw, monotonic totals.
    assert_eq!(h.metric(WEB_PKTS_IN).await, 140);
    assert_eq!(h.metric(RS1_CONNS).await, 7);

    // Traffic after zeroing counts from zero.
    h.traffic(10, 5);
    assert_eq!(
        h.shown("tcp", 80).await,
        (json_counters(6), vec![json_counters(3), json_counters(3)])
    );
    assert_eq!(
        h.shown("udp", 53).await,
        (json_counters(2), vec![json_counters(2)])
    );
    assert_eq!(h.metric(WEB_PKTS_IN).await, 200);
    assert_eq!(h.metric(RS1_CONNS).await, 10);
    // Zeroing is not a configuration change.
    assert_eq!(h.dp.apply_count(), 3);
}

#[tokio::test]
async fn test_zero_one_service_leaves_others() {
    let h = harness(None);
    h.setup().await;
    h.traffic(7, 3);
    let (s, _) = h
        .call(Method::POST, &format!("{DNS}/stats/zero"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        h.shown("tcp", 80).await,
        (json_counters(14), vec![json_counters(7), json_counters(7)])
    );
    assert_eq!(
        h.shown("udp", 53).await,
        (json_counters(0), vec![json_counters(0)])
    );
    h.traffic(8, 4);
    assert_eq!(
        h.shown("tcp", 80).await,
        (json_counters(16), vec![json_counters(8), json_counters(8)])
    );
    assert_eq!(
        h.shown("udp", 53).await,
        (json_counters(1), vec![json_counters(1)])
    );
}

#[tokio::test]
async fn test_zero_unknown_service_is_404_and_changes_nothing() {
    let h = harness(None);
    h.setup().await;
    h.traffic(7, 3);
    let before = h.ok(Method::GET, "/api/v1/stats", None).await;
    let (s, v) = h
        .call(
            Method::POST,
            "/api/v1/services/tcp/192.0.2.99/80/stats/zero",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        v["detail"], "service tcp:192.0.2.99:80 does not exist",
        "{v}"
    );
    assert!(v["error"].is_string(), "{v}");
    let (s, v) = h
        .call(
            Method::POST,
            "/api/v1/services/sctp/192.0.2.10/80/stats/zero",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = h.call(Method::GET, "/api/v1/stats/zero", None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(h.ok(Method::GET, "/api/v1/stats", None).await, before);
    h.traffic(8, 4);
    assert_eq!(
        h.shown("udp", 53).await,
        (json_counters(4), vec![json_counters(4)]),
        "no zero point was recorded"
    );
}

#[tokio::test]
async fn test_recreated_service_starts_from_its_new_counters() {
    let h = harness(None);
    h.setup().await;
    h.traffic(7, 3);
    h.ok(Method::POST, "/api/v1/stats/zero", None).await;
    // Delete and re-add: the data plane counts the new service from 0 (here: 2 connections).
    h.ok(Method::DELETE, DNS, None).await;
    h.traffic(7, 0);
    h.ok(
        Method::POST,
        "/api/v1/services",
        Some(json!({"proto": "udp", "vip": "192.0.2.10", "port": 53,
            "real_servers": [{"addr": "10.0.0.3", "mode": "nat"}]})),
    )
    .await;
    h.traffic(7, 2);
    assert_eq!(
        h.shown("udp", 53).await,
        (json_counters(2), vec![json_counters(2)])
    );
    // Same for a real server deleted and re-added.
    h.ok(
        Method::DELETE,
        &format!("{WEB}/real-servers/10.0.0.1/80"),
        None,
    )
    .await;
    h.ok(
        Method::POST,
        &format!("{WEB}/real-servers"),
        Some(json!({"addr": "10.0.0.1", "mode": "nat"})),
    )
    .await;
    h.traffic(9, 2);
    // The service and 10.0.0.2 keep their zero point (14 and 7); 10.0.0.1 is new.
    assert_eq!(
        h.shown("tcp", 80).await,
        (json_counters(4), vec![json_counters(9), json_counters(2)])
    );
    // -C then re-adding everything forgets every zero point.
    h.ok(Method::DELETE, "/api/v1/services", None).await;
    h.setup().await;
    h.traffic(1, 1);
    assert_eq!(
        h.shown("tcp", 80).await,
        (json_counters(2), vec![json_counters(1), json_counters(1)])
    );
}

#[tokio::test]
async fn test_zero_resets_rates() {
    let h = harness(None);
    h.setup().await;
    for i in 0..40 {
        h.traffic(100 * i, 50 * i);
        let snap = h.dp.stats();
        h.rates.lock().unwrap().sample(&snap);
    }
    let web = h.ok(Method::GET, &format!("{WEB}/stats"), None).await;
    assert_eq!(web["rates"]["cps"], 100);
    assert_eq!(web["real_servers"][0]["rates"]["cps"], 50);
    h.ok(Method::POST, &format!("{WEB}/stats/zero"), None).await;
    let web = h.ok(Method::GET, &format!("{WEB}/stats"), None).await;
    let zero = json!({"cps": 0, "inpps": 0, "outpps": 0, "inbps": 0, "outbps": 0});
    assert_eq!(web["rates"], zero);
    assert_eq!(web["real_servers"][0]["rates"], zero);
    let dns = h.ok(Method::GET, &format!("{DNS}/stats"), None).await;
    assert_eq!(dns["rates"]["cps"], 25, "the other service keeps its rates");
    // The next sample measures from the zeroing point: one EWMA step from 0, like IPVS.
    h.traffic(100 * 40, 50 * 40);
    let snap = h.dp.stats();
    h.rates.lock().unwrap().sample(&snap);
    let web = h.ok(Method::GET, &format!("{WEB}/stats"), None).await;
    // 200 conns in 2 s: avg = (200 << 9) >> 2 = 25600, read (25600 + 511) >> 10 = 25.
    assert_eq!(web["rates"]["cps"], 25);
}

#[tokio::test]
async fn test_zero_needs_token() {
    let h = harness(Some("s3cret"));
    let (s, _) = h
        .call_auth(
            Method::POST,
            "/api/v1/services",
            Some(json!({"proto": "tcp", "vip": "192.0.2.10", "port": 80})),
            Some("s3cret"),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    h.traffic(7, 0);
    for uri in ["/api/v1/stats/zero", &format!("{WEB}/stats/zero")] {
        let (s, v) = h.call(Method::POST, uri, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    }
    assert_eq!(h.shown("tcp", 80).await.0, json_counters(14));
    let (s, _) = h
        .call_auth(Method::POST, "/api/v1/stats/zero", None, Some("s3cret"))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(h.shown("tcp", 80).await.0, json_counters(0));
    assert_eq!(h.store.current().service_count(), 1);
}
