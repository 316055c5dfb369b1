//! Conversation titles for the session list: each conversation's first question.
//!
//! The store keeps no title yet (a stored, editable title needs a field in the memory
//! crate's store backends), so the server derives one from the first user message. That
//! message never changes, so a title once read is kept in a bounded in-process cache,
//! keyed by user, session and creation time: a session deleted and created again under
//! the same name gets a new title. A conversation with no question yet is remembered as
//! untitled until its message count changes.
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
use ragchat_memory::{Message, ReadLimit, Role, SessionKey, SessionManager, SessionSummary};
use serde::Serialize;
use utoipa::ToSchema;

/// Most conversations one list request reads to title them.
pub const TITLE_READS_PER_LIST: usize = 20;
/// Conversations read at the same time for their titles.
pub const TITLE_READ_CONCURRENCY: usize = 4;
/// Longest title, in characters (longer first questions are cut, with `…`).
pub const MAX_TITLE_CHARS: usize = 80;
/// Default bound of the title cache, in bytes of titles and keys.
pub const DEFAULT_TITLE_CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// One line of the caller's session list: the session's figures and its title.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ListedSession {
    /// The session's figures.
    #[serde(flatten)]
    #[schema(value_type = ragchat_memory::SessionSummary)]
    pub summary: SessionSummary,
    /// The conversation's first question (shortened to 80 characters); `null` when it
    /// has none, or when it was not read yet (a later list request fills it in).
    pub title: Option<String>,
}

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

    /// `sessions` (in their order) with their titles: cached ones, and up to
    /// [`TITLE_READS_PER_LIST`] read now. A conversation that cannot be read is listed
    /// without a title (the failure is logged): a title is never worth failing the list.
    pub async fn attach(
        &self,
        memory: &SessionManager,
        user: &str,
        sessions: Vec<SessionSummary>,
    ) -> Vec<ListedSession> {
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
            .filter(|s| !known(s))
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
            .map(|summary| {
                let title = match self.titles.get(&key_of(&summary)) {
                    Some(Known::Title(title)) => Some(title.to_string()),
                    _ => None,
                };
                ListedSession { summary, title }
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

/// The title of a conversation: its first user message, whitespace collapsed to single
/// spaces, cut to [`MAX_TITLE_CHARS`] with `…`; `None` when no user message has text.
pub fn title_of<'a>(messages: impl IntoIterator<Item = &'a Message>) -> Option<String> {
    let first = messages
        .into_iter()
        .filter(|m| m.role == Role::User)
        .find(|m| !m.content.trim().is_empty())?;
    let words: Vec<&str> = first.content.split_whitespace().collect();
    let line = words.join(" ");
    if line.chars().count() <= MAX_TITLE_CHARS {
        return Some(line);
    }
    let mut cut: String = line.chars().take(MAX_TITLE_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_is_the_first_question_on_one_line() {
        let messages = [
            Message::new(Role::System, "You are helpful."),
            Message::user("   \n "),
            Message::user("What is\n  machine   learning?"),
            Message::assistant("It is ..."),
            Message::user("How does it learn?"),
        ];
        assert_eq!(
            title_of(messages.iter()).as_deref(),
            Some("What is machine learning?")
        );
        assert_eq!(title_of([Message::assistant("Hi")].iter()), None);
    }

    #[test]
    fn long_questions_are_cut_at_a_character_boundary() {
        let long = format!("{} ends here", "é".repeat(100));
        let title = title_of([Message::user(long)].iter()).unwrap();
        assert_eq!(title.chars().count(), MAX_TITLE_CHARS);
        assert!(title.ends_with('…'), "{title}");
        let spaced = format!("{} tail", "word ".repeat(20));
        let title = title_of([Message::user(spaced)].iter()).unwrap();
        assert!(
            title.ends_with("word…"),
            "no space before the ellipsis: {title}"
        );
    }

    #[test]
    fn the_openapi_document_describes_a_listed_session() {
        let doc = serde_json::to_value(crate::openapi::document()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let parts = schemas["ListedSession"]["allOf"].as_array().unwrap();
        assert_eq!(parts[0]["$ref"], "#/components/schemas/SessionSummary");
        let mut described: Vec<String> = schemas["SessionSummary"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .chain(parts[1]["properties"].as_object().unwrap().keys())
            .cloned()
            .collect();
        described.sort();
        let now = chrono::Utc::now();
        let listed = ListedSession {
            summary: SessionSummary {
                session: "s".into(),
                message_count: 2,
                bytes: 3,
                created_at: now,
                updated_at: now,
                ttl_remaining_secs: None,
            },
            title: Some("What is ML?".into()),
        };
        let json = serde_json::to_value(&listed).unwrap();
        let mut serialized: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
        serialized.sort();
        assert_eq!(described, serialized);
    }
}
