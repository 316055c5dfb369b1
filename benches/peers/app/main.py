"""The design ragchat replaces, built the way a Python team builds it: FastAPI + LangChain.

Serves ragchat's native turn route, `POST /v1/sessions/{session}/messages` with
`{"content": "..."}`, so `ragchat bench http --protocol native` drives it unchanged:

1. history = LangChain's `RedisChatMessageHistory` of the session (ttl 3600 s, as ragchat's
   sliding TTL); `history.messages` reads the whole conversation (LRANGE 0 -1 + parsing);
2. BM25 retrieval over ragchat's bundled articles, with the previous user question added
   to the query (rag.py);
3. a templated extractive answer (best sentence of the top paragraph + a citation);
4. `history.add_messages([question, answer])` (LPUSH + EXPIRE per message).

Run (see benches/peers/README.md for why 2 workers):

    REDIS_URL=redis://127.0.0.1:6379 uvicorn main:app --app-dir benches/peers/app \
        --host 127.0.0.1 --port 8000 --workers 2 --no-access-log

Environment: REDIS_URL (required), CORPUS_DIR (default: the repository's corpus/),
HISTORY_TTL (seconds, 3600), REDIS_PER_REQUEST=1 to build the history the way LangChain's
docs show (`RedisChatMessageHistory(session_id, url=...)` per request: a new connection
every turn) instead of sharing one connection pool per worker.
"""

from __future__ import annotations

import os
import re
import uuid
import warnings
from datetime import datetime, timezone

import redis
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

with warnings.catch_warnings():
    # langchain-community is being sunset upstream; its deprecation warning is noise here.
    warnings.simplefilter("ignore")
    from langchain_community.chat_message_histories import RedisChatMessageHistory
from langchain_core.messages import AIMessage, HumanMessage

from rag import Answerer

HERE = os.path.dirname(os.path.abspath(__file__))
REDIS_URL = os.environ["REDIS_URL"]
CORPUS_DIR = os.environ.get("CORPUS_DIR", os.path.join(HERE, "..", "..", "..", "corpus"))
HISTORY_TTL = int(os.environ.get("HISTORY_TTL", "3600"))
REDIS_PER_REQUEST = os.environ.get("REDIS_PER_REQUEST") == "1"
SESSION_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

app = FastAPI(title="peer app: FastAPI + LangChain RedisChatMessageHistory + BM25")
answerer = Answerer(CORPUS_DIR)  # per worker process, built at import
redis_client = redis.Redis.from_url(REDIS_URL)  # one connection pool per worker


class NewMessage(BaseModel):
    content: str


class PooledRedisChatMessageHistory(RedisChatMessageHistory):
    """LangChain's history on the worker's connection pool.

    `RedisChatMessageHistory(session_id, url=...)` makes a client of its own, which
    connects and sends INFO (to detect Redis Cluster) in the constructor: a new connection
    and an extra round trip every turn when built per request. Everything else (the key,
    `messages`, `add_message`) is LangChain's own code.
    """

    def __init__(self, session_id: str, client: redis.Redis, ttl: int) -> None:
        self.redis_client = client
        self.session_id = session_id
        self.key_prefix = "message_store:"
        self.ttl = ttl


def session_history(session_id: str) -> RedisChatMessageHistory:
    if REDIS_PER_REQUEST:
        return RedisChatMessageHistory(session_id, url=REDIS_URL, ttl=HISTORY_TTL)
    return PooledRedisChatMessageHistory(session_id, redis_client, HISTORY_TTL)


def message(role: str, content: str, msg_id: str, sources: list | None = None) -> dict:
    out = {"id": msg_id, "role": role, "content": content, "created_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
    if sources is not None:
        out["sources"] = sources
    return out


# A plain `def`: RedisChatMessageHistory is synchronous, so FastAPI runs the handler in
# its thread pool rather than blocking the event loop.
@app.post("/v1/sessions/{session}/messages")
def message_create(session: str, body: NewMessage) -> dict:
    if not SESSION_ID.match(session):
        raise HTTPException(400, "invalid session id")
    question = body.content.strip()
    if not question:
        raise HTTPException(400, "empty message")
    history = session_history(session)
    past = history.messages
    previous = next((m.content for m in reversed(past) if m.type == "human"), None)
    answer = answerer.answer(question, previous)
    q_id, a_id = str(uuid.uuid4()), str(uuid.uuid4())
    history.add_messages([HumanMessage(content=question, id=q_id), AIMessage(content=answer.text, id=a_id)])
    return {
        "session": session,
        "user_message": message("user", question, q_id),
        "answer": message("assistant", answer.text, a_id, answer.sources),
        "fallback": False,
    }


@app.get("/healthz")
def healthz() -> dict:
    redis_client.ping()
    return {"status": "ok", "paragraphs": len(answerer.docs)}
