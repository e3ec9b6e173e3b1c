//! A local upload: `size` bytes read from anything (the HTTP body, through a channel),
//! written to a temporary file and hashed into an outboard in one pass, then renamed into
//! place. Memory: two write buffers and one group, whatever the size.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use super::bitfield::Bitfield;
use super::error::{BlobError, BlobId, FILES_MAX};
use super::store::{sync_dir, BlobStore};
use super::tree::{self, group_count};

/// Write buffer per temporary file: large writes, few syscalls.
const WRITE_BUF_BYTES: usize = 1 << 20;

/// What an upload became.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ingested {
    pub id: BlobId,
    pub size_bytes: u64,
    pub groups: u64,
    /// False when the store held this file already (nothing new was written).
    pub created: bool,
}

/// Bytes written between two nudges of the early syncer. Without it the kernel holds an
/// upload's pages dirty until the final sync, which then waits for all of them at disk speed
/// after the network part is done; with it the disk writes while the body still arrives.
const EARLY_SYNC_BYTES: u64 = 32 << 20;

/// Reads from `inner`, copying every byte to `copy`; counts them, and keeps a write error
/// apart from a read error (a full disk is not a short body).
struct Tee<R> {
    inner: R,
    copy: BufWriter<File>,
    read_bytes: u64,
    write_error: Option<io::Error>,
    /// Nudges the early syncer (a queue of one: a nudge while it is busy is dropped).
    early_sync: Option<SyncSender<()>>,
    since_nudge_bytes: u64,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(err) = self.copy.write_all(&buf[..n]) {
            let kind = err.kind();
            self.write_error = Some(err);
            return Err(io::Error::new(kind, "writing the temporary file"));
        }
        self.read_bytes += n as u64;
        self.since_nudge_bytes += n as u64;
        if self.since_nudge_bytes >= EARLY_SYNC_BYTES {
            self.since_nudge_bytes = 0;
            if let Some(nudge) = &self.early_sync {
                let _ = nudge.try_send(());
            }
        }
        Ok(n)
    }
}

/// A thread that syncs `file` whenever nudged, until the sender is dropped. Its errors are
/// not reported: the final sync, on the upload's own thread, reports them. `None` if no
/// thread could be started (the upload then syncs only at the end).
fn early_syncer(file: &File) -> Option<(SyncSender<()>, JoinHandle<()>)> {
    let file = file.try_clone().ok()?;
    let (nudge, nudges) = sync_channel::<()>(1);
    let thread = std::thread::Builder::new()
        .name("upload-sync".into())
        .spawn(move || {
            for () in nudges {
                let _ = file.sync_data();
            }
        })
        .ok()?;
    Some((nudge, thread))
}

impl BlobStore {
    /// Stores the `size_bytes` read from `body` as a complete file; its id is what they hash
    /// to. A body that ends early or goes on past `size_bytes` stores nothing.
    pub fn ingest(&self, size_bytes: u64, body: impl Read) -> Result<Ingested, BlobError> {
        if size_bytes > self.file_size_max_bytes {
            return Err(BlobError::TooLarge {
                size_bytes,
                max_bytes: self.file_size_max_bytes,
            });
        }
        // Both removed on drop, so every early return leaves nothing behind.
        let data = self.temp_file()?;
        let outboard = self.temp_file()?;
        let data_copy = data
            .as_file()
            .try_clone()
            .map_err(|err| BlobError::io(data.path(), err))?;
        let outboard_copy = outboard
            .as_file()
            .try_clone()
            .map_err(|err| BlobError::io(outboard.path(), err))?;
        let (early_sync, syncer) = early_syncer(data.as_file()).unzip();
        let mut tee = Tee {
            inner: body,
            copy: BufWriter::with_capacity(WRITE_BUF_BYTES, data_copy),
            read_bytes: 0,
            write_error: None,
            early_sync,
            since_nudge_bytes: 0,
        };
        let mut outboard_out = BufWriter::with_capacity(WRITE_BUF_BYTES, outboard_copy);
        let hashed = tree::outboard_of(&mut tee, size_bytes, &mut outboard_out);
        // The syncer ends with its sender; wait for it, so no thread outlives the upload.
        tee.early_sync = None;
        if let Some(thread) = syncer {
            let _ = thread.join();
        }
        let root = match hashed {
            Ok(root) => root,
            Err(err) => {
                return Err(match tee.write_error.take() {
                    Some(write) => BlobError::io(data.path(), write),
                    None if err.kind() == io::ErrorKind::UnexpectedEof => BlobError::Truncated {
                        expected: size_bytes,
                        got: tee.read_bytes,
                    },
                    None => BlobError::io(data.path(), err),
                });
            }
        };
        // The body must end where it said it would.
        let mut extra = [0u8; 1];
        if tee
            .inner
            .read(&mut extra)
            .map_err(|err| BlobError::io(data.path(), err))?
            > 0
        {
            return Err(BlobError::TooLong {
                expected: size_bytes,
            });
        }
        tee.copy
            .flush()
            .map_err(|err| BlobError::io(data.path(), err))?;
        outboard_out
            .flush()
            .map_err(|err| BlobError::io(outboard.path(), err))?;
        let id = BlobId(*root.as_bytes());
        let ingested = |created| Ingested {
            id,
            size_bytes,
            groups: group_count(size_bytes),
            created,
        };

        // Synced before the lock is taken: a 4 GiB file's sync takes seconds, and other
        // files' reads and inserts wait on the lock.
        for file in [&data, &outboard] {
            file.as_file()
                .sync_all()
                .map_err(|err| BlobError::io(file.path(), err))?;
        }
        let mut index = self.lock();
        if index.complete.contains_key(&id) {
            return Ok(ingested(false));
        }
        if index.len() >= FILES_MAX && !index.partial.contains_key(&id) {
            return Err(BlobError::TooManyFiles);
        }
        // A partial copy of the same file (arriving from a peer) is replaced by this whole one.
        index.partial.remove(&id);
        self.persist(data, &id.data_name())?;
        self.persist(outboard, &id.outboard_name())?;
        self.write_file(
            &id.have_name(),
            &Bitfield::full(size_bytes).file_bytes(size_bytes),
        )?;
        sync_dir(&self.dir)?;
        index.complete.insert(id, size_bytes);
        Ok(ingested(true))
    }
}
