//! [`FallbackAnswerer`]: an LLM answerer backed by the offline one.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Answer, AnswerRequest, Answerer};
use crate::acts::conversation_act;
use crate::error::Result;

/// Answers with `primary` (an LLM), and with `offline` when the primary fails before it said
/// anything (unreachable, timed out or refusing after its own retries) and for conversation
/// acts (greetings, thanks, "what can you do?"), which need no model.
///
/// A fallback answer carries [`Answer::fallback`]: one line for people saying why the offline
/// answer was given, so interfaces can show it (REPL), flag it (`"fallback": true` in JSON) and
/// log it. A primary that fails after streaming part of its answer still fails: the part the
/// caller already showed cannot be taken back, and an offline answer glued to it would read as
/// one confused reply.
#[derive(Clone)]
pub struct FallbackAnswerer {
    primary: Arc<dyn Answerer>,
    offline: Arc<dyn Answerer>,
}

impl FallbackAnswerer {
    /// `primary` backed by `offline`.
    pub fn new(primary: Arc<dyn Answerer>, offline: Arc<dyn Answerer>) -> Self {
        FallbackAnswerer { primary, offline }
    }
}

#[async_trait]
impl Answerer for FallbackAnswerer {
    fn describe(&self) -> String {
        format!(
            "{} (falls back to {})",
            self.primary.describe(),
            self.offline.describe()
        )
    }

    /// # Errors
    /// The primary's error when it failed after streaming part of its answer; the offline
    /// answerer's error if that fails too.
    async fn answer(
        &self,
        request: &AnswerRequest,
        sink: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Answer> {
        if conversation_act(&request.question).is_some() {
            return self.offline.answer(request, sink).await;
        }
        let mut streamed = false;
        let result = {
            let mut watch = |delta: &str| {
                streamed |= !delta.is_empty();
                sink(delta);
            };
            self.primary.answer(request, &mut watch).await
        };
        match result {
            Ok(answer) => Ok(answer),
            Err(error) if streamed => Err(error),
            Err(error) => {
                tracing::warn!(%error, "the LLM failed; answering offline");
                let mut answer = self.offline.answer(request, sink).await?;
                answer.fallback = Some(format!(
                    "The language model did not answer ({}), so this answer was quoted from the documents offline.",
                    short_reason(&error)
                ));
                Ok(answer)
            }
        }
    }
}

/// The error as a short clause: the first line, without the endpoint's long error chain.
fn short_reason(error: &crate::RagError) -> String {
    use crate::RagError;
    match error {
        RagError::Unavailable { endpoint, .. } => format!("{endpoint} is unreachable"),
        RagError::Timeout { endpoint, after } => {
            format!("{endpoint} timed out after {} s", after.as_secs())
        }
        RagError::Llm {
            endpoint,
            status: Some(status),
            ..
        } => format!("{endpoint} answered HTTP {status}"),
        RagError::Llm { endpoint, .. } => format!("{endpoint} failed"),
        other => {
            let text = other.to_string();
            let line = text.lines().next().unwrap_or_default();
            match line.char_indices().nth(120) {
                Some((cut, _)) => format!("{}…", &line[..cut]),
                None => line.to_owned(),
            }
        }
    }
}
