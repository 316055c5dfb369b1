//! The OpenAPI document (`GET /openapi.json`), generated from the handlers' annotations.
//!
//! The memory crate's types do not depend on utoipa, so [`schema`] describes their JSON
//! shape here; a test checks those descriptions against what the real types serialize.

use std::sync::OnceLock;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::{about, account, ops, sessions, sources, turns};
use crate::titles;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ragchat",
        description = "Chat with your documents; conversations persist across restarts and servers. \
            Every /v1 route needs `Authorization: Bearer KEY` when the server runs with a keys file; \
            errors are `{\"error\":{\"code\",\"message\"}}`."
    ),
    paths(
        turns::message_create,
        sessions::sessions_list,
        sessions::messages_list,
        sessions::session_stats,
        sessions::session_delete,
        sources::source_get,
        about::about_get,
        account::export,
        account::me_delete,
        ops::healthz,
        ops::readyz,
        ops::metrics,
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        turns::NewMessage,
        turns::TurnResponse,
        sessions::SessionList,
        titles::ListedSession,
        sources::CitedPassage,
        about::About,
        about::AboutDocument,
        sessions::MessagePage,
        account::Erased,
        ops::Health,
        ops::Readiness,
        crate::readiness::PublicReadiness,
        schema::Message,
        schema::SourceRef,
        schema::SessionSummary,
        schema::SessionStats,
        schema::UserExport,
        schema::SessionExport,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "chat", description = "Chat turns"),
        (name = "sessions", description = "The caller's conversations"),
        (name = "documents", description = "What the answers come from"),
        (name = "account", description = "All of the caller's data"),
        (name = "ops", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.merge(crate::routes::openai::OpenAiDoc::openapi());
        doc
    })
}

/// JSON shapes of the memory crate's types, for the document only.
#[allow(dead_code)]
pub mod schema {
    use utoipa::ToSchema;

    /// One message of a conversation.
    #[derive(ToSchema)]
    pub struct Message {
        /// Time-ordered id (UUIDv7).
        #[schema(format = "uuid")]
        id: String,
        /// `user`, `assistant` or `system`.
        #[schema(example = "assistant")]
        role: String,
        /// The text.
        content: String,
        /// Passages an answer cites; `[n]` in the text refers to `sources[n-1]`.
        sources: Vec<SourceRef>,
        /// Creation time (RFC 3339, millisecond precision).
        #[schema(format = DateTime)]
        created_at: String,
        /// `complete`, or `incomplete` for an answer whose client went away.
        #[schema(example = "complete")]
        status: String,
    }

    /// A document passage an answer was drawn from.
    #[derive(ToSchema)]
    pub struct SourceRef {
        /// Path of the source file, relative to the docs folder.
        path: String,
        /// Heading of the section, if any.
        heading: Option<String>,
        /// Retrieval score.
        score: f32,
        /// First line of the passage (1-based).
        line_start: Option<u32>,
        /// Last line (inclusive).
        line_end: Option<u32>,
    }

    /// One line of the caller's session list.
    #[derive(ToSchema)]
    pub struct SessionSummary {
        /// The session id.
        session: String,
        /// Messages stored.
        message_count: u64,
        /// Stored bytes.
        bytes: u64,
        /// Creation time.
        #[schema(format = DateTime)]
        created_at: String,
        /// Last append.
        #[schema(format = DateTime)]
        updated_at: String,
        /// Seconds until the session expires if left idle; null = never.
        ttl_remaining_secs: Option<u64>,
    }

    /// A session's figures.
    #[derive(ToSchema)]
    pub struct SessionStats {
        /// The user id.
        user: String,
        /// The session id.
        session: String,
        /// Messages stored.
        message_count: u64,
        /// Stored bytes.
        bytes: u64,
        /// Seconds until expiry; null = never (or unknown while degraded).
        ttl_remaining_secs: Option<u64>,
        /// Creation time.
        #[schema(format = DateTime)]
        created_at: String,
        /// Last append.
        #[schema(format = DateTime)]
        updated_at: String,
        /// The store (redacted URL).
        store: String,
        /// `normal` or `degraded`.
        mode: String,
        /// Messages of this session waiting in the local journal.
        pending_sync: u64,
    }

    /// Every session of a user.
    #[derive(ToSchema)]
    pub struct UserExport {
        /// The user id.
        user: String,
        /// When the export was made.
        #[schema(format = DateTime)]
        exported_at: String,
        /// The store it came from.
        store: String,
        /// Each session with its full history.
        sessions: Vec<SessionExport>,
    }

    /// One session in an export.
    #[derive(ToSchema)]
    pub struct SessionExport {
        /// The session id.
        session: String,
        /// Creation time.
        #[schema(format = DateTime)]
        created_at: String,
        /// Last append.
        #[schema(format = DateTime)]
        updated_at: String,
        /// Messages in conversation order.
        messages: Vec<Message>,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::Utc;
    use ragchat_memory::manager::{SessionExport, UserExport};
    use ragchat_memory::{Message, Mode, SessionStats, SessionSummary, SourceRef};
    use serde::Serialize;

    use super::*;

    fn schema_fields(name: &str) -> BTreeSet<String> {
        let doc = serde_json::to_value(document()).unwrap();
        doc["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name}"))
            .keys()
            .cloned()
            .collect()
    }

    fn json_fields(value: &impl Serialize) -> BTreeSet<String> {
        serde_json::to_value(value)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    #[test]
    fn schemas_match_the_real_types() {
        let source = SourceRef {
            path: "a.md".into(),
            heading: Some("A".into()),
            score: 1.0,
            line_start: Some(1),
            line_end: Some(2),
        };
        let message = Message::assistant("hi").with_sources(vec![source.clone()]);
        assert_eq!(schema_fields("Message"), json_fields(&message));
        assert_eq!(schema_fields("SourceRef"), json_fields(&source));
        let now = Utc::now();
        let summary = SessionSummary {
            session: "s".into(),
            message_count: 1,
            bytes: 2,
            created_at: now,
            updated_at: now,
            ttl_remaining_secs: Some(3),
        };
        assert_eq!(schema_fields("SessionSummary"), json_fields(&summary));
        let stats = SessionStats {
            user: "u".into(),
            session: "s".into(),
            message_count: 1,
            bytes: 2,
            ttl_remaining_secs: None,
            created_at: now,
            updated_at: now,
            store: "memory://".into(),
            mode: Mode::Normal,
            pending_sync: 0,
        };
        assert_eq!(schema_fields("SessionStats"), json_fields(&stats));
        let session = SessionExport {
            session: "s".into(),
            created_at: now,
            updated_at: now,
            messages: vec![message],
        };
        assert_eq!(schema_fields("SessionExport"), json_fields(&session));
        let export = UserExport {
            user: "u".into(),
            exported_at: now,
            store: "memory://".into(),
            sessions: vec![session],
        };
        assert_eq!(schema_fields("UserExport"), json_fields(&export));
    }

    #[test]
    fn documents_every_route() {
        let doc = serde_json::to_value(document()).unwrap();
        let paths: BTreeSet<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for path in [
            "/v1/sessions",
            "/v1/sessions/{session}",
            "/v1/sessions/{session}/messages",
            "/v1/sessions/{session}/stats",
            "/v1/export",
            "/v1/me",
            "/healthz",
            "/readyz",
            "/metrics",
            "/v1/chat/completions",
            "/v1/models",
            "/v1/models/{model}",
        ] {
            assert!(paths.contains(path), "{path} missing from {paths:?}");
        }
        let completion = &doc["paths"]["/v1/chat/completions"]["post"];
        assert!(completion["requestBody"].is_object(), "{completion}");
        assert!(
            completion["responses"]["200"]["content"]["text/event-stream"].is_object(),
            "{completion}"
        );
        assert!(
            doc["components"]["schemas"]["ChatCompletion"]["properties"]["sources"].is_object()
        );
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        let turn = &doc["paths"]["/v1/sessions/{session}/messages"]["post"]["responses"]["200"];
        assert!(turn["content"]["application/json"].is_object(), "{turn}");
        assert!(turn["content"]["text/event-stream"].is_object(), "{turn}");
    }
}
