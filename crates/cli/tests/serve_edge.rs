//! `ragchat serve` at its edges, through real processes and sockets: credentials in the
//! LLM URL never shown, a failed key reload never leaves a revoked key working.

mod serve_support;

use std::time::Duration;

use serve_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_credentials_are_never_shown() {
    // Nothing listens on port 9 (discard); the server never calls it before a turn.
    let llm = "http://llm-user:llm-pass@127.0.0.1:9/v1?token=tok-secret&api-version=2024-06-01";
    let server = Server::start(&["--llm-url", llm, "--model", "m-1"]);
    let banner = server.log();
    assert!(banner.contains("ragchat serving"), "{banner}");
    let ready = get(&format!("{}/readyz", server.url()), None).await;
    // The model is unreachable, so the turn is answered offline and says why: that reason
    // names the endpoint, which must stay redacted.
    let failed_turn = post_message(&server.url(), "s", None, "What is ML?").await;
    assert_eq!(failed_turn.status, 200, "{}", failed_turn.text);
    let body: serde_json::Value = serde_json::from_str(&failed_turn.text).unwrap();
    assert_eq!(body["fallback"], true, "{}", failed_turn.text);
    let reason = body["fallback_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("127.0.0.1:9"),
        "the reason names the endpoint: {reason}"
    );
    let log = server.log();
    for (what, text) in [
        ("banner", &banner),
        ("/readyz", &ready.text),
        ("offline turn", &failed_turn.text),
        ("log", &log),
    ] {
        for secret in ["llm-pass", "llm-user", "tok-secret"] {
            assert!(!text.contains(secret), "{what} shows {secret}: {text}");
        }
    }
    assert!(
        banner.contains("127.0.0.1:9/v1/chat/completions?token=***&api-version=2024-06-01"),
        "the banner names the endpoint it calls, redacted: {banner}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reload_never_leaves_a_revoked_key_working() {
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(dir.path());
    let server = Server::start(&["--api-keys", keys.to_str().unwrap()]);
    let sessions = format!("{}/v1/sessions", server.url());
    assert_eq!(get(&sessions, Some(ALICE_KEY)).await.status, 200);
    assert_eq!(get(&sessions, Some(BOB_KEY)).await.status, 200);

    // Bob's key is revoked in an edit that also breaks another line: the file no longer
    // parses, and bob must not keep access while the operator fixes it.
    std::fs::write(
        &keys,
        format!("{ALICE_KEY} alice\ncarol-key-0123456789abcdef carol extra-field\n"),
    )
    .unwrap();
    server.signal("HUP");
    eventually(
        "bob's key to stop working",
        Duration::from_secs(30),
        || async { (get(&sessions, Some(BOB_KEY)).await.status == 401).then_some(()) },
    )
    .await;
    assert_eq!(
        get(&sessions, Some(ALICE_KEY)).await.status,
        200,
        "a key in both the last good file and the new one keeps working"
    );
    get(&sessions, Some("carol-key-0123456789abcdef"))
        .await
        .expect_error(401, "unauthorized");
    assert!(
        server.log().contains("cannot reload the API keys"),
        "{}",
        server.log()
    );
    let ready = get(&format!("{}/readyz", server.url()), Some(ALICE_KEY))
        .await
        .json();
    let warnings = ready["warnings"].to_string();
    assert!(warnings.contains("did not reload"), "{ready}");

    // A missing file: nothing in it, so no key works until it is back.
    std::fs::remove_file(&keys).unwrap();
    server.signal("HUP");
    eventually(
        "alice's key to stop working",
        Duration::from_secs(30),
        || async { (get(&sessions, Some(ALICE_KEY)).await.status == 401).then_some(()) },
    )
    .await;

    // Fixed: the new file is in force and the warning is gone.
    write_keys(dir.path());
    server.signal("HUP");
    eventually(
        "the keys to work again",
        Duration::from_secs(30),
        || async { (get(&sessions, Some(BOB_KEY)).await.status == 200).then_some(()) },
    )
    .await;
    let ready = get(&format!("{}/readyz", server.url()), Some(ALICE_KEY))
        .await
        .json();
    assert!(
        !ready["warnings"].to_string().contains("did not reload"),
        "{ready}"
    );
}

/// `sha256:` and the hex digits of the key's SHA-256.
fn hashed(key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_as_hashes_a_byte_order_mark_and_loose_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    // Written by a Windows editor: a byte order mark before the first key.
    std::fs::write(
        &keys,
        format!("\u{feff}{} alice\n{BOB_KEY} bob\n", hashed(ALICE_KEY)),
    )
    .unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = Server::start(&["--api-keys", keys.to_str().unwrap()]);
    let sessions = format!("{}/v1/sessions", server.url());
    assert_eq!(get(&sessions, Some(ALICE_KEY)).await.status, 200);
    assert_eq!(get(&sessions, Some(BOB_KEY)).await.status, 200);
    get(&sessions, Some(&hashed(ALICE_KEY)))
        .await
        .expect_error(401, "unauthorized");
    let log = server.log();
    assert!(
        log.contains("readable by group or others") && log.contains("1 key(s) in clear"),
        "{log}"
    );

    // Only hashes, owner-only: nothing to warn about.
    std::fs::write(&keys, format!("{} alice\n", hashed(ALICE_KEY))).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let quiet = Server::start(&["--api-keys", keys.to_str().unwrap()]);
    assert!(!quiet.log().contains("warning"), "{}", quiet.log());
}

#[test]
fn a_keys_file_handing_out_an_internal_user_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, format!("{ALICE_KEY} _ragchat-readyz\n")).unwrap();
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
        stderr.contains("line 1") && stderr.contains("reserved"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_set_by_flags_hold_on_a_real_server() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(dir.path());
    let server = Server::start(&[
        "--api-keys",
        keys.to_str().unwrap(),
        "--requests-per-second",
        "2",
        "--header-read-timeout",
        "1",
    ]);
    // A connection that never sends a request is closed after the header-read timeout
    // (waited for with plenty of slack).
    let mut silent = tokio::net::TcpStream::connect(server.url().trim_start_matches("http://"))
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(33), silent.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the silent connection is still open: {closed:?}"
    );

    // Alice's requests until one is refused: no more than the limit let through in
    // the time they took.
    let sessions = format!("{}/v1/sessions", server.url());
    let started = std::time::Instant::now();
    let mut passed = 0;
    let refused = loop {
        let reply = get(&sessions, Some(ALICE_KEY)).await;
        if reply.status == 429 {
            break reply;
        }
        assert_eq!(reply.status, 200, "{}", reply.text);
        passed += 1;
        assert!(passed < 200, "never limited");
    };
    let most = 2 + (started.elapsed().as_secs_f64() * 2.0).ceil() as u32;
    assert!(passed <= most, "{passed} passed, at most {most} allowed");
    refused.expect_error(429, "rate_limited");
    assert!(refused.headers.contains_key("retry-after"));
    // Bob's key has its own bucket.
    assert_eq!(get(&sessions, Some(BOB_KEY)).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_are_counted_logged_sparingly_and_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(dir.path());
    let server = Server::start(&[
        "--api-keys",
        keys.to_str().unwrap(),
        "--auth-lockout-failures",
        "30",
    ]);
    let sessions = format!("{}/v1/sessions", server.url());
    let started = std::time::Instant::now();
    for i in 0..29 {
        get(&sessions, Some(&format!("guess-{i:04}-0123456789abcdef")))
            .await
            .expect_error(401, "unauthorized");
    }
    let lines = |log: &str| log.matches("failed API key authentication").count();
    // At most one line per 10 s, however many failures.
    let most = 1 + (started.elapsed().as_secs() / 10) as usize;
    let logged = lines(&server.log());
    assert!(
        (1..=most).contains(&logged),
        "{logged} lines for 29 failures (at most {most}):\n{}",
        server.log()
    );
    // Still below the threshold: a good key works.
    assert_eq!(get(&sessions, Some(ALICE_KEY)).await.status, 200);

    // The 30th failure locks this address out, good key or not.
    get(&sessions, Some("guess-last-0123456789abcdef"))
        .await
        .expect_error(401, "unauthorized");
    let locked = get(&sessions, Some(ALICE_KEY)).await;
    locked.expect_error(429, "auth_locked");
    assert!(locked.headers.contains_key("retry-after"));
    assert!(
        server.log().contains("refusing this address"),
        "{}",
        server.log()
    );

    let metrics = get(&format!("{}/metrics", server.url()), None).await.text;
    assert_eq!(
        ragchat_testkit::metric(&metrics, "ragchat_auth_failures_total{reason=\"unknown\"}"),
        Some(30.0),
        "{metrics}"
    );
    assert_eq!(
        ragchat_testkit::metric(&metrics, "ragchat_auth_lockouts_total"),
        Some(1.0)
    );
}
