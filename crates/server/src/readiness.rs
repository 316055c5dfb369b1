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

use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use ragchat_memory::{Mode, SessionManager};
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
