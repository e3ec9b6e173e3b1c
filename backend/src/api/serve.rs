//! Serving a router the way every meshlog server does: only on loopback unless told otherwise,
//! behind [`access`](super::access), with connection slots that strangers cannot keep
//! ([`connections`](super::connections)), head, idle and body timeouts, a cap on live
//! streams, and JSON for every error hyper itself answers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{header, HeaderName, Method, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, map_response, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::access::{check_host_and_origin, require_token, Guard, Token, TOKEN_HEADER};
use super::bodies::body_deadline;
use super::connections::{
    Admission, Authenticated, Connection, Table, Timeouts, TrackedBody, EXPIRY_INTERVAL,
};
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
/// Refused connections that may linger to read the rest of their request, so that closing
/// does not reset the connection before the client has read its 503. Beyond, a refused
/// connection still gets its 503, then is closed at once. Refusals only happen when every
/// slot is answering a token-bearing request, so this is rarely reached.
const REFUSALS_LINGERING_MAX: usize = 64;
/// How long a refused connection gets to read its 503 before it is closed.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// After an accept error other than running out of descriptors: waiting, not spinning.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);
/// Out of descriptors with a connection evicted: long enough for its task to close it.
const DESCRIPTOR_WAIT: Duration = Duration::from_millis(5);
/// Accept errors are logged at most this often (an attack could cause thousands a second).
const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(1);
/// Descriptors a server needs besides its connections: the database and its WAL, the UDP
/// socket, the runtime's, lingering refusals. Below connections plus these, a warning.
const DESCRIPTORS_OTHER: u64 = 64 + REFUSALS_LINGERING_MAX as u64;

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

/// How much a server takes on at once, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections. Each costs a task, a descriptor and up to `HEAD_BUF_LEN_MAX` of
    /// buffer. One more evicts a connection waiting for a request (a stranger's first); only
    /// when all are answering requests is it answered 503 and closed.
    pub connections_max: usize,
    /// Open live streams (each holds a connection and a broadcast subscription); beyond, 503.
    pub streams_max: usize,
    /// A connection that has not shown the token and has not sent a whole request head by
    /// then (since it connected or since its last answer) is disconnected (slowloris). Cut
    /// to a second while more than half the connection slots are taken.
    pub header_read_timeout: Duration,
    /// A connection that has shown the token is closed after this long idle between
    /// requests (Apache's keep-alive default): it holds a slot and a descriptor for nothing.
    pub idle_timeout: Duration,
    /// A request body must arrive whole within this of its head, or is answered 408 and its
    /// connection closed: 512 KiB at 52 KB/s, and a client that stops halfway holds nothing.
    pub body_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections_max: 256,
            streams_max: 32,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(10),
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
        raise_descriptor_limit(options.limits.connections_max);
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
                header::RANGE,
                HeaderName::from_static(TOKEN_HEADER),
            ]);
        let app = app
            .layer(from_fn_with_state(guard.clone(), require_token))
            .layer(cors)
            .layer(from_fn_with_state(guard, check_host_and_origin))
            .layer(from_fn(check_size))
            .layer(from_fn_with_state(
                self.options.limits.body_read_timeout,
                body_deadline,
            ))
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
    let table = Table::new(
        limits.connections_max,
        Timeouts {
            header_read_timeout: limits.header_read_timeout,
            idle_timeout: limits.idle_timeout,
        },
    );
    tokio::spawn(expire_connections(Arc::downgrade(&table)));
    let refusals = Arc::new(Semaphore::new(REFUSALS_LINGERING_MAX));
    let mut errors = AcceptErrors::default();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // A full descriptor table frees up by closing the connection a newcomer would
                // evict; other errors (aborted handshakes and the like) pass. Never a spin.
                let evicted = out_of_descriptors(&err) && table.evict();
                errors.log(&err, evicted);
                let wait = if evicted {
                    DESCRIPTOR_WAIT
                } else {
                    ACCEPT_ERROR_BACKOFF
                };
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        match table.admit(Instant::now()) {
            Admission::Admitted(connection) => {
                tokio::spawn(serve_connection(stream, app.clone(), connection, limits));
            }
            Admission::Full => {
                let linger = refusals.clone().try_acquire_owned().ok();
                tokio::spawn(refuse(stream, linger));
            }
        }
    }
}

/// Closes connections whose wait has run out, until the server is gone.
async fn expire_connections(table: std::sync::Weak<Table>) {
    let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(table) = table.upgrade() else { return };
        table.expire(Instant::now());
    }
}

/// Serves one connection until it ends or the table takes its slot back.
async fn serve_connection(stream: TcpStream, app: Router, connection: Connection, limits: Limits) {
    let connection = Arc::new(connection);
    let app = TowerToHyperService::new(app);
    let tracked = {
        let connection = connection.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            connection.busy();
            let connection = connection.clone();
            let answer = hyper::service::Service::call(&app, request);
            async move {
                let response = answer.await?;
                let authenticated = response.extensions().get::<Authenticated>().is_some();
                Ok::<_, Infallible>(
                    response.map(|body| TrackedBody::new(body, connection, authenticated)),
                )
            }
        })
    };
    let io = TokioIo::new(JsonErrorIo::new(stream));
    let mut http = hyper::server::conn::http1::Builder::new();
    // The table times heads and idleness out; hyper's own timer (which runs from the end of
    // the last answer, idle or not) is only the backstop.
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout.max(limits.idle_timeout))
        .max_headers(HEADERS_MAX)
        .max_buf_size(HEAD_BUF_LEN_MAX)
        .writev(false);
    tokio::select! {
        result = http.serve_connection(io, tracked) => {
            if let Err(err) = result {
                tracing::debug!(%err, "connection ended with an error");
            }
        }
        () = connection.closed() => tracing::debug!("connection evicted or timed out"),
    }
}

/// Accept errors seen since the last one logged.
#[derive(Debug, Default)]
struct AcceptErrors {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    fn log(&mut self, err: &std::io::Error, evicted: bool) {
        self.unlogged += 1;
        if self
            .last_logged
            .is_some_and(|at| at.elapsed() < ACCEPT_ERROR_LOG_INTERVAL)
        {
            return;
        }
        tracing::warn!(%err, errors = self.unlogged, evicted, "accepting connections");
        self.last_logged = Some(Instant::now());
        self.unlogged = 0;
    }
}

fn out_of_descriptors(err: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        let raw = err.raw_os_error();
        raw == Some(Errno::MFILE.raw_os_error()) || raw == Some(Errno::NFILE.raw_os_error())
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        false
    }
}

/// Raises this process's soft limit on open descriptors to its hard limit: a default soft
/// limit of 1,024 would run out before the connection slots and the sockets being evicted
/// do. Warns if even the hard limit is too low for `connections_max`.
fn raise_descriptor_limit(connections_max: usize) {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let limit = getrlimit(Resource::Nofile);
        let wanted = connections_max as u64 + DESCRIPTORS_OTHER;
        // An unlimited hard limit (macOS) cannot be the soft one; ask for what we need.
        let target = limit.maximum.unwrap_or(wanted);
        let mut soft = limit.current;
        if soft.is_some_and(|soft| soft < target) {
            let raised = rustix::process::Rlimit {
                current: Some(target),
                maximum: limit.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => soft = Some(target),
                Err(err) => tracing::warn!(%err, "raising the open-descriptor limit"),
            }
        }
        if let Some(soft) = soft.filter(|&soft| soft < wanted) {
            eprintln!(
                "warning: {soft} open descriptors allowed (ulimit -n), fewer than \
                 --connections-max {connections_max} needs ({wanted}); connections will be \
                 evicted early"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = connections_max;
}

/// Answers 503 with a JSON body on a connection over the cap, then closes it; lingers to
/// read the client's request first if it holds a `linger` permit.
async fn refuse(mut stream: TcpStream, linger: Option<OwnedSemaphorePermit>) {
    let body = serde_json::json!({ "error": "too many connections; retry later" }).to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         x-content-type-options: nosniff\r\ncontent-length: {}\r\nretry-after: 1\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        // A fresh socket's send buffer takes the answer whole: this does not wait.
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        if linger.is_some() {
            // Read what the client sent until it closes, so closing does not reset the
            // connection before the client has read the answer.
            let mut sink = [0u8; 1024];
            while tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await? > 0 {}
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
}
