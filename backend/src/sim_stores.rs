//! The shipped SQLite store inside the simulator's world (`[world] store = "sqlite"`): one
//! database file per device in a temporary directory, removed when the world is dropped.
//! The world drops a device's store at a crash and opens it again at the restart, so the
//! restarted node sees exactly what SQLite kept. The world's trace never names the directory:
//! the same seed gives the same digest wherever it runs.

use std::path::PathBuf;
use std::rc::Rc;

use meshlog_core::{Store, StoreError};
use meshlog_sim::{Scenario, StoreKind, StoreProvider, WorldOptions};

use crate::names::device_id;
use crate::store::{Database, DbKey, Durability, SqliteStore};

/// Opens each device's SQLite file, as the device server does (`Durability::FullForOwn`: own
/// events fsynced before they are acknowledged, received ones committed `NORMAL`), encrypted
/// as it does, under a key made for this world (the files die with it). The key and the
/// file's bytes never reach the trace, so the OS randomness behind them changes no digest.
#[derive(Debug)]
pub struct SqliteStores {
    dir: tempfile::TempDir,
    key: DbKey,
}

impl SqliteStores {
    pub fn new() -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("meshlog-sim-").tempdir()?;
        Ok(SqliteStores {
            dir,
            key: DbKey::random(),
        })
    }

    /// The database file of `device`.
    pub fn path(&self, device: &str) -> PathBuf {
        self.dir.path().join(format!("{device}.sqlite3"))
    }
}

impl StoreProvider for SqliteStores {
    fn open(&self, device: &str) -> Result<Box<dyn Store>, StoreError> {
        let me = device_id(device).map_err(|err| StoreError::Backend(err.to_string()))?;
        let db = Database::new(self.path(device), self.key.clone());
        let store = SqliteStore::open_with(&db, Durability::FullForOwn(me))
            .map_err(|err| StoreError::Backend(err.to_string()))?;
        Ok(Box::new(store))
    }
}

/// The options a run of `scenario` needs: a fresh directory of SQLite files if it asks for
/// them (one per run: a sweep's runs share nothing), none otherwise.
pub fn world_options(scenario: &Scenario) -> std::io::Result<WorldOptions> {
    let stores: Option<Rc<dyn StoreProvider>> = match scenario.world.store {
        StoreKind::Memory => None,
        StoreKind::Sqlite => Some(Rc::new(SqliteStores::new()?)),
    };
    Ok(WorldOptions {
        stores,
        ..WorldOptions::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopened_store_holds_what_was_committed_and_the_directory_goes_with_it() {
        use meshlog_core::event::{seal, Event, EventBody};
        use meshlog_core::testing::{community_of, keys};
        use meshlog_core::{DeviceId, Instant};

        let stores = SqliteStores::new().unwrap();
        let dir = stores.dir.path().to_owned();
        let community = community_of(&["alice", "bob"], 1);
        let event = Event {
            author: DeviceId::new("alice").unwrap(),
            created_at: Instant::from_millis(5),
            body: EventBody::Message {
                text: "kept".into(),
                attachment: None,
                auto: false,
            },
        };
        let opened = seal(&event, &keys("alice", 1), &community, [3; 24]).unwrap();
        let mut store = stores.open("alice").unwrap();
        store.insert_all(std::slice::from_ref(&opened), 1).unwrap();
        drop(store);
        let store = stores.open("alice").unwrap();
        assert_eq!(store.ids().unwrap(), vec![opened.id]);
        assert!(stores.open("bob").unwrap().is_empty().unwrap());
        drop((store, stores));
        assert!(!dir.exists(), "the temporary directory is removed");
    }
}
