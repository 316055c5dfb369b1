//! What an answer cites: the one citation type, as stored with a message and served by the API.
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
    fn out_of_range_scores_read_as_zero_and_round_trip() {
        let s: SourceRef = serde_json::from_str(r#"{"path":"a.md","score":1e39}"#).unwrap();
        assert_eq!(s.score, 0.0);
        let again: SourceRef = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(again, s);
        let s: SourceRef = serde_json::from_str(r#"{"path":"a.md","score":null}"#).unwrap();
        assert_eq!(s.score, 0.0);
    }
}
