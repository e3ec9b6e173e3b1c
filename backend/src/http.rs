//! What both servers share: JSON errors and body extraction.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::Query;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A 4xx/5xx answer with `{"error": "..."}` naming what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
    /// A failure below the API (the store, the device's loop) as a 5xx: `507 Insufficient
    /// Storage` when it says the disk is full, so the owner knows to free space rather than
    /// report a bug; else 500.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        let message = err.to_string();
        let status = if says_storage_full(&message) {
            StatusCode::INSUFFICIENT_STORAGE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        ApiError { status, message }
    }
}

/// Whether an error's text says the disk is full: SQLite's `SQLITE_FULL` ("database or disk
/// is full", also past `--db-pages-max`) or the simulator's full disk ("disk full"). The
/// store boundary (`StoreError::Backend`) carries a failure as its text, so the text is what
/// there is to read.
fn says_storage_full(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("disk is full") || message.contains("disk full")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// Malformed JSON, wrong types, missing fields, oversized or non-JSON bodies: axum's own
/// status (400, 413, 415, 422), with its explanation (which names the field) as JSON.
pub fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(value)| value).map_err(|rejection| ApiError {
        status: rejection.status(),
        message: rejection.body_text(),
    })
}

pub fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(value)| value)
        .map_err(|rejection| ApiError {
            status: rejection.status(),
            message: rejection.body_text(),
        })
}

/// Unknown paths answer JSON too.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// Error bodies above this are replaced by their status's name rather than read whole.
const ERROR_TEXT_LEN_MAX: usize = 4 * 1024;

/// Every 4xx/5xx the router or a layer makes without a JSON body (405, a CORS refusal, a
/// rejection answered as text) gets `{"error": ...}`, keeping its status and other headers.
/// Every answer also says `X-Content-Type-Options: nosniff`: no browser takes a JSON answer
/// (or an attachment) for script or a page because of what it contains.
pub async fn json_errors(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, ERROR_TEXT_LEN_MAX)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .filter(|text| !text.trim().is_empty());
    let message = text.unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    });
    parts.headers.remove(header::CONTENT_LENGTH);
    let fresh = ApiError { status, message }.into_response();
    parts.headers.extend(fresh.headers().clone());
    Response::from_parts(parts, fresh.into_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_answer_says_nosniff_and_errors_become_json() {
        let ok = json_errors(Json(json!({"a": 1})).into_response()).await;
        assert_eq!(ok.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let text = (StatusCode::METHOD_NOT_ALLOWED, "no").into_response();
        let error = json_errors(text).await;
        assert_eq!(error.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(error.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(error.headers()[header::CONTENT_TYPE]
            .as_bytes()
            .starts_with(b"application/json"));
    }

    #[test]
    fn a_full_disk_is_507_and_other_failures_500() {
        let full = "storage backend failed: sqlite: database or disk is full";
        assert_eq!(
            ApiError::internal(full).status,
            StatusCode::INSUFFICIENT_STORAGE
        );
        let simulated = "storage backend failed: disk full (simulated)";
        assert_eq!(ApiError::internal(simulated).status.as_u16(), 507);
        let other = "the device's network loop has stopped";
        assert_eq!(ApiError::internal(other).status.as_u16(), 500);
    }
}
