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
}

impl WorldSpec {
    pub(crate) fn is_default(&self) -> bool {
        *self == WorldSpec::default()
    }
}
