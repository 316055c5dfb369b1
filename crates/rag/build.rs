//! Embeds the bundled corpus (`<workspace>/corpus/`) into the crate.
//!
//! Walks the folder at build time and writes `bundled_corpus.rs` into `OUT_DIR`: a sorted table of
//! `(relative path, include_str!(absolute path))`. Only UTF-8 files with a corpus extension are
//! embedded; anything else gets a `cargo:warning` so a bad file is noticed, not silently dropped.

use std::env;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const EXTENSIONS: &[&str] = &["md", "markdown", "txt", "rst"];

fn main() -> io::Result<()> {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let corpus = manifest_dir.join("../../corpus");
    println!("cargo:rerun-if-changed={}", corpus.display());

    let mut files = Vec::new();
    if corpus.is_dir() {
        collect(&corpus, &corpus, &mut files)?;
    } else {
        println!(
            "cargo:warning=no bundled corpus at {}; bundled_corpus() will be empty",
            corpus.display()
        );
    }
    files.sort();

    let mut table = String::from("&[\n");
    for (relative, absolute) in &files {
        println!("cargo:rerun-if-changed={}", absolute.display());
        let absolute = absolute.to_str().expect("checked in collect");
        table.push_str(&format!(
            "    ({relative:?}, include_str!({absolute:?})),\n"
        ));
    }
    table.push(']');

    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("bundled_corpus.rs");
    fs::write(out, table)
}

/// Collects `(relative '/'-separated path, absolute path)` of every embeddable file under `dir`.
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) -> io::Result<()> {
    // Directories are watched too, so adding a file anywhere below triggers a rebuild.
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, files)?;
            continue;
        }
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !EXTENSIONS.contains(&extension.to_ascii_lowercase().as_str()) {
            continue;
        }
        let absolute = fs::canonicalize(&path)?;
        let (Some(relative), Some(_)) = (relative_path(root, &path), absolute.to_str()) else {
            println!(
                "cargo:warning=not embedding {} (path is not UTF-8)",
                path.display()
            );
            continue;
        };
        if String::from_utf8(fs::read(&absolute)?).is_err() {
            println!(
                "cargo:warning=not embedding {} (content is not UTF-8)",
                path.display()
            );
            continue;
        }
        files.push((relative, absolute));
    }
    Ok(())
}

fn relative_path(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    Some(parts?.join("/"))
}
