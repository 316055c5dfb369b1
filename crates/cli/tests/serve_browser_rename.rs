//! Renaming a conversation on the chat page in headless Chromium, at phone and desktop
//! widths: the rename button opens a labelled field in place of the name, Escape
//! cancels, Enter saves; after a reload the list and the header show the new title.
//! Every state is audited with axe-core.
//!
//! Skipped (with a note) when Chromium is not installed; with `CI` set that fails.

mod browser_support;
mod serve_support;

use browser_support::*;
use serde_json::json;
use serve_support::*;

/// The list item of `session`'s title, as the page shows it.
fn listed_title(session: &str) -> String {
    format!(
        "(() => {{ const b = [...document.querySelectorAll('#sessions button')]
             .find(b => b.dataset.session === '{session}');
           return b ? b.querySelector('.title').textContent : null; }})()"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_is_renamed_in_place_and_keeps_its_title() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let server = Server::start(&[]);
    let browser = Browser::launch(&chromium);
    let mut page = Cdp::connect(&browser.ws_url).await;

    for (name, size) in [("phone", PHONE), ("desktop", DESKTOP)] {
        let session = format!("{name}-rename");
        open_page(
            &mut page,
            &server.url(),
            size,
            &format!("#session={session}"),
        )
        .await;
        assert!(
            !page.shown("#rename").await,
            "{name}: nothing to rename yet"
        );
        page.eval(
            "document.getElementById('input').value = 'What is machine learning?';
             document.getElementById('composer').requestSubmit(); true",
        )
        .await;
        page.wait_for(
            "the conversation in the list, titled by its question",
            &format!("{} === 'What is machine learning?'", listed_title(&session)),
        )
        .await;
        page.wait_for(
            "the rename button",
            "!document.getElementById('rename').hidden",
        )
        .await;

        // Escape cancels, and the focus goes back to the button.
        page.click("#rename").await;
        page.wait_for(
            "the title field, focused",
            "document.activeElement === document.getElementById('rename-input')",
        )
        .await;
        assert!(page.shown("#rename-input").await, "{name}");
        assert_eq!(
            page.eval(
                "document.getElementById('session-name').classList.contains('visually-hidden')"
            )
            .await,
            json!(true),
            "{name}: the field takes the name's place"
        );
        assert_eq!(
            page.eval("document.getElementById('rename-input').labels.length")
                .await,
            json!(1),
            "{name}: the field is labelled"
        );
        assert_eq!(
            page.screenshot(&format!("{name}-rename-field")).await.0,
            size.0
        );
        assert_accessible(&mut page, &format!("{name}, renaming")).await;
        page.press("Escape").await;
        assert!(!page.shown("#rename-input").await, "{name}: cancelled");
        assert_eq!(page.focused().await, "button#rename", "{name}");
        assert_eq!(
            page.eval("document.getElementById('session-name').textContent")
                .await,
            json!("What is machine learning?")
        );

        // Enter saves.
        page.press("Enter").await;
        page.wait_for(
            "the title field again",
            "document.activeElement === document.getElementById('rename-input')",
        )
        .await;
        page.eval("document.getElementById('rename-input').value = 'ML notes'; true")
            .await;
        page.press("Enter").await;
        page.wait_for(
            "the new title in the list",
            &format!("{} === 'ML notes'", listed_title(&session)),
        )
        .await;
        assert_eq!(page.focused().await, "button#rename", "{name}");

        // A reload shows it: it is stored with the conversation.
        page.eval("document.body.dataset.loaded = ''; location.reload(); true")
            .await;
        page.wait_for(
            "the reloaded page",
            &format!("document.body.dataset.loaded === '{session}'"),
        )
        .await;
        page.wait_for(
            "the new title after reload",
            &format!(
                "{} === 'ML notes'
                 && document.getElementById('session-name').textContent === 'ML notes'",
                listed_title(&session)
            ),
        )
        .await;
        assert_eq!(page.screenshot(&format!("{name}-renamed")).await.0, size.0);
        assert_accessible(&mut page, &format!("{name}, renamed")).await;
    }
}
