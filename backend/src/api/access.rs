//! Who may use a server, after Syncthing's GUI and Jupyter: the owner, holding the server's
//! random API token, from a page the server trusts, under a Host name it answers to.
//!
//! - The token (32 bytes of OS randomness, hex) lives in `api-token`, 0600, in the server's
//!   data directory (0700), made once and reused. A request shows it as
//!   `Authorization: Bearer TOKEN`, `X-Meshlog-Token: TOKEN` or the cookie `meshlog_token`
//!   (which `meshlog demo`'s page server sets HttpOnly, SameSite=Strict). Every route needs
//!   it except `GET /api/health`, which says nothing but `{"ok": true}`, and CORS preflights.
//! - Host must name this server (the address it listens on, or a localhost name): a
//!   DNS-rebinding page reaches us under its own name and is refused. So must the host of an
//!   absolute-form request target (`GET http://name/path`), which RFC 9112 puts before Host.
//! - A request that carries `Origin` (every browser CORS request and every POST) must come
//!   from this server's own origin or one it was told to allow (`--allow-origin`, the demo's
//!   page); a cross-site request without `Origin` (`Sec-Fetch-Site: cross-site`) is refused too.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand_core::{OsRng, RngCore};
use thiserror::Error;

use super::connections::Authenticated;
use crate::http::ApiError;

/// The token file's name inside a data directory.
pub const TOKEN_FILE: &str = "api-token";
/// The cookie the demo's page server sets; the servers read it.
pub const TOKEN_COOKIE: &str = "meshlog_token";
/// The header a client may send the token in (besides `Authorization: Bearer`).
pub const TOKEN_HEADER: &str = "x-meshlog-token";
/// Bytes of OS randomness in a token; hex-encoded it is twice this.
const TOKEN_BYTES: usize = 32;
/// The route anyone may call (load balancers, readiness waits); it reveals nothing.
pub const OPEN_PATH: &str = "/api/health";

#[derive(Debug, Error)]
pub enum AccessError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: not a meshlog API token (expected {len} hex digits)", len = TOKEN_BYTES * 2)]
    BadToken(PathBuf),
}

/// A server's API token. Debug never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    /// A fresh token from OS randomness.
    pub fn generate() -> Token {
        let mut bytes = [0u8; TOKEN_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Token(hex::encode(bytes))
    }

    pub fn parse(text: &str) -> Option<Token> {
        let text = text.trim();
        (text.len() == TOKEN_BYTES * 2 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Token(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The token in `dir/api-token`, made (0600) if there is none; `dir` is made private first.
    pub fn load_or_create(dir: &Path) -> Result<Token, AccessError> {
        private_dir(dir)?;
        let path = dir.join(TOKEN_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                tighten(&path, 0o600)?;
                Token::parse(&text).ok_or(AccessError::BadToken(path))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let token = Token::generate();
                token.write(&path)?;
                Ok(token)
            }
            Err(err) => Err(AccessError::Io(path, err)),
        }
    }

    /// Writes the token to `path` (0600, never over an existing file).
    pub fn write(&self, path: &Path) -> Result<(), AccessError> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(path)
            .map_err(|err| AccessError::Io(path.to_owned(), err))?;
        file.write_all(format!("{}\n", self.0).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|err| AccessError::Io(path.to_owned(), err))
    }

    /// Same length and bytes, compared in time independent of where they differ.
    fn matches(&self, offered: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), offered.trim().as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Creates `dir` 0700, or tightens it to 0700 (with a warning) if it is open to others.
pub fn private_dir(dir: &Path) -> Result<(), AccessError> {
    let io = |err| AccessError::Io(dir.to_owned(), err);
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(io)?;
    }
    tighten(dir, 0o700)
}

/// Takes group and other permissions off `path` if it has any, warning that it did.
fn tighten(path: &Path, mode: u32) -> Result<(), AccessError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let io = |err| AccessError::Io(path.to_owned(), err);
        let current = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if current & 0o077 != 0 {
            eprintln!(
                "warning: {} was mode {current:o}, readable by others; now {mode:o}",
                path.display()
            );
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// The checks for one bound server.
#[derive(Clone, Debug)]
pub struct Guard(Arc<GuardInner>);

#[derive(Debug)]
struct GuardInner {
    token: Token,
    local: SocketAddr,
    /// Other origins whose pages may call this server, e.g. `http://127.0.0.1:5173`.
    allow_origins: Vec<String>,
}

impl Guard {
    pub fn new(token: Token, local: SocketAddr, allow_origins: Vec<String>) -> Self {
        let allow_origins = allow_origins
            .into_iter()
            .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
            .collect();
        Guard(Arc::new(GuardInner {
            token,
            local,
            allow_origins,
        }))
    }

    pub fn local(&self) -> SocketAddr {
        self.0.local
    }

    /// A Host (`name[:port]`) this server answers to: a localhost name, the address it
    /// listens on, or, listening on every address, any IP literal (rebinding needs a name).
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        if name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        let ip = name.trim_start_matches('[').trim_end_matches(']');
        match ip.parse::<IpAddr>() {
            Ok(ip) => {
                ip.is_loopback() || ip == self.0.local.ip() || self.0.local.ip().is_unspecified()
            }
            Err(_) => false,
        }
    }

    /// This server's own origin (scheme http, a host it answers to, its port), or one allowed.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.0.allow_origins.contains(&origin) {
            return true;
        }
        let Some(host) = origin.strip_prefix("http://") else {
            return false;
        };
        let port = host
            .rsplit_once(':')
            .filter(|(_, p)| !p.contains(']'))
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .unwrap_or(80);
        port == self.0.local.port() && self.host_allowed(host)
    }

    fn token_offered(&self, headers: &HeaderMap) -> Option<bool> {
        let bearer = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| bearer_token(v.to_str().ok()?).map(str::to_owned));
        let custom = headers
            .get_all(TOKEN_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned));
        let cookies = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                (name == TOKEN_COOKIE).then(|| value.to_owned())
            });
        let mut offered = bearer.chain(custom).chain(cookies).peekable();
        offered.peek()?;
        Some(offered.any(|t| self.0.token.matches(&t)))
    }
}

/// `Host` without its port (`[::1]:3001` -> `[::1]`).
fn host_name(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.contains(']') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

fn forbidden(message: impl Into<String>) -> Response {
    ApiError {
        status: StatusCode::FORBIDDEN,
        message: message.into(),
    }
    .into_response()
}

/// Longest request target served: our paths and queries are short, and hyper's own limit
/// (64 KiB) would answer without a body.
const URI_LEN_MAX: usize = 8 * 1024;

/// Outermost check: the target's length, Host, then Origin (before CORS answers a preflight).
pub async fn check_host_and_origin(
    State(guard): State<Guard>,
    request: Request,
    next: Next,
) -> Response {
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri_len > URI_LEN_MAX {
        return ApiError {
            status: StatusCode::URI_TOO_LONG,
            message: format!("request target: {uri_len} bytes, at most {URI_LEN_MAX}"),
        }
        .into_response();
    }
    let headers = request.headers();
    // HTTP/1.1 requires Host. An absolute-form target (`GET http://name/path`, as sent to a
    // proxy) names the host too, and RFC 9112 has it win over Host: both must be ours.
    let host = headers.get(header::HOST).map(|h| h.to_str().unwrap_or("?"));
    let authority = request.uri().authority().map(|a| a.as_str());
    if host.is_none() && authority.is_none() {
        return forbidden("no Host header");
    }
    for (what, name) in [("Host", host), ("request target's host", authority)] {
        if let Some(name) = name.filter(|name| !guard.host_allowed(name)) {
            return forbidden(format!(
                "{what} {name:?} is not this server's (DNS rebinding?)"
            ));
        }
    }
    match headers.get(header::ORIGIN).map(HeaderValue::to_str) {
        None => {
            let cross_site = headers
                .get("sec-fetch-site")
                .is_some_and(|v| v.as_bytes() == b"cross-site");
            if cross_site {
                return forbidden("cross-site request refused");
            }
        }
        Some(Ok(origin)) if guard.origin_allowed(origin) => {}
        Some(origin) => {
            return forbidden(format!(
                "origin {:?} may not call this server",
                origin.unwrap_or("?")
            ))
        }
    }
    next.run(request).await
}

/// Inside CORS: the token, on every route but [`OPEN_PATH`] (preflights never reach here
/// from an allowed origin; CORS answers them).
pub async fn require_token(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    if request.uri().path() == OPEN_PATH || request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    let message = match guard.token_offered(request.headers()) {
        Some(true) => {
            // Tells the connection table this connection is the owner's (`connections`).
            let mut response = next.run(request).await;
            response.extensions_mut().insert(Authenticated);
            return response;
        }
        Some(false) => "wrong API token",
        None => "this server needs its API token: Authorization: Bearer TOKEN (see docs/API.md)",
    };
    let mut response = ApiError {
        status: StatusCode::UNAUTHORIZED,
        message: message.into(),
    }
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"meshlog\""),
    );
    response
}

/// The token of an `Authorization: Bearer TOKEN` value. The scheme is case-insensitive
/// (RFC 9110, 11.1): `bearer` and `BEARER` are `Bearer`.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(local: &str) -> Guard {
        Guard::new(
            Token::generate(),
            local.parse().unwrap(),
            vec!["http://127.0.0.1:5173/".into()],
        )
    }

    #[test]
    fn hosts_are_this_server_or_localhost() {
        let g = guard("127.0.0.1:3001");
        for ok in [
            "127.0.0.1:3001",
            "localhost:3001",
            "LOCALHOST",
            "[::1]:3001",
            "127.0.0.1",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example:3001",
            "evil.example",
            "10.0.0.5:3001",
            "127.0.0.1.evil.example",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
        let any = guard("0.0.0.0:3001");
        assert!(any.host_allowed("192.168.1.9:3001"));
        assert!(!any.host_allowed("evil.example:3001"));
    }

    #[test]
    fn origins_are_own_or_allowed() {
        let g = guard("127.0.0.1:3001");
        for ok in [
            "http://127.0.0.1:5173",
            "http://127.0.0.1:3001",
            "http://localhost:3001",
        ] {
            assert!(g.origin_allowed(ok), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "http://evil.example:3001",
            "null",
            "http://127.0.0.1:5174",
            "https://127.0.0.1:3001",
            "http://localhost:5173",
        ] {
            assert!(!g.origin_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_come_from_headers_or_the_cookie() {
        let g = guard("127.0.0.1:3001");
        let token = g.0.token.as_str().to_owned();
        let with = |name: &str, value: String| {
            let mut h = HeaderMap::new();
            h.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
            g.token_offered(&h)
        };
        assert_eq!(g.token_offered(&HeaderMap::new()), None);
        assert_eq!(with("authorization", format!("Bearer {token}")), Some(true));
        assert_eq!(with("x-meshlog-token", token.clone()), Some(true));
        assert_eq!(
            with("cookie", format!("a=b; meshlog_token={token}")),
            Some(true)
        );
        assert_eq!(with("authorization", format!("bearer {token}")), Some(true));
        assert_eq!(
            with("authorization", format!("BEARER  {token}")),
            Some(true)
        );
        assert_eq!(with("authorization", format!("Basic {token}")), None);
        assert_eq!(with("authorization", format!("Bearer{token}")), None);
        assert_eq!(with("authorization", "Bearer nope".into()), Some(false));
        assert_eq!(
            with("cookie", "meshlog_token=".to_owned() + &"0".repeat(64)),
            Some(false)
        );
        assert_eq!(Token::parse(&token), Some(g.0.token.clone()));
        assert_eq!(Token::parse("xyz"), None);
    }

    #[test]
    fn token_file_is_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        let first = Token::load_or_create(&dir).unwrap();
        assert_eq!(Token::load_or_create(&dir).unwrap(), first);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(TOKEN_FILE)), 0o600);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Token::load_or_create(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700, "a loose directory is tightened");
    }
}
