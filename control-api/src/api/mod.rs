//! The REST API under `/api/v1` and the Prometheus endpoint `/metrics`.
//!
//! Every error is a JSON object `{"error", "detail", "field"?}` and a failed request changes no
//! state. With a bearer token configured, every request but GET/HEAD needs
//! `Authorization: Bearer TOKEN` (401 otherwise). Bodies above [`BODY_LIMIT`] get 413.

pub mod dto;
mod extract;
mod other;
mod services;

use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub use extract::ApiError;
pub use other::{stats_view, DEFAULT_CONN_PAGE, MAX_CONN_PAGE};

use crate::estimator::Estimator;
use crate::store::Store;

/// Largest request body accepted, bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The OpenAPI 3 description of this API.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Configuration store.
    pub store: Arc<Store>,
    /// Rate estimates, refreshed by the estimator task.
    pub rates: Arc<Mutex<Estimator>>,
    /// Bearer token required for changes, if any.
    pub token: Option<Arc<str>>,
}

async fn require_token(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = &st.token else {
        return next.run(req).await;
    };
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        next.run(req).await
    } else {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this request changes state and needs 'Authorization: Bearer <token>'",
        )
        .into_response()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

/// The complete router: REST API, metrics, JSON fallbacks, body limit and token check.
pub fn router(state: AppState) -> Router {
    const SVC: &str = "/api/v1/services/{proto}/{vip}/{port}";
    let rs_list = format!("{SVC}/real-servers");
    let rs_one = format!("{SVC}/real-servers/{{addr}}/{{rport}}");
    Router::new()
        .route("/api/v1/health", get(other::health))
        .route("/api/v1/version", get(other::version))
        .route("/api/v1/openapi.json", get(other::openapi))
        .route(
            "/api/v1/services",
            get(services::list)
                .post(services::create)
                .delete(services::clear),
        )
        .route(
            SVC,
            get(services::get)
                .put(services::replace)
                .patch(services::patch)
                .delete(services::delete),
        )
        .route(&format!("{SVC}/stats"), get(other::service_stats_handler))
        .route(
            &format!("{SVC}/stats/zero"),
            axum::routing::post(other::zero_service),
        )
        .route(
            &rs_list,
            get(services::list_reals).post(services::create_real),
        )
        .route(
            &rs_one,
            get(services::get_real)
                .put(services::replace_real)
                .patch(services::patch_real)
                .delete(services::delete_real),
        )
        .route(
            "/api/v1/laddrs",
            get(other::list_laddrs).post(other::add_laddr),
        )
        .route(
            "/api/v1/laddrs/{addr}",
            axum::routing::delete(other::del_laddr),
        )
        .route(
            "/api/v1/timeouts",
            get(other::get_timeouts).put(other::put_timeouts),
        )
        .route("/api/v1/stats", get(other::stats))
        .route("/api/v1/stats/zero", axum::routing::post(other::zero_all))
        .route("/api/v1/connections", get(other::connections))
        .route("/metrics", get(other::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}
