//! What the simulator's benches share.

use std::path::Path;

use meshlog_sim::Scenario;

/// `scenarios/<name>`, read (panics with the error if it does not).
pub fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name);
    Scenario::load(&path).unwrap_or_else(|err| panic!("{err}"))
}
