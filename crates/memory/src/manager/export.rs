//! Exporting a user's conversations, page by page.
//!
//! [`SessionManager::export_stream`] yields the export's JSON text in pieces as it
//! reads the store, one session-list page or message page at a time, so neither the
//! store nor the process ever holds a whole export: the HTTP body streams it and the
//! CLI writes it as it reads. [`SessionManager::export`] collects the same pages into
//! one value, for callers with small exports.

use std::collections::VecDeque;

use chrono::Utc;
use futures::stream::{self, Stream};

use super::{SessionExport, SessionManager, UserExport, DEFAULT_PAGE_BYTES};
use crate::error::Result;
use crate::limits::{ListCursor, PageCursor, ReadLimit};
use crate::message::SessionKey;
use crate::store::SessionSummary;

/// Sessions per list page, and messages per page, of an export.
const EXPORT_SESSIONS: usize = 100;
const EXPORT_MESSAGES: usize = 1000;

/// Where an export stream is.
struct ExportState {
    manager: SessionManager,
    user: String,
    /// Sessions of the current list page not exported yet.
    sessions: VecDeque<SessionSummary>,
    /// Where the next list page starts; `None` once the last page was read.
    next_list: Option<ListCursor>,
    /// The session being exported and where its next page starts.
    current: Option<(SessionKey, PageCursor)>,
    /// Whether a session was written already (a comma precedes the next).
    wrote_session: bool,
    done: bool,
}

impl SessionManager {
    /// The user's export as JSON text in pieces, read page by page (see the module
    /// docs): `{"user","exported_at","store","sessions":[{"session","created_at",
    /// "updated_at","messages":[...]}, ...]}`, the same document
    /// [`SessionManager::export`] returns. Journaled messages are replayed first (best
    /// effort), so that they are in it. The first page of the session list is read
    /// before this returns, so an unreachable store is an error here rather than a
    /// broken stream; a failure later ends the stream with that error (the text so far
    /// is then not a whole document).
    ///
    /// # Errors
    /// `InvalidInput` for an invalid user id; `Unavailable` when the store cannot be reached.
    pub async fn export_stream(
        &self,
        user: &str,
    ) -> Result<impl Stream<Item = Result<String>> + Send + 'static> {
        if self.inner.journal.is_some() {
            // Best effort: whatever is still journaled should be in the export.
            let _ = self.replay_journal().await;
        }
        let first = self.list_page(user, None, EXPORT_SESSIONS).await?;
        let header = format!(
            "{{\"user\":{},\"exported_at\":{},\"store\":{},\"sessions\":[",
            json(&user),
            json(&Utc::now()),
            json(&self.store_url())
        );
        let state = ExportState {
            manager: self.clone(),
            user: user.to_string(),
            sessions: first.sessions.into(),
            next_list: first.next,
            current: None,
            wrote_session: false,
            done: false,
        };
        let head = stream::iter([Ok(header)]);
        let body = stream::try_unfold(state, |mut state| async move {
            if state.done {
                return Ok(None);
            }
            let piece = state.next_piece().await?;
            Ok(Some((piece, state)))
        });
        Ok(futures::StreamExt::chain(head, body))
    }

    /// Every session of `user` with its history, in one value (read page by page).
    ///
    /// # Errors
    /// `InvalidInput` for an invalid user id; `Unavailable` when the store cannot be reached.
    pub async fn export(&self, user: &str) -> Result<UserExport> {
        if self.inner.journal.is_some() {
            let _ = self.replay_journal().await;
        }
        let mut sessions = Vec::new();
        for s in self.list_sessions(user).await? {
            let key = SessionKey::new(user, s.session.as_str())?;
            let mut messages = Vec::new();
            let mut after = None;
            let mut created = None;
            loop {
                let Some(page) = self.page(&key, after, export_limit()).await? else {
                    break;
                };
                created.get_or_insert((s.created_at, s.updated_at));
                messages.extend(page.messages);
                if !page.has_more || page.next_cursor.is_none() {
                    break;
                }
                after = page.next_cursor;
            }
            if let Some((created_at, updated_at)) = created {
                sessions.push(SessionExport {
                    session: s.session,
                    created_at,
                    updated_at,
                    messages,
                });
            }
        }
        Ok(UserExport {
            user: user.to_string(),
            exported_at: Utc::now(),
            store: self.store_url(),
            sessions,
        })
    }
}

fn export_limit() -> ReadLimit {
    ReadLimit::new(EXPORT_MESSAGES, DEFAULT_PAGE_BYTES)
}

/// A value as JSON text (strings and timestamps cannot fail to encode).
fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

impl ExportState {
    /// The next piece of text: a page of the current session, the start of the next
    /// session, or the end of the document.
    async fn next_piece(&mut self) -> Result<String> {
        loop {
            if let Some((key, after)) = self.current.clone() {
                let page = self.manager.page(&key, Some(after), export_limit()).await?;
                let Some(page) = page else {
                    self.current = None;
                    return Ok("]}".to_string());
                };
                let mut text = String::new();
                for m in &page.messages {
                    text.push(',');
                    text.push_str(&json(m));
                }
                match page.next_cursor.filter(|_| page.has_more) {
                    Some(next) => self.current = Some((key, next)),
                    None => {
                        self.current = None;
                        text.push_str("]}");
                    }
                }
                return Ok(text);
            }
            if let Some(summary) = self.sessions.pop_front() {
                let key = SessionKey::new(self.user.as_str(), summary.session.as_str())?;
                let Some(page) = self.manager.page(&key, None, export_limit()).await? else {
                    continue; // deleted meanwhile
                };
                let mut text = String::new();
                if self.wrote_session {
                    text.push(',');
                }
                self.wrote_session = true;
                text.push_str(&format!(
                    "{{\"session\":{},\"created_at\":{},\"updated_at\":{},\"messages\":[",
                    json(&summary.session),
                    json(&summary.created_at),
                    json(&summary.updated_at),
                ));
                let mut first = true;
                for m in &page.messages {
                    if !first {
                        text.push(',');
                    }
                    first = false;
                    text.push_str(&json(m));
                }
                match page.next_cursor.filter(|_| page.has_more) {
                    Some(next) if !first => self.current = Some((key, next)),
                    _ => text.push_str("]}"),
                }
                return Ok(text);
            }
            if let Some(after) = self.next_list.take() {
                let page = self
                    .manager
                    .list_page(&self.user, Some(&after), EXPORT_SESSIONS)
                    .await?;
                self.sessions = page.sessions.into();
                self.next_list = page.next;
                continue;
            }
            self.done = true;
            return Ok("]}".to_string());
        }
    }
}
