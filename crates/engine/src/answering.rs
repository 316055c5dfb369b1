//! Producing a turn's answer: streamed to the caller while it is kept, stopped by a
//! cancellation (the partial answer then becomes an `incomplete` message), and cut to
//! the store's size limit. Shared by ragchat's own turns and supplied conversations.

use std::sync::{Arc, Mutex};

use ragchat_memory::{Message, MessageStatus, SourceRef};
use ragchat_rag::{AnswerOptions, AnswerRequest, Answerer, RagError};
use tokio_util::sync::CancellationToken;

/// The answer of a turn, as the message to store.
pub(crate) struct Answered {
    /// The assistant's message: complete with its sources, or `incomplete` when cancelled
    /// or cut to the size limit.
    pub(crate) reply: Message,
    /// Set when the offline answerer stood in for the LLM: one line saying so and why.
    pub(crate) fallback: Option<String>,
}

/// Asks `answerer` (with `options` when given, else its defaults), streaming text
/// deltas to `sink`; a `cancel` that fires first keeps what was streamed so far.
/// The reply is cut to `max_bytes`.
///
/// # Errors
/// The answerer's error (nothing has been written).
pub(crate) async fn answer_streamed(
    answerer: &dyn Answerer,
    request: &AnswerRequest,
    options: Option<&AnswerOptions>,
    max_bytes: usize,
    sink: &mut (dyn for<'t> FnMut(&'t str) + Send),
    cancel: &CancellationToken,
) -> Result<Answered, RagError> {
    let streamed = Arc::new(Mutex::new(String::new()));
    let answer = {
        let streamed = Arc::clone(&streamed);
        let mut tee = move |delta: &str| {
            streamed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_str(delta);
            sink(delta);
        };
        let answering = async {
            match options {
                Some(options) => answerer.answer_with(request, options, &mut tee).await,
                None => answerer.answer(request, &mut tee).await,
            }
        };
        tokio::select! {
            answer = answering => Some(answer?),
            _ = cancel.cancelled() => None,
        }
    };

    let fallback = answer.as_ref().and_then(|a| a.fallback.clone());
    let reply = match answer {
        Some(answer) => Message::assistant(answer.text)
            .with_sources(answer.sources.iter().map(SourceRef::from).collect()),
        None => {
            let partial = std::mem::take(&mut *streamed.lock().unwrap_or_else(|e| e.into_inner()));
            let partial = if partial.trim().is_empty() {
                "(no answer: the turn was cancelled)".to_string()
            } else {
                partial
            };
            Message::assistant(partial).with_status(MessageStatus::Incomplete)
        }
    };
    Ok(Answered {
        reply: fit_answer(reply, max_bytes),
        fallback,
    })
}

/// The size limit is for what people send; an answer longer than it (a verbose LLM)
/// is cut at the limit and marked `incomplete` rather than failing the turn.
fn fit_answer(mut reply: Message, limit: usize) -> Message {
    if reply.content.len() > limit {
        let mut cut = limit;
        while !reply.content.is_char_boundary(cut) {
            cut -= 1;
        }
        reply.content.truncate(cut);
        reply.status = MessageStatus::Incomplete;
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_answer_is_cut_at_a_character_boundary_and_marked_incomplete() {
        let reply = fit_answer(Message::assistant("é".repeat(10)), 5);
        assert_eq!(reply.content, "éé");
        assert_eq!(reply.status, MessageStatus::Incomplete);
        let short = fit_answer(Message::assistant("fine"), 5);
        assert_eq!(short.status, MessageStatus::Complete);
    }
}
