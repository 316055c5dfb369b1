//! The web chat page in headless Chromium, driven over the Chrome DevTools Protocol:
//! send a message, see the streamed answer with its sources, reload and see the
//! conversation again, then open the same conversation on a second server.
//!
//! Skipped (with a note) when Chromium or Redis is not installed; with `CI` set, a
//! missing Chromium fails the test instead.

mod browser_support;
mod serve_support;

use browser_support::*;
use serde_json::json;
use serve_support::*;

/// The conversation as the page shows it: role, status, text and sources per message.
const SHOWN_MESSAGES: &str = r#"[...document.querySelectorAll('#messages .msg')].map(e => ({
    role: e.classList.contains('user') ? 'user' : 'assistant',
    status: e.dataset.status,
    text: e.querySelector('.text').textContent,
    sources: [...e.querySelectorAll('.sources li')].map(li => li.textContent),
}))"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_streams_and_restores_the_conversation() {
    let Some(chromium) = chromium_or_skip() else {
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
