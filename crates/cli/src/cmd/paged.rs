//! Reading what may be long, page by page, and writing it as it is read: a
//! conversation's messages (`sessions show`), a user's sessions (`sessions list`) and
//! an export (`sessions export`). No command holds a whole conversation or a whole
//! export in memory, and no store call reads one.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use futures::StreamExt;
use ragchat_memory::{
    ListCursor, MessagePage, PageCursor, ReadLimit, SessionKey, SessionManager, SessionSummary,
};

/// Messages per page read by `sessions show`.
const SHOW_PAGE: usize = 500;
/// Sessions per page read by `sessions list`.
const LIST_PAGE: usize = 100;

/// The pages of one conversation, in order.
pub(crate) struct MessagePages<'a> {
    manager: &'a SessionManager,
    key: SessionKey,
    after: Option<PageCursor>,
    done: bool,
}

impl<'a> MessagePages<'a> {
    /// The pages of `key`, from the first.
    pub(crate) fn new(manager: &'a SessionManager, key: SessionKey) -> Self {
        MessagePages {
            manager,
            key,
            after: None,
            done: false,
        }
    }

    /// The next page; `None` after the last (or for a session that does not exist).
    ///
    /// # Errors
    /// The store's error (`Unavailable` while it is unreachable and this machine kept
    /// nothing of the session).
    pub(crate) async fn next(&mut self) -> Result<Option<MessagePage>> {
        if self.done {
            return Ok(None);
        }
        let limit = ReadLimit::new(SHOW_PAGE, ragchat_memory::manager::DEFAULT_PAGE_BYTES);
        let page = self.manager.page(&self.key, self.after, limit).await?;
        match &page {
            Some(p) if p.has_more && p.next_cursor.is_some() => self.after = p.next_cursor,
            _ => self.done = true,
        }
        Ok(page)
    }
}

/// Prints a conversation as JSON, `{"user","session","messages":[...],"partial"}`,
/// writing each page as it is read.
///
/// # Errors
/// The store's error, or stdout's.
pub(crate) async fn show_json(manager: &SessionManager, key: &SessionKey) -> Result<()> {
    let mut pages = MessagePages::new(manager, key.clone());
    let mut out = std::io::stdout().lock();
    write!(
        out,
        "{{\"user\":{},\"session\":{},\"messages\":[",
        serde_json::to_string(key.user())?,
        serde_json::to_string(key.session())?
    )?;
    let mut first = true;
    let mut partial = false;
    while let Some(page) = pages.next().await? {
        partial |= page.partial;
        for m in &page.messages {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            serde_json::to_writer(&mut out, m)?;
        }
        out.flush()?;
    }
    writeln!(out, "],\"partial\":{partial}}}")?;
    Ok(())
}

/// Every session of `user`, page by page: `each` gets one page at a time.
///
/// # Errors
/// The store's error, or `each`'s.
pub(crate) async fn each_session_page(
    manager: &SessionManager,
    user: &str,
    mut each: impl FnMut(&[SessionSummary]) -> Result<()>,
) -> Result<()> {
    let mut after: Option<ListCursor> = None;
    loop {
        let page = manager.list_page(user, after.as_ref(), LIST_PAGE).await?;
        each(&page.sessions)?;
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

/// Prints a user's sessions as JSON, `{"user","sessions":[...]}`, page by page.
///
/// # Errors
/// The store's error, or stdout's.
pub(crate) async fn list_json(manager: &SessionManager, user: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    write!(
        out,
        "{{\"user\":{},\"sessions\":[",
        serde_json::to_string(user)?
    )?;
    let mut first = true;
    each_session_page(manager, user, |sessions| {
        for s in sessions {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            serde_json::to_writer(&mut out, s)?;
        }
        out.flush()?;
        Ok(())
    })
    .await?;
    writeln!(out, "]}}")?;
    Ok(())
}

/// Writes a user's export to `path` (or stdout) as it is read. A file is written
/// beside its final name and renamed at the end, so a failed export leaves no half
/// file. Returns the bytes written.
///
/// # Errors
/// The store's error (the export is then not written), or the file's.
pub(crate) async fn export(
    manager: &SessionManager,
    user: &str,
    path: Option<&Path>,
) -> Result<u64> {
    let mut pieces = Box::pin(manager.export_stream(user).await?);
    let mut written = 0u64;
    match path {
        None => {
            let mut out = std::io::stdout().lock();
            while let Some(piece) = pieces.next().await {
                let piece = piece?;
                out.write_all(piece.as_bytes())?;
                written += piece.len() as u64;
            }
            writeln!(out)?;
        }
        Some(path) => {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let partial = path.with_file_name(format!(".{name}.partial"));
            let file = std::fs::File::create(&partial)
                .with_context(|| format!("writing {}", partial.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let result: Result<()> = async {
                while let Some(piece) = pieces.next().await {
                    let piece = piece?;
                    out.write_all(piece.as_bytes())?;
                    written += piece.len() as u64;
                }
                out.write_all(b"\n")?;
                out.flush()?;
                Ok(())
            }
            .await;
            if let Err(e) = result {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
            std::fs::rename(&partial, path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(written)
}
