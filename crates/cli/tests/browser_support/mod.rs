//! Headless Chromium for the page tests, driven over the Chrome DevTools Protocol (CDP):
//! launching the browser, a minimal CDP client, the page helpers the tests share
//! (viewport, keys, boxes, screenshots) and axe-core's accessibility audit.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a page may take to reach an expected state.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The Chromium binary: `$RAGCHAT_CHROMIUM`, else the first of the usual names on PATH.
pub fn find_chromium() -> Option<PathBuf> {
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
pub struct Browser {
    child: Child,
    pub ws_url: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn launch(binary: &PathBuf) -> Browser {
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
pub struct Cdp {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
}

impl Cdp {
    pub async fn connect(url: &str) -> Cdp {
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
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .await
            .unwrap_or_else(|error| panic!("{method} failed: {error}"))
    }

    /// Sends a command; its result, or the error DevTools answered with.
    pub async fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
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
    pub async fn open(&mut self, url: &str) {
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
    pub async fn eval(&mut self, expression: &str) -> Value {
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
    pub async fn wait_for(&mut self, what: &str, expression: &str) -> Value {
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

/// The Chromium binary, or `None` (with a note on stderr) when it is not installed;
/// with `CI` set a missing Chromium fails the test instead of skipping it.
pub fn chromium_or_skip() -> Option<PathBuf> {
    let found = find_chromium();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed, and CI must run the browser test (apt-get install chromium)"
        );
        eprintln!("skipping: chromium not installed");
    }
    found
}

/// An element's box in CSS pixels, as `getBoundingClientRect` gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl Rect {
    pub fn right(&self) -> f64 {
        self.x + self.width
    }

    pub fn bottom(&self) -> f64 {
        self.y + self.height
    }
}

/// Whether an element can be seen: it has a box that intersects the viewport, it is
/// not `visibility: hidden`, and no ancestor is hidden or inert. `null` when no element
/// matches.
const SHOWN: &str = r#"(selector) => {
    const e = document.querySelector(selector);
    if (!e) return null;
    const r = e.getBoundingClientRect();
    const style = getComputedStyle(e);
    const onScreen = r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0
        && r.left < innerWidth && r.top < innerHeight;
    return onScreen && style.visibility !== 'hidden' && !e.closest('[hidden], [inert]');
}"#;

impl Cdp {
    /// Emulates a screen `width` x `height` CSS pixels wide (a phone with `mobile`).
    pub async fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        )
        .await;
    }

    /// Lets the page behave as focused although no window has the focus (headless).
    pub async fn emulate_focus(&mut self) {
        self.call(
            "Emulation.setFocusEmulationEnabled",
            json!({ "enabled": true }),
        )
        .await;
    }

    /// Presses and releases a key (`Tab`, `Enter`, `Escape`, ...), as a keyboard would.
    pub async fn press(&mut self, key: &str) {
        self.press_with(key, 0).await;
    }

    /// Shift+Tab.
    pub async fn press_shift_tab(&mut self) {
        self.press_with("Tab", 8).await;
    }

    async fn press_with(&mut self, key: &str, modifiers: u32) {
        let (code, text) = match key {
            "Tab" => (9, ""),
            "Enter" => (13, "\r"),
            "Escape" => (27, ""),
            " " => (32, " "),
            other => panic!("no key code for {other:?}"),
        };
        let mut down = json!({
            "type": "keyDown", "key": key, "code": if key == " " { "Space" } else { key },
            "windowsVirtualKeyCode": code, "modifiers": modifiers,
        });
        if !text.is_empty() {
            down["text"] = json!(text);
        }
        self.call("Input.dispatchKeyEvent", down.clone()).await;
        down["type"] = json!("keyUp");
        down.as_object_mut().expect("object").remove("text");
        self.call("Input.dispatchKeyEvent", down).await;
    }

    /// Whether the element matching `selector` can be seen (see [`SHOWN`]); panics when
    /// nothing matches.
    pub async fn shown(&mut self, selector: &str) -> bool {
        let value = self.eval(&format!("({SHOWN})({selector:?})")).await;
        value
            .as_bool()
            .unwrap_or_else(|| panic!("no element matches {selector}"))
    }

    /// The box of the element matching `selector`; panics when nothing matches.
    pub async fn rect(&mut self, selector: &str) -> Rect {
        let value = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({selector:?}); if (!e) return null;
                   const r = e.getBoundingClientRect();
                   return [r.x, r.y, r.width, r.height]; }})()"
            ))
            .await;
        let n = |i: usize| {
            value[i]
                .as_f64()
                .unwrap_or_else(|| panic!("no element matches {selector}"))
        };
        Rect {
            x: n(0),
            y: n(1),
            width: n(2),
            height: n(3),
        }
    }

    /// A CSS selector-ish description of the focused element (`tag#id.class`).
    pub async fn focused(&mut self) -> String {
        let value = self
            .eval(
                "(() => { const e = document.activeElement; if (!e) return '';
                   return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                     + (e.className && typeof e.className === 'string'
                        ? '.' + e.className.trim().split(/\\s+/).join('.') : ''); })()",
            )
            .await;
        value.as_str().unwrap_or_default().to_string()
    }

    /// The accessibility node of the element matching `selector`: what a screen reader
    /// is told (`role`, `name`, and properties such as `expanded`).
    pub async fn ax_node(&mut self, selector: &str) -> Value {
        let document = self.call("DOM.getDocument", json!({ "depth": 0 })).await;
        let found = self
            .call(
                "DOM.querySelector",
                json!({ "nodeId": document["root"]["nodeId"], "selector": selector }),
            )
            .await;
        let tree = self
            .call(
                "Accessibility.getPartialAXTree",
                json!({ "nodeId": found["nodeId"], "fetchRelatives": false }),
            )
            .await;
        tree["nodes"][0].clone()
    }

    /// Saves a PNG screenshot of the viewport as `<target tmp>/page-screenshots/NAME.png`
    /// and returns its width and height in pixels, read from the PNG header.
    pub async fn screenshot(&mut self, name: &str) -> (u32, u32) {
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot is base64");
        assert_eq!(&png[1..4], b"PNG", "a PNG screenshot");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("page-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), &png).expect("save screenshot");
        let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
        (be(16), be(20))
    }

    /// Runs axe-core in the page; its violations of impact `serious` or `critical`.
    /// `None` when axe-core could not be installed (and `CI` is not set).
    pub async fn serious_accessibility_violations(&mut self, context: &str) -> Option<Vec<Value>> {
        let source = axe_source()?;
        let loaded = self.eval("typeof window.axe === 'object'").await;
        if loaded != json!(true) {
            self.eval(&format!("{source}\n;true")).await;
        }
        let results = self
            .eval("axe.run(document, { resultTypes: ['violations'] }).then(r => r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary) })))")
            .await;
        let all = results.as_array().expect("axe violations").clone();
        for minor in all
            .iter()
            .filter(|v| !matches!(v["impact"].as_str(), Some("serious" | "critical")))
        {
            eprintln!(
                "axe ({context}), {}: {} {}",
                minor["impact"], minor["id"], minor["help"]
            );
        }
        Some(
            all.into_iter()
                .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
                .collect(),
        )
    }
}

/// The axe-core major version the audit runs.
const AXE_CORE: &str = "axe-core@4";

/// `axe.min.js`, installed with npm from the npm registry into a cache under the target
/// dir on first use (nothing is downloaded when the cache holds it). `None`, with a note
/// on stderr, when npm cannot install it; with `CI` set that fails the test instead.
pub fn axe_source() -> Option<String> {
    static SOURCE: OnceLock<Option<String>> = OnceLock::new();
    SOURCE
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("axe-core-cache");
            let script = dir.join("node_modules/axe-core/axe.min.js");
            if !script.is_file() {
                std::fs::create_dir_all(&dir).expect("axe-core cache dir");
                let installed = Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
                    .arg(&dir)
                    .arg(AXE_CORE)
                    .output();
                let failure = match &installed {
                    Ok(out) if out.status.success() => None,
                    Ok(out) => Some(String::from_utf8_lossy(&out.stderr).into_owned()),
                    Err(e) => Some(format!("cannot run npm: {e}")),
                };
                if let Some(why) = failure {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "npm could not install {AXE_CORE}, and CI must run the accessibility audit: {why}"
                    );
                    eprintln!("skipping the axe-core audit: npm could not install {AXE_CORE}: {why}");
                    return None;
                }
            }
            Some(std::fs::read_to_string(&script).expect("read axe.min.js"))
        })
        .clone()
}

impl Cdp {
    /// Clicks the middle of the element matching `selector` with the mouse, as a person
    /// would: whatever is on top at that point gets the click.
    pub async fn click(&mut self, selector: &str) {
        let r = self.rect(selector).await;
        self.click_at(r.x + r.width / 2.0, r.y + r.height / 2.0)
            .await;
    }

    /// Clicks at a point of the viewport.
    pub async fn click_at(&mut self, x: f64, y: f64) {
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .await;
        }
    }

    /// Opens `url` in a new page whose clock runs `ahead_ms` ahead of the real one, so
    /// the page shows times as they will look that much later.
    pub async fn open_later(&mut self, url: &str, ahead_ms: u64) {
        self.open("about:blank").await;
        let shift = format!(
            "(() => {{ const ahead = {ahead_ms}; const RealDate = Date;
               class Later extends RealDate {{
                 constructor(...a) {{ if (a.length) super(...a); else super(RealDate.now() + ahead); }}
                 static now() {{ return RealDate.now() + ahead; }}
               }}
               window.Date = Later; }})();"
        );
        self.call("Page.enable", json!({})).await;
        self.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": shift }),
        )
        .await;
        self.call("Page.navigate", json!({ "url": url })).await;
    }
}
