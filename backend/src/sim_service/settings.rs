//! The generator settings a restart keeps: `DATA_DIR/sim-service.json` in real mode,
//! `DATA_DIR/sim-mode.json` in simulated mode. Apart, so a real demo's 100× and 3,600 an hour
//! do not carry into a simulated run (issue 24), nor the other way round.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::simulation::Simulation;

pub const SETTINGS_FILE: &str = "sim-service.json";
pub const SIM_MODE_SETTINGS_FILE: &str = "sim-mode.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub messages_per_hour: f64,
    pub attachment_percent: f64,
    pub speed: f64,
}

impl Settings {
    pub fn of(sim: &Simulation) -> Self {
        Settings {
            messages_per_hour: sim.generator.messages_per_hour(),
            attachment_percent: sim.generator.attachment_percent(),
            speed: sim.time.speed(),
        }
    }

    /// Applies what is in range; a value out of range (a hand-edited file) keeps the default.
    pub fn apply(&self, sim: &mut Simulation) {
        let _ = sim.set_message_rate(self.messages_per_hour);
        let _ = sim
            .generator
            .set_attachment_percent(self.attachment_percent);
        let _ = sim.time.set_speed(self.speed);
    }

    /// The settings file in `dir` for real mode, or for simulated mode (`simulated`).
    pub fn path(dir: &Path, simulated: bool) -> PathBuf {
        dir.join(if simulated {
            SIM_MODE_SETTINGS_FILE
        } else {
            SETTINGS_FILE
        })
    }

    /// The saved settings, if there is a readable file.
    pub fn load(path: &Path) -> Option<Settings> {
        let text = std::fs::read_to_string(path).ok()?;
        match serde_json::from_str(&text) {
            Ok(settings) => Some(settings),
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "ignoring unreadable settings");
                None
            }
        }
    }

    /// Written to a temporary file and renamed, so a crash never leaves half a file.
    pub fn save(&self, path: &Path) {
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(self).expect("settings serialize");
        let result = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(err) = result {
            tracing::warn!(path = %path.display(), %err, "could not save the generator settings");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_a_restart_and_bad_values_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = Settings::path(dir.path(), false);
        let mut sim = Simulation::new(vec![("alice".into(), "http://a".into())]);
        sim.set_message_rate(720.0).unwrap();
        sim.time.set_speed(25.0).unwrap();
        Settings::of(&sim).save(&path);
        let mut fresh = Simulation::new(vec![("alice".into(), "http://a".into())]);
        Settings::load(&path).unwrap().apply(&mut fresh);
        assert_eq!(Settings::of(&fresh), Settings::of(&sim));
        assert_ne!(fresh.run_id, sim.run_id, "a fresh run gets a new id");

        std::fs::write(
            &path,
            r#"{"messages_per_hour": 1e9, "attachment_percent": 5, "speed": 1000}"#,
        )
        .unwrap();
        let mut odd = Simulation::new(vec![("alice".into(), "http://a".into())]);
        Settings::load(&path).unwrap().apply(&mut odd);
        assert_eq!(odd.generator.attachment_percent(), 5.0);
        assert_eq!(odd.time.speed(), 1.0, "out of range: the default stays");
        std::fs::write(&path, "not json").unwrap();
        assert!(Settings::load(&path).is_none());
    }
}
