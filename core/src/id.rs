//! Identifiers: content-addressed event ids, file ids and device names.

use std::fmt;
use std::hash::{Hash, Hasher};

/// `blake3(encrypted event bytes)`, all 32 bytes. Stored and wire forms are the same bytes,
/// so a receiver recomputes the id and rejects a mismatch.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EventId(pub [u8; 32]);

/// Byte order (see `cmp_words`).
impl Ord for EventId {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        cmp_words(&self.0, &other.0)
    }
}

impl PartialOrd for EventId {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl EventId {
    pub fn of_bytes(bytes: &[u8]) -> Self {
        EventId(*blake3::hash(bytes).as_bytes())
    }
    pub fn to_hex(&self) -> String {
        hex32(&self.0)
    }
    pub fn from_hex(text: &str) -> Option<Self> {
        parse_hex32(text).map(EventId)
    }
    /// The low 8 bytes as a number: what bucket fingerprints XOR together. Bucket prefixes
    /// come from the leading bytes, so the tail stays uniformly random within a bucket.
    pub fn fingerprint_part(&self) -> u64 {
        u64::from_le_bytes(self.0[24..32].try_into().expect("8 bytes"))
    }
}

/// Hashes exactly the 32 id bytes. `[u8; 32]`'s own `Hash` writes a length prefix first,
/// which would make Bloom filter bits depend on the platform's `usize`.
impl Hash for EventId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for EventId {
    /// The first 12 hex digits: enough for logs and traces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex()[..12])
    }
}

/// `blake3(file content)`: how a message refers to its attachment.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub [u8; 32]);

impl FileId {
    pub fn of_content(bytes: &[u8]) -> Self {
        FileId(*blake3::hash(bytes).as_bytes())
    }
    pub fn to_hex(&self) -> String {
        hex32(&self.0)
    }
    pub fn from_hex(text: &str) -> Option<Self> {
        parse_hex32(text).map(FileId)
    }
}

impl fmt::Debug for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileId({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex()[..12])
    }
}

/// A device's name ("alice"): 1 to `DEVICE_NAME_LEN_MAX` bytes of `[a-z0-9_-]`.
///
/// Held inline, zero-padded, not in a `String`: names key the maps a node consults for
/// every datagram (keys, replay windows, links), and a heap string there cost a pointer
/// chase and a `memcmp` call per comparison and an allocation per clone (`memcmp`, mostly
/// these, was 9% of a 300-device world's samples). Valid names hold no zero byte, so the padded bytes
/// sort exactly as the names do ("ab" < "abc" because 0 < b'c').
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DeviceId {
    bytes: [u8; DEVICE_NAME_LEN_MAX],
    len: u8,
}

pub const DEVICE_NAME_LEN_MAX: usize = 32;

impl DeviceId {
    /// Checks the name; `None` if it is empty, too long or has other characters.
    pub fn new(name: &str) -> Option<Self> {
        let valid = !name.is_empty()
            && name.len() <= DEVICE_NAME_LEN_MAX
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            return None;
        }
        let mut bytes = [0u8; DEVICE_NAME_LEN_MAX];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Some(DeviceId {
            bytes,
            len: name.len() as u8,
        })
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("checked ASCII in new")
    }
}

/// The name's order (see the type's comment), by `cmp_words`.
impl Ord for DeviceId {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        cmp_words(&self.bytes, &other.bytes)
    }
}

impl PartialOrd for DeviceId {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Byte order of two 32-byte strings, compared as four big-endian words: the first word
/// almost always decides (ids are hashes; names differ early), in a few instructions instead
/// of a call to `memcmp` (the derived order's way), which took an eighth of a large world's
/// processor time in sorted-id searches.
#[inline]
fn cmp_words(a: &[u8; 32], b: &[u8; 32]) -> std::cmp::Ordering {
    // `first_chunk` views 8 bytes as an array, read as one load even at the test profile's
    // low optimisation (a `copy_from_slice` there was a call to `memmove`).
    let word = |bytes: &[u8; 32], i: usize| {
        let chunk = bytes[i * 8..]
            .first_chunk::<8>()
            .expect("32 bytes are 4 words");
        u64::from_be_bytes(*chunk)
    };
    for i in 0..4 {
        let order = word(a, i).cmp(&word(b, i));
        if order.is_ne() {
            return order;
        }
    }
    std::cmp::Ordering::Equal
}

fn hex32(bytes: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_byte_order_whichever_byte_differs() {
        let base = EventId::of_bytes(b"base");
        for at in 0..32 {
            for (a, b) in [(0u8, 1u8), (0x7f, 0x80), (0xfe, 0xff)] {
                let (mut x, mut y) = (base, base);
                x.0[at] = a;
                y.0[at] = b;
                assert_eq!(x.cmp(&y), x.0.cmp(&y.0), "byte {at}");
                assert_eq!(y.cmp(&x), y.0.cmp(&x.0), "byte {at}");
                assert!(x < y, "byte {at}");
            }
        }
        assert_eq!(base.cmp(&base), std::cmp::Ordering::Equal);
    }

    #[test]
    fn hex_round_trips_and_rejects_bad_text() {
        let id = EventId::of_bytes(b"hello");
        assert_eq!(EventId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(EventId::from_hex("zz"), None);
        assert_eq!(EventId::from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn device_names_are_checked() {
        assert!(DeviceId::new("alice").is_some());
        assert!(DeviceId::new("node-7_b").is_some());
        assert!(DeviceId::new("").is_none());
        assert!(DeviceId::new("Alice").is_none());
        assert!(DeviceId::new(&"a".repeat(33)).is_none());
        assert!(DeviceId::new("a b").is_none());
        let longest = "z".repeat(DEVICE_NAME_LEN_MAX);
        assert_eq!(DeviceId::new(&longest).unwrap().as_str(), longest);
    }

    #[test]
    fn device_names_sort_as_their_text_does() {
        let names = [
            "a", "ab", "abc", "abd", "b", "a-", "a_", "a0", "z", "d099", "d1", "d100", "zz",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([
            "x".repeat(31),
            "x".repeat(32),
            format!("{}y", "x".repeat(30)),
        ]);
        let names: Vec<String> = names.collect();
        for a in &names {
            for b in &names {
                let (x, y) = (DeviceId::new(a).unwrap(), DeviceId::new(b).unwrap());
                assert_eq!(x.cmp(&y), a.cmp(b), "{a} against {b}");
                assert_eq!(x == y, a == b, "{a} against {b}");
                assert_eq!(x.as_str(), a);
            }
        }
    }
}
