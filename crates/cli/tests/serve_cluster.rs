//! Two `ragchat serve` processes on one Redis: a conversation continues across servers,
//! reads the same from either, survives `kill -9` of a server, and stays private to its
//! user on every server. Also `ragchat bench http` against the pair.

mod serve_support;

use std::process::Stdio;

use reqwest::Method;
use serde_json::Value;
use serve_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_moves_between_servers_and_survives_kill_9() {
    let Some(redis) = ragchat_testkit::durable_redis_or_skip() else {
        return;
    };
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = write_keys(keys_dir.path());
    let keys = keys.to_str().unwrap();
    let store = redis.url();
    let args = ["--store", &store, "--api-keys", keys];
    let mut a = Server::start(&args);
    let b = Server::start(&args);

    let first = post_message(&a.url(), "ml", Some(ALICE_KEY), "What is machine learning?").await;
    assert_eq!(first.status, 200, "{}", first.text);
    let first = first.json();
    assert!(
        source_paths(&first["answer"]).contains(&"what-is-machine-learning.md".to_string()),
        "{first}"
    );
    let follow = post_message(&b.url(), "ml", Some(ALICE_KEY), "How does it learn?").await;
    assert_eq!(follow.status, 200, "{}", follow.text);
    let follow = follow.json();
    assert!(
        source_paths(&follow["answer"]).contains(&"how-models-learn.md".to_string()),
        "server B resolved the follow-up with server A's turn: {follow}"
    );

    let history = |base: String| async move {
        let reply = get(&format!("{base}/v1/sessions/ml/messages"), Some(ALICE_KEY)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json()
    };
    let from_a = history(a.url()).await;
    let from_b = history(b.url()).await;
    assert_eq!(from_a, from_b, "both servers show the same history");
    let messages = from_a["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[0], first["user_message"]);
    assert_eq!(messages[1], first["answer"]);
    assert_eq!(messages[2], follow["user_message"]);
    assert_eq!(messages[3], follow["answer"]);

    a.restart();
    assert_eq!(
        history(a.url()).await,
        from_a,
        "history intact after kill -9"
    );

    // The second user sees nothing of the first one's, on either server, and cannot
    // tell the session from one that does not exist.
    for server in [&a, &b] {
        let base = server.url();
        for (method, path) in [
            (Method::GET, "/v1/sessions/{}/messages"),
            (Method::GET, "/v1/sessions/{}/stats"),
            (Method::DELETE, "/v1/sessions/{}"),
        ] {
            let theirs = call(
                method.clone(),
                &format!("{base}{}", path.replace("{}", "ml")),
                Some(BOB_KEY),
                None,
            )
            .await;
            let missing = call(
                method.clone(),
                &format!("{base}{}", path.replace("{}", "zz")),
                Some(BOB_KEY),
                None,
            )
            .await;
            theirs.expect_error(404, "not_found");
            assert_eq!(theirs.status, missing.status);
            let (theirs, missing) = (theirs.json(), missing.json());
            assert_eq!(theirs["error"]["code"], missing["error"]["code"]);
            let message = |v: &Value, name: &str| {
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .replace(&format!("\"{name}\""), "X")
            };
            assert_eq!(message(&theirs, "ml"), message(&missing, "zz"));
        }
        let listed = get(&format!("{base}/v1/sessions"), Some(BOB_KEY))
            .await
            .json();
        assert_eq!(listed["sessions"], Value::Array(vec![]));
        let exported = get(&format!("{base}/v1/export"), Some(BOB_KEY))
            .await
            .json();
        assert_eq!(exported["sessions"], Value::Array(vec![]));
    }
    // Bob streaming into "ml" writes his own session, not alice's.
    let request = client()
        .post(format!("{}/v1/sessions/ml/messages", b.url()))
        .bearer_auth(BOB_KEY)
        .header("accept", "text/event-stream")
        .json(&serde_json::json!({"content": "What is a decision tree?"}));
    let streamed = request.send().await.unwrap().text().await.unwrap();
    assert!(streamed.contains("event: done"), "{streamed}");
    let erased = call(
        Method::DELETE,
        &format!("{}/v1/me", a.url()),
        Some(BOB_KEY),
        None,
    )
    .await
    .json();
    assert_eq!(erased["deleted_sessions"], 1);
    assert_eq!(
        history(b.url()).await,
        from_a,
        "alice's session is untouched"
    );
    let alice_sessions = get(&format!("{}/v1/sessions", b.url()), Some(ALICE_KEY))
        .await
        .json();
    assert_eq!(alice_sessions["sessions"][0]["session"], "ml");
    assert_eq!(alice_sessions["sessions"][0]["message_count"], 4);

    let ready = get(&format!("{}/readyz", a.url()), Some(ALICE_KEY))
        .await
        .json();
    assert_eq!(ready["redis_persistence"], "aof", "{ready}");
    assert_eq!(ready["mode"], "normal");

    // The load generator, briefly, against both servers.
    let out = ragchat(keys_dir.path())
        .args([
            "bench",
            "http",
            "--url",
            &format!("{},{}", a.url(), b.url()),
        ])
        .args([
            "--concurrency",
            "4",
            "--duration",
            "1",
            "--api-key",
            ALICE_KEY,
            "--json",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("run bench http");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let bench: Value = serde_json::from_slice(&out.stdout).expect("bench JSON");
    assert_eq!(bench["concurrency"], 4);
    assert_eq!(bench["errors"], 0, "{bench}");
    assert!(bench["turns"].as_u64().unwrap() > 0, "{bench}");
    for field in ["url", "duration_s", "turns_per_s", "p50_ms", "p99_ms"] {
        assert!(!bench[field].is_null(), "{field} missing: {bench}");
    }
    let shares: f64 = bench["phase_share"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((shares - 1.0).abs() < 1e-6, "{bench}");
    let sessions = get(&format!("{}/v1/sessions", a.url()), Some(ALICE_KEY))
        .await
        .json();
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        5,
        "each bench client used its own session: {sessions}"
    );
}
