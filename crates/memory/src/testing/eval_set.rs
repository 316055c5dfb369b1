//! The evaluation set of `eval/search` (synthetic conversations of three users, with the
//! messages questions are about placed in them), built the same on every run: the search
//! evaluation (`ragchat-memory`'s `search_eval`) and the recall evaluation
//! (`ragchat-engine`'s `recall_eval`) both use it.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::message::{Message, MessageId, Role, SessionKey};
use crate::store::{AppendOptions, SessionStore};

#[derive(Deserialize)]
struct Conversations {
    seed: u64,
    sessions: Vec<SessionPlan>,
}

#[derive(Deserialize)]
struct SessionPlan {
    user: String,
    session: String,
    topic: String,
    messages: usize,
}

/// A message questions are about, where it is, and how people ask for it.
#[derive(Deserialize)]
pub struct Needle {
    /// Its name in `needles.json`.
    pub id: String,
    /// Whose it is.
    pub user: String,
    /// The conversation it is in.
    pub session: String,
    /// Where in the conversation, as a fraction of its length.
    pub at: f64,
    /// Who wrote it.
    pub role: String,
    /// What it says.
    pub content: String,
    /// A search for it, in the words a person would type; `None` for a distractor.
    pub question: Option<String>,
    /// The question about the conversation a person would ask the chat for it ("what
    /// did you tell me about ...?").
    #[serde(default)]
    pub asked_back: Option<String>,
}

fn eval_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../eval/search")
}

fn read<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = eval_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// A small fixed-seed generator (the set must be the same on every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// The set: every session's messages (needles in place), and which message id
/// answers which needle.
pub struct EvalSet {
    /// Every conversation, oldest message first.
    pub sessions: Vec<(SessionKey, Vec<Message>)>,
    /// The needles and the ids of their messages.
    pub needles: Vec<(Needle, MessageId)>,
}

/// The set, the same on every run.
pub fn build() -> EvalSet {
    let plan: Conversations = read("conversations.json");
    let topics: HashMap<String, Vec<String>> = read("topics.json");
    let needles: Vec<Needle> = read("needles.json");
    let topic_names: Vec<&String> = {
        let mut names: Vec<&String> = topics.keys().collect();
        names.sort();
        names
    };
    let mut rng = Lcg(plan.seed);
    let mut sessions = Vec::new();
    let mut placed = Vec::new();
    for s in &plan.sessions {
        let key = SessionKey::new(&s.user, &s.session).expect("valid ids");
        let mut messages: Vec<Message> = (0..s.messages)
            .map(|i| {
                // Mostly the session's topic; now and then another one (topics recur).
                let topic = if rng.below(10) == 0 {
                    topic_names[rng.below(topic_names.len())]
                } else {
                    &s.topic
                };
                let pool = &topics[topic];
                let text: Vec<&str> = (0..1 + rng.below(3))
                    .map(|_| pool[rng.below(pool.len())].as_str())
                    .collect();
                let role = if i % 2 == 0 {
                    Role::User
                } else {
                    Role::Assistant
                };
                Message::new(role, text.join(" "))
            })
            .collect();
        for n in needles
            .iter()
            .filter(|n| n.user == s.user && n.session == s.session)
        {
            let at = ((n.at * s.messages as f64) as usize).min(s.messages - 1);
            let message = Message::new(n.role.parse().expect("role"), n.content.clone());
            placed.push((n.id.clone(), message.id));
            messages[at] = message;
        }
        sessions.push((key, messages));
    }
    let ids: HashMap<String, MessageId> = placed.into_iter().collect();
    let needles = needles
        .into_iter()
        .map(|n| {
            let id = *ids
                .get(&n.id)
                .unwrap_or_else(|| panic!("{} not placed", n.id));
            (n, id)
        })
        .collect();
    EvalSet { sessions, needles }
}

/// Stores the set.
///
/// # Panics
/// When an append fails.
pub async fn store_set(store: &dyn SessionStore, set: &EvalSet) {
    let opts = AppendOptions::KEEP_ALL;
    for (key, messages) in &set.sessions {
        for chunk in messages.chunks(200) {
            store.append(key, chunk, opts).await.expect("append");
        }
    }
}
