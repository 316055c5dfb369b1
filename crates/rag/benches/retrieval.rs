//! Retrieval latency on the bundled corpus: a standalone question, and a follow-up that borrows
//! terms from a conversation; plus composing an extractive answer from the hits.

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
    };
    let answerer = ExtractiveAnswerer::new();
    c.bench_function("extractive_answer", |b| {
        b.iter(|| answerer.compose(black_box(&request)))
    });
}

criterion_group!(benches, retrieval);
criterion_main!(benches);
