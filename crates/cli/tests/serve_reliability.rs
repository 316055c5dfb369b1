//! Reliability of the HTTP servers under load: `kill -9` of a server while 32 clients
//! chat through it, and two servers writing to the same conversations at once.

mod serve_support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use serve_support::*;

const CLIENTS: usize = 32;

/// One turn; `None` when the request failed or did not get a 200.
async fn try_turn(
    client: &reqwest::Client,
    base: &str,
    session: &str,
    content: &str,
) -> Option<Value> {
    let response = client
        .post(format!("{base}/v1/sessions/{session}/messages"))
        .bearer_auth(ALICE_KEY)
        .json(&serde_json::json!({ "content": content }))
        .send()
        .await
        .ok()?;
    if response.status() != 200 {
        return None;
    }
    response.json().await.ok()
}

/// Every message id of a session, oldest first, through `base`.
async fn message_ids(base: &str, session: &str) -> Vec<String> {
    let reply = get(
        &format!("{base}/v1/sessions/{session}/messages?limit=10000"),
        Some(ALICE_KEY),
    )
    .await;
    if reply.status == 404 {
        return Vec::new();
    }
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// The stored ids of `session` once `done` holds for them, or as they are after 30 s.
/// A turn a server answered from its journal (Redis too slow on a loaded machine) is
/// stored once the journal replays, a moment later; the checks that follow stay exact.
async fn message_ids_once(
    base: &str,
    session: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ids = message_ids(base, session).await;
        if done(&ids) || std::time::Instant::now() >= deadline {
            return ids;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_keeps_every_answered_turn_once() {
    kill_9_under_load(false).await;
}

/// The same beside a server of the last v1 release, which appends to the same
/// conversations straight to Redis all along (a rolling deploy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_beside_a_v1_server_keeps_every_acknowledged_message_once() {
    kill_9_under_load(true).await;
}

/// A v1 server's appends to the load's sessions, round robin, until `stop`: the ids of
/// those Redis acknowledged, by session.
async fn v1_server(url: String, stop: Arc<AtomicBool>) -> HashMap<String, Vec<String>> {
    let mut acknowledged: HashMap<String, Vec<String>> = HashMap::new();
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        let session = format!("load-{}", i % CLIENTS);
        let key = ragchat_memory::SessionKey::new("alice", session.as_str()).unwrap();
        let m = ragchat_memory::Message::user(format!("from a v1 server ({i})"));
        let sent = ragchat_memory::backend::redis::v1::append(
            &url,
            &key,
            std::slice::from_ref(&m),
            3600,
            0,
        )
        .await;
        if sent.is_ok() {
            acknowledged
                .entry(session)
                .or_default()
                .push(m.id.to_string());
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    acknowledged
}

async fn kill_9_under_load(beside_v1: bool) {
    let Some(redis) = ragchat_testkit::durable_redis_or_skip() else {
        return;
    };
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = write_keys(keys_dir.path());
    let store = redis.url();
    let args = [
        "--store",
        store.as_str(),
        "--api-keys",
        keys.to_str().unwrap(),
    ];
    let mut victim = Server::start(&args);
    let survivor = Server::start(&args);
    let victim_url = victim.url();
    let stop = Arc::new(AtomicBool::new(false));
    let old = beside_v1.then(|| tokio::spawn(v1_server(redis.url(), stop.clone())));
    let turns = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let stop = stop.clone();
            let turns = turns.clone();
            let base = victim_url.clone();
            tokio::spawn(async move {
                let http = client();
                let session = format!("load-{c}");
                let mut answered: Vec<String> = Vec::new();
                let mut failed = 0;
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    match try_turn(
                        &http,
                        &base,
                        &session,
                        &format!("What is overfitting? ({i})"),
                    )
                    .await
                    {
                        Some(body) => {
                            answered.push(body["user_message"]["id"].as_str().unwrap().to_string());
                            answered.push(body["answer"]["id"].as_str().unwrap().to_string());
                            turns.fetch_add(1, Ordering::SeqCst);
                        }
                        None => {
                            failed += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    i += 1;
                }
                (session, answered, failed)
            })
        })
        .collect();
    // Under load until at least CLIENTS turns were answered (however slow the machine),
    // and at least 1.5 s; then the kill lands mid-turn for most clients.
    let started = std::time::Instant::now();
    while turns.load(Ordering::SeqCst) < CLIENTS || started.elapsed() < Duration::from_millis(1500)
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the server answered only {} turns in 120 s",
            turns.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    victim.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut results = Vec::new();
    for c in clients {
        results.push(c.await.unwrap());
    }
    let mut from_v1 = match old {
        Some(old) => old.await.unwrap(),
        None => HashMap::new(),
    };
    if beside_v1 {
        let total: usize = from_v1.values().map(Vec::len).sum();
        assert!(total >= CLIENTS, "the v1 server did too little: {total}");
    }
    tokio::task::block_in_place(|| victim.restart());
    let mut answered_total = 0;
    let mut failed_total = 0;
    for (session, answered, failed) in &mut results {
        answered_total += answered.len() / 2;
        failed_total += *failed;
        // The v1 server's acknowledged messages must be there, once, too.
        answered.extend(from_v1.remove(session.as_str()).unwrap_or_default());
        let answered = &*answered;
        for base in [victim.url(), survivor.url()] {
            let stored = message_ids_once(&base, session, |ids| {
                answered.iter().all(|id| ids.contains(id))
            })
            .await;
            let unique: HashSet<&String> = stored.iter().collect();
            assert_eq!(
                unique.len(),
                stored.len(),
                "{session}: a message is stored twice"
            );
            for id in answered {
                assert!(
                    unique.contains(id),
                    "{session}: answered message {id} is missing after kill -9"
                );
            }
        }
    }
    eprintln!("kill -9 under load: {answered_total} turns answered (200), {failed_total} failed requests around the kill");
    assert!(
        answered_total >= CLIENTS,
        "too little load: {answered_total}"
    );
    assert!(
        failed_total > 0,
        "the kill should have broken some requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_writing_to_the_same_conversations_keep_exact_counts() {
    let Some(redis) = ragchat_testkit::redis_or_skip() else {
        return;
    };
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = write_keys(keys_dir.path());
    let store = redis.url();
    let args = [
        "--store",
        store.as_str(),
        "--api-keys",
        keys.to_str().unwrap(),
    ];
    let a = Server::start(&args);
    let b = Server::start(&args);
    let sessions = 8;
    let turns = 10;
    // Two clients per conversation, one on each server, sending at the same time.
    let clients: Vec<_> = (0..sessions * 2)
        .map(|c| {
            let base = if c % 2 == 0 { a.url() } else { b.url() };
            tokio::spawn(async move {
                let http = client();
                let session = format!("shared-{}", c / 2);
                let mut answered = 0;
                for i in 0..turns {
                    let body = try_turn(
                        &http,
                        &base,
                        &session,
                        &format!("client {c} question {i}: what is a decision tree?"),
                    )
                    .await
                    .unwrap_or_else(|| panic!("client {c}: turn {i} failed"));
                    assert_eq!(body["answer"]["status"], "complete");
                    answered += 1;
                }
                (session, answered)
            })
        })
        .collect();
    let mut per_session: HashMap<String, usize> = HashMap::new();
    for c in clients {
        let (session, answered) = c.await.unwrap();
        *per_session.entry(session).or_default() += answered;
    }
    for (session, answered) in per_session {
        let from_a = message_ids_once(&a.url(), &session, |ids| ids.len() >= answered * 2).await;
        let from_b = message_ids_once(&b.url(), &session, |ids| ids.len() >= answered * 2).await;
        assert_eq!(
            from_a.len(),
            answered * 2,
            "{session}: exactly two messages per turn"
        );
        assert_eq!(
            from_a, from_b,
            "{session}: both servers show the same conversation"
        );
        assert_eq!(
            from_a.iter().collect::<HashSet<_>>().len(),
            from_a.len(),
            "{session}: doubled"
        );
    }
}
