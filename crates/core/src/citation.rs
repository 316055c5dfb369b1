//! What an answer cites: the one citation type, as stored with a message and served by the API.
//! A citation is a document passage, or (with [`SourceRef::conversation`]) an earlier message
//! of the user's own conversations that the turn recalled.
//!
//! `ragchat-rag` builds its answers' sources with every field known (`ragchat_rag::Source`,
//! whose docs say why it keeps that stricter shape) and converts them into this type with
//! `SourceRef::from(&source)` when an answer is stored.

use serde::{Deserialize, Deserializer, Serialize};

/// A document passage an answer was drawn from.
///
/// JSON: `{"path":"a.md","heading":"A","score":1.5,"line_start":3,"line_end":7}`; `heading`,
/// `line_start` and `line_end` are left out when unknown and read as unknown when missing,
/// so entries stored by any earlier version decode.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SourceRef {
    /// Path of the source file, relative to the docs folder.
    pub path: String,
    /// Heading of the section the passage sits under, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
    /// Retrieval score (higher is more relevant). Stored values that are not a finite
    /// `f32` (corrupt or hand-edited data) read as 0, so a message always writes back in a
    /// form that reads again.
    #[serde(default, deserialize_with = "finite_score")]
    pub score: f32,
    /// First line of the passage (1-based), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_start: Option<u32>,
    /// Last line of the passage (inclusive), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_end: Option<u32>,
    /// Set when the citation is an earlier message of the user's conversations, not a
    /// document passage; `path` is then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationRef>,
}

impl SourceRef {
    /// How people read the citation: `path > heading (lines a-b)` for a passage,
    /// ``conversation `trip`, 2026-11-20`` for a recalled message.
    pub fn label(&self) -> String {
        if let Some(c) = &self.conversation {
            return c.label();
        }
        let mut label = self.path.clone();
        if let Some(heading) = &self.heading {
            label.push_str(" > ");
            label.push_str(heading);
        }
        match (self.line_start, self.line_end) {
            (Some(a), Some(b)) if a != b => label.push_str(&format!(" (lines {a}-{b})")),
            (Some(a), _) => label.push_str(&format!(" (line {a})")),
            _ => {}
        }
        label
    }
}

/// An earlier message of the user's own conversations, cited by an answer that recalled it.
///
/// JSON: `{"session":"trip","message_id":"…","seq":12,"role":"user","created_at":"2026-11-20T09:30:00Z"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ConversationRef {
    /// The conversation (session id) the message is in.
    pub session: String,
    /// The message's id.
    pub message_id: String,
    /// Its place in the conversation (`GET /v1/sessions/{session}/messages?after=<seq - 1>`
    /// starts there).
    pub seq: u64,
    /// Who wrote it.
    pub role: crate::Role,
    /// When it was written (RFC 3339).
    pub created_at: String,
}

impl ConversationRef {
    /// ``conversation `trip`, 2026-11-20``: the conversation and the day.
    pub fn label(&self) -> String {
        let day = self.created_at.get(..10).unwrap_or(&self.created_at);
        format!("conversation `{}`, {day}", self.session)
    }
}

fn finite_score<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    let value = Option::<f64>::deserialize(d)?.unwrap_or(0.0);
    let score = value as f32;
    Ok(if score.is_finite() { score } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_the_stored_shape() {
        let full = SourceRef {
            path: "a.md".into(),
            heading: Some("A > B".into()),
            score: 1.5,
            line_start: Some(3),
            line_end: Some(7),
            conversation: None,
        };
        let json = serde_json::to_string(&full).unwrap();
        assert_eq!(
            json,
            r#"{"path":"a.md","heading":"A > B","score":1.5,"line_start":3,"line_end":7}"#
        );
        assert_eq!(serde_json::from_str::<SourceRef>(&json).unwrap(), full);

        let bare = SourceRef {
            path: "b.md".into(),
            ..SourceRef::default()
        };
        let json = serde_json::to_string(&bare).unwrap();
        assert_eq!(json, r#"{"path":"b.md","score":0.0}"#);
        assert_eq!(
            serde_json::from_str::<SourceRef>(r#"{"path":"b.md"}"#).unwrap(),
            bare
        );
    }

    #[test]
    fn labels_name_the_passage_or_the_conversation() {
        let passage = SourceRef {
            path: "a.md".into(),
            heading: Some("A > B".into()),
            line_start: Some(3),
            line_end: Some(7),
            ..SourceRef::default()
        };
        assert_eq!(passage.label(), "a.md > A > B (lines 3-7)");
        let recalled = SourceRef {
            conversation: Some(ConversationRef {
                session: "trip".into(),
                message_id: "m".into(),
                seq: 4,
                role: crate::Role::User,
                created_at: "2026-11-20T09:30:00Z".into(),
            }),
            ..SourceRef::default()
        };
        assert_eq!(recalled.label(), "conversation `trip`, 2026-11-20");
        let json = serde_json::to_string(&recalled).unwrap();
        assert!(
            json.contains(r#""conversation":{"session":"trip""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<SourceRef>(&json).unwrap(), recalled);
    }

    #[test]
    fn out_of_range_scores_read_as_zero_and_round_trip() {
        let s: SourceRef = serde_json::from_str(r#"{"path":"a.md","score":1e39}"#).unwrap();
        assert_eq!(s.score, 0.0);
        let again: SourceRef = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(again, s);
        let s: SourceRef = serde_json::from_str(r#"{"path":"a.md","score":null}"#).unwrap();
        assert_eq!(s.score, 0.0);
    }
}
