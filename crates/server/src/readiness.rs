//! What `/readyz` may cost and show.
//!
//! - The store is asked whether it answers at most once per [`STORE_PROBE_EVERY`],
//!   however often load balancers poll: concurrent polls wait for the one probe in
//!   flight and share its answer.
//! - Without a valid key (when the server has a keys file) `/readyz` shows only what a
//!   load balancer needs ([`PublicReadiness`]: ready, mode, how many warnings); the
//!   store, the answerer (model, endpoint), persistence and the warnings themselves
//!   need a key. A wrong key counts as a failed authentication like anywhere else, so
//!   the detailed view cannot be used to test keys without the lockout.
//! - A Redis store with an archive behind it shows the archive ([`ArchiveReadiness`]).
//!   An archive that is `down` does **not** make the server unready: turns are
//!   acknowledged by Redis, which keeps every conversation the archive has not
//!   confirmed without expiry, so nothing is lost while it is away; what it costs is
//!   Redis memory, which is why it shows as a warning (and in `warning_count`) for an
//!   operator to act on rather than as a reason for a load balancer to drain servers
//!   that all share the same archive.

use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use ragchat_memory::{ArchiveState, ArchiveStatus, Mode, SessionManager};
use serde::Serialize;
use tokio::sync::Mutex;
use utoipa::ToSchema;

use crate::auth::{CallerState, Source};

/// A user id nobody has sessions under: `/readyz` lists its sessions to make one real
/// call to the store, which is what tells the memory layer whether the store answers.
pub const READINESS_PROBE_USER: &str = "_ragchat-readyz";

/// Longest the store's last answer to the readiness probe is reused.
pub const STORE_PROBE_EVERY: Duration = Duration::from_secs(1);

/// `GET /readyz` without a key, on a server with a keys file.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicReadiness {
    /// Whether this server can take chat turns.
    pub ready: bool,
    /// `normal`, or `degraded` while the store is unreachable.
    #[schema(value_type = String, example = "normal")]
    pub mode: Mode,
    /// How many things an operator should look at (send a key to see them).
    pub warning_count: usize,
}

/// The archive behind a Redis store, as `/readyz` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArchiveReadiness {
    /// `ok` (caught up, or catching up), `down` (its last write failed: a warning,
    /// not unreadiness; see the module docs).
    pub state: ArchiveState,
    /// Acknowledged messages this server knows are not archived yet.
    pub lag_messages: u64,
    /// Age of the oldest of them, in seconds (0 when none).
    pub lag_seconds: f64,
}

impl From<&ArchiveStatus> for ArchiveReadiness {
    fn from(status: &ArchiveStatus) -> Self {
        ArchiveReadiness {
            state: status.state,
            lag_messages: status.lag_messages,
            lag_seconds: status.lag_seconds,
        }
    }
}

/// The warning for an archive that is down, unless `warnings` (the store's own, which
/// are cached for a while) already say why.
pub fn archive_warning(status: &ArchiveStatus, warnings: &[String]) -> Option<String> {
    if status.state != ArchiveState::Down {
        return None;
    }
    let why = status
        .last_error
        .as_deref()
        .unwrap_or("its last write failed");
    if warnings.iter().any(|w| w.contains(why)) {
        return None;
    }
    Some(format!(
        "the archive is down ({why}): turns still succeed; the {} message(s) it has not \
         confirmed stay in Redis without expiry until it answers again",
        status.lag_messages
    ))
}

/// The store's last answer to the readiness probe.
#[derive(Debug, Default)]
pub struct StoreProbe {
    last: Mutex<Option<(Instant, bool)>>,
}

impl StoreProbe {
    /// Whether the store answers: a real call at most once per
    /// [`STORE_PROBE_EVERY`], else the last answer.
    pub async fn store_answers(&self, memory: &SessionManager) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = *last {
            if at.elapsed() < STORE_PROBE_EVERY {
                return answer;
            }
        }
        // Listing a user nobody has sessions under is one real call to the store, and
        // what tells the memory layer whether the store answers.
        let answer = memory.list_sessions(READINESS_PROBE_USER).await.is_ok();
        *last = Some((Instant::now(), answer));
        answer
    }
}

/// Whether this request may see the detailed readiness: always without a keys file,
/// else with a key in force (a wrong one is a failed authentication; a locked-out
/// source gets the public view).
pub fn detailed_view_allowed(
    state: &impl CallerState,
    headers: &HeaderMap,
    source: Source,
) -> bool {
    if !state.auth().requires_key() {
        return true;
    }
    if !headers.contains_key(axum::http::header::AUTHORIZATION) {
        return false;
    }
    state
        .auth_failures()
        .authenticate(state.auth(), headers, source, state.auth_events())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: ArchiveState, last_error: Option<&str>) -> ArchiveStatus {
        ArchiveStatus {
            state,
            lag_messages: 4,
            lag_seconds: 2.0,
            written_total: 0,
            rehydrations_total: 0,
            last_error: last_error.map(str::to_string),
        }
    }

    #[test]
    fn a_down_archive_is_one_warning() {
        assert_eq!(archive_warning(&status(ArchiveState::Ok, None), &[]), None);
        let down = status(ArchiveState::Down, Some("connection refused"));
        let warning = archive_warning(&down, &[]).expect("a warning");
        assert!(
            warning.contains("connection refused") && warning.contains("4 message(s)"),
            "{warning}"
        );
        // The store's own warning already says it: not twice.
        let store_says = vec!["the archive x is not answering (connection refused)".to_string()];
        assert_eq!(archive_warning(&down, &store_says), None);
    }
}
