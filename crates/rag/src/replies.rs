//! Fixed replies: sentences the assistant says word for word, which other modules recognise in
//! the history (retrieval does not borrow topic terms from a "nothing found" answer).
//!
//! A leaf, so that retrieval can know them without depending on the answerers.

/// The reply when the documents hold nothing relevant.
pub const NOTHING_FOUND_REPLY: &str = "I couldn't find anything about that in the documents.";

/// The reply to "Continue" (or "Tell me more") when there is no earlier conversation.
pub const NO_CONVERSATION_REPLY: &str = "I don't have any earlier conversation with you to \
     continue. Ask me a question about the documents and I'll answer from them.";

/// The reply to a question about the conversation ("what did I ask about X?") when no
/// earlier message of the user's says it.
pub const NOTHING_RECALLED_REPLY: &str = "I couldn't find that in our earlier conversations.";
