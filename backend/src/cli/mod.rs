//! One module per verb of the `meshlog` binary.

pub mod community;
pub mod demo;
pub mod device;
pub mod replay;
pub mod report;
pub mod run;
pub mod sim_service;
pub mod sweep;

use std::time::Duration;

use meshlog_backend::api::access::{Token, TOKEN_FILE};
use meshlog_backend::api::serve::{Limits, ServerOptions};

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Who may call a server and how much it takes on; shared by `device` and `sim-service`.
#[derive(clap::Args, Clone, Debug)]
pub struct ServerArgs {
    /// Origin of a page allowed to call this server, e.g. http://127.0.0.1:5173 (the demo's
    /// page); repeat for more. The server's own origin is always allowed.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Serve on a non-loopback address, reachable from the network (refused without it).
    #[arg(long)]
    allow_remote: bool,
    /// Open connections at most; one more evicts a connection waiting for a request (one
    /// without the API token first), and is answered 503 only if all are busy.
    #[arg(long, default_value_t = Limits::default().connections_max)]
    connections_max: usize,
    /// Open live streams at most; more are answered 503.
    #[arg(long, default_value_t = Limits::default().streams_max)]
    streams_max: usize,
    /// A client without the API token must send a whole request head within this, or is
    /// disconnected (a second while more than half the connections are taken).
    #[arg(long, default_value_t = Limits::default().header_read_timeout.as_millis() as u64)]
    header_timeout_ms: u64,
    /// A connection that showed the API token is closed after this long idle.
    #[arg(long, default_value_t = Limits::default().idle_timeout.as_millis() as u64)]
    idle_timeout_ms: u64,
    /// A request body must arrive whole within this of its head, or is answered 408.
    #[arg(long, default_value_t = Limits::default().body_read_timeout.as_millis() as u64)]
    body_timeout_ms: u64,
}

impl ServerArgs {
    pub fn options(&self) -> ServerOptions {
        ServerOptions {
            allow_origins: self.allow_origins.clone(),
            allow_remote: self.allow_remote,
            limits: Limits {
                connections_max: self.connections_max,
                streams_max: self.streams_max,
                header_read_timeout: Duration::from_millis(self.header_timeout_ms),
                idle_timeout: Duration::from_millis(self.idle_timeout_ms),
                body_read_timeout: Duration::from_millis(self.body_timeout_ms),
            },
        }
    }
}

/// Tells the owner the API token, as Jupyter prints its URL: the one line they need.
pub fn print_token(who: &str, token: &Token, dir: &std::path::Path) {
    println!(
        "{who} API token {} (in {}); send it as Authorization: Bearer TOKEN",
        token.as_str(),
        dir.join(TOKEN_FILE).display()
    );
}
