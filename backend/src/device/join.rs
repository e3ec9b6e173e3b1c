//! `meshlog device --join TOKEN`: a new device joins a community with an invite an admin made
//! (`POST /api/invites`), before its node starts.
//!
//! ```text
//!  Joiner (core, sans-IO) ──request──> the invite's address (UDP, every second, up to a minute)
//!         <──welcome parts── the inviter's node (it admitted us; its driver learned our address)
//!  then: the welcome's membership events into the store, the community into KEYS/community.json,
//!        its epoch keys into DATA/epoch-keys.json, the inviter's address into DATA/peers.json;
//!        the node starts with the inviter as its peer
//! ```
//!
//! A device that has joined already (its keys directory holds this invite's community) skips
//! the exchange, so the same command starts it again after a restart.

use std::net::SocketAddr;

use meshlog_core::member::join::Joiner;
use meshlog_core::member::Invite;
use meshlog_core::Store;
use meshlog_net::{Clock, SystemClock};

use super::{bind_udp, epoch_keys, known_peers, DeviceError, DeviceOptions};
use crate::keys;
use crate::store::{Database, Durability, SqliteStore};

/// Where a datagram from the inviter may be: larger than any join datagram.
const RECEIVE_BUFFER_LEN: usize = 2_048;

/// The inviter's name and address, once this device is a member (joined now or before).
pub async fn join(
    options: &DeviceOptions,
    token: &str,
) -> Result<(String, SocketAddr), DeviceError> {
    let invite = Invite::from_token(token.trim())
        .map_err(|err| DeviceError::Join(format!("the invite: {err} ({})", err.code())))?;
    let inviter = invite.inviter.to_string();
    let address: SocketAddr = invite.address.parse().map_err(|_| {
        DeviceError::Join(format!(
            "the invite names {:?}, not an IP address and port",
            invite.address
        ))
    })?;
    if keys::exists(&options.keys_dir) {
        let community = keys::load_community(&options.keys_dir)?;
        if community.id() != &invite.grant.community {
            return Err(DeviceError::Join(format!(
                "{} already holds another community; give a keys directory of its own",
                options.keys_dir.display()
            )));
        }
        tracing::info!(%inviter, "already joined; starting");
        return Ok((inviter, address));
    }
    // The data directory holds decrypted messages: the owner's only, as `start` keeps it.
    crate::api::access::private_dir(&options.data_dir)?;
    let device_keys = keys::load_or_create_device(&options.keys_dir, &options.name)?;
    let socket = bind_udp(options.udp_addr).map_err(|source| DeviceError::Bind {
        what: "udp",
        addr: options.udp_addr,
        source,
    })?;
    let clock = SystemClock;
    let mut joiner = Joiner::new(device_keys, invite);
    let mut buf = vec![0u8; RECEIVE_BUFFER_LEN];
    let welcomed = loop {
        let now = clock.now();
        match joiner.poll_transmit(now) {
            Ok(Some(request)) => {
                if let Err(err) = socket.send_to(&request, address).await {
                    tracing::debug!(%err, "sending the join request");
                }
            }
            Ok(None) => {}
            Err(err) => return Err(DeviceError::Join(err.to_string())),
        }
        let wait_us = joiner
            .poll_timeout()
            .as_micros()
            .saturating_sub(clock.now().as_micros());
        let wait = std::time::Duration::from_micros(wait_us.max(1_000));
        let Ok(received) = tokio::time::timeout(wait, socket.recv_from(&mut buf)).await else {
            continue; // time to send again
        };
        let (len, _from) = match received {
            Ok(got) => got,
            // A refused send (the inviter not up yet) shows here on Linux: try again.
            Err(err) => {
                tracing::debug!(%err, "udp receive error while joining");
                continue;
            }
        };
        match joiner.handle_datagram(&buf[..len]) {
            Ok(Some(welcomed)) => break welcomed,
            Ok(None) => {}
            Err(err) => return Err(DeviceError::Join(err.to_string())),
        }
    };
    drop(socket);

    // The membership events first: the node settles its roster from them at start.
    let db = Database::in_data_dir(&options.data_dir, &options.db_key)?;
    let mut store = SqliteStore::open_with(&db, Durability::Full)?;
    let received_at_us = clock.now().as_micros();
    store.insert_all(&welcomed.events, received_at_us)?;
    store.commit()?;
    drop(store);
    // The welcome's keys cannot be found again in the log: kept before anything else.
    epoch_keys::save(&options.data_dir, db.key(), welcomed.community.epoch_keys())?;
    keys::write_joined_community(&options.keys_dir, &welcomed.community)?;
    // The inviter may be one admitted after genesis, whose address only the invite gave.
    known_peers::remember(&options.data_dir, welcomed.inviter.clone(), address)?;
    tracing::info!(
        inviter = %welcomed.inviter,
        events = welcomed.events.len(),
        "joined the community"
    );
    Ok((welcomed.inviter.to_string(), address))
}
