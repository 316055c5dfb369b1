//! Bounds: how much one store call may read, where a page starts, and how much one
//! user may keep.
//!
//! No store call reads a whole conversation or a whole session list: a conversation of
//! 100 MB read in one Redis script keeps Redis busy for most of a second, and every
//! other user on every server waits behind it. So reads name a starting point
//! ([`ReadFrom`]) and a bound in messages *and* bytes ([`ReadLimit`]); listings take a
//! [`ListCursor`]; and appends carry the [`Quotas`] that keep a single user from
//! growing without end.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::error::MemoryError;

/// The most one read returns: at most `messages` entries, and it stops as soon as the
/// entries it holds reach `bytes` (content plus encoded sources, as
/// [`Message::stored_bytes`](crate::Message::stored_bytes) counts them). A read that has
/// anything in range returns at least one entry, however big.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimit {
    /// Most entries returned (at least 1 is used).
    pub messages: usize,
    /// Bytes after which the read stops.
    pub bytes: u64,
}

impl ReadLimit {
    /// At most `messages` entries and about `bytes` bytes.
    pub const fn new(messages: usize, bytes: u64) -> Self {
        ReadLimit { messages, bytes }
    }

    /// Whether a read that has taken `taken` entries of `used` bytes may take another.
    pub fn admits_more(&self, taken: usize, used: u64) -> bool {
        taken == 0 || (taken < self.messages.max(1) && used < self.bytes)
    }
}

/// Which entries of a session a read returns, always in `seq` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFrom {
    /// The oldest entries with `seq > n`: paging forward through a session.
    After(u64),
    /// The newest entries with `seq > after`: the recent tail a chat turn needs
    /// (`after` = the tail a reader already holds, 0 for none).
    Newest {
        /// Only entries after this seq.
        after: u64,
    },
}

/// Where a page of messages starts: after the entry with this seq. Shown to clients as
/// an opaque string (`next_cursor`), which is the seq in decimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageCursor(pub u64);

impl fmt::Display for PageCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for PageCursor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromStr for PageCursor {
    type Err = MemoryError;

    /// # Errors
    /// `InvalidInput` for anything but a cursor a page returned.
    fn from_str(s: &str) -> Result<Self, MemoryError> {
        s.parse::<u64>().map(PageCursor).map_err(|_| {
            MemoryError::invalid(format!(
                "{s:?} is not a page cursor; pass the next_cursor of the previous page"
            ))
        })
    }
}

/// Where a page of a user's session list starts: after this session, in the listing
/// order (most recent activity first; ties by session id, descending). Shown to
/// clients as an opaque string `<updated_at_ms>:<session>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListCursor {
    /// Activity time of the last session of the previous page (ms since the epoch).
    pub updated_at_ms: i64,
    /// Its id.
    pub session: String,
}

impl ListCursor {
    /// Whether a session with this activity time and id comes after the cursor.
    pub fn precedes(&self, updated_at_ms: i64, session: &str) -> bool {
        updated_at_ms < self.updated_at_ms
            || (updated_at_ms == self.updated_at_ms && session < self.session.as_str())
    }
}

impl fmt::Display for ListCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.updated_at_ms, self.session)
    }
}

impl Serialize for ListCursor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromStr for ListCursor {
    type Err = MemoryError;

    /// # Errors
    /// `InvalidInput` for anything but a cursor a listing returned.
    fn from_str(s: &str) -> Result<Self, MemoryError> {
        let bad = || {
            MemoryError::invalid(format!(
                "{s:?} is not a session list cursor; pass the next_cursor of the previous page"
            ))
        };
        let (ms, session) = s.split_once(':').ok_or_else(bad)?;
        let updated_at_ms = ms.parse().map_err(|_| bad())?;
        crate::message::validate_id("session", session).map_err(|_| bad())?;
        Ok(ListCursor {
            updated_at_ms,
            session: session.to_string(),
        })
    }
}

/// Limits on what one user may store; 0 = unbounded. Appends beyond them fail with
/// [`MemoryError::Quota`] and write nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Quotas {
    /// Stored bytes of one session.
    pub session_bytes: u64,
    /// Live sessions of one user.
    pub user_sessions: u64,
    /// Stored bytes over all sessions of one user.
    pub user_bytes: u64,
}

impl Quotas {
    /// No limits (replaying acknowledged messages must never be refused).
    pub const UNBOUNDED: Quotas = Quotas {
        session_bytes: 0,
        user_sessions: 0,
        user_bytes: 0,
    };
}

/// Which quota an append would break, and by how much: turned into a clear
/// [`MemoryError::Quota`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaBreach {
    /// The session would hold `would` bytes; the limit is `limit`.
    SessionBytes {
        /// Bytes after the append.
        would: u64,
        /// The limit.
        limit: u64,
    },
    /// The user has `has` live sessions; the limit is `limit`.
    UserSessions {
        /// Live sessions now.
        has: u64,
        /// The limit.
        limit: u64,
    },
    /// The user would hold `would` bytes over all sessions; the limit is `limit`.
    UserBytes {
        /// Bytes after the append.
        would: u64,
        /// The limit.
        limit: u64,
    },
}

impl QuotaBreach {
    /// The error for people, naming the session the append was for.
    pub fn into_error(self, session: &str) -> MemoryError {
        let text = match self {
            QuotaBreach::SessionBytes { would, limit } => format!(
                "session {session:?} would hold {would} bytes; the limit is {limit} bytes per session \
                 (delete it or start a new session)"
            ),
            QuotaBreach::UserSessions { has, limit } => format!(
                "this user already has {has} sessions; the limit is {limit} sessions per user \
                 (delete one to start {session:?})"
            ),
            QuotaBreach::UserBytes { would, limit } => format!(
                "this user's sessions would hold {would} bytes; the limit is {limit} bytes per user \
                 (delete sessions to make room)"
            ),
        };
        MemoryError::Quota(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c: ListCursor = "1700000000000:my.session".parse().unwrap();
        assert_eq!(c.updated_at_ms, 1_700_000_000_000);
        assert_eq!(c.to_string(), "1700000000000:my.session");
        for bad in ["", "x:y", "12", "12:", "12:a/b", "12:{x}"] {
            assert!(bad.parse::<ListCursor>().is_err(), "{bad}");
        }
        assert_eq!("42".parse::<PageCursor>().unwrap(), PageCursor(42));
        for bad in ["", "-1", "0189e5a0-0000-7000-8000-000000000001", "4 2"] {
            assert!(bad.parse::<PageCursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_read_takes_one_entry_whatever_its_size_then_stops_at_the_bounds() {
        let limit = ReadLimit::new(3, 100);
        assert!(limit.admits_more(0, 0));
        assert!(limit.admits_more(1, 99));
        assert!(!limit.admits_more(1, 100), "the byte bound is reached");
        assert!(!limit.admits_more(3, 10), "the count bound is reached");
        assert!(ReadLimit::new(0, 0).admits_more(0, 0));
        assert!(!ReadLimit::new(0, 0).admits_more(1, 0));
    }

    #[test]
    fn list_order_is_newest_first_then_session_descending() {
        let c = ListCursor {
            updated_at_ms: 10,
            session: "m".into(),
        };
        assert!(c.precedes(9, "z"));
        assert!(c.precedes(10, "a"));
        assert!(!c.precedes(10, "m"));
        assert!(!c.precedes(10, "n"));
        assert!(!c.precedes(11, "a"));
    }
}
