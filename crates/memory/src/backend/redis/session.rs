//! The two scripts every turn runs, called: the read (`load.lua`) and the append
//! (`append.lua`).

use redis::Value;

use super::decode::{decode_meta, value_i64};
use super::keys::SessionKeys;
use super::{pack, ttl_arg, RedisStore};
use crate::backend::shared::{now_ms, report_corrupt};
use crate::error::{MemoryError, Result};
use crate::limits::{ReadFrom, ReadLimit};
use crate::message::{Message, SessionKey};
use crate::store::{AppendOptions, AppendOutcome, LoadedSession};
use crate::title::title_of;

impl RedisStore {
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

    /// The append script with its `tier` argument (see `append.lua`); `Ok(None)` when
    /// tier 2 found no session.
    pub(super) async fn append_with_tier(
        &self,
        key: &SessionKey,
        messages: &[Message],
        opts: AppendOptions,
        tier: u8,
    ) -> Result<Option<AppendOutcome>> {
        let keys = SessionKeys::new(key);
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
            Err(e) => return Err(e),
        };
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
            .skip(9)
            .map(|v| value_i64(v).filter(|s| *s > 0).map(|s| s as u64))
            .collect::<Vec<_>>();
        if seqs.len() != messages.len() {
            return Err(self.corrupt(format!(
                "append script returned {} seqs for {} messages",
                seqs.len(),
                messages.len()
            )));
        }
        Ok(Some(AppendOutcome {
            seqs,
            meta,
            stamp,
            repaired,
        }))
    }
}
