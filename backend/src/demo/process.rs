//! Child processes that do not outlive the demo: each in a process group of its own (so a
//! whole `npm` tree is stopped with it) and killed with its group when dropped. A demo
//! killed with SIGKILL cannot clean up: its devices then stop on their own (`meshlog device
//! --parent-pid`); a first page build's `npm` still running would run on.

use std::process::Stdio;

use tokio::process::{Child, Command};

/// A running child and its process group; dropping it kills the group.
#[derive(Debug)]
pub struct Group {
    pub child: Child,
    /// The group's id (the child's pid); `None` once it was reaped.
    pgid: Option<i32>,
}

/// Spawns `command` as the leader of a new process group.
pub fn spawn(mut command: Command) -> std::io::Result<Group> {
    command.stdin(Stdio::null()).kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    let child = command.spawn()?;
    let pgid = child.id().and_then(|pid| i32::try_from(pid).ok());
    Ok(Group { child, pgid })
}

impl Group {
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGKILL to the whole group, then reaps the leader.
    pub async fn kill(&mut self) {
        self.signal_group();
        let _ = self.child.kill().await;
        self.pgid = None;
    }

    /// Reaps the leader once it exits, and kills what it left running in its group (a
    /// leader's exit does not end its children). The group is not signalled again after.
    pub async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let status = self.child.wait().await;
        self.signal_group();
        self.pgid = None;
        status
    }

    fn signal_group(&self) {
        #[cfg(unix)]
        if let Some(pgid) = self.pgid.and_then(rustix::process::Pid::from_raw) {
            // Gone already is fine: there is nothing left to stop.
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal_group();
    }
}
