//! `ragchat sessions rename`: give a conversation a title, or clear it back to its
//! first question.

use anyhow::Result;
use ragchat_memory::{MemoryError, SessionKey, SessionManager};

use crate::output;
use crate::terminal::visible;

/// Sets (`Some`) or clears (`None`) the title of `key` and prints the result: the
/// session's stats as JSON, or one line. A conversation that does not exist is
/// `NotFound` (exit 3); a bad title is `InvalidInput` (exit 2).
pub(super) async fn run(
    manager: &SessionManager,
    key: &SessionKey,
    title: Option<&str>,
    json: bool,
) -> Result<()> {
    let not_found = || {
        MemoryError::NotFound(format!(
            "no conversation {}/{} in {}",
            key.user(),
            key.session(),
            manager.store_url()
        ))
    };
    if !manager.rename(key, title).await? {
        return Err(not_found().into());
    }
    let stats = manager.stats(key).await?.ok_or_else(not_found)?;
    if json {
        return output::json_line(&stats);
    }
    let shown = stats.title.as_deref().map(visible);
    match (title, shown) {
        (Some(_), Some(shown)) => println!("renamed {key}: {shown}"),
        (None, Some(shown)) => {
            println!("cleared the title of {key}; it shows its first question: {shown}")
        }
        (_, None) => println!("cleared the title of {key}; it has no question yet"),
    }
    Ok(())
}
