//! `kill -9` of a server with a write-behind archive while 32 clients chat through it:
//! Redis has acknowledged turns the archive has not committed yet; the next server
//! process finds them (its sweep of Redis at start) and the archive ends up holding
//! every acknowledged message exactly once. Real processes, a harness redis-server
//! and PostgreSQL, read directly with `psql`.

mod serve_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ragchat_testkit::PostgresServer;
use serve_support::*;

const CLIENTS: usize = 32;

/// How often each message id of alice is in the archive.
fn archived_ids(pg: &PostgresServer) -> HashMap<String, u64> {
    pg.psql(
        "crash",
        "SELECT id || ' ' || count(*) FROM ragchat_messages WHERE user_id = 'alice' GROUP BY id",
    )
    .lines()
    .filter_map(|l| l.split_once(' '))
    .map(|(id, n)| (id.to_string(), n.parse().unwrap()))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_archives_every_acknowledged_message_once() {
    let Some(redis) = ragchat_testkit::durable_redis_or_skip() else {
        return;
    };
    let Some(pg) = ragchat_testkit::postgres_or_skip() else {
        return;
    };
    pg.create_database("crash");
    let archive = format!(
        "postgres://postgres@127.0.0.1:{}/crash?sslmode=disable",
        pg.port()
    );
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = write_keys(keys_dir.path());
    let store = redis.url();
    let args = [
        "--store",
        store.as_str(),
        "--archive",
        archive.as_str(),
        "--api-keys",
        keys.to_str().unwrap(),
    ];
    let mut victim = Server::start(&args);
    let base = victim.url();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (stop, base) = (stop.clone(), base.clone());
            tokio::spawn(async move {
                let http = client();
                let mut acknowledged = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let sent = http
                        .post(format!("{base}/v1/sessions/crash-{c}/messages"))
                        .bearer_auth(ALICE_KEY)
                        .json(&serde_json::json!({ "content": format!("What is overfitting? ({i})") }))
                        .send()
                        .await;
                    let body: Option<serde_json::Value> = match sent {
                        Ok(r) if r.status() == 200 => r.json().await.ok(),
                        _ => None,
                    };
                    match body {
                        Some(body) => {
                            for part in ["user_message", "answer"] {
                                acknowledged.push(body[part]["id"].as_str().unwrap().to_string());
                            }
                        }
                        None => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                    i += 1;
                }
                acknowledged
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    victim.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    for c in clients {
        acknowledged.extend(c.await.unwrap());
    }
    assert!(
        acknowledged.len() >= 2 * CLIENTS,
        "too little load: {} messages",
        acknowledged.len()
    );
    let at_kill = archived_ids(&pg);
    let missing_at_kill = acknowledged
        .iter()
        .filter(|id| !at_kill.contains_key(*id))
        .count();
    eprintln!(
        "kill -9 with a write-behind archive: {} acknowledged messages, {missing_at_kill} not in the archive yet at the kill",
        acknowledged.len()
    );

    // A new process on the same data dir (its journal, if it took turns, replays) and
    // the same Redis and archive: its sweep at start finds what the dead one left.
    tokio::task::block_in_place(|| victim.restart());
    let archived = eventually(
        "every acknowledged message in the archive",
        Duration::from_secs(60),
        || {
            let ids = archived_ids(&pg);
            let all = acknowledged.iter().all(|id| ids.contains_key(id));
            async move { all.then_some(ids) }
        },
    )
    .await;
    for id in &acknowledged {
        assert_eq!(archived[id], 1, "{id} is archived {} times", archived[id]);
    }
    let doubled: Vec<_> = archived.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "archived more than once: {doubled:?}");
    // And the server agrees with its archive: nothing acknowledged is missing there.
    let ready = get(&format!("{}/readyz", victim.url()), Some(ALICE_KEY))
        .await
        .json();
    assert_eq!(ready["archive"]["state"], "ok", "{ready}");
}
