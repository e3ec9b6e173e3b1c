//! Core's `BlobStore` over the device's store, driven as the transfer drives it: one store
//! serves an upload, another fills a partial file from it, group by group, across a reopen.

use std::sync::Arc;

use meshlog_core::blob::BlobStore as CoreBlobs;
use meshlog_core::{FileId, StoreError};

use super::transfer::{NodeBlobs, CHANGES_QUEUED, MISSING_LIMIT_MAX, NOTE_EVERY_GROUPS};
use super::*;

const G: u64 = GROUP_LEN_BYTES;

fn content(len: u64) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + (i >> 11)) as u8).collect()
}

fn open(dir: &std::path::Path, max: u64) -> NodeBlobs {
    NodeBlobs::new(Arc::new(BlobStore::open(dir, max).unwrap()))
}

/// The sender's whole outboard, read in pieces as a transfer would.
fn outboard_of(sender: &mut NodeBlobs, id: &FileId) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let piece = sender
            .read_outboard(id, out.len() as u64, 100)
            .unwrap()
            .unwrap();
        if piece.is_empty() {
            return out;
        }
        out.extend(piece);
    }
}

#[test]
fn a_file_moves_between_two_stores_and_resumes_after_a_reopen() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let data = content(10 * G + 123);
    let size = data.len() as u64;
    let uploaded = BlobStore::open(a.path(), 1 << 30)
        .unwrap()
        .ingest(size, &data[..])
        .unwrap();
    let id = FileId(uploaded.id.0);
    let mut sender = open(a.path(), 1 << 30);
    let status = sender.status(&id).unwrap();
    assert!(status.is_complete());
    assert_eq!(status.groups_total, 11);
    assert!(sender.missing(&id, 0, 100).is_empty());
    assert_eq!(sender.read_group(&id, 11).unwrap(), None, "past the end");
    assert_eq!(sender.read_group(&id, 10).unwrap().unwrap().len(), 123);
    let outboard = outboard_of(&mut sender, &id);
    assert_eq!(outboard.len() as u64, tree::outboard_len(size));

    let mut receiver = open(b.path(), 1 << 30);
    assert_eq!(receiver.status(&id), None);
    assert_eq!(receiver.read_outboard(&id, 0, 10).unwrap(), None);
    receiver.create_partial(&id, size, &outboard).unwrap();
    receiver.create_partial(&id, size, &outboard).unwrap(); // a second offer: no error
    assert_eq!(receiver.partials(), vec![(id, size)]);
    assert_eq!(
        outboard_of(&mut receiver, &id),
        outboard,
        "a partial serves its outboard"
    );
    let send = |receiver: &mut NodeBlobs, sender: &mut NodeBlobs, groups: std::ops::Range<u64>| {
        for index in groups {
            let group = sender.read_group(&id, index).unwrap().unwrap();
            assert!(!receiver.insert_group(&id, index, &group).unwrap());
        }
    };
    send(&mut receiver, &mut sender, 0..6);
    assert_eq!(
        receiver.read_group(&id, 6).unwrap(),
        None,
        "not verified yet"
    );
    assert_eq!(receiver.missing(&id, 0, 3), vec![6, 7, 8]);
    assert_eq!(receiver.missing(&id, 9, 100), vec![9, 10]);

    // A crash before the groups were synced (fewer than a flush's 64): their bits are gone,
    // never claimed, and the file is still a partial to resume from the start.
    drop(receiver);
    let store = Arc::new(BlobStore::open(b.path(), 1 << 30).unwrap());
    let mut receiver = NodeBlobs::new(store.clone());
    assert_eq!(receiver.partials(), vec![(id, size)]);
    assert_eq!(receiver.status(&id).unwrap().groups_have, 0);

    // A restart after a flush (a clean stop, or every 64 groups): what was verified stays so.
    send(&mut receiver, &mut sender, 0..6);
    store.flush().unwrap();
    drop((receiver, store));
    let mut receiver = open(b.path(), 1 << 30);
    assert_eq!(receiver.partials(), vec![(id, size)]);
    assert_eq!(receiver.status(&id).unwrap().groups_have, 6);
    let mut completed = false;
    for index in receiver.missing(&id, 0, MISSING_LIMIT_MAX) {
        let group = sender.read_group(&id, index).unwrap().unwrap();
        completed = receiver.insert_group(&id, index, &group).unwrap();
    }
    assert!(completed, "the last group completes the file");
    assert!(receiver.partials().is_empty());
    let mut whole = Vec::new();
    for index in 0..11 {
        whole.extend(receiver.read_group(&id, index).unwrap().unwrap());
    }
    assert_eq!(whole, data);
}

#[test]
fn limits_and_forged_groups_are_refusals_not_failures() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let data = content(3 * G);
    let size = data.len() as u64;
    let stored = BlobStore::open(a.path(), 1 << 30).unwrap();
    let id = FileId(stored.ingest(size, &data[..]).unwrap().id.0);
    drop(stored);
    let outboard = outboard_of(&mut open(a.path(), 1 << 30), &id);

    // Over this device's `--file-size-max`.
    let mut small = open(b.path(), size - 1);
    assert!(matches!(
        small.create_partial(&id, size, &outboard),
        Err(StoreError::Refused(_))
    ));
    assert!(small.partials().is_empty());
    drop(small);

    let mut receiver = open(b.path(), 1 << 30);
    let mut wrong = outboard.clone();
    wrong[0] ^= 1;
    assert!(matches!(
        receiver.create_partial(&id, size, &wrong),
        Err(StoreError::Refused(_))
    ));
    receiver.create_partial(&id, size, &outboard).unwrap();
    let mut forged = data[..G as usize].to_vec();
    forged[7] ^= 0x10;
    assert!(matches!(
        receiver.insert_group(&id, 0, &forged),
        Err(StoreError::Refused(_))
    ));
    assert!(matches!(
        receiver.insert_group(&FileId([9; 32]), 0, &data[..G as usize]),
        Err(StoreError::Refused(_))
    ));
    assert_eq!(receiver.status(&id).unwrap().groups_have, 0);
    assert!(receiver
        .read_outboard(&id, 0, READ_LEN_MAX_BYTES as usize + 1)
        .is_err());
}

#[test]
fn too_many_partials_is_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let mut blobs = open(dir.path(), 1 << 30);
    for n in 0..=PARTIALS_MAX {
        let data = content(G + n as u64);
        let mut outboard = Vec::new();
        let root = tree::outboard_of(&data[..], data.len() as u64, &mut outboard).unwrap();
        let made = blobs.create_partial(&FileId(*root.as_bytes()), data.len() as u64, &outboard);
        if n < PARTIALS_MAX {
            made.unwrap();
        } else {
            assert!(matches!(made, Err(StoreError::Refused(_))), "{made:?}");
        }
    }
    assert_eq!(blobs.partials().len(), PARTIALS_MAX);
}

#[test]
fn a_file_is_noted_when_it_completes_and_every_flush_on_the_way() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let groups = NOTE_EVERY_GROUPS + 2;
    let data = content(groups * G);
    let stored = BlobStore::open(a.path(), 1 << 30).unwrap();
    let id = FileId(stored.ingest(groups * G, &data[..]).unwrap().id.0);
    drop(stored);
    let mut sender = open(a.path(), 1 << 30);
    let outboard = outboard_of(&mut sender, &id);
    let (changed, mut noted) = tokio::sync::mpsc::channel(CHANGES_QUEUED);
    let mut receiver = open(b.path(), 1 << 30).notify(changed);
    receiver.create_partial(&id, groups * G, &outboard).unwrap();
    for index in 0..groups {
        let group = sender.read_group(&id, index).unwrap().unwrap();
        receiver.insert_group(&id, index, &group).unwrap();
        // A duplicate is not progress.
        receiver.insert_group(&id, index, &group).unwrap();
    }
    let mut notes = Vec::new();
    while let Ok(blob) = noted.try_recv() {
        notes.push(blob);
    }
    assert_eq!(
        notes,
        vec![BlobId(id.0); 2],
        "one at 64 groups, one at completion"
    );
}
