//! [`AnswerOptions`]: per-request settings a caller may pass to an answerer.

/// Sampling settings for one answer, as a chat-completions client sends them.
///
/// Each `None` leaves the answerer's own configuration in force. A model behind
/// [`super::OpenAiAnswerer`] receives them as `temperature` and `max_tokens`; the offline
/// [`super::ExtractiveAnswerer`] quotes sentences and has nothing to sample, so it ignores
/// them (its answers are a few sentences long by construction).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AnswerOptions {
    /// Sampling temperature (0 to 2 in the chat-completions protocol).
    pub temperature: Option<f32>,
    /// Upper bound on the tokens of the answer.
    pub max_tokens: Option<u32>,
}
