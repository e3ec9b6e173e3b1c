//! Event signatures checked ahead of the node, on every core.
//!
//! Opening an event costs the node one Ed25519 check (about 60 µs on the project's 2-core
//! machine), which made a catch-up's node thread the bottleneck: 80% of its samples were curve
//! arithmetic. Before the node thread hands a batch of inputs to its node, it checks the
//! signatures of the events the batch's datagrams carry, in Ed25519 batches
//! (`SignatureClaim::verify_all`) split over scoped threads, one per core, and leaves each
//! answer in the community's signature memo (`SignatureMemo::prechecks`). The node then opens
//! each event as before and finds its signature's answer there; it still makes every other
//! check itself, and checks a signature the memo lacks. So the node's logic stays
//! single-threaded and deterministic: the memo changes how long a check takes, not its answer.
//!
//! Batches, two to three times cheaper per signature than checks one by one, give every
//! signature the same answer as the node's own check under the protocol's rule (ZIP-215,
//! `docs/PROTOCOL.md`), which is what makes them safe here: a device checking ahead accepts
//! exactly what every other device and the simulator accept. A batch that fails is checked
//! again one by one, so a forged event is found and costs its batch single checks. The
//! batches' random weights are drawn here, from the OS, never in the node.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use meshlog_core::event::signature_claim;
use meshlog_core::{Community, Node, SignatureClaim, SignatureMemo, Store};
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, SeedableRng};

use super::batch::Work;

/// Fewer claims than this per thread are checked on the node thread alone: starting a thread
/// costs tens of microseconds, a single check's worth (about 60 µs each).
const CLAIMS_PER_THREAD_MIN: usize = 32;
/// Claims in one Ed25519 batch: past a few dozen the batch's own costs (its multi-scalar
/// multiplication's setup, one key decoding per author) are spread thin, and a batch that
/// fails (a forged event among them) costs this many single checks again.
const CLAIMS_PER_BATCH: usize = 64;
/// Checker threads at most, whatever the machine: past this the node's own work is the limit.
const THREADS_MAX: usize = 8;

/// Checks the signatures of the events in `work`'s datagrams that `node` does not hold yet,
/// and leaves the answers in its community's memo. Does nothing without a memo.
pub(super) fn precheck<S: Store>(node: &Node<S>, work: &[Work]) {
    let community = &node.config().community;
    let Some(memo) = community.signature_memo() else {
        return;
    };
    // Only authentic datagrams' events the node lacks (it skips held ones unopened), and an
    // event arriving twice in a batch (from two peers) once. Bounded by the batch's datagrams.
    let mut seen = BTreeSet::new();
    let sealed: Vec<&[u8]> = work
        .iter()
        .filter_map(|work| match work {
            Work::Datagram { bytes, .. } => Some(node.unheld_events(bytes)),
            _ => None,
        })
        .flatten()
        .filter(|sealed| seen.insert(*sealed))
        .collect();
    let threads = threads().min(sealed.len() / CLAIMS_PER_THREAD_MIN).max(1);
    if threads == 1 {
        return check(&sealed, community, memo);
    }
    let share = sealed.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut shares = sealed.chunks(share);
        // The node thread checks the first share itself.
        let own = shares.next().unwrap_or_default();
        for share in shares {
            scope.spawn(move || check(share, community, memo));
        }
        check(own, community, memo);
    });
}

/// Checks the signatures of `sealed` events (decrypting each to find what was signed) and
/// remembers the answers; an event that does not decrypt or decode is left to the node.
fn check(sealed: &[&[u8]], community: &Community, memo: &SignatureMemo) {
    let claims: Vec<SignatureClaim> = sealed
        .iter()
        .filter_map(|sealed| signature_claim(sealed, community))
        .collect();
    // The weights must be unpredictable to whoever made the claims (a forger who knew them
    // could balance a false claim against another): seeded from the OS once per share, as
    // drawing each weight from the OS would cost a system call per signature.
    let mut rng = ChaCha20Rng::from_rng(OsRng).expect("the OS has randomness");
    for batch in claims.chunks(CLAIMS_PER_BATCH) {
        if SignatureClaim::verify_all(batch, &mut rng) {
            for claim in batch {
                memo.remember_checked(claim, true);
            }
        } else {
            for claim in batch {
                memo.remember_checked(claim, claim.verify());
            }
        }
    }
}

/// Checker threads for a batch: one per core the process may use (the node thread is one).
fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(THREADS_MAX)
    })
}

#[cfg(test)]
mod tests {
    use meshlog_core::event::seal;
    use meshlog_core::testing::{address, community_of, device, events_payload, keys, message};
    use meshlog_core::{
        Config, DeviceKeys, Event, InMemoryStore, Input, Instant, Keyring, Node, NodeEvent, Output,
        Packet, RejectReason,
    };

    use super::*;

    fn event_by(author: &DeviceKeys, i: u64, community: &Community) -> Vec<u8> {
        let event = Event {
            author: device("bob"),
            created_at: Instant::from_millis(1_000 + i),
            body: message(&format!("message {i}")),
        };
        let mut nonce = [0u8; 24];
        nonce[..8].copy_from_slice(&i.to_le_bytes());
        seal(&event, author, community, nonce).unwrap().sealed
    }

    #[test]
    fn a_forged_signature_checked_ahead_is_still_rejected_and_counted() {
        let community = community_of(&["alice", "bob"], 1).with_signature_prechecks();
        let now = Instant::from_millis(5);
        let config = Config::new(
            keys("alice", 1),
            community.clone(),
            vec![device("bob")],
            [7; 32],
        );
        let mut alice = Node::new(config, InMemoryStore::new(), now).unwrap();
        // Enough sound events by bob for checker threads and full batches, and one that
        // claims bob as its author but is signed with another key, in the middle.
        let forger = DeviceKeys::from_secret(device("bob"), [9; 32]);
        let mut sealed: Vec<Vec<u8>> = (0..600)
            .map(|i| event_by(&keys("bob", 1), i, &community))
            .collect();
        sealed.insert(300, event_by(&forger, 600, &community));
        // Bob's datagram to alice at `counter`, tagged with `signer`'s pairwise key.
        let echo = alice.epoch();
        let datagram = |signer: &DeviceKeys, counter: u64, events: Vec<Vec<u8>>| {
            let keyring = Keyring::for_roster(signer, &community);
            let packet = Packet {
                source: device("bob"),
                target: device("alice"),
                epoch: 1,
                counter,
                echo,
                payload: events_payload(events),
            };
            Work::Datagram {
                now,
                from: address("bob"),
                bytes: packet.seal(keyring.key(&device("alice")).unwrap()),
            }
        };
        let mut work: Vec<Work> = sealed
            .chunks(5)
            .zip(0..)
            .map(|(events, counter)| datagram(&keys("bob", 1), counter, events.to_vec()))
            .collect();
        // A sound event in a datagram whose tag is not bob's (made with the forger's key): not
        // checked ahead, and dropped by the node as `bad_mac` before any check.
        let sound = event_by(&keys("bob", 1), 601, &community);
        work.push(datagram(&forger, 1_000, vec![sound]));

        precheck(&alice, &work);
        // Every clone of the community shares the memo, the node's own copy too.
        let memo = community.signature_memo().unwrap();
        assert_eq!(memo.len(), 601, "every signature is checked ahead");
        for work in work {
            let Work::Datagram { now, from, bytes } = work else {
                unreachable!("datagrams only")
            };
            alice.handle_input(Input::Datagram {
                now,
                from,
                bytes: &bytes,
            });
        }
        assert_eq!(alice.event_count(), 600, "the sound events are stored");
        assert_eq!(alice.stats().drops.get("event_bad_signature"), Some(&1));
        assert_eq!(alice.stats().drops.get("bad_mac"), Some(&1));
        assert!(memo.is_empty(), "the node used every answer, once");
        let mut rejected = 0;
        loop {
            match alice.poll_output() {
                Output::Timeout(_) => break,
                Output::Event(NodeEvent::EventRejected { reason, .. }) => {
                    assert!(matches!(reason, RejectReason::BadSignature), "{reason:?}");
                    rejected += 1;
                }
                _ => {}
            }
        }
        assert_eq!(rejected, 1);
    }
}
