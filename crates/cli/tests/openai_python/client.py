"""The official `openai` Python package against `ragchat serve`, driven by
crates/cli/tests/openai_python.rs (which installs the package into a virtualenv and
restarts the server between the two phases).

usage: client.py BASE_URL API_KEY STATE_FILE before|after

Three chats, as real applications hold them:
  a  non-streaming, with a system prompt, the whole history resent every turn;
  b  streaming (with usage), the whole history resent every turn;
  c  the session named with X-Session-Id, only the new message sent each turn.
`before` runs the first two turns of a and b and the first turn of c; `after` (once the
server was killed and started again) runs the third turns. The state file carries the
transcripts and the session ids between the phases; the test reads it at the end to
compare with what the server stored. Any failed check raises, and the exit code says so.
"""

import json
import sys

from openai import OpenAI

SYSTEM = "Answer from the documents, with citations."
QUESTIONS = {
    "a": ["What is machine learning?", "How does it learn?", "What about neural networks?"],
    "b": ["What is overfitting?", "How do I avoid it?", "Explain cross-validation."],
}
NAMED = "py-memory"


def check_sources(extra, where):
    sources = extra.get("sources")
    assert isinstance(sources, list) and sources, f"{where}: no sources in {extra}"
    first = sources[0]
    assert first["index"] == 1 and first["path"].endswith(".md"), f"{where}: {first}"


def plain_turn(client, chat, question):
    """A non-streamed turn; returns the session the server used."""
    chat["messages"].append({"role": "user", "content": question})
    raw = client.chat.completions.with_raw_response.create(
        model="ragchat", messages=chat["messages"]
    )
    completion = raw.parse()
    assert completion.object == "chat.completion", completion
    choice = completion.choices[0]
    assert choice.finish_reason == "stop", choice
    answer = choice.message.content
    assert answer and "[1]" in answer, f"{question}: {answer!r}"
    assert completion.usage.completion_tokens > 0, completion.usage
    extra = completion.model_dump()
    check_sources(extra, question)
    session = raw.headers.get("x-session-id")
    assert session == extra["session_id"], (session, extra["session_id"])
    chat["messages"].append({"role": "assistant", "content": answer})
    return session


def streamed_turn(client, chat, question):
    """A streamed turn with a usage chunk; returns the session from the finish chunk."""
    chat["messages"].append({"role": "user", "content": question})
    stream = client.chat.completions.create(
        model="ragchat",
        messages=chat["messages"],
        stream=True,
        stream_options={"include_usage": True},
    )
    answer, session, pieces, usage = "", None, 0, None
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk", chunk
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                answer += choice.delta.content
                pieces += 1
            if choice.finish_reason == "stop":
                extra = chunk.model_dump()
                check_sources(extra, question)
                session = extra["session_id"]
    assert pieces >= 3, f"{question}: the answer came in {pieces} pieces"
    assert "[1]" in answer, f"{question}: {answer!r}"
    assert usage is not None and usage.completion_tokens > 0, usage
    assert session, f"{question}: no finish chunk with a session"
    chat["messages"].append({"role": "assistant", "content": answer})
    return session


def named_turn(client, chat, question):
    """Only the new message, in the named session: ragchat's memory is the context."""
    completion = client.chat.completions.create(
        model="ragchat",
        messages=[{"role": "user", "content": question}],
        extra_headers={"X-Session-Id": NAMED},
    )
    answer = completion.choices[0].message.content
    assert answer, question
    assert completion.model_dump()["session_id"] == NAMED
    chat["messages"].append({"role": "user", "content": question})
    chat["messages"].append({"role": "assistant", "content": answer})
    return answer


def main():
    base, key, state_file, phase = sys.argv[1:5]
    client = OpenAI(base_url=f"{base}/v1", api_key=key, timeout=60)
    if phase == "before":
        ids = [m.id for m in client.models.list().data]
        assert ids[0] == "ragchat", ids
        state = {
            "a": {"messages": [{"role": "system", "content": SYSTEM}], "sessions": []},
            "b": {"messages": [], "sessions": []},
            "c": {"messages": [], "sessions": [NAMED]},
        }
        for q in QUESTIONS["a"][:2]:
            state["a"]["sessions"].append(plain_turn(client, state["a"], q))
        for q in QUESTIONS["b"][:2]:
            state["b"]["sessions"].append(streamed_turn(client, state["b"], q))
        named_turn(client, state["c"], "What is gradient descent?")
    elif phase == "after":
        with open(state_file) as f:
            state = json.load(f)
        state["a"]["sessions"].append(plain_turn(client, state["a"], QUESTIONS["a"][2]))
        state["b"]["sessions"].append(streamed_turn(client, state["b"], QUESTIONS["b"][2]))
        continued = named_turn(client, state["c"], "Continue")
        assert "What is gradient descent?" in continued, (
            f"the named session's context did not survive the restart: {continued!r}"
        )
    else:
        raise SystemExit(f"unknown phase {phase!r}")
    with open(state_file, "w") as f:
        json.dump(state, f, indent=1)


if __name__ == "__main__":
    main()
