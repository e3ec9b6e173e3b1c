//! AFL++ harness: see `meshlog_fuzz::scenario_parse`.

fn main() {
    afl::fuzz!(|data: &[u8]| meshlog_fuzz::scenario_parse(data));
}
