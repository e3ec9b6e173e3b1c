//! AFL++ harness: see `meshlog_fuzz::packet_open`.

fn main() {
    afl::fuzz!(|data: &[u8]| meshlog_fuzz::packet_open(data));
}
