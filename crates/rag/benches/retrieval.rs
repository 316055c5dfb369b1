//! Retrieval latency on the bundled corpus: a standalone question, and a follow-up that borrows
//! terms from a conversation; plus composing an extractive answer from the hits, with the
//! answerer `ragchat` builds (`ExtractiveAnswerer::for_index`): the follow-up case under the
//! name measured before issue 14 (`extractive_answer`), then a definition, a pronoun how-to,
//! a decline and "tell me more".
#![allow(missing_docs)] // criterion_main! writes an undocumented `pub fn main`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use ragchat_rag::{
    AnswerRequest, CorpusSource, ExtractiveAnswerer, HistoryTurn, Index, IngestOptions,
};

fn retrieval(c: &mut Criterion) {
    let data = tempfile::tempdir().expect("temp dir");
    let (index, _) = Index::open_or_build(
        data.path(),
        &CorpusSource::Bundled,
        &IngestOptions::default(),
        &|_| {},
    )
    .expect("bundled corpus indexes");
    let retriever = index.retriever();
    let history = vec![
        HistoryTurn::user("What is machine learning?"),
        HistoryTurn::assistant(
            "Machine learning is a way of building software that learns patterns from data \
             instead of following hand-written rules. [1]",
        ),
        HistoryTurn::user("How does it learn?"),
        HistoryTurn::assistant(
            "A machine learning model learns by repeatedly adjusting its internal numbers, \
             called parameters. [1]",
        ),
    ];

    let mut group = c.benchmark_group("retrieval");
    group.bench_function("single_question", |b| {
        b.iter(|| {
            retriever
                .search(black_box("What is the vanishing gradient problem?"), &[], 3)
                .expect("search works")
        })
    });
    group.bench_function("follow_up_with_history", |b| {
        b.iter(|| {
            retriever
                .search(
                    black_box("What about neural networks?"),
                    black_box(&history),
                    3,
                )
                .expect("search works")
        })
    });
    group.finish();

    let hits = retriever
        .search("What about neural networks?", &history, 3)
        .expect("search works")
        .hits;
    let request = AnswerRequest {
        question: "What about neural networks?".into(),
        history: history.clone(),
        hits,
        recalled: Vec::new(),
    };
    let answerer = ExtractiveAnswerer::for_index(&index);
    c.bench_function("extractive_answer", |b| {
        b.iter(|| answerer.compose(black_box(&request)))
    });

    let overfitting = vec![
        HistoryTurn::user("What about overfitting?"),
        HistoryTurn::assistant(
            "Overfitting happens when a model memorises the training data, including its noise \
             and quirks, instead of learning the general pattern, so it performs well on the \
             training set but poorly on new data. [1]",
        ),
    ];
    let cases: [(&str, &str, &[HistoryTurn]); 4] = [
        ("definition", "What is gradient descent?", &[]),
        ("pronoun_how_to", "How do I prevent it?", &overfitting),
        ("decline", "What is the capital of France?", &[]),
        ("tell_me_more", "Tell me more", &overfitting),
    ];
    let mut group = c.benchmark_group("extractive_answer_by_kind");
    for (name, question, history) in cases {
        let hits = retriever
            .search(question, history, 3)
            .expect("search works")
            .hits;
        let request = AnswerRequest {
            question: question.into(),
            history: history.to_vec(),
            hits,
            recalled: Vec::new(),
        };
        group.bench_function(name, |b| b.iter(|| answerer.compose(black_box(&request))));
    }
    group.finish();
}

criterion_group!(benches, retrieval);
criterion_main!(benches);
