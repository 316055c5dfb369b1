//! The web chat page at `/`: plain HTML, JavaScript and CSS compiled into the binary
//! (no front-end build step, nothing fetched from elsewhere).
//!
//! The page streams answers (`fetch` + a `ReadableStream` SSE parser, since
//! `EventSource` cannot POST), shows the sources under each answer (each opens the
//! passage it cites), lists the caller's conversations by their titles (the first
//! question, or one given with the rename button) with relative times (a drawer behind
//! a menu button on phones), greets a new conversation
//! with the loaded documents and example questions, and restores the conversation named
//! in the URL (`#session=ID`) from the API on every load, so a reload, or the same URL
//! on another server, shows the same history. A search box above the list finds the
//! caller's messages in every conversation and opens one at the message found.
//!
//! The script is a few ES modules: `app.js` (the chat), `drawer.js`, `welcome.js`,
//! `sources.js`, `rename.js`, `search.js` and `time.js`.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

const INDEX_HTML: &str = include_str!("index.html");
const STYLE_CSS: &str = include_str!("style.css");
/// The page's script modules, by URL path.
const SCRIPTS: &[(&str, &str)] = &[
    ("/app.js", include_str!("app.js")),
    ("/drawer.js", include_str!("drawer.js")),
    ("/welcome.js", include_str!("welcome.js")),
    ("/sources.js", include_str!("sources.js")),
    ("/time.js", include_str!("time.js")),
    ("/rename.js", include_str!("rename.js")),
    ("/search.js", include_str!("search.js")),
];

/// `/`, `/style.css` and the scripts.
pub fn router() -> Router<AppState> {
    let mut router = Router::new()
        .route("/", get(index))
        .route("/style.css", get(style_css));
    for &(path, body) in SCRIPTS {
        router = router.route(
            path,
            get(move || async move { asset("text/javascript; charset=utf-8", body) }),
        );
    }
    router
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

async fn style_css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE_CSS)
}
