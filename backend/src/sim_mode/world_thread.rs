//! The thread that owns the simulated world. `World` is `!Send` (its nodes share stores through
//! `Rc<RefCell<…>>`), so it lives on one std thread and the async side talks to it two ways:
//!
//! - **Requests** (reads, appends, faults): commands with oneshot replies on a bounded channel;
//!   every sender waits for its reply.
//! - **The schedule**: the newest virtual time the world should reach (a watch value: a new
//!   target replaces the old one) and the generated posts due before it, one batch per tick.
//!
//! The thread answers every queued request, then runs the world one slice toward its target
//! (at most [`SLICE_US`] of virtual time, or up to the next post), and again: a request waits
//! for one slice, never for a backlog. After every command and slice it turns what the world
//! traced into each device's network log and stream frames, as a real device's pump does.
//!
//! It used to take every tick's advance and every generated post as a command of its own on
//! an unbounded channel, and answered requests only after all of them: at 100× a request
//! queued behind thousands (issue 24).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use meshlog_core::{EventBody, EventId, FileId, Instant};
use meshlog_net::Snapshot;
use meshlog_sim::host::{HostError, Tap};
use meshlog_sim::{Scenario, SimError, World};
use thiserror::Error;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use super::decoded::Decoded;
use super::outputs::DeviceOutputs;
use super::publish::publish;
use crate::api::MessagesPage;
use crate::device::views::{MemberView, MessageView, StatsView};
use crate::paging::PageRequest;
use crate::sim_service::generator::{Post, POSTS_PER_ADVANCE_MAX};
use crate::sim_service::poster;
use crate::store::FileContent;

/// Requests waiting for the world thread. Every sender waits for its reply, so this is about
/// the requests in flight at once; past it a sender waits for room (the servers' connection
/// limits bound how many can), and the thread's memory does not grow.
pub const COMMANDS_QUEUED_MAX: usize = 64;
/// Generated posts waiting for the world: two of the largest single advances (an hour's step
/// at the highest rate). The ticker holds virtual time while the world is behind, so only
/// steps come near it; past it the newest posts are dropped and logged, as real mode's
/// poster drops what a device cannot take.
pub const POSTS_QUEUED_MAX: usize = 2 * POSTS_PER_ADVANCE_MAX;
/// Most virtual time the world runs between two looks at its requests: a request waits for at
/// most this much simulation (a sync round is 5 s, so a slice holds a few packets per link).
pub const SLICE_US: u64 = 100_000;

#[derive(Debug, Error)]
pub enum WorldError {
    #[error("the simulated world stopped")]
    Gone,
    #[error("building the world: {0}")]
    Build(#[from] SimError),
    #[error(transparent)]
    Host(#[from] HostError),
}

type Reply<T> = oneshot::Sender<T>;
/// The ids appended, and the view of the last one if it is a message.
type Appended = Result<(Vec<EventId>, Option<MessageView>), HostError>;

#[derive(Debug)]
enum Command {
    /// Answer `done` once the world has reached `to_us` and appended every post due by then
    /// (the target is raised to it if lower).
    Advance { to_us: u64, done: Reply<()> },
    /// The schedule changed; sent only while the thread may be waiting for a command.
    Wake,
    /// Append `bodies` now; the answer carries the view of the last one if it is a message.
    Append {
        device: usize,
        bodies: Vec<EventBody>,
        reply: Reply<Appended>,
    },
    Message {
        device: usize,
        id: EventId,
        reply: Reply<Option<MessageView>>,
    },
    Messages {
        device: usize,
        request: PageRequest,
        reply: Reply<Option<MessagesPage>>,
    },
    File {
        device: usize,
        file: FileId,
        reply: Reply<Option<FileContent>>,
    },
    Stats {
        device: usize,
        reply: Reply<Result<StatsView, HostError>>,
    },
    Members {
        device: usize,
        reply: Reply<Result<Vec<MemberView>, HostError>>,
    },
    SetOnline {
        device: usize,
        online: bool,
        reply: Reply<Result<(), HostError>>,
    },
    Network {
        loss: f64,
        latency_us: (u64, u64),
        reply: Reply<()>,
    },
    /// Every device's partition group (all equal: healed).
    Groups {
        group_of: Vec<u32>,
        reply: Reply<()>,
    },
    Cut {
        from: usize,
        to: usize,
        cut: bool,
        reply: Reply<Result<(), HostError>>,
    },
    /// `(outbound, inbound)`: whether `device` → `peer` and `peer` → `device` are cut.
    IsCut {
        device: usize,
        peer: usize,
        reply: Reply<(bool, bool)>,
    },
    Crash {
        device: usize,
        reply: Reply<Result<(), HostError>>,
    },
    Restart {
        device: usize,
        reply: Reply<Result<(), HostError>>,
    },
}

/// A generated post for device `device` (its index in the world), due at `post.due_us`.
#[derive(Debug)]
pub struct Generated {
    pub device: usize,
    pub post: Post,
}

/// What the world is asked to reach: the newest target and the posts due up to it, in time
/// order (the generator makes them so, and targets only grow).
#[derive(Debug, Default)]
struct Schedule {
    target_us: u64,
    posts: VecDeque<Generated>,
    dropped: u64,
}

#[derive(Debug, Default)]
struct Shared {
    schedule: Mutex<Schedule>,
    /// The world's virtual time (µs) after its last slice or command.
    now_us: AtomicU64,
    /// A `Wake` is queued and not yet seen: one is enough.
    woken: AtomicBool,
}

/// Cheap to clone; every clone talks to the same world.
#[derive(Clone, Debug)]
pub struct WorldHandle {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl WorldHandle {
    /// Builds the hosted world on its own thread (it cannot cross threads once built); the
    /// world's devices, in scenario order, get `outputs`. Answers with the starting network:
    /// (loss, latency min µs, latency max µs).
    pub async fn spawn(
        scenario: Scenario,
        seed: u64,
        outputs: Vec<DeviceOutputs>,
    ) -> Result<(WorldHandle, (f64, u64, u64)), WorldError> {
        let (commands, receiver) = mpsc::channel(COMMANDS_QUEUED_MAX);
        let shared = Arc::new(Shared::default());
        let (ready, built) = oneshot::channel();
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("meshlog-sim-world".into())
            .spawn(move || match World::hosted(&scenario, seed) {
                Ok((world, tap)) => {
                    let _ = ready.send(Ok(world.network_settings()));
                    run(world, tap, outputs, receiver, &thread_shared);
                }
                Err(err) => {
                    let _ = ready.send(Err(err));
                }
            })
            .map_err(|_| WorldError::Gone)?;
        let network = built.await.map_err(|_| WorldError::Gone)??;
        Ok((WorldHandle { commands, shared }, network))
    }

    async fn request<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, WorldError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| WorldError::Gone)?;
        answer.await.map_err(|_| WorldError::Gone)
    }

    /// For the ticker and `step`: the world should reach `to_us`, appending `posts` (in time
    /// order, each due by `to_us`) at their own virtual times on the way. Returns at once.
    pub fn schedule(&self, to_us: u64, posts: impl IntoIterator<Item = Generated>) {
        {
            let mut schedule = self
                .shared
                .schedule
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for post in posts {
                if schedule.posts.len() >= POSTS_QUEUED_MAX {
                    schedule.dropped += 1;
                    if schedule.dropped.is_power_of_two() {
                        tracing::warn!(
                            dropped = schedule.dropped,
                            "the simulated world is behind; generated messages were dropped"
                        );
                    }
                    continue;
                }
                schedule.posts.push_back(post);
            }
            schedule.target_us = schedule.target_us.max(to_us);
        }
        self.wake();
    }

    /// Tells the thread to look at its schedule, unless a wake-up is already queued. A full
    /// queue needs none: the thread looks after every command.
    fn wake(&self) {
        if !self.shared.woken.swap(true, Ordering::AcqRel)
            && self.commands.try_send(Command::Wake).is_err()
        {
            self.shared.woken.store(false, Ordering::Release);
        }
    }

    /// The world's virtual time (µs), as of its last slice.
    pub fn now_us(&self) -> u64 {
        self.shared.now_us.load(Ordering::Acquire)
    }

    /// Waits until the world has reached `to_us` with every post due by then appended.
    pub async fn advance(&self, to_us: u64) -> Result<(), WorldError> {
        self.request(|done| Command::Advance { to_us, done }).await
    }

    pub async fn append(
        &self,
        device: usize,
        bodies: Vec<EventBody>,
    ) -> Result<(Vec<EventId>, Option<MessageView>), WorldError> {
        Ok(self
            .request(|reply| Command::Append {
                device,
                bodies,
                reply,
            })
            .await??)
    }

    pub async fn message(
        &self,
        device: usize,
        id: EventId,
    ) -> Result<Option<MessageView>, WorldError> {
        self.request(|reply| Command::Message { device, id, reply })
            .await
    }

    /// The page of the device's messages `request` asks for (`crate::paging`).
    pub async fn messages(
        &self,
        device: usize,
        request: PageRequest,
    ) -> Result<MessagesPage, WorldError> {
        self.request(|reply| Command::Messages {
            device,
            request,
            reply,
        })
        .await?
        .ok_or(WorldError::Host(HostError::UnknownDevice(device)))
    }

    pub async fn file(
        &self,
        device: usize,
        file: FileId,
    ) -> Result<Option<FileContent>, WorldError> {
        self.request(|reply| Command::File {
            device,
            file,
            reply,
        })
        .await
    }

    pub async fn stats(&self, device: usize) -> Result<StatsView, WorldError> {
        Ok(self
            .request(|reply| Command::Stats { device, reply })
            .await??)
    }

    /// The device's roster, as its node settles it.
    pub async fn members(&self, device: usize) -> Result<Vec<MemberView>, WorldError> {
        Ok(self
            .request(|reply| Command::Members { device, reply })
            .await??)
    }

    pub async fn set_online(&self, device: usize, online: bool) -> Result<(), WorldError> {
        Ok(self
            .request(|reply| Command::SetOnline {
                device,
                online,
                reply,
            })
            .await??)
    }

    pub async fn set_network(&self, loss: f64, latency_us: (u64, u64)) -> Result<(), WorldError> {
        self.request(|reply| Command::Network {
            loss,
            latency_us,
            reply,
        })
        .await
    }

    pub async fn set_groups(&self, group_of: Vec<u32>) -> Result<(), WorldError> {
        self.request(|reply| Command::Groups { group_of, reply })
            .await
    }

    pub async fn set_cut(&self, from: usize, to: usize, cut: bool) -> Result<(), WorldError> {
        Ok(self
            .request(|reply| Command::Cut {
                from,
                to,
                cut,
                reply,
            })
            .await??)
    }

    /// `(device → peer cut, peer → device cut)`.
    pub async fn is_cut(&self, device: usize, peer: usize) -> Result<(bool, bool), WorldError> {
        self.request(|reply| Command::IsCut {
            device,
            peer,
            reply,
        })
        .await
    }

    pub async fn crash(&self, device: usize) -> Result<(), WorldError> {
        Ok(self
            .request(|reply| Command::Crash { device, reply })
            .await??)
    }

    pub async fn restart(&self, device: usize) -> Result<(), WorldError> {
        Ok(self
            .request(|reply| Command::Restart { device, reply })
            .await??)
    }
}

fn run(
    world: World,
    tap: Tap,
    outputs: Vec<DeviceOutputs>,
    mut commands: mpsc::Receiver<Command>,
    shared: &Shared,
) {
    let mut thread = Thread {
        decoded: Decoded::new(&world.device_names()),
        world,
        tap,
        outputs,
        waiting: Vec::new(),
    };
    loop {
        // Requests first: each is an index lookup or one append, and someone waits on it.
        loop {
            match commands.try_recv() {
                Ok(command) => thread.handle(command, shared),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        let worked = thread.slice(shared);
        thread.answer_waiting(shared);
        if worked {
            continue;
        }
        match commands.blocking_recv() {
            Some(command) => thread.handle(command, shared),
            None => return,
        }
    }
}

struct Thread {
    world: World,
    tap: Tap,
    outputs: Vec<DeviceOutputs>,
    decoded: Decoded,
    /// `step`s waiting for the world: (virtual time, reply). One per waiting request, so the
    /// command channel's bound is theirs.
    waiting: Vec<(u64, Reply<()>)>,
}

impl Thread {
    /// What the world traced, out to the devices' logs and streams, and its clock to the
    /// handles.
    fn publish(&mut self, shared: &Shared) {
        publish(&self.world, &self.tap, &self.outputs, &mut self.decoded);
        shared
            .now_us
            .store(self.world.now().as_micros(), Ordering::Release);
    }

    /// Answers each `step` whose time the world has reached with its posts appended.
    fn answer_waiting(&mut self, shared: &Shared) {
        let now_us = self.world.now().as_micros();
        let next_post_us = shared
            .schedule
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .posts
            .front()
            .map(|p| p.post.due_us);
        let reached = |to_us: u64| now_us >= to_us && next_post_us.is_none_or(|at| at > to_us);
        let mut i = 0;
        while i < self.waiting.len() {
            if reached(self.waiting[i].0) {
                let (_, done) = self.waiting.swap_remove(i);
                // A reply nobody waits for any more (the request was dropped) is not an error.
                let _ = done.send(());
            } else {
                i += 1;
            }
        }
    }

    /// One step toward the schedule's target: the next post if it is due, else the world runs
    /// to the next post, the target or one slice on, whichever is first. False if there was
    /// nothing to do.
    fn slice(&mut self, shared: &Shared) -> bool {
        let now_us = self.world.now().as_micros();
        let (goal_us, due) = {
            let mut schedule = shared.schedule.lock().unwrap_or_else(|p| p.into_inner());
            let next_us = schedule.posts.front().map(|p| p.post.due_us);
            match next_us {
                Some(at_us) if at_us <= now_us => (now_us, schedule.posts.pop_front()),
                _ => (schedule.target_us.min(next_us.unwrap_or(u64::MAX)), None),
            }
        };
        if let Some(generated) = due {
            let bodies = poster::bodies(&generated.post);
            if let Err(err) = self.world.append_now(generated.device, bodies) {
                // A crashed device makes nothing, as a dead phone would not.
                tracing::debug!(%err, "a generated message was not appended");
            }
        } else {
            let goal_us = goal_us.min(now_us.saturating_add(SLICE_US));
            if goal_us <= now_us {
                return false;
            }
            self.world.run_until(Instant(goal_us));
        }
        self.publish(shared);
        true
    }

    fn handle(&mut self, command: Command, shared: &Shared) {
        let world = &mut self.world;
        match command {
            Command::Advance { to_us, done } => {
                let mut schedule = shared.schedule.lock().unwrap_or_else(|p| p.into_inner());
                schedule.target_us = schedule.target_us.max(to_us);
                self.waiting.push((to_us, done));
                return;
            }
            Command::Wake => {
                shared.woken.store(false, Ordering::Release);
                return;
            }
            Command::Append {
                device,
                bodies,
                reply,
            } => {
                let result = world.append_now(device, bodies);
                // Indexed first, so the answer carries the message as the device holds it.
                self.publish(shared);
                let result = result.map(|ids| {
                    let view = ids
                        .last()
                        .and_then(|id| message_view(&self.decoded, device, id));
                    (ids, view)
                });
                let _ = reply.send(result);
                return;
            }
            Command::Message { device, id, reply } => {
                let _ = reply.send(message_view(&self.decoded, device, &id));
                return;
            }
            Command::Messages {
                device,
                request,
                reply,
            } => {
                let page = self.decoded.index(device).map(|index| index.page(&request));
                let _ = reply.send(page);
                return;
            }
            Command::File {
                device,
                file,
                reply,
            } => {
                let _ = reply.send(self.decoded.file(world, device, &file));
                return;
            }
            Command::Stats { device, reply } => {
                let _ = reply.send(stats(world, &self.decoded, device));
                return;
            }
            Command::Members { device, reply } => {
                let _ = reply.send(members(world, device));
                return;
            }
            Command::IsCut {
                device,
                peer,
                reply,
            } => {
                let _ = reply.send((world.is_cut(device, peer), world.is_cut(peer, device)));
                return;
            }
            Command::SetOnline {
                device,
                online,
                reply,
            } => {
                let _ = reply.send(world.set_device_online(device, online));
            }
            Command::Network {
                loss,
                latency_us,
                reply,
            } => {
                world.set_network(loss, latency_us.0, latency_us.1);
                let _ = reply.send(());
            }
            Command::Groups { group_of, reply } => {
                world.set_partition_groups(group_of);
                let _ = reply.send(());
            }
            Command::Cut {
                from,
                to,
                cut,
                reply,
            } => {
                let _ = reply.send(world.set_cut(from, to, cut));
            }
            Command::Crash { device, reply } => {
                let _ = reply.send(world.crash_device(device));
            }
            Command::Restart { device, reply } => {
                let _ = reply.send(world.restart_device(device));
            }
        }
        // The world changed: what it traced goes out now.
        self.publish(shared);
    }
}

fn message_view(decoded: &Decoded, device: usize, id: &EventId) -> Option<MessageView> {
    decoded.index(device)?.message(id).map(MessageView::from)
}

fn members(world: &World, device: usize) -> Result<Vec<MemberView>, HostError> {
    let names = world.device_names();
    let me = names.get(device).ok_or(HostError::UnknownDevice(device))?;
    let node = world
        .node(device)
        .ok_or_else(|| HostError::Down(me.clone()))?;
    Ok(MemberView::all(node.roster()))
}

/// `Stats` as a real device reports it: counts from the store, traffic and peers from the node.
fn stats(world: &World, decoded: &Decoded, device: usize) -> Result<StatsView, HostError> {
    let names = world.device_names();
    let me = names.get(device).ok_or(HostError::UnknownDevice(device))?;
    let node = world
        .node(device)
        .ok_or_else(|| HostError::Down(me.clone()))?;
    let name = node.device().clone();
    let counts = decoded
        .index(device)
        .ok_or(HostError::UnknownDevice(device))?
        .counts();
    let snapshot = Snapshot {
        device: name,
        online: world.device_online(device),
        events: node.event_count(),
        summary: node.summary(),
        stats: node.stats().clone(),
        peers: node.peers(),
        sync_percent: node.sync_percent(),
        key_epoch: node.key_epoch(),
        now: world.now(),
    };
    let cut_with = |peer: &str| {
        world
            .device_index(peer)
            .is_some_and(|p| world.is_cut(device, p) || world.is_cut(p, device))
    };
    Ok(StatsView::new(snapshot, counts).with_blocked(cut_with, 0))
}
