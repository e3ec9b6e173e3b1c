//! What the report embeds, at most: it must stay a file a browser opens at once (a few
//! hundred KB for the shipped scenarios) whatever the run.

/// Points kept per device for its event count over time (thinned by halves beyond it).
pub const SERIES_POINTS_MAX: usize = 512;
/// State changes kept per device (a scenario flaps a device a few times).
pub const STATES_MAX: usize = 256;
/// Faults kept (scenarios schedule tens).
pub const FAULTS_MAX: usize = 256;
/// Arrows drawn in the sequence diagram; more in the window are sampled evenly.
pub const ARROWS_MAX: usize = 600;
/// Receiver-side refusals marked in the sequence diagram, sampled the same way.
pub const MARKS_MAX: usize = 200;
/// Last packets kept per id that named it (for the ids a failed run lacks).
pub const CARRIERS_PER_ID_MAX: usize = 4;
/// Ids whose carriers are tracked (a ten-device 10k-event run has ~11k).
pub const TRACKED_IDS_MAX: usize = 100_000;
/// Missing ids listed per device; the count says how many there were.
pub const MISSING_LISTED_MAX: usize = 12;
/// Characters of a packet's note kept for the diagram's tooltips.
pub const NOTE_CHARS_MAX: usize = 60;
