//! What each simulated device's HTTP side reads, written by the world thread's publisher.

use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::device::netlog::NetLog;
use crate::device::state::Frame;

/// What each simulated device's HTTP side reads: its network log and its stream.
#[derive(Clone, Debug)]
pub struct DeviceOutputs {
    pub name: String,
    pub netlog: Arc<Mutex<NetLog>>,
    pub frames: broadcast::Sender<Frame>,
}
