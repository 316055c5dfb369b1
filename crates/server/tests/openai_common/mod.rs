//! Helpers for the chat-completions tests: requests in the protocol's shape, the stored
//! conversations read back through ragchat's own API, and the stream's chunks.

#![allow(dead_code)]

use axum::http::{Method, StatusCode};
use axum::Router;
use serde_json::{json, Value};

use crate::common::{get, request, send, Reply};

/// `{"role": role, "content": content}`.
pub(crate) fn msg(role: &str, content: &str) -> Value {
    json!({ "role": role, "content": content })
}

/// A request body for `model: ragchat` with these messages and any extra fields.
pub(crate) fn body(messages: &[Value], extra: Value) -> Value {
    let mut body = json!({ "model": "ragchat", "messages": messages });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            body.insert(k.clone(), v.clone());
        }
    }
    body
}

/// `POST /v1/chat/completions` with an optional `X-Session-Id`.
pub(crate) async fn complete(
    app: &Router,
    key: Option<&str>,
    body: &Value,
    session: Option<&str>,
) -> Reply {
    let mut request = request(
        Method::POST,
        "/v1/chat/completions",
        key,
        Some(body.to_string()),
    );
    if let Some(session) = session {
        request
            .headers_mut()
            .insert("x-session-id", session.parse().expect("header value"));
    }
    send(app, request).await
}

/// The answer text of a non-streamed completion, checked for the protocol's shape.
pub(crate) fn answer_of(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let completion = reply.json();
    assert_eq!(completion["object"], "chat.completion", "{completion}");
    assert_eq!(completion["choices"][0]["message"]["role"], "assistant");
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    let usage = &completion["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        )
    );
    let session = reply.headers["x-session-id"].to_str().unwrap();
    assert_eq!(completion["session_id"], session);
    completion["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_string()
}

/// Every stored session of the caller with its messages as `(role, content)`, most
/// recent activity first.
pub(crate) async fn stored(app: &Router, key: &str) -> Vec<(String, Vec<(String, String)>)> {
    let list = get(app, "/v1/sessions", Some(key)).await.json();
    let mut out = Vec::new();
    for s in list["sessions"].as_array().expect("sessions") {
        let session = s["session"].as_str().unwrap().to_string();
        let page = get(app, &format!("/v1/sessions/{session}/messages"), Some(key))
            .await
            .json();
        let messages = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["role"].as_str().unwrap().to_string(),
                    m["content"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.push((session, messages));
    }
    out
}

/// `(role, content)` pairs of a sent conversation.
pub(crate) fn pairs(messages: &[Value]) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The `data` payloads of a server-sent event stream, in order (`[DONE]` as a string).
pub(crate) fn sse_data(text: &str) -> Vec<Value> {
    let text = text.replace("\r\n", "\n");
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let data: Vec<&str> = block
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if data.is_empty() {
            continue;
        }
        let data = data.join("\n");
        if data == "[DONE]" {
            out.push(Value::String(data));
        } else {
            out.push(serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}")));
        }
    }
    out
}
