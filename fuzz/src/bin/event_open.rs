//! AFL++ harness: see `meshlog_fuzz::event_open`.

fn main() {
    afl::fuzz!(|data: &[u8]| meshlog_fuzz::event_open(data));
}
