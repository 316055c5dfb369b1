//! `ragchat serve` while its Redis is down: `/readyz` says degraded, turns go to the
//! local journal, `/metrics` shows it; when Redis is back the journal drains, `/readyz`
//! says normal, and another server sees the turn. SIGTERM then exits 0.

mod serve_support;

use std::time::Duration;

use ragchat_testkit::{assert_prometheus_text, metric};
use serve_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_store_and_the_journal_drains() {
    let Some(mut redis) = ragchat_testkit::durable_redis_or_skip() else {
        return;
    };
    let store = redis.url();
    let mut a = Server::start(&["--store", &store]);
    let base = a.url();
    let ok = post_message(&base, "s", None, "What is supervised learning?").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let ready = get(&format!("{base}/readyz"), None).await.json();
    assert_eq!(
        (ready["mode"].as_str(), ready["ready"].as_bool()),
        (Some("normal"), Some(true))
    );

    redis.stop();
    let ready = eventually(
        "readyz to report degraded",
        Duration::from_secs(20),
        || async {
            let reply = get(&format!("{base}/readyz"), None).await;
            let body = reply.json();
            (body["mode"] == "degraded").then_some((reply.status, body))
        },
    )
    .await;
    assert_eq!(
        ready.0, 200,
        "the journal stands in, so still ready: {}",
        ready.1
    );
    assert_eq!(ready.1["ready"], true);

    let journaled = post_message(&base, "s", None, "And unsupervised learning?").await;
    assert_eq!(
        journaled.status, 200,
        "answered from the journal: {}",
        journaled.text
    );
    let ready = get(&format!("{base}/readyz"), None).await.json();
    assert_eq!(ready["pending_sync"], 2, "{ready}");
    let unavailable = get(&format!("{base}/v1/sessions"), None).await;
    unavailable.expect_error(503, "store_unavailable");
    assert!(unavailable.headers.contains_key("retry-after"));

    let metrics = get(&format!("{base}/metrics"), None).await.text;
    assert_prometheus_text(&metrics);
    assert_eq!(metric(&metrics, "ragchat_degraded"), Some(1.0), "{metrics}");
    assert_eq!(
        metric(&metrics, "ragchat_journal_pending_messages"),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "ragchat_turns_journaled_total"),
        Some(1.0),
        "{metrics}"
    );

    redis.start_again();
    let ready = eventually("the journal to drain", Duration::from_secs(30), || async {
        let body = get(&format!("{base}/readyz"), None).await.json();
        (body["mode"] == "normal" && body["pending_sync"] == 0).then_some(body)
    })
    .await;
    assert_eq!(ready["ready"], true);
    let metrics = get(&format!("{base}/metrics"), None).await.text;
    assert_prometheus_text(&metrics);
    assert_eq!(metric(&metrics, "ragchat_degraded"), Some(0.0), "{metrics}");

    // Another server, with its own data dir, reads the replayed turn from Redis.
    let b = Server::start(&["--store", &store]);
    let page = get(&format!("{}/v1/sessions/s/messages", b.url()), None)
        .await
        .json();
    let contents: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents.len(), 4, "{page}");
    assert_eq!(contents[2], "And unsupervised learning?");

    let status = a.terminate();
    assert!(status.success(), "SIGTERM exits 0: {status}\n{}", a.log());
    assert!(a.log().contains("stopped"), "{}", a.log());
}
