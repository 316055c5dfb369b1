//! Search of the caller's own conversations: `GET /v1/search`.
//!
//! The user is the authenticated caller's, never a parameter: another user's messages
//! are not in reach. A store without a durable tier (Redis alone, `memory://`) answers
//! 501 `search_unavailable`, saying what would search.

use axum::extract::State;
use axum::Json;
use ragchat_memory::search::{DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT};
use ragchat_memory::{SearchCursor, SearchHit, SearchQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery, ErrorBody};
use crate::state::AppState;

/// The query of `GET /v1/search`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The words to look for (1 to 1000 characters). Matched with stemming, any of
    /// them; messages with more of them (or rarer ones) first.
    pub q: Option<String>,
    /// At most this many hits (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only this conversation of the caller's.
    pub session: Option<String>,
}

/// A page of hits.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    /// Best first. Each snippet is HTML: the matched words between `<mark>` and
    /// `</mark>`, everything else escaped.
    #[schema(value_type = Vec<ragchat_memory::SearchHit>)]
    pub hits: Vec<SearchHit>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(value_type = Option<String>)]
    pub next_cursor: Option<SearchCursor>,
}

/// Searches the caller's messages across all their conversations (or one).
#[utoipa::path(
    get,
    path = "/v1/search",
    tag = "sessions",
    params(SearchParams),
    responses(
        (status = 200, body = SearchResults),
        (status = 400, description = "Empty or too long `q`, bad `limit`, `cursor` or `session`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 501, description = "The store cannot search (Redis alone, memory://)", body = ErrorBody),
        (status = 503, description = "Store unavailable (see Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn search_get(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<SearchResults>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
    if !(1..=MAX_SEARCH_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_input(format!(
            "limit must be between 1 and {MAX_SEARCH_LIMIT}, got {limit}"
        )));
    }
    let query = SearchQuery {
        text: params.q.unwrap_or_default(),
        session: params.session,
        limit,
        cursor: params
            .cursor
            .as_deref()
            .map(str::parse::<SearchCursor>)
            .transpose()?,
        snippets: true,
        fresh: true,
        exhaustive: true,
    };
    let page = state.memory().search(&caller.user, &query).await?;
    Ok(Json(SearchResults {
        hits: page.hits,
        next_cursor: page.next,
    }))
}
