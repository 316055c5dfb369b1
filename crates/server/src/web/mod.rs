//! The web chat page at `/`: plain HTML, JavaScript and CSS compiled into the binary
//! (no front-end build step, nothing fetched from elsewhere).
//!
//! The page streams answers (`fetch` + a `ReadableStream` SSE parser, since
//! `EventSource` cannot POST), shows the sources under each answer, lists the caller's
//! sessions, and restores the conversation named in the URL (`#session=ID`) from the
//! API on every load, so a reload, or the same URL on another server, shows the same
//! history.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const STYLE_CSS: &str = include_str!("style.css");

/// `/`, `/app.js`, `/style.css`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/style.css", get(style_css))
}

/// Headers every page asset carries: its type, no caching across deploys of a new
/// version, and a policy that allows only this origin's script and style.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}

async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn style_css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE_CSS)
}
