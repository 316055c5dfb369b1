//! Titles for conversations stored before titles existed: their first question, read
//! back.
//!
//! The store keeps each conversation's title (its first question, or the one a person
//! gave it: see `ragchat_memory::title`) and the session list carries it. Sessions the
//! store already held when titles came have none stored, so the server derives theirs
//! from the first user message, with the same rule ([`title_of`]). That message never
//! changes, so a title once read is kept in a bounded in-process cache, keyed by user,
//! session and creation time: a session deleted and created again under the same name
//! gets a new title. A conversation with no question yet is remembered as untitled
//! until its message count changes.
//!
//! Reading a title means reading the conversation once (through the memory manager, so
//! a session this server already caches costs no round trip). To keep one list request
//! from fanning out into a read per conversation, a request reads at most
//! [`TITLE_READS_PER_LIST`] untitled conversations, most recent first,
//! [`TITLE_READ_CONCURRENCY`] at a time; the others are listed with `title: null` and get
//! theirs on a later request. Such a read counts as use of the conversation: like any
//! read, it refreshes the session's TTL.

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use moka::sync::Cache;
use ragchat_memory::{ReadLimit, SessionKey, SessionManager, SessionSummary};

// The one title rule lives with the store, which titles new conversations itself.
pub use ragchat_memory::{title_of, MAX_TITLE_CHARS};

/// Most conversations one list request reads to title them.
pub const TITLE_READS_PER_LIST: usize = 20;
/// Conversations read at the same time for their titles.
pub const TITLE_READ_CONCURRENCY: usize = 4;
/// Default bound of the title cache, in bytes of titles and keys.
pub const DEFAULT_TITLE_CACHE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TitleKey {
    user: String,
    session: String,
    created_at_ms: i64,
}

/// What a read found: the title, or none as of this many messages.
#[derive(Clone, Debug)]
enum Known {
    Title(Arc<str>),
    Untitled { message_count: u64 },
}

/// Titles already read, bounded by bytes. Cheap to clone.
#[derive(Clone)]
pub struct TitleCache {
    titles: Cache<TitleKey, Known>,
}

impl std::fmt::Debug for TitleCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TitleCache")
            .field("entries", &self.titles.entry_count())
            .finish()
    }
}

impl Default for TitleCache {
    fn default() -> Self {
        Self::new(DEFAULT_TITLE_CACHE_BYTES)
    }
}

impl TitleCache {
    /// A cache holding at most about `max_bytes` of titles and keys.
    pub fn new(max_bytes: u64) -> Self {
        let titles = Cache::builder()
            .weigher(|key: &TitleKey, known: &Known| {
                let title = match known {
                    Known::Title(title) => title.len(),
                    Known::Untitled { .. } => 0,
                };
                let bytes = key.user.len() + key.session.len() + title + 64;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .max_capacity(max_bytes)
            .build();
        TitleCache { titles }
    }

    /// `sessions` (in their order), those without a stored title given their first
    /// question: cached ones, and up to [`TITLE_READS_PER_LIST`] read now. A
    /// conversation that cannot be read stays without a title (the failure is logged):
    /// a title is never worth failing the list.
    pub async fn attach(
        &self,
        memory: &SessionManager,
        user: &str,
        sessions: Vec<SessionSummary>,
    ) -> Vec<SessionSummary> {
        let key_of = |s: &SessionSummary| TitleKey {
            user: user.to_string(),
            session: s.session.clone(),
            created_at_ms: s.created_at.timestamp_millis(),
        };
        let known = |s: &SessionSummary| match self.titles.get(&key_of(s)) {
            Some(Known::Title(_)) => true,
            Some(Known::Untitled { message_count }) => message_count == s.message_count,
            None => false,
        };
        let to_read: Vec<(TitleKey, u64)> = sessions
            .iter()
            .filter(|s| s.title.is_none() && !known(s))
            .map(|s| (key_of(s), s.message_count))
            .take(TITLE_READS_PER_LIST)
            .collect();
        stream::iter(to_read)
            .for_each_concurrent(TITLE_READ_CONCURRENCY, |(key, count)| async move {
                if let Some(found) = read_title(memory, &key, count).await {
                    self.titles.insert(key, found);
                }
            })
            .await;
        sessions
            .into_iter()
            .map(|mut summary| {
                if summary.title.is_none() {
                    if let Some(Known::Title(title)) = self.titles.get(&key_of(&summary)) {
                        summary.title = Some(title.to_string());
                    }
                }
                summary
            })
            .collect()
    }
}

/// Reads the conversation, listed with `message_count` messages; `None` when it cannot
/// be read (logged, never fatal).
async fn read_title(memory: &SessionManager, key: &TitleKey, message_count: u64) -> Option<Known> {
    let session = SessionKey::new(key.user.clone(), key.session.clone()).ok()?;
    // The first few messages hold the first question (a system message may come first);
    // the chat-turn read would give the recent tail instead.
    let first_page = memory
        .page(&session, None, ReadLimit::new(8, 256 * 1024))
        .await;
    match first_page.map(|page| page.map(|p| p.messages).unwrap_or_default()) {
        Ok(messages) => Some(match title_of(messages.iter()) {
            Some(title) => Known::Title(title.into()),
            None => Known::Untitled { message_count },
        }),
        Err(error) => {
            tracing::debug!(%error, session = %key.session, "cannot read a conversation's title");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_openapi_document_describes_a_listed_session() {
        let doc = serde_json::to_value(crate::openapi::document()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let listed = &schemas["SessionList"]["properties"]["sessions"]["items"]["$ref"];
        assert_eq!(listed, "#/components/schemas/SessionSummary");
        let title = &schemas["SessionSummary"]["properties"]["title"];
        assert!(title.to_string().contains("null"), "nullable: {title}");
    }
}
