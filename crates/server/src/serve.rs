//! Running the server on a socket: the HTTP limits (see [`crate::limits`]), graceful
//! shutdown, key reload on SIGHUP, metrics upkeep.
//!
//! On the shutdown signal the listener stops accepting; requests in flight (streams
//! included) and every spawned turn get [`ServerConfig::shutdown_grace`] to finish and
//! be stored; then whatever the local journal still holds gets one replay attempt. What
//! it cannot replay stays in the journal, which is durable, for the next start.
//!
//! [`ServerConfig::shutdown_grace`]: crate::state::ServerConfig::shutdown_grace

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// How often histogram samples are folded into buckets between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Longest the final journal replay may take at shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves [`crate::app`] on `listener` until `shutdown` completes, then shuts down
/// gracefully (see the module docs).
///
/// # Errors
/// When accepting connections fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = CancellationToken::new();
    let background = CancellationToken::new();
    tokio::spawn({
        let stopping = stopping.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections; finishing requests in flight");
            stopping.cancel();
        }
    });
    spawn_upkeep(&state, background.clone());
    spawn_key_reload(&state, background.clone());

    let app = crate::app(state.clone());
    let server = crate::limits::listener::serve_connections(
        listener,
        app,
        state.config().limits,
        stopping.clone(),
    );
    let grace = state.config().shutdown_grace;
    let deadline = async {
        stopping.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result?,
        () = deadline => tracing::warn!(?grace, "requests still open after the shutdown grace period; closing them"),
    }

    let turns = state.turns();
    turns.close();
    if tokio::time::timeout(grace, turns.wait()).await.is_err() {
        tracing::warn!(
            running = turns.len(),
            "turns still running after the shutdown grace period"
        );
    }
    flush(&state).await;
    background.cancel();
    Ok(())
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// Replays what the journal still holds, within [`FLUSH_TIMEOUT`].
async fn flush(state: &AppState) {
    let memory = state.memory();
    let pending = match memory.status().await {
        Ok(status) => status.pending_sync,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the local journal at shutdown");
            return;
        }
    };
    if pending == 0 {
        return;
    }
    match tokio::time::timeout(FLUSH_TIMEOUT, memory.replay_journal()).await {
        Ok(Ok(report)) if report.remaining == 0 => {
            tracing::info!(replayed = report.replayed, "journal flushed to the store");
        }
        Ok(Ok(report)) => tracing::warn!(
            remaining = report.remaining,
            "the store did not take every journaled message; they stay in the journal for the next start"
        ),
        Ok(Err(e)) => tracing::warn!(error = %e, "journal replay failed; messages stay in the journal"),
        Err(_) => tracing::warn!("journal replay timed out; messages stay in the journal"),
    }
}

fn spawn_upkeep(state: &AppState, stop: CancellationToken) {
    let metrics = state.metrics().clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => metrics.upkeep(),
                () = stop.cancelled() => break,
            }
        }
    });
}

/// Re-reads the keys file on every SIGHUP (Unix only). Without a keys file SIGHUP is
/// still caught, so it does not kill the server.
fn spawn_key_reload(state: &AppState, stop: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP: API keys will not be reloaded");
                return;
            }
        };
        let auth = state.auth().clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    received = hangup.recv() => {
                        if received.is_none() {
                            break;
                        }
                        // A failure is logged by the reload, with what stays in force.
                        match auth.reload() {
                            Ok(_) if !auth.requires_key() => tracing::info!("SIGHUP: no API keys file to reload"),
                            Ok(count) => tracing::info!(keys = count, "reloaded the API keys"),
                            Err(_) => {}
                        }
                    }
                    () = stop.cancelled() => break,
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (state, stop);
}
