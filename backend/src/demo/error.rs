//! What the demo fails with.

use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;

use crate::api::access::AccessError;
use crate::keys::KeysError;
use crate::sim_mode::SimModeError;
use crate::sim_service::SimServiceError;

#[derive(Debug, Error)]
pub enum DemoError {
    #[error(transparent)]
    Keys(#[from] KeysError),
    #[error("starting {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("binding the page server on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("page server: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("--devices: {0}")]
    Devices(String),
    #[error(
        "{dir} holds keys for another set of devices (no {name}): use another --data-dir, \
         or delete it to start over"
    )]
    Roster { dir: PathBuf, name: String },
    #[error(transparent)]
    Service(#[from] SimServiceError),
    #[error(transparent)]
    SimMode(#[from] SimModeError),
}
