//! Every Redis key name ragchat uses, built and parsed in this one place.
//!
//! Layout v2 (this version writes it):
//!
//! ```text
//! ragchat:{<user>}:s:<session>:l      LIST    one packed message per element, oldest first
//!                                             (common.lua); element i has seq trimmed+1+i
//! ragchat:{<user>}:s:<session>:h      HASH    created_at, updated_at, count, bytes, seq, trimmed,
//!                                             title (given), auto (first question), arch
//!                                             (archive tier), lh (the number of dedupe buckets,
//!                                             absent: 256) and the buckets ('#' + one to three
//!                                             bytes; buckets.lua)
//! ragchat:{<user>}:sessions           ZSET    session -> updated_at in ms (listing, paged by it)
//! ragchat:{<user>}:usage              HASH    bytes: stored bytes over the user's sessions (quota)
//! ragchat:{<user>}:s:<session>:lock   STRING  the archive lock (hot tier only: archiving,
//!                                             restoring and deleting one session take turns)
//! ```
//!
//! Layout v1 (read, and converted by the first v2 script that touches a session):
//! `:log` (STREAM, entry id `<seq>-0`, fields id, role, content, sources, ts, status),
//! `:meta` (HASH of the same figures) and `:ids` (SET of the stored ids, forgetting those
//! trimmed). Why v2 replaced it, with the measurements, is in `mod.rs`.
//!
//! The hash tag is the *user*, not the user and session that DESIGN.md first proposed.
//! With it, the session index lives in the same Redis Cluster slot as the sessions, so
//! the append script updates list, hash, TTLs and index in one atomic command: an
//! append is one round trip and the index can never miss a session that a crash left
//! half-written. Per-user work (list, export, erase) stays in one slot too. The price is
//! that one user's sessions cannot spread across cluster nodes, which no single user's
//! conversations need.
//!
//! User and session ids are validated to `[A-Za-z0-9._-]`, so they can hold neither
//! `{`, `}` nor `:` and no key can collide with another's.

use crate::message::SessionKey;

const PREFIX: &str = "ragchat";

/// The keys of one session, in the order the scripts take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// LIST of packed messages.
    pub list: String,
    /// HASH of figures and dedupe buckets.
    pub hash: String,
    /// ZSET of the user's sessions.
    pub index: String,
    /// HASH of the user's running totals (stored bytes), for the per-user quota.
    pub usage: String,
    /// The v1 layout's STREAM of messages.
    pub v1_log: String,
    /// The v1 layout's HASH of figures.
    pub v1_meta: String,
    /// The v1 layout's SET of stored ids.
    pub v1_ids: String,
}

impl SessionKeys {
    /// The keys for `key`.
    pub fn new(key: &SessionKey) -> Self {
        let base = format!("{PREFIX}:{{{}}}:s:{}", key.user(), key.session());
        SessionKeys {
            list: format!("{base}:l"),
            hash: format!("{base}:h"),
            index: user_index(key.user()),
            usage: user_usage(key.user()),
            v1_log: format!("{base}:log"),
            v1_meta: format!("{base}:meta"),
            v1_ids: format!("{base}:ids"),
        }
    }

    /// All seven, in script order.
    pub fn all(&self) -> [&str; 7] {
        [
            &self.list,
            &self.hash,
            &self.index,
            &self.usage,
            &self.v1_log,
            &self.v1_meta,
            &self.v1_ids,
        ]
    }

    /// The four keys a v2 session has: list, hash, the user's index and usage total.
    pub fn v2(&self) -> [&str; 4] {
        [&self.list, &self.hash, &self.index, &self.usage]
    }

    /// The keys of the session's own data, in both layouts (not the user's index and usage).
    pub fn own(&self) -> [&str; 5] {
        [
            &self.list,
            &self.hash,
            &self.v1_log,
            &self.v1_meta,
            &self.v1_ids,
        ]
    }
}

/// The archive lock of one session (see `tier`).
pub fn archive_lock(key: &SessionKey) -> String {
    format!("{PREFIX}:{{{}}}:s:{}:lock", key.user(), key.session())
}

/// The SCAN pattern matching every session's hash, in either layout (`:h`, `:meta`).
pub(crate) const META_PATTERN: &str = "ragchat:{*}:s:*:[hm]*";

/// The ZSET listing a user's sessions.
pub fn user_index(user: &str) -> String {
    format!("{PREFIX}:{{{user}}}:sessions")
}

/// The HASH of a user's running totals.
pub fn user_usage(user: &str) -> String {
    format!("{PREFIX}:{{{user}}}:usage")
}

/// The `SCAN MATCH` pattern every user's session index matches (and no other key of
/// ragchat's: session keys end in `:l`, `:h`, `:log`, `:meta`, `:ids` or `:lock`, and
/// ids hold no `}`).
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
        assert_eq!(k.list, "ragchat:{alice}:s:s1:l");
        assert_eq!(k.hash, "ragchat:{alice}:s:s1:h");
        assert_eq!(k.v1_log, "ragchat:{alice}:s:s1:log");
        assert_eq!(k.v1_meta, "ragchat:{alice}:s:s1:meta");
        assert_eq!(k.v1_ids, "ragchat:{alice}:s:s1:ids");
        assert_eq!(k.index, "ragchat:{alice}:sessions");
        assert_eq!(k.usage, "ragchat:{alice}:usage");
        for key in k.all() {
            assert!(key.contains("{alice}"));
        }
    }

    #[test]
    fn parses_the_session_out_of_every_session_key() {
        let key = SessionKey::new("alice", "s.1").unwrap();
        for name in SessionKeys::new(&key).own() {
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
