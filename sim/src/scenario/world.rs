//! `[world]`: how the devices of a world are built.

use serde::{Deserialize, Serialize};

/// Which store the devices of a world run (`[world] store`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// The world's shelf: fast, and what every power cut is modelled on.
    #[default]
    Memory,
    /// The shipped SQLite store, one file per device, opened by the world's [`StoreProvider`].
    Sqlite,
}

/// `[world]`: how the devices of the world are built.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorldSpec {
    /// `"memory"` (the default) or `"sqlite"`: the shipped store, a file per device, reopened
    /// after every crash (only where a provider exists: `meshlog run` and `sweep`).
    #[serde(default)]
    pub store: StoreKind,
    /// The genesis admins (`[[member]]` changes are theirs to make); the first device by
    /// name if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admins: Option<Vec<String>>,
    /// Devices of another community (one of their own, made from their names): on a
    /// `[[lan]]` they announce and hear announcements, and must learn nothing of this one.
    /// Nobody's peers, excused from converging, they post nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strangers: Vec<String>,
    /// Every device tells its node where it listens (`Node::set_own_addresses`), as the real
    /// backend does, so members pass signed address records along with the sync (peer
    /// exchange) and a device that knows one member finds the rest. Off by default: the
    /// scenarios measured before it keep their figures.
    #[serde(default, skip_serializing_if = "is_false")]
    pub peer_exchange: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl WorldSpec {
    pub(crate) fn is_default(&self) -> bool {
        *self == WorldSpec::default()
    }
}
