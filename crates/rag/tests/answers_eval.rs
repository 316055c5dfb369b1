//! Answer-level evaluation: what the offline answerer says, not only what retrieval finds.
//!
//! Two corpora of different kinds: the bundled machine-learning articles
//! (`eval/answers-articles.json`), and how-to notes plus reference pages
//! (`eval/answers-notes.json`: the cooking notes in `eval/notes/` and manual pages rendered to
//! text with `man` when it is installed). Each has four categories:
//!
//! - answers: the answer must contain the expected phrases and cite the expected document first;
//! - declines: questions the documents cannot answer must get the plain "not covered" reply;
//! - small talk: greetings, thanks, goodbyes and "what can you do?" get their reply, never a
//!   decline or a quote; "what can you do?" offers example questions that are themselves answered;
//! - follow-ups: multi-turn conversations asked with the earlier turns as history, as a chat
//!   does; every turn is scored.
//!
//! The test prints the pass rate per category and every failure, and requires at least
//! [`MIN_PASS_RATE`] in every category on both corpora. Run with `--nocapture` to see it.

use std::path::{Path, PathBuf};
use std::process::Command;

use ragchat_rag::{
    AnswerRequest, CorpusSource, Document, ExtractiveAnswerer, HistoryTurn, Index, IngestOptions,
    Retriever, NOTHING_FOUND_REPLY,
};
use serde::Deserialize;

const K: usize = 3;
const MIN_PASS_RATE: f64 = 0.9;

#[derive(Deserialize)]
struct EvalSet {
    #[serde(default)]
    man_pages: Vec<String>,
    answers: Vec<Case>,
    declines: Vec<Case>,
    small_talk: Vec<Case>,
    follow_ups: Vec<Conversation>,
}

#[derive(Deserialize, Clone)]
struct Case {
    #[serde(alias = "message")]
    question: String,
    #[serde(default)]
    expect: Vec<String>,
    #[serde(default)]
    never: Vec<String>,
    source: Option<String>,
    #[serde(default)]
    decline: bool,
    /// For declines: a phrase naming the near topic the reply should offer.
    near: Option<String>,
    /// For "what can you do?": the reply must offer example questions that get answers.
    #[serde(default)]
    examples: bool,
    #[serde(default)]
    man: bool,
}

#[derive(Deserialize)]
struct Conversation {
    name: String,
    turns: Vec<Case>,
    #[serde(default)]
    man: bool,
}

/// One evaluated message and what was wrong with its answer, if anything.
struct Outcome {
    label: String,
    question: String,
    answer: String,
    problem: Option<String>,
}

struct Corpus {
    retriever: Retriever,
    answerer: ExtractiveAnswerer,
    has_man: bool,
}

fn load(name: &str) -> EvalSet {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("eval")
        .join(name);
    let json = std::fs::read_to_string(&path).expect("eval file is readable");
    serde_json::from_str(&json).expect("eval file is valid")
}

fn open(data: &Path, source: &CorpusSource) -> (Retriever, ExtractiveAnswerer) {
    let (index, report) = Index::open_or_build(data, source, &IngestOptions::default(), &|_| {})
        .expect("corpus indexes");
    assert!(report.files > 0, "the corpus is empty");
    (index.retriever(), ExtractiveAnswerer::for_index(&index))
}

/// `man PAGE` as plain text, or `None` when man or the page is not installed.
fn render_man_page(page: &str) -> Option<String> {
    let output = Command::new("man")
        .args(["--nh", "--nj", "-P", "cat", page])
        .env("MANWIDTH", "100")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    // Overstrike bold and underline ("X\bX", "_\bX") in case a pager setting kept them.
    let mut plain = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    (!plain.trim().is_empty()).then_some(plain)
}

fn notes_corpus(man_pages: &[String]) -> (Vec<Document>, bool) {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/notes");
    let mut documents = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("eval/notes is readable")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        documents.push(Document {
            path: name,
            text: std::fs::read_to_string(&path).expect("note is UTF-8"),
        });
    }
    let mut has_man = !man_pages.is_empty();
    for page in man_pages {
        match render_man_page(page) {
            Some(text) => documents.push(Document {
                path: format!("man/{page}.txt"),
                text,
            }),
            None => {
                println!("note: man page {page} unavailable; reference-page cases are skipped");
                has_man = false;
            }
        }
    }
    (documents, has_man)
}

fn is_decline(answer: &ragchat_rag::Answer) -> bool {
    answer.sources.is_empty() && answer.text.starts_with(NOTHING_FOUND_REPLY)
}

fn contains(text: &str, phrase: &str) -> bool {
    let text = text.to_lowercase();
    phrase
        .split('|')
        .any(|alternative| text.contains(&alternative.to_lowercase()))
}

/// What is wrong with `answer` for `case`, if anything.
fn judge(
    corpus: &Corpus,
    case: &Case,
    answer: &ragchat_rag::Answer,
    category: &str,
) -> Option<String> {
    let declined = is_decline(answer);
    if category == "declines" || case.decline {
        if !declined {
            return Some("answered instead of declining".into());
        }
        if let Some(near) = &case.near {
            if !contains(&answer.text, near) {
                return Some(format!("declined without naming the near topic {near:?}"));
            }
        }
        return None;
    }
    if declined {
        return Some("declined".into());
    }
    for phrase in &case.expect {
        if !contains(&answer.text, phrase) {
            return Some(format!("missing {phrase:?}"));
        }
    }
    for phrase in &case.never {
        if contains(&answer.text, phrase) {
            return Some(format!("contains {phrase:?}"));
        }
    }
    if category == "small_talk" && !answer.sources.is_empty() {
        return Some("small talk answered with sources".into());
    }
    if let Some(source) = &case.source {
        let first = answer.sources.first().map(|s| s.path.as_str());
        if !first.is_some_and(|f| source.split('|').any(|s| s == f)) {
            return Some(format!("first source {first:?}, expected {source}"));
        }
    }
    if case.examples {
        let offered: Vec<&str> = answer.text.split('"').skip(1).step_by(2).collect();
        if offered.len() < 3 {
            return Some(format!(
                "offers {} example questions, expected 3",
                offered.len()
            ));
        }
        for example in offered {
            let reply = ask(corpus, &[], example);
            if is_decline(&reply) || reply.sources.is_empty() {
                return Some(format!("example {example:?} is not answered"));
            }
        }
    }
    None
}

fn ask(corpus: &Corpus, history: &[HistoryTurn], message: &str) -> ragchat_rag::Answer {
    let retrieval = corpus
        .retriever
        .search(message, history, K)
        .expect("search works");
    corpus.answerer.compose(&AnswerRequest {
        question: message.to_owned(),
        history: history.to_vec(),
        hits: retrieval.hits,
        recalled: Vec::new(),
    })
}

/// Runs every case of `eval` on `corpus`; returns the outcomes by category.
fn evaluate(corpus: &Corpus, eval: &EvalSet) -> Vec<(&'static str, Vec<Outcome>)> {
    let runnable = |case: &Case| !case.man || corpus.has_man;
    let mut categories = Vec::new();
    for (category, cases) in [
        ("answers", &eval.answers),
        ("declines", &eval.declines),
        ("small_talk", &eval.small_talk),
    ] {
        let outcomes = cases
            .iter()
            .filter(|c| runnable(c))
            .map(|case| {
                let answer = ask(corpus, &[], &case.question);
                Outcome {
                    label: category.to_owned(),
                    question: case.question.clone(),
                    problem: judge(corpus, case, &answer, category),
                    answer: answer.text,
                }
            })
            .collect();
        categories.push((category, outcomes));
    }
    let mut follow_ups = Vec::new();
    for conversation in eval.follow_ups.iter().filter(|c| !c.man || corpus.has_man) {
        let mut history = Vec::new();
        for (i, turn) in conversation.turns.iter().enumerate() {
            let answer = ask(corpus, &history, &turn.question);
            // Every turn counts, the opening one too: a wrong start derails the rest.
            follow_ups.push(Outcome {
                label: format!("{} #{}", conversation.name, i + 1),
                question: turn.question.clone(),
                problem: judge(corpus, turn, &answer, "follow_ups"),
                answer: answer.text.clone(),
            });
            history.push(HistoryTurn::user(&turn.question));
            history.push(HistoryTurn::assistant(answer.text));
        }
    }
    categories.push(("follow_ups", follow_ups));
    categories
}

fn report(name: &str, categories: &[(&'static str, Vec<Outcome>)]) -> Vec<String> {
    let mut below = Vec::new();
    println!("answer-level evaluation: {name}");
    for (category, outcomes) in categories {
        let passed = outcomes.iter().filter(|o| o.problem.is_none()).count();
        let rate = passed as f64 / outcomes.len().max(1) as f64;
        println!(
            "  {category:<11} {passed:>3}/{:<3} = {:.0}%",
            outcomes.len(),
            rate * 100.0
        );
        if outcomes.is_empty() || rate < MIN_PASS_RATE {
            below.push(format!("{name} {category} {passed}/{}", outcomes.len()));
        }
    }
    for (_, outcomes) in categories {
        for o in outcomes.iter().filter(|o| o.problem.is_some()) {
            println!(
                "  FAIL [{}] {:?}: {}\n       answer: {}",
                o.label,
                o.question,
                o.problem.as_deref().unwrap_or_default(),
                o.answer
            );
        }
    }
    below
}

#[test]
fn answers_pass_on_the_bundled_articles_and_on_notes_with_reference_pages() {
    let data = tempfile::tempdir().expect("temp dir");

    let articles = load("answers-articles.json");
    let (retriever, answerer) = open(&data.path().join("articles"), &CorpusSource::Bundled);
    let corpus = Corpus {
        retriever,
        answerer,
        has_man: false,
    };
    let mut below = report("bundled articles", &evaluate(&corpus, &articles));

    let notes = load("answers-notes.json");
    let (documents, has_man) = notes_corpus(&notes.man_pages);
    let source = CorpusSource::Documents {
        name: "eval-notes".into(),
        documents,
    };
    let (retriever, answerer) = open(&data.path().join("notes"), &source);
    let corpus = Corpus {
        retriever,
        answerer,
        has_man,
    };
    let name = if has_man {
        "how-to notes and manual pages"
    } else {
        "how-to notes (no man: reference pages skipped)"
    };
    below.extend(report(name, &evaluate(&corpus, &notes)));

    assert!(below.is_empty(), "below {MIN_PASS_RATE}: {below:?}");
}
