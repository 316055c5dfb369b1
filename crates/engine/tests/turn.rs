//! `ChatEngine` on its own: the size limit guards what people send, not what the
//! answerer produces.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use ragchat_engine::{ChatEngine, EngineConfig};
use ragchat_memory::{
    open_store, ManagerConfig, MessageStatus, SessionKey, SessionManager, StoreOptions,
};
use ragchat_rag::{Answer, AnswerRequest, Answerer};
use support::index;

/// An answerer that talks far too much.
struct Verbose;

#[async_trait]
impl Answerer for Verbose {
    fn describe(&self) -> String {
        "verbose".into()
    }

    async fn answer(
        &self,
        _request: &AnswerRequest,
        sink: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> ragchat_rag::Result<Answer> {
        let text = "é".repeat(3000);
        sink(&text);
        Ok(Answer {
            text,
            ..Answer::default()
        })
    }
}

#[tokio::test]
async fn an_answer_over_the_limit_is_cut_and_marked_incomplete_not_refused() {
    let store = open_store("memory://", &StoreOptions::default())
        .await
        .unwrap();
    let memory = SessionManager::new(
        store,
        ManagerConfig {
            max_content_bytes: 1001,
            ..ManagerConfig::default()
        },
    );
    let engine = ChatEngine::new(
        memory.clone(),
        index(),
        Arc::new(Verbose),
        EngineConfig::default(),
    );
    let key = SessionKey::new("u", "s").unwrap();
    let outcome = engine
        .turn(&key, "Tell me everything", &mut |_| {})
        .await
        .unwrap();
    assert_eq!(outcome.answer.status, MessageStatus::Incomplete);
    assert_eq!(
        outcome.answer.content.len(),
        1000,
        "cut at a character boundary"
    );
    assert_eq!(memory.history(&key).await.unwrap().len(), 2);
    // The user's own message is still held to the limit.
    let err = engine
        .turn(&key, &"x".repeat(1002), &mut |_| {})
        .await
        .unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    assert_eq!(memory.history(&key).await.unwrap().len(), 2);
}
