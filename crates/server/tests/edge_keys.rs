//! Keys on a real socket: per-key rate limits and the failed-authentication lockout
//! answer 429 with `Retry-After`, and `/readyz` and `/metrics` show a caller without a
//! key only what monitoring needs. Bounds are derived from the configured limits and
//! the time the requests took, never from how fast this machine is.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::raw_http::*;
use common::*;
use ragchat_rag::{Answer, AnswerRequest, Answerer};
use ragchat_server::auth::{Auth, LockoutConfig};
use ragchat_server::ratelimit::RateLimitConfig;
use ragchat_server::AppState;

const CAROL_KEY: &str = "carol-key-0123456789abcdef";

/// Alice and carol are limited in the keys file; bob follows the server's limits.
fn limited_keys(dir: &std::path::Path) -> Auth {
    let path = dir.join("keys.txt");
    std::fs::write(
        &path,
        format!(
            "{ALICE_KEY} alice turns-per-minute=1\n{BOB_KEY} bob\n{CAROL_KEY} carol requests-per-second=1\n"
        ),
    )
    .unwrap();
    Auth::from_file(path).expect("keys parse")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(manager("memory://").await);
    let config = config(&engine, |c| {
        c.rate_limits = RateLimitConfig {
            turns_per_minute: 0,
            requests_per_second: 1000,
        };
    });
    let state = AppState::new(engine, limited_keys(dir.path()), config);
    let addr = serve(state.clone()).await;
    let turn = r#"{"content":"What is a neural network?"}"#;

    // One turn a minute for alice: the second is refused before anything runs.
    let first = raw(
        addr,
        "POST",
        "/v1/sessions/s/messages",
        Some(ALICE_KEY),
        turn,
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let second = raw(
        addr,
        "POST",
        "/v1/sessions/s/messages",
        Some(ALICE_KEY),
        turn,
    )
    .await;
    assert_eq!(second.status, 429, "{}", second.body);
    let error = &second.json()["error"];
    assert_eq!(error["code"], "rate_limited");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("1 chat turns per minute"),
        "{error}"
    );
    let wait: u64 = second
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let key = ragchat_memory::SessionKey::new("alice", "s").unwrap();
    assert_eq!(
        state.memory().history(&key).await.unwrap().len(),
        2,
        "the refused turn stored nothing"
    );

    // One request a second for carol: requests until one is refused; no more passed
    // than the limit allows in the time they took.
    let started = Instant::now();
    let mut passed = 0;
    let refused = loop {
        let reply = raw(addr, "GET", "/v1/sessions", Some(CAROL_KEY), "").await;
        match reply.status {
            200 => passed += 1,
            429 => break reply,
            other => panic!("{other}: {}", reply.body),
        }
        assert!(passed < 100, "carol was never limited");
    };
    let most = 1 + started.elapsed().as_secs_f64().ceil() as u32;
    assert!(
        (1..=most).contains(&passed),
        "{passed} passed, at most {most} allowed"
    );
    assert_eq!(refused.json()["error"]["code"], "rate_limited");
    assert!(refused.header("retry-after").is_some());

    // Bob has his own buckets and the server's limits.
    let bob = raw(addr, "POST", "/v1/sessions/s/messages", Some(BOB_KEY), turn).await;
    assert_eq!(bob.status, 200, "{}", bob.body);
    let bob = raw(addr, "POST", "/v1/sessions/s/messages", Some(BOB_KEY), turn).await;
    assert_eq!(bob.status, 200, "{}", bob.body);

    let metrics = raw(addr, "GET", "/metrics", None, "").await.body;
    assert!(
        metrics.contains("ragchat_rate_limited_total{limit=\"turns\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_keeps_failing_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(manager("memory://").await);
    let config = config(&engine, |c| {
        c.lockout = LockoutConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(60),
        };
    });
    let addr = serve(AppState::new(engine, keys_auth(dir.path()), config)).await;
    for key in [
        Some("wrong-key-0123456789abc"),
        None,
        Some("another-wrong-key-01234"),
    ] {
        let reply = raw(addr, "GET", "/v1/sessions", key, "").await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    // Locked out now, even with a good key.
    let locked = raw(addr, "GET", "/v1/sessions", Some(ALICE_KEY), "").await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert_eq!(locked.json()["error"]["code"], "auth_locked");
    let wait: u64 = locked
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");

    let metrics = raw(addr, "GET", "/metrics", None, "").await.body;
    for expected in [
        "ragchat_auth_failures_total{reason=\"unknown\"} 2",
        "ragchat_auth_failures_total{reason=\"missing\"} 1",
        "ragchat_auth_lockouts_total 1",
        "ragchat_auth_locked_refusals_total 1",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_and_metrics_without_a_key_show_only_what_monitoring_needs() {
    let dir = tempfile::tempdir().unwrap();
    let memory = manager("memory://").await;
    let answerer = Arc::new(Named(
        "openai:secret-model at http://***@llm.internal/v1".into(),
    ));
    let engine = engine_with(memory, answerer);
    let config = config(&engine, |_| {});
    let addr = serve(AppState::new(engine, keys_auth(dir.path()), config)).await;

    let public = raw(addr, "GET", "/readyz", None, "").await;
    assert_eq!(public.status, 200);
    let body = public.json();
    let mut fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["mode", "ready", "warning_count"], "{body}");
    let wrong = raw(addr, "GET", "/readyz", Some("wrong-key-0123456789abc"), "").await;
    assert_eq!(wrong.json(), body, "a wrong key sees no more");

    let detailed = raw(addr, "GET", "/readyz", Some(ALICE_KEY), "")
        .await
        .json();
    assert_eq!(detailed["store"], "memory://");
    assert!(detailed["answerer"]
        .as_str()
        .unwrap()
        .contains("secret-model"));

    let metrics = raw(addr, "GET", "/metrics", None, "").await.body;
    for secret in ["secret-model", "llm.internal", "memory://", ALICE_KEY] {
        assert!(!metrics.contains(secret), "/metrics shows {secret}");
    }
}

/// An answerer that only has a name.
struct Named(String);

#[async_trait]
impl Answerer for Named {
    fn describe(&self) -> String {
        self.0.clone()
    }

    async fn answer(
        &self,
        _request: &AnswerRequest,
        _sink: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> ragchat_rag::Result<Answer> {
        Ok(Answer {
            text: "named".into(),
            sources: Vec::new(),
            fallback: None,
        })
    }
}
