//! REST API contract: every route, its status codes and bodies, and that refused requests change
//! no state. The router is driven in-process.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use control_api::api::{self, AppState};
use control_api::{
    ConnEntry, Counters, Dataplane, Estimator, MemoryDataplane, RealServerStats, ServiceStats,
    StatsSnapshot, Store,
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
}

fn harness(token: Option<&str>) -> Harness {
    let dp = Arc::new(MemoryDataplane::new(4096));
    let store = Arc::new(Store::open(None, dp.clone()).unwrap());
    let app = api::router(AppState {
        store: store.clone(),
        rates: Arc::new(Mutex::new(Estimator::default())),
        token: token.map(Arc::from),
    });
    Harness { app, dp, store }
}

impl Harness {
    async fn raw(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let body = body.map(|b| b.to_string());
        self.call_text(method, uri, body.as_deref()).await
    }

    async fn call_text(
        &self,
        method: Method,
        uri: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
            .unwrap();
        let (status, _, text) = self.raw(req).await;
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, v)
    }

    /// Asserts the request fails with `status`, names `field` (if given) and changes nothing.
    async fn refused(
        &self,
        method: Method,
        uri: &str,
        body: Option<&str>,
        status: StatusCode,
        field: Option<&str>,
    ) -> Value {
        let before = self.store.current();
        let applies = self.dp.apply_count();
        let (s, v) = self.call_text(method.clone(), uri, body).await;
        assert_eq!(s, status, "{method} {uri} {body:?} -> {v}");
        assert!(v["error"].is_string() && v["detail"].is_string(), "{v}");
        if let Some(f) = field {
            assert_eq!(v["field"], f, "{v}");
        }
        assert_eq!(
            *self.store.current(),
            *before,
            "state changed by refused request"
        );
        assert_eq!(self.dp.apply_count(), applies);
        v
    }
}

const SVC: &str = "/api/v1/services/tcp/192.0.2.10/80";

/// (request, expected status, expected field).
type Case<'a> = (
    (Method, &'a str, Option<&'a str>),
    StatusCode,
    Option<&'a str>,
);

async fn web_service(h: &Harness) {
    let (s, _) = h
        .call(
            Method::POST,
            "/api/v1/services",
            Some(json!({"proto": "tcp", "vip": "192.0.2.10", "port": 80, "scheduler": "wrr"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn test_service_crud() {
    let h = harness(None);
    let req = Request::post("/api/v1/services")
        .body(Body::from(
            json!({"proto": "tcp", "vip": "192.0.2.10", "port": 80, "scheduler": "wrr",
                   "real_servers": [{"addr": "10.0.0.1", "weight": 3}]})
            .to_string(),
        ))
        .unwrap();
    let (s, hdrs, body) = h.raw(req).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(hdrs[header::LOCATION], SVC);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        json!({"proto": "tcp", "vip": "192.0.2.10", "port": 80, "scheduler": "wrr",
               "persistence": null,
               "flags": {"fallback": false, "hash_port": false, "one_packet": false},
               "real_servers": [{"addr": "10.0.0.1", "port": 80, "weight": 3, "mode": "dr",
                                 "upper_threshold": 0, "lower_threshold": 0, "slot": 0}]})
    );
    assert_eq!(h.dp.applied().unwrap().service_count(), 1);

    let (s, list) = h.call(Method::GET, "/api/v1/services", None).await;
    assert_eq!((s, list.as_array().unwrap().len()), (StatusCode::OK, 1));
    let (s, one) = h.call(Method::GET, SVC, None).await;
    assert_eq!((s, &one), (StatusCode::OK, &v));

    let (s, put) = h
        .call(
            Method::PUT,
            SVC,
            Some(json!({"scheduler": "sh", "persistence": {"timeout": 600},
                        "flags": {"fallback": true}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(put["scheduler"], "sh");
    assert_eq!(
        put["persistence"],
        json!({"timeout": 600, "prefix_len": 32})
    );
    assert_eq!(put["flags"]["fallback"], true);
    assert_eq!(
        put["real_servers"][0]["weight"], 3,
        "PUT keeps real servers"
    );

    let (s, patched) = h
        .call(Method::PATCH, SVC, Some(json!({"persistence": null})))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(patched["persistence"], Value::Null);
    assert_eq!(patched["scheduler"], "sh", "PATCH keeps what is not given");

    let (s, _) = h.call(Method::DELETE, SVC, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    h.refused(Method::GET, SVC, None, StatusCode::NOT_FOUND, None)
        .await;
    h.refused(Method::DELETE, SVC, None, StatusCode::NOT_FOUND, None)
        .await;
}

#[tokio::test]
async fn test_ipv6_service_path() {
    let h = harness(None);
    let (s, v) = h
        .call(
            Method::POST,
            "/api/v1/services",
            Some(json!({"proto": "udp", "vip": "2001:db8::10", "port": 53,
                        "real_servers": [{"addr": "2001:db8::20", "mode": "nat", "port": 5353}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for path in [
        "/api/v1/services/udp/2001:db8::10/53",
        "/api/v1/services/UDP/[2001:db8::10]/53",
        "/api/v1/services/udp/2001:db8:0:0::10/53",
    ] {
        let (s, v) = h.call(Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert_eq!(v["vip"], "2001:db8::10");
    }
    let (s, rs) = h
        .call(
            Method::GET,
            "/api/v1/services/udp/2001:db8::10/53/real-servers/2001:db8::20/5353",
            None,
        )
        .await;
    assert_eq!((s, rs["port"].as_u64()), (StatusCode::OK, Some(5353)));
}

#[tokio::test]
async fn test_service_errors_change_nothing() {
    let h = harness(None);
    web_service(&h).await;
    let post = |b: &'static str| (Method::POST, "/api/v1/services", Some(b));
    let cases: Vec<Case> = vec![
        (post("{not json"), StatusCode::BAD_REQUEST, None),
        (post(""), StatusCode::BAD_REQUEST, None),
        (
            post(r#"{"proto":"tcp","vip":"192.0.2.10","port":80}"#),
            StatusCode::CONFLICT,
            None,
        ),
        (
            post(r#"{"proto":"tcp","vip":"192.0.2.11","port":70000}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("port"),
        ),
        (
            post(r#"{"proto":"sctp","vip":"192.0.2.11","port":80}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("proto"),
        ),
        (
            post(r#"{"proto":"tcp","vip":"192.0.2.300","port":80}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("vip"),
        ),
        (
            post(r#"{"proto":"tcp","vip":"0.0.0.0","port":80}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("vip"),
        ),
        (
            post(r#"{"proto":"tcp","vip":"192.0.2.11","port":80,"scheduler":"fast"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("scheduler"),
        ),
        (
            post(r#"{"proto":"tcp","vip":"192.0.2.11","port":80,"schedular":"rr"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("schedular"),
        ),
        (
            post(r#"{"proto":"tcp","vip":"192.0.2.11","port":0}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("port"),
        ),
        (
            post(r#"{"proto":"tcp","vip":"192.0.2.11","port":0,"persistence":{"prefix_len":40}}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("persistence.prefix_len"),
        ),
        (
            post(
                r#"{"proto":"tcp","vip":"192.0.2.11","port":80,"real_servers":[{"addr":"10.0.0.1"},{"addr":"10.0.0.2","weight":65536}]}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("real_servers[1].weight"),
        ),
        (
            post(r#"[1,2]"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("body"),
        ),
        (
            (Method::GET, "/api/v1/services/icmp/192.0.2.10/80", None),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            (Method::GET, "/api/v1/services/tcp/not-an-ip/80", None),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            (Method::GET, "/api/v1/services/tcp/192.0.2.10/65536", None),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            (Method::PUT, SVC, Some(r#"{"scheduler":"nope"}"#)),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("scheduler"),
        ),
        (
            (
                Method::PUT,
                "/api/v1/services/tcp/192.0.2.99/80",
                Some("{}"),
            ),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            (Method::PATCH, SVC, Some(r#"{"flags":{"one_packet":true}}"#)),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("flags.one_packet"),
        ),
        (
            (Method::PATCH, SVC, Some(r#"{"flags":7}"#)),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("flags"),
        ),
        (
            (Method::POST, SVC, Some("{}")),
            StatusCode::METHOD_NOT_ALLOWED,
            None,
        ),
        (
            (Method::GET, "/api/v1/nothing", None),
            StatusCode::NOT_FOUND,
            None,
        ),
    ];
    for ((m, uri, body), status, field) in cases {
        h.refused(m, uri, body, status, field).await;
    }
    let v = h
        .refused(
            Method::POST,
            "/api/v1/services",
            Some(r#"{"proto":"tcp","vip":"192.0.2.11","port":80,"real_servers":[{"addr":"10.0.0.2","weight":65536}]}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        )
        .await;
    assert_eq!(
        v,
        json!({"error": "invalid value", "field": "real_servers[0].weight",
               "detail": "real_servers[0].weight: must be 0..=65535, got 65536"})
    );
}

#[tokio::test]
async fn test_one_packet_refused_with_nat_both_ways() {
    let h = harness(None);
    let dns = "/api/v1/services/udp/192.0.2.53/53";
    let (s, _) = h
        .call(
            Method::POST,
            "/api/v1/services",
            Some(json!({"proto": "udp", "vip": "192.0.2.53", "port": 53,
                        "real_servers": [{"addr": "10.0.0.1", "port": 5353, "mode": "nat"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let v = h
        .refused(
            Method::PATCH,
            dns,
            Some(r#"{"flags":{"one_packet":true}}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("flags.one_packet"),
        )
        .await;
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("10.0.0.1:5353 is nat"),
        "{v}"
    );
    let (s, _) = h
        .call(
            Method::DELETE,
            &format!("{dns}/real-servers/10.0.0.1/5353"),
            None,
        )
        .await;
    assert!(s.is_success());
    let (s, v) = h
        .call(
            Method::PATCH,
            dns,
            Some(json!({"flags": {"one_packet": true}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    h.refused(
        Method::POST,
        &format!("{dns}/real-servers"),
        Some(r#"{"addr":"10.0.0.2","port":5353,"mode":"fullnat"}"#),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("mode"),
    )
    .await;
}

#[tokio::test]
async fn test_real_server_crud_and_errors() {
    let h = harness(None);
    web_service(&h).await;
    let rs_list = format!("{SVC}/real-servers");
    let (s, v) = h
        .call(
            Method::POST,
            &rs_list,
            Some(json!({"addr": "10.0.0.1", "weight": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["slot"], 0);
    let (s, v) = h
        .call(
            Method::POST,
            &rs_list,
            Some(json!({"addr": "10.0.0.2", "port": 8080, "mode": "nat",
                        "upper_threshold": 100, "lower_threshold": 50})),
        )
        .await;
    assert_eq!((s, v["slot"].as_u64()), (StatusCode::CREATED, Some(1)));
    let one = format!("{rs_list}/10.0.0.1/80");
    let (s, v) = h
        .call(Method::PATCH, &one, Some(json!({"weight": 0})))
        .await;
    assert_eq!(
        (s, v["weight"].as_u64(), v["slot"].as_u64()),
        (StatusCode::OK, Some(0), Some(0))
    );
    let (s, v) = h
        .call(Method::PUT, &one, Some(json!({"weight": 9, "mode": "tun"})))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["mode"], "tun");
    assert_eq!(v["weight"], 9);
    let (s, list) = h.call(Method::GET, &rs_list, None).await;
    assert_eq!((s, list.as_array().unwrap().len()), (StatusCode::OK, 2));

    let post = |b: &'static str| (Method::POST, rs_list.as_str(), Some(b));
    let cases: Vec<Case> = vec![
        (post(r#"{"addr":"10.0.0.1"}"#), StatusCode::CONFLICT, None),
        (
            post(r#"{"addr":"10.0.0.3","port":8080}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("port"),
        ),
        (
            post(r#"{"addr":"10.0.0.3","mode":"nat","port":0}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("port"),
        ),
        (
            post(r#"{"addr":"2001:db8::3"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("addr"),
        ),
        (
            post(r#"{"addr":"10.0.0.3","weight":-1}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("weight"),
        ),
        (
            post(r#"{"addr":"10.0.0.3","mode":"bridge"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("mode"),
        ),
        (
            post(r#"{"addr":"10.0.0.3","upper_threshold":5,"lower_threshold":6}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("lower_threshold"),
        ),
        (
            post(r#"{"addr":"224.0.0.5"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("addr"),
        ),
        (
            (
                Method::POST,
                "/api/v1/services/tcp/192.0.2.99/80/real-servers",
                Some(r#"{"addr":"10.0.0.3"}"#),
            ),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            (
                Method::PATCH,
                "/api/v1/services/tcp/192.0.2.10/80/real-servers/10.0.0.9/80",
                Some(r#"{"weight":1}"#),
            ),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            (
                Method::PATCH,
                "/api/v1/services/tcp/192.0.2.10/80/real-servers/10.0.0.1/80",
                Some(r#"{"weight":65536}"#),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("weight"),
        ),
        (
            (
                Method::PUT,
                "/api/v1/services/tcp/192.0.2.10/80/real-servers/10.0.0.2/8080",
                Some(r#"{"mode":"dr"}"#),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("port"),
        ),
        (
            (
                Method::GET,
                "/api/v1/services/tcp/192.0.2.10/80/real-servers/10.0.0.1/x",
                None,
            ),
            StatusCode::BAD_REQUEST,
            None,
        ),
    ];
    for ((m, uri, body), status, field) in cases {
        h.refused(m, uri, body, status, field).await;
    }
    let (s, _) = h.call(Method::DELETE, &one, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    h.refused(Method::DELETE, &one, None, StatusCode::NOT_FOUND, None)
        .await;
    let (s, v) = h
        .call(Method::POST, &rs_list, Some(json!({"addr": "10.0.0.7"})))
        .await;
    assert_eq!(
        (s, v["slot"].as_u64()),
        (StatusCode::CREATED, Some(0)),
        "freed slot reused"
    );
}

#[tokio::test]
async fn test_clear_laddrs_timeouts() {
    let h = harness(None);
    web_service(&h).await;
    let (s, v) = h
        .call(
            Method::POST,
            "/api/v1/laddrs",
            Some(json!({"addr": "198.51.100.1"})),
        )
        .await;
    assert_eq!(
        (s, v),
        (StatusCode::CREATED, json!({"addr": "198.51.100.1"}))
    );
    h.refused(
        Method::POST,
        "/api/v1/laddrs",
        Some(r#"{"addr":"198.51.100.1"}"#),
        StatusCode::CONFLICT,
        None,
    )
    .await;
    h.refused(
        Method::POST,
        "/api/v1/laddrs",
        Some(r#"{"addr":"ff02::1"}"#),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("addr"),
    )
    .await;
    h.refused(
        Method::DELETE,
        "/api/v1/laddrs/198.51.100.2",
        None,
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    h.refused(
        Method::DELETE,
        "/api/v1/laddrs/zzz",
        None,
        StatusCode::BAD_REQUEST,
        None,
    )
    .await;

    let (s, _) = h.call(Method::DELETE, "/api/v1/services", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, list) = h.call(Method::GET, "/api/v1/services", None).await;
    assert_eq!(list, json!([]));
    let (_, laddrs) = h.call(Method::GET, "/api/v1/laddrs", None).await;
    assert_eq!(
        laddrs,
        json!([{"addr": "198.51.100.1"}]),
        "-C keeps local addresses"
    );
    let (s, _) = h
        .call(Method::DELETE, "/api/v1/laddrs/198.51.100.1", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    let (s, mut t) = h.call(Method::GET, "/api/v1/timeouts", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            t["tcp_established"].as_u64(),
            t["tcp_fin_wait"].as_u64(),
            t["udp"].as_u64()
        ),
        (Some(900), Some(120), Some(300))
    );
    t["udp"] = json!(60);
    let (s, v) = h
        .call(Method::PUT, "/api/v1/timeouts", Some(t.clone()))
        .await;
    assert_eq!((s, &v), (StatusCode::OK, &t));
    let mut bad = t.clone();
    bad["tcp_fin_wait"] = json!(0);
    h.refused(
        Method::PUT,
        "/api/v1/timeouts",
        Some(&bad.to_string()),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("tcp_fin_wait"),
    )
    .await;
    h.refused(
        Method::PUT,
        "/api/v1/timeouts",
        Some(r#"{"udp":5}"#),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("body"),
    )
    .await;
}

fn key() -> ServiceKey {
    ServiceKey {
        proto: Proto::Tcp,
        vip: "192.0.2.10".parse().unwrap(),
        port: 80,
    }
}

#[tokio::test]
async fn test_stats_and_connections() {
    let h = harness(None);
    web_service(&h).await;
    h.call(
        Method::POST,
        &format!("{SVC}/real-servers"),
        Some(json!({"addr": "10.0.0.1"})),
    )
    .await;
    let c = Counters {
        conns: 5,
        inpkts: 50,
        outpkts: 40,
        inbytes: 5000,
        outbytes: 40000,
    };
    h.dp.set_stats(StatsSnapshot {
        services: vec![ServiceStats {
            key: key(),
            counters: c,
            real_servers: vec![RealServerStats {
                key: RealServerKey {
                    addr: "10.0.0.1".parse().unwrap(),
                    port: 80,
                },
                counters: c,
                active_conns: 2,
                inactive_conns: 1,
            }],
        }],
        ..h.dp.stats()
    });
    let (s, v) = h.call(Method::GET, &format!("{SVC}/stats"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["stats"],
        json!({"conns": 5, "inpkts": 50, "outpkts": 40, "inbytes": 5000, "outbytes": 40000})
    );
    assert_eq!(
        (v["active_conns"].as_u64(), v["inactive_conns"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(v["real_servers"][0]["stats"]["conns"], 5);
    assert_eq!(v["rates"]["cps"], 0);
    h.refused(
        Method::GET,
        "/api/v1/services/tcp/192.0.2.99/80/stats",
        None,
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    let (s, all) = h.call(Method::GET, "/api/v1/stats", None).await;
    assert_eq!(
        (s, all["conn_table"]["capacity"].as_u64()),
        (StatusCode::OK, Some(4096))
    );
    assert_eq!(all["services"][0], v);

    let conn = |client: &str, state: &str| ConnEntry {
        proto: Proto::Tcp,
        client_addr: client.parse().unwrap(),
        client_port: 1234,
        vip: "192.0.2.10".parse().unwrap(),
        vport: 80,
        local_addr: None,
        local_port: 0,
        real_addr: "10.0.0.1".parse().unwrap(),
        real_port: 80,
        state: state.into(),
        expires_s: 90,
    };
    h.dp.set_connections(
        (1..=5)
            .map(|i| {
                conn(
                    &format!("198.51.100.{i}"),
                    if i % 2 == 0 {
                        "FIN_WAIT"
                    } else {
                        "ESTABLISHED"
                    },
                )
            })
            .collect(),
    );
    let (s, v) = h
        .call(
            Method::GET,
            "/api/v1/connections?offset=1&limit=1&state=established",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            v["total"].as_u64(),
            v["offset"].as_u64(),
            v["limit"].as_u64()
        ),
        (Some(3), Some(1), Some(1))
    );
    assert_eq!(v["connections"][0]["client_addr"], "198.51.100.3");
    let (_, v) = h.call(Method::GET, "/api/v1/connections?client=198.51.100.2&vip=192.0.2.10&vport=80&proto=tcp&real=10.0.0.1&real_port=80", None).await;
    assert_eq!(v["total"], 1);
    let (_, v) = h.call(Method::GET, "/api/v1/connections", None).await;
    assert_eq!(
        (v["total"].as_u64(), v["limit"].as_u64()),
        (Some(5), Some(100))
    );
    for bad in [
        "limit=10001",
        "offset=-1",
        "client=nope",
        "proto=icmp",
        "color=red",
    ] {
        h.refused(
            Method::GET,
            &format!("/api/v1/connections?{bad}"),
            None,
            StatusCode::BAD_REQUEST,
            None,
        )
        .await;
    }
}

#[tokio::test]
async fn test_service_endpoints() {
    let h = harness(None);
    let (s, v) = h.call(Method::GET, "/api/v1/health", None).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"status": "ok"})));
    let (s, v) = h.call(Method::GET, "/api/v1/version", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (v["api"].as_str(), v["conn_table_size"].as_u64()),
        (Some("v1"), Some(4096))
    );
    let (s, v) = h.call(Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["openapi"].as_str().map(|s| &s[..2]), Some("3."));
    let req = Request::get("/metrics").body(Body::empty()).unwrap();
    let (s, hdrs, text) = h.raw(req).await;
    assert_eq!(s, StatusCode::OK);
    assert!(hdrs[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    assert!(text.contains("ironvs_conn_table_capacity 4096"), "{text}");
}

#[tokio::test]
async fn test_token_and_body_limit() {
    let h = harness(Some("s3cret"));
    let body = r#"{"proto":"tcp","vip":"192.0.2.10","port":80}"#;
    let v = h
        .refused(
            Method::POST,
            "/api/v1/services",
            Some(body),
            StatusCode::UNAUTHORIZED,
            None,
        )
        .await;
    assert_eq!(v["error"], "unauthorized");
    h.refused(
        Method::DELETE,
        "/api/v1/services",
        None,
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;
    let with = |tok: &str| {
        Request::post("/api/v1/services")
            .header(header::AUTHORIZATION, format!("Bearer {tok}"))
            .body(Body::from(body))
            .unwrap()
    };
    let (s, hdrs, _) = h.raw(with("wrong")).await;
    assert_eq!(
        (s, &hdrs[header::WWW_AUTHENTICATE]),
        (
            StatusCode::UNAUTHORIZED,
            &"Bearer".parse::<header::HeaderValue>().unwrap()
        )
    );
    assert_eq!(h.store.current().service_count(), 0);
    let (s, _, _) = h.raw(with("s3cret")).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = h.call(Method::GET, "/api/v1/services", None).await;
    assert_eq!(s, StatusCode::OK, "reads need no token");

    let big = format!(
        r#"{{"proto":"tcp","vip":"192.0.2.11","port":80,"pad":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let req = Request::post("/api/v1/services")
        .header(header::AUTHORIZATION, "Bearer s3cret")
        .body(Body::from(big))
        .unwrap();
    let (s, _, text) = h.raw(req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"], "payload too large");
    assert_eq!(h.store.current().service_count(), 1);
}

#[tokio::test]
async fn test_openapi_lists_every_route() {
    let h = harness(None);
    let (_, doc) = h.call(Method::GET, "/api/v1/openapi.json", None).await;
    let svc = "/api/v1/services/{proto}/{vip}/{port}";
    let rs = format!("{svc}/real-servers/{{addr}}/{{rport}}");
    let routes: Vec<(String, &str)> = vec![
        ("/api/v1/health".into(), "get"),
        ("/api/v1/version".into(), "get"),
        ("/api/v1/openapi.json".into(), "get"),
        ("/api/v1/services".into(), "get,post,delete"),
        (svc.into(), "get,put,patch,delete"),
        (format!("{svc}/stats"), "get"),
        (format!("{svc}/stats/zero"), "post"),
        (format!("{svc}/real-servers"), "get,post"),
        (rs, "get,put,patch,delete"),
        ("/api/v1/laddrs".into(), "get,post"),
        ("/api/v1/laddrs/{addr}".into(), "delete"),
        ("/api/v1/timeouts".into(), "get,put"),
        ("/api/v1/stats".into(), "get"),
        ("/api/v1/stats/zero".into(), "post"),
        ("/api/v1/connections".into(), "get"),
        ("/metrics".into(), "get"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), routes.len());
    for (path, methods) in &routes {
        let item = paths[path.as_str()]
            .as_object()
            .unwrap_or_else(|| panic!("{path} missing"));
        let mut have: Vec<&str> = item
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "parameters")
            .collect();
        let mut want: Vec<&str> = methods.split(',').collect();
        have.sort_unstable();
        want.sort_unstable();
        assert_eq!(have, want, "{path}");
        for m in want {
            let op = &item[m];
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{m} {path}"
            );
            if m != "get" && path.starts_with("/api") {
                assert!(op["responses"]["401"].is_object(), "{m} {path} lacks 401");
            }
        }
        // Each route exists on the router: a GET/DELETE with sample parameters is not 404 "no such route".
        let sample = path
            .replace("{proto}", "tcp")
            .replace("{vip}", "192.0.2.1")
            .replace("{port}", "80")
            .replace("{addr}", "10.0.0.1")
            .replace("{rport}", "80");
        let (_, v) = h.call(Method::OPTIONS, &sample, None).await;
        assert_ne!(v["detail"], "no such route", "{path} not routed");
    }
}
