//! `ragchat ingest` and `chat --docs` on the documents people have: PDFs with and without a
//! text layer, an HTML page with site chrome, and files of other types, all written by the
//! test; every file that is not indexed is listed with its reason.

use std::path::Path;
use std::process::{Command, Output};

use ragchat_testkit::documents::{drawing_page, pdf, pdf_with_an_unknown_font_encoding, text_page};
use serde_json::Value;

fn ragchat(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ragchat"))
        .env_remove("RAGCHAT_STORE")
        .env_remove("RAGCHAT_LLM_URL")
        .env_remove("RAGCHAT_DOCS")
        .env("RAGCHAT_DATA_DIR", data_dir)
        .args(args)
        .output()
        .expect("run ragchat")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ragchat failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const PAGE: &str = "<html><head><title>Boiler guide</title></head><body>\
    <header><nav><a href='/'>Quuxcorp home</a> <a href='/shop'>Shop</a></nav></header>\
    <main><h1>Boiler guide</h1><h2>Bleeding the radiators</h2>\
    <p>Open the bleed valve a quarter turn until water appears, then close it.</p></main>\
    <footer>Quuxcorp newsletter</footer></body></html>";

fn write_docs(docs: &Path) {
    let manual = pdf(&[
        text_page(&["Pump manual", "Prime the pump before the first start."]),
        text_page(&[
            "Seals",
            "Replace the impeller seal every 1200 operating hours.",
        ]),
    ]);
    std::fs::write(docs.join("pump-manual.pdf"), manual).unwrap();
    std::fs::write(docs.join("scan.pdf"), pdf(&[drawing_page()])).unwrap();
    std::fs::write(docs.join("boiler.html"), PAGE).unwrap();
    std::fs::write(docs.join("photo.jpg"), b"\xff\xd8\xff\xe0 not text").unwrap();
    let odd = pdf_with_an_unknown_font_encoding(&[text_page(&["Odd font"])]);
    std::fs::write(docs.join("odd-font.pdf"), odd).unwrap();
}

#[test]
fn ingest_indexes_pdf_and_html_and_lists_every_file_left_out() {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    write_docs(docs.path());
    let dir = docs.path().to_str().unwrap();

    let out = ragchat(data.path(), &["ingest", dir, "--json"]);
    let report: Value = serde_json::from_str(ok(&out).trim()).expect("JSON report");
    // The PDF reader's panic on odd-font.pdf is contained, and kept off the terminal.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(report["files"], 2, "{report}");
    let skipped: Vec<(String, String)> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert_eq!(skipped[0].0, "odd-font.pdf");
    assert!(
        skipped[0].1.starts_with("cannot be parsed: "),
        "{skipped:?}"
    );
    assert_eq!(skipped[1].0, "photo.jpg");
    assert!(
        skipped[1]
            .1
            .contains("not a supported document type (.jpg)"),
        "{skipped:?}"
    );
    assert_eq!(skipped[2].0, "scan.pdf");
    assert!(skipped[2].1.contains("without a text layer"), "{skipped:?}");

    // The plain report names them too.
    let text = ok(&ragchat(data.path(), &["ingest", dir]));
    assert!(text.contains("skipped 3 file(s):"), "{text}");
    assert!(
        text.contains("  scan.pdf: PDF without a text layer"),
        "{text}"
    );
}

#[test]
fn chat_answers_from_a_pdf_page_and_an_html_section() {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    write_docs(docs.path());
    let dir = docs.path().to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ragchat"))
        .env_remove("RAGCHAT_STORE")
        .env_remove("RAGCHAT_LLM_URL")
        .env("RAGCHAT_DATA_DIR", data.path())
        .args(["chat", "--user", "fixer", "--docs", dir])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"How often do I replace the impeller seal?\nHow do I bleed the radiators?\n")
        .unwrap();
    let text = ok(&child.wait_with_output().unwrap());
    assert!(text.contains("1200 operating hours"), "{text}");
    assert!(
        text.contains("[1] pump-manual.pdf › Pump manual > Page 2"),
        "{text}"
    );
    assert!(text.contains("quarter turn"), "{text}");
    assert!(
        text.contains("[1] boiler.html › Boiler guide > Bleeding the radiators"),
        "{text}"
    );
    assert!(
        !text.contains("Quuxcorp"),
        "site chrome is not content: {text}"
    );
}
