//! A device's own word on where it is reached: its addresses, signed with its device key, with
//! an issue time and an expiry. Members pass each other's records along with the sync
//! (`Payload::Addresses`, `node/records.rs`), so a device that knows one member finds the rest.
//!
//! ```text
//! RECORD  name_len:u8 | name | count:u8 | (family:u8 | ip:4|16 | port:u16){count}
//!         | issued_at_ms:u64 | expires_at_ms:u64 | signature:64
//! ```
//!
//! Only the device itself can say where it is: the signature covers the community's id, so a
//! record cannot be carried into another community, and every field, so a relaying member
//! cannot change one. A record is a hint: the address it names is tried, and the device's own
//! packets confirm it (`node/addresses.rs`).

use std::net::SocketAddr;

use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::{DeviceKeys, PublicKey, SIGNATURE_LEN};
use crate::id::DeviceId;

/// Addresses one record names at most: a device has a few interfaces, not dozens, and the
/// bound keeps a record (and a packet of them) small.
pub const RECORD_ADDRESSES_MAX: usize = 4;

/// Bytes a record takes at most: the longest name and four IPv6 addresses.
pub const RECORD_LEN_MAX: usize = 1
    + crate::id::DEVICE_NAME_LEN_MAX
    + 1
    + RECORD_ADDRESSES_MAX * (1 + 16 + 2)
    + 8
    + 8
    + SIGNATURE_LEN;

const SIGNING_CONTEXT: &[u8] = b"meshlog address record v1";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressRecord {
    pub device: DeviceId,
    /// Where it listens, most preferred first; 1 to `RECORD_ADDRESSES_MAX`.
    pub addrs: Vec<SocketAddr>,
    pub issued_at_ms: u64,
    pub expires_at_ms: u64,
    pub signature: [u8; SIGNATURE_LEN],
}

impl AddressRecord {
    /// `keys`' record of `addrs` (at most `RECORD_ADDRESSES_MAX` are kept), valid from
    /// `issued_at_ms` until `expires_at_ms`, for the community `community_id`.
    pub fn sign(
        keys: &DeviceKeys,
        community_id: &[u8; 16],
        addrs: &[SocketAddr],
        issued_at_ms: u64,
        expires_at_ms: u64,
    ) -> Self {
        assert!(!addrs.is_empty(), "a record names at least one address");
        assert!(
            issued_at_ms < expires_at_ms,
            "a record expires after it is issued"
        );
        let mut record = AddressRecord {
            device: keys.device.clone(),
            addrs: addrs.iter().take(RECORD_ADDRESSES_MAX).copied().collect(),
            issued_at_ms,
            expires_at_ms,
            signature: [0; SIGNATURE_LEN],
        };
        record.signature = keys.sign(&record.signed_bytes(community_id));
        record
    }

    /// Whether `key` (the device's key in the roster) signed exactly this record for
    /// `community_id`.
    pub fn verify(&self, key: &PublicKey, community_id: &[u8; 16]) -> bool {
        key.verify(&self.signed_bytes(community_id), &self.signature)
    }

    fn signed_bytes(&self, community_id: &[u8; 16]) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(SIGNING_CONTEXT).raw(community_id);
        self.encode_fields(&mut w);
        w.bytes
    }

    fn encode_fields(&self, w: &mut Writer) {
        w.bytes_u8(self.device.as_str().as_bytes());
        w.u8(self.addrs.len() as u8);
        for addr in &self.addrs {
            w.socket_addr(addr);
        }
        w.u64(self.issued_at_ms).u64(self.expires_at_ms);
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        self.encode_fields(w);
        w.raw(&self.signature);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let name = r.str_u8("record device")?;
        let device = DeviceId::new(name)
            .ok_or_else(|| DecodeError::invalid("record device", "not a device name"))?;
        let count = usize::from(r.u8("record address count")?);
        if count == 0 || count > RECORD_ADDRESSES_MAX {
            return Err(DecodeError::invalid(
                "record address count",
                format!("{count}, not 1..={RECORD_ADDRESSES_MAX}"),
            ));
        }
        let mut addrs = Vec::with_capacity(count);
        for _ in 0..count {
            addrs.push(r.socket_addr("record address")?);
        }
        let issued_at_ms = r.u64("record issued at")?;
        let expires_at_ms = r.u64("record expires at")?;
        let signature = r.array::<SIGNATURE_LEN>("record signature")?;
        Ok(AddressRecord {
            device,
            addrs,
            issued_at_ms,
            expires_at_ms,
            signature,
        })
    }

    pub fn encoded_len(&self) -> usize {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::keys;

    fn record() -> (DeviceKeys, AddressRecord) {
        let alice = keys("alice", 1);
        let addrs: Vec<SocketAddr> = vec![
            "10.0.0.2:8001".parse().unwrap(),
            "[fe80::1]:8001".parse().unwrap(),
        ];
        let record = AddressRecord::sign(&alice, &[7; 16], &addrs, 1_000, 601_000);
        (alice, record)
    }

    #[test]
    fn a_record_round_trips_and_verifies_only_unchanged_and_in_its_community() {
        let (alice, record) = record();
        let mut w = Writer::new();
        record.encode(&mut w);
        assert!(w.bytes.len() <= RECORD_LEN_MAX);
        let decoded = AddressRecord::decode(&mut Reader::new(&w.bytes)).expect("decodes");
        assert_eq!(decoded, record);
        assert!(decoded.verify(&alice.public(), &[7; 16]));
        assert!(
            !decoded.verify(&alice.public(), &[8; 16]),
            "another community"
        );
        assert!(
            !decoded.verify(&keys("bob", 1).public(), &[7; 16]),
            "another signer"
        );
        let mut moved = decoded.clone();
        moved.addrs[0] = "203.0.113.9:666".parse().unwrap();
        assert!(
            !moved.verify(&alice.public(), &[7; 16]),
            "a relaying member changed it"
        );
        let mut longer = decoded;
        longer.expires_at_ms += 1;
        assert!(!longer.verify(&alice.public(), &[7; 16]));
    }

    #[test]
    fn garbage_never_decodes_to_a_record_with_no_address_or_too_many() {
        let (_, record) = record();
        let mut w = Writer::new();
        record.encode(&mut w);
        let count_at = 1 + "alice".len();
        for bad in [0u8, 5, 255] {
            let mut bytes = w.bytes.clone();
            bytes[count_at] = bad;
            assert!(AddressRecord::decode(&mut Reader::new(&bytes)).is_err());
        }
        for len in 0..w.bytes.len() {
            assert!(AddressRecord::decode(&mut Reader::new(&w.bytes[..len])).is_err());
        }
    }
}
