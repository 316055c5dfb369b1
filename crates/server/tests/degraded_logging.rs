//! One WARN line per degraded episode, not one per journaled turn (issue 11), and a
//! summary when the episode ends.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use ragchat_memory::{open_store, JournalConfig, ManagerConfig, SessionManager, StoreOptions};
use ragchat_testkit::durable_redis_or_skip;

/// Collects what the log subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_string)
            .collect()
    }
}

// One thread, so that the log subscriber set for this test sees every task's events.
#[tokio::test(flavor = "current_thread")]
async fn an_outage_logs_one_warning_and_a_summary() {
    let Some(mut redis) = durable_redis_or_skip() else {
        return;
    };
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        connect_timeout: Duration::from_millis(250),
        command_timeout: Duration::from_millis(250),
        lazy: true,
        ..StoreOptions::default()
    };
    let store = open_store(&redis.url(), &opts).await.unwrap();
    let memory = SessionManager::with_journal(
        store,
        ManagerConfig {
            journal: Some(JournalConfig {
                path: dir.path().join("journal.db"),
                max_bytes: 1 << 30,
            }),
            replay_interval: Duration::from_millis(100),
            ..ManagerConfig::default()
        },
    )
    .unwrap();
    let app = ragchat_server::app(state(engine(memory.clone()), keys_auth(dir.path())));
    let reply = post_message(&app, "s", Some(ALICE_KEY), "What is overfitting?").await;
    assert_eq!(reply.status, StatusCode::OK);
    // Only what the outage below logs is counted (a loaded machine may have had a
    // store call time out before it).
    let before = captured.lines().len();

    redis.stop();
    let turns = 25;
    for _ in 0..turns {
        let reply = post_message(&app, "s", Some(ALICE_KEY), "How do I avoid it?").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    assert_eq!(
        memory.status().await.unwrap().pending_sync,
        2 * turns as u64
    );
    let warnings: Vec<String> = captured.lines()[before..]
        .iter()
        .filter(|l| l.contains(" WARN "))
        .cloned()
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning for the whole outage, not one per turn: {warnings:#?}"
    );

    redis.start_again();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = memory.status().await.unwrap();
        if status.pending_sync == 0 && status.mode == ragchat_memory::Mode::Normal {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lines = captured.lines()[before..].to_vec();
    let summary = lines
        .iter()
        .find(|l| l.contains("answers again") && l.contains(&format!("{} appends", turns)))
        .unwrap_or_else(|| panic!("no summary of the episode: {lines:#?}"));
    assert!(summary.contains("journaled"), "{summary}");
    let warnings = lines.iter().filter(|l| l.contains(" WARN ")).count();
    assert_eq!(warnings, 1, "{lines:#?}");
}
