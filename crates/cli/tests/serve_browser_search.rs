//! Searching conversations on the chat page in headless Chromium, at phone and desktop
//! widths: typing in the search box lists the caller's matching messages with the
//! matched words marked (a message's own markup shows as text, never as HTML);
//! choosing a hit opens its conversation at that message, marked and focused. Every
//! state is audited with axe-core.
//!
//! Skipped (with a note) when Chromium is not installed; with `CI` set that fails.

mod browser_support;
mod serve_support;

use browser_support::*;
use serde_json::json;
use serve_support::*;

/// Stores a question in `session` through the API, as the page's own requests do.
fn post(session: &str, content: &str) -> String {
    format!(
        "fetch('/v1/sessions/{session}/messages', {{ method: 'POST',
            headers: {{ 'Content-Type': 'application/json' }},
            body: JSON.stringify({{ content: {content} }}) }}).then(r => r.status)",
        content = json!(content)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_hit_opens_its_conversation_at_the_message() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let server = Server::start(&[]);
    let browser = Browser::launch(&chromium);
    let mut page = Cdp::connect(&browser.ws_url).await;

    // Words of its own for each width: both conversations belong to the same user.
    for (name, size, place, thing) in [
        ("phone", PHONE, "zanzibar", "ferry"),
        ("desktop", DESKTOP, "madagascar", "lemur"),
    ] {
        let trip = format!("{name}-trip");
        open_page(
            &mut page,
            &server.url(),
            size,
            &format!("#session={name}-now"),
        )
        .await;
        for text in [
            format!("Where can I see the {place} {thing} at dawn?"),
            "What is machine learning?".to_string(),
            format!("<img src=x onerror=\"window.pwned=1\"> {place} <b>spice</b> tour"),
        ] {
            assert_eq!(page.eval(&post(&trip, &text)).await, json!(200), "{name}");
        }
        if size == PHONE {
            page.click("#menu").await;
            page.wait_for(
                "the drawer",
                "document.body.classList.contains('drawer-open')",
            )
            .await;
        }
        assert!(page.shown("#search-input").await, "{name}: the search box");
        assert_eq!(
            page.eval("document.getElementById('search-input').labels.length")
                .await,
            json!(1),
            "{name}: the search box is labelled"
        );
        page.eval(&format!(
            "const box = document.getElementById('search-input');
             box.focus(); box.value = '{place} {thing}';
             box.dispatchEvent(new Event('input')); true"
        ))
        .await;
        page.wait_for(
            "two hits",
            "document.querySelectorAll('#search-results li').length === 2",
        )
        .await;
        let first = page
            .eval(
                "(() => { const b = document.querySelector('#search-results li button');
                   return { marks: [...b.querySelectorAll('mark')].map(m => m.textContent),
                            session: b.dataset.session, message: b.dataset.message }; })()",
            )
            .await;
        assert_eq!(first["marks"], json!([place, thing]), "{name}: {first}");
        assert_eq!(first["session"], json!(trip), "{name}");
        let markup = page
            .eval(
                "(() => { const r = document.getElementById('search-results');
                   return { imgs: r.querySelectorAll('img, b').length,
                            text: r.textContent.includes('<img src=x'),
                            pwned: window.pwned === 1 }; })()",
            )
            .await;
        assert_eq!(
            markup,
            json!({ "imgs": 0, "text": true, "pwned": false }),
            "{name}: stored markup is text"
        );
        assert!(
            page.eval("document.getElementById('search-status').textContent")
                .await
                .as_str()
                .unwrap()
                .contains("2 messages"),
            "{name}"
        );
        assert_eq!(
            page.screenshot(&format!("{name}-search-hits")).await.0,
            size.0
        );
        assert_accessible(&mut page, &format!("{name}, search hits")).await;

        page.click("#search-results li button").await;
        page.wait_for(
            "the conversation of the hit, at the message",
            &format!(
                "document.body.dataset.loaded === '{trip}'
                 && document.querySelector('.msg.found')?.dataset.id === '{}'",
                first["message"].as_str().unwrap()
            ),
        )
        .await;
        assert_eq!(
            page.eval("document.activeElement.classList.contains('found')")
                .await,
            json!(true),
            "{name}: the message found has the focus"
        );
        assert!(page.shown(".msg.found").await, "{name}: scrolled into view");
        assert!(
            !page
                .eval("document.body.classList.contains('drawer-open')")
                .await
                .as_bool()
                .unwrap(),
            "{name}: the drawer closed"
        );
        assert_eq!(
            page.screenshot(&format!("{name}-search-opened")).await.0,
            size.0
        );
        assert_accessible(&mut page, &format!("{name}, opened at a hit")).await;
    }
}
