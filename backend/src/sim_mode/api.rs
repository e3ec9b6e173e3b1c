//! A simulated device behind the device API (`crate::api`): the world thread in place of the
//! driver and the SQLite reader, so the same routes, checks and JSON serve it.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use meshlog_core::member::Invite;
use meshlog_core::{EventBody, EventId, FileId};
use meshlog_sim::host::HostError;
use tokio::sync::broadcast;

use super::outputs::DeviceOutputs;
use super::world_thread::{WorldError, WorldHandle};
use crate::api::members::{not_in_simulated_mode, InviteRequest};
use crate::api::peers::unknown_peer;
use crate::api::{DeviceBackend, JsonBytes};
use crate::device::netlog::NetLog;
use crate::device::state::Frame;
use crate::device::views::{MemberView, MessageView, StatsView};
use crate::http::ApiError;
use crate::paging::PageRequest;
use crate::store::FileContent;
use meshlog_net::Blocked;

/// One simulated device as the device API sees it.
#[derive(Clone, Debug)]
pub struct SimDevice {
    pub index: usize,
    pub outputs: DeviceOutputs,
    pub world: WorldHandle,
    /// (name, world index) of each device it peers with, from the topology.
    pub peers: Vec<(String, usize)>,
}

impl From<WorldError> for ApiError {
    fn from(err: WorldError) -> Self {
        match &err {
            WorldError::Host(HostError::Append { .. }) => ApiError::bad_request(err.to_string()),
            WorldError::Host(HostError::UnknownDevice(_)) => ApiError::not_found(err.to_string()),
            WorldError::Host(HostError::Down(_)) => ApiError {
                status: StatusCode::CONFLICT,
                message: err.to_string(),
            },
            _ => ApiError::internal(err),
        }
    }
}

impl DeviceBackend for SimDevice {
    fn name(&self) -> &str {
        &self.outputs.name
    }

    fn netlog(&self) -> &Arc<Mutex<NetLog>> {
        &self.outputs.netlog
    }

    fn frames(&self) -> &broadcast::Sender<Frame> {
        &self.outputs.frames
    }

    async fn append(
        &self,
        bodies: Vec<EventBody>,
    ) -> Result<(Vec<EventId>, Option<MessageView>), ApiError> {
        Ok(self.world.append(self.index, bodies).await?)
    }

    /// Pages and searches by the rule of [`crate::paging`], as a real device's SQL does, over
    /// the world thread's index of the device's messages.
    async fn messages(&self, request: PageRequest) -> Result<JsonBytes, ApiError> {
        Ok(self.world.messages(self.index, request).await?.into_json())
    }

    async fn message(&self, id: EventId) -> Result<Option<MessageView>, ApiError> {
        Ok(self.world.message(self.index, id).await?)
    }

    async fn file(&self, file: FileId) -> Result<Option<FileContent>, ApiError> {
        Ok(self.world.file(self.index, file).await?)
    }

    async fn stats(&self) -> Result<StatsView, ApiError> {
        Ok(self.world.stats(self.index).await?)
    }

    async fn set_online(&self, online: bool) -> Result<(), ApiError> {
        Ok(self.world.set_online(self.index, online).await?)
    }

    /// Simulated devices block a peer by cutting the virtual links to and from it.
    async fn blocked(&self, peer: &str) -> Result<Blocked, ApiError> {
        let peer = self.peer_index(peer)?;
        let (outbound, inbound) = self.world.is_cut(self.index, peer).await?;
        Ok(Blocked { inbound, outbound })
    }

    async fn set_blocked(&self, peer: &str, blocked: Blocked) -> Result<Blocked, ApiError> {
        let index = self.peer_index(peer)?;
        self.world
            .set_cut(self.index, index, blocked.outbound)
            .await?;
        self.world
            .set_cut(index, self.index, blocked.inbound)
            .await?;
        self.blocked(peer).await
    }

    async fn members(&self) -> Result<Vec<MemberView>, ApiError> {
        Ok(self.world.members(self.index).await?)
    }

    /// The simulator's host offers appends, not the node's admin verbs (`sim::host`).
    async fn remove_member(&self, _name: &str) -> Result<u32, ApiError> {
        Err(not_in_simulated_mode("removing a member"))
    }

    async fn remove_person(&self, _name: &str) -> Result<u32, ApiError> {
        Err(not_in_simulated_mode("removing a person"))
    }

    async fn rotate_keys(&self) -> Result<u32, ApiError> {
        Err(not_in_simulated_mode("rotating keys"))
    }

    async fn create_invite(&self, _request: InviteRequest) -> Result<Invite, ApiError> {
        Err(not_in_simulated_mode("an invite"))
    }
}

impl SimDevice {
    /// The world's index of `peer`, if it is one of this device's peers.
    fn peer_index(&self, peer: &str) -> Result<usize, ApiError> {
        self.peers
            .iter()
            .find(|(name, _)| name == peer)
            .map(|(_, index)| *index)
            .ok_or_else(|| unknown_peer(peer))
    }
}

#[cfg(test)]
mod tests {
    //! One table of pages and searches, run through a real device's SQLite store and through
    //! the simulated path (the world thread's index, `entries::DeviceIndex`): the rule of
    //! `crate::paging` is one only if both answer the same.

    use meshlog_core::event::{seal, Event};
    use meshlog_core::testing::{community_of, keys};
    use meshlog_core::{chunk_file, DeviceId, InMemoryStore, Instant, OpenedEvent, Store};

    use super::*;
    use crate::paging::Cursor;
    use crate::sim_mode::entries::DeviceIndex;
    use crate::store::{Database, DbKey, SqliteStore, StoreReader};

    /// (text, attachment name, created at µs); several share a microsecond, so ids break ties.
    const MESSAGES: [(&str, Option<&str>, u64); 12] = [
        ("Lunch at the café?", None, 1_000),
        ("the deploy went fine", None, 1_000),
        ("numbers attached", Some("Quarterly-Report.pdf"), 1_001),
        ("another deploy tomorrow", None, 1_500),
        ("don't stop deploying", None, 1_500),
        ("İstanbul'da ŞEHİR turu", None, 1_500),
        ("naïve résumé: RÉSUMÉ", None, 2_000),
        ("OR and NOT are words here", None, 2_000),
        ("hello world", Some("hello.txt"), 2_000),
        ("straße Øre æble", None, 3_000),
        ("m\u{0065}\u{0301}lange decomposed", None, 3_000),
        ("deploy", Some("deploy-notes.md"), 3_001),
    ];

    /// q -> the texts found, newest first (created at, then id: as the order says).
    const SEARCHES: [(&str, &[usize]); 26] = [
        ("deploy", &[11, 3, 1]),
        ("\"deploy\"", &[11, 3, 1]),
        ("depl*", &[11, 4, 3, 1]),
        ("\"depl\"*", &[11, 4, 3, 1]),
        ("DEPLOY went", &[1]),
        ("\"deploy went\"", &[1]),
        ("\"went deploy\"", &[]),
        ("\"the deploy\" \"fin\"*", &[1]),
        ("cafe", &[0]),
        ("CAFÉ", &[0]),
        ("quarterly", &[2]),
        ("\"report pdf\"", &[2]),
        ("\"attached quarterly\"", &[]),
        ("notes", &[11]),
        ("don t", &[4]),
        ("\"don't\"", &[4]),
        ("istanbul sehir", &[5]),
        ("resume naive", &[6]),
        ("OR", &[7]),
        ("or not", &[7]),
        ("hello", &[8]),
        ("txt", &[8]),
        ("strasse", &[]),
        ("øre ÆBLE straße", &[9]),
        ("melange", &[10]),
        ("!! deploy", &[11, 3, 1]),
    ];

    fn sealed(i: usize) -> OpenedEvent {
        let (text, file, at_us) = MESSAGES[i];
        let attachment = file.map(|name| chunk_file(name, "text/plain", b"x").unwrap().0);
        let event = Event {
            author: DeviceId::new("alice").unwrap(),
            created_at: Instant::from_micros(at_us),
            body: EventBody::Message {
                text: text.into(),
                attachment,
                auto: false,
            },
        };
        let nonce = [i as u8; 24];
        seal(
            &event,
            &keys("alice", 1),
            &community_of(&["alice"], 1),
            nonce,
        )
        .unwrap()
    }

    /// Both stores holding `MESSAGES`, and a way to ask each for a page: ids newest first.
    struct Both {
        _dir: tempfile::TempDir,
        reader: StoreReader,
        memory: DeviceIndex,
        ids: Vec<EventId>,
    }

    impl Both {
        fn new() -> Both {
            let dir = tempfile::tempdir().unwrap();
            let db = Database::new(dir.path().join("db.sqlite3"), DbKey::random());
            let mut sqlite = SqliteStore::open(&db).unwrap();
            let mut memory = InMemoryStore::new();
            let mut ids = Vec::new();
            for i in 0..MESSAGES.len() {
                let event = sealed(i);
                sqlite.insert(&event, 1).unwrap();
                memory.insert(&event, 1).unwrap();
                ids.push(event.id);
            }
            Both {
                reader: StoreReader::open(&db).unwrap(),
                _dir: dir,
                memory: DeviceIndex::of_store(&memory, "alice"),
                ids,
            }
        }

        /// (ids newest first, next) from SQLite and from the simulated path.
        fn page(&self, request: &PageRequest) -> [(Vec<EventId>, Option<String>); 2] {
            let real = self.reader.page(request).unwrap();
            let real = (
                real.messages.iter().map(|m| m.id).collect(),
                real.next.map(|c| c.to_string()),
            );
            let sim = self.memory.page(request);
            let sim = (
                sim.messages
                    .iter()
                    .rev()
                    .map(|m| EventId::from_hex(&m.id).unwrap())
                    .collect(),
                sim.next,
            );
            [real, sim]
        }
    }

    #[test]
    fn real_and_simulated_devices_find_the_same_messages() {
        let both = Both::new();
        for (q, expected) in SEARCHES {
            let request = PageRequest::parse(None, None, Some(q)).unwrap();
            let [real, sim] = both.page(&request);
            // The expected order is the rule's: newest first, ties by id.
            let mut want: Vec<usize> = expected.to_vec();
            want.sort_by_key(|&i| std::cmp::Reverse(Cursor::at(MESSAGES[i].2, both.ids[i])));
            let want: Vec<EventId> = want.iter().map(|&i| both.ids[i]).collect();
            assert_eq!(real.0, want, "SQLite, q={q:?}");
            assert_eq!(sim.0, want, "simulated, q={q:?}");
            assert_eq!((real.1, sim.1), (None, None), "q={q:?}");
        }
    }

    #[test]
    fn real_and_simulated_devices_page_alike() {
        let both = Both::new();
        for (limit, q) in [
            (1, None),
            (5, None),
            (12, None),
            (1, Some("deploy")),
            (2, Some("d*")),
        ] {
            let mut request = PageRequest::parse(None, Some(limit), q).unwrap();
            let mut walked = Vec::new();
            loop {
                let [real, sim] = both.page(&request);
                assert_eq!(
                    real, sim,
                    "limit {limit}, q {q:?}, before {:?}",
                    request.before
                );
                assert!(real.0.len() <= limit);
                walked.extend(real.0);
                match real.1 {
                    Some(next) => request.before = Some(Cursor::parse(&next).unwrap()),
                    None => break,
                }
            }
            let mut all = both.ids.clone();
            if q.is_some() {
                let search = request.search.as_ref().unwrap();
                all.retain(|id| {
                    let i = both.ids.iter().position(|x| x == id).unwrap();
                    search.matches(MESSAGES[i].0, MESSAGES[i].1)
                });
            }
            let key = |id: &EventId| {
                let i = both.ids.iter().position(|x| x == id).unwrap();
                std::cmp::Reverse(Cursor::at(MESSAGES[i].2, *id))
            };
            all.sort_by_key(key);
            assert_eq!(
                walked, all,
                "each message once, newest first (limit {limit}, q {q:?})"
            );
        }
    }

    #[test]
    fn requests_are_checked_once_for_both() {
        assert!(PageRequest::parse(Some("yesterday"), None, None).is_err());
        assert!(PageRequest::parse(None, Some(0), None).is_err());
        assert!(PageRequest::parse(None, Some(501), None).is_err());
        assert!(PageRequest::parse(None, None, Some("\"unclosed")).is_err());
        assert!(PageRequest::parse(None, None, Some(&"a".repeat(257))).is_err());
        let blank = PageRequest::parse(Some(""), None, Some("  ")).unwrap();
        assert_eq!((blank.before, blank.limit, blank.search), (None, 100, None));
    }
}
