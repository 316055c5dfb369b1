//! The web chat page in headless Chromium, driven over the Chrome DevTools Protocol:
//! send a message, see the streamed answer with its sources, reload and see the
//! conversation again, then open the same conversation on a second server.
//!
//! Skipped (with a note) when Chromium or Redis is not installed; with `CI` set, a
//! missing Chromium fails the test instead.

mod serve_support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use serve_support::*;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a page may take to reach an expected state.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The Chromium binary: `$RAGCHAT_CHROMIUM`, else the first of the usual names on PATH.
fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("RAGCHAT_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A headless Chromium with a fresh profile, killed when dropped.
struct Browser {
    child: Child,
    ws_url: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch(binary: &PathBuf) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        // Chromium prints the DevTools address on stderr; keep draining it afterwards so
        // the browser never blocks on a full pipe.
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(url.trim().to_string());
                    }
                }
            }
        });
        let ws_url = match rx.recv_timeout(PAGE_TIMEOUT) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("chromium did not print its DevTools address");
            }
        };
        Browser {
            child,
            ws_url,
            _profile: profile,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal CDP client: one command at a time over the browser's websocket, with the
/// flat session of one page.
struct Cdp {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
}

impl Cdp {
    async fn connect(url: &str) -> Cdp {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect to DevTools");
        Cdp {
            ws,
            next_id: 0,
            session: None,
        }
    }

    /// Sends a command and waits for its result (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .await
            .unwrap_or_else(|error| panic!("{method} failed: {error}"))
    }

    /// Sends a command; its result, or the error DevTools answered with.
    async fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            command["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::text(command.to_string()))
            .await
            .expect("send CDP command");
        loop {
            let message = tokio::time::timeout(PAGE_TIMEOUT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"))
                .expect("DevTools closed the connection")
                .expect("read CDP message");
            let Message::Text(text) = message else {
                continue;
            };
            let reply: Value = serde_json::from_str(text.as_str()).expect("CDP JSON");
            if reply["id"] == id {
                return match reply["error"].is_null() {
                    true => Ok(reply["result"].clone()),
                    false => Err(reply["error"].clone()),
                };
            }
        }
    }

    /// Opens `url` in a new page and attaches to it.
    async fn open(&mut self, url: &str) {
        let target = self
            .call("Target.createTarget", json!({ "url": url }))
            .await;
        let attached = self
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await;
        self.session = Some(
            attached["sessionId"]
                .as_str()
                .expect("sessionId")
                .to_string(),
        );
    }

    /// Evaluates JavaScript in the page (awaiting promises) and returns its value.
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        assert!(
            result["exceptionDetails"].is_null(),
            "{expression} threw: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is truthy; returns its value. Exceptions (a
    /// page between two documents has no body) and evaluations cut short by a
    /// navigation count as not yet.
    async fn wait_for(&mut self, what: &str, expression: &str) -> Value {
        let guarded = format!(
            "(() => {{ try {{ return ({expression}); }} catch (_) {{ return null; }} }})()"
        );
        let params = json!({ "expression": guarded, "returnByValue": true, "awaitPromise": true });
        let started = std::time::Instant::now();
        loop {
            let value = match self.try_call("Runtime.evaluate", params.clone()).await {
                Ok(result) => result["result"]["value"].clone(),
                Err(_) => Value::Null,
            };
            let truthy = !matches!(value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return value;
            }
            assert!(
                started.elapsed() < PAGE_TIMEOUT,
                "the page never showed {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The conversation as the page shows it: role, status, text and sources per message.
const SHOWN_MESSAGES: &str = r#"[...document.querySelectorAll('#messages .msg')].map(e => ({
    role: e.classList.contains('user') ? 'user' : 'assistant',
    status: e.dataset.status,
    text: e.querySelector('.text').textContent,
    sources: [...e.querySelectorAll('.sources li')].map(li => li.textContent),
}))"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_streams_and_restores_the_conversation() {
    let Some(chromium) = find_chromium() else {
        ragchat_testkit::skip("chromium not installed (apt-get install chromium)");
        return;
    };
    let Some(redis) = ragchat_testkit::redis_or_skip() else {
        return;
    };
    let store = redis.url();
    let a = Server::start(&["--store", &store]);
    let b = Server::start(&["--store", &store]);

    let browser = Browser::launch(&chromium);
    let mut page = Cdp::connect(&browser.ws_url).await;
    page.open(&format!("{}/", a.url())).await;
    let session = page
        .wait_for("a session", "document.body.dataset.loaded")
        .await;
    let session = session.as_str().expect("session id").to_string();
    assert!(session.starts_with("chat-"), "{session}");

    page.eval(
        "document.getElementById('input').value = 'What is machine learning?';
         document.getElementById('composer').requestSubmit(); true",
    )
    .await;
    page.wait_for(
        "a complete answer with sources",
        "document.querySelector('.msg.assistant[data-status=\"complete\"] .sources li') !== null",
    )
    .await;
    let sent = page.eval(SHOWN_MESSAGES).await;
    let shown = sent.as_array().expect("messages");
    assert_eq!(shown.len(), 2, "{sent}");
    assert_eq!(shown[0]["text"], "What is machine learning?");
    assert!(
        shown[1]["text"]
            .as_str()
            .unwrap()
            .contains("Machine learning"),
        "{sent}"
    );
    assert!(
        shown[1]["sources"].as_array().unwrap().iter().any(|s| s
            .as_str()
            .unwrap()
            .starts_with("what-is-machine-learning.md")),
        "{sent}"
    );
    // Line ranges read as in the terminal: "(line 3)" for one line, "(lines 3-5)" for more.
    for source in shown[1]["sources"].as_array().unwrap() {
        let source = source.as_str().unwrap();
        let range = source.rsplit_once(" (").map(|(_, r)| r).unwrap_or("");
        let one = range
            .strip_prefix("line ")
            .and_then(|r| r.strip_suffix(')'));
        let many = range
            .strip_prefix("lines ")
            .and_then(|r| r.strip_suffix(')'));
        let valid = one.is_some_and(|n| n.parse::<u32>().is_ok())
            || many.and_then(|r| r.split_once('-')).is_some_and(
                |(a, b)| matches!((a.parse::<u32>(), b.parse::<u32>()), (Ok(a), Ok(b)) if a < b),
            );
        assert!(valid, "{source}");
    }
    // The page's URL names the conversation, and the session list shows it.
    let hash = page.eval("location.hash").await;
    assert_eq!(hash, json!(format!("#session={session}")));
    let listed = page
        .wait_for(
            "the session in the list",
            "[...document.querySelectorAll('#sessions button')].map(b => b.textContent).join('|')",
        )
        .await;
    assert!(listed.as_str().unwrap().contains(&session), "{listed}");

    // Reload: the conversation comes back from the server.
    page.eval("document.body.dataset.loaded = ''; location.reload(); true")
        .await;
    page.wait_for(
        "the reloaded page",
        &format!("document.body.dataset.loaded === '{session}'"),
    )
    .await;
    assert_eq!(
        page.eval(SHOWN_MESSAGES).await,
        sent,
        "the same conversation after reload"
    );

    // The same URL on the other server shows the same conversation.
    page.eval("document.body.dataset.loaded = ''; true").await;
    page.call(
        "Page.navigate",
        json!({ "url": format!("{}/#session={session}", b.url()) }),
    )
    .await;
    page.wait_for(
        "the page on server B",
        &format!("document.body.dataset.loaded === '{session}'"),
    )
    .await;
    assert_eq!(
        page.eval(SHOWN_MESSAGES).await,
        sent,
        "the same conversation on server B"
    );
}
