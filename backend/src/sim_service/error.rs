//! What the service refuses or fails with.

use thiserror::Error;

use super::generator::RateError;
use super::time_controller::TimeError;
use crate::api::serve::ServeError;

#[derive(Debug, Error)]
pub enum SimServiceError {
    #[error(transparent)]
    Time(#[from] TimeError),
    #[error(transparent)]
    Rate(#[from] RateError),
    /// A network control out of range, or bad partition groups.
    #[error("{0}")]
    Network(String),
    #[error("device {0:?} is not known to the simulation")]
    UnknownDevice(String),
    /// Asked of the wrong mode, e.g. loss in real mode, or a crash without the processes.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Serve(#[from] ServeError),
}
