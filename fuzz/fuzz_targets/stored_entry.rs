//! Decoders of stored entries: a Redis stream entry (`decode_entry`), and the JSON the
//! journal (`Message`) and SQLite (`Vec<SourceRef>`) keep. None may panic, and an entry
//! that decodes must survive being written back the way `RedisStore::append` writes it.
//!
//! The first byte picks how the rest becomes a `redis::Value`:
//! - even: a tree read by [`ValueReader`] (any shape, any variant);
//! - odd: a well-formed entry whose field values are the rest split at `0xFF`, in the
//!   order entry id, id, role, content, sources, ts, status (missing parts are missing
//!   fields), so that the parsers behind each field see arbitrary text.
//!
//! The whole input is also decoded as JSON, whatever the first byte.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ragchat_memory::backend::redis::decode_entry;
use ragchat_memory::{Message, SourceRef};
use redis::Value;

/// The fields `decode_entry` looks for, in the order the template mode fills them.
const FIELDS: [&str; 6] = ["id", "role", "content", "sources", "ts", "status"];

/// Deepest nesting the tree reader builds (the real entry is two levels deep).
const MAX_DEPTH: usize = 4;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = serde_json::from_slice::<Message>(data) {
        json_round_trip(&message);
    }
    let _ = serde_json::from_slice::<Vec<SourceRef>>(data);

    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let entry = if mode % 2 == 0 {
        ValueReader { data: rest }.value(0)
    } else {
        template_entry(rest)
    };
    if let Ok((seq, message)) = decode_entry(&entry) {
        let again = decode_entry(&encode_entry(seq, &message)).unwrap_or_else(|e| {
            panic!("a decoded entry does not decode again: {e:?}\n{message:?}")
        });
        assert_eq!(again, (seq, message), "entry changed through a round trip");
    }
});

/// A message the journal could read must read back the same once written.
fn json_round_trip(message: &Message) {
    let json = serde_json::to_string(message).expect("a Message always serializes");
    let back: Message = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("journal JSON does not read back ({e}): {json}"));
    assert_eq!(&back, message, "message changed through JSON: {json}");
}

/// The entry as `XRANGE` returns what `RedisStore::append` wrote for this message.
fn encode_entry(seq: u64, m: &Message) -> Value {
    let values = [
        m.id.to_string(),
        m.role.as_str().to_string(),
        m.content.clone(),
        m.sources_json(),
        m.created_at_millis().to_string(),
        m.status.as_str().to_string(),
    ];
    let fields = FIELDS
        .iter()
        .zip(values)
        .flat_map(|(name, value)| [bulk(name.as_bytes()), bulk(value.as_bytes())])
        .collect();
    Value::Array(vec![
        bulk(format!("{seq}-0").as_bytes()),
        Value::Array(fields),
    ])
}

/// `[entry id, [id, ..., status, ...]]` from the `0xFF`-separated parts of `data`.
fn template_entry(data: &[u8]) -> Value {
    let mut parts = data.split(|&b| b == 0xFF);
    let entry_id = parts.next().unwrap_or_default();
    let fields = FIELDS
        .iter()
        .zip(parts)
        .flat_map(|(name, value)| [bulk(name.as_bytes()), bulk(value)])
        .collect();
    Value::Array(vec![bulk(entry_id), Value::Array(fields)])
}

fn bulk(bytes: &[u8]) -> Value {
    Value::BulkString(bytes.to_vec())
}

/// Reads a `redis::Value` tree from bytes: a tag byte per node, then its payload.
/// Running out of bytes yields `Nil`s and empty strings, so every input is a tree.
struct ValueReader<'a> {
    data: &'a [u8],
}

impl ValueReader<'_> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.data.split_first().unwrap_or((&0, &[]));
        self.data = rest;
        b
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A length-prefixed byte string (one length byte).
    fn string(&mut self) -> Vec<u8> {
        let n = self.byte() as usize;
        self.bytes(n).to_vec()
    }

    fn int(&mut self) -> i64 {
        let mut buf = [0u8; 8];
        let b = self.bytes(8);
        buf[..b.len()].copy_from_slice(b);
        i64::from_le_bytes(buf)
    }

    fn children(&mut self, depth: usize) -> Vec<Value> {
        let n = self.byte() % 16;
        (0..n).map(|_| self.value(depth + 1)).collect()
    }

    fn value(&mut self, depth: usize) -> Value {
        let tag = self.byte();
        match tag % 12 {
            _ if self.data.is_empty() => Value::Nil,
            0 => Value::Nil,
            1 => Value::Int(self.int()),
            2 => Value::BulkString(self.string()),
            3 => Value::SimpleString(String::from_utf8_lossy(&self.string()).into_owned()),
            // Field names are hard to guess byte by byte; offer them whole.
            4 => bulk(FIELDS[usize::from(self.byte()) % FIELDS.len()].as_bytes()),
            5 => bulk(format!("{}-0", self.int() as u64).as_bytes()),
            6 => Value::Okay,
            7 => Value::Double(f64::from_bits(self.int() as u64)),
            8 => Value::Boolean(self.byte() % 2 == 1),
            9 if depth < MAX_DEPTH => Value::Set(self.children(depth)),
            10 if depth < MAX_DEPTH => {
                let n = self.byte() % 8;
                Value::Map(
                    (0..n)
                        .map(|_| (self.value(depth + 1), self.value(depth + 1)))
                        .collect(),
                )
            }
            _ if depth < MAX_DEPTH => Value::Array(self.children(depth)),
            _ => Value::BulkString(self.string()),
        }
    }
}
