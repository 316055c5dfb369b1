//! `ragchat sessions search`: find a user's messages across their conversations (or in
//! one), best first, as `GET /v1/search` does.

use anyhow::Result;
use clap::Args;
use ragchat_memory::search::snippet::to_plain;
use ragchat_memory::search::DEFAULT_SEARCH_LIMIT;
use ragchat_memory::{SearchCursor, SearchHit, SearchQuery, SessionManager};
use serde::Serialize;

use crate::output;
use crate::terminal::visible;

/// `ragchat sessions search --user U [--session S] QUERY...`
#[derive(Debug, Args)]
pub(crate) struct SearchArgs {
    /// User id: only this user's conversations are searched.
    #[arg(long, short)]
    pub user: String,
    /// Only this conversation.
    #[arg(long, short)]
    pub session: Option<String>,
    /// At most this many hits (1 to 100).
    #[arg(long, default_value_t = DEFAULT_SEARCH_LIMIT)]
    pub limit: usize,
    /// The next page: the cursor a previous search printed.
    #[arg(long)]
    pub cursor: Option<String>,
    /// JSON, as the API's GET /v1/search: {"hits":[{"session","message_id","seq","role",
    /// "created_at","snippet","score"}],"next_cursor"}; snippets mark matches with <mark>.
    #[arg(long)]
    pub json: bool,
    /// The words to look for (any of them, stemmed; best matches first).
    #[arg(required = true, num_args = 1..)]
    pub query: Vec<String>,
}

impl SearchArgs {
    /// The query these arguments ask for; `InvalidInput` for a bad id, query or cursor.
    pub(crate) fn query(&self) -> Result<SearchQuery> {
        ragchat_memory::message::validate_id("user", &self.user)?;
        let query = SearchQuery {
            text: self.query.join(" "),
            session: self.session.clone(),
            limit: self.limit,
            cursor: self
                .cursor
                .as_deref()
                .map(str::parse::<SearchCursor>)
                .transpose()?,
            snippets: true,
            fresh: true,
            exhaustive: true,
        };
        query.validate()?;
        Ok(query)
    }
}

/// What `--json` prints: the API's shape.
#[derive(Serialize)]
struct SearchJson<'a> {
    hits: &'a [SearchHit],
    next_cursor: Option<&'a SearchCursor>,
}

/// Runs the search and prints one page. A store that cannot search is
/// `Unsupported` (exit 5).
pub(super) async fn run(manager: &SessionManager, args: &SearchArgs) -> Result<()> {
    let query = args.query()?;
    let page = manager.search(&args.user, &query).await?;
    if args.json {
        return output::json_line(&SearchJson {
            hits: &page.hits,
            next_cursor: page.next.as_ref(),
        });
    }
    if page.hits.is_empty() {
        println!("no messages of {} match {:?}", args.user, query.text);
    }
    for hit in &page.hits {
        println!(
            "{}  #{}  {}  {}  (score {:.3})",
            visible(&hit.session),
            hit.seq,
            hit.role,
            output::time(hit.created_at),
            hit.score
        );
        println!("  {}", visible(&to_plain(&hit.snippet, "«", "»")));
    }
    if let Some(next) = &page.next {
        println!("more: --cursor {next}");
    }
    Ok(())
}
