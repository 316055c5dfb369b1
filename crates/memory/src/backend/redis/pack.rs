//! One message as one Redis value (layout v2): a fixed 39-byte head, then the sources
//! JSON, then the content. The scripts read only the head's id, seq and the length
//! (`common.lua`); everything else is written and read here.
//!
//! ```text
//! 0       tag: 2 (a tag 0 value is a v1 entry the conversion could not read; the rest
//!         of it says why)
//! 1..17   id, the UUID's 16 bytes
//! 17..25  seq, u64 big-endian (0 from the client: the append script sets it)
//! 25..33  created_at, milliseconds since the epoch, i64 big-endian
//! 33      role: b'u' user, b'a' assistant, b's' system
//! 34      status: b'c' complete, b'i' incomplete
//! 35..39  length of the sources JSON, u32 big-endian
//! ```

use redis::Value;
use uuid::Uuid;

use super::decode::{value_i64, value_str};
use crate::message::{Message, MessageId, MessageStatus, Role};
use crate::store::CorruptEntry;

/// Bytes before the sources and the content.
pub(crate) const HEAD: usize = 39;
const TAG: u8 = 2;

fn role_code(role: Role) -> u8 {
    match role {
        Role::User => b'u',
        Role::Assistant => b'a',
        Role::System => b's',
    }
}

fn status_code(status: MessageStatus) -> u8 {
    match status {
        MessageStatus::Complete => b'c',
        MessageStatus::Incomplete => b'i',
    }
}

/// `message` packed, with `seq` (0 when the script assigns it).
pub(crate) fn pack(message: &Message, seq: u64) -> Vec<u8> {
    let sources = message.sources_json();
    let mut out = Vec::with_capacity(HEAD + sources.len() + message.content.len());
    out.push(TAG);
    out.extend_from_slice(message.id.as_uuid().as_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&message.created_at_millis().to_be_bytes());
    out.push(role_code(message.role));
    out.push(status_code(message.status));
    out.extend_from_slice(&(sources.len() as u32).to_be_bytes());
    out.extend_from_slice(sources.as_bytes());
    out.extend_from_slice(message.content.as_bytes());
    out
}

/// The seq and message packed in `value`, or why it is not one.
pub(crate) fn unpack(value: &[u8]) -> Result<(u64, Message), CorruptEntry> {
    let bad = |seq: Option<u64>, reason: String| CorruptEntry { seq, reason };
    match value.first() {
        Some(&TAG) => {}
        Some(0) => {
            return Err(bad(None, String::from_utf8_lossy(&value[1..]).into_owned()));
        }
        _ => return Err(bad(None, "not a packed message".into())),
    }
    if value.len() < HEAD {
        return Err(bad(
            None,
            format!("{} bytes, shorter than the head", value.len()),
        ));
    }
    let seq = u64::from_be_bytes(value[17..25].try_into().unwrap_or_default());
    let created_at_ms = i64::from_be_bytes(value[25..33].try_into().unwrap_or_default());
    let role = match value[33] {
        b'u' => Role::User,
        b'a' => Role::Assistant,
        b's' => Role::System,
        other => return Err(bad(Some(seq), format!("unknown role code {other}"))),
    };
    let status = match value[34] {
        b'c' => MessageStatus::Complete,
        b'i' => MessageStatus::Incomplete,
        other => return Err(bad(Some(seq), format!("unknown status code {other}"))),
    };
    let sources_len = u32::from_be_bytes(value[35..39].try_into().unwrap_or_default()) as usize;
    let Some(sources) = value.get(HEAD..HEAD + sources_len) else {
        return Err(bad(Some(seq), "the sources run past the value".into()));
    };
    let content = std::str::from_utf8(&value[HEAD + sources_len..])
        .map_err(|_| bad(Some(seq), "the content is not UTF-8".into()))?;
    let sources = if sources.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(sources)
            .map_err(|e| bad(Some(seq), format!("sources are not valid JSON: {e}")))?
    };
    let id = Uuid::from_slice(&value[1..17]).map_err(|e| bad(Some(seq), e.to_string()))?;
    let message = Message {
        id: MessageId::from_uuid(id),
        role,
        content: content.to_string(),
        sources,
        created_at: crate::message::millis_to_datetime(created_at_ms),
        status,
    };
    Ok((seq, message))
}

/// The messages of a script's reply: packed values (v2), or stream entries (what the
/// v1 scripts return; kept for the v1 fixtures' tests). Bad ones are reported apart.
pub(crate) fn decode_messages(entries: &[Value]) -> (Vec<(u64, Message)>, Vec<CorruptEntry>) {
    let mut messages = Vec::with_capacity(entries.len());
    let mut corrupt = Vec::new();
    for entry in entries {
        let decoded = match entry {
            Value::BulkString(bytes) => unpack(bytes),
            Value::Array(_) => super::decode::decode_entry(entry),
            other => Err(CorruptEntry {
                seq: value_i64(other).map(|s| s as u64),
                reason: format!(
                    "not a message: {:?}",
                    value_str(other).unwrap_or("(not text)")
                ),
            }),
        };
        match decoded {
            Ok(m) => messages.push(m),
            Err(bad) => corrupt.push(bad),
        }
    }
    (messages, corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::SourceRef;

    #[test]
    fn a_message_comes_back_as_it_went_in() {
        let mut m = Message::assistant("Overfitting is …").with_sources(vec![SourceRef {
            path: "ml.md".into(),
            heading: Some("Overfitting".into()),
            score: 0.5,
            ..Default::default()
        }]);
        m.status = MessageStatus::Incomplete;
        let packed = pack(&m, 42);
        assert_eq!(
            packed.len(),
            HEAD + m.sources_json().len() + m.content.len()
        );
        let (seq, back) = unpack(&packed).unwrap();
        assert_eq!(seq, 42);
        assert_eq!(back, m);
    }

    #[test]
    fn damaged_values_are_reported_not_decoded() {
        let good = pack(&Message::user("hello"), 7);
        let mut role = good.clone();
        role[33] = b'x';
        let mut sources = good.clone();
        sources[35..39].copy_from_slice(&1000u32.to_be_bytes());
        let mut text = good.clone();
        text.push(0xff);
        for (value, says) in [
            (&good[..10], "shorter than the head"),
            (&role[..], "unknown role"),
            (&sources[..], "sources run past"),
            (&text[..], "not UTF-8"),
            (&b"\0a v1 entry without a valid id"[..], "v1 entry"),
            (&b"xyz"[..], "not a packed message"),
        ] {
            let err = unpack(value).unwrap_err();
            assert!(err.reason.contains(says), "{} vs {says}", err.reason);
        }
    }
}
