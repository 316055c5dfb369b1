//! For operators and load balancers: `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.
//! None of them needs an API key, and none shows any user's data. With a keys file,
//! `/readyz` shows a caller without a key only what a load balancer needs (see
//! [`crate::readiness`]); `/metrics` holds counts and timings, no URL, model or key.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ragchat_memory::Mode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Source;
use crate::persistence::RedisPersistence;
use crate::readiness::{archive_warning, detailed_view_allowed, ArchiveReadiness, PublicReadiness};
use crate::state::AppState;

pub use crate::readiness::READINESS_PROBE_USER;

/// `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process is alive and serving.
    pub status: &'static str,
}

/// `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// Whether this server can take chat turns: the store answers, or the local
    /// journal takes appends while it does not.
    pub ready: bool,
    /// The store, as a redacted URL.
    pub store: String,
    /// `normal`, or `degraded` while the store is unreachable.
    #[schema(value_type = String, example = "normal")]
    pub mode: Mode,
    /// Messages in the local journal waiting for the store.
    pub pending_sync: u64,
    /// What Redis keeps on disk: `aof`, `rdb`, `none`, `n/a` (not Redis) or `unknown`.
    #[schema(value_type = String, example = "aof")]
    pub redis_persistence: RedisPersistence,
    /// The answerer (`extractive`, or the LLM model and endpoint, its secrets hidden).
    pub answerer: String,
    /// The archive behind a Redis store; absent for a store without one. An archive
    /// that is `down` adds a warning and leaves `ready` alone: Redis keeps what it has
    /// not confirmed, without expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveReadiness>,
    /// Things an operator should fix (e.g. a Redis that keeps nothing on disk, or may
    /// evict conversations; journal entries kept for another store).
    pub warnings: Vec<String>,
}

/// The warning for a Redis that keeps nothing on disk.
pub const NO_PERSISTENCE_WARNING: &str = "Redis keeps nothing on disk (no AOF, no RDB snapshots): \
     a Redis restart loses every conversation; set `appendonly yes`";

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: store reachable (or the journal standing in), mode, pending replay,
/// Redis persistence, the archive's state and lag (an archive that is down is a
/// warning, not unreadiness). The store is asked at most once a second. With a keys file, a
/// caller without a valid key gets only `ready`, `mode` and `warning_count`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses(
        (status = 200, description = "Ready (with a key, or without a keys file; \
            otherwise `{\"ready\",\"mode\",\"warning_count\"}`)", body = Readiness),
        (status = 503, description = "Neither the store nor the journal can take turns", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>, source: Source, headers: HeaderMap) -> Response {
    let memory = state.memory();
    let store_answers = state.store_probe().store_answers(memory).await;
    let status = memory.status().await;
    let persistence = state.persistence().check().await;
    let mut warnings = Vec::new();
    if persistence == RedisPersistence::None {
        warnings.push(NO_PERSISTENCE_WARNING.to_string());
    }
    let (ready, mode, pending_sync) = match &status {
        Ok(s) => {
            state.metrics().observe_memory(s);
            let journal_stands_in = s.journal.is_some();
            (store_answers || journal_stands_in, s.mode, s.pending_sync)
        }
        Err(e) => {
            warnings.push(format!("the local journal cannot be read: {e}"));
            (false, Mode::Degraded, 0)
        }
    };
    if !store_answers {
        warnings.push("the conversation store does not answer".to_string());
    }
    // A Redis that may evict keys; journal entries kept for another store.
    warnings.extend(memory.store_warnings().await);
    warnings.extend(memory.other_store_warnings().await.unwrap_or_default());
    warnings.extend(state.auth().warnings());
    let archive = memory.store().archive_status();
    if let Some(archive) = &archive {
        state.metrics().observe_archive(archive);
        warnings.extend(archive_warning(archive, &warnings));
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if !detailed_view_allowed(&state, &headers, source) {
        let body = PublicReadiness {
            ready,
            mode,
            warning_count: warnings.len(),
        };
        return (code, Json(body)).into_response();
    }
    let body = Readiness {
        ready,
        store: memory.store_url(),
        mode,
        pending_sync,
        redis_persistence: persistence,
        answerer: state.engine().answerer().describe(),
        archive: archive.as_ref().map(ArchiveReadiness::from),
        warnings,
    };
    (code, Json(body)).into_response()
}

/// Prometheus text exposition of the `ragchat_*` metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    if let Ok(status) = state.memory().status().await {
        state.metrics().observe_memory(&status);
    }
    if let Some(archive) = state.memory().store().archive_status() {
        state.metrics().observe_archive(&archive);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(),
    )
        .into_response()
}
