//! # meshlog-core
//!
//! The runtime-agnostic heart of meshlog: events, crypto, storage and the sync engine.
//! It is *sans-IO* (after quinn-proto and str0m): it never reads a clock, draws OS
//! randomness, opens a socket or starts a thread. Time and bytes go in; bytes to send, app
//! events and the next wake-up come out. The same code therefore runs on real UDP sockets
//! (`meshlog-net`) and inside the seeded virtual network (`meshlog-sim`), and a run is
//! reproducible from its inputs, byte for byte.
//!
//! ```text
//!   append(now, body) ─┐                        ┌─> Output::Transmit { to, bytes }   (send it)
//!   handle_input(      ├──>  Node<S: Store>  ───┼─> Output::Event(NodeEvent)         (log it, show it)
//!     Datagram | Timeout)                       └─> Output::Timeout(at)              (wake me then)
//! ```
//!
//! Call `poll_output` until it returns `Timeout`, after every input.
//!
//! ## Pieces
//! - [`event`]: the four event kinds; sealing (Ed25519 author signature, then XChaCha20-Poly1305
//!   under the community key) and opening, which rejects with a [`RejectReason`].
//!   `EventId = blake3(sealed bytes)`.
//! - [`crypto`]: device keys, the community (pre-shared key and roster), pairwise packet keys
//!   (X25519 of the roster's Ed25519 keys, then BLAKE3) and, for the simulator's many devices
//!   in one process, a shared memo of event signature checks.
//! - [`packet`]: one datagram = one packet of at most 1200 bytes from one device to one peer,
//!   tagged with their pairwise key and numbered by the sender's epoch and counter, carrying
//!   one or more items of one kind; opening rejects with a [`DropReason`], a replay included.
//! - [`discovery`]: LAN announcements: fixed-size, sealed under a key derived from the newest
//!   epoch key, signed by the announcing device; the node opens them at a bounded rate and
//!   makes a member it hears a peer (`Input::Announcement`, `Node::announcement`).
//! - [`peer_book`]: where a driver sends a peer's datagrams: its configured addresses,
//!   moved by the node's `PeerAddress` events (the real driver and the simulator share it).
//! - [`record`]: the format of a recording of one node's inputs (and a digest of its outputs),
//!   which the device's driver writes and the simulator replays.
//! - [`store`]: the [`Store`] trait and [`InMemoryStore`].
//! - `sync` (the crate's own): id-space buckets, incremental bucket fingerprints, wire Bloom
//!   filters, sketches.
//! - [`node`]: the protocol. Eager push of local appends (one packet per peer); every
//!   `sync_interval` a one-datagram summary to `sync_fanout` random peers, descending into
//!   differing buckets only, settled with Bloom filters seeded afresh each time; what is due to
//!   a peer packed into as few datagrams as fit; pacing by `events_per_round_max`; any node
//!   relays any event.
//! - `testing` (cargo feature `testing`): keys, communities, a small deterministic multi-node
//!   harness, the wire's internals for tests, and the [`Config`] switches that break the node
//!   on purpose (eager push, anti-entropy, relay, the amplification budget, replay protection
//!   off). The simulator and the tests turn it on; a device never does.
//!
//! ## The public surface
//! What a user of the node needs is re-exported here: the node and its inputs and outputs,
//! config, events, the store trait, ids and time, and packets' public facts (kind, note,
//! drop reason). The codec, the sync internals (buckets' index, filters, sketches) and the
//! wire (`Wire`: keys, epochs, replay windows) are the crate's own. `scripts/public-api`
//! keeps a list of every public path in `core/public-api.txt` (and
//! `core/public-api-testing.txt` with the feature); CI fails when it changes unblessed.
//!
//! ## Rules kept here
//! - Determinism: no `HashMap` order reaches output (ordered maps only), no `std::time`, no OS
//!   RNG: the node's `ChaCha20Rng` is seeded from `Config::seed`.
//! - Bounds: datagram size, text and chunk sizes, peers, events per round, queued outputs.
//! - Bad bytes from the network are counted and reported, never a panic; a broken internal
//!   invariant is a bug and asserts.

pub mod blob;
pub mod clock;
pub(crate) mod codec;
pub mod config;
pub mod crypto;
pub mod discovery;
pub mod event;
pub mod id;
pub mod member;
pub mod node;
pub mod packet;
pub mod peer_book;
pub mod record;
pub mod stats;
pub mod store;
pub(crate) mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;

pub use codec::DecodeError;

pub use config::{Config, ConfigError};
pub use crypto::{
    Community, DeviceKeys, Keyring, PairKey, PublicKey, SignatureClaim, SignatureMemo,
};
pub use event::{
    chunk_file, open, seal, seal_plaintext, Carrier, Event, EventBody, FileRef, OpenedEvent,
    RejectReason, SealError,
};
pub use id::{DeviceId, EventId, FileId};
pub use node::{
    AppendError, Input, Node, NodeError, NodeEvent, Origin, Output, TraceLine, Transmit,
    CREDIT_INITIAL_BYTES, RECORD_CHECKS_PER_PEER_PER_ROUND, REPLY_FACTOR,
};
pub use packet::{
    AddressRecord, DropReason, NoteItem, Packet, PacketKind, PacketNote, Payload, ShortId,
    DATAGRAM_SIZE_MAX,
};
pub use peer_book::PeerBook;
pub use stats::{BlobTotals, BudgetTotals, PeerInfo, PeerState, Stats, Traffic};
pub use store::{InMemoryStore, Store, StoreError};
pub use sync::index::BucketSummary;
pub use sync::prefix::Prefix;
pub use time::{Duration, Instant};
