//! The Redis half of a hot tier with an archive behind it (`crate::tier` is the
//! other half): the archiver's claim / mark steps, the archive lock, restoring a
//! conversation from the archive, and finding sessions the archive is behind on.
//!
//! Every step is one script on the session's keys (one slot, one round trip), and
//! the lock (`:lock`, `SET NX PX`) is what lets archiving, restoring and deleting one
//! session take turns across servers: a delete waits for an archiver that read the
//! session before it, so the archiver cannot write it back afterwards; two servers
//! restoring one session restore it once.

use std::time::Duration;

use redis::{Script, Value};

use super::decode::value_i64;
use super::keys::{archive_lock, parse_session_key, SessionKeys, META_PATTERN};
use super::pack;
use super::scripts::session_script;
use super::walk::KeyWalk;
use super::RedisStore;
use crate::backend::shared::{now_ms, report_corrupt};
use crate::error::{MemoryError, Result};
use crate::limits::ReadLimit;
use crate::message::{Message, SessionKey};
use crate::store::{AppendOptions, AppendOutcome, CorruptEntry, LoadedSession, Ttl};

/// What the archiver's claim on a session found.
#[derive(Debug)]
pub enum Claim {
    /// Another process holds the session's lock; try later.
    Busy,
    /// The session is not in Redis (deleted, or Redis lost it).
    Missing,
    /// The lock is held (release it with [`RedisStore::mark_archived`] or
    /// [`RedisStore::unlock`]) and these entries are not archived yet.
    Ready(Unarchived),
}

/// Where a sweep over every session is (see [`RedisStore::sweep`]).
pub struct SweepWalk(KeyWalk);

impl std::fmt::Debug for SweepWalk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SweepWalk")
    }
}

/// Entries of a session the archive has not confirmed, in seq order.
#[derive(Debug)]
pub struct Unarchived {
    /// The session's highest seq.
    pub seq: u64,
    /// The highest seq the archive confirmed before this claim.
    pub arch: u64,
    /// `(seq, message)` of the entries read.
    pub entries: Vec<(u64, Message)>,
    /// Entries that could not be decoded (they cannot be archived; skipped).
    pub corrupt: Vec<CorruptEntry>,
    /// Entries beyond the read's bound are left for the next claim.
    pub more: bool,
    /// The title a person gave the session, if any.
    pub title: Option<String>,
}

impl Unarchived {
    /// The highest seq this claim covered (read, or skipped as corrupt).
    pub fn upto(&self) -> u64 {
        let good = self.entries.iter().map(|(s, _)| *s);
        let bad = self.corrupt.iter().filter_map(|c| c.seq);
        good.chain(bad).max().unwrap_or(self.arch)
    }
}

#[derive(Clone)]
pub(super) struct HotScripts {
    claim: Script,
    mark: Script,
    unlock: Script,
    restore: Script,
    rearchive: Script,
}

impl HotScripts {
    pub(super) fn load() -> Self {
        HotScripts {
            claim: session_script!(include_str!("claim.lua")),
            mark: Script::new(include_str!("mark.lua")),
            unlock: Script::new(include_str!("unlock.lua")),
            restore: session_script!(include_str!("restore.lua")),
            rearchive: session_script!(
                "local k = session_keys() \
                 if not session_figures(k, '', ARGV[1], nil, true) then return 0 end \
                 call('HSET', k.hash, 'arch', 0) \
                 call('PERSIST', k.list) call('PERSIST', k.hash) return 1"
            ),
        }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().clamp(1, u64::MAX as u128) as u64
}

impl RedisStore {
    /// This store as the hot tier of an archive: a session keeps no TTL while it holds
    /// messages the archive has not confirmed (see `append.lua`).
    pub fn into_hot_tier(mut self) -> Self {
        self.tiered = true;
        self
    }

    /// Appends like [`crate::SessionStore::append`], except that on a hot tier with
    /// `create = false` a missing session is not created: `Ok(None)` tells the caller
    /// to look in the archive first.
    ///
    /// # Errors
    /// As the trait's `append`.
    pub async fn append_or_missing(
        &self,
        key: &SessionKey,
        messages: &[Message],
        opts: AppendOptions,
        create: bool,
    ) -> Result<Option<AppendOutcome>> {
        let tier = match (self.tiered, create) {
            (false, _) => 0,
            (true, true) => 1,
            (true, false) => 2,
        };
        self.append_with_tier(key, messages, opts, tier).await
    }

    /// Takes the session's archive lock for `lock` and reads up to `limit` of its
    /// unarchived entries.
    ///
    /// # Errors
    /// `Unavailable` when Redis cannot be reached.
    pub async fn claim(
        &self,
        key: &SessionKey,
        token: &str,
        lock: Duration,
        limit: ReadLimit,
    ) -> Result<Claim> {
        let keys = SessionKeys::new(key);
        let mut inv = self.hot.claim.prepare_invoke();
        for k in keys.all() {
            inv.key(k);
        }
        inv.key(archive_lock(key));
        inv.arg(token)
            .arg(ms(lock))
            .arg(limit.messages.max(1))
            .arg(limit.bytes.min(i64::MAX as u64))
            .arg(now_ms());
        let (value, _) = self.invoke_stamped(&inv, key).await?;
        let Value::Array(items) = value else {
            return Err(self.corrupt(format!("claim script returned {value:?}")));
        };
        let word = items
            .first()
            .and_then(super::decode::value_str)
            .unwrap_or("");
        match word {
            "busy" => return Ok(Claim::Busy),
            "missing" => return Ok(Claim::Missing),
            "ok" => {}
            other => return Err(self.corrupt(format!("claim script said {other:?}"))),
        }
        let num = |i: usize| items.get(i).and_then(value_i64).unwrap_or(0).max(0) as u64;
        let (entries, corrupt) = match items.get(4) {
            Some(Value::Array(list)) => pack::decode_messages(list),
            _ => (Vec::new(), Vec::new()),
        };
        report_corrupt(&self.url, key, &corrupt);
        Ok(Claim::Ready(Unarchived {
            seq: num(2),
            arch: num(3),
            entries,
            corrupt,
            more: num(5) == 1,
            title: items
                .get(6)
                .and_then(super::decode::value_str)
                .map(str::to_string),
        }))
    }

    /// Records that the archive holds every entry up to `upto`, gives the session its
    /// TTL back once nothing is left unarchived, and releases the lock if `token`
    /// still holds it. Returns `(arch, seq)` after the update (`(0, 0)`: session gone).
    ///
    /// # Errors
    /// `Unavailable` when Redis cannot be reached.
    pub async fn mark_archived(
        &self,
        key: &SessionKey,
        token: &str,
        upto: u64,
        ttl: Ttl,
    ) -> Result<(u64, u64)> {
        let keys = SessionKeys::new(key);
        let mut inv = self.hot.mark.prepare_invoke();
        inv.key(&keys.list)
            .key(&keys.hash)
            .key(archive_lock(key))
            .key(&keys.index)
            .key(&keys.usage);
        inv.arg(token).arg(upto).arg(super::ttl_arg(ttl));
        let (value, _) = self.invoke_stamped(&inv, key).await?;
        let n = |i: usize| match &value {
            Value::Array(items) => items.get(i).and_then(value_i64).unwrap_or(0).max(0) as u64,
            _ => 0,
        };
        Ok((n(0), n(1)))
    }

    /// Forgets what the archive confirmed of the session (its copy there is gone while
    /// the session is still in use here): everything is archived again, and the
    /// session keeps no TTL until then. Returns whether the session exists.
    ///
    /// # Errors
    /// `Unavailable` when Redis cannot be reached.
    pub async fn rearchive(&self, key: &SessionKey) -> Result<bool> {
        let keys = SessionKeys::new(key);
        let mut inv = self.hot.rearchive.prepare_invoke();
        for k in keys.all() {
            inv.key(k);
        }
        inv.arg(now_ms());
        let (value, _) = self.invoke_stamped(&inv, key).await?;
        Ok(value_i64(&value) == Some(1))
    }

    /// Whether Redis holds each of `keys` (sessions of one user: one slot, so one
    /// pipeline on a cluster too), in one round trip.
    ///
    /// # Errors
    /// `Unavailable` when Redis cannot be reached.
    pub async fn sessions_exist(&self, keys: &[SessionKey]) -> Result<Vec<bool>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            let k = SessionKeys::new(key);
            pipe.cmd("EXISTS").arg(k.own().as_slice());
        }
        let mut conn = self.connection().await?;
        let watch = self.target.watch(&conn);
        let found: Vec<u64> = watch
            .done(pipe.query_async(&mut conn).await)
            .map_err(|e| self.failed(&conn, e))?;
        Ok(found.into_iter().map(|n| n > 0).collect())
    }

    /// Takes the session's archive lock for `lock` if it is free.
    ///
    /// # Errors
    /// `Unavailable` when Redis cannot be reached.
    pub async fn try_lock(&self, key: &SessionKey, token: &str, lock: Duration) -> Result<bool> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(archive_lock(key))
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ms(lock));
        let reply: Value = self.query(&cmd).await?;
        Ok(!matches!(reply, Value::Nil))
    }

    /// Releases the session's archive lock if `token` still holds it.
    ///
    /// # Errors
    /// `Unavailable` when Redis cannot be reached.
    pub async fn unlock(&self, key: &SessionKey, token: &str) -> Result<()> {
        let mut inv = self.hot.unlock.prepare_invoke();
        inv.key(archive_lock(key)).arg(token);
        self.invoke_stamped(&inv, key).await?;
        Ok(())
    }

    /// Puts `loaded` (read from the archive, newest entries of the session) back into
    /// Redis with its seqs, unless the session exists already. Returns whether it did.
    ///
    /// # Errors
    /// `Unavailable` when Redis cannot be reached.
    pub async fn restore(
        &self,
        key: &SessionKey,
        loaded: &LoadedSession,
        ttl: Ttl,
    ) -> Result<bool> {
        let keys = SessionKeys::new(key);
        let mut inv = self.hot.restore.prepare_invoke();
        for k in keys.all() {
            inv.key(k);
        }
        let meta = &loaded.meta;
        let entries = contiguous_tail(&loaded.messages);
        let last = entries.last().map_or(0, |(s, _)| *s);
        // Everything below the first restored entry stays in the archive only.
        let trimmed = entries
            .first()
            .map_or(meta.last_seq, |(f, _)| f.saturating_sub(1));
        inv.arg(now_ms())
            .arg(super::ttl_arg(ttl))
            .arg(key.session())
            .arg(meta.created_at_ms)
            .arg(meta.updated_at_ms)
            .arg(meta.last_seq.max(last))
            .arg(trimmed)
            .arg(meta.title.as_deref().unwrap_or(""))
            .arg(entries.len());
        for (seq, m) in entries {
            inv.arg(pack::pack(m, *seq));
        }
        let (value, _) = self.invoke_stamped(&inv, key).await?;
        Ok(value_i64(&value) == Some(1))
    }

    /// A walk over every session whose archive is behind (`arch` below `seq`, or no
    /// `arch`: sessions written before the archive was configured); see [`SweepWalk`].
    pub fn sweep(&self) -> SweepWalk {
        SweepWalk(KeyWalk::new(META_PATTERN))
    }

    /// The next sessions of `walk` the archive is behind on (possibly none in this
    /// step); `None` when the walk is over.
    ///
    /// # Errors
    /// `Unavailable` when Redis cannot be reached.
    pub async fn sweep_step(&self, walk: &mut SweepWalk) -> Result<Option<Vec<SessionKey>>> {
        let Some(names) = self.walk_step(&mut walk.0).await? else {
            return Ok(None);
        };
        let sessions: Vec<(SessionKey, &Vec<u8>)> = names
            .iter()
            .filter_map(|name| {
                let (u, s) = parse_session_key(name)?;
                let key =
                    SessionKey::new(std::str::from_utf8(u).ok()?, std::str::from_utf8(s).ok()?)
                        .ok()?;
                Some((key, name))
            })
            .collect();
        // One HMGET per session, of the hash the walk found (v2 `:h`, or v1 `:meta`:
        // the claim converts it), sent together (each routed to its own slot on a
        // cluster).
        let checks = sessions.iter().map(|(key, name)| async move {
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(name.as_slice()).arg("seq").arg("arch");
            let (seq, arch): (Option<u64>, Option<u64>) = self.query(&cmd).await?;
            Ok::<_, MemoryError>((seq.unwrap_or(0) > arch.unwrap_or(0)).then(|| key.clone()))
        });
        let mut behind = Vec::new();
        for found in futures::future::join_all(checks).await {
            behind.extend(found?);
        }
        Ok(Some(behind))
    }
}

/// The newest run of `messages` (ascending seqs) whose seqs follow each other without a
/// gap: what the v2 list can hold (its positions are implicit).
fn contiguous_tail(messages: &[(u64, Message)]) -> &[(u64, Message)] {
    let mut start = messages.len().saturating_sub(1);
    while start > 0 && messages[start - 1].0 + 1 == messages[start].0 {
        start -= 1;
    }
    messages.get(start..).unwrap_or_default()
}
