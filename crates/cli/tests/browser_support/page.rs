//! What the page tests do with a page: emulate a screen, press keys, click, look at
//! boxes, visibility, focus and the accessibility tree, take screenshots, run the
//! page's clock ahead.

use std::path::Path;

use base64::Engine as _;
use serde_json::{json, Value};

use super::Cdp;

/// A phone: 390 x 844 CSS pixels.
pub(crate) const PHONE: (u32, u32) = (390, 844);
/// A laptop: 1280 x 800.
pub(crate) const DESKTOP: (u32, u32) = (1280, 800);

/// An element's box in CSS pixels, as `getBoundingClientRect` gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl Rect {
    pub(crate) fn right(&self) -> f64 {
        self.x + self.width
    }

    pub(crate) fn bottom(&self) -> f64 {
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
    pub(crate) async fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        )
        .await;
    }

    /// Lets the page behave as focused although no window has the focus (headless).
    pub(crate) async fn emulate_focus(&mut self) {
        self.call(
            "Emulation.setFocusEmulationEnabled",
            json!({ "enabled": true }),
        )
        .await;
    }

    /// Presses and releases a key (`Tab`, `Enter`, `Escape`, ...), as a keyboard would.
    pub(crate) async fn press(&mut self, key: &str) {
        self.press_with(key, 0).await;
    }

    /// Shift+Tab.
    pub(crate) async fn press_shift_tab(&mut self) {
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
    pub(crate) async fn shown(&mut self, selector: &str) -> bool {
        let value = self.eval(&format!("({SHOWN})({selector:?})")).await;
        value
            .as_bool()
            .unwrap_or_else(|| panic!("no element matches {selector}"))
    }

    /// The box of the element matching `selector`; panics when nothing matches.
    pub(crate) async fn rect(&mut self, selector: &str) -> Rect {
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
    pub(crate) async fn focused(&mut self) -> String {
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
    pub(crate) async fn ax_node(&mut self, selector: &str) -> Value {
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
    pub(crate) async fn screenshot(&mut self, name: &str) -> (u32, u32) {
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
}

impl Cdp {
    /// Clicks the middle of the element matching `selector` with the mouse, as a person
    /// would: whatever is on top at that point gets the click.
    pub(crate) async fn click(&mut self, selector: &str) {
        let r = self.rect(selector).await;
        self.click_at(r.x + r.width / 2.0, r.y + r.height / 2.0)
            .await;
    }

    /// Clicks at a point of the viewport.
    pub(crate) async fn click_at(&mut self, x: f64, y: f64) {
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
    pub(crate) async fn open_later(&mut self, url: &str, ahead_ms: u64) {
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

/// Opens the chat page at `base` (`http://host:port`) plus `hash` in a fresh tab of
/// `size` (a phone below 700 px) and waits until it shows a conversation; returns the
/// conversation's session id.
pub(crate) async fn open_page(page: &mut Cdp, base: &str, size: (u32, u32), hash: &str) -> String {
    page.open("about:blank").await;
    page.viewport(size.0, size.1, size.0 < 700).await;
    page.emulate_focus().await;
    page.call("Page.navigate", json!({ "url": format!("{base}/{hash}") }))
        .await;
    let loaded = page
        .wait_for("a conversation", "document.body.dataset.loaded")
        .await;
    loaded.as_str().expect("session id").to_string()
}
