//! The data model: messages, their ids and roles, cited sources, and session keys.
//!
//! `Role` and `SourceRef` live in `ragchat-core` (one definition for memory, retrieval and the
//! API schema) and are re-exported here.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{MemoryError, Result};

// Who wrote a message, and the passages an answer cites: one definition in `ragchat-core`,
// shared with the retrieval crate and the API schema.
pub use ragchat_core::{ParseRoleError, Role, SourceRef};

impl From<ParseRoleError> for MemoryError {
    fn from(e: ParseRoleError) -> Self {
        MemoryError::invalid(e)
    }
}

/// The session name used when a caller does not give one.
pub const DEFAULT_SESSION: &str = "default";

/// Longest user or session id, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// A time-ordered message id (UUIDv7): ids sort by creation time, and a message keeps
/// its id through retries and replays, which is what makes appends idempotent.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(Uuid);

impl MessageId {
    /// A fresh id for a message created now.
    pub fn new() -> Self {
        MessageId(Uuid::now_v7())
    }

    /// The id with this UUID: for ids derived from something else (an idempotency
    /// key) rather than from the time. Such ids still order by `created_at` first.
    pub fn from_uuid(uuid: Uuid) -> Self {
        MessageId(uuid)
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.0.hyphenated())
    }
}

impl FromStr for MessageId {
    type Err = MemoryError;

    /// # Errors
    /// `InvalidInput` when `s` is not a UUID.
    fn from_str(s: &str) -> Result<Self> {
        Uuid::parse_str(s)
            .map(MessageId)
            .map_err(|_| MemoryError::invalid(format!("message id {s:?} is not a UUID")))
    }
}

/// Whether a message was written in full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// The whole message was produced and stored.
    #[default]
    Complete,
    /// The message was cut short, e.g. a streamed answer whose client went away.
    Incomplete,
}

impl MessageStatus {
    /// The lowercase name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Complete => "complete",
            MessageStatus::Incomplete => "incomplete",
        }
    }
}

impl FromStr for MessageStatus {
    type Err = MemoryError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "complete" => Ok(MessageStatus::Complete),
            "incomplete" => Ok(MessageStatus::Incomplete),
            other => Err(MemoryError::invalid(format!(
                "status {other:?} is not one of complete, incomplete"
            ))),
        }
    }
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Message {
    /// Time-ordered id (UUIDv7); stable across retries and replays.
    #[cfg_attr(feature = "schema", schema(value_type = String, format = "uuid"))]
    pub id: MessageId,
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
    /// Passages the message cites (assistant answers).
    #[serde(default)]
    pub sources: Vec<SourceRef>,
    /// When the message was created (RFC 3339, millisecond precision).
    #[cfg_attr(feature = "schema", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<Utc>,
    /// Whether it was written in full.
    #[serde(default)]
    pub status: MessageStatus,
}

impl Message {
    /// A new complete message created now, with a fresh id and no sources.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            id: MessageId::new(),
            role,
            content: content.into(),
            sources: Vec::new(),
            created_at: now_millis(),
            status: MessageStatus::Complete,
        }
    }

    /// Shorthand for a user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// Shorthand for an assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// The same message with these sources.
    pub fn with_sources(mut self, sources: Vec<SourceRef>) -> Self {
        self.sources = sources;
        self
    }

    /// The same message with this status.
    pub fn with_status(mut self, status: MessageStatus) -> Self {
        self.status = status;
        self
    }

    /// The sources encoded as stored: JSON, or the empty string when there are none.
    pub fn sources_json(&self) -> String {
        if self.sources.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&self.sources).unwrap_or_default()
        }
    }

    /// Bytes this message counts for in session stats: content plus encoded sources.
    /// Every store computes the same figure.
    pub fn stored_bytes(&self) -> u64 {
        stored_bytes(&self.content, &self.sources_json())
    }

    /// Approximate RAM the message takes in a cache.
    pub(crate) fn ram_bytes(&self) -> u64 {
        let sources: usize = self
            .sources
            .iter()
            .map(|s| s.path.len() + s.heading.as_ref().map_or(0, String::len) + 48)
            .sum();
        (std::mem::size_of::<Message>() + self.content.len() + sources) as u64
    }

    /// Creation time in milliseconds since the Unix epoch.
    pub fn created_at_millis(&self) -> i64 {
        self.created_at.timestamp_millis()
    }
}

/// The bytes figure of a stored entry, from its stored parts.
pub(crate) fn stored_bytes(content: &str, sources_json: &str) -> u64 {
    (content.len() + sources_json.len()) as u64
}

/// Now, truncated to milliseconds (what every store keeps).
pub fn now_millis() -> DateTime<Utc> {
    millis_to_datetime(Utc::now().timestamp_millis())
}

/// A millisecond Unix timestamp as a UTC time (clamped to the epoch when out of range).
pub fn millis_to_datetime(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// Identifies one conversation: a user and one of their sessions.
///
/// Both parts match `[A-Za-z0-9._-]{1,64}`, so a key can never smuggle a path
/// separator, a Redis hash tag or a key separator into storage.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SessionKey {
    user: String,
    session: String,
}

impl SessionKey {
    /// A validated key.
    ///
    /// # Errors
    /// `InvalidInput` naming the offending part when either is empty, longer than 64
    /// bytes, or has a character outside `A-Z a-z 0-9 . _ -`.
    pub fn new(user: impl Into<String>, session: impl Into<String>) -> Result<Self> {
        let user = user.into();
        let session = session.into();
        validate_id("user", &user)?;
        validate_id("session", &session)?;
        Ok(SessionKey { user, session })
    }

    /// The user's `default` session.
    ///
    /// # Errors
    /// As [`SessionKey::new`].
    pub fn default_for(user: impl Into<String>) -> Result<Self> {
        Self::new(user, DEFAULT_SESSION)
    }

    /// The user id.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The session id.
    pub fn session(&self) -> &str {
        &self.session
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.user, self.session)
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({}/{})", self.user, self.session)
    }
}

/// Checks a user or session id against `[A-Za-z0-9._-]{1,64}`.
///
/// # Errors
/// `InvalidInput` with a message that names `what` and says what is wrong.
pub fn validate_id(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(MemoryError::invalid(format!("{what} id is empty")));
    }
    if value.len() > MAX_ID_LEN {
        return Err(MemoryError::invalid(format!(
            "{what} id is {} bytes long; the limit is {MAX_ID_LEN}",
            value.len()
        )));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(MemoryError::invalid(format!(
            "{what} id {value:?} contains {bad:?}; allowed are letters, digits, '.', '_' and '-'"
        )));
    }
    if value == "." || value == ".." {
        return Err(MemoryError::invalid(format!(
            "{what} id {value:?} is reserved"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_keys_are_accepted() {
        for id in ["alice", "a", "A-b_c.9", &"x".repeat(64)] {
            assert!(SessionKey::new(id, id).is_ok(), "{id}");
        }
    }

    #[test]
    fn invalid_ids_are_rejected_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("../x", "contains '/'"),
            ("a b", "contains ' '"),
            ("{tag}", "contains '{'"),
            ("a:b", "contains ':'"),
            ("ü", "contains 'ü'"),
            ("..", "reserved"),
        ];
        for (id, why) in cases {
            let err = SessionKey::new(id, "s").unwrap_err().to_string();
            assert!(
                err.contains("user id") && err.contains(why),
                "{id:?}: {err}"
            );
            let err = SessionKey::new("u", id).unwrap_err().to_string();
            assert!(
                err.contains("session id") && err.contains(why),
                "{id:?}: {err}"
            );
        }
        let long = "x".repeat(65);
        let err = SessionKey::new(long, "s").unwrap_err().to_string();
        assert!(err.contains("65 bytes"), "{err}");
    }

    #[test]
    fn message_ids_are_time_ordered_and_round_trip() {
        let a = MessageId::new();
        let b = MessageId::new();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<MessageId>().unwrap(), a);
        assert!("nope".parse::<MessageId>().is_err());
    }

    #[test]
    fn message_json_shape() {
        let m = Message::assistant("hi").with_sources(vec![SourceRef {
            path: "a.md".into(),
            heading: Some("A".into()),
            score: 1.5,
            ..Default::default()
        }]);
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["role"], "assistant");
        assert_eq!(v["status"], "complete");
        assert_eq!(v["sources"][0]["path"], "a.md");
        let back: Message = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
    }
}
