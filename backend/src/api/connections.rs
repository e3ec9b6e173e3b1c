//! Who holds a server's connection slots, and who gives one up when they are all taken.
//!
//! A slot is cheap to take and, before this table, was held until the client let go or the
//! header timeout passed: 256 sockets that sent half a request head, or sat idle on
//! keep-alive, shut the owner out. Now, as nginx and hyper servers do, a connection that
//! is not in the middle of a request can be taken back:
//!
//! - **Full:** a newcomer evicts the connection that has waited longest for a request head
//!   without ever having shown the API token; failing that, the token-bearing connection idle
//!   the longest. Only when every slot is in the middle of a request (or a live stream) is the
//!   newcomer refused (503). Someone without the token can therefore hold no slot for longer
//!   than it takes the next few hundred connections to arrive.
//! - **Timeouts:** waiting for a head is bounded by `header_read_timeout` (cut to
//!   [`HEADER_READ_TIMEOUT_UNDER_PRESSURE`] while more than half the slots are taken); a
//!   token-bearing connection idle between requests by `idle_timeout`.
//!
//! A request counts as token-bearing when its answer carries [`Authenticated`], which only
//! `access::require_token` adds.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::Notify;

/// A connection without the token that waits for a head while more than half the slots are
/// taken gets this long, whatever `header_read_timeout` says: a client sends its head as soon
/// as it connects, and a second is many round trips even across a continent.
pub const HEADER_READ_TIMEOUT_UNDER_PRESSURE: Duration = Duration::from_secs(1);

/// How often the timeouts are checked: the granularity of every connection deadline.
pub const EXPIRY_INTERVAL: Duration = Duration::from_millis(100);

/// Marks an answer to a request that showed this server's API token.
#[derive(Clone, Copy, Debug)]
pub struct Authenticated;

/// The timeouts a [`Table`] applies.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

#[derive(Debug)]
struct Slot {
    /// A request is being answered (its answer's body not yet all taken).
    busy: bool,
    /// Some request on this connection showed the token.
    authenticated: bool,
    /// Since when it has waited for a request head (accepted, or its last answer ended).
    waiting_since: Instant,
    close: Arc<Notify>,
}

#[derive(Debug)]
struct Slots {
    /// By accept order: the first that qualifies is the oldest.
    slots: BTreeMap<u64, Slot>,
    next_id: u64,
}

/// A server's connection slots.
#[derive(Debug)]
pub struct Table {
    slots: Mutex<Slots>,
    connections_max: usize,
    timeouts: Timeouts,
}

/// What became of a connection that asked for a slot.
#[derive(Debug)]
pub enum Admission {
    /// It has a slot (possibly one another connection was evicted from).
    Admitted(Connection),
    /// Every slot is answering a request; answer 503.
    Full,
}

impl Table {
    pub fn new(connections_max: usize, timeouts: Timeouts) -> Arc<Table> {
        Arc::new(Table {
            slots: Mutex::new(Slots {
                slots: BTreeMap::new(),
                next_id: 0,
            }),
            connections_max,
            timeouts,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        // A panic elsewhere while holding it leaves the table consistent (each step is one
        // map operation), so the poison is not ours to propagate.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open connections holding a slot.
    #[cfg(test)]
    fn open_count(&self) -> usize {
        self.lock().slots.len()
    }

    /// A slot for a connection accepted at `now`, evicting one if the table is full.
    pub fn admit(self: &Arc<Self>, now: Instant) -> Admission {
        let mut slots = self.lock();
        if slots.slots.len() >= self.connections_max && !evict_one(&mut slots) {
            return Admission::Full;
        }
        let id = slots.next_id;
        slots.next_id += 1;
        let close = Arc::new(Notify::new());
        slots.slots.insert(
            id,
            Slot {
                busy: false,
                authenticated: false,
                waiting_since: now,
                close: close.clone(),
            },
        );
        Admission::Admitted(Connection {
            table: self.clone(),
            id,
            close,
        })
    }

    /// Closes one connection that is not answering a request, as [`Table::admit`] would when
    /// full; `false` if there is none. For when descriptors run out.
    pub fn evict(&self) -> bool {
        evict_one(&mut self.lock())
    }

    /// Closes every connection whose wait has run out at `now`.
    pub fn expire(&self, now: Instant) {
        let mut slots = self.lock();
        let under_pressure = slots.slots.len() * 2 > self.connections_max;
        let head_timeout = if under_pressure {
            self.timeouts
                .header_read_timeout
                .min(HEADER_READ_TIMEOUT_UNDER_PRESSURE)
        } else {
            self.timeouts.header_read_timeout
        };
        slots.slots.retain(|_, slot| {
            let timeout = if slot.authenticated {
                self.timeouts.idle_timeout
            } else {
                head_timeout
            };
            let expired = !slot.busy && now.duration_since(slot.waiting_since) >= timeout;
            if expired {
                slot.close.notify_one();
            }
            !expired
        });
    }

    fn update(&self, id: u64, change: impl FnOnce(&mut Slot)) {
        if let Some(slot) = self.lock().slots.get_mut(&id) {
            change(slot);
        }
    }
}

/// Takes the slot of the oldest connection waiting for a head without having shown the
/// token, else of the token-bearing connection idle longest, and tells it to close.
fn evict_one(slots: &mut Slots) -> bool {
    let stranger = slots
        .slots
        .iter()
        .find(|(_, s)| !s.busy && !s.authenticated)
        .map(|(id, _)| *id);
    let victim = stranger.or_else(|| {
        slots
            .slots
            .iter()
            .filter(|(_, s)| !s.busy)
            .min_by_key(|(_, s)| s.waiting_since)
            .map(|(id, _)| *id)
    });
    match victim.and_then(|id| slots.slots.remove(&id)) {
        Some(slot) => {
            slot.close.notify_one();
            true
        }
        None => false,
    }
}

/// One connection's slot; given back when dropped.
#[derive(Debug)]
pub struct Connection {
    table: Arc<Table>,
    id: u64,
    close: Arc<Notify>,
}

impl Connection {
    /// Resolves once the table has taken the slot back (evicted or timed out): the
    /// connection must then close.
    pub async fn closed(&self) {
        self.close.notified().await
    }

    /// A request head has arrived.
    pub fn busy(&self) {
        self.table.update(self.id, |slot| slot.busy = true);
    }

    /// Its answer has been taken whole, at `now`; `authenticated` if the request showed the
    /// token.
    fn done(&self, now: Instant, authenticated: bool) {
        self.table.update(self.id, |slot| {
            slot.busy = false;
            slot.authenticated |= authenticated;
            slot.waiting_since = now;
        });
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.table.lock().slots.remove(&self.id);
    }
}

/// An answer's body that marks its connection idle again once it has been taken whole (or
/// dropped): a live stream or a large attachment keeps its connection busy while it flows.
#[derive(Debug)]
pub struct TrackedBody {
    inner: Body,
    connection: Arc<Connection>,
    authenticated: bool,
}

impl TrackedBody {
    pub fn new(inner: Body, connection: Arc<Connection>, authenticated: bool) -> Self {
        TrackedBody {
            inner,
            connection,
            authenticated,
        }
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        self.connection.done(Instant::now(), self.authenticated);
    }
}

impl HttpBody for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(5),
    };

    fn admitted(admission: Admission) -> Connection {
        match admission {
            Admission::Admitted(connection) => connection,
            Admission::Full => panic!("refused"),
        }
    }

    fn is_closed(connection: &Connection) -> bool {
        // `notify_one` leaves a permit: a closed connection's `closed()` is ready at once.
        futures_util::FutureExt::now_or_never(connection.closed()).is_some()
    }

    #[test]
    fn a_full_table_evicts_the_oldest_stranger_then_the_longest_idle_owner() {
        let table = Table::new(3, TIMEOUTS);
        let t0 = Instant::now();
        let owner = admitted(table.admit(t0));
        owner.busy();
        let stranger_old = admitted(table.admit(t0));
        let stranger_new = admitted(table.admit(t0));
        let newcomer = admitted(table.admit(t0));
        assert!(is_closed(&stranger_old), "the oldest stranger goes first");
        assert!(!is_closed(&stranger_new) && !is_closed(&owner));
        assert_eq!(table.open_count(), 3);

        // Busy connections are never evicted: with all three busy, the next is refused.
        stranger_new.busy();
        newcomer.busy();
        assert!(matches!(table.admit(t0), Admission::Full));

        // An owner idle after a token-bearing answer goes only when no stranger waits.
        owner.done(t0, true);
        let late = admitted(table.admit(t0));
        assert!(is_closed(&owner));
        drop(late);
        assert_eq!(
            table.open_count(),
            2,
            "a dropped connection gives its slot back"
        );
    }

    #[test]
    fn waits_run_out_sooner_under_pressure_and_busy_connections_never_time_out() {
        let table = Table::new(4, TIMEOUTS);
        let t0 = Instant::now();
        let stranger = admitted(table.admit(t0));
        let owner = admitted(table.admit(t0));
        owner.busy();
        owner.done(t0, true);
        // Two of four taken: no pressure, the full header timeout applies.
        table.expire(t0 + Duration::from_secs(2));
        assert!(!is_closed(&stranger));
        table.expire(t0 + TIMEOUTS.idle_timeout);
        assert!(is_closed(&owner), "an idle owner after idle_timeout");
        table.expire(t0 + TIMEOUTS.header_read_timeout);
        assert!(is_closed(&stranger));

        // Three of four taken: strangers get a second.
        let t1 = t0 + Duration::from_secs(60);
        let waiting: Vec<Connection> = (0..3).map(|_| admitted(table.admit(t1))).collect();
        waiting[0].busy();
        table.expire(t1 + HEADER_READ_TIMEOUT_UNDER_PRESSURE);
        assert!(!is_closed(&waiting[0]), "busy");
        assert!(is_closed(&waiting[1]) && is_closed(&waiting[2]));
    }
}
