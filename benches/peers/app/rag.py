"""Retrieval and answer of the peer app: BM25 over ragchat's bundled articles, extractive.

What a team without an LLM at hand writes first: the articles under `corpus/` split into
paragraphs (each one a LangChain `Document` carrying its article and section), LangChain's
`BM25Retriever` (rank_bm25's `BM25Okapi`) over them, and an answer made of the sentence of
the best paragraph that shares the most words with the question, followed by its citation.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from langchain_community.retrievers import BM25Retriever
from langchain_core.documents import Document

TOP_K = 3  # ragchat's default too (EngineConfig::top_k)

_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i in is it its me of on or should "
    "that the this to use what when where which who why with about explain".split()
)

_PRONOUNS = frozenset("it its they them this that these those".split())


def tokenize(text: str) -> list[str]:
    """Lower-cased words: BM25Retriever's default (`str.split`) would keep "learn?" apart from "learn"."""
    return _WORD.findall(text.lower())


def load_documents(corpus_dir: str) -> list[Document]:
    """One `Document` per paragraph of every markdown article, headings kept as metadata."""
    docs = []
    for name in sorted(os.listdir(corpus_dir)):
        if not name.endswith(".md"):
            continue
        with open(os.path.join(corpus_dir, name), encoding="utf-8") as f:
            text = f.read()
        title, section = name[:-3], ""
        for block in re.split(r"\n\s*\n", text):
            block = block.strip()
            if not block:
                continue
            if block.startswith("#"):
                heading = block.lstrip("#").strip()
                if block.startswith("# "):
                    title, section = heading, ""
                else:
                    section = heading
                continue
            docs.append(Document(page_content=block, metadata={"source": f"corpus/{name}", "title": title, "section": section}))
    return docs


@dataclass
class Answer:
    text: str
    sources: list[dict]


class Answerer:
    """BM25 retrieval + a templated extractive answer."""

    def __init__(self, corpus_dir: str) -> None:
        self.docs = load_documents(corpus_dir)
        if not self.docs:
            raise RuntimeError(f"no paragraphs under {corpus_dir}")
        self.retriever = BM25Retriever.from_documents(self.docs, k=TOP_K, preprocess_func=tokenize)

    def answer(self, question: str, previous_question: str | None) -> Answer:
        tokens = tokenize(question)
        words = {w for w in tokens if w not in _STOPWORDS}
        # A follow-up ("How does it learn?") borrows the previous question's words: the
        # simplest history-aware retrieval, where an LLM app would condense with the model.
        follow_up = len(words) < 2 or not _PRONOUNS.isdisjoint(tokens)
        query = f"{question} {previous_question}" if follow_up and previous_question else question
        hits = self.retriever.invoke(query)
        if not hits:
            return Answer("I could not find that in the articles.", [])
        words = words or set(tokens)
        best = max(
            _SENTENCE_END.split(hits[0].page_content),
            key=lambda s: len(words.intersection(tokenize(s))),
        )
        top = hits[0].metadata
        where = f"{top['title']}, {top['section']}" if top["section"] else top["title"]
        sources = [
            {"n": n, "title": d.metadata["title"], "section": d.metadata["section"], "path": d.metadata["source"], "excerpt": d.page_content[:200]}
            for n, d in enumerate(hits, 1)
        ]
        return Answer(f"{best} [1]\n\nSource: [1] {where} ({top['source']})", sources)
