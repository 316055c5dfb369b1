//! Decoding what Redis returns: errors (transient or not, quota refusals), numbers,
//! stream entries and the meta fields the scripts return.

use redis::{RedisError, Value};

use crate::backend::shared::{decode_message, StoredFields};
use crate::error::MemoryError;
use crate::limits::QuotaBreach;
use crate::message::Message;
use crate::store::{CorruptEntry, SessionMeta};

/// Maps a redis-rs error to ours: anything that a later retry may fix is `Unavailable`.
pub(super) fn classify(store: &str, e: RedisError) -> MemoryError {
    let transient_code = matches!(
        e.code(),
        Some("LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN" | "READONLY" | "OOM")
    );
    if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_cluster_error()
        || transient_code
    {
        MemoryError::Unavailable {
            store: store.to_string(),
            reason: e.to_string(),
        }
    } else {
        MemoryError::Storage {
            store: store.to_string(),
            reason: e.to_string(),
        }
    }
}

pub(super) fn value_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

pub(super) fn value_str(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

/// Decodes one stream entry `[id, [field, value, ...]]` (as `XRANGE` returns it) into
/// `(seq, message)`; anything malformed is a [`CorruptEntry`], never a panic.
pub fn decode_entry(entry: &Value) -> std::result::Result<(u64, Message), CorruptEntry> {
    let Value::Array(parts) = entry else {
        return Err(CorruptEntry {
            seq: None,
            reason: "stream entry is not an array".into(),
        });
    };
    let entry_id = parts.first().and_then(value_str).unwrap_or("");
    let seq = entry_id
        .split('-')
        .next()
        .and_then(|s| s.parse::<u64>().ok());
    let bad = |reason: String| CorruptEntry { seq, reason };
    let Some(seq_value) = seq else {
        return Err(bad(format!("stream entry id {entry_id:?} is not <seq>-0")));
    };
    let Some(Value::Array(fields)) = parts.get(1) else {
        return Err(bad("stream entry has no fields".into()));
    };
    let mut id = None;
    let mut role = None;
    let mut content = None;
    let mut sources = None;
    let mut ts = None;
    let mut status = None;
    for pair in fields.chunks(2) {
        let [name, value] = pair else {
            return Err(bad("odd number of fields".into()));
        };
        let value = value_str(value).ok_or_else(|| bad("a field is not UTF-8 text".into()))?;
        match value_str(name) {
            Some("id") => id = Some(value),
            Some("role") => role = Some(value),
            Some("content") => content = Some(value),
            Some("sources") => sources = Some(value),
            Some("ts") => ts = Some(value),
            Some("status") => status = Some(value),
            _ => {}
        }
    }
    fn need<'v>(
        v: Option<&'v str>,
        name: &str,
        seq: Option<u64>,
    ) -> std::result::Result<&'v str, CorruptEntry> {
        v.ok_or_else(|| CorruptEntry {
            seq,
            reason: format!("field {name} is missing"),
        })
    }
    let created_at_ms: i64 = need(ts, "ts", seq)?
        .parse()
        .map_err(|_| bad("ts is not a number".into()))?;
    let message = decode_message(StoredFields {
        id: need(id, "id", seq)?,
        role: need(role, "role", seq)?,
        content: need(content, "content", seq)?.to_string(),
        sources: need(sources, "sources", seq)?,
        created_at_ms,
        status: need(status, "status", seq)?,
    })
    .map_err(bad)?;
    Ok((seq_value, message))
}

/// The quota an append would break, from the append script's `QUOTA <which> <figure>
/// <limit>` error; `None` for any other error.
pub(super) fn quota_breach(e: &RedisError) -> Option<QuotaBreach> {
    // Single nodes and clusters word the error differently (`QUOTA: ...`,
    // `"QUOTA": ...`): take the words after the code, whatever punctuation follows it.
    let text = e.to_string();
    let at = text.find("QUOTA")?;
    let rest = text[at + "QUOTA".len()..].trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let mut words = rest.split_whitespace();
    let which = words.next()?;
    let mut number = || -> Option<u64> {
        words
            .next()?
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()
    };
    let (figure, limit) = (number()?, number()?);
    match which {
        "session_bytes" => Some(QuotaBreach::SessionBytes {
            would: figure,
            limit,
        }),
        "user_sessions" => Some(QuotaBreach::UserSessions { has: figure, limit }),
        "user_bytes" => Some(QuotaBreach::UserBytes {
            would: figure,
            limit,
        }),
        _ => None,
    }
}

/// Decodes `{count, bytes, created_at, updated_at, seq, trimmed, pttl, ...}` with the
/// title at `title_at` (nil for none); `corrupt` makes the error for a missing or
/// malformed field.
pub(super) fn decode_meta(
    items: &[Value],
    title_at: usize,
    corrupt: impl Fn(String) -> MemoryError,
) -> Result<SessionMeta, MemoryError> {
    let num = |i: usize, name: &str| -> Result<i64, MemoryError> {
        items.get(i).and_then(value_i64).ok_or_else(|| {
            corrupt(format!(
                "session meta field {name} is missing or not a number"
            ))
        })
    };
    let pttl = num(6, "pttl")?;
    Ok(SessionMeta {
        message_count: num(0, "count")?.max(0) as u64,
        bytes: num(1, "bytes")?.max(0) as u64,
        created_at_ms: num(2, "created_at")?,
        updated_at_ms: num(3, "updated_at")?,
        last_seq: num(4, "seq")?.max(0) as u64,
        trimmed_seq: num(5, "trimmed")?.max(0) as u64,
        ttl_remaining_secs: (pttl >= 0).then(|| (pttl as u64).div_ceil(1000)),
        title: items.get(title_at).and_then(value_str).map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: &[(&str, &str)]) -> Value {
        let mut flat = Vec::new();
        for (k, v) in fields {
            flat.push(bulk(k));
            flat.push(bulk(v));
        }
        Value::Array(vec![bulk(id), Value::Array(flat)])
    }

    #[test]
    fn decodes_a_good_entry_and_reports_bad_ones() {
        let id = crate::message::MessageId::new().to_string();
        let good = [
            ("id", id.as_str()),
            ("role", "user"),
            ("content", "hi"),
            ("sources", ""),
            ("ts", "1700000000000"),
            ("status", "complete"),
        ];
        let (seq, m) = decode_entry(&entry("7-0", &good)).unwrap();
        assert_eq!(seq, 7);
        assert_eq!(m.content, "hi");

        let mut no_role = good;
        no_role[1] = ("rolex", "user");
        let err = decode_entry(&entry("8-0", &no_role)).unwrap_err();
        assert_eq!(err.seq, Some(8));
        assert!(err.reason.contains("role"), "{}", err.reason);

        let mut bad_sources = good;
        bad_sources[3] = ("sources", "{not json");
        assert!(decode_entry(&entry("9-0", &bad_sources))
            .unwrap_err()
            .reason
            .contains("JSON"));
        assert!(decode_entry(&bulk("x")).is_err());
        assert!(decode_entry(&entry("abc", &good)).is_err());
    }
}
