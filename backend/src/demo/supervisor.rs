//! Keeps the demo's device processes running: a device that dies unasked is started again
//! on the same data after a backoff (1 s doubling to 30 s, back to 1 s once it has run 30 s),
//! while the rest of the demo carries on. The simulation service crashes (SIGKILL) and
//! restarts devices through it, and the demo stops them all on the way out.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::process;

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Requests are a person's clicks; a handful at most wait at once.
const REQUEST_QUEUE_LEN: usize = 16;
/// How long stopping every device may take before the demo gives up waiting (the process
/// groups are killed on drop anyway).
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// A device process's state, as the page shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessStatus {
    pub name: String,
    pub up: bool,
    /// Restarts after dying unasked.
    pub restarts: u64,
    pub pid: Option<u32>,
}

#[derive(Debug)]
enum Request {
    /// SIGKILL; stays down until `Restart`.
    Crash(oneshot::Sender<()>),
    /// Starts it (again); answered once the new process runs.
    Restart(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
}

#[derive(Clone, Debug)]
pub struct Supervisor {
    requests: Arc<BTreeMap<String, mpsc::Sender<Request>>>,
    changes: broadcast::Sender<ProcessStatus>,
    status: Arc<Mutex<BTreeMap<String, ProcessStatus>>>,
}

impl Supervisor {
    /// Starts each device as `argv` (program first) and keeps it running.
    pub fn start(devices: Vec<(String, Vec<OsString>)>) -> Supervisor {
        let (changes, _) = broadcast::channel(64);
        let status = Arc::new(Mutex::new(BTreeMap::new()));
        let mut requests = BTreeMap::new();
        for (name, argv) in devices {
            let (tx, rx) = mpsc::channel(REQUEST_QUEUE_LEN);
            requests.insert(name.clone(), tx);
            let report = Reporter {
                name: name.clone(),
                changes: changes.clone(),
                status: status.clone(),
            };
            tokio::spawn(keep(argv, rx, report));
        }
        Supervisor {
            requests: Arc::new(requests),
            changes,
            status,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ProcessStatus> {
        self.changes.subscribe()
    }

    pub fn status(&self) -> Vec<ProcessStatus> {
        let status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.values().cloned().collect()
    }

    pub async fn crash(&self, name: &str) -> Result<(), String> {
        self.ask(name, Request::Crash).await
    }

    pub async fn restart(&self, name: &str) -> Result<(), String> {
        self.ask(name, Request::Restart).await
    }

    /// Kills every device process and waits (bounded) until each is reaped.
    pub async fn stop_all(&self) {
        let stops = self
            .requests
            .keys()
            .map(|name| self.ask(name, Request::Stop));
        let _ = tokio::time::timeout(STOP_WITHIN, futures_util::future::join_all(stops)).await;
    }

    async fn ask(
        &self,
        name: &str,
        make: impl FnOnce(oneshot::Sender<()>) -> Request,
    ) -> Result<(), String> {
        let queue = self
            .requests
            .get(name)
            .ok_or_else(|| format!("no device process {name:?}"))?;
        let (reply, done) = oneshot::channel();
        queue
            .send(make(reply))
            .await
            .map_err(|_| format!("{name}'s supervisor has stopped"))?;
        done.await
            .map_err(|_| format!("{name}'s supervisor has stopped"))
    }
}

struct Reporter {
    name: String,
    changes: broadcast::Sender<ProcessStatus>,
    status: Arc<Mutex<BTreeMap<String, ProcessStatus>>>,
}

impl Reporter {
    fn report(&self, up: bool, restarts: u64, pid: Option<u32>) {
        let status = ProcessStatus {
            name: self.name.clone(),
            up,
            restarts,
            pid,
        };
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(self.name.clone(), status.clone());
        let _ = self.changes.send(status);
    }
}

fn command(argv: &[OsString]) -> Command {
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    command
}

/// One device's life: start it, and whenever it dies unasked, start it again after a backoff.
async fn keep(argv: Vec<OsString>, mut requests: mpsc::Receiver<Request>, report: Reporter) {
    let name = report.name.clone();
    let mut restarts = 0u64;
    let mut backoff = BACKOFF_MIN;
    // Answered once the next process runs.
    let mut restarted: Option<oneshot::Sender<()>> = None;
    loop {
        // Spawned from this task, on one of the runtime's worker threads, which live as long
        // as the demo: a device (`--parent-pid`) asks Linux to signal it when the thread that
        // started it exits, so it must not be started from a thread that ends sooner (such as
        // `spawn_blocking`'s, which end when idle).
        match process::spawn(command(&argv)) {
            Ok(mut group) => {
                report.report(true, restarts, group.pid());
                if let Some(reply) = restarted.take() {
                    answer(reply);
                }
                let started = tokio::time::Instant::now();
                tokio::select! {
                    exited = group.wait() => {
                        report.report(false, restarts, None);
                        if started.elapsed() >= BACKOFF_MAX {
                            backoff = BACKOFF_MIN;
                        }
                        let how = exited.map_or_else(|e| e.to_string(), |s| s.to_string());
                        eprintln!("meshlog demo: {name} exited ({how}); restarting it in {backoff:?}");
                    }
                    request = requests.recv() => {
                        group.kill().await;
                        report.report(false, restarts, None);
                        match request {
                            Some(Request::Crash(reply)) => match crashed(reply, &mut requests).await {
                                Some(reply) => restarted = Some(reply),
                                None => return,
                            },
                            Some(Request::Restart(reply)) => restarted = Some(reply),
                            Some(Request::Stop(reply)) => return answer(reply),
                            None => return,
                        }
                        continue;
                    }
                }
            }
            Err(err) => {
                eprintln!("meshlog demo: cannot start {name}: {err}; retrying in {backoff:?}");
                report.report(false, restarts, None);
            }
        }
        // Died unasked, or could not start: back off, then start it again.
        match wait_or_request(backoff, &mut requests).await {
            Waited::Stop(reply) => return answer(reply),
            Waited::Crash(reply) => match crashed(reply, &mut requests).await {
                Some(reply) => {
                    restarted = Some(reply);
                    continue;
                }
                None => return,
            },
            Waited::Restart(reply) => restarted = Some(reply),
            Waited::Timer => {}
        }
        restarts += 1;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

fn answer(reply: oneshot::Sender<()>) {
    // The asker may have gone (the page closed); the work is done either way.
    let _ = reply.send(());
}

/// Crashed on request (`reply` says so): waits for a restart (its reply), or `None` to stop.
async fn crashed(
    reply: oneshot::Sender<()>,
    requests: &mut mpsc::Receiver<Request>,
) -> Option<oneshot::Sender<()>> {
    answer(reply);
    loop {
        match requests.recv().await? {
            Request::Restart(reply) => return Some(reply),
            Request::Crash(reply) => answer(reply),
            Request::Stop(reply) => {
                answer(reply);
                return None;
            }
        }
    }
}

enum Waited {
    Timer,
    Crash(oneshot::Sender<()>),
    Restart(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
}

/// The backoff, cut short by a request (a closed queue stops).
async fn wait_or_request(backoff: Duration, requests: &mut mpsc::Receiver<Request>) -> Waited {
    tokio::select! {
        () = tokio::time::sleep(backoff) => Waited::Timer,
        request = requests.recv() => match request {
            Some(Request::Crash(reply)) => Waited::Crash(reply),
            Some(Request::Restart(reply)) => Waited::Restart(reply),
            Some(Request::Stop(reply)) => Waited::Stop(reply),
            None => Waited::Stop(oneshot::channel().0),
        },
    }
}
