//! Retrieval quality on the bundled corpus, measured with `eval/eval.json`.
//!
//! Single questions are asked without history; conversation turns are asked with the previous
//! turns as history (the user message plus the extractive answer), exactly as a chat would.
//! Run with `--nocapture` to see the report.

use std::path::Path;

use ragchat_rag::{
    AnswerRequest, Answerer, CorpusSource, ExtractiveAnswerer, HistoryTurn, Index, IngestOptions,
    Retriever,
};
use serde::Deserialize;

const K: usize = 3;
const MIN_RECALL: f64 = 0.9;

#[derive(Deserialize)]
struct EvalSet {
    single: Vec<Item>,
    conversations: Vec<Conversation>,
}

#[derive(Deserialize)]
struct Item {
    question: String,
    expected: String,
}

#[derive(Deserialize)]
struct Conversation {
    name: String,
    turns: Vec<Turn>,
}

#[derive(Deserialize)]
struct Turn {
    message: String,
    expected: String,
}

/// One evaluated question.
struct Outcome {
    label: String,
    question: String,
    expected: String,
    got: Vec<String>,
    query: String,
    follow_up: bool,
}

impl Outcome {
    fn found(&self) -> bool {
        self.got.contains(&self.expected)
    }
}

fn bundled_index(dir: &Path) -> Index {
    let (index, report) = Index::open_or_build(
        dir,
        &CorpusSource::Bundled,
        &IngestOptions::default(),
        &|_| {},
    )
    .expect("bundled corpus indexes");
    assert!(report.files > 0, "the bundled corpus is empty");
    assert!(
        report.skipped.is_empty(),
        "bundled files skipped: {:?}",
        report.skipped
    );
    index
}

async fn ask(
    retriever: &Retriever,
    history: &[HistoryTurn],
    message: &str,
) -> (ragchat_rag::Retrieval, ragchat_rag::Answer) {
    let retrieval = retriever.search(message, history, K).expect("search works");
    let request = AnswerRequest {
        question: message.to_owned(),
        history: history.to_vec(),
        hits: retrieval.hits.clone(),
        recalled: Vec::new(),
    };
    let answer = ExtractiveAnswerer::new()
        .answer(&request, &mut |_| {})
        .await
        .expect("extractive answers never fail");
    (retrieval, answer)
}

#[tokio::test]
async fn recall_at_3_on_the_eval_set() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/eval.json");
    let json = std::fs::read_to_string(&path).expect("eval/eval.json is readable");
    let eval: EvalSet = serde_json::from_str(&json).expect("eval/eval.json is valid");
    let data = tempfile::tempdir().expect("temp dir");
    let retriever = bundled_index(data.path()).retriever();

    let mut outcomes = Vec::new();
    for item in &eval.single {
        let retrieval = retriever
            .search(&item.question, &[], K)
            .expect("search works");
        outcomes.push(Outcome {
            label: "single".into(),
            question: item.question.clone(),
            expected: item.expected.clone(),
            got: retrieval.hits.iter().map(|h| h.path.clone()).collect(),
            query: retrieval.query,
            follow_up: false,
        });
    }
    for conversation in &eval.conversations {
        let mut history = Vec::new();
        for (i, turn) in conversation.turns.iter().enumerate() {
            let (retrieval, answer) = ask(&retriever, &history, &turn.message).await;
            outcomes.push(Outcome {
                label: format!("{} #{}", conversation.name, i + 1),
                question: turn.message.clone(),
                expected: turn.expected.clone(),
                got: retrieval.hits.iter().map(|h| h.path.clone()).collect(),
                query: retrieval.query,
                follow_up: i > 0,
            });
            history.push(HistoryTurn::user(&turn.message));
            history.push(HistoryTurn::assistant(answer.text));
        }
    }

    let recall = |filter: &dyn Fn(&Outcome) -> bool| {
        let selected: Vec<&Outcome> = outcomes.iter().filter(|o| filter(o)).collect();
        let found = selected.iter().filter(|o| o.found()).count();
        (found, selected.len())
    };
    let (single_found, single_total) = recall(&|o| o.label == "single");
    let (conv_found, conv_total) = recall(&|o| o.label != "single");
    let (follow_found, follow_total) = recall(&|o| o.follow_up);
    let (all_found, all_total) = recall(&|_| true);
    let overall = all_found as f64 / all_total.max(1) as f64;

    println!("recall@{K}");
    println!("  single questions    {single_found}/{single_total}");
    println!("  conversation turns  {conv_found}/{conv_total}");
    println!("    of which follow-ups {follow_found}/{follow_total}");
    println!("  overall             {all_found}/{all_total} = {overall:.3}");
    for miss in outcomes.iter().filter(|o| !o.found()) {
        println!(
            "MISS [{}] {:?}\n     expected {}\n     got      {:?}\n     query    {}",
            miss.label, miss.question, miss.expected, miss.got, miss.query
        );
    }

    assert!(all_total > 0, "the eval set is empty");
    assert!(
        overall >= MIN_RECALL,
        "recall@{K} {overall:.3} < {MIN_RECALL}"
    );
    let missed_follow_ups: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.follow_up && !o.found())
        .map(|o| o.label.as_str())
        .collect();
    assert!(
        missed_follow_ups.is_empty(),
        "follow-ups missed: {missed_follow_ups:?}"
    );
}

#[tokio::test]
async fn seed_conversation_cites_the_right_article_first() {
    let data = tempfile::tempdir().expect("temp dir");
    let retriever = bundled_index(data.path()).retriever();
    let turns = [
        ("What is machine learning?", "what-is-machine-learning.md"),
        ("How does it learn?", "how-models-learn.md"),
        ("What about neural networks?", "neural-networks.md"),
    ];
    let mut history = Vec::new();
    for (message, expected) in turns {
        let (_, answer) = ask(&retriever, &history, message).await;
        let first = answer.sources.first().map(|s| s.path.as_str());
        assert_eq!(
            first,
            Some(expected),
            "{message:?} answered {:?}",
            answer.text
        );
        assert!(answer.text.contains("[1]"), "{}", answer.text);
        for (n, _) in answer.sources.iter().enumerate() {
            assert!(
                answer.text.contains(&format!("[{}]", n + 1)),
                "source {} uncited",
                n + 1
            );
        }
        history.push(HistoryTurn::user(message));
        history.push(HistoryTurn::assistant(answer.text));
    }
}

#[tokio::test]
async fn continue_recaps_with_history_and_admits_without() {
    let data = tempfile::tempdir().expect("temp dir");
    let retriever = bundled_index(data.path()).retriever();

    let (_, fresh) = ask(&retriever, &[], "Continue our conversation").await;
    assert_eq!(fresh.text, ragchat_rag::NO_CONVERSATION_REPLY);
    assert!(fresh.sources.is_empty());

    let (_, first) = ask(&retriever, &[], "What is overfitting?").await;
    let history = vec![
        HistoryTurn::user("What is overfitting?"),
        HistoryTurn::assistant(first.text.clone()),
    ];
    let (retrieval, resumed) = ask(&retriever, &history, "Where were we?").await;
    assert!(
        resumed.text.starts_with("We were talking about"),
        "{}",
        resumed.text
    );
    assert!(
        resumed.text.contains("What is overfitting?"),
        "{}",
        resumed.text
    );
    assert_eq!(
        retrieval.hits.first().map(|h| h.path.as_str()),
        Some("overfitting-and-regularization.md")
    );
    assert_ne!(resumed.text, first.text);
}

#[tokio::test]
async fn off_topic_questions_get_the_honest_reply() {
    let data = tempfile::tempdir().expect("temp dir");
    let retriever = bundled_index(data.path()).retriever();
    for question in [
        "How do I bake sourdough bread?",
        "Who painted the Mona Lisa?",
    ] {
        let (_, answer) = ask(&retriever, &[], question).await;
        assert_eq!(answer.text, ragchat_rag::NOTHING_FOUND_REPLY, "{question}");
        assert!(answer.sources.is_empty());
    }
}
