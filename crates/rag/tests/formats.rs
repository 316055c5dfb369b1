//! Documents people have: PDFs (with and without a text layer) and HTML pages with site chrome,
//! written by the test itself, ingested into a real index and searched.

use std::fs;
use std::path::Path;

use ragchat_rag::{CorpusSource, Hit, Index, IngestOptions, IngestReport, RagError, SkipReason};
use ragchat_testkit::documents::{drawing_page, pdf, pdf_with_an_unknown_font_encoding, text_page};

const PAGE_WITH_CHROME: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Widget manual - Zorblax Industries</title>
  <style>.banner { color: purple }</style>
  <script>window.telemetryQuasar = true;</script>
</head>
<body>
  <header class="banner">
    <a href="/">Zorblax Industries</a>
    <nav><ul><li><a href="/pricing">Pricing plans</a></li><li><a href="/login">Customer login</a></li></ul></nav>
  </header>
  <main>
    <article>
      <h1>Installing the widget</h1>
      <p>Fasten the widget to a wall stud with two lag bolts before connecting any cable.</p>
      <h2>Calibrating the gyroscope</h2>
      <p>Hold the reset button for nine seconds until the gyroscope light blinks amber.</p>
    </article>
  </main>
  <aside>Newsletter signup: subscribe for weekly promotions.</aside>
  <footer>Copyright Zorblax Industries. Privacy policy. Cookie settings.</footer>
</body>
</html>
"#;

fn ingest(corpus: &Path) -> (Index, IngestReport, tempfile::TempDir) {
    let data = tempfile::tempdir().expect("temp dir");
    let (index, report) = Index::open_or_build(
        data.path(),
        &CorpusSource::Dir(corpus.to_owned()),
        &IngestOptions::default(),
        &|_| {},
    )
    .expect("ingest succeeds");
    (index, report, data)
}

fn search(index: &Index, question: &str) -> Vec<Hit> {
    index
        .retriever()
        .search(question, &[], 5)
        .expect("search works")
        .hits
}

fn reason<'a>(report: &'a IngestReport, path: &str) -> Option<&'a SkipReason> {
    report
        .skipped
        .iter()
        .find(|s| s.path == path)
        .map(|s| &s.reason)
}

#[test]
fn a_pdf_text_layer_is_indexed_with_its_page_numbers() {
    let corpus = tempfile::tempdir().expect("temp dir");
    let manual = pdf(&[
        text_page(&["Maintenance manual", "Check the oil level every morning."]),
        text_page(&[
            "Torque settings",
            "Tighten the flange bolts to 45 newton metres with a calibrated wrench.",
        ]),
    ]);
    fs::write(corpus.path().join("manual.pdf"), manual).expect("write");
    let (index, report, _data) = ingest(corpus.path());
    assert_eq!(report.files, 1, "{:?}", report.skipped);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);

    let hits = search(&index, "flange bolts torque");
    let hit = hits.first().expect("the PDF's text is found");
    assert_eq!(hit.path, "manual.pdf");
    assert!(hit.text.contains("45 newton metres"), "{}", hit.text);
    assert!(hit.heading.ends_with("Page 2"), "{}", hit.heading);
    let first = search(&index, "oil level morning");
    assert!(first[0].heading.ends_with("Page 1"), "{}", first[0].heading);
}

#[test]
fn a_pdf_without_a_text_layer_is_skipped_with_the_reason() {
    let corpus = tempfile::tempdir().expect("temp dir");
    fs::write(
        corpus.path().join("scan.pdf"),
        pdf(&[drawing_page(), drawing_page()]),
    )
    .expect("write");
    fs::write(
        corpus.path().join("broken.pdf"),
        b"%PDF-1.4\nthis is not a PDF body",
    )
    .expect("write");
    // The PDF reader panics on this one: the panic is contained and the file skipped.
    let odd = pdf_with_an_unknown_font_encoding(&[text_page(&["Unreadable font"])]);
    fs::write(corpus.path().join("odd-font.pdf"), odd).expect("write");
    fs::write(
        corpus.path().join("notes.md"),
        "# Notes\n\nSomething to index.\n",
    )
    .expect("write");
    let (_, report, _data) = ingest(corpus.path());
    assert_eq!(report.files, 1);
    let scan = reason(&report, "scan.pdf").expect("scan.pdf is listed");
    assert_eq!(scan, &SkipReason::NoTextLayer { pages: 2 });
    assert!(scan.to_string().contains("without a text layer"), "{scan}");
    assert!(
        matches!(
            reason(&report, "broken.pdf"),
            Some(SkipReason::Unparsable(_))
        ),
        "{:?}",
        report.skipped
    );
    let odd = reason(&report, "odd-font.pdf").expect("odd-font.pdf is listed");
    assert!(
        matches!(odd, SkipReason::Unparsable(why) if why.contains("NoSuchEncoding")),
        "{odd:?}"
    );
}

#[test]
fn an_html_page_is_indexed_without_its_navigation_chrome() {
    let corpus = tempfile::tempdir().expect("temp dir");
    fs::write(corpus.path().join("widget.html"), PAGE_WITH_CHROME).expect("write");
    fs::write(
        corpus.path().join("menu.htm"),
        "<html><body><nav>Home | About</nav><footer>(c) 2026</footer></body></html>",
    )
    .expect("write");
    let (index, report, _data) = ingest(corpus.path());
    assert_eq!(report.files, 1, "{:?}", report.skipped);
    assert_eq!(reason(&report, "menu.htm"), Some(&SkipReason::NoMainText));

    let hits = search(&index, "gyroscope reset button");
    let hit = hits.first().expect("the main text is found");
    assert_eq!(hit.path, "widget.html");
    assert_eq!(hit.title, "Installing the widget");
    assert!(
        hit.heading.ends_with("Calibrating the gyroscope"),
        "headings are kept for citations: {}",
        hit.heading
    );
    // Words that appear only in the banner, navigation, sidebar, footer, style and script.
    for chrome in [
        "zorblax",
        "pricing",
        "login",
        "newsletter",
        "privacy",
        "cookie",
        "telemetryQuasar",
        "purple",
    ] {
        let found = search(&index, chrome);
        assert!(
            found.is_empty(),
            "{chrome:?} is chrome, not content: {found:?}"
        );
    }
}

#[test]
fn every_file_left_out_is_listed_and_a_missing_folder_says_so() {
    let corpus = tempfile::tempdir().expect("temp dir");
    fs::write(corpus.path().join("photo.png"), b"\x89PNG\r\n").expect("write");
    fs::write(corpus.path().join("Makefile"), "all:\n").expect("write");
    fs::write(corpus.path().join("a.md"), "# A\n\nText.\n").expect("write");
    let (_, report, _data) = ingest(corpus.path());
    assert_eq!(
        reason(&report, "photo.png"),
        Some(&SkipReason::Unsupported {
            extension: "png".into()
        })
    );
    let makefile = reason(&report, "Makefile").expect("listed");
    assert_eq!(
        makefile.to_string(),
        "not a supported document type (no extension)"
    );

    let data = tempfile::tempdir().expect("temp dir");
    let open = |dir: &Path| {
        let opened = Index::open_or_build(
            data.path(),
            &CorpusSource::Dir(dir.to_owned()),
            &IngestOptions::default(),
            &|_| {},
        );
        match opened {
            Ok(_) => panic!("{} is not a documents folder", dir.display()),
            Err(error) => error,
        }
    };
    let missing = open(&corpus.path().join("no-such-folder"));
    assert!(matches!(missing, RagError::InvalidInput(_)), "{missing}");
    assert!(missing.to_string().contains("does not exist"), "{missing}");
    let file = open(&corpus.path().join("a.md"));
    assert!(file.to_string().contains("is not a folder"), "{file}");
}
