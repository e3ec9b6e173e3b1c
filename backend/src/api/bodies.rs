//! Request bodies, bounded in size and in time: a body larger than the route takes is
//! refused from its `Content-Length` before a byte of it is read (413), and one that has not
//! all arrived within `body_read_timeout` of its head is answered 408 and its connection
//! closed. Without the second, a client that promised 100 bytes and sent 9 held its
//! connection, and a task, for as long as it liked.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::Sleep;

use crate::http::ApiError;

/// `router` taking request bodies of at most `len_max` bytes: a longer `Content-Length` is a
/// 413 at once, and a body without one (chunked) is cut off at `len_max` (axum's limit).
pub fn with_body_limit<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    len_max: usize,
) -> Router<S> {
    router
        .layer(DefaultBodyLimit::max(len_max))
        .layer(from_fn_with_state(len_max, check_content_length))
}

async fn check_content_length(
    State(len_max): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    // hyper has already refused a malformed or conflicting Content-Length (400).
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > len_max as u64 => {
            let mut response = ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: format!("body: {len} bytes, at most {len_max}"),
            }
            .into_response();
            // The body is never read, so the connection cannot carry another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        _ => next.run(request).await,
    }
}

/// Handed to a route (as a request extension) whose bodies may be large: calling
/// [`BodyDeadline::per_frame`] turns the whole-body deadline into one between frames, so a
/// 4 GiB upload may take minutes while a client that stops sending is still cut off within
/// `body_read_timeout`.
#[derive(Clone, Debug)]
pub struct BodyDeadline(Arc<AtomicBool>);

impl BodyDeadline {
    pub fn per_frame(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The request's body must all arrive within `body_read_timeout` of its head (or, for a
/// route that asked, with no gap longer than that between frames); else 408.
pub async fn body_deadline(
    State(body_read_timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let per_frame = Arc::new(AtomicBool::new(false));
    let (mut parts, inner) = request.into_parts();
    parts.extensions.insert(BodyDeadline(per_frame.clone()));
    let request = Request::from_parts(
        parts,
        Body::new(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(body_read_timeout)),
            timeout: body_read_timeout,
            per_frame,
            expired: expired.clone(),
        }),
    );
    let response = next.run(request).await;
    if !expired.load(Ordering::Relaxed) {
        return response;
    }
    // Whatever the handler made of the cut-off body, the client is told it was too slow.
    let mut response = ApiError {
        status: StatusCode::REQUEST_TIMEOUT,
        message: format!(
            "the request body did not arrive within {} ms",
            body_read_timeout.as_millis()
        ),
    }
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Why a body stopped: its deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("request body timed out")]
struct BodyTimedOut;

/// A body that fails once its deadline passes, noting that it did.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    /// Set by the route ([`BodyDeadline::per_frame`]): every frame re-arms the deadline.
    per_frame: Arc<AtomicBool>,
    expired: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if this.per_frame.load(Ordering::Relaxed) {
                let next = tokio::time::Instant::now() + this.timeout;
                this.deadline.as_mut().reset(next);
            }
            return Poll::Ready(frame);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
