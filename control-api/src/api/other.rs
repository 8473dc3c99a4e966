//! Handlers for local addresses, timeouts, statistics, connections and service endpoints.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dataplane::flow::Proto;
use dataplane::model::{LocalAddr, ServiceKey};
use serde::Deserialize;

use super::dto::{
    ConnPageView, LaddrSpec, RealServerStatsView, ServiceStatsView, StatsView, TimeoutsDto,
    VersionView,
};
use super::extract::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::services::{service_key, SvcPath};
use super::AppState;
use crate::config::{Config, ServiceEntry};
use crate::dataplane::{ConnFilter, StatsSnapshot};
use crate::estimator::Estimator;
use crate::validate::{self, ConfigError};

/// Largest page of connections one request may ask for.
pub const MAX_CONN_PAGE: usize = 10_000;
/// Page size when none is asked for.
pub const DEFAULT_CONN_PAGE: usize = 100;

/// `GET /api/v1/health`.
pub(super) async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /api/v1/version`.
pub(super) async fn version(State(st): State<AppState>) -> Json<VersionView> {
    let size = st.store.dataplane().stats().conn_table.capacity;
    Json(VersionView {
        name: "ironvs".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        api: "v1".into(),
        ipvs_version: "1.2.1".into(),
        conn_table_size: size,
    })
}

/// `GET /api/v1/openapi.json`.
pub(super) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::OPENAPI_JSON,
    )
        .into_response()
}

/// `GET /api/v1/laddrs`.
pub(super) async fn list_laddrs(State(st): State<AppState>) -> Json<Vec<LaddrSpec>> {
    let cfg = st.store.current();
    Json(cfg.laddrs().map(|l| LaddrSpec { addr: l.addr }).collect())
}

/// `POST /api/v1/laddrs`.
pub(super) async fn add_laddr(
    State(st): State<AppState>,
    ApiJson(spec): ApiJson<LaddrSpec>,
) -> Result<Response, ApiError> {
    let l = validate::laddr(LocalAddr { addr: spec.addr })?;
    st.store.update(|c| c.add_laddr(l))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/laddrs/{}", l.addr))],
        Json(LaddrSpec { addr: l.addr }),
    )
        .into_response())
}

/// `DELETE /api/v1/laddrs/{addr}`.
pub(super) async fn del_laddr(
    State(st): State<AppState>,
    ApiPath(addr): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| ApiError::bad_request(format!("addr: {addr:?} is not an IP address")))?;
    st.store.update(|c| c.delete_laddr(&LocalAddr { addr }))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/timeouts`.
pub(super) async fn get_timeouts(State(st): State<AppState>) -> Json<TimeoutsDto> {
    Json((*st.store.current().timeouts()).into())
}

/// `PUT /api/v1/timeouts` (`ipvsadm --set`).
pub(super) async fn put_timeouts(
    State(st): State<AppState>,
    ApiJson(t): ApiJson<TimeoutsDto>,
) -> Result<Json<TimeoutsDto>, ApiError> {
    st.store.update(|c| c.set_timeouts(t.into()))?;
    Ok(Json((*st.store.current().timeouts()).into()))
}

fn service_stats(entry: &ServiceEntry, snap: &StatsSnapshot, est: &Estimator) -> ServiceStatsView {
    let key = entry.service.key;
    let s = snap.service(&key);
    let real_servers: Vec<RealServerStatsView> = entry
        .real_servers
        .keys()
        .map(|rk| {
            let r = s.and_then(|s| s.real_server(rk));
            RealServerStatsView {
                addr: rk.addr,
                port: rk.port,
                stats: r.map(|r| r.counters).unwrap_or_default(),
                rates: est.real_server(&key, rk),
                active_conns: r.map_or(0, |r| r.active_conns),
                inactive_conns: r.map_or(0, |r| r.inactive_conns),
            }
        })
        .collect();
    ServiceStatsView {
        proto: key.proto,
        vip: key.vip,
        port: key.port,
        stats: s.map(|s| s.counters).unwrap_or_default(),
        rates: est.service(&key),
        active_conns: real_servers.iter().map(|r| r.active_conns).sum(),
        inactive_conns: real_servers.iter().map(|r| r.inactive_conns).sum(),
        real_servers,
    }
}

/// Statistics of every configured service, merged with the data plane's counters.
pub fn stats_view(cfg: &Config, snap: StatsSnapshot, est: &Estimator) -> StatsView {
    StatsView {
        services: cfg
            .services()
            .map(|e| service_stats(e, &snap, est))
            .collect(),
        workers: snap.workers,
        ports: snap.ports,
        conn_table: snap.conn_table,
    }
}

/// `GET /api/v1/stats`.
pub(super) async fn stats(State(st): State<AppState>) -> Json<StatsView> {
    let (cfg, snap) = st.store.stats();
    let est = st.rates.lock().unwrap_or_else(|e| e.into_inner());
    Json(stats_view(&cfg, snap, &est))
}

/// `GET /api/v1/services/{proto}/{vip}/{port}/stats`.
pub(super) async fn service_stats_handler(
    State(st): State<AppState>,
    ApiPath(p): ApiPath<SvcPath>,
) -> Result<Json<ServiceStatsView>, ApiError> {
    let key: ServiceKey = service_key(&p)?;
    let (cfg, snap) = st.store.stats();
    let entry = cfg.service(&key).ok_or_else(|| {
        ApiError::from(ConfigError::NotFound(format!(
            "service {}",
            validate::service_name(&key)
        )))
    })?;
    let est = st.rates.lock().unwrap_or_else(|e| e.into_inner());
    Ok(Json(service_stats(entry, &snap, &est)))
}

fn zero(st: &AppState, only: Option<&ServiceKey>) -> Result<StatusCode, ApiError> {
    let raw = st.store.zero_stats(only)?;
    st.rates
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .zero(&raw, only);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/stats/zero` (`ipvsadm -Z`).
pub(super) async fn zero_all(State(st): State<AppState>) -> Result<StatusCode, ApiError> {
    zero(&st, None)
}

/// `POST /api/v1/services/{proto}/{vip}/{port}/stats/zero` (`ipvsadm -Z -t|-u VIP:PORT`).
pub(super) async fn zero_service(
    State(st): State<AppState>,
    ApiPath(p): ApiPath<SvcPath>,
) -> Result<StatusCode, ApiError> {
    zero(&st, Some(&service_key(&p)?))
}

/// Query of `GET /api/v1/connections`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConnQuery {
    #[serde(default)]
    offset: usize,
    #[serde(default)]
    limit: Option<usize>,
    proto: Option<Proto>,
    vip: Option<IpAddr>,
    vport: Option<u16>,
    client: Option<IpAddr>,
    real: Option<IpAddr>,
    real_port: Option<u16>,
    state: Option<String>,
}

/// `GET /api/v1/connections`.
pub(super) async fn connections(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<ConnQuery>,
) -> Result<Json<ConnPageView>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_CONN_PAGE);
    if limit > MAX_CONN_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit: must be at most {MAX_CONN_PAGE}, got {limit}"
        )));
    }
    let filter = ConnFilter {
        proto: q.proto,
        vip: q.vip.map(|a| a.to_canonical()),
        vport: q.vport,
        client: q.client.map(|a| a.to_canonical()),
        real: q.real.map(|a| a.to_canonical()),
        real_port: q.real_port,
        state: q.state,
    };
    let page = st.store.dataplane().connections(&filter, q.offset, limit);
    Ok(Json(ConnPageView {
        total: page.total,
        offset: q.offset,
        limit,
        connections: page.connections,
    }))
}

/// `GET /metrics`: raw totals, not zeroed by `ipvsadm -Z`, so Prometheus counters stay monotonic.
pub(super) async fn metrics(State(st): State<AppState>) -> Result<Response, ApiError> {
    let cfg = st.store.current();
    let snap = st.store.dataplane().stats();
    let text = crate::metrics::render(&cfg, &snap)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}
