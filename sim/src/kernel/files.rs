//! Large files (`[[workload.file]]`): made from the seed when the world is built, held by
//! their author from the start, and posted as a message naming them as a blob. The bytes
//! exist once: the author's store and every other device's expectation share them, so a
//! 100 MB file in a world of ten costs 100 MB, and each group a device receives is compared
//! with them as it is stored (the byte-exactness the `files` checker reads).

use std::sync::Arc;

use meshlog_core::{Carrier, EventBody, FileId, FileRef};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use meshlog_core::testing::derive_seed;

use super::{device_id, World};

impl World {
    /// The bytes of file `index`: the same for a seed, different for each file.
    fn file_bytes(&self, index: usize) -> Arc<[u8]> {
        let spec = &self.scenario.workload.files[index];
        let mut rng = ChaCha20Rng::from_seed(derive_seed(self.seed, &format!("file {index}")));
        let mut bytes = vec![0; spec.size_bytes as usize];
        rng.fill_bytes(&mut bytes);
        bytes.into()
    }

    /// Gives file `index` to its author (whole), its forgers (altered) and everyone else's
    /// store the bytes to expect.
    pub(super) fn place_file(&mut self, index: usize) {
        let bytes = self.file_bytes(index);
        let spec = self.scenario.workload.files[index].clone();
        let author = self.index[&device_id(&spec.device)];
        let id = self.devices[author]
            .store
            .borrow_mut()
            .files
            .add(bytes.clone());
        for (d, device) in self.devices.iter().enumerate() {
            let forger = spec
                .forged_by
                .iter()
                .any(|n| self.index[&device_id(n)] == d);
            let mut store = device.store.borrow_mut();
            if forger {
                store.files.add_forged(&bytes);
            } else if d != author {
                store.files.expect(id, bytes.clone());
            }
        }
        self.file_ids.push(id);
    }

    /// The author posts a message naming file `index`.
    pub(super) fn post_file(&mut self, index: usize) {
        let spec = &self.scenario.workload.files[index];
        let author = self.index[&device_id(&spec.device)];
        let body = EventBody::Message {
            text: format!("file {index}"),
            attachment: Some(FileRef {
                file: self.file_ids[index],
                size: spec.size_bytes,
                name: format!("file-{index}.bin"),
                mime: "application/octet-stream".into(),
                carrier: Carrier::Blob,
            }),
            auto: true,
        };
        self.append_body(author, body);
    }

    /// The ids of the scenario's files, in order.
    pub fn file_ids(&self) -> &[FileId] {
        &self.file_ids
    }
}
