//! The page server: the built page from `frontend/dist` (built with npm first if missing),
//! handing the browser the demo's token as an HttpOnly cookie.

use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::process::Command;
use tower_http::services::{ServeDir, ServeFile};

use super::error::DemoError;
use super::options::DemoOptions;
use super::process;
use crate::api::access::{Guard, Token, TOKEN_COOKIE};
use crate::http::ApiError;

/// Serves the page's built files, building them first if `dist` is missing. Unknown paths
/// get `index.html`, so the page's own routes work on reload.
pub(super) async fn serve_page(
    options: &DemoOptions,
    token: Token,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, DemoError> {
    let frontend = frontend_dir(&options.frontend_dir);
    let dist = frontend.join("dist");
    if !dist.join("index.html").exists() {
        build_frontend(&frontend).await;
    }
    if !dist.join("index.html").exists() {
        eprintln!(
            "warning: {} has no index.html; the devices and simulation run, the page does not",
            dist.display()
        );
    }
    let index = ServeFile::new(dist.join("index.html"));
    let listener = tokio::net::TcpListener::bind(options.web_addr)
        .await
        .map_err(|source| DemoError::Bind {
            addr: options.web_addr,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| DemoError::Bind {
        addr: options.web_addr,
        source,
    })?;
    let cookie = HeaderValue::try_from(format!(
        "{TOKEN_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
        token.as_str()
    ))
    .expect("a hex token makes a valid header");
    let page = PageAccess {
        guard: Guard::new(token, local, Vec::new()),
        cookie,
    };
    let app = Router::new()
        .fallback_service(ServeDir::new(&dist).fallback(index))
        .layer(from_fn_with_state(page, hand_over_token));
    Ok(tokio::spawn(
        async move { axum::serve(listener, app).await },
    ))
}

#[derive(Clone, Debug)]
struct PageAccess {
    guard: Guard,
    cookie: HeaderValue,
}

/// Serves the page only under a Host that names it (so a DNS-rebinding site cannot get the
/// cookie for its own name), and gives the browser the token cookie with it.
async fn hand_over_token(State(page): State<PageAccess>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !page.guard.host_allowed(host) {
        return ApiError {
            status: StatusCode::FORBIDDEN,
            message: format!("Host {host:?} is not this page's"),
        }
        .into_response();
    }
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, page.cookie.clone());
    response
}

/// The given directory if it exists; otherwise this checkout's `frontend/` (the binary was
/// built from it), so `meshlog demo` works from any working directory.
fn frontend_dir(given: &Path) -> PathBuf {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../frontend");
    if given.exists() || !checkout.exists() {
        given.to_owned()
    } else {
        checkout
    }
}

/// `npm ci && npm run build` in the frontend directory; failures are reported, not fatal.
async fn build_frontend(frontend: &Path) {
    if !frontend.join("package.json").exists() {
        eprintln!(
            "warning: no {}; cannot build the page",
            frontend.join("package.json").display()
        );
        return;
    }
    println!(
        "building the page in {} (npm ci && npm run build)...",
        frontend.display()
    );
    for args in [&["ci"][..], &["run", "build"][..]] {
        let mut npm = Command::new("npm");
        npm.args(args).current_dir(frontend);
        // Its own process group, killed with everything npm started if the demo is stopped
        // (or dropped) half-way.
        let status = match process::spawn(npm) {
            Ok(mut group) => group.wait().await,
            Err(err) => Err(err),
        };
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => {
                eprintln!("warning: npm {} failed ({status})", args.join(" "));
                return;
            }
            Err(err) => {
                eprintln!("warning: could not run npm: {err}");
                return;
            }
        }
    }
}
