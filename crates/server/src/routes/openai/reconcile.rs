//! Which stored conversation a chat-completions request continues, and what of it the
//! store lacks.
//!
//! The protocol is stateless: a client resends the whole conversation with every turn.
//! ragchat maps it onto one stored session and stores only what is new, by these rules.
//!
//! **The session.** With an `X-Session-Id` header, that session. Without one, a session
//! derived from the conversation's opening: `oai-` and 32 hex digits of a SHA-256 over the
//! user, and the messages up to and including the first user message (so the system prompt
//! counts). The derivation is a pure function of its input: every server, before and after
//! a restart, derives the same id.
//!
//! **Aligning.** Messages are compared by role and text (ignoring surrounding whitespace).
//! When the stored conversation is a prefix of what the client sent before its new
//! message, the turn continues it: the sent messages beyond the stored ones (normally
//! none) are stored, then the question and the answer. A session trimmed to its newest
//! `--max-messages` continues when what it holds is the tail of what was sent.
//!
//! **Branches.** When they disagree (the client edited an earlier message, asked for an
//! answer again, or is a different chat that opened with the same words), the stored
//! conversation is left as it is and the turn goes to a branch: a session whose id is
//! derived from the parent's id and the sent messages up to the last user message at or
//! before the first difference. The branch is checked the same way, and so on (at most
//! [`MAX_BRANCH_DEPTH`] levels). A new branch stores the whole conversation as the client
//! sent it, so every stored session reads as one coherent chat. Because a branch's id
//! depends only on what both the branching request and its follow-ups send, the next turn
//! of an edited chat finds its branch again.
//!
//! **Asking again.** A request whose conversation is already stored up to and including
//! its question (a regenerated answer, or a client retrying) branches too; if the new
//! answer equals an answer already stored for that question, nothing is stored and the
//! stored answer is returned.
//!
//! **Memory mode.** With `X-Session-Id` and no earlier user or assistant message in the
//! request, the client relies on ragchat's memory: the stored conversation is the context.
//! System messages sent that way are stored with the first turn of a session only; later
//! they frame the turn without being stored.
//!
//! **Store unreachable.** When the history comes only from this server's cache and journal
//! (Redis down), a request cannot be aligned with certainty: its turn is appended to the
//! session the rules above name first, and nothing the client resent is stored again.

use ragchat_memory::{Message, Role, SessionKey, SessionManager};
use sha2::{Digest, Sha256};

use super::error::OpenAiError;

/// Prefix of the session ids derived from conversations.
pub const SESSION_PREFIX: &str = "oai-";

/// Most branch levels followed for one request.
pub const MAX_BRANCH_DEPTH: usize = 32;

/// One message as a client sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentMessage {
    /// Who spoke (`developer` arrives here as `System`).
    pub role: Role,
    /// The text.
    pub content: String,
}

impl SentMessage {
    /// A sent message.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        SentMessage {
            role,
            content: content.into(),
        }
    }

    fn same_as(&self, stored: &Message) -> bool {
        self.role == stored.role && self.content.trim() == stored.content.trim()
    }

    fn into_message(self) -> Message {
        Message::new(self.role, self.content)
    }
}

/// Where a request's turn goes.
#[derive(Debug)]
pub struct Resolution {
    /// The session the turn is stored in.
    pub key: SessionKey,
    /// The conversation before the question: the answer's context.
    pub context: Vec<Message>,
    /// `context[store_from..]` is not stored yet.
    pub store_from: usize,
    /// The new user message.
    pub question: String,
    /// Answers stored for this very question in the sessions passed on the way.
    pub known_answers: Vec<(SessionKey, Message)>,
}

/// How a stored conversation relates to the sent one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alignment {
    /// The stored conversation is what was sent before the question, or a prefix of it:
    /// `sent[unstored_from..question]` is missing from the store.
    Extends {
        /// Index of the first sent message the store lacks.
        unstored_from: usize,
    },
    /// They differ at this index (the length of the sent conversation when the stored
    /// one holds all of it, question included).
    Diverges {
        /// Index of the first difference.
        at: usize,
    },
}

/// The session id derived from a conversation's opening (see the module docs).
pub fn root_session(user: &str, sent: &[SentMessage]) -> String {
    let opening = sent
        .iter()
        .position(|m| m.role == Role::User)
        .map_or(sent, |first| &sent[..=first]);
    let mut hash = Sha256::new();
    hash.update(b"ragchat/openai/root/v1\0");
    update_str(&mut hash, user);
    update_messages(&mut hash, opening);
    session_id(hash)
}

/// The id of the branch of `parent` for a conversation that opens with `prefix`.
pub fn branch_session(user: &str, parent: &str, prefix: &[SentMessage]) -> String {
    let mut hash = Sha256::new();
    hash.update(b"ragchat/openai/branch/v1\0");
    update_str(&mut hash, user);
    update_str(&mut hash, parent);
    update_messages(&mut hash, prefix);
    session_id(hash)
}

fn update_str(hash: &mut Sha256, text: &str) {
    // Length-prefixed, so no two different inputs encode the same.
    hash.update((text.len() as u64).to_be_bytes());
    hash.update(text.as_bytes());
}

fn update_messages(hash: &mut Sha256, messages: &[SentMessage]) {
    for m in messages {
        update_str(hash, m.role.as_str());
        update_str(hash, m.content.trim());
    }
}

fn session_id(hash: Sha256) -> String {
    let digest = hash.finalize();
    let mut id = String::with_capacity(SESSION_PREFIX.len() + 32);
    id.push_str(SESSION_PREFIX);
    for byte in &digest[..16] {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// Aligns a stored conversation with a sent one whose last message is the question.
/// `max_messages` is the store's per-session limit (0 = none).
pub fn align(stored: &[&Message], sent: &[SentMessage], max_messages: u64) -> Alignment {
    let question = sent.len().saturating_sub(1);
    let common = stored
        .iter()
        .zip(sent)
        .take_while(|(s, m)| m.same_as(s))
        .count();
    if common == stored.len() && stored.len() <= question {
        return Alignment::Extends {
            unstored_from: stored.len(),
        };
    }
    let trimmed = max_messages > 0 && stored.len() as u64 >= max_messages;
    if trimmed && stored.len() <= question {
        let offset = question - stored.len();
        let tail = &sent[offset..question];
        if stored.iter().zip(tail).all(|(s, m)| m.same_as(s)) {
            return Alignment::Extends {
                unstored_from: question,
            };
        }
    }
    Alignment::Diverges { at: common }
}

/// How many sent messages name the branch for a difference at `at`: up to and including
/// the last user message at or before it.
pub fn branch_cut(sent: &[SentMessage], at: usize) -> usize {
    if sent.is_empty() {
        return 0;
    }
    let question = sent.len() - 1;
    let upto = at.min(question);
    sent[..=upto]
        .iter()
        .rposition(|m| m.role == Role::User)
        .unwrap_or(question)
        + 1
}

/// Decides where a request's turn goes; see the module docs. `sent` is the whole
/// conversation the client sent, its last message the user's question; `named` is the
/// `X-Session-Id` header.
///
/// # Errors
/// 400 for an invalid session id; 409 past [`MAX_BRANCH_DEPTH`] branches; the store's
/// errors (503 when it and the journal are unavailable).
pub async fn resolve(
    memory: &SessionManager,
    user: &str,
    named: Option<&str>,
    mut sent: Vec<SentMessage>,
) -> Result<Resolution, OpenAiError> {
    let Some(last) = sent.pop() else {
        return Err(OpenAiError::invalid("messages", "messages is empty"));
    };
    let question = last.content.clone();
    let relies_on_memory = !sent
        .iter()
        .any(|m| matches!(m.role, Role::User | Role::Assistant));
    if let (Some(named), true) = (named, relies_on_memory) {
        return from_memory(memory, user, named, sent, question).await;
    }
    sent.push(last);

    let max_messages = memory.config().max_messages;
    let mut session = match named {
        Some(named) => named.to_string(),
        None => root_session(user, &sent),
    };
    let mut known_answers = Vec::new();
    for _ in 0..MAX_BRANCH_DEPTH {
        let key = session_key(user, &session)?;
        let history = memory.history(&key).await?;
        let stored: Vec<&Message> = history.iter().collect();
        let alignment = if history.is_partial() {
            // Only this server's copy: do not judge, and resend nothing.
            Alignment::Extends {
                unstored_from: sent.len() - 1,
            }
        } else {
            align(&stored, &sent, max_messages)
        };
        match alignment {
            Alignment::Extends { unstored_from } => {
                drop(stored);
                drop(history);
                sent.pop();
                return Ok(Resolution {
                    key,
                    context: sent.into_iter().map(SentMessage::into_message).collect(),
                    store_from: unstored_from,
                    question,
                    known_answers,
                });
            }
            Alignment::Diverges { at } => {
                if at == sent.len() {
                    if let Some(answer) = stored.get(at).filter(|m| m.role == Role::Assistant) {
                        known_answers.push((key.clone(), (*answer).clone()));
                    }
                }
                session = branch_session(user, &session, &sent[..branch_cut(&sent, at)]);
            }
        }
    }
    Err(OpenAiError::too_many_branches(MAX_BRANCH_DEPTH))
}

/// Memory mode: the stored conversation is the context.
async fn from_memory(
    memory: &SessionManager,
    user: &str,
    named: &str,
    systems: Vec<SentMessage>,
    question: String,
) -> Result<Resolution, OpenAiError> {
    let key = session_key(user, named)?;
    let history = memory.history(&key).await?;
    if history.is_empty() {
        return Ok(Resolution {
            key,
            context: systems.into_iter().map(SentMessage::into_message).collect(),
            store_from: 0,
            question,
            known_answers: Vec::new(),
        });
    }
    let context: Vec<Message> = if systems.is_empty() {
        history.to_vec()
    } else {
        let mut context: Vec<Message> =
            systems.into_iter().map(SentMessage::into_message).collect();
        context.extend(history.iter().filter(|m| m.role != Role::System).cloned());
        context
    };
    Ok(Resolution {
        key,
        store_from: context.len(),
        context,
        question,
        known_answers: Vec::new(),
    })
}

fn session_key(user: &str, session: &str) -> Result<SessionKey, OpenAiError> {
    SessionKey::new(user, session)
        .map_err(|e| OpenAiError::invalid("X-Session-Id", format!("X-Session-Id: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(turns: &[(Role, &str)]) -> Vec<SentMessage> {
        turns
            .iter()
            .map(|(r, c)| SentMessage::new(*r, *c))
            .collect()
    }

    fn stored(turns: &[(Role, &str)]) -> Vec<Message> {
        turns.iter().map(|(r, c)| Message::new(*r, *c)).collect()
    }

    use Role::{Assistant as A, System as S, User as U};

    #[test]
    fn derived_ids_are_stable_valid_and_depend_on_user_and_opening() {
        let chat = sent(&[
            (S, "Be brief."),
            (U, "What is ML?"),
            (A, "Learning."),
            (U, "More"),
        ]);
        let id = root_session("alice", &chat);
        assert!(id.starts_with(SESSION_PREFIX) && id.len() == SESSION_PREFIX.len() + 32);
        SessionKey::new("alice", &id).expect("a valid session id");
        // Pinned (computed independently): a change to the derivation would orphan every
        // stored conversation after an upgrade.
        assert_eq!(id, "oai-26964b4f8d0a6903d3f25e7f35f08602");
        assert_eq!(id, root_session("alice", &chat[..2]));
        assert_eq!(
            id,
            root_session("alice", &sent(&[(S, " Be brief.\n"), (U, "What is ML?")]))
        );
        assert_ne!(id, root_session("bob", &chat));
        assert_ne!(
            id,
            root_session("alice", &chat[1..]),
            "the system prompt counts"
        );
        let branch = branch_session("alice", &id, &chat[..2]);
        assert_ne!(branch, id);
        assert_eq!(branch, branch_session("alice", &id, &chat[..2]));
        assert_ne!(branch, branch_session("alice", &branch, &chat[..2]));
    }

    #[test]
    fn alignment_extends_a_stored_prefix_and_finds_the_first_difference() {
        let chat = sent(&[(U, "q1"), (A, "a1"), (U, "q2"), (A, "a2"), (U, "q3")]);
        let align_with = |s: &[Message], limit| {
            let refs: Vec<&Message> = s.iter().collect();
            align(&refs, &chat, limit)
        };
        let all = stored(&[(U, "q1"), (A, "a1"), (U, "q2"), (A, "a2")]);
        assert_eq!(align_with(&all, 0), Alignment::Extends { unstored_from: 4 });
        assert_eq!(
            align_with(&all[..2], 0),
            Alignment::Extends { unstored_from: 2 }
        );
        assert_eq!(align_with(&[], 0), Alignment::Extends { unstored_from: 0 });
        let edited = stored(&[(U, "q1"), (A, "a1"), (U, "q2 edited"), (A, "x")]);
        assert_eq!(align_with(&edited, 0), Alignment::Diverges { at: 2 });
        let longer = stored(&[
            (U, "q1"),
            (A, "a1"),
            (U, "q2"),
            (A, "a2"),
            (U, "q3"),
            (A, "a3"),
        ]);
        assert_eq!(align_with(&longer, 0), Alignment::Diverges { at: 5 });
        // Trimmed to its newest two messages: the tail of what was sent.
        let tail = stored(&[(U, "q2"), (A, "a2")]);
        assert_eq!(
            align_with(&tail, 2),
            Alignment::Extends { unstored_from: 4 }
        );
        assert_eq!(align_with(&tail, 0), Alignment::Diverges { at: 0 });
    }

    #[test]
    fn branches_are_named_by_the_last_user_message_at_or_before_the_difference() {
        let chat = sent(&[(S, "sys"), (U, "q1"), (A, "a1"), (U, "q2")]);
        assert_eq!(
            branch_cut(&chat, 1),
            2,
            "an edited user message is included"
        );
        assert_eq!(
            branch_cut(&chat, 2),
            2,
            "a different answer: up to its question"
        );
        assert_eq!(branch_cut(&chat, 3), 4);
        assert_eq!(branch_cut(&chat, 4), 4, "asked again: the whole request");
        assert_eq!(
            branch_cut(&chat, 0),
            4,
            "no user message before: the whole request"
        );
    }
}
