//! Every Redis key name ragchat uses, built and parsed in this one place.
//!
//! ```text
//! ragchat:{<user>}:s:<session>:log    STREAM  one entry per message, entry id "<seq>-0"
//! ragchat:{<user>}:s:<session>:meta   HASH    created_at, updated_at, count, bytes, seq, trimmed,
//!                                             title (given), auto (first question)
//! ragchat:{<user>}:s:<session>:ids    SET     ids of the messages in :log (idempotent appends)
//! ragchat:{<user>}:sessions           ZSET    session -> updated_at in ms (listing, paged by it)
//! ragchat:{<user>}:usage              HASH    bytes: stored bytes over the user's sessions (quota)
//! ragchat:{<user>}:s:<session>:lock   STRING  the archive lock (hot tier only: archiving,
//!                                             restoring and deleting one session take turns)
//! ```
//!
//! In front of an archive (`--archive`) the meta hash also holds `arch`, the highest
//! seq the archive has confirmed.
//!
//! The hash tag is the *user*, not the user and session that DESIGN.md first proposed.
//! With it, the session index lives in the same Redis Cluster slot as the sessions, so
//! the append script updates log, meta, dedupe set, TTLs and index in one atomic
//! command: an append is one round trip and the index can never miss a session that a
//! crash left half-written. Per-user work (list, export, erase) stays in one slot too.
//! The price is that one user's sessions cannot spread across cluster nodes, which no
//! single user's conversations need.
//!
//! User and session ids are validated to `[A-Za-z0-9._-]`, so they can hold neither
//! `{`, `}` nor `:` and no key can collide with another's.

use crate::message::SessionKey;

const PREFIX: &str = "ragchat";

/// The keys of one session, in the order the scripts take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// STREAM of messages.
    pub log: String,
    /// HASH of counters and timestamps.
    pub meta: String,
    /// SET of stored message ids.
    pub ids: String,
    /// ZSET of the user's sessions.
    pub index: String,
    /// HASH of the user's running totals (stored bytes), for the per-user quota.
    pub usage: String,
}

impl SessionKeys {
    /// The keys for `key`.
    pub fn new(key: &SessionKey) -> Self {
        let base = format!("{PREFIX}:{{{}}}:s:{}", key.user(), key.session());
        SessionKeys {
            log: format!("{base}:log"),
            meta: format!("{base}:meta"),
            ids: format!("{base}:ids"),
            index: user_index(key.user()),
            usage: user_usage(key.user()),
        }
    }

    /// All five, in script order (the read script takes the first four).
    pub fn all(&self) -> [&str; 5] {
        [&self.log, &self.meta, &self.ids, &self.index, &self.usage]
    }
}

/// The archive lock of one session (see `tier`).
pub fn archive_lock(key: &SessionKey) -> String {
    format!("{PREFIX}:{{{}}}:s:{}:lock", key.user(), key.session())
}

/// The SCAN pattern matching every session's meta hash.
pub(crate) const META_PATTERN: &str = "ragchat:{*}:s:*:meta";

/// The ZSET listing a user's sessions.
pub fn user_index(user: &str) -> String {
    format!("{PREFIX}:{{{user}}}:sessions")
}

/// The HASH of a user's running totals.
pub fn user_usage(user: &str) -> String {
    format!("{PREFIX}:{{{user}}}:usage")
}

/// The `SCAN MATCH` pattern every user's session index matches (and no other key of
/// ragchat's: session keys end in `:log`, `:meta` or `:ids`, and ids hold no `}`).
pub fn user_index_pattern() -> String {
    format!("{PREFIX}:{{*}}:sessions")
}

/// The user whose session index `name` is (`ragchat:{<user>}:sessions`); `None` for
/// every other key.
pub fn parse_user_index(name: &[u8]) -> Option<&[u8]> {
    let rest = name.strip_prefix(PREFIX.as_bytes())?.strip_prefix(b":{")?;
    let user = rest.strip_suffix(b"}:sessions")?;
    (!user.contains(&b'}')).then_some(user)
}

/// `(user, session)` of a key [`SessionKeys`] names (`ragchat:{user}:s:<session>:<part>`);
/// `None` for every other key (the user's index and usage, keys of other programs).
pub fn parse_session_key(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = name.strip_prefix(PREFIX.as_bytes())?.strip_prefix(b":{")?;
    let close = rest.iter().position(|&b| b == b'}')?;
    let (user, rest) = rest.split_at(close);
    let rest = rest.strip_prefix(b"}:s:")?;
    let colon = rest.iter().rposition(|&b| b == b':')?;
    Some((user, &rest[..colon]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_keys_of_a_user_share_one_hash_tag() {
        let k = SessionKeys::new(&SessionKey::new("alice", "s1").unwrap());
        assert_eq!(k.log, "ragchat:{alice}:s:s1:log");
        assert_eq!(k.meta, "ragchat:{alice}:s:s1:meta");
        assert_eq!(k.ids, "ragchat:{alice}:s:s1:ids");
        assert_eq!(k.index, "ragchat:{alice}:sessions");
        assert_eq!(k.usage, "ragchat:{alice}:usage");
        for key in k.all() {
            assert!(key.contains("{alice}"));
        }
    }

    #[test]
    fn parses_the_session_out_of_every_session_key() {
        let key = SessionKey::new("alice", "s.1").unwrap();
        for name in SessionKeys::new(&key).all().into_iter().take(3) {
            assert_eq!(
                parse_session_key(name.as_bytes()),
                Some((&b"alice"[..], &b"s.1"[..])),
                "{name}"
            );
        }
        assert_eq!(parse_session_key(b"ragchat:{alice}:sessions"), None);
        assert_eq!(parse_session_key(b"other:{alice}:s:x:meta"), None);
    }

    #[test]
    fn parses_the_user_out_of_a_session_index_only() {
        assert_eq!(
            parse_user_index(user_index("a.b-c").as_bytes()),
            Some(&b"a.b-c"[..])
        );
        let key = SessionKey::new("alice", "sessions").unwrap();
        for name in SessionKeys::new(&key).all() {
            let expected = (name == user_index("alice")).then_some(&b"alice"[..]);
            assert_eq!(parse_user_index(name.as_bytes()), expected, "{name}");
        }
        assert_eq!(parse_user_index(b"ragchat:{a}:s:x}:sessions"), None);
        assert_eq!(parse_user_index(b"other:{alice}:sessions"), None);
    }
}
