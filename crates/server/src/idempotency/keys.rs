//! The `Idempotency-Key` header: one key of 1-255 visible ASCII characters, and the
//! ids of the turn's two messages it fixes, derived from (user, session, key) so every
//! attempt writes the same messages.

use axum::http::HeaderMap;
use ragchat_engine::TurnIds;
use ragchat_memory::{MessageId, SessionKey};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// The response header on a replayed turn.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

/// The request's idempotency key, if it sent one.
///
/// # Errors
/// `400 invalid_input` for a key that is empty, longer than [`MAX_KEY_LEN`] or not
/// visible ASCII, or for more than one key.
pub fn key_from(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::invalid_input(
            "send one Idempotency-Key header, not several",
        ));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN || !bytes.iter().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::invalid_input(format!(
            "Idempotency-Key must be 1-{MAX_KEY_LEN} visible ASCII characters (no spaces), e.g. a UUID"
        )));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The ids of the two messages of the turn `idempotency_key` names in `key`'s session.
pub fn turn_ids(key: &SessionKey, idempotency_key: &str) -> TurnIds {
    let id = |part: &[u8]| {
        let mut hash = Sha256::new();
        for piece in [
            b"ragchat idempotency v1".as_slice(),
            key.user().as_bytes(),
            key.session().as_bytes(),
            idempotency_key.as_bytes(),
            part,
        ] {
            // Length-prefixed, so no two different inputs hash the same bytes.
            hash.update((piece.len() as u64).to_be_bytes());
            hash.update(piece);
        }
        let digest = hash.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        MessageId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    };
    TurnIds {
        question: id(b"question"),
        answer: id(b"answer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn ids_depend_on_every_part() {
        let key = SessionKey::new("alice", "s").unwrap();
        let ids = turn_ids(&key, "k1");
        assert_eq!(ids, turn_ids(&key, "k1"), "deterministic");
        assert_ne!(ids.question, ids.answer);
        assert_ne!(ids, turn_ids(&key, "k2"));
        assert_ne!(ids, turn_ids(&SessionKey::new("bob", "s").unwrap(), "k1"));
        assert_ne!(ids, turn_ids(&SessionKey::new("alice", "t").unwrap(), "k1"));
        // No ambiguity where the parts meet.
        assert_ne!(
            turn_ids(&SessionKey::new("ab", "c").unwrap(), "k"),
            turn_ids(&SessionKey::new("a", "bc").unwrap(), "k")
        );
    }

    #[test]
    fn keys_are_checked() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(HEADER, HeaderValue::from_str(v).unwrap());
            key_from(&h)
        };
        assert_eq!(with("0b7c-42").unwrap().as_deref(), Some("0b7c-42"));
        assert!(key_from(&HeaderMap::new()).unwrap().is_none());
        for bad in ["", "a b", &"x".repeat(256)] {
            assert_eq!(with(bad).unwrap_err().code(), "invalid_input", "{bad:?}");
        }
        let mut two = HeaderMap::new();
        two.append(HEADER, HeaderValue::from_static("a"));
        two.append(HEADER, HeaderValue::from_static("b"));
        assert!(key_from(&two).is_err());
    }
}
