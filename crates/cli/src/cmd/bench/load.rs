//! The load `ragchat bench http` puts on servers: concurrent clients, each holding its
//! own conversations, speaking either ragchat's own route or OpenAI's chat-completions
//! protocol, for a slice of time.
//!
//! Both kinds of client keep conversations equally long: every `turns_per_chat` turns a
//! client starts a new one. A chat-completions client resends the whole conversation
//! every turn (the protocol's normal use, with no session header), so the server does
//! its reconciliation on every request; each of its conversations opens with a system
//! message naming the client and the chat, so no two clients share a conversation.

use std::time::{Duration, Instant};

use anyhow::Result;
use clap::ValueEnum;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};

/// Questions the clients cycle through (answerable from the bundled corpus).
const QUESTIONS: &[&str] = &[
    "What is machine learning?",
    "How does it learn?",
    "What is overfitting and how do I avoid it?",
    "Explain gradient descent.",
    "What about neural networks?",
    "How do transformers use attention?",
    "When should I use a random forest?",
    "What is cross-validation for?",
];

/// The protocol a slice of load speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Protocol {
    /// `POST /v1/sessions/{session}/messages`, ragchat's own route.
    Native,
    /// `POST /v1/chat/completions`, the whole conversation resent each turn.
    ChatCompletions,
}

impl Protocol {
    /// The name used in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Protocol::Native => "native",
            Protocol::ChatCompletions => "chat-completions",
        }
    }
}

/// What every slice of one run shares.
#[derive(Clone, Debug)]
pub(crate) struct LoadConfig {
    /// Server base URLs; a client sends each turn to the next one.
    pub urls: Vec<String>,
    /// Bearer key, if the servers want one.
    pub api_key: Option<String>,
    /// Concurrent clients.
    pub concurrency: usize,
    /// Turns after which a client starts a new conversation.
    pub turns_per_chat: u64,
    /// Makes the session names of this run unique.
    pub run_id: String,
}

/// What one slice measured, all clients together.
pub(crate) struct Slice {
    /// Latency of each answered turn, in microseconds.
    pub latencies: Histogram<u64>,
    /// Requests that failed.
    pub errors: u64,
    /// The first failure seen.
    pub first_error: Option<String>,
    /// How long the slice ran.
    pub elapsed: Duration,
}

/// Runs `config.concurrency` clients speaking `protocol` for `duration`.
///
/// # Errors
/// When a client task fails (not when requests fail: those are counted).
pub(crate) async fn run_slice(
    client: &reqwest::Client,
    config: &LoadConfig,
    protocol: Protocol,
    duration: Duration,
    slice: usize,
) -> Result<Slice> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(config.concurrency);
    for index in 0..config.concurrency {
        let client = client.clone();
        let config = config.clone();
        tasks.push(tokio::spawn(async move {
            let mut conversation = Conversation::new(&config, protocol, slice, index);
            let mut run = Slice {
                latencies: Histogram::new(3)?,
                errors: 0,
                first_error: None,
                elapsed: Duration::ZERO,
            };
            let mut n = 0usize;
            while Instant::now() < deadline {
                let url = &config.urls[(index + n) % config.urls.len()];
                let question = QUESTIONS[(index + n) % QUESTIONS.len()];
                n += 1;
                let sent = Instant::now();
                match conversation.turn(&client, url, question).await {
                    Ok(()) => {
                        let micros = sent.elapsed().as_micros().max(1) as u64;
                        run.latencies.record(micros)?;
                    }
                    Err(e) => {
                        run.errors += 1;
                        run.first_error.get_or_insert(e);
                        conversation.restart();
                    }
                }
            }
            anyhow::Ok(run)
        }));
    }
    let mut total = Slice {
        latencies: Histogram::new(3)?,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let run = task.await??;
        total.latencies.add(&run.latencies)?;
        total.errors += run.errors;
        if total.first_error.is_none() {
            total.first_error = run.first_error;
        }
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// One client's current conversation.
struct Conversation {
    protocol: Protocol,
    api_key: Option<String>,
    /// `bench-<run>-s<slice>-c<client>`; the chat number is appended.
    prefix: String,
    turns_per_chat: u64,
    chat: u64,
    turns: u64,
    /// The chat-completions history (empty for the native protocol).
    messages: Vec<Value>,
}

impl Conversation {
    fn new(config: &LoadConfig, protocol: Protocol, slice: usize, index: usize) -> Self {
        let mut conversation = Conversation {
            protocol,
            api_key: config.api_key.clone(),
            prefix: format!("bench-{}-s{slice}-c{index}", config.run_id),
            turns_per_chat: config.turns_per_chat.max(1),
            chat: 0,
            turns: 0,
            messages: Vec::new(),
        };
        conversation.restart();
        conversation
    }

    /// Starts the next conversation.
    fn restart(&mut self) {
        self.chat += 1;
        self.turns = 0;
        self.messages.clear();
        if self.protocol == Protocol::ChatCompletions {
            let opening = format!("Benchmark conversation {}-{}.", self.prefix, self.chat);
            self.messages
                .push(json!({"role": "system", "content": opening}));
        }
    }

    async fn turn(
        &mut self,
        client: &reqwest::Client,
        url: &str,
        question: &str,
    ) -> std::result::Result<(), String> {
        if self.turns >= self.turns_per_chat {
            self.restart();
        }
        self.turns += 1;
        let request = match self.protocol {
            Protocol::Native => client
                .post(format!(
                    "{url}/v1/sessions/{}-{}/messages",
                    self.prefix, self.chat
                ))
                .json(&json!({ "content": question })),
            Protocol::ChatCompletions => {
                self.messages
                    .push(json!({"role": "user", "content": question}));
                client
                    .post(format!("{url}/v1/chat/completions"))
                    .json(&json!({"model": "ragchat", "messages": self.messages}))
            }
        };
        let request = match &self.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        };
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!("HTTP {status}: {}", body.trim()));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        if self.protocol == Protocol::ChatCompletions {
            // The client keeps the answer to resend it, as a real one does.
            let completion: Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("the answer is not JSON: {e}"))?;
            let answer = completion["choices"][0]["message"]["content"]
                .as_str()
                .ok_or_else(|| format!("no answer in {completion}"))?;
            self.messages
                .push(json!({"role": "assistant", "content": answer}));
        }
        Ok(())
    }
}
