//! The store against its promises: verify before write, only verified bytes out, bits that
//! survive a restart, and a torn write that never looks verified.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::error::TMP_DIR;
use super::partial::FLUSH_EVERY_GROUPS;
use super::*;

const G: u64 = GROUP_LEN_BYTES;

fn content(len: u64, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

/// The id and post-order outboard of `data`, as a sender would have them.
fn outboard(data: &[u8]) -> (BlobId, Vec<u8>) {
    let mut out = Vec::new();
    let root = tree::outboard_of(data, data.len() as u64, &mut out).unwrap();
    (BlobId(*root.as_bytes()), out)
}

fn group(data: &[u8], index: u64) -> &[u8] {
    let start = (index * G) as usize;
    &data[start..(start + G as usize).min(data.len())]
}

fn store(dir: &Path) -> BlobStore {
    BlobStore::open(dir, 1 << 30).unwrap()
}

#[test]
fn a_forged_group_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    let data = content(5 * G + 100, 1);
    let (id, ob) = outboard(&data);
    assert!(blobs.create_partial(id, data.len() as u64, &ob).unwrap());
    let have_before = fs::read(dir.path().join(id.have_name())).unwrap();

    let mut forged = group(&data, 2).to_vec();
    forged[100] ^= 0x40;
    let err = blobs.insert_group(&id, 2, &forged).unwrap_err();
    assert!(
        matches!(err, BlobError::Tree(TreeError::Forged { index: 2 })),
        "{err}"
    );
    let short = &group(&data, 2)[..100];
    assert!(matches!(
        blobs.insert_group(&id, 2, short),
        Err(BlobError::Tree(TreeError::WrongLength { .. }))
    ));
    blobs.flush().unwrap();
    let on_disk = fs::read(dir.path().join(id.data_name())).unwrap();
    assert!(
        on_disk.iter().all(|&b| b == 0),
        "no forged byte reached the disk"
    );
    assert_eq!(
        fs::read(dir.path().join(id.have_name())).unwrap(),
        have_before
    );
    assert_eq!(blobs.status(&id).unwrap().chunks_have, 0);

    // The true group is taken after the forged one was refused.
    assert_eq!(
        blobs.insert_group(&id, 2, group(&data, 2)).unwrap(),
        Inserted::Stored
    );
}

#[test]
fn an_outboard_that_does_not_hash_to_the_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    let data = content(3 * G, 2);
    let (id, mut ob) = outboard(&data);
    ob[10] ^= 1;
    assert!(blobs.create_partial(id, data.len() as u64, &ob).is_err());
    let (_, ob) = outboard(&data);
    assert!(blobs
        .create_partial(id, data.len() as u64 + 1, &ob)
        .is_err());
    assert!(blobs.status(&id).is_none());
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "only tmp/: {names:?}");
}

#[test]
fn a_partial_file_serves_only_its_verified_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    let data = content(6 * G + 7, 3);
    let (id, ob) = outboard(&data);
    blobs.create_partial(id, data.len() as u64, &ob).unwrap();
    for index in [0, 1, 4, 6] {
        blobs.insert_group(&id, index, group(&data, index)).unwrap();
    }
    let size = data.len() as u64;
    assert_eq!(
        blobs.have(&id).unwrap(),
        vec![0..2 * G, 4 * G..5 * G, 6 * G..size]
    );
    let status = blobs.status(&id).unwrap();
    assert_eq!((status.chunks_have, status.chunks_total), (4, 7));
    assert!(!status.complete);
    assert!(status.bytes_per_second > 0);
    assert_eq!(
        blobs.read_range(&id, 10..2 * G).unwrap(),
        &data[10..2 * G as usize]
    );
    assert!(matches!(
        blobs.read_range(&id, G..2 * G + 1),
        Err(BlobError::NotVerified { .. })
    ));
    assert!(matches!(
        blobs.read_range(&id, 0..size + 1),
        Err(BlobError::PastEnd { .. })
    ));
    for index in [2, 3] {
        blobs.insert_group(&id, index, group(&data, index)).unwrap();
    }
    assert_eq!(
        blobs.insert_group(&id, 5, group(&data, 5)).unwrap(),
        Inserted::Completed
    );
    assert!(blobs.status(&id).unwrap().complete);
    assert_eq!(
        blobs.read_range(&id, 0..size).unwrap(),
        data,
        "byte-exact once complete"
    );
}

#[test]
fn verified_groups_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(3 * G, 4);
    let (id, ob) = outboard(&data);
    {
        let blobs = store(dir.path());
        blobs.create_partial(id, data.len() as u64, &ob).unwrap();
        blobs.insert_group(&id, 1, group(&data, 1)).unwrap();
        blobs.flush().unwrap();
    }
    let blobs = store(dir.path());
    assert_eq!(blobs.have(&id).unwrap(), vec![G..2 * G]);
    assert_eq!(blobs.read_range(&id, G..2 * G).unwrap(), group(&data, 1));
    blobs.insert_group(&id, 0, group(&data, 0)).unwrap();
    blobs.insert_group(&id, 2, group(&data, 2)).unwrap();
    drop(blobs);
    assert!(store(dir.path()).status(&id).unwrap().complete);
}

#[test]
fn a_torn_write_is_not_reported_verified() {
    let dir = tempfile::tempdir().unwrap();
    // More groups than one flush holds, so the last few are written but not yet marked.
    let groups = FLUSH_EVERY_GROUPS + 3;
    let data = content(groups * G, 5);
    let (id, ob) = outboard(&data);
    {
        let blobs = store(dir.path());
        blobs.create_partial(id, data.len() as u64, &ob).unwrap();
        for index in 0..groups - 1 {
            blobs.insert_group(&id, index, group(&data, index)).unwrap();
        }
        // "Crash": the store is dropped without a flush; the last groups' bytes are in the
        // data file (the page cache) but their bits were never written.
    }
    // And a write that reached the data file for a group never inserted at all.
    let last = groups - 1;
    File::options()
        .write(true)
        .open(dir.path().join(id.data_name()))
        .unwrap()
        .write_all_at(group(&data, last), last * G)
        .unwrap();
    let blobs = store(dir.path());
    assert_eq!(
        blobs.have(&id).unwrap(),
        vec![0..FLUSH_EVERY_GROUPS * G],
        "only the synced flush counts"
    );
    assert!(matches!(
        blobs.read_range(&id, last * G..groups * G),
        Err(BlobError::NotVerified { .. })
    ));
    assert!(!blobs.status(&id).unwrap().complete);
}

#[test]
fn an_upload_is_stored_once_and_a_short_or_long_one_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    let data = content(2 * G + 5, 6);
    let first = blobs.ingest(data.len() as u64, &data[..]).unwrap();
    assert_eq!(first.id.0, *blake3::hash(&data).as_bytes());
    assert!(first.created);
    assert_eq!(first.groups, 3);
    let again = blobs.ingest(data.len() as u64, &data[..]).unwrap();
    assert!(!again.created);
    assert_eq!(again.id, first.id);
    assert_eq!(
        blobs.read_range(&first.id, 0..data.len() as u64).unwrap(),
        data
    );

    let other = content(3 * G, 7);
    assert!(matches!(
        blobs.ingest(other.len() as u64 + 10, &other[..]),
        Err(BlobError::Truncated { got, .. }) if got == other.len() as u64
    ));
    assert!(matches!(
        blobs.ingest(other.len() as u64 - 1, &other[..]),
        Err(BlobError::TooLong { .. })
    ));
    assert!(matches!(
        BlobStore::open(dir.path(), 10)
            .unwrap()
            .ingest(11, &other[..]),
        Err(BlobError::TooLarge { .. })
    ));
    // Only the first file's three pieces, and an empty tmp/.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 4);
    assert_eq!(fs::read_dir(dir.path().join(TMP_DIR)).unwrap().count(), 0);
}
