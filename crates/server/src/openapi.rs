//! The OpenAPI document (`GET /openapi.json`), generated from the handlers' annotations.
//!
//! The memory and core crates derive the schemas of their types (their `schema` feature);
//! a test checks each schema against what the real type serializes.

use std::sync::OnceLock;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::{about, account, ops, search, sessions, sources, turns};

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
        sessions::session_rename,
        sources::source_get,
        search::search_get,
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
        sessions::SessionPatch,
        sources::CitedPassage,
        about::About,
        about::AboutDocument,
        sessions::MessagePage,
        search::SearchResults,
        ragchat_memory::SearchHit,
        account::Erased,
        ops::Health,
        ops::Readiness,
        crate::readiness::PublicReadiness,
        crate::readiness::ArchiveReadiness,
        ragchat_memory::ArchiveState,
        ragchat_memory::Tier,
        ragchat_memory::Message,
        ragchat_memory::MessageStatus,
        ragchat_memory::Role,
        ragchat_memory::SourceRef,
        ragchat_memory::SessionSummary,
        ragchat_memory::SessionStats,
        ragchat_memory::Mode,
        ragchat_memory::manager::UserExport,
        ragchat_memory::manager::SessionExport,
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

    /// A component's properties, or its enum values.
    fn schema_fields_or_enum(name: &str) -> Vec<String> {
        let doc = serde_json::to_value(document()).unwrap();
        let schema = &doc["components"]["schemas"][name];
        if let Some(values) = schema["enum"].as_array() {
            return values.iter().map(|v| v.to_string()).collect();
        }
        schema["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
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
            // Every field set, so that the JSON holds them all.
            conversation: Some(ragchat_rag::ConversationRef {
                session: "trip".into(),
                message_id: "m".into(),
                seq: 3,
                role: ragchat_memory::Role::User,
                created_at: "2026-11-20T09:30:00Z".into(),
            }),
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
            title: Some("What is ML?".into()),
            // Present on a Redis store with an archive (absent otherwise).
            tier: Some(ragchat_memory::Tier::Archived),
        };
        assert_eq!(schema_fields("SessionSummary"), json_fields(&summary));
        let archive = crate::readiness::ArchiveReadiness {
            state: ragchat_memory::ArchiveState::Down,
            lag_messages: 1,
            lag_seconds: 0.5,
        };
        assert_eq!(schema_fields("ArchiveReadiness"), json_fields(&archive));
        // Every schema a component refers to is itself a component.
        let doc = serde_json::to_string(&document()).unwrap();
        for name in ["Tier", "ArchiveState", "ArchiveReadiness"] {
            if doc.contains(&format!("#/components/schemas/{name}\"")) {
                assert!(
                    !schema_fields_or_enum(name).is_empty(),
                    "{name} is referred to, not defined"
                );
            }
        }
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
            title: None,
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
        let hit = ragchat_memory::SearchHit {
            session: "s".into(),
            message_id: ragchat_memory::MessageId::new(),
            seq: 1,
            role: ragchat_memory::Role::User,
            created_at: now,
            snippet: "<mark>hi</mark>".into(),
            score: 0.5,
            content: "hi".into(),
        };
        assert_eq!(schema_fields("SearchHit"), json_fields(&hit));
        let results = crate::routes::search::SearchResults {
            hits: vec![hit],
            next_cursor: None,
        };
        assert_eq!(schema_fields("SearchResults"), json_fields(&results));
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
            "/v1/search",
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
