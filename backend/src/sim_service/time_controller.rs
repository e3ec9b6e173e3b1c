//! Virtual time for the simulation service: start, pause, speed and step.
//!
//! The seed's controller had a speed nothing read. Here generation is paced *only* by this
//! clock: the service calls [`TimeController::tick`] with the wall time that passed, and the
//! virtual time it returns is what the generator advances by. Paused, ticks add nothing;
//! at 10× a wall second is ten virtual seconds; `step` moves virtual time by hand.

use thiserror::Error;

pub const SPEED_MIN: f64 = 0.1;
pub const SPEED_MAX: f64 = 100.0;
/// Largest single step: an hour of virtual time.
pub const STEP_SECONDS_MAX: f64 = 3_600.0;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum TimeError {
    #[error("speed: {0} is outside {SPEED_MIN}..={SPEED_MAX}")]
    Speed(f64),
    #[error("seconds: {0} is outside 0 < s <= {STEP_SECONDS_MAX}")]
    Step(f64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct TimeController {
    running: bool,
    speed: f64,
    virtual_time_us: u64,
    /// Fractions of a microsecond carried between ticks, so many small ticks at 0.1× add up.
    carry_us: f64,
}

impl Default for TimeController {
    fn default() -> Self {
        TimeController {
            running: false,
            speed: 1.0,
            virtual_time_us: 0,
            carry_us: 0.0,
        }
    }
}

impl TimeController {
    pub fn running(&self) -> bool {
        self.running
    }
    pub fn speed(&self) -> f64 {
        self.speed
    }
    pub fn virtual_time_ms(&self) -> u64 {
        self.virtual_time_us / 1_000
    }
    pub fn virtual_time_us(&self) -> u64 {
        self.virtual_time_us
    }

    pub fn start(&mut self) {
        self.running = true;
    }
    pub fn pause(&mut self) {
        self.running = false;
    }

    pub fn set_speed(&mut self, speed: f64) -> Result<(), TimeError> {
        if !(SPEED_MIN..=SPEED_MAX).contains(&speed) {
            return Err(TimeError::Speed(speed));
        }
        self.speed = speed;
        Ok(())
    }

    /// Wall time passed; returns the new virtual time (unchanged while paused).
    pub fn tick(&mut self, wall_elapsed_us: u64) -> u64 {
        if self.running {
            let advance = wall_elapsed_us as f64 * self.speed + self.carry_us;
            let whole = advance.floor();
            self.carry_us = advance - whole;
            self.virtual_time_us += whole as u64;
        }
        self.virtual_time_us
    }

    /// Moves virtual time forward by hand (the page's step button), running or not.
    pub fn step(&mut self, seconds: f64) -> Result<u64, TimeError> {
        if !(seconds > 0.0 && seconds <= STEP_SECONDS_MAX) {
            return Err(TimeError::Step(seconds));
        }
        self.virtual_time_us += (seconds * 1_000_000.0).round() as u64;
        Ok(self.virtual_time_us)
    }
}
