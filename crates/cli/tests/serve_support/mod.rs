//! `ragchat serve` processes for the CLI tests: each on a free loopback port with its
//! own data dir, waited for through `/healthz`, killed when dropped; its stderr is
//! kept in a file and printed when a test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest a server may take to answer `/healthz` after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) const ALICE_KEY: &str = "alice-key-0123456789abcdef";
pub(crate) const BOB_KEY: &str = "bob-key-0123456789abcdef";

/// Environment variables a developer's shell might set that would change the server.
const CLEARED_ENV: &[&str] = &[
    "RAGCHAT_STORE",
    "RAGCHAT_REDIS_URL",
    "RAGCHAT_API_KEYS_FILE",
    "RAGCHAT_ADDR",
    "RAGCHAT_DOCS",
    "RAGCHAT_LLM_URL",
    "RAGCHAT_LLM_MODEL",
    "RAGCHAT_TTL",
    "RAGCHAT_RETENTION",
    "RAGCHAT_ARCHIVE",
    "RAGCHAT_ARCHIVE_MODE",
    "RAGCHAT_MAX_MESSAGE_BYTES",
    "OPENAI_API_KEY",
    "RAGCHAT_HEADER_READ_TIMEOUT",
    "RAGCHAT_IDLE_TIMEOUT",
    "RAGCHAT_REQUEST_TIMEOUT",
    "RAGCHAT_AUTH_LOCKOUT_FAILURES",
    "RAGCHAT_AUTH_LOCKOUT_SECS",
];

/// A `ragchat` command with a clean environment and this data dir. Per-key rate limits
/// are off (the load tests send many turns with one key); the tests of the limits pass
/// `--turns-per-minute` and `--requests-per-second`, which win over the environment.
pub(crate) fn ragchat(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ragchat"));
    for name in CLEARED_ENV {
        command.env_remove(name);
    }
    command
        .env("RAGCHAT_DATA_DIR", data_dir)
        .env("RAGCHAT_TURNS_PER_MINUTE", "0")
        .env("RAGCHAT_REQUESTS_PER_SECOND", "0");
    command
}

/// Writes a keys file for alice and bob in `dir`.
pub(crate) fn write_keys(dir: &Path) -> PathBuf {
    let path = dir.join("api-keys.txt");
    std::fs::write(
        &path,
        format!("# ragchat test keys\n\n{ALICE_KEY} alice\n{BOB_KEY} bob  # second user\n"),
    )
    .expect("write keys");
    path
}

/// A running `ragchat serve`.
pub(crate) struct Server {
    child: Option<Child>,
    port: u16,
    args: Vec<String>,
    data_dir: tempfile::TempDir,
    log: PathBuf,
}

impl Server {
    /// Starts `ragchat serve --addr 127.0.0.1:<free port> ARGS...` and waits for `/healthz`.
    pub(crate) fn start(args: &[&str]) -> Server {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let log = data_dir.path().join("server.log");
        let mut server = Server {
            child: None,
            port: ragchat_testkit::free_port(),
            args: args.iter().map(|a| a.to_string()).collect(),
            data_dir,
            log,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server log");
        let child = ragchat(self.data_dir.path())
            .arg("serve")
            .args(["--addr", &format!("127.0.0.1:{}", self.port)])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ragchat serve");
        self.child = Some(child);
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("ragchat serve exited with {status}:\n{}", self.log());
            }
            if healthz(self.port) {
                return;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "ragchat serve did not become healthy:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's data dir (its journal, indexes, log).
    pub(crate) fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// What the server wrote to stderr so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no shutdown of any kind.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILL, then start again on the same port and data dir.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sends a signal (`TERM`, `HUP`, ...) with `kill`.
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// SIGTERM, then waits for the exit.
    pub(crate) fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("ragchat serve ignored SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- ragchat serve on port {} ---\n{}",
                self.port,
                self.log()
            );
        }
        self.kill();
    }
}

/// Whether `GET /healthz` answers 200, with a plain blocking request.
fn healthz(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if conn.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = conn.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

/// An HTTP client for the tests.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A response read whole: status, headers, JSON body (or `Null`).
pub(crate) struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!("HTTP {} body is not JSON ({e}): {}", self.status, self.text)
        })
    }

    /// Asserts the status and our error shape with this code.
    pub(crate) fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
}

/// Sends `method url` with an optional bearer key and JSON body.
pub(crate) async fn call(
    method: reqwest::Method,
    url: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut request = client().request(method, url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.expect("read body"),
    }
}

pub(crate) async fn get(url: &str, key: Option<&str>) -> Reply {
    call(reqwest::Method::GET, url, key, None).await
}

/// Posts a message (JSON answer).
pub(crate) async fn post_message(
    base: &str,
    session: &str,
    key: Option<&str>,
    content: &str,
) -> Reply {
    let url = format!("{base}/v1/sessions/{session}/messages");
    call(
        reqwest::Method::POST,
        &url,
        key,
        Some(serde_json::json!({ "content": content })),
    )
    .await
}

/// The paths of the sources an answer cites.
pub(crate) fn source_paths(answer: &Value) -> Vec<String> {
    answer["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| s["path"].as_str().expect("path").to_string())
        .collect()
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`.
pub(crate) async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < limit, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
