//! `ragchat sessions migrate` through the real binary: SQLite files in temp dirs seeded
//! directly through `SqliteStore`, a private PostgreSQL from the testkit (skipped when
//! PostgreSQL is not installed, outside CI). Every check compares every session of both
//! stores message by message.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use ragchat_memory::backend::sqlite::SqliteStore;
use ragchat_memory::store::AppendOptions;
use ragchat_memory::{
    open_store, Message, Quotas, ReadFrom, ReadLimit, SessionKey, SessionStore, SourceRef,
    StoreOptions, Ttl,
};
use ragchat_testkit::postgres_or_skip;
use serde_json::Value;

fn ragchat(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ragchat"));
    cmd.env_remove("RAGCHAT_STORE")
        .env_remove("RAGCHAT_REDIS_URL")
        .env_remove("RAGCHAT_TTL")
        .env_remove("RAGCHAT_LOG")
        .args(["sessions", "migrate"])
        .args(args);
    cmd
}

fn migrate(args: &[&str]) -> Output {
    ragchat(args).output().expect("run ragchat")
}

/// The `--json` summary of a run that must succeed.
fn migrate_json(from: &str, to: &str, more: &[&str]) -> Value {
    let mut args = vec!["--from", from, "--to", to, "--json"];
    args.extend_from_slice(more);
    let out = migrate(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "migrate failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Seeds `users` x `per_user` sessions of 4 messages (the answers cite sources) straight
/// into an SQLite file; every seventh session gets a title from a person, and session
/// `s00` of each user is trimmed to its last 3 messages, so its first question is gone.
/// Returns the messages stored.
fn seed(path: &Path, users: usize, per_user: usize) -> u64 {
    runtime().block_on(async {
        let store = SqliteStore::open(path).await.expect("open the source");
        let mut total = 0;
        for u in 0..users {
            for s in 0..per_user {
                let key = SessionKey::new(format!("user{u:03}"), format!("s{s:02}")).unwrap();
                let cite = SourceRef {
                    path: format!("docs/{u}.md"),
                    heading: Some("Basics".into()),
                    score: 1.5,
                    line_start: Some(3),
                    line_end: Some(9),
                    conversation: None,
                };
                let messages = vec![
                    Message::user(format!("What is topic {u}/{s}?")),
                    Message::assistant(format!("Topic {u}/{s} is ...")).with_sources(vec![cite]),
                    Message::user("And then?"),
                    Message::assistant("Then — ünïcode too."),
                ];
                let opts = AppendOptions {
                    ttl: Ttl::NEVER,
                    max_messages: if s == 0 { 3 } else { 0 },
                    refresh_ttl: true,
                    quotas: Quotas::UNBOUNDED,
                };
                let outcome = store.append(&key, &messages, opts).await.unwrap();
                total += outcome.meta.message_count;
                if (u * per_user + s) % 7 == 0 {
                    assert!(store
                        .set_title(&key, Some("Named by a person"))
                        .await
                        .unwrap());
                }
            }
        }
        total
    })
}

/// Every session of a store: `user/session` -> (title, message count, messages). The
/// reads make every session's TTL `never`.
type Contents = BTreeMap<String, (Option<String>, u64, Vec<Message>)>;

async fn contents_of(store: &dyn SessionStore) -> Contents {
    let mut all = Contents::new();
    let mut after: Option<String> = None;
    loop {
        let users = store.users(after.as_deref(), 7).await.expect("users");
        for user in &users {
            let mut cursor = None;
            loop {
                let page = store.list(user, cursor.as_ref(), 50).await.expect("list");
                for s in page.sessions {
                    let key = SessionKey::new(user, &s.session).unwrap();
                    let mut messages = Vec::new();
                    let mut seq = 0;
                    loop {
                        let read = store
                            .load(
                                &key,
                                ReadFrom::After(seq),
                                ReadLimit::new(3, 1 << 20),
                                Ttl::NEVER,
                            )
                            .await
                            .expect("load")
                            .expect("listed sessions exist");
                        messages.extend(read.messages.iter().map(|(_, m)| m.clone()));
                        match read.last_seq_read() {
                            Some(last) if read.more => seq = last,
                            _ => break,
                        }
                    }
                    let previous =
                        all.insert(key.to_string(), (s.title, s.message_count, messages));
                    assert!(previous.is_none(), "{key} listed twice");
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        if users.len() < 7 {
            return all;
        }
        after = users.last().cloned();
    }
}

fn contents(url: &str) -> Contents {
    runtime().block_on(async {
        let store: Arc<dyn SessionStore> = open_store(url, &StoreOptions::default())
            .await
            .expect("open");
        contents_of(store.as_ref()).await
    })
}

/// Asserts that both stores hold the same sessions with the same messages (ids, roles,
/// content, sources, times, status), counts and titles.
fn assert_same(from: &str, to: &str) -> Contents {
    let source = contents(from);
    let target = contents(to);
    assert_eq!(
        source.keys().collect::<Vec<_>>(),
        target.keys().collect::<Vec<_>>(),
        "the same sessions"
    );
    for (key, (title, count, messages)) in &source {
        let (t_title, t_count, t_messages) = &target[key];
        assert_eq!(messages, t_messages, "{key}: messages");
        assert_eq!(count, t_count, "{key}: message count (nothing doubled)");
        assert_eq!(title, t_title, "{key}: title");
    }
    source
}

fn summary(v: &Value) -> [u64; 6] {
    [
        "users", "sessions", "messages", "bytes", "skipped", "corrupt",
    ]
    .map(|k| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}")))
}

/// Starts a run that logs each copied session on a pipe, waits until it has copied
/// `sessions`, and kills it. The test stops reading the pipe there, so the run blocks
/// once the pipe is full: it cannot finish however fast the machine is (the seed's
/// log is far more than a pipe holds).
fn interrupt_after(from: &str, to: &str, sessions: usize) {
    let mut child = ragchat(&["--from", from, "--to", to])
        .env("RAGCHAT_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ragchat");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut copied = 0;
    while copied < sessions {
        let line = lines.next().expect("the run ended early").unwrap();
        copied += usize::from(line.contains("copied a session"));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed: {status}");
    drop(lines);
}

#[test]
fn sqlite_to_postgres_1000_sessions_equal_resumed_and_never_doubled() {
    let Some(server) = postgres_or_skip() else {
        return;
    };
    server.create_database("migrated");
    let to = format!(
        "postgres://postgres:s3cretpw@127.0.0.1:{}/migrated?sslmode=disable",
        server.port()
    );
    let dir = tempfile::tempdir().unwrap();
    let from = sqlite_url(&dir.path().join("sessions.db"));
    let total = seed(&dir.path().join("sessions.db"), 40, 25);

    interrupt_after(&from, &to, 20);
    let partial = contents(&to).len();
    assert!(
        (20..1000).contains(&partial),
        "{partial} sessions after the kill"
    );

    let resumed = migrate_json(&from, &to, &[]);
    let [users, sessions, messages, bytes, skipped, corrupt] = summary(&resumed);
    assert_eq!((users, sessions, corrupt), (40, 1000, 0), "{resumed}");
    assert_eq!(messages + skipped, total, "{resumed}");
    assert!(
        skipped > 0 && bytes > 0,
        "the resumed run found the first run's copies: {resumed}"
    );
    assert!(!resumed.to_string().contains("s3cretpw"), "{resumed}");
    assert_same(&from, &to);

    let again = migrate_json(&from, &to, &[]);
    assert_eq!(summary(&again), [40, 1000, 0, 0, total, 0], "{again}");
    let copied = assert_same(&from, &to);
    assert_eq!(copied.len(), 1000);
    let trimmed = &copied["user003/s00"];
    assert_eq!(trimmed.2.len(), 3);
    assert_eq!(
        trimmed.0.as_deref(),
        Some("What is topic 3/0?"),
        "the source's title, kept"
    );
}

#[test]
fn sqlite_to_sqlite_one_user_then_all_with_json_shape() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("a.db");
    let total = seed(&source, 3, 4);
    let from = sqlite_url(&source);
    let to = sqlite_url(&dir.path().join("b.db"));

    let one = migrate_json(&from, &to, &["--user", "user001"]);
    let mut keys: Vec<&str> = one
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["bytes", "corrupt", "from", "messages", "sessions", "skipped", "to", "users"]
    );
    assert_eq!(summary(&one)[..3], [1, 4, 15], "{one}");
    assert_eq!(one["from"], from.as_str());
    let copied = contents(&to);
    assert_eq!(copied.len(), 4);
    assert!(
        copied.keys().all(|k| k.starts_with("user001/")),
        "{copied:?}"
    );

    let all = migrate_json(&from, &to, &[]);
    assert_eq!(
        summary(&all),
        [3, 12, total - 15, summary(&all)[3], 15, 0],
        "{all}"
    );
    assert_same(&from, &to);
    let again = migrate_json(&from, &to, &[]);
    assert_eq!(summary(&again), [3, 12, 0, 0, total, 0], "{again}");
    assert_same(&from, &to);

    let nobody = migrate(&["--from", &from, "--to", &to, "--user", "nobody"]);
    assert!(nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stdout).contains("nobody has no conversations"));
}

#[test]
fn unreadable_source_entries_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("a.db");
    seed(&source, 1, 2);
    let conn = rusqlite::Connection::open(&source).unwrap();
    conn.execute_batch(
        "INSERT INTO messages (user, session, seq, id, role, content, sources, created_at, status)
           SELECT user, session, last_seq + 1, 'not-a-uuid', 'robot', 'x', '{bad', 0, 'complete'
             FROM sessions WHERE session = 's01';
         UPDATE sessions SET last_seq = last_seq + 1, message_count = message_count + 1
          WHERE session = 's01';",
    )
    .unwrap();
    drop(conn);
    let (from, to) = (sqlite_url(&source), sqlite_url(&dir.path().join("b.db")));
    for _ in 0..2 {
        let out = migrate(&["--from", &from, "--to", &to, "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["corrupt"], 1, "{v}");
        assert_eq!(v["sessions"], 2, "{v}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("could not be read"));
    }
    let copied = contents(&to);
    assert_eq!(copied["user000/s01"].2.len(), 4, "every readable message");
}

#[test]
fn bad_urls_and_one_store_twice_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("a.db");
    seed(&source, 1, 1);
    let from = sqlite_url(&source);
    let new = dir.path().join("new.db");
    let same = format!("sqlite://{}/./a.db", dir.path().display());
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![from.clone(), from.clone()], "the same store"),
        (vec![from.clone(), same], "the same store"),
        (
            vec!["mongo://h/db".into(), sqlite_url(&new)],
            "unknown store scheme",
        ),
        (vec![from.clone(), "ftp://x".into()], "unknown store scheme"),
        (vec![from.clone(), "memory://".into()], "memory://"),
        (
            vec![sqlite_url(&dir.path().join("missing.db")), sqlite_url(&new)],
            "no SQLite store",
        ),
        (
            vec![from.clone(), sqlite_url(&dir.path().join("no/such/b.db"))],
            "does not exist",
        ),
    ];
    for (urls, says) in cases {
        let out = migrate(&["--from", &urls[0], "--to", &urls[1]]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{urls:?}: {stderr}");
        assert!(stderr.contains(says), "{urls:?}: {stderr}");
    }
    let bad_user = migrate(&["--from", &from, "--to", &sqlite_url(&new), "--user", "a/b"]);
    assert_eq!(bad_user.status.code(), Some(2));
    assert!(!new.exists(), "a refused run creates nothing");
    assert!(!dir.path().join("missing.db").exists());
    assert_eq!(contents(&from).len(), 1);
}

#[test]
fn sqlite_to_redis_with_its_ttl_and_back() {
    let Some(redis) = ragchat_testkit::redis_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("a.db");
    let total = seed(&source, 9, 3);
    let from = sqlite_url(&source);
    let to = redis.url();

    let copied = migrate_json(&from, &to, &["--ttl", "600"]);
    assert_eq!(summary(&copied)[..3], [9, 27, total], "{copied}");
    let ttls = runtime().block_on(async {
        let store = open_store(&to, &StoreOptions::default()).await.unwrap();
        store.list("user004", None, 10).await.unwrap().sessions
    });
    assert!(
        ttls.iter()
            .all(|s| s.ttl_remaining_secs.is_some_and(|t| t > 500 && t <= 600)),
        "{ttls:?}"
    );
    assert_same(&from, &to);

    // Back from Redis: its users are found by scanning for their session indexes.
    let back = sqlite_url(&dir.path().join("back.db"));
    let returned = migrate_json(&to, &back, &[]);
    assert_eq!(summary(&returned)[..3], [9, 27, total], "{returned}");
    assert_same(&to, &back);
    assert_same(&from, &back);
}
