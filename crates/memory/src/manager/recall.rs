//! Recall: the messages of a user's conversations that match a new question, for the
//! context of the turn that asks it (see `ragchat-engine`).
//!
//! A recall is one search of the durable tier ([`crate::search`]), the same ranking and
//! isolation as `GET /v1/search`, taking the messages whole. It is an extra for the turn,
//! never a reason to fail it: the caller treats an error as "nothing recalled".

use std::collections::HashSet;

use super::SessionManager;
use crate::error::Result;
use crate::message::{MessageId, SessionKey};
use crate::search::terms::Terms;
use crate::search::{SearchHit, SearchQuery, MAX_QUERY_CHARS, MAX_SEARCH_LIMIT};

/// Hits asked beyond the wanted number, for those in the turn's window.
const RECALL_SLACK: usize = 4;
/// Pages a recall reads at most.
const RECALL_PAGES: usize = 3;

/// Where a recall looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecallScope {
    /// The conversation of the turn only.
    Session,
    /// Every conversation of the user's.
    AllSessions,
}

impl SessionManager {
    /// Up to `limit` messages of `key`'s user that match `text`, best first, whole
    /// ([`SearchHit::content`]), leaving out those in `skip` (the messages the turn
    /// already has in its window). Only `key`'s conversation with
    /// [`RecallScope::Session`]. Nothing when `text` holds only common words.
    ///
    /// # Errors
    /// As [`SessionManager::search`]: `Unsupported` for a store that cannot search.
    pub async fn recall(
        &self,
        key: &SessionKey,
        text: &str,
        scope: RecallScope,
        limit: usize,
        skip: &HashSet<MessageId>,
    ) -> Result<Vec<SearchHit>> {
        let text: String = text.chars().take(MAX_QUERY_CHARS).collect();
        if !Terms::of(&text).has_telling_words() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut query = SearchQuery::new(text);
        query.session = (scope == RecallScope::Session).then(|| key.session().to_owned());
        // The window's messages match the question too, and are skipped: a few more
        // than wanted per page, and another page while some are missing (rarely: the
        // window is about what was just said, recall about what was said long ago).
        query.limit = (limit + RECALL_SLACK).min(MAX_SEARCH_LIMIT);
        query.snippets = false;
        // What this process has not archived yet is recent: in the window, not recalled.
        query.fresh = false;
        // Recall keeps a few of the best matches: those holding only the question's most
        // common word are the weakest, and need not be read when rarer words fill a page.
        query.exhaustive = false;
        let mut recalled = Vec::with_capacity(limit);
        for _ in 0..RECALL_PAGES {
            let page = self.search(key.user(), &query).await?;
            recalled.extend(
                page.hits
                    .into_iter()
                    .filter(|hit| !skip.contains(&hit.message_id))
                    .take(limit - recalled.len()),
            );
            match page.next {
                Some(next) if recalled.len() < limit => query.cursor = Some(next),
                _ => break,
            }
        }
        Ok(recalled)
    }
}
