//! What the manager knows is journaled, while a replay runs: an append the store
//! refused goes to the journal while the replay looks at the journal, and a read
//! afterwards must still show it (or say it is partial). Against a real redis-server
//! and the real journal, made deterministic without hooks in the manager:
//!
//! - the runtime has one blocking thread, and the test occupies it (a "plug") so that
//!   the journal's next query waits until the test lets it run;
//! - the test owns the replay's future and polls it itself, so the replay does not go
//!   on after a journal query until the test says so, while the turn's append runs.
//!
//! Also: a page read while a replay holds the replay lock.
#![cfg(all(feature = "redis", feature = "sqlite"))]

mod replay_support;

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll};

use ragchat_memory::ReadLimit;
use replay_support::{messages, setup, texts, When};
use tokio::sync::Notify;

/// One blocking thread, so that journal queries run one at a time in the order asked.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Holds the only blocking thread (or the first place in its queue) until released:
/// journal queries asked meanwhile wait behind it.
struct Plug(mpsc::Sender<()>);

fn plug() -> Plug {
    let (tx, rx) = mpsc::channel::<()>();
    tokio::task::spawn_blocking(move || {
        let _ = rx.recv();
    });
    Plug(tx)
}

impl Plug {
    fn release(self) {
        drop(self.0);
    }
}

/// A waker that signals `woken`: the future it was given to can make progress.
struct Wakes {
    woken: Notify,
}

impl futures::task::ArcWake for Wakes {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.woken.notify_one();
    }
}

/// Polls `fut` once with `wakes`' waker.
fn poll_once<F: Future>(fut: Pin<&mut F>, wakes: &Arc<Wakes>) -> Poll<F::Output> {
    let waker = futures::task::waker(Arc::clone(wakes));
    fut.poll(&mut Context::from_waker(&waker))
}

fn wakes() -> Arc<Wakes> {
    Arc::new(Wakes {
        woken: Notify::new(),
    })
}

/// `replay_journal` asks the journal which sessions have entries, then sets what the
/// manager knows from the answer. A turn's append that the store refuses is journaled
/// between the two: it must not be forgotten.
#[test]
fn an_append_journaled_while_the_replay_lists_the_journal_stays_known() {
    runtime().block_on(async {
        let Some(t) = setup(&[]).await else {
            return;
        };
        t.manager.append(&t.key, messages(&["a1"])).await.unwrap();
        t.held.refuse_append(Some("n1"));

        let wakes = wakes();
        let first = plug();
        let mut replay = pin!(t.manager.replay_journal());
        assert!(poll_once(replay.as_mut(), &wakes).is_pending());
        // The replay's query runs and answers (no session journaled), and the replay
        // waits to be polled again.
        first.release();
        wakes.woken.notified().await;

        let receipt = t.manager.append(&t.key, messages(&["n1"])).await.unwrap();
        assert!(receipt.journaled);
        t.held.refuse_append(None);
        replay.await.unwrap();

        let (seen, partial) = t.read().await;
        assert!(partial || seen == ["a1", "n1"], "{seen:?}");
        let report = t.manager.replay_journal().await.unwrap();
        assert_eq!(report.replayed, 1, "{report:?}");
        assert_eq!(t.read().await, (vec!["a1".into(), "n1".into()], false));
    });
}

/// The replay moves a session's entries, asks the journal for more, finds none and
/// forgets the session. A turn's append that the store refuses is journaled between
/// the empty answer and the forgetting: it must not be forgotten.
#[test]
fn an_append_journaled_after_the_replay_emptied_the_session_stays_known() {
    runtime().block_on(async {
        let Some(t) = setup(&["j1"]).await else {
            return;
        };
        t.held.refuse_append(Some("n1"));
        let gate = t.held.hold_append("j1", When::After);

        let wakes = wakes();
        let mut replay = pin!(t.manager.replay_journal());
        // Run the replay until Redis has taken j1.
        tokio::select! {
            biased;
            _ = gate.reached.notified() => {}
            report = replay.as_mut() => panic!("the replay ended early: {report:?}"),
        }
        // It removes j1 from the journal (the query waits behind the plug) ...
        let first = plug();
        gate.open.notify_one();
        assert!(poll_once(replay.as_mut(), &wakes).is_pending());
        let second = plug();
        first.release();
        wakes.woken.notified().await;
        // ... then asks for the session's next entries (waiting behind the second
        // plug), and gets none; it waits to be polled again.
        assert!(poll_once(replay.as_mut(), &wakes).is_pending());
        second.release();
        wakes.woken.notified().await;

        let receipt = t.manager.append(&t.key, messages(&["n1"])).await.unwrap();
        assert!(receipt.journaled);
        t.held.refuse_append(None);
        let report = replay.await.unwrap();
        assert_eq!(report.replayed, 1, "{report:?}");

        let (seen, partial) = t.read().await;
        assert!(partial || seen == ["j1", "n1"], "{seen:?}");
        let report = t.manager.replay_journal().await.unwrap();
        assert_eq!(report.replayed, 1, "{report:?}");
        assert_eq!(t.read().await, (vec!["j1".into(), "n1".into()], false));
    });
}

/// A page read while the replay holds the replay lock (moving this very session, which
/// an earlier process journaled) reads the store without the session's journaled
/// messages: the last page must still have
/// them, or say it is partial. `when`: whether the replay's append is held before
/// Redis runs it (the message only in the journal) or after (in both).
async fn page_during_the_replay(when: When) {
    let Some(t) = setup(&[]).await else {
        return;
    };
    t.manager.append(&t.key, messages(&["a1"])).await.unwrap();
    t.journal_elsewhere(&["j1", "j2"]).await;
    let gate = t.held.hold_append("j1", when);
    let replay = tokio::spawn({
        let manager = t.manager.clone();
        async move { manager.replay_journal().await }
    });
    gate.reached.notified().await;

    let limit = ReadLimit::new(10, 1 << 20);
    let page = t.manager.page(&t.key, None, limit).await.unwrap().unwrap();
    let seen = texts(&page.messages);
    assert!(!page.has_more, "{page:?}");
    assert!(page.partial || seen == ["a1", "j1", "j2"], "{seen:?}");

    gate.open.notify_one();
    let report = replay.await.unwrap().unwrap();
    assert_eq!(report.replayed, 2, "{report:?}");
    let page = t.manager.page(&t.key, None, limit).await.unwrap().unwrap();
    assert_eq!(texts(&page.messages), ["a1", "j1", "j2"]);
    assert!(!page.partial);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_read_during_the_replay_has_the_journaled_messages() {
    page_during_the_replay(When::Before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_read_during_the_replay_has_each_message_once() {
    page_during_the_replay(When::After).await;
}

/// The journaled messages do not fit on the store's last page: one more page has them,
/// flagged partial when the journal holds more than that page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journaled_messages_that_do_not_fit_come_on_one_more_page() {
    let Some(t) = setup(&[]).await else {
        return;
    };
    t.manager.append(&t.key, messages(&["a1"])).await.unwrap();
    t.journal_elsewhere(&["j1", "j2"]).await;
    let gate = t.held.hold_append("j1", When::Before);
    let replay = tokio::spawn({
        let manager = t.manager.clone();
        async move { manager.replay_journal().await }
    });
    gate.reached.notified().await;

    let one = ReadLimit::new(1, 1 << 20);
    let first = t.manager.page(&t.key, None, one).await.unwrap().unwrap();
    assert_eq!(texts(&first.messages), ["a1"]);
    assert!(first.has_more && !first.partial, "{first:?}");
    let next = t.manager.page(&t.key, first.next_cursor, one).await;
    let next = next.unwrap().unwrap();
    assert_eq!(texts(&next.messages), ["j1"]);
    assert!(!next.has_more && next.partial, "{next:?}");
    let all = ReadLimit::new(3, 1 << 20);
    let page = t.manager.page(&t.key, None, all).await.unwrap().unwrap();
    assert_eq!(texts(&page.messages), ["a1", "j1", "j2"]);
    assert!(!page.has_more && !page.partial, "{page:?}");

    gate.open.notify_one();
    replay.await.unwrap().unwrap();
}
