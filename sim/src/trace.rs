//! The run's trace: one line per send, drop, delivery, append, insert and fault, hashed as it
//! is written. The digest (blake3 of every line, each ending in `\n`) is the run's fingerprint:
//! same scenario and seed, same digest, in one process or two.

use std::fmt::{self, Write as _};
use std::io::Write;

pub struct Trace {
    hasher: blake3::Hasher,
    lines: u64,
    line: String,
    sink: Option<Box<dyn Write>>,
    sink_error: Option<std::io::Error>,
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trace")
            .field("lines", &self.lines)
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

impl Trace {
    /// A trace that is only hashed; `sink`, if given, also receives every line.
    pub fn new(sink: Option<Box<dyn Write>>) -> Self {
        Trace {
            hasher: blake3::Hasher::new(),
            lines: 0,
            line: String::with_capacity(128),
            sink,
            sink_error: None,
        }
    }

    /// Records one line (without its newline). Lines are built in a reused buffer: a busy run
    /// writes hundreds of thousands of them.
    pub fn line(&mut self, args: fmt::Arguments<'_>) {
        self.line.clear();
        self.line
            .write_fmt(args)
            .expect("writing to a String cannot fail");
        self.line.push('\n');
        self.hasher.update(self.line.as_bytes());
        self.lines += 1;
        if let Some(sink) = &mut self.sink {
            if let Err(err) = sink.write_all(self.line.as_bytes()) {
                // Keep hashing (the digest must not depend on the sink); report once at the end.
                self.sink_error.get_or_insert(err);
                self.sink = None;
            }
        }
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }

    pub fn digest(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }

    /// Flushes the sink; the first write error, if any, comes back here.
    pub fn finish(&mut self) -> Result<(), std::io::Error> {
        if let Some(err) = self.sink_error.take() {
            return Err(err);
        }
        match &mut self.sink {
            Some(sink) => sink.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_covers_every_line_and_its_order() {
        let mut a = Trace::new(None);
        a.line(format_args!("one"));
        a.line(format_args!("two"));
        let mut b = Trace::new(None);
        b.line(format_args!("two"));
        b.line(format_args!("one"));
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest(), blake3::hash(b"one\ntwo\n").to_hex().to_string());
        assert_eq!(a.lines(), 2);
    }
}
