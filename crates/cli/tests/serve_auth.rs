//! `ragchat serve` start-up checks, key reload on SIGHUP, and the error rows through a
//! real process with a configured message limit.

mod serve_support;

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use serve_support::*;

#[test]
fn refuses_a_bad_keys_file_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(
        &keys,
        "# keys\nalice-key-0123456789abcdef alice\nshort bob\n",
    )
    .unwrap();
    let out = ragchat(dir.path())
        .args([
            "serve",
            "--addr",
            &format!("127.0.0.1:{}", ragchat_testkit::free_port()),
        ])
        .arg("--api-keys")
        .arg(&keys)
        .output()
        .expect("run ragchat serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("keys.txt: line 3") && stderr.contains("shorter than 16"),
        "{stderr}"
    );
}

#[test]
fn refuses_a_public_address_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = ragchat(dir.path())
        .args([
            "serve",
            "--addr",
            &format!("0.0.0.0:{}", ragchat_testkit::free_port()),
        ])
        .output()
        .expect("run ragchat serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to serve on 0.0.0.0") && stderr.contains("--api-keys"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_keys_file() {
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(dir.path());
    let server = Server::start(&["--api-keys", keys.to_str().unwrap()]);
    let sessions = format!("{}/v1/sessions", server.url());
    let carol = "carol-key-0123456789abcdef";
    get(&sessions, Some(carol))
        .await
        .expect_error(401, "unauthorized");
    assert_eq!(get(&sessions, Some(ALICE_KEY)).await.status, 200);

    // A broken file is refused; the keys it still lists stay in force.
    std::fs::write(&keys, format!("{ALICE_KEY} alice\nnot a keys file line\n")).unwrap();
    server.signal("HUP");
    eventually(
        "the failed reload to be logged",
        Duration::from_secs(20),
        || async {
            server
                .log()
                .contains("cannot reload the API keys")
                .then_some(())
        },
    )
    .await;
    assert_eq!(get(&sessions, Some(ALICE_KEY)).await.status, 200);
    get(&sessions, Some(BOB_KEY))
        .await
        .expect_error(401, "unauthorized");

    std::fs::write(&keys, format!("{carol} carol\n")).unwrap();
    server.signal("HUP");
    eventually("carol's key to work", Duration::from_secs(20), || async {
        (get(&sessions, Some(carol)).await.status == 200).then_some(())
    })
    .await;
    get(&sessions, Some(ALICE_KEY))
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_requests_answer_in_json_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(dir.path());
    let server = Server::start(&[
        "--api-keys",
        keys.to_str().unwrap(),
        "--max-message-bytes",
        "2000",
    ]);
    let base = server.url();
    let messages = format!("{base}/v1/sessions/s/messages");

    post_message(&base, "s", None, "hi")
        .await
        .expect_error(401, "unauthorized");
    post_message(&base, "s", Some("wrong-key-0123456789abcdef"), "hi")
        .await
        .expect_error(401, "unauthorized");
    post_message(&base, "bad:id", Some(ALICE_KEY), "hi")
        .await
        .expect_error(400, "invalid_input");
    post_message(&base, "s", Some(ALICE_KEY), "")
        .await
        .expect_error(400, "invalid_input");
    post_message(&base, "s", Some(ALICE_KEY), &"x".repeat(2001))
        .await
        .expect_error(413, "payload_too_large");
    // Bodies may be 6x the message limit (JSON escapes) plus 4 KiB: this is over.
    let big_body = json!({"content": "hi", "padding": "y".repeat(20_000)});
    call(Method::POST, &messages, Some(ALICE_KEY), Some(big_body))
        .await
        .expect_error(413, "payload_too_large");
    let malformed = client()
        .post(&messages)
        .bearer_auth(ALICE_KEY)
        .header("content-type", "application/json")
        .body("{\"content\": \"unterminated")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: serde_json::Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json", "{body}");
    get(&format!("{messages}?after=not-an-id"), Some(ALICE_KEY))
        .await
        .expect_error(400, "invalid_input");

    let listed = get(&format!("{base}/v1/sessions"), Some(ALICE_KEY))
        .await
        .json();
    assert_eq!(
        listed["sessions"],
        json!([]),
        "nothing was stored: {listed}"
    );
    let exported = get(&format!("{base}/v1/export"), Some(ALICE_KEY))
        .await
        .json();
    assert_eq!(exported["sessions"], json!([]));

    // A message at the limit is fine.
    let at_limit = format!("{} gradient descent?", "x".repeat(1982));
    assert_eq!(at_limit.len(), 2000);
    assert_eq!(
        post_message(&base, "s", Some(ALICE_KEY), &at_limit)
            .await
            .status,
        200
    );
}
