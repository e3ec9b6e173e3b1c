//! AFL++ harness: see `meshlog_fuzz::payload_decode`.

fn main() {
    afl::fuzz!(|data: &[u8]| meshlog_fuzz::payload_decode(data));
}
