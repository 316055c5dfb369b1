//! Ingesting a folder with good and bad files: the good are indexed, the bad reported, the index
//! reused while nothing changes and rebuilt when something does.

use std::cell::RefCell;
use std::fs;
use std::path::Path;

use ragchat_rag::{
    CorpusSource, Index, IngestOptions, IngestProgress, IngestReport, RagError, SkipReason,
};

const TEN_MIB: usize = 10 * 1024 * 1024;

fn write_corpus(root: &Path) {
    fs::create_dir_all(root.join("nested/deeper")).expect("mkdir");
    fs::write(
        root.join("guide.md"),
        "# Sailing Guide\n\nIntro about boats.\n\n## Knots\n\nThe bowline is a reliable loop knot.\n",
    )
    .expect("write");
    fs::write(
        root.join("notes.txt"),
        "TIDES\n\n   Spring tides follow the full moon.\n",
    )
    .expect("write");
    fs::write(
        root.join("nested/deeper/weather.rst"),
        "Weather\n=======\n\nCumulonimbus clouds bring squalls.\n",
    )
    .expect("write");
    fs::write(
        root.join("nested/logbook.markdown"),
        "Logbook entry: anchored in the lee.\n",
    )
    .expect("write");
    // Files that must be skipped, each for its own reason.
    fs::write(root.join("chart.txt"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").expect("write");
    fs::write(root.join("empty.md"), b"").expect("write");
    fs::write(root.join("huge.md"), "word ".repeat(TEN_MIB / 5)).expect("write");
    fs::write(root.join("latin1.txt"), b"caf\xe9 au lait").expect("write");
    std::os::unix::fs::symlink(root.join("missing.md"), root.join("dangling.md")).expect("symlink");
    // Not a document type that is read: reported as such.
    fs::write(root.join("photo.png"), b"\0\0binary").expect("write");
    // Hidden: passed over without a word.
    fs::create_dir_all(root.join(".git")).expect("mkdir");
    fs::write(root.join(".git/HEAD.md"), "hidden").expect("write");
}

/// Opens the index, recording progress events.
fn open(
    data: &Path,
    corpus: &Path,
    options: &IngestOptions,
) -> (Index, IngestReport, Vec<IngestProgress>) {
    let events = RefCell::new(Vec::new());
    let (index, report) = Index::open_or_build(
        data,
        &CorpusSource::Dir(corpus.to_owned()),
        options,
        &|event| events.borrow_mut().push(event),
    )
    .expect("ingest succeeds despite bad files");
    (index, report, events.into_inner())
}

fn top_path(index: &Index, question: &str) -> Option<String> {
    let retrieval = index
        .retriever()
        .search(question, &[], 1)
        .expect("search works");
    retrieval.hits.first().map(|h| h.path.clone())
}

#[test]
fn good_files_are_indexed_and_bad_ones_reported() {
    let corpus = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    write_corpus(corpus.path());

    let (index, report, events) = open(data.path(), corpus.path(), &IngestOptions::default());
    assert!(!report.reused);
    assert_eq!(report.files, 4);
    assert!(report.chunks >= 4, "{} chunks", report.chunks);
    assert_eq!(index.num_chunks(), report.chunks);

    let skipped: Vec<(&str, &SkipReason)> = report
        .skipped
        .iter()
        .map(|s| (s.path.as_str(), &s.reason))
        .collect();
    assert_eq!(skipped.len(), 6, "{skipped:?}");
    assert_eq!(skipped[0], ("chart.txt", &SkipReason::Binary));
    assert_eq!(skipped[1].0, "dangling.md");
    assert!(matches!(skipped[1].1, SkipReason::Unreadable(_)));
    assert_eq!(skipped[2], ("empty.md", &SkipReason::Empty));
    assert_eq!(
        skipped[3],
        (
            "huge.md",
            &SkipReason::TooLarge {
                bytes: TEN_MIB as u64,
                limit: 5 * 1024 * 1024
            }
        )
    );
    assert_eq!(
        skipped[4],
        ("latin1.txt", &SkipReason::NotUtf8 { offset: 3 })
    );
    assert_eq!(
        skipped[5],
        (
            "photo.png",
            &SkipReason::Unsupported {
                extension: "png".into()
            }
        )
    );
    assert_eq!(
        report.skipped[3].reason.to_string(),
        "too large (10.0 MiB > limit 5.0 MiB)"
    );

    assert_eq!(
        top_path(&index, "bowline knot").as_deref(),
        Some("guide.md")
    );
    assert_eq!(
        top_path(&index, "spring tides").as_deref(),
        Some("notes.txt")
    );
    assert_eq!(
        top_path(&index, "cumulonimbus squalls").as_deref(),
        Some("nested/deeper/weather.rst")
    );
    assert_eq!(
        top_path(&index, "anchored").as_deref(),
        Some("nested/logbook.markdown")
    );
    assert_eq!(top_path(&index, "hidden"), None);

    assert!(matches!(
        events.first(),
        Some(IngestProgress::Scanned {
            files: 4,
            skipped: 6,
            ..
        })
    ));
    let indexed = events
        .iter()
        .filter(|e| matches!(e, IngestProgress::Indexed { .. }))
        .count();
    assert_eq!(indexed, 4);
    assert_eq!(events.last(), Some(&IngestProgress::Committing));
}

#[test]
fn unchanged_corpus_reuses_the_index_and_a_change_rebuilds_it() {
    let corpus = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    write_corpus(corpus.path());
    let options = IngestOptions::default();

    let (_, first, _) = open(data.path(), corpus.path(), &options);
    let (second_index, second, events) = open(data.path(), corpus.path(), &options);
    assert!(second.reused);
    assert_eq!(second.chunks, first.chunks);
    assert_eq!(second.skipped, first.skipped);
    assert!(events.contains(&IngestProgress::Reusing));
    assert!(!events
        .iter()
        .any(|e| matches!(e, IngestProgress::Indexed { .. })));

    fs::write(
        corpus.path().join("notes.txt"),
        "TIDES\n\n   Neap tides follow the half moon.\n",
    )
    .expect("write");
    let (third_index, third, _) = open(data.path(), corpus.path(), &options);
    assert!(!third.reused);
    assert_eq!(top_path(&third_index, "neap").as_deref(), Some("notes.txt"));
    assert_eq!(top_path(&third_index, "spring"), None);
    // The index opened before the rebuild keeps answering from its own generation.
    assert_eq!(
        top_path(&second_index, "spring").as_deref(),
        Some("notes.txt")
    );

    let generations = fs::read_dir(third_index.path().parent().expect("has parent"))
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("gen-"))
        .count();
    assert_eq!(generations, 1, "old generations are removed");

    let forced = IngestOptions {
        force_rebuild: true,
        ..IngestOptions::default()
    };
    let (_, rebuilt, _) = open(data.path(), corpus.path(), &forced);
    assert!(!rebuilt.reused);
}

#[test]
fn a_corrupt_manifest_or_index_is_rebuilt() {
    let corpus = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    write_corpus(corpus.path());
    let options = IngestOptions::default();
    let (index, _, _) = open(data.path(), corpus.path(), &options);
    let root = index.path().parent().expect("has parent").to_owned();
    drop(index);

    fs::write(root.join("manifest.json"), "{ not json").expect("write");
    let (index, report, _) = open(data.path(), corpus.path(), &options);
    assert!(!report.reused);

    // Remove the index files the manifest points at: reopening must rebuild, not fail.
    fs::remove_dir_all(index.path()).expect("remove");
    let (index, report, _) = open(data.path(), corpus.path(), &options);
    assert!(!report.reused);
    assert_eq!(top_path(&index, "bowline").as_deref(), Some("guide.md"));
}

#[test]
fn chunk_options_and_size_limit_are_honoured() {
    let corpus = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    write_corpus(corpus.path());
    let options = IngestOptions {
        max_file_bytes: 20 * 1024 * 1024,
        ..IngestOptions::default()
    };
    let (_, report, _) = open(data.path(), corpus.path(), &options);
    assert_eq!(report.files, 5, "the 10 MiB file fits a 20 MiB limit");
    assert!(!report.skipped.iter().any(|s| s.path == "huge.md"));
    assert!(report.chunks > 10_000, "the big file is chunked");
}

#[test]
fn a_missing_corpus_folder_is_invalid_input() {
    let data = tempfile::tempdir().expect("temp dir");
    let missing = data.path().join("no-such-folder");
    let error = Index::open_or_build(
        data.path(),
        &CorpusSource::Dir(missing),
        &IngestOptions::default(),
        &|_| {},
    )
    .expect_err("a missing folder is an error");
    assert!(matches!(error, RagError::InvalidInput(_)), "{error}");
    assert!(!error.is_retryable());
}
