//! The thread that owns the simulated world. `World` is `!Send` (its nodes share stores through
//! `Rc<RefCell<…>>`), so it lives on one std thread and the async side talks to it through
//! commands with oneshot replies. After every command the thread turns what the world traced
//! into each device's network log and stream frames, as a real device's pump does.

use meshlog_core::{EventBody, EventId, FileId, Instant};
use meshlog_net::Snapshot;
use meshlog_sim::host::{HostError, Tap};
use meshlog_sim::{Scenario, SimError, World};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use super::decoded::Decoded;
use super::entries;
use super::outputs::DeviceOutputs;
use super::publish::publish;
use crate::device::views::{MemberView, MessageView, StatsView};
use crate::store::{FileContent, MessageRow};

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
    /// Run the world to virtual time `to_us`; `done` is answered once it has.
    Advance { to_us: u64, done: Option<Reply<()>> },
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
        reply: Reply<Vec<MessageRow>>,
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
    /// A generated message: the world runs to its exact virtual time `at_us`, then appends.
    AppendAt {
        device: usize,
        at_us: u64,
        bodies: Vec<EventBody>,
    },
}

/// Cheap to clone; every clone talks to the same world.
#[derive(Clone, Debug)]
pub struct WorldHandle {
    commands: mpsc::UnboundedSender<Command>,
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
        // Unbounded: commands come from HTTP handlers (each waits for its reply) and one
        // ticker, so at most a handful are ever queued.
        let (commands, receiver) = mpsc::unbounded_channel();
        let (ready, built) = oneshot::channel();
        std::thread::Builder::new()
            .name("meshlog-sim-world".into())
            .spawn(move || match World::hosted(&scenario, seed) {
                Ok((world, tap)) => {
                    let _ = ready.send(Ok(world.network_settings()));
                    run(world, tap, outputs, receiver);
                }
                Err(err) => {
                    let _ = ready.send(Err(err));
                }
            })
            .map_err(|_| WorldError::Gone)?;
        let network = built.await.map_err(|_| WorldError::Gone)??;
        Ok((WorldHandle { commands }, network))
    }

    async fn request<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, WorldError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .map_err(|_| WorldError::Gone)?;
        answer.await.map_err(|_| WorldError::Gone)
    }

    /// For the ticker: no need to wait, the next tick follows anyway.
    pub fn advance_soon(&self, to_us: u64) {
        let _ = self.commands.send(Command::Advance { to_us, done: None });
    }

    pub async fn advance(&self, to_us: u64) -> Result<(), WorldError> {
        self.request(|done| Command::Advance {
            to_us,
            done: Some(done),
        })
        .await
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

    /// Every message the device holds, oldest first, as SQLite's rows would be.
    pub async fn messages(&self, device: usize) -> Result<Vec<MessageRow>, WorldError> {
        self.request(|reply| Command::Messages { device, reply })
            .await
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

    /// Queues a generated message for its exact virtual time. Commands run in order, so one
    /// queued before the ticker's next advance is appended at `at_us`, not at the tick's time.
    pub fn append_at(&self, device: usize, at_us: u64, bodies: Vec<EventBody>) {
        let _ = self.commands.send(Command::AppendAt {
            device,
            at_us,
            bodies,
        });
    }
}

fn run(
    mut world: World,
    tap: Tap,
    outputs: Vec<DeviceOutputs>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut decoded = Decoded::new(world.device_names().len());
    // A reply nobody waits for any more (the request was dropped) is not an error.
    while let Some(command) = commands.blocking_recv() {
        match command {
            Command::Advance { to_us, done } => {
                world.run_until(Instant(to_us));
                if let Some(done) = done {
                    publish(&world, &tap, &outputs, &mut decoded);
                    let _ = done.send(());
                    continue;
                }
            }
            Command::Append {
                device,
                bodies,
                reply,
            } => {
                let result = world.append_now(device, bodies).map(|ids| {
                    let view = ids
                        .last()
                        .and_then(|id| message_view(&world, &mut decoded, device, id));
                    (ids, view)
                });
                publish(&world, &tap, &outputs, &mut decoded);
                let _ = reply.send(result);
                continue;
            }
            Command::Message { device, id, reply } => {
                let _ = reply.send(message_view(&world, &mut decoded, device, &id));
            }
            Command::Messages { device, reply } => {
                let _ = reply.send(entries::messages(decoded.store(&world, device)));
            }
            Command::File {
                device,
                file,
                reply,
            } => {
                let _ = reply.send(entries::file(decoded.store(&world, device), &file));
            }
            Command::Stats { device, reply } => {
                let _ = reply.send(stats(&world, &mut decoded, device));
            }
            Command::Members { device, reply } => {
                let _ = reply.send(members(&world, device));
            }
            Command::SetOnline {
                device,
                online,
                reply,
            } => {
                let result = world.set_device_online(device, online);
                publish(&world, &tap, &outputs, &mut decoded);
                let _ = reply.send(result);
                continue;
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
            Command::IsCut {
                device,
                peer,
                reply,
            } => {
                let _ = reply.send((world.is_cut(device, peer), world.is_cut(peer, device)));
            }
            Command::Crash { device, reply } => {
                let _ = reply.send(world.crash_device(device));
            }
            Command::Restart { device, reply } => {
                let _ = reply.send(world.restart_device(device));
            }
            Command::AppendAt {
                device,
                at_us,
                bodies,
            } => {
                world.run_until(Instant(at_us));
                if let Err(err) = world.append_now(device, bodies) {
                    // A crashed device makes nothing, as a dead phone would not.
                    tracing::debug!(%err, "a generated message was not appended");
                }
            }
        }
        publish(&world, &tap, &outputs, &mut decoded);
    }
}

fn message_view(
    world: &World,
    decoded: &mut Decoded,
    device: usize,
    id: &EventId,
) -> Option<MessageView> {
    entries::message(decoded.store(world, device), id).map(MessageView::from)
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
fn stats(world: &World, decoded: &mut Decoded, device: usize) -> Result<StatsView, HostError> {
    let names = world.device_names();
    let me = names.get(device).ok_or(HostError::UnknownDevice(device))?;
    let node = world
        .node(device)
        .ok_or_else(|| HostError::Down(me.clone()))?;
    let name = node.device().clone();
    let counts = entries::counts(decoded.store(world, device), name.as_str());
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
