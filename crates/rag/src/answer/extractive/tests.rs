//! Unit tests of the extractive answerer on hand-made hits (no index: all terms weigh the same).

use super::*;
use crate::chunk::Chunk;

fn hit(path: &str, title: &str, text: &str, score: f32) -> Hit {
    Hit::new(
        Chunk {
            path: path.into(),
            title: title.into(),
            heading: title.into(),
            line_start: 1,
            line_end: 3,
            text: text.into(),
        },
        score,
    )
}

fn request(question: &str, history: Vec<HistoryTurn>, hits: Vec<Hit>) -> AnswerRequest {
    AnswerRequest {
        question: question.into(),
        history,
        hits,
        recalled: Vec::new(),
    }
}

fn gradient_hits() -> Vec<Hit> {
    vec![
        hit(
            "gd.md",
            "Gradient Descent",
            "Gradient descent is an algorithm that adjusts each parameter against the gradient of \
             the loss. It repeats this many times. Steps that are too large overshoot the minimum.",
            8.0,
        ),
        hit(
            "nn.md",
            "Neural Networks",
            "Neural networks are trained with gradient descent and backpropagation. \
             They stack layers of simple units.",
            7.5,
        ),
    ]
}

#[test]
fn quotes_the_defining_sentence_first_with_matching_citations() {
    let answer = ExtractiveAnswerer::new().compose(&request(
        "What is gradient descent?",
        vec![],
        gradient_hits(),
    ));
    assert!(
        answer
            .text
            .starts_with("Gradient descent is an algorithm that adjusts each parameter"),
        "{}",
        answer.text
    );
    assert!(answer.text.contains("the loss. [1]"), "{}", answer.text);
    for (n, source) in answer.sources.iter().enumerate() {
        assert!(answer.text.contains(&format!("[{}]", n + 1)), "{source:?}");
    }
    assert_eq!(answer.sources[0].path, "gd.md");
    // "It repeats this many times." leans on the sentence before it: never quoted alone.
    if let Some(at) = answer.text.find("It repeats this") {
        assert!(
            answer.text[..at].ends_with("of the loss. "),
            "{}",
            answer.text
        );
    }
}

#[test]
fn honest_when_nothing_relevant() {
    let answerer = ExtractiveAnswerer::new();
    let none = answerer.compose(&request("What is gradient descent?", vec![], vec![]));
    assert_eq!(none, plain(NOTHING_FOUND_REPLY));
    let unrelated = answerer.compose(&request(
        "Who painted the Mona Lisa?",
        vec![],
        gradient_hits(),
    ));
    assert_eq!(unrelated, plain(NOTHING_FOUND_REPLY));
    // "descent" matches, but "skiing", "slope" and "safety" are nowhere in the hits.
    let one_word = answerer.compose(&request(
        "Is a steep ski slope descent safe?",
        vec![],
        gradient_hits(),
    ));
    assert_eq!(one_word, plain(NOTHING_FOUND_REPLY));
    let mut weak = gradient_hits();
    weak.iter_mut().for_each(|h| h.score = 0.2);
    let weak = answerer.compose(&request("What is gradient descent?", vec![], weak));
    assert_eq!(weak, plain(NOTHING_FOUND_REPLY));
}

#[test]
fn a_decline_names_a_near_topic_from_a_title() {
    let hits = vec![hit(
        "tuning.md",
        "Hyperparameter Tuning",
        "Tuning searches for good hyperparameters on validation data.",
        3.0,
    )];
    let answer =
        ExtractiveAnswerer::new().compose(&request("How do I tune a guitar string?", vec![], hits));
    assert_eq!(
        answer.text,
        format!("{NOTHING_FOUND_REPLY} They do cover hyperparameter tuning; ask about that?")
    );
    assert!(answer.sources.is_empty());
}

#[test]
fn conversation_acts_get_their_reply_and_no_sources() {
    let answerer = ExtractiveAnswerer::new();
    let hello = answerer.compose(&request("Hello!", vec![], gradient_hits()));
    assert!(hello.text.starts_with("Hello!"), "{}", hello.text);
    assert!(hello.sources.is_empty());
    let history = vec![
        HistoryTurn::user("What is gradient descent?"),
        HistoryTurn::assistant("Gradient descent is an algorithm. [1]"),
    ];
    let again = answerer.compose(&request("hi", history.clone(), gradient_hits()));
    assert!(again.text.starts_with("Hello again!"), "{}", again.text);
    let thanks = answerer.compose(&request("Thanks!", history, gradient_hits()));
    assert!(thanks.text.starts_with("You're welcome"), "{}", thanks.text);
    let who = answerer.compose(&request("Who are you?", vec![], vec![]));
    assert!(who.text.starts_with("I'm ragchat."), "{}", who.text);
    assert!(!who.text.contains("for example"), "no index, no examples");
}

#[test]
fn continue_without_history_says_so() {
    let answerer = ExtractiveAnswerer::new();
    let answer = answerer.compose(&request("Continue", vec![], gradient_hits()));
    assert_eq!(answer.text, NO_CONVERSATION_REPLY);
    assert!(answer.sources.is_empty());
    // Small talk is no conversation to continue.
    let after_hello = answerer.compose(&request(
        "Tell me more",
        vec![HistoryTurn::user("Hello"), HistoryTurn::assistant("Hello!")],
        gradient_hits(),
    ));
    assert_eq!(after_hello.text, NO_CONVERSATION_REPLY);
}

#[test]
fn continue_recaps_in_one_sentence_and_adds_only_new_sentences() {
    let history = vec![
        HistoryTurn::user("What is gradient descent?"),
        HistoryTurn::assistant(
            "Gradient descent is an algorithm that adjusts each parameter against the gradient \
             of the loss. [1]",
        ),
    ];
    let answer = ExtractiveAnswerer::new().compose(&request("Continue", history, gradient_hits()));
    assert!(
        answer.text.starts_with(
            "We were talking about gradient descent (you asked \"What is gradient descent?\"). \
             Here is more on it. It repeats this many times. [1]"
        ),
        "{}",
        answer.text
    );
    assert!(
        !answer.text.contains("adjusts each parameter"),
        "{}",
        answer.text
    );
    assert_eq!(answer.sources[0].path, "gd.md");
}

#[test]
fn yes_no_questions_quote_the_sentence_about_exactly_that() {
    let hits = vec![
        hit(
            "eggs.md",
            "Scrambled eggs",
            "Crack the eggs into a bowl and add a pinch of salt. Never add cream or milk to \
             scrambled eggs, because the liquid separates out.",
            6.0,
        ),
        hit(
            "knives.md",
            "Kitchen knives",
            "Add a small paring knife for peeling and fine work.",
            5.0,
        ),
    ];
    let answer = ExtractiveAnswerer::new().compose(&request("Should I add cream?", vec![], hits));
    assert!(
        answer.text.starts_with("Never add cream"),
        "{}",
        answer.text
    );
    assert!(!answer.text.contains("paring knife"), "{}", answer.text);
}

#[test]
fn the_answer_said_before_is_repeated_rather_than_replaced_by_a_worse_one() {
    let history = vec![
        HistoryTurn::user("Should I add cream?"),
        HistoryTurn::assistant("Never add cream or milk to scrambled eggs. [1]"),
    ];
    let hits = vec![hit(
        "eggs.md",
        "Scrambled eggs",
        "Never add cream or milk to scrambled eggs. Serve them on warm plates at once.",
        6.0,
    )];
    let answer =
        ExtractiveAnswerer::new().compose(&request("Can I add cream to them?", history, hits));
    assert_eq!(
        answer.text,
        "Never add cream or milk to scrambled eggs. [1]"
    );
}

#[tokio::test]
async fn streams_word_deltas_that_add_up_to_the_answer() {
    let answerer = ExtractiveAnswerer::new();
    let mut deltas = Vec::new();
    let answer = answerer
        .answer(
            &request("What is gradient descent?", vec![], gradient_hits()),
            &mut |delta: &str| deltas.push(delta.to_owned()),
        )
        .await
        .expect("extractive answers never fail");
    assert!(deltas.len() > 10);
    assert!(deltas.iter().all(|d| d.split_whitespace().count() == 1));
    assert_eq!(deltas.concat(), answer.text);
}

#[test]
fn sentences_about_the_document_give_way_to_sentences_about_the_subject() {
    let text = "This article explains gradient descent and the loss function in detail. \
                Gradient descent lowers the loss function by stepping against its gradient.";
    let answer = ExtractiveAnswerer::new().compose(&request(
        "How does gradient descent lower the loss function?",
        vec![],
        vec![hit("gd.md", "Gradient descent", text, 5.0)],
    ));
    assert!(
        answer.text.contains("stepping against its gradient"),
        "{}",
        answer.text
    );
    assert!(!answer.text.contains("This article"), "{}", answer.text);
}
