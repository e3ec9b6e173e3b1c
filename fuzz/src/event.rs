//! Sealed events, from anyone or genuinely signed and encrypted.

use meshlog_core::{open, seal, seal_plaintext, RejectReason};

use crate::{community, device, member_keys};

/// First byte: the mode; the rest: sealed bytes (even) or a plaintext without its signature
/// (odd), which alice signs and encrypts under the community key so the decoder behind the
/// AEAD and the signature check sees it.
pub fn event_open(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(opened) = open(bytes, community()) {
            assert_eq!(opened.sealed, bytes);
            assert!(community().member(&opened.event.author).is_some());
        }
        return;
    }
    let alice = member_keys("alice");
    let nonce = [mode; 24];
    let Ok(sealed) = seal_plaintext(bytes, alice, community(), nonce) else {
        return;
    };
    match open(&sealed, community()) {
        Ok(opened) => {
            // Signed by alice, so it opens only as alice's; and what opens is the one
            // encoding of that event (sealing it again gives the same bytes).
            assert_eq!(opened.event.author, device("alice"));
            let again = seal(&opened.event, alice, community(), nonce)
                .expect("an opened event seals again");
            assert_eq!(again.sealed, sealed, "non-canonical event encoding");
        }
        Err(
            RejectReason::BadEncoding(_)
            | RejectReason::UnknownAuthor(_)
            | RejectReason::BadSignature,
        ) => {}
        Err(other) => panic!("a genuine seal rejected as {other:?}"),
    }
}
