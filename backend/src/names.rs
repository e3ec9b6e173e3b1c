//! The backend's one device-name rule: core's [`DeviceId::new`] (1 to 32 characters of a-z,
//! 0-9, `-` and `_`). Every name the backend takes from a person or a file (keys, peers,
//! `--device`, the demo's `--devices`, SQLite stores) goes through [`device_id`], so no part of
//! it accepts a name another part refuses. What only the demo adds on top is in
//! `demo::check_devices`, with its reason.

use meshlog_core::DeviceId;
use thiserror::Error;

/// A name core's [`DeviceId::new`] refuses.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{0:?} is not a device name (1 to 32 characters of a-z, 0-9, - and _)")]
pub struct BadDeviceName(pub String);

/// `name` as a device id, or why not.
pub fn device_id(name: &str) -> Result<DeviceId, BadDeviceName> {
    DeviceId::new(name).ok_or_else(|| BadDeviceName(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_is_cores() {
        for good in ["alice", "a", "9lives", "node_7", "-x", &"a".repeat(32)] {
            assert_eq!(device_id(good).unwrap().as_str(), good);
        }
        for bad in ["", "Bob", "a.b", "a/b", "..", "ä", &"a".repeat(33)] {
            assert_eq!(device_id(bad), Err(BadDeviceName(bad.to_owned())));
        }
    }
}
