//! The answers to questions about the conversation, from hand-made requests.

use super::*;
use crate::retrieve::HistoryTurn;
use ragchat_core::ConversationRef;

fn recalled(session: &str, role: Role, content: &str, score: f64) -> RecalledTurn {
    RecalledTurn {
        at: ConversationRef {
            session: session.into(),
            message_id: format!("{session}-{score}"),
            seq: 3,
            role,
            created_at: "2026-11-20T09:30:00Z".into(),
        },
        content: content.into(),
        score,
        same_session: session == "here",
    }
}

/// A question of the user's in this conversation, written on `day`.
fn written_on(day: &str, content: &str, score: f64) -> RecalledTurn {
    let mut turn = recalled("here", Role::User, content, score);
    turn.at.created_at = format!("{day}T09:30:00Z");
    turn
}

fn ask(question: &str, recalled_turns: Vec<RecalledTurn>) -> Answer {
    let request = AnswerRequest {
        question: question.into(),
        recalled: recalled_turns,
        ..AnswerRequest::default()
    };
    let asked = crate::recall::asks_about_conversation(question).expect("a recall question");
    answer(question, asked, &request, &|_| 1.0)
}

#[test]
fn the_users_own_question_is_quoted_and_cited() {
    let answer = ask(
        "What did I ask about learning rates earlier?",
        vec![
            recalled(
                "here",
                Role::Assistant,
                "A learning rate too high diverges [1].",
                3.0,
            ),
            recalled(
                "here",
                Role::User,
                "Which learning rate should I start with?",
                2.0,
            ),
            recalled("trip", Role::User, "Is the train to Sintra fast?", 9.0),
        ],
    );
    assert_eq!(
        answer.text,
        "Earlier in this conversation (2026-11-20) you asked: \"Which learning rate should I \
         start with?\" [1]"
    );
    assert_eq!(answer.sources.len(), 1);
    let cited = answer.sources[0]
        .conversation
        .as_ref()
        .expect("a conversation");
    assert_eq!(cited.role, Role::User);
}

#[test]
fn the_assistants_words_are_quoted_without_their_old_markers() {
    let answer = ask(
        "What was the command you gave me for the backup?",
        vec![recalled(
            "ops",
            Role::Assistant,
            "Run `pg_dump -Fc app > app.dump` for the backup [1][2].",
            1.0,
        )],
    );
    assert_eq!(
        answer.text,
        "In conversation `ops` on 2026-11-20 I said: \"Run `pg_dump -Fc app > app.dump` for \
         the backup.\" [1]"
    );
}

#[test]
fn nothing_on_the_topic_is_said_plainly() {
    let answer = ask(
        "What did I ask about gradient clipping?",
        vec![recalled("here", Role::User, "What is a gradient?", 1.0)],
    );
    assert_eq!(answer.text, NOTHING_RECALLED_REPLY);
    assert!(answer.sources.is_empty());
    let none = ask("What did I ask about gradient clipping?", vec![]);
    assert_eq!(none.text, NOTHING_RECALLED_REPLY);
}

#[test]
fn a_recent_message_is_quoted_without_a_citation() {
    let request = AnswerRequest {
        question: "What did I ask about dropout?".into(),
        history: vec![
            HistoryTurn::user("What is dropout?"),
            HistoryTurn::assistant("Dropout drops units [1]."),
        ],
        ..AnswerRequest::default()
    };
    let answer = answer(&request.question, AskedOf::User, &request, &|_| 1.0);
    assert_eq!(
        answer.text,
        "A little earlier in this conversation you asked: \"What is dropout?\""
    );
    assert!(answer.sources.is_empty());
}

#[test]
fn without_a_topic_the_last_question_is_quoted() {
    let request = AnswerRequest {
        question: "What did I ask last time?".into(),
        history: vec![
            HistoryTurn::user("What is dropout?"),
            HistoryTurn::assistant("Dropout drops units [1]."),
        ],
        ..AnswerRequest::default()
    };
    let answer = answer(&request.question, AskedOf::User, &request, &|_| 1.0);
    assert_eq!(answer.text, "You last asked: \"What is dropout?\"");
}

/// A conversation of two questions and their answers, and a recall question after them.
fn positional(question: &str) -> Answer {
    let request = AnswerRequest {
        question: question.into(),
        history: vec![
            HistoryTurn::user("What is dropout?"),
            HistoryTurn::assistant("Dropout drops units [1]."),
            HistoryTurn::user("What did I ask about dropout?"),
            HistoryTurn::assistant(
                "A little earlier in this conversation you asked: \"What is dropout?\"",
            ),
            HistoryTurn::user("And batch norm?"),
            HistoryTurn::assistant("Batch norm rescales activations [1]."),
        ],
        ..AnswerRequest::default()
    };
    let asked = crate::recall::asks_about_conversation(question).expect("a recall question");
    answer(question, asked, &request, &|_| 1.0)
}

#[test]
fn the_first_or_last_message_is_quoted_when_the_question_names_a_position() {
    for question in ["What was my first question?", "What did I ask first?"] {
        assert_eq!(
            positional(question).text,
            "The first question of yours I still have from this conversation: \"What is \
             dropout?\"",
            "{question}"
        );
    }
    assert_eq!(
        positional("What was my last question?").text,
        "You last asked: \"And batch norm?\""
    );
    assert_eq!(
        positional("What was your last answer?").text,
        "I last said: \"Batch norm rescales activations.\""
    );
    assert_eq!(
        positional("What was your first answer?").text,
        "The first answer of mine I still have from this conversation: \"Dropout drops \
         units.\""
    );
}

#[test]
fn the_first_question_on_a_topic_is_the_oldest_one() {
    let request = |question: &str| AnswerRequest {
        question: question.into(),
        history: vec![
            HistoryTurn::user("What is dropout?"),
            HistoryTurn::assistant("Dropout drops units [1]."),
            HistoryTurn::user("How much dropout should I use?"),
            HistoryTurn::assistant("Start with a dropout rate of 0.5 [1]."),
        ],
        ..AnswerRequest::default()
    };
    let first = request("What was my first question about dropout?");
    assert_eq!(
        answer(&first.question, AskedOf::User, &first, &|_| 1.0).text,
        "A little earlier in this conversation you asked: \"What is dropout?\""
    );
    // Without a place, both are quoted, the most recent first.
    let any = request("What did I ask about dropout?");
    assert_eq!(
        answer(&any.question, AskedOf::User, &any, &|_| 1.0).text,
        "A little earlier in this conversation you asked: \"How much dropout should I \
         use?\" A little earlier in this conversation you asked: \"What is dropout?\""
    );
}

#[test]
fn the_first_recalled_question_on_a_topic_goes_by_when_it_was_written() {
    // The search ranks the newer message first; the window holds a newer one still.
    let request = AnswerRequest {
        question: "What was my first question about dropout?".into(),
        history: vec![HistoryTurn::user("Does dropout slow training?")],
        recalled: vec![
            written_on("2026-11-21", "How much dropout should I use?", 5.0),
            written_on("2026-11-20", "What is dropout?", 2.0),
        ],
        ..AnswerRequest::default()
    };
    let answer = answer(&request.question, AskedOf::User, &request, &|_| 1.0);
    assert_eq!(
        answer.text,
        "Earlier in this conversation (2026-11-20) you asked: \"What is dropout?\" [1]"
    );
    assert_eq!(answer.sources.len(), 1);
}

#[test]
fn the_last_question_on_a_topic_is_the_newest_one_alone() {
    // The search ranks the older message first.
    let request = AnswerRequest {
        question: "What was my last question about dropout?".into(),
        recalled: vec![
            written_on("2026-11-20", "What is dropout?", 5.0),
            written_on("2026-11-21", "How much dropout should I use?", 2.0),
        ],
        ..AnswerRequest::default()
    };
    let answer = answer(&request.question, AskedOf::User, &request, &|_| 1.0);
    assert_eq!(
        answer.text,
        "Earlier in this conversation (2026-11-21) you asked: \"How much dropout should I \
         use?\" [1]"
    );
    // "Last week" is when, not which message: both are quoted, the search's best first.
    let when = AnswerRequest {
        question: "What did I ask about dropout last week?".into(),
        ..request.clone()
    };
    let answer = super::answer(&when.question, AskedOf::User, &when, &|_| 1.0);
    assert_eq!(answer.sources.len(), 2, "{}", answer.text);
}

#[test]
fn the_last_question_skips_questions_about_the_conversation() {
    let request = AnswerRequest {
        question: "What did we talk about earlier?".into(),
        history: vec![
            HistoryTurn::user("What is dropout?"),
            HistoryTurn::assistant("Dropout drops units [1]."),
            HistoryTurn::user("What was my first question?"),
            HistoryTurn::assistant("The first question of yours I still have from this conversation: \"What is dropout?\""),
        ],
        ..AnswerRequest::default()
    };
    let answer = answer(&request.question, AskedOf::Either, &request, &|_| 1.0);
    assert_eq!(answer.text, "You last asked: \"What is dropout?\"");
}

#[test]
fn earlier_recall_questions_and_their_answers_are_not_quoted() {
    let answer = ask(
        "What did I ask about dropout?",
        vec![
            recalled("s2", Role::User, "What did I ask about dropout?", 9.0),
            recalled(
                "s2",
                Role::Assistant,
                "In conversation `trip` on 2026-11-20 you asked: \"What is dropout?\" [1]",
                8.0,
            ),
            recalled("trip", Role::User, "What is dropout?", 1.0),
        ],
    );
    assert_eq!(
        answer.text,
        "In conversation `trip` on 2026-11-20 you asked: \"What is dropout?\" [1]"
    );
}

#[test]
fn markers_are_removed_and_brackets_kept() {
    assert_eq!(without_markers("a [1] b [2][3]."), "a b.");
    assert_eq!(without_markers("x[0] [y] [12"), "x [y] [12");
}
