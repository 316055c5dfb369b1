//! Recall in answers, end to end over real stores (an SQLite file, a PostgreSQL server the
//! harness starts): the bundled documents, the offline answerer, and conversations long
//! enough that what is asked about left the context window long ago.
//!
//! - a 2000-message conversation: "what did I ask about X earlier?" cites the early turn;
//! - the evaluation set of `eval/search` (three users, twelve long conversations): each
//!   needle asked back in the chat's words ("what did you tell me about ...?") from a new
//!   conversation, across the user's conversations. Printed: the share whose message was
//!   recalled into the context (recall@5 of recall in answers) and the share whose answer
//!   cites it. Every recalled message is the asker's own.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use ragchat_engine::{ChatEngine, EngineConfig, RecallConfig, TurnOutcome};
use ragchat_memory::store::AppendOptions;
use ragchat_memory::testing::eval_set::{build, store_set};
use ragchat_memory::{
    open_store, Message, MessageId, SessionKey, SessionManager, SessionStore, StoreOptions,
};
use ragchat_rag::{ExtractiveAnswerer, NOTHING_RECALLED_REPLY};
use support::index;

/// The least share of asked-back needles recalled into the context (measured 2026-11-29:
/// see the test's output and BENCHMARKS.md).
const MIN_CONTEXT_RECALL: f64 = 0.9;
/// The least share of asked-back needles the answer cites.
const MIN_ANSWER_RECALL: f64 = 0.9;

fn engine(store: Arc<dyn SessionStore>, recall: RecallConfig) -> ChatEngine {
    let index = index();
    let answerer = Arc::new(ExtractiveAnswerer::for_index(&index));
    let memory = SessionManager::new(store, Default::default());
    ChatEngine::new(
        memory,
        index,
        answerer,
        EngineConfig {
            recall,
            ..EngineConfig::default()
        },
    )
}

fn across(max_messages: usize) -> RecallConfig {
    RecallConfig {
        across: true,
        max_messages,
        // The evaluation runs on a shared CI machine; recall is judged, not its speed.
        timeout: std::time::Duration::from_secs(30),
        ..RecallConfig::default()
    }
}

fn cites(outcome: &TurnOutcome, id: MessageId) -> bool {
    let id = id.to_string();
    outcome
        .answer
        .sources
        .iter()
        .any(|s| s.conversation.as_ref().is_some_and(|c| c.message_id == id))
}

/// A conversation of 2000 messages whose fifth is the question asked about at the end.
async fn the_early_turn_of_a_long_conversation_is_cited(store: Arc<dyn SessionStore>) {
    let key = SessionKey::new("dana", "ops-log").unwrap();
    let filler: Vec<String> = build()
        .sessions
        .into_iter()
        .flat_map(|(_, messages)| messages)
        .map(|m| m.content)
        .collect();
    let early = Message::user("How do I rotate the nginx logs without restarting the server?");
    let early_id = early.id;
    let mut messages: Vec<Message> = (0..2000)
        .map(|i| {
            let text = filler[i % filler.len()].clone();
            if i % 2 == 0 {
                Message::user(text)
            } else {
                Message::assistant(text)
            }
        })
        .collect();
    messages[4] = early;
    messages[5] = Message::assistant("Use logrotate with copytruncate, or send nginx USR1.");
    for chunk in messages.chunks(250) {
        store
            .append(&key, chunk, AppendOptions::KEEP_ALL)
            .await
            .expect("append");
    }
    let engine = engine(store, RecallConfig::default());
    let outcome = engine
        .turn(
            &key,
            "What did I ask about rotating the nginx logs earlier?",
            &mut |_| {},
        )
        .await
        .expect("turn");
    assert!(cites(&outcome, early_id), "{}", outcome.answer.content);
    assert!(
        outcome
            .answer
            .content
            .contains("\"How do I rotate the nginx logs without restarting the server?\""),
        "{}",
        outcome.answer.content
    );
    let cited = outcome.answer.sources[0].conversation.as_ref().unwrap();
    assert_eq!((cited.session.as_str(), cited.seq), ("ops-log", 5));

    // Something never said is declined plainly, not answered with a near miss.
    let outcome = engine
        .turn(
            &key,
            "What did I ask about the Kafka consumer lag?",
            &mut |_| {},
        )
        .await
        .expect("turn");
    assert_eq!(outcome.answer.content, NOTHING_RECALLED_REPLY);
}

/// Stores the set, runs `loaded`, asks every needle back from a new conversation of its
/// user; returns (context recall, answer recall).
async fn asked_back(store: Arc<dyn SessionStore>, loaded: impl FnOnce()) -> (f64, f64) {
    let set = build();
    store_set(store.as_ref(), &set).await;
    loaded();
    let engine = engine(store, across(5));
    let (mut asked, mut recalled, mut cited) = (0, 0, 0);
    for (needle, id) in &set.needles {
        let Some(question) = &needle.asked_back else {
            continue;
        };
        asked += 1;
        let own: HashSet<&str> = set
            .sessions
            .iter()
            .filter(|(k, _)| k.user() == needle.user)
            .map(|(k, _)| k.session())
            .collect();
        let key = SessionKey::new(&needle.user, format!("ask-{}", needle.id)).unwrap();
        let outcome = engine
            .turn(&key, question, &mut |_| {})
            .await
            .expect("turn");
        for turn in &outcome.recalled {
            assert!(
                own.contains(turn.at.session.as_str()),
                "{} recalled another user's message",
                needle.user
            );
        }
        let in_context = outcome
            .recalled
            .iter()
            .any(|t| t.at.message_id == id.to_string());
        recalled += usize::from(in_context);
        cited += usize::from(cites(&outcome, *id));
        if !cites(&outcome, *id) {
            println!(
                "  {}: {question:?} -> {:?} (recalled: {in_context})",
                needle.id, outcome.answer.content
            );
        }
        // The question is not left behind to be recalled by the next ones.
        engine.memory().delete(&key).await.expect("delete");
    }
    let context = recalled as f64 / asked as f64;
    let answer = cited as f64 / asked as f64;
    println!(
        "{asked} questions asked back: recalled into the context (recall@5) {context:.3} \
         ({recalled}/{asked}), cited by the answer {answer:.3} ({cited}/{asked})"
    );
    (context, answer)
}

fn judge((context, answer): (f64, f64)) {
    assert!(
        context >= MIN_CONTEXT_RECALL,
        "recall@5 in context {context:.3} < {MIN_CONTEXT_RECALL}"
    );
    assert!(
        answer >= MIN_ANSWER_RECALL,
        "answer recall {answer:.3} < {MIN_ANSWER_RECALL}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_2000_message_conversation_remembers_its_early_turn() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("long.db").display());
    let store = open_store(&url, &StoreOptions::default()).await.unwrap();
    the_early_turn_of_a_long_conversation_is_cited(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_2000_message_conversation_remembers_its_early_turn() {
    let Some(server) = ragchat_testkit::postgres_or_skip() else {
        return;
    };
    let url = server.create_database("recall_long");
    let store = open_store(&url, &StoreOptions::default()).await.unwrap();
    the_early_turn_of_a_long_conversation_is_cited(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_needles_asked_back_are_recalled_and_cited() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("eval.db").display());
    let store = open_store(&url, &StoreOptions::default()).await.unwrap();
    judge(asked_back(store, || {}).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_needles_asked_back_are_recalled_and_cited() {
    let Some(server) = ragchat_testkit::postgres_or_skip() else {
        return;
    };
    let url = server.create_database("recall_eval");
    let store = open_store(&url, &StoreOptions::default()).await.unwrap();
    // Term weights come from the column's statistics (autovacuum gathers them after a load).
    let analyze = || {
        server.psql("recall_eval", "ANALYZE ragchat_messages");
    };
    judge(asked_back(store, analyze).await);
}

#[tokio::test]
async fn a_store_that_cannot_search_answers_without_recall() {
    let store = open_store("memory://", &StoreOptions::default())
        .await
        .unwrap();
    let engine = engine(store, across(5));
    let key = SessionKey::new("u", "s").unwrap();
    engine
        .turn(&key, "What is overfitting?", &mut |_| {})
        .await
        .unwrap();
    let outcome = engine
        .turn(&key, "What did I ask about overfitting?", &mut |_| {})
        .await
        .expect("the turn goes on without recall");
    assert!(outcome.recalled.is_empty());
    // The recent window still holds it.
    assert!(
        outcome.answer.content.contains("\"What is overfitting?\""),
        "{}",
        outcome.answer.content
    );
}

#[tokio::test]
async fn recall_off_recalls_nothing_and_across_off_stays_in_the_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = open_store(&url, &StoreOptions::default()).await.unwrap();
    let trip = SessionKey::new("u", "trip").unwrap();
    store
        .append(
            &trip,
            &[Message::user("Is the train to Sintra fast?")],
            AppendOptions::KEEP_ALL,
        )
        .await
        .unwrap();
    let other = SessionKey::new("u", "other").unwrap();
    let question = "Did I ask about the train to Sintra?";

    let off = engine(store.clone(), RecallConfig::off());
    let outcome = off.turn(&other, question, &mut |_| {}).await.unwrap();
    assert!(outcome.recalled.is_empty());
    assert_eq!(outcome.answer.content, NOTHING_RECALLED_REPLY);

    let here_only = engine(store.clone(), RecallConfig::default());
    let outcome = here_only.turn(&other, question, &mut |_| {}).await.unwrap();
    assert!(outcome.recalled.iter().all(|t| t.at.session == "other"));
    assert_eq!(outcome.answer.content, NOTHING_RECALLED_REPLY);

    let everywhere = engine(store, across(4));
    let outcome = everywhere
        .turn(&other, question, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        outcome.answer.content,
        format!(
            "In conversation `trip` on {} you asked: \"Is the train to Sintra fast?\" [1]",
            outcome.recalled[0].at.created_at.get(..10).unwrap()
        )
    );
}

/// The questions a newcomer asks after a few turns of the README's walk-through: the
/// first question by its place, and the last one after a question about the conversation.
#[tokio::test]
async fn the_first_and_the_last_question_are_quoted_by_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = open_store(&url, &StoreOptions::default()).await.unwrap();
    let engine = engine(store, RecallConfig::default());
    let key = SessionKey::new("u", "s").unwrap();
    for question in ["What is overfitting?", "How do I avoid it?"] {
        engine.turn(&key, question, &mut |_| {}).await.unwrap();
    }
    for (question, expected) in [
        (
            "What was my first question?",
            "The first question of yours I still have from this conversation: \"What is \
             overfitting?\"",
        ),
        (
            "What did I ask first?",
            "The first question of yours I still have from this conversation: \"What is \
             overfitting?\"",
        ),
        (
            "What did we talk about earlier?",
            "You last asked: \"How do I avoid it?\"",
        ),
    ] {
        let outcome = engine.turn(&key, question, &mut |_| {}).await.unwrap();
        assert_eq!(outcome.answer.content, expected, "{question}");
        assert!(outcome.answer.sources.is_empty(), "{question}");
    }
}

/// "My first question about X" is the oldest question on X and "my last question about X"
/// the newest, where "what did I ask about X?" quotes the most recent ones first.
#[tokio::test]
async fn the_first_and_the_last_question_on_a_topic_are_quoted_by_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = open_store(&url, &StoreOptions::default()).await.unwrap();
    let engine = engine(store, RecallConfig::default());
    let key = SessionKey::new("u", "s").unwrap();
    for question in ["What is overfitting?", "How do I reduce overfitting?"] {
        engine.turn(&key, question, &mut |_| {}).await.unwrap();
    }
    let first = engine
        .turn(
            &key,
            "What was my first question about overfitting?",
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(
        first.answer.content,
        "A little earlier in this conversation you asked: \"What is overfitting?\""
    );
    let last = engine
        .turn(
            &key,
            "What was my last question about overfitting?",
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(
        last.answer.content,
        "A little earlier in this conversation you asked: \"How do I reduce overfitting?\""
    );
    let any = engine
        .turn(&key, "What did I ask about overfitting?", &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        any.answer.content,
        "A little earlier in this conversation you asked: \"How do I reduce overfitting?\" A \
         little earlier in this conversation you asked: \"What is overfitting?\""
    );
}
