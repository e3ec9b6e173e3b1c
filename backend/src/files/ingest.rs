//! A local upload: `size` bytes read from anything (the HTTP body, through a channel),
//! written to a temporary file and hashed into an outboard in one pass, then renamed into
//! place. Memory: two write buffers and one group, whatever the size.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};

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

/// Reads from `inner`, copying every byte to `copy`; counts them, and keeps a write error
/// apart from a read error (a full disk is not a short body).
struct Tee<R> {
    inner: R,
    copy: BufWriter<File>,
    read_bytes: u64,
    write_error: Option<io::Error>,
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
        Ok(n)
    }
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
        let mut tee = Tee {
            inner: body,
            copy: BufWriter::with_capacity(WRITE_BUF_BYTES, data_copy),
            read_bytes: 0,
            write_error: None,
        };
        let mut outboard_out = BufWriter::with_capacity(WRITE_BUF_BYTES, outboard_copy);
        let root = match tree::outboard_of(&mut tee, size_bytes, &mut outboard_out) {
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
