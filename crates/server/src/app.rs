//! The server's router: every route of [`crate::routes`], the web page, the OpenAPI
//! document, and the layers every response passes through.

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use crate::error::ApiError;
use crate::routes::{about, account, layers, openai, ops, search, sessions, sources, turns};
use crate::state::AppState;

/// Every route of the server, with its state.
pub(crate) fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/sessions", get(sessions::sessions_list))
        .route(
            "/v1/sessions/{session}",
            delete(sessions::session_delete).patch(sessions::session_rename),
        )
        .route(
            "/v1/sessions/{session}/messages",
            post(turns::message_create).get(sessions::messages_list),
        )
        .route("/v1/sessions/{session}/stats", get(sessions::session_stats))
        .route(
            "/v1/sessions/{session}/messages/{message_id}/sources/{n}",
            get(sources::source_get),
        )
        .route("/v1/search", get(search::search_get))
        .route("/v1/about", get(about::about_get))
        .route("/v1/export", get(account::export))
        .route("/v1/me", delete(account::me_delete))
        .layer(DefaultBodyLimit::max(state.config().max_body_bytes));
    Router::new()
        .merge(api)
        .merge(openai::router(&state))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi_json))
        .merge(crate::web::router())
        .fallback(|| async { ApiError::no_route() })
        .method_not_allowed_fallback(|| async { method_not_allowed() })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            layers::request_deadline,
        ))
        .layer(middleware::from_fn(layers::security_headers))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .with_state(state)
}

async fn openapi_json() -> impl IntoResponse {
    Json(crate::openapi::document())
}

fn method_not_allowed() -> Response {
    let body = serde_json::json!({
        "error": {"code": "method_not_allowed", "message": "method not allowed on this route"}
    });
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

/// Counts every response by route template and status (`ragchat_http_requests_total`).
async fn count_responses(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    state
        .metrics()
        .http_response(&route, response.status().as_u16());
    response
}
