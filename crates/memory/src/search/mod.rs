//! Searching a user's own conversations: the query, its hits and their paging, shared
//! by every store that can search (a leaf: the stores build on it, it knows none).
//!
//! Which stores search, and how:
//!
//! | store | index | ranking |
//! |---|---|---|
//! | `sqlite://` | FTS5 (porter), kept in the append's, delete's and retention's transaction by triggers | `bm25` |
//! | `postgres://` | a generated `tsvector` (English configuration) + GIN | BM25-like: each term's occurrences (from `ts_rank`), weighted by the column statistics |
//! | Redis with an archive | the archive's, after writing what this process appended and has not archived yet | the archive's |
//! | Redis alone, `memory://` | none: [`MemoryError::Unsupported`] | |
//!
//! A query is words, not a query language: its terms ([`terms`]) are matched with
//! stemming (`learning` finds `learned`), any of them (a message with more of them, or
//! rarer ones, ranks higher). The hit's snippet marks the matched words with `<mark>`
//! and `</mark>`; everything else in it is HTML-escaped, so it is safe to insert as
//! HTML ([`snippet`]).

pub mod snippet;
pub mod terms;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use crate::error::{MemoryError, Result};
use crate::message::{MessageId, Role};

/// Hits of one page when the caller does not say.
pub const DEFAULT_SEARCH_LIMIT: usize = 10;
/// The most hits one page returns.
pub const MAX_SEARCH_LIMIT: usize = 100;
/// The longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 1000;

/// What to search for, and which page of the hits.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchQuery {
    /// The words to look for (1 to [`MAX_QUERY_CHARS`] characters, not only blanks).
    pub text: String,
    /// Only this conversation of the user's; `None` = all of them.
    pub session: Option<String>,
    /// At most this many hits (1 to [`MAX_SEARCH_LIMIT`]).
    pub limit: usize,
    /// The `next` of the previous page.
    pub cursor: Option<SearchCursor>,
    /// Whether hits carry a [`SearchHit::snippet`] (a reader wants one; a turn that
    /// recalls the messages whole does not, and saves making it).
    pub snippets: bool,
    /// Whether what this process appended and has not archived yet is found too (Redis
    /// with an archive writes it to the archive first). A turn's recall says no: those
    /// messages are recent, in the turn's window, and writing them would put an archive
    /// write into the turn.
    pub fresh: bool,
    /// Whether the page must be exactly the best hits (a search). A turn's recall says
    /// no: when the query's rarer words fill the page, the messages holding only its
    /// most common word (its weakest matches) may be left out, and PostgreSQL then never
    /// reads them (for a user with 100,000 messages, about a third of a recall's time).
    pub exhaustive: bool,
}

impl SearchQuery {
    /// The first page of hits of `text` over all of the user's conversations.
    pub fn new(text: impl Into<String>) -> Self {
        SearchQuery {
            text: text.into(),
            session: None,
            limit: DEFAULT_SEARCH_LIMIT,
            cursor: None,
            snippets: true,
            fresh: true,
            exhaustive: true,
        }
    }

    /// Checks the query: text length, limit, session id.
    ///
    /// # Errors
    /// `InvalidInput`, saying what is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.text.trim().is_empty() {
            return Err(MemoryError::invalid("the search query is empty"));
        }
        let chars = self.text.chars().count();
        if chars > MAX_QUERY_CHARS {
            return Err(MemoryError::invalid(format!(
                "the search query is {chars} characters long; at most {MAX_QUERY_CHARS}"
            )));
        }
        if !(1..=MAX_SEARCH_LIMIT).contains(&self.limit) {
            return Err(MemoryError::invalid(format!(
                "limit must be between 1 and {MAX_SEARCH_LIMIT}, got {}",
                self.limit
            )));
        }
        if let Some(session) = &self.session {
            crate::message::validate_id("session", session)?;
        }
        Ok(())
    }
}

/// One message that matches.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// The conversation it is in.
    pub session: String,
    /// The message.
    #[cfg_attr(feature = "schema", schema(value_type = String, format = "uuid"))]
    pub message_id: MessageId,
    /// Its place in the conversation: `GET /v1/sessions/{session}/messages?after=<seq - 1>`
    /// starts there.
    pub seq: u64,
    /// Who wrote it.
    pub role: Role,
    /// When it was written.
    #[cfg_attr(feature = "schema", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<Utc>,
    /// The part of the message around the matches, the matched words between `<mark>`
    /// and `</mark>`, the rest HTML-escaped (empty when the query asked for none).
    pub snippet: String,
    /// Relevance, higher is better; comparable only within one search.
    pub score: f64,
    /// The whole message (not served: the snippet is; a turn that recalls the message
    /// reads it here).
    #[serde(skip)]
    pub content: String,
}

/// One page of hits, best first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchPage {
    /// Best first (ties: by session id, then by place in the conversation).
    pub hits: Vec<SearchHit>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<SearchCursor>,
}

impl SearchPage {
    /// The page of `rows` (best first, at most `limit + 1` of them: one more than the
    /// page tells whether another page follows).
    pub(crate) fn of(mut rows: Vec<SearchHit>, limit: usize) -> SearchPage {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(SearchCursor::after)
        } else {
            None
        };
        SearchPage { hits: rows, next }
    }
}

/// Where a page of hits starts: after this hit, in the ranking order. Shown to clients as
/// an opaque string; paging is stable while the hits' scores do not change.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchCursor {
    /// Score of the last hit of the previous page.
    pub score: f64,
    /// Its session.
    pub session: String,
    /// Its place in the session.
    pub seq: u64,
}

impl SearchCursor {
    /// The cursor after `hit`.
    pub fn after(hit: &SearchHit) -> Self {
        SearchCursor {
            score: hit.score,
            session: hit.session.clone(),
            seq: hit.seq,
        }
    }

    /// Whether a hit at `(score, session, seq)` comes after the cursor in the ranking
    /// order (score descending, then session, then seq ascending).
    pub fn precedes(&self, score: f64, session: &str, seq: u64) -> bool {
        score < self.score
            || (score == self.score
                && (session > self.session.as_str() || (session == self.session && seq > self.seq)))
    }
}

impl fmt::Display for SearchCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The score's exact bits, so the next page compares against the very value.
        write!(
            f,
            "h{:016x}.{}.{}",
            self.score.to_bits(),
            self.seq,
            self.session
        )
    }
}

impl Serialize for SearchCursor {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromStr for SearchCursor {
    type Err = MemoryError;

    /// # Errors
    /// `InvalidInput` for anything but a cursor a search returned.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            MemoryError::invalid(format!(
                "{s:?} is not a search cursor; pass the next_cursor of the previous page"
            ))
        };
        let rest = s.strip_prefix('h').ok_or_else(bad)?;
        let mut parts = rest.splitn(3, '.');
        let (Some(bits), Some(seq), Some(session)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let bits = u64::from_str_radix(bits, 16).map_err(|_| bad())?;
        let score = f64::from_bits(bits);
        if !score.is_finite() {
            return Err(bad());
        }
        let seq = seq.parse().map_err(|_| bad())?;
        crate::message::validate_id("session", session).map_err(|_| bad())?;
        Ok(SearchCursor {
            score,
            session: session.to_string(),
            seq,
        })
    }
}

/// The error of a store that cannot search (Redis alone, `memory://`). It names the
/// kind of store, not its address: the message reaches API clients.
pub(crate) fn unsupported(kind: crate::spec::StoreKind) -> MemoryError {
    let what = match kind {
        crate::spec::StoreKind::Memory => "memory:// keeps conversations in RAM only",
        _ => "Redis alone keeps conversations for their TTL only",
    };
    MemoryError::Unsupported(format!(
        "search needs a durable store: {what}; use sqlite:// or postgres://, or Redis with \
         an archive (--archive)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = SearchCursor {
            score: 1.25e-3,
            session: "trip.2026-11".into(),
            seq: 42,
        };
        let text = c.to_string();
        assert_eq!(text.parse::<SearchCursor>().unwrap(), c);
        let bad = [
            "",
            "h",
            "hzz.1.s",
            "h0.x.s",
            "h3ff0000000000000.1.",
            "h3ff0000000000000.1.a b",
            "3ff0000000000000.1.s",
            "h7ff8000000000000.1.s",
        ];
        for bad in bad {
            assert!(bad.parse::<SearchCursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn queries_are_validated() {
        assert!(SearchQuery::new("backup command").validate().is_ok());
        assert!(SearchQuery::new("  ").validate().is_err());
        assert!(SearchQuery::new("x".repeat(MAX_QUERY_CHARS + 1))
            .validate()
            .is_err());
        assert!(SearchQuery::new("é".repeat(MAX_QUERY_CHARS))
            .validate()
            .is_ok());
        let mut q = SearchQuery::new("x");
        q.limit = 0;
        assert!(q.validate().is_err());
        q.limit = MAX_SEARCH_LIMIT + 1;
        assert!(q.validate().is_err());
        q.limit = 5;
        q.session = Some("no spaces".into());
        assert!(q.validate().is_err());
    }

    #[test]
    fn the_order_is_score_then_session_then_seq() {
        let c = SearchCursor {
            score: 2.0,
            session: "b".into(),
            seq: 5,
        };
        assert!(c.precedes(1.0, "a", 1));
        assert!(c.precedes(2.0, "c", 1));
        assert!(c.precedes(2.0, "b", 6));
        assert!(!c.precedes(2.0, "b", 5));
        assert!(!c.precedes(2.0, "a", 9));
        assert!(!c.precedes(3.0, "z", 9));
    }
}
