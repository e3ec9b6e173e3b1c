//! Writes a recording of the node's inputs as the driver runs it (`meshlog device --record`).
//! The format is `meshlog_core::record`'s; the simulator replays it.

use std::io::Write;
use std::path::Path;

use meshlog_core::record::{batch_body, file_header, framed, start_body, Batch, Start, FULL_BODY};

/// Appends records to a file; owned by the node's thread, written after every batch.
#[derive(Debug)]
pub struct Recorder {
    file: std::io::BufWriter<std::fs::File>,
    written_bytes: u64,
    size_max_bytes: u64,
    full: bool,
}

impl Recorder {
    /// Creates (or truncates) `path` and writes the start record. Records stop, with a `Full`
    /// record, once the file would pass `size_max_bytes`.
    pub fn new(path: &Path, start: &Start, size_max_bytes: u64) -> std::io::Result<Self> {
        let file = std::fs::File::create(path)?;
        let mut recorder = Recorder {
            file: std::io::BufWriter::new(file),
            written_bytes: 0,
            size_max_bytes,
            full: false,
        };
        recorder.write(&file_header())?;
        recorder.write(&framed(&start_body(start)))?;
        recorder.file.flush()?;
        Ok(recorder)
    }

    /// Records one batch and hands it to the kernel, so it survives the process being killed.
    /// A write error stops the recording (logged), never the device.
    pub fn batch(&mut self, batch: &Batch) {
        if self.full {
            return;
        }
        let record = framed(&batch_body(batch));
        let full = framed(FULL_BODY);
        let result =
            if self.written_bytes + (record.len() + full.len()) as u64 > self.size_max_bytes {
                self.full = true;
                tracing::warn!(
                    bytes = self.written_bytes,
                    "recording full; nothing more is recorded"
                );
                self.write(&full)
            } else {
                self.write(&record)
            };
        if let Err(err) = result.and_then(|()| self.file.flush()) {
            tracing::warn!(%err, "recording stopped: cannot write");
            self.full = true;
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.written_bytes += bytes.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshlog_core::record::{OutputsDigest, RecordedInput, Recording, Tunables};
    use meshlog_core::{Config, DeviceId, Instant};

    fn start() -> Start {
        let config = Config::new(
            meshlog_core::testing::keys("alice", 1),
            meshlog_core::testing::community_of(&["alice", "bob"], 1),
            vec![DeviceId::new("bob").unwrap()],
            [1; 32],
        );
        Start {
            device: DeviceId::new("alice").unwrap(),
            keys_dir: "/keys".into(),
            peers: vec![(DeviceId::new("bob").unwrap(), "127.0.0.1:8002".into())],
            seed: [7; 32],
            tunables: Tunables::of(&config),
            epoch: 9,
            started_at: Instant::from_micros(5),
            events: vec![],
        }
    }

    #[test]
    fn a_recording_stops_at_its_size_bound_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec");
        let mut recorder = Recorder::new(&path, &start(), 2_000).unwrap();
        let batch = Batch {
            inputs: vec![RecordedInput::Datagram {
                now: Instant::from_micros(1),
                from: "127.0.0.1:9".into(),
                bytes: vec![3; 100],
            }],
            commit_error: None,
            outputs: OutputsDigest {
                count: 0,
                digest: [0; 16],
                wake_at: Instant::from_micros(2),
            },
        };
        for _ in 0..100 {
            recorder.batch(&batch);
        }
        drop(recorder);
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() <= 2_000, "{} bytes", bytes.len());
        let read = Recording::parse(&bytes).unwrap();
        assert!(read.full);
        assert!(!read.batches.is_empty() && read.batches.len() < 100);
        assert_eq!(read.start, start());
    }
}
