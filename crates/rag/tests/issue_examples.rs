//! The examples of issue 14 ("answers people trust"), each asked as a user did in the trial,
//! against the bundled articles and the cooking notes in `eval/notes/`.

use std::path::Path;

use ragchat_rag::{
    Answer, AnswerRequest, CorpusSource, ExtractiveAnswerer, HistoryTurn, Index, IngestOptions,
    Retriever, NOTHING_FOUND_REPLY, NO_CONVERSATION_REPLY,
};

struct Chat {
    retriever: Retriever,
    answerer: ExtractiveAnswerer,
    history: Vec<HistoryTurn>,
}

impl Chat {
    fn new(data: &Path, source: CorpusSource) -> Chat {
        let (index, _) = Index::open_or_build(data, &source, &IngestOptions::default(), &|_| {})
            .expect("corpus indexes");
        Chat {
            retriever: index.retriever(),
            answerer: ExtractiveAnswerer::for_index(&index),
            history: Vec::new(),
        }
    }

    fn articles(data: &Path) -> Chat {
        Chat::new(data, CorpusSource::Bundled)
    }

    fn cooking_notes(data: &Path) -> Chat {
        let notes = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/notes");
        Chat::new(data, CorpusSource::Dir(notes))
    }

    /// One turn, remembered as a chat remembers it.
    fn ask(&mut self, message: &str) -> Answer {
        let retrieval = self
            .retriever
            .search(message, &self.history, 3)
            .expect("search works");
        let answer = self.answerer.compose(&AnswerRequest {
            question: message.to_owned(),
            history: self.history.clone(),
            hits: retrieval.hits,
            recalled: Vec::new(),
        });
        self.history.push(HistoryTurn::user(message));
        self.history
            .push(HistoryTurn::assistant(answer.text.clone()));
        answer
    }
}

fn first_source(answer: &Answer) -> Option<&str> {
    answer.sources.first().map(|s| s.path.as_str())
}

#[test]
fn what_about_overfitting_quotes_the_definition_first() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut chat = Chat::articles(data.path());
    let answer = chat.ask("What about overfitting?");
    assert!(
        answer
            .text
            .starts_with("Overfitting happens when a model memorises the training data"),
        "{}",
        answer.text
    );
    // Never the sentence that refers to something the reader has not seen, on its own.
    if let Some(at) = answer
        .text
        .find("An overfitted model cannot tell the difference")
    {
        assert!(
            answer.text[..at].contains("every dataset contains both signal"),
            "{}",
            answer.text
        );
    }
    assert_eq!(
        first_source(&answer),
        Some("overfitting-and-regularization.md")
    );
}

#[test]
fn how_do_i_prevent_it_stays_on_overfitting() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut chat = Chat::articles(data.path());
    chat.ask("What about overfitting?");
    let answer = chat.ask("How do I prevent it?");
    let text = answer.text.to_lowercase();
    assert!(
        ["regularis", "regulariz", "dropout", "early stopping"]
            .iter()
            .any(|w| text.contains(w)),
        "{}",
        answer.text
    );
    assert!(!text.contains("bm25"), "{}", answer.text);
    assert!(!text.contains("long chunks"), "{}", answer.text);
    assert!(
        answer
            .sources
            .iter()
            .all(|s| s.path == "overfitting-and-regularization.md"),
        "{:?}",
        answer.sources
    );
}

#[test]
fn should_i_add_cream_quotes_never_add_cream() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut chat = Chat::cooking_notes(data.path());
    chat.ask("How do I make scrambled eggs?");
    let answer = chat.ask("Should I add cream?");
    assert!(
        answer.text.starts_with("Never add cream"),
        "{}",
        answer.text
    );
    assert!(!answer.text.contains("paring knife"), "{}", answer.text);
    assert_eq!(first_source(&answer), Some("scrambled-eggs.md"));
}

#[test]
fn and_a_hard_one_after_soft_boiled_eggs_is_about_eggs() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut chat = Chat::cooking_notes(data.path());
    let soft = chat.ask("How long do I boil a soft-boiled egg?");
    assert!(soft.text.contains("6 minutes"), "{}", soft.text);
    let hard = chat.ask("And a hard one?");
    assert!(
        hard.text.contains("hard-boiled") || hard.text.contains("10 minutes"),
        "{}",
        hard.text
    );
    assert!(!hard.text.to_lowercase().contains("pasta"), "{}", hard.text);
    assert_eq!(first_source(&hard), Some("eggs.md"));
}

#[test]
fn a_question_the_documents_do_not_cover_is_declined_plainly() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut chat = Chat::articles(data.path());
    for question in [
        "What is the capital of France?",
        "What is the capital city of the country with the largest population?",
        "Which country has the highest probability of rain in April?",
    ] {
        let answer = chat.ask(question);
        assert!(
            answer.text.starts_with(NOTHING_FOUND_REPLY),
            "{question}: {}",
            answer.text
        );
        assert!(answer.sources.is_empty(), "{question}");
        assert!(!answer.text.contains("token"), "{}", answer.text);
    }
}

#[test]
fn a_decline_names_the_near_topic_the_documents_do_cover() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut chat = Chat::articles(data.path());
    let answer = chat.ask("How do I tune a guitar?");
    assert_eq!(
        answer.text,
        format!("{NOTHING_FOUND_REPLY} They do cover hyperparameter tuning; ask about that?")
    );
}

#[test]
fn greetings_and_thanks_get_a_reply_not_an_apology() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut chat = Chat::articles(data.path());
    let hello = chat.ask("Hello!");
    assert_ne!(hello.text, NO_CONVERSATION_REPLY);
    assert!(hello.text.starts_with("Hello"), "{}", hello.text);
    assert!(hello.sources.is_empty());
    chat.ask("What is machine learning?");
    let thanks = chat.ask("Thanks!");
    assert!(
        !thanks.text.starts_with(NOTHING_FOUND_REPLY),
        "{}",
        thanks.text
    );
    assert!(thanks.text.contains("welcome"), "{}", thanks.text);
    let who = chat.ask("What can you do?");
    let offered: Vec<&str> = who.text.split('"').skip(1).step_by(2).collect();
    assert_eq!(offered.len(), 3, "{}", who.text);
    // The topic survives the small talk.
    let more = chat.ask("Continue");
    assert!(
        more.text
            .starts_with("We were talking about what machine learning is"),
        "{}",
        more.text
    );
}

#[test]
fn continue_recaps_in_a_sentence() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut chat = Chat::articles(data.path());
    chat.ask("What is machine learning?");
    chat.ask("How does it learn?");
    let resumed = chat.ask("Continue");
    assert!(
        resumed.text.starts_with(
            "We were talking about how machine learning models learn (you asked \"How does it learn?\"). Here is more on it. "
        ),
        "{}",
        resumed.text
    );
    assert!(
        !resumed.text.contains("Picking up from there:"),
        "{}",
        resumed.text
    );
    assert_eq!(first_source(&resumed), Some("how-models-learn.md"));
}

#[test]
fn tell_me_more_quotes_the_next_passage_of_the_same_source() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut chat = Chat::articles(data.path());
    let first = chat.ask("What is overfitting?");
    let first_lines = first.sources[0].line_end;
    let more = chat.ask("Tell me more");
    assert_eq!(
        first_source(&more),
        Some("overfitting-and-regularization.md"),
        "{}",
        more.text
    );
    assert!(
        more.sources[0].line_start > first.sources[0].line_start,
        "{:?} after {:?}",
        more.sources[0],
        first.sources[0]
    );
    assert!(more.sources[0].line_end > first_lines);
    let again = chat.ask("Tell me more");
    assert!(
        again.sources[0].line_end > more.sources[0].line_end,
        "{:?}",
        again.sources
    );
}
