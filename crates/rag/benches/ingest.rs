//! Ingest throughput on a generated ~50 MB markdown corpus (deterministic, in a temp dir):
//! a full build, a reopen of the unchanged corpus (read + hash + compare), and chunking alone.
#![allow(missing_docs)] // criterion_main! writes an undocumented `pub fn main`

use std::fs;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ragchat_rag::{chunk_document, load, ChunkOptions, CorpusSource, Index, IngestOptions};

const FILES: usize = 500;
const BYTES_PER_FILE: usize = 100 * 1024;

/// A small deterministic pseudo-random generator (64-bit LCG), so every run indexes the same text.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Made-up words from syllables; skewed picks make some words common and most rare, as in text.
fn vocabulary() -> Vec<String> {
    const SYLLABLES: &[&str] = &[
        "ka", "lo", "mer", "ti", "van", "su", "rel", "dor", "pi", "que", "zan", "el", "tor", "mi",
        "sa", "ber", "nu", "gal", "fi", "ost",
    ];
    let mut rng = Lcg(7);
    (0..5000)
        .map(|_| {
            let syllables = 1 + rng.below(3);
            (0..syllables)
                .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
                .collect()
        })
        .collect()
}

fn sentence(rng: &mut Lcg, words: &[String], out: &mut String) {
    let length = 8 + rng.below(14);
    for i in 0..length {
        // The product of two uniform picks favours small indexes: a rough Zipf-like skew.
        let word = &words[rng.below(words.len()) * rng.below(words.len()) / words.len()];
        if i == 0 {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        } else {
            out.push(' ');
            out.push_str(word);
        }
    }
    out.push_str(". ");
}

fn generate(dir: &Path) -> u64 {
    let words = vocabulary();
    let mut rng = Lcg(42);
    let mut total = 0;
    for file in 0..FILES {
        let mut text = format!("# Article {file}\n\n");
        let mut section = 0;
        while text.len() < BYTES_PER_FILE {
            if rng.below(6) == 0 {
                section += 1;
                text.push_str(&format!(
                    "## Section {section} {}\n\n",
                    words[rng.below(200)]
                ));
            }
            for _ in 0..3 + rng.below(4) {
                sentence(&mut rng, &words, &mut text);
            }
            text.push_str("\n\n");
        }
        total += text.len() as u64;
        let folder = dir.join(format!("part{}", file % 10));
        fs::create_dir_all(&folder).expect("mkdir");
        fs::write(folder.join(format!("article-{file}.md")), text).expect("write");
    }
    total
}

fn ingest(c: &mut Criterion) {
    let corpus = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    let bytes = generate(corpus.path());
    let source = CorpusSource::Dir(corpus.path().to_owned());
    eprintln!("generated {FILES} files, {:.1} MB", bytes as f64 / 1e6);

    let mut group = c.benchmark_group("ingest_50mb");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));

    let rebuild = IngestOptions {
        force_rebuild: true,
        ..IngestOptions::default()
    };
    group.bench_function("build", |b| {
        b.iter(|| Index::open_or_build(data.path(), &source, &rebuild, &|_| {}).expect("builds"))
    });

    let reuse = IngestOptions::default();
    Index::open_or_build(data.path(), &source, &reuse, &|_| {}).expect("builds");
    group.bench_function("reopen_unchanged", |b| {
        b.iter(|| {
            let (_, report) =
                Index::open_or_build(data.path(), &source, &reuse, &|_| {}).expect("opens");
            assert!(report.reused);
        })
    });

    let documents = load(&source, &reuse).expect("loads").documents;
    let options = ChunkOptions::default();
    group.bench_function("chunk_only", |b| {
        b.iter(|| {
            documents
                .iter()
                .map(|d| chunk_document(d, &options).len())
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
