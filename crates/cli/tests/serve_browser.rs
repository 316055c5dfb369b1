//! The web chat page in headless Chromium, driven over the Chrome DevTools Protocol:
//! send a message, see the streamed answer with its sources, reload and see the
//! conversation again, then open the same conversation on a second server; on a phone,
//! reach the conversation list through the menu button, by keyboard too.
//! `serve_browser_welcome.rs` has the new-conversation view, sources and titles.
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
    // The page's URL names the conversation, and the session list shows it, titled by
    // its first question.
    let hash = page.eval("location.hash").await;
    assert_eq!(hash, json!(format!("#session={session}")));
    page.wait_for(
        "the session in the list, titled",
        &format!(
            "[...document.querySelectorAll('#sessions button')].some(b =>
               b.dataset.session === '{session}'
               && b.querySelector('.title').textContent === 'What is machine learning?')"
        ),
    )
    .await;

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

/// The focused element's path of ids from the drawer or the main area.
const FOCUS_IN_SIDEBAR: &str = "document.activeElement.closest('#sidebar') !== null";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_the_conversation_list_is_a_drawer_behind_a_menu_button() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let server = Server::start(&[]);
    let asked = post_message(
        &server.url(),
        "ml-basics",
        None,
        "What is machine learning?",
    )
    .await;
    assert_eq!(asked.status, 200, "{}", asked.text);

    let browser = Browser::launch(&chromium);
    let mut page = Cdp::connect(&browser.ws_url).await;
    let fresh = open_page(&mut page, &server.url(), PHONE, "").await;
    assert_eq!(page.screenshot("phone-new-conversation").await.0, PHONE.0);

    // Closed: the menu button is there, the list is neither seen nor reachable by Tab.
    assert!(page.shown("#menu").await, "the menu button is visible");
    assert!(!page.shown("#sidebar").await, "the drawer starts closed");
    let menu = page.ax_node("#menu").await;
    assert_eq!(menu["role"]["value"], "button", "{menu}");
    assert_eq!(menu["name"]["value"], "Conversations", "{menu}");
    let expanded = |node: &serde_json::Value| {
        node["properties"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == "expanded"))
            .map(|p| p["value"]["value"].clone())
    };
    assert_eq!(expanded(&menu), Some(json!(false)), "{menu}");
    for _ in 0..6 {
        page.press("Tab").await;
        assert_eq!(page.eval(FOCUS_IN_SIDEBAR).await, json!(false));
    }
    assert_accessible(&mut page, "phone, drawer closed").await;

    // The keyboard opens it: focus moves in, the rest of the page is out of reach.
    page.eval("document.getElementById('menu').focus(); true")
        .await;
    page.press("Enter").await;
    page.wait_for(
        "the open drawer",
        "document.body.classList.contains('drawer-open')",
    )
    .await;
    page.wait_for(
        "the drawer in view",
        "document.getElementById('sidebar').getBoundingClientRect().left >= 0",
    )
    .await;
    assert!(page.shown("#sidebar").await);
    let drawer = page.rect("#sidebar").await;
    assert!(
        drawer.x >= 0.0 && drawer.right() <= f64::from(PHONE.0),
        "{drawer:?}"
    );
    assert!(
        drawer.height >= f64::from(PHONE.1) - 1.0,
        "full height: {drawer:?}"
    );
    // The menu button is behind the drawer now (inert): its state is in the attribute.
    assert_eq!(
        page.eval("document.getElementById('menu').getAttribute('aria-expanded')")
            .await,
        json!("true")
    );
    let drawer_node = page.ax_node("#sidebar").await;
    assert_eq!(drawer_node["role"]["value"], "dialog", "{drawer_node}");
    assert_eq!(
        drawer_node["name"]["value"], "Conversations",
        "{drawer_node}"
    );
    assert!(
        !page.shown("#input").await,
        "the message box is behind the drawer"
    );
    assert_eq!(
        page.eval(FOCUS_IN_SIDEBAR).await,
        json!(true),
        "{}",
        page.focused().await
    );
    for _ in 0..8 {
        page.press("Tab").await;
        assert_eq!(
            page.eval(FOCUS_IN_SIDEBAR).await,
            json!(true),
            "Tab stays in the drawer: {}",
            page.focused().await
        );
    }
    page.wait_for(
        "the earlier conversation, titled, with a relative time",
        "[...document.querySelectorAll('#sessions button')].some(b =>
           b.dataset.session === 'ml-basics'
           && b.querySelector('.title').textContent === 'What is machine learning?'
           && /^(just now|[0-9]+ minutes? ago)$/.test(b.querySelector('time').textContent))",
    )
    .await;
    assert!(
        page.shown("#sessions button[data-session='ml-basics']")
            .await
    );
    assert_eq!(page.screenshot("phone-drawer-open").await.0, PHONE.0);
    assert_accessible(&mut page, "phone, drawer open").await;

    // Escape closes it and gives the focus back to the menu button.
    page.press("Escape").await;
    page.wait_for(
        "the closed drawer",
        "!document.body.classList.contains('drawer-open')",
    )
    .await;
    assert_eq!(page.focused().await, "button#menu");
    assert!(page.shown("#input").await);

    // Tapping outside closes it too.
    page.click("#menu").await;
    page.wait_for(
        "the open drawer",
        "document.body.classList.contains('drawer-open')",
    )
    .await;
    page.click_at(f64::from(PHONE.0) - 8.0, f64::from(PHONE.1) / 2.0)
        .await;
    page.wait_for(
        "the closed drawer",
        "!document.body.classList.contains('drawer-open')",
    )
    .await;

    // Choosing a conversation opens it and closes the drawer.
    page.click("#menu").await;
    page.wait_for(
        "the drawer in view",
        "document.getElementById('sidebar').getBoundingClientRect().left >= 0",
    )
    .await;
    page.click("#sessions button[data-session='ml-basics']")
        .await;
    page.wait_for(
        "the earlier conversation",
        "document.body.dataset.loaded === 'ml-basics'",
    )
    .await;
    assert!(!page.shown("#sidebar").await);
    assert_eq!(
        page.eval("document.querySelectorAll('#messages .msg').length")
            .await,
        json!(2)
    );
    assert_eq!(
        page.eval("document.getElementById('session-name').textContent")
            .await,
        json!("What is machine learning?")
    );

    // New chat, from the drawer, starts an empty conversation.
    page.click("#menu").await;
    page.wait_for(
        "the drawer in view",
        "document.getElementById('sidebar').getBoundingClientRect().left >= 0",
    )
    .await;
    page.click("#new-chat").await;
    let started = page
        .wait_for(
            "a new conversation",
            "document.body.dataset.loaded !== 'ml-basics' && document.body.dataset.loaded",
        )
        .await;
    assert_ne!(started, json!(fresh), "a new session id");
    assert!(!page.shown("#sidebar").await);
    assert!(
        page.shown("#welcome").await,
        "the new conversation's welcome"
    );
}
