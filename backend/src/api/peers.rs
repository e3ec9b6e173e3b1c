//! `POST /api/peers/:name/blocked`: the demo's cuts and partitions, applied by the device
//! itself. A real device's driver drops datagrams to and from a blocked peer on real UDP
//! (drop reason `blocked`); a simulated device cuts the virtual links.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use meshlog_net::Blocked;
use serde::{Deserialize, Serialize};

use super::backend::DeviceBackend;
use crate::http::{json_body, ApiError};

/// `blocked` sets both ways; `inbound` / `outbound` set one way each (and win over `blocked`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockChange {
    blocked: Option<bool>,
    inbound: Option<bool>,
    outbound: Option<bool>,
}

impl BlockChange {
    fn apply(&self, current: Blocked) -> Result<Blocked, ApiError> {
        if self.blocked.is_none() && self.inbound.is_none() && self.outbound.is_none() {
            return Err(ApiError::bad_request(
                "blocked: missing (or give inbound / outbound)",
            ));
        }
        let both = self.blocked;
        Ok(Blocked {
            inbound: self.inbound.or(both).unwrap_or(current.inbound),
            outbound: self.outbound.or(both).unwrap_or(current.outbound),
        })
    }
}

#[derive(Debug, Serialize)]
pub struct BlockAnswer {
    peer: String,
    /// Blocked at least one way.
    blocked: bool,
    inbound: bool,
    outbound: bool,
}

pub async fn post_blocked<B: DeviceBackend>(
    State(device): State<B>,
    Path(peer): Path<String>,
    body: Result<Json<BlockChange>, JsonRejection>,
) -> Result<Json<BlockAnswer>, ApiError> {
    // Unknown peer first: a 404 says more than a complaint about the body.
    let current = device.blocked(&peer).await?;
    let next = json_body(body)?.apply(current)?;
    let now = device.set_blocked(&peer, next).await?;
    Ok(Json(BlockAnswer {
        peer,
        blocked: now.inbound || now.outbound,
        inbound: now.inbound,
        outbound: now.outbound,
    }))
}

/// The 404 both kinds of device answer for a name that is not one of their peers (nor, for a
/// real device, an active member it may yet find).
pub fn unknown_peer(peer: &str) -> ApiError {
    ApiError::not_found(format!(
        "peer {peer:?} is not one of this device's peers nor an active member"
    ))
}
