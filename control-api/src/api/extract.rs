//! JSON errors and request extractors that report bad input as JSON errors.
//!
//! Status codes: 400 for a body that is not JSON or a path/query that does not parse, 401 without
//! the bearer token, 404 for a missing object, 409 for one that already exists, 413 for a body
//! over the limit, 422 for well-formed JSON carrying an invalid value (the field is named).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::store::StoreError;
use crate::validate::ConfigError;

/// An error response: `{"error": class, "detail": message, "field": path?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable explanation.
    pub detail: String,
    /// The offending field, for 422.
    pub field: Option<String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// An error with a status and detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: detail.into(),
            field: None,
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 422 naming a field.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: detail.into(),
            field: Some(field.into()),
        }
    }

    fn class(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "bad request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::NOT_FOUND => "not found",
            StatusCode::METHOD_NOT_ALLOWED => "method not allowed",
            StatusCode::CONFLICT => "already exists",
            StatusCode::PAYLOAD_TOO_LARGE => "payload too large",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid value",
            s if s.is_server_error() => "internal error",
            _ => "error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.class(),
            detail: &self.detail,
            field: self.field.as_deref(),
        };
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> ApiError {
        match &e {
            ConfigError::Invalid { field, .. } => ApiError::invalid(field.clone(), e.to_string()),
            ConfigError::Exists(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            ConfigError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Config(c) => c.into(),
            StoreError::Persist(p) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, p.to_string())
            }
        }
    }
}

/// A JSON body: 400 when it is not JSON, 422 (with the field's path) when a value does not fit.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| ApiError::new(e.status(), e.body_text()))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::invalid("body", "body: expected a JSON object"));
        }
        let t = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "body".to_string()
            } else {
                path
            };
            let detail = format!("{field}: {}", e.inner());
            ApiError::invalid(field, detail)
        })?;
        Ok(ApiJson(t))
    }
}

/// Path parameters: 400 when they do not parse.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| ApiPath(t))
            .map_err(|e: PathRejection| ApiError::bad_request(e.body_text()))
    }
}

/// Query parameters: 400 when they do not parse.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| ApiQuery(t))
            .map_err(|e: QueryRejection| ApiError::bad_request(e.body_text()))
    }
}
