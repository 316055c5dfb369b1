//! The scripts every turn runs, called: the read (`load.lua`) and the append (`turn.lua`,
//! the lean one, else `append.lua`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redis::Value;

use super::decode::{decode_meta, value_i64};
use super::keys::SessionKeys;
use super::{pack, ttl_arg, RedisStore};
use crate::backend::shared::{now_ms, report_corrupt};
use crate::error::{MemoryError, Result};
use crate::limits::{ReadFrom, ReadLimit};
use crate::message::{Message, SessionKey};
use crate::store::{AppendOptions, AppendOutcome, LoadedSession, Stamp};
use crate::title::title_of;

/// Sessions whose position a store remembers (the most recently used).
const REMEMBERED: u64 = 100_000;

/// The seq and the number of dedupe buckets of each session as of the last reply this
/// store had from Redis (an append or a read), so that the next append can pack its
/// messages with their seqs and name their buckets, and take the lean script. Only a
/// guess: `turn.lua` checks it, and a stale one costs a second call, never a wrong write.
///
/// A session's position is one word, updated in place: the note every turn makes is a
/// lookup, where a new entry each time (the key copied, the cache's bookkeeping) was 6% of
/// `bench memory`'s client CPU at 50 clients.
#[derive(Clone)]
pub(super) struct Positions {
    known: moka::sync::Cache<String, Arc<AtomicU64>>,
    /// Appends the lean script took (see [`RedisStore::lean_appends`]).
    lean: Arc<AtomicU64>,
}

impl Positions {
    pub(super) fn new() -> Self {
        Positions {
            known: moka::sync::Cache::new(REMEMBERED),
            lean: Arc::default(),
        }
    }

    fn get(&self, hash: &str) -> Option<Position> {
        self.known
            .get(hash)
            .map(|word| Position::unpack(word.load(Ordering::Relaxed)))
    }

    fn note(&self, hash: &str, seq: u64, buckets: Option<u64>) {
        let Some(word) = buckets.and_then(|buckets| Position { seq, buckets }.pack()) else {
            return self.forget(hash);
        };
        match self.known.get(hash) {
            Some(slot) => slot.store(word, Ordering::Relaxed),
            None => self
                .known
                .insert(hash.to_string(), Arc::new(AtomicU64::new(word))),
        }
    }

    fn forget(&self, hash: &str) {
        self.known.invalidate(hash);
    }
}

/// Where a session stood in a reply: its seq and its number of dedupe buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Position {
    seq: u64,
    buckets: u64,
}

/// Bits of a packed position that hold the number of buckets (the rest hold the seq).
const BUCKET_BITS: u32 = 24;

impl Position {
    /// The position in one word: the seq above [`BUCKET_BITS`] bits of buckets. `None`
    /// past 2^40 messages or 2^24 buckets (such a session takes the full script).
    fn pack(self) -> Option<u64> {
        (self.seq < 1 << (64 - BUCKET_BITS) && self.buckets < 1 << BUCKET_BITS)
            .then_some(self.seq << BUCKET_BITS | self.buckets)
    }

    fn unpack(word: u64) -> Self {
        Position {
            seq: word >> BUCKET_BITS,
            buckets: word & ((1 << BUCKET_BITS) - 1),
        }
    }
}

/// The most messages one lean append (`turn.lua`) takes: a turn's question and answer,
/// or a few more; bigger appends (imports, replays) go to `append.lua`.
const LEAN_MESSAGES: usize = 8;

impl RedisStore {
    /// Appends that took the lean script (`turn.lua`) since this store was made.
    #[doc(hidden)]
    pub fn lean_appends(&self) -> u64 {
        self.positions.lean.load(Ordering::Relaxed)
    }

    /// Runs the load script: `from` = `None` reads no entries; `ttl = -1` leaves
    /// TTLs alone.
    pub(super) async fn run_load(
        &self,
        key: &SessionKey,
        from: Option<ReadFrom>,
        limit: ReadLimit,
        ttl: i64,
    ) -> Result<Option<LoadedSession>> {
        let keys = SessionKeys::new(key);
        let mut inv = self.scripts.load.prepare_invoke();
        for k in keys.all() {
            inv.key(k);
        }
        let (mode, after) = match from {
            None => ("meta", 0),
            Some(ReadFrom::After(after)) => ("after", after),
            Some(ReadFrom::Newest { after }) => ("newest", after),
        };
        inv.arg(mode)
            .arg(after.min(i64::MAX as u64))
            .arg(limit.messages.max(1))
            .arg(limit.bytes.min(i64::MAX as u64))
            .arg(ttl)
            .arg(key.session())
            .arg(now_ms())
            .arg(u8::from(self.tiered))
            .arg(u8::from(self.v1_guard));
        let (value, stamp) = self.invoke_stamped(&inv, key).await?;
        let items = match value {
            Value::Nil | Value::Boolean(false) => return Ok(None),
            Value::Array(items) => items,
            other => return Err(self.corrupt(format!("load script returned {other:?}"))),
        };
        let meta = decode_meta(&items, 10, |what| self.corrupt(what))?;
        let buckets = items.get(11).and_then(value_i64).map(|n| n as u64);
        self.positions.note(&keys.hash, meta.last_seq, buckets);
        let (messages, corrupt) = match items.get(7) {
            Some(Value::Array(entries)) => pack::decode_messages(entries),
            _ => (Vec::new(), Vec::new()),
        };
        report_corrupt(&self.url, key, &corrupt);
        let flag = |i: usize| items.get(i).and_then(value_i64).unwrap_or(0) == 1;
        let repaired = flag(9);
        if repaired {
            tracing::warn!(store = %self.url, session = %key, "repaired a conversation whose keys Redis had evicted");
        }
        Ok(Some(LoadedSession {
            meta,
            messages,
            corrupt,
            stamp,
            more: flag(8),
            repaired,
        }))
    }

    /// The append with its `tier` argument (see `append.lua`); `Ok(None)` when tier 2
    /// found no session. The lean script (`turn.lua`) goes first when this store knows
    /// the session's seq and no TTL refresh is due; it declines (writing nothing) whatever
    /// it does not handle, and `append.lua` runs instead.
    pub(super) async fn append_with_tier(
        &self,
        key: &SessionKey,
        messages: &[Message],
        opts: AppendOptions,
        tier: u8,
    ) -> Result<Option<AppendOutcome>> {
        let keys = SessionKeys::new(key);
        let lean = self.lean && !opts.refresh_ttl && (1..=LEAN_MESSAGES).contains(&messages.len());
        if let Some(at) = lean.then(|| self.positions.get(&keys.hash)).flatten() {
            let title = title_of(messages).unwrap_or_default();
            let mut inv = self.scripts.turn.prepare_invoke();
            for k in keys.v2() {
                inv.key(k);
            }
            inv.arg(now_ms())
                .arg(at.seq)
                .arg(at.buckets)
                .arg(opts.max_messages)
                .arg(key.session())
                .arg(opts.quotas.session_bytes)
                .arg(opts.quotas.user_bytes)
                .arg(title)
                .arg(tier)
                .arg(ttl_arg(opts.ttl));
            for (m, s) in messages.iter().zip(at.seq + 1..) {
                inv.arg(pack::pack(m, s));
            }
            let (value, stamp) = self
                .invoke_stamped(&inv, key)
                .await
                .inspect_err(|_| self.positions.forget(&keys.hash))?;
            if !matches!(&value, Value::BulkString(b) if b == b"FULL") {
                self.positions.lean.fetch_add(1, Ordering::Relaxed);
                return self
                    .outcome(key, &keys, value, messages.len(), stamp)
                    .map(Some);
            }
        }
        let mut inv = self.scripts.append.prepare_invoke();
        for k in keys.all() {
            inv.key(k);
        }
        inv.arg(now_ms())
            .arg(ttl_arg(opts.ttl))
            .arg(opts.max_messages)
            .arg(key.session())
            .arg(messages.len())
            .arg(u8::from(opts.refresh_ttl))
            .arg(opts.quotas.session_bytes)
            .arg(opts.quotas.user_sessions)
            .arg(opts.quotas.user_bytes)
            .arg(title_of(messages).unwrap_or_default())
            .arg(tier)
            .arg(u8::from(self.v1_guard));
        for m in messages {
            inv.arg(pack::pack(m, 0));
        }
        let (value, stamp) = match self.invoke_stamped(&inv, key).await {
            Ok(reply) => reply,
            Err(MemoryError::NotFound(_)) if tier == 2 => return Ok(None),
            Err(e) => {
                self.positions.forget(&keys.hash);
                return Err(e);
            }
        };
        self.outcome(key, &keys, value, messages.len(), stamp)
            .map(Some)
    }

    /// An append script's reply (`append.lua`'s shape, which `turn.lua` shares), noting
    /// the session's seq for the next lean append.
    fn outcome(
        &self,
        key: &SessionKey,
        keys: &SessionKeys,
        value: Value,
        sent: usize,
        stamp: Option<Stamp>,
    ) -> Result<AppendOutcome> {
        let Value::Array(items) = value else {
            return Err(self.corrupt(format!("append script returned {value:?}")));
        };
        let meta = decode_meta(&items, 8, |what| self.corrupt(what))?;
        let repaired = items.get(7).and_then(value_i64) == Some(1);
        if repaired {
            tracing::warn!(store = %self.url, session = %key, "repaired a conversation whose keys Redis had evicted");
        }
        let seqs = items
            .iter()
            .skip(10)
            .map(|v| value_i64(v).filter(|s| *s > 0).map(|s| s as u64))
            .collect::<Vec<_>>();
        if seqs.len() != sent {
            return Err(self.corrupt(format!(
                "append script returned {} seqs for {sent} messages",
                seqs.len(),
            )));
        }
        let buckets = items.get(9).and_then(value_i64).map(|n| n as u64);
        self.positions.note(&keys.hash, meta.last_seq, buckets);
        Ok(AppendOutcome {
            seqs,
            meta,
            stamp,
            repaired,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_packs_into_one_word_and_back() {
        for (seq, buckets) in [
            (0, 256),
            (1, 256),
            (12_345, 771),
            ((1 << 40) - 1, (1 << 24) - 1),
        ] {
            let position = Position { seq, buckets };
            let word = position.pack().expect("within the word");
            assert_eq!(Position::unpack(word), position);
        }
        assert_eq!(
            Position {
                seq: 1 << 40,
                buckets: 256
            }
            .pack(),
            None
        );
        assert_eq!(
            Position {
                seq: 7,
                buckets: 1 << 24
            }
            .pack(),
            None
        );
    }

    #[test]
    fn a_note_replaces_the_last_and_one_without_buckets_forgets() {
        let positions = Positions::new();
        positions.note("h", 10, Some(256));
        positions.note("h", 12, Some(257));
        assert_eq!(
            positions.get("h"),
            Some(Position {
                seq: 12,
                buckets: 257
            })
        );
        positions.note("h", 14, None);
        assert_eq!(positions.get("h"), None);
        positions.note("big", 1 << 40, Some(256));
        assert_eq!(positions.get("big"), None);
    }
}
