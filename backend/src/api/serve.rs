//! Serving a router the way every meshlog server does: only on loopback unless told otherwise,
//! behind [`access`](super::access), with a header read timeout, a cap on connections (503
//! beyond it) and on live streams, and JSON for every error hyper itself answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderName, Method, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, map_response, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::access::{check_host_and_origin, require_token, Guard, Token, TOKEN_HEADER};
use super::raw_errors::JsonErrorIo;
use crate::http::ApiError;

/// Headers per request, and bytes of a request head hyper buffers: beyond either, 431. Our
/// requests carry a handful of short headers; the cap bounds memory per connection.
const HEADERS_MAX: usize = 64;
const HEAD_BUF_LEN_MAX: usize = 64 * 1024;
/// Longest request target, and most header bytes, served: ours are short. hyper's own
/// limits are looser (a head read in one go may pass them) and answer without a body.
const URI_LEN_MAX: usize = 8 * 1024;
const HEADER_BYTES_MAX: usize = 16 * 1024;
/// Connections refused with a 503 at the same time; beyond, they are just closed.
const REFUSALS_MAX: usize = 64;
/// How long a refused connection gets to read its 503 before it is closed.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

#[derive(Debug, Error)]
pub enum ServeError {
    #[error(
        "{0} is not a loopback address: anyone on the network could reach the API \
         (pass --allow-remote if that is what you want)"
    )]
    Remote(SocketAddr),
    #[error("binding http {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// How much a server takes on at once.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections; one more is answered 503 and closed. Each costs a task and up to
    /// `HEAD_BUF_LEN_MAX` of buffer.
    pub connections_max: usize,
    /// Open live streams (each holds a connection and a broadcast subscription); beyond, 503.
    pub streams_max: usize,
    /// A client that has not sent a whole request head by then is disconnected (slowloris).
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections_max: 256,
            streams_max: 32,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Who may use a server and how much it takes on; the token comes separately (from the
/// server's data directory).
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Origins of pages allowed to call the server besides its own, e.g. `http://127.0.0.1:5173`.
    pub allow_origins: Vec<String>,
    /// Listen on a non-loopback address (warned about on start).
    pub allow_remote: bool,
    pub limits: Limits,
}

/// Live-stream slots: a stream holds one for as long as it is open.
#[derive(Clone, Debug)]
pub struct StreamSlots(Arc<Semaphore>);

impl StreamSlots {
    pub fn new(streams_max: usize) -> Self {
        StreamSlots(Arc::new(Semaphore::new(streams_max)))
    }

    pub fn take(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.0.clone().try_acquire_owned().map_err(|_| ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "too many live streams open; close one and retry".into(),
        })
    }
}

/// A bound listener with its checks, ready to serve a router.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    guard: Guard,
    options: ServerOptions,
}

impl Server {
    /// Binds `addr` (port 0 picks one). A non-loopback address needs `allow_remote`.
    pub async fn bind(
        addr: SocketAddr,
        options: &ServerOptions,
        token: Token,
    ) -> Result<Server, ServeError> {
        if !addr.ip().is_loopback() {
            if !options.allow_remote {
                return Err(ServeError::Remote(addr));
            }
            eprintln!(
                "warning: serving the API on {addr}, reachable from the network; \
                 only the API token keeps others out, and HTTP is not encrypted"
            );
        }
        let bind = |source| ServeError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind)?;
        let local = listener.local_addr().map_err(bind)?;
        Ok(Server {
            guard: Guard::new(token, local, options.allow_origins.clone()),
            listener,
            options: options.clone(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.guard.local()
    }

    /// Live-stream slots for the router's stream handlers.
    pub fn stream_slots(&self) -> StreamSlots {
        StreamSlots::new(self.options.limits.streams_max)
    }

    /// Serves `app` behind the checks until the listener fails.
    pub fn spawn(self, app: Router) -> JoinHandle<std::io::Result<()>> {
        let guard = self.guard.clone();
        let guard_for_cors = guard.clone();
        let cors = CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin, _| {
                origin
                    .to_str()
                    .is_ok_and(|o| guard_for_cors.origin_allowed(o))
            }))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static(TOKEN_HEADER),
            ]);
        let app = app
            .layer(from_fn_with_state(guard.clone(), require_token))
            .layer(cors)
            .layer(from_fn_with_state(guard, check_host_and_origin))
            .layer(from_fn(check_size))
            .layer(map_response(crate::http::json_errors));
        tokio::spawn(accept_loop(self.listener, app, self.options.limits))
    }
}

/// 414 or 431, as JSON, for a request head larger than ours ever are.
async fn check_size(request: Request, next: Next) -> Response {
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    let refusal = |status, message| ApiError { status, message }.into_response();
    if uri_len > URI_LEN_MAX {
        return refusal(
            StatusCode::URI_TOO_LONG,
            format!("request target: {uri_len} bytes, at most {URI_LEN_MAX}"),
        );
    }
    if header_bytes > HEADER_BYTES_MAX {
        return refusal(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("headers: {header_bytes} bytes, at most {HEADER_BYTES_MAX}"),
        );
    }
    next.run(request).await
}

async fn accept_loop(listener: TcpListener, app: Router, limits: Limits) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits.connections_max));
    let refusals = Arc::new(Semaphore::new(REFUSALS_MAX));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of descriptors and the like pass; back off rather than spin.
                tracing::warn!(%err, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            if let Ok(refusal) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(refusal);
                });
            }
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let io = TokioIo::new(JsonErrorIo::new(stream));
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_headers(HEADERS_MAX)
                .max_buf_size(HEAD_BUF_LEN_MAX)
                .writev(false);
            if let Err(err) = http.serve_connection(io, service).await {
                tracing::debug!(%err, "connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// Answers 503 with a JSON body on a connection over the cap, then closes it.
async fn refuse(mut stream: tokio::net::TcpStream) {
    let body = serde_json::json!({ "error": "too many connections; retry later" }).to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent until it closes, so closing does not reset the
        // connection before the client has read the answer.
        let mut sink = [0u8; 1024];
        while tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}
