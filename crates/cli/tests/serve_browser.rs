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

/// A phone: 390 x 844 CSS pixels.
const PHONE: (u32, u32) = (390, 844);
/// A laptop: 1280 x 800.
const DESKTOP: (u32, u32) = (1280, 800);

/// Asserts that axe-core finds no serious or critical accessibility violation (skipped,
/// with a note, when npm cannot install axe-core outside CI).
async fn assert_accessible(page: &mut Cdp, context: &str) {
    if let Some(violations) = page.serious_accessibility_violations(context).await {
        assert!(
            violations.is_empty(),
            "axe-core ({context}): {}",
            serde_json::to_string_pretty(&violations).unwrap()
        );
    }
}

/// Opens the page of `server` at `size` and waits until a conversation is shown.
async fn open_page(page: &mut Cdp, server: &Server, size: (u32, u32), hash: &str) -> String {
    page.open("about:blank").await;
    page.viewport(size.0, size.1, size.0 < 700).await;
    page.emulate_focus().await;
    page.call(
        "Page.navigate",
        json!({ "url": format!("{}/{hash}", server.url()) }),
    )
    .await;
    let loaded = page
        .wait_for("a conversation", "document.body.dataset.loaded")
        .await;
    loaded.as_str().expect("session id").to_string()
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
    let fresh = open_page(&mut page, &server, PHONE, "").await;
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
        let session = open_page(&mut page, &server, size, &format!("#session={name}-new")).await;
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
