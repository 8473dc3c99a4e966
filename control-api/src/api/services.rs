//! Handlers for virtual services and their real servers.
//!
//! A service is addressed as `/api/v1/services/{proto}/{vip}/{port}` (IPv6 VIPs written plainly,
//! e.g. `/api/v1/services/tcp/2001:db8::1/80`), a real server as
//! `.../real-servers/{addr}/{port}`.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dataplane::flow::Proto;
use dataplane::model::{RealServerKey, ServiceKey};

use super::dto::{
    RealServerPatch, RealServerSpec, RealServerUpdate, RealServerView, ServicePatch, ServiceSpec,
    ServiceUpdate, ServiceView,
};
use super::extract::{ApiError, ApiJson, ApiPath};
use super::AppState;
use crate::validate::{self, ConfigError};

fn parse_proto(s: &str) -> Result<Proto, ApiError> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Proto::Tcp),
        "udp" => Ok(Proto::Udp),
        _ => Err(ApiError::bad_request(format!(
            "proto: expected tcp or udp, got {s:?}"
        ))),
    }
}

fn parse_addr(what: &str, s: &str) -> Result<IpAddr, ApiError> {
    let bare = s
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse::<IpAddr>()
        .map(|a| a.to_canonical())
        .map_err(|_| ApiError::bad_request(format!("{what}: {s:?} is not an IP address")))
}

fn parse_port(what: &str, s: &str) -> Result<u16, ApiError> {
    s.parse::<u16>()
        .map_err(|_| ApiError::bad_request(format!("{what}: expected 0..=65535, got {s:?}")))
}

/// Service path parameters `{proto}/{vip}/{port}`.
pub(super) type SvcPath = (String, String, String);
/// Real-server path parameters `{proto}/{vip}/{port}/real-servers/{addr}/{rport}`.
type RsPath = (String, String, String, String, String);

pub(super) fn service_key(p: &SvcPath) -> Result<ServiceKey, ApiError> {
    Ok(ServiceKey {
        proto: parse_proto(&p.0)?,
        vip: parse_addr("vip", &p.1)?,
        port: parse_port("port", &p.2)?,
    })
}

fn rs_key(p: &RsPath) -> Result<(ServiceKey, RealServerKey), ApiError> {
    let svc = service_key(&(p.0.clone(), p.1.clone(), p.2.clone()))?;
    let rs = RealServerKey {
        addr: parse_addr("addr", &p.3)?,
        port: parse_port("port", &p.4)?,
    };
    Ok((svc, rs))
}

fn service_location(key: &ServiceKey) -> String {
    let proto = match key.proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    };
    format!("/api/v1/services/{proto}/{}/{}", key.vip, key.port)
}

fn view(st: &AppState, key: &ServiceKey) -> Result<ServiceView, ApiError> {
    let cfg = st.store.current();
    cfg.service(key)
        .map(ServiceView::from)
        .ok_or_else(|| ConfigError::NotFound(format!("service {}", validate::service_name(key))))
        .map_err(ApiError::from)
}

/// `GET /api/v1/services`.
pub(super) async fn list(State(st): State<AppState>) -> Json<Vec<ServiceView>> {
    let cfg = st.store.current();
    Json(cfg.services().map(ServiceView::from).collect())
}

/// `POST /api/v1/services`.
pub(super) async fn create(
    State(st): State<AppState>,
    ApiJson(spec): ApiJson<ServiceSpec>,
) -> Result<Response, ApiError> {
    let svc = spec.to_model();
    let reals = spec
        .real_servers
        .iter()
        .map(|r| r.to_model(spec.port))
        .collect();
    let key = validate::service_key(svc.key)?;
    st.store.update(|c| c.add_service(svc, reals))?;
    let body = view(&st, &key)?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, service_location(&key))],
        Json(body),
    )
        .into_response())
}

/// `DELETE /api/v1/services` (`ipvsadm -C`).
pub(super) async fn clear(State(st): State<AppState>) -> Result<StatusCode, ApiError> {
    st.store.update(|c| {
        c.clear_services();
        Ok(())
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/services/{proto}/{vip}/{port}`.
pub(super) async fn get(
    State(st): State<AppState>,
    ApiPath(p): ApiPath<SvcPath>,
) -> Result<Json<ServiceView>, ApiError> {
    Ok(Json(view(&st, &service_key(&p)?)?))
}

/// `PUT /api/v1/services/{proto}/{vip}/{port}` (`ipvsadm -E`).
pub(super) async fn replace(
    State(st): State<AppState>,
    ApiPath(p): ApiPath<SvcPath>,
    ApiJson(upd): ApiJson<ServiceUpdate>,
) -> Result<Json<ServiceView>, ApiError> {
    let key = service_key(&p)?;
    st.store.update(|c| c.edit_service(upd.to_model(key)))?;
    Ok(Json(view(&st, &key)?))
}

/// `PATCH /api/v1/services/{proto}/{vip}/{port}`.
pub(super) async fn patch(
    State(st): State<AppState>,
    ApiPath(p): ApiPath<SvcPath>,
    ApiJson(patch): ApiJson<ServicePatch>,
) -> Result<Json<ServiceView>, ApiError> {
    let key = service_key(&p)?;
    st.store.update(|c| {
        let cur = c
            .service(&key)
            .ok_or_else(|| {
                ConfigError::NotFound(format!("service {}", validate::service_name(&key)))
            })?
            .service
            .clone();
        c.edit_service(patch.apply(&cur))
    })?;
    Ok(Json(view(&st, &key)?))
}

/// `DELETE /api/v1/services/{proto}/{vip}/{port}` (`ipvsadm -D`).
pub(super) async fn delete(
    State(st): State<AppState>,
    ApiPath(p): ApiPath<SvcPath>,
) -> Result<StatusCode, ApiError> {
    let key = service_key(&p)?;
    st.store.update(|c| c.delete_service(&key))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET .../real-servers`.
pub(super) async fn list_reals(
    State(st): State<AppState>,
    ApiPath(p): ApiPath<SvcPath>,
) -> Result<Json<Vec<RealServerView>>, ApiError> {
    Ok(Json(view(&st, &service_key(&p)?)?.real_servers))
}

fn real_view(
    st: &AppState,
    key: &ServiceKey,
    rs: &RealServerKey,
) -> Result<RealServerView, ApiError> {
    let cfg = st.store.current();
    cfg.service(key)
        .and_then(|s| s.real_servers.get(rs))
        .map(RealServerView::from)
        .ok_or_else(|| {
            ApiError::from(ConfigError::NotFound(format!(
                "real server {} in service {}",
                validate::addr_port(rs.addr, rs.port),
                validate::service_name(key)
            )))
        })
}

/// `POST .../real-servers` (`ipvsadm -a`).
pub(super) async fn create_real(
    State(st): State<AppState>,
    ApiPath(p): ApiPath<SvcPath>,
    ApiJson(spec): ApiJson<RealServerSpec>,
) -> Result<Response, ApiError> {
    let key = service_key(&p)?;
    let rs = spec.to_model(key.port);
    let slot = st.store.update(|c| c.add_real_server(&key, rs))?;
    let cfg = st.store.current();
    let entry = cfg
        .service(&key)
        .and_then(|s| s.real_servers.values().find(|r| r.slot == slot))
        .map(RealServerView::from)
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "changed concurrently"))?;
    let location = format!(
        "{}/real-servers/{}/{}",
        service_location(&key),
        entry.addr,
        entry.port
    );
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(entry),
    )
        .into_response())
}

/// `GET .../real-servers/{addr}/{port}`.
pub(super) async fn get_real(
    State(st): State<AppState>,
    ApiPath(p): ApiPath<RsPath>,
) -> Result<Json<RealServerView>, ApiError> {
    let (key, rs) = rs_key(&p)?;
    Ok(Json(real_view(&st, &key, &rs)?))
}

fn canonical_rs(st: &AppState, key: &ServiceKey, mut rs: RealServerKey) -> RealServerKey {
    // A dr/tun server added with port 0 is stored under the virtual port.
    if rs.port == 0 {
        if let Some(s) = st.store.current().service(key) {
            if !s.real_servers.contains_key(&rs) {
                rs.port = key.port;
            }
        }
    }
    rs
}

/// `PUT .../real-servers/{addr}/{port}` (`ipvsadm -e`).
pub(super) async fn replace_real(
    State(st): State<AppState>,
    ApiPath(p): ApiPath<RsPath>,
    ApiJson(upd): ApiJson<RealServerUpdate>,
) -> Result<Json<RealServerView>, ApiError> {
    let (key, rs) = rs_key(&p)?;
    let rs = canonical_rs(&st, &key, rs);
    let spec = RealServerSpec {
        addr: rs.addr,
        port: Some(rs.port),
        weight: upd.weight,
        mode: upd.mode,
        upper_threshold: upd.upper_threshold,
        lower_threshold: upd.lower_threshold,
    };
    st.store
        .update(|c| c.edit_real_server(&key, spec.to_model(key.port)))?;
    Ok(Json(real_view(&st, &key, &rs)?))
}

/// `PATCH .../real-servers/{addr}/{port}` (weight changes, drain with weight 0).
pub(super) async fn patch_real(
    State(st): State<AppState>,
    ApiPath(p): ApiPath<RsPath>,
    ApiJson(patch): ApiJson<RealServerPatch>,
) -> Result<Json<RealServerView>, ApiError> {
    let (key, rs) = rs_key(&p)?;
    let rs = canonical_rs(&st, &key, rs);
    st.store.update(|c| {
        let cur = c
            .service(&key)
            .and_then(|s| s.real_servers.get(&rs))
            .map(|e| e.server)
            .ok_or_else(|| {
                ConfigError::NotFound(format!(
                    "real server {} in service {}",
                    validate::addr_port(rs.addr, rs.port),
                    validate::service_name(&key)
                ))
            })?;
        c.edit_real_server(&key, patch.apply(&cur))
    })?;
    Ok(Json(real_view(&st, &key, &rs)?))
}

/// `DELETE .../real-servers/{addr}/{port}` (`ipvsadm -d`).
pub(super) async fn delete_real(
    State(st): State<AppState>,
    ApiPath(p): ApiPath<RsPath>,
) -> Result<StatusCode, ApiError> {
    let (key, rs) = rs_key(&p)?;
    let rs = canonical_rs(&st, &key, rs);
    st.store.update(|c| c.delete_real_server(&key, &rs))?;
    Ok(StatusCode::NO_CONTENT)
}
