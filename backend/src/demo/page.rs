//! The page server: the built page from `frontend/dist` (built with npm first if missing),
//! handing the browser the demo's token as an HttpOnly cookie, and telling the page where its
//! simulation service is (a `<meta name="meshlog-config">` put into `index.html`), so a demo on
//! moved ports is found on them and not at the default port, where another demo may answer.

use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use tokio::process::Command;
use tower_http::services::ServeDir;

use super::error::DemoError;
use super::options::DemoOptions;
use super::process;
use crate::api::access::{Guard, Token, TOKEN_COOKIE};
use crate::http::ApiError;

/// Serves the page's built files, building them first if `dist` is missing. Unknown paths
/// get `index.html`, so the page's own routes work on reload; `index.html` always carries the
/// [`PageConfig`].
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
    let index = Index {
        path: dist.join("index.html"),
        config: PageConfig {
            service_port: options.ports.service,
        },
    };
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
    // `/` is not left to `ServeDir`, which would answer it with the file as built, without
    // the configuration.
    let app = Router::new()
        .route("/", get(serve_index))
        .route("/index.html", get(serve_index))
        .fallback_service(
            ServeDir::new(&dist)
                .append_index_html_on_directories(false)
                .fallback(serve_index.with_state(index.clone())),
        )
        .with_state(index)
        .layer(from_fn_with_state(page, hand_over_token));
    Ok(tokio::spawn(
        async move { axum::serve(listener, app).await },
    ))
}

/// What the page needs to know of this demo before it asks anything (the page reads it in
/// `frontend/src/state/config.ts`; without it, as under Vite's dev server, it takes the
/// defaults).
#[derive(Clone, Copy, Debug, Serialize)]
struct PageConfig {
    /// The simulation service, on the host the page was opened at; it lists the devices.
    service_port: u16,
}

#[derive(Clone, Debug)]
struct Index {
    path: PathBuf,
    config: PageConfig,
}

/// `index.html` with the configuration in it, read on each request so a page rebuilt while
/// the demo runs is served as rebuilt. Not cached by the browser: it names the build's files.
async fn serve_index(State(index): State<Index>) -> Response {
    match tokio::fs::read_to_string(&index.path).await {
        Ok(html) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            with_config(&html, index.config),
        )
            .into_response(),
        Err(err) => ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("the page is not built ({}: {err})", index.path.display()),
        }
        .into_response(),
    }
}

/// `html` with `config` as `<meta name="meshlog-config" content="JSON">` at the end of its
/// head (at the start when it has none).
fn with_config(html: &str, config: PageConfig) -> String {
    let json = serde_json::to_string(&config).expect("a struct of numbers serializes");
    // Attribute-escaped: the JSON's quotes (and anything else) cannot end the attribute.
    let content = json
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let meta = format!(r#"<meta name="meshlog-config" content="{content}" />"#);
    match html.find("</head>") {
        Some(at) => format!("{}{meta}\n  {}", &html[..at], &html[at..]),
        None => format!("{meta}\n{html}"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_goes_at_the_end_of_the_head_escaped() {
        let html = "<html><head><title>t</title></head><body></body></html>";
        let served = with_config(
            html,
            PageConfig {
                service_port: 42005,
            },
        );
        assert_eq!(
            served,
            "<html><head><title>t</title><meta name=\"meshlog-config\" \
             content=\"{&quot;service_port&quot;:42005}\" />\n  </head><body></body></html>"
        );
        assert!(with_config("<p>", PageConfig { service_port: 1 })
            .starts_with(r#"<meta name="meshlog-config""#));
    }
}
