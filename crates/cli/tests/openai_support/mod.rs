//! Helpers for the chat-completions tests against `ragchat serve` processes: messages as
//! `(role, content)` pairs, and every stored conversation of a user read back through
//! ragchat's own API.

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;

use crate::serve_support::get;

/// `(role, content)` of each message of a JSON array (sent or stored).
pub(crate) fn pairs(messages: &Value) -> Vec<(String, String)> {
    messages
        .as_array()
        .expect("an array of messages")
        .iter()
        .map(|m| {
            (
                m["role"].as_str().expect("role").to_string(),
                m["content"].as_str().expect("content").to_string(),
            )
        })
        .collect()
}

/// Every stored session of the key's user, with its messages as `(role, content)`.
pub(crate) async fn stored(
    base: &str,
    key: Option<&str>,
) -> BTreeMap<String, Vec<(String, String)>> {
    let list = get(&format!("{base}/v1/sessions"), key).await.json();
    let mut out = BTreeMap::new();
    for s in list["sessions"].as_array().expect("sessions") {
        let session = s["session"].as_str().expect("session id");
        let page = get(&format!("{base}/v1/sessions/{session}/messages"), key)
            .await
            .json();
        out.insert(session.to_string(), pairs(&page["messages"]));
    }
    out
}
