//! The chat page in headless Chromium at phone and desktop widths: a new conversation
//! shows the loaded documents and example questions (clicking one asks it), a source
//! opens the passage it cites, the keyboard goes through the page in order, and the
//! conversation list titles each conversation by its first question with a relative
//! time. Every state is audited with axe-core; screenshots are saved for people and
//! compared by structure (boxes, visibility, the accessibility tree), never by pixels.
//!
//! Skipped (with a note) when Chromium is not installed; with `CI` set that fails.

mod browser_support;
mod serve_support;

use browser_support::*;
use serde_json::json;
use serve_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_conversation_offers_the_documents_and_opens_cited_passages() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let server = Server::start(&[]);
    let about = get(&format!("{}/v1/about", server.url()), None)
        .await
        .json();
    let examples = about["example_questions"].clone();
    assert_eq!(examples.as_array().map(Vec::len), Some(3), "{about}");
    let browser = Browser::launch(&chromium);
    let mut page = Cdp::connect(&browser.ws_url).await;

    for (name, size) in [("phone", PHONE), ("desktop", DESKTOP)] {
        let session = open_page(
            &mut page,
            &server.url(),
            size,
            &format!("#session={name}-new"),
        )
        .await;
        page.wait_for(
            "the examples",
            "document.querySelectorAll('#examples button').length === 3",
        )
        .await;
        assert!(page.shown("#welcome").await, "{name}");
        let summary = page
            .eval("document.getElementById('corpus-summary').textContent")
            .await;
        let count = format!("{} documents", about["document_count"]);
        assert!(
            summary.as_str().unwrap().contains(&count),
            "{name}: {summary}"
        );
        let shown = page
            .eval("[...document.querySelectorAll('#examples button')].map(b => b.textContent)")
            .await;
        assert_eq!(shown, examples, "{name}");
        for i in 1..=3 {
            assert!(
                page.shown(&format!("#examples li:nth-child({i}) button"))
                    .await
            );
        }
        let welcome = page.rect("#welcome").await;
        assert!(
            welcome.right() <= f64::from(size.0) + 0.5,
            "{name}: {welcome:?}"
        );
        if size == DESKTOP {
            assert!(
                !page.shown("#menu").await,
                "no menu button on a wide screen"
            );
            assert!(page.shown("#sidebar").await, "the list is always there");
            let sidebar = page.rect("#sidebar").await;
            assert!(
                sidebar.right() <= welcome.x,
                "{sidebar:?} left of {welcome:?}"
            );
        }
        assert_eq!(page.screenshot(&format!("{name}-welcome")).await.0, size.0);
        assert_accessible(&mut page, &format!("{name}, new conversation")).await;

        // Clicking an example asks it.
        page.click("#examples li:first-child button").await;
        page.wait_for(
            "the answer to the example",
            "document.querySelector('.msg.assistant[data-status=\"complete\"] .sources button:not([disabled])') !== null",
        )
        .await;
        let asked = page
            .eval("document.querySelector('.msg.user .text').textContent")
            .await;
        assert_eq!(asked, examples[0], "{name}");
        assert!(
            !page.shown("#welcome").await,
            "{name}: the welcome makes way"
        );
        assert_accessible(&mut page, &format!("{name}, answered")).await;

        // A source opens the passage it cites, as the API has it.
        let message_id = page
            .eval("document.querySelector('.msg.assistant').dataset.id")
            .await;
        let message_id = message_id.as_str().expect("answer id");
        let passage = get(
            &format!(
                "{}/v1/sessions/{session}/messages/{message_id}/sources/1",
                server.url()
            ),
            None,
        )
        .await
        .json();
        page.click(".msg.assistant .sources li:first-child button")
            .await;
        page.wait_for(
            "the passage",
            "document.getElementById('source-text').textContent.length > 0",
        )
        .await;
        assert!(page.shown("#source-dialog").await, "{name}");
        assert_eq!(
            page.eval("document.getElementById('source-text').textContent")
                .await,
            passage["text"],
            "{name}"
        );
        let dialog = page.ax_node("#source-dialog").await;
        assert_eq!(dialog["role"]["value"], "dialog", "{dialog}");
        assert!(
            dialog["name"]["value"]
                .as_str()
                .unwrap()
                .contains(passage["heading"].as_str().unwrap()),
            "{dialog}"
        );
        let box_ = page.rect("#source-dialog").await;
        assert!(
            box_.x >= 0.0 && box_.right() <= f64::from(size.0),
            "{name}: {box_:?}"
        );
        assert_eq!(page.screenshot(&format!("{name}-source")).await.0, size.0);
        assert_accessible(&mut page, &format!("{name}, source open")).await;
        page.press("Escape").await;
        page.wait_for(
            "the closed passage",
            "!document.getElementById('source-dialog').open",
        )
        .await;
        assert!(
            page.focused().await.starts_with("button"),
            "focus back on the source"
        );
        assert_eq!(
            page.eval("document.activeElement.closest('.sources') !== null")
                .await,
            json!(true)
        );
    }

    // Desktop keyboard order, from the top of a freshly loaded page: the list, the
    // conversation (its sources), the message box, Send.
    page.eval("document.body.dataset.loaded = ''; location.reload(); true")
        .await;
    page.wait_for("the reloaded page", "document.body.dataset.loaded")
        .await;
    let mut regions: Vec<String> = Vec::new();
    for _ in 0..40 {
        page.press("Tab").await;
        let region = page
            .eval(
                "(() => { const e = document.activeElement;
                   if (e.closest('#sidebar')) return 'sidebar';
                   if (e.closest('#messages')) return 'messages';
                   return e.id || e.tagName; })()",
            )
            .await;
        let region = region.as_str().unwrap_or_default().to_string();
        if ["sidebar", "messages", "input", "send"].contains(&region.as_str())
            && regions.last() != Some(&region)
        {
            regions.push(region.clone());
        }
        if region == "send" {
            break;
        }
    }
    assert_eq!(regions, ["sidebar", "messages", "input", "send"]);

    // Titles and relative times: two hours later, the list says so; and the list was
    // titled without reading every conversation.
    page.open_later(&format!("{}/", server.url()), 2 * 3600 * 1000 + 60_000)
        .await;
    page.wait_for(
        "times two hours later",
        "[...document.querySelectorAll('#sessions time')].some(t => t.textContent === '2 hours ago')",
    )
    .await;
    page.viewport(DESKTOP.0, DESKTOP.1, false).await;
    assert!(page.shown("#sessions li:nth-child(2) .title").await);
    assert!(page.shown("#sessions li:nth-child(2) time").await);
    let title_box = page.rect("#sessions li:nth-child(2) .title").await;
    let sidebar = page.rect("#sidebar").await;
    assert!(
        title_box.right() <= sidebar.right(),
        "titles stay in the list: {title_box:?}"
    );
    assert_eq!(page.screenshot("desktop-titles-later").await.0, DESKTOP.0);
    let titles = page
        .eval("[...document.querySelectorAll('#sessions .title')].map(t => t.textContent)")
        .await;
    assert_eq!(
        titles
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| **t == examples[0])
            .count(),
        2,
        "both conversations are titled by their question: {titles}"
    );
    assert!(
        !titles.to_string().contains("chat-"),
        "no session ids: {titles}"
    );
    let message_reads = page
        .eval(
            "performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)
               .filter(p => /^\\/v1\\/sessions\\/[^/]+\\/messages/.test(p))",
        )
        .await;
    let current = page.eval("document.body.dataset.loaded").await;
    for path in message_reads.as_array().unwrap() {
        assert!(
            path.as_str().unwrap().contains(current.as_str().unwrap()),
            "the page read another conversation to title it: {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_a_server_with_keys_asks_for_one_in_view() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(dir.path());
    let server = Server::start(&["--api-keys", keys.to_str().unwrap()]);
    let browser = Browser::launch(&chromium);
    let mut page = Cdp::connect(&browser.ws_url).await;
    open_page(&mut page, &server.url(), PHONE, "").await;

    // Without a key nothing about the documents is shown, and the key form is in view
    // (not in the closed drawer).
    page.wait_for(
        "the key form",
        "!document.getElementById('key-form').hidden",
    )
    .await;
    assert!(page.shown("#api-key").await, "the key field is visible");
    assert_eq!(
        page.eval("document.querySelectorAll('#examples button').length")
            .await,
        json!(0)
    );
    assert_eq!(page.screenshot("phone-key-form").await.0, PHONE.0);
    assert_accessible(&mut page, "phone, key form").await;

    page.eval(&format!(
        "document.getElementById('api-key').value = '{ALICE_KEY}';
         document.getElementById('key-form').requestSubmit(); true"
    ))
    .await;
    page.wait_for(
        "the examples, with the key",
        "document.querySelectorAll('#examples button').length === 3",
    )
    .await;
    assert!(page.shown("#welcome").await);
    assert!(
        !page.shown("#key-form").await,
        "the form goes once the key works"
    );
}
