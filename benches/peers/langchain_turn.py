#!/usr/bin/env python3
"""Time LangChain's RedisChatMessageHistory doing the memory part of one chat turn.

One turn is what `RunnableWithMessageHistory` (with `history_messages_key` set, the
documented prompt-with-MessagesPlaceholder pattern) does around the model call:

  1. read the history:      `history.messages`            (LRANGE 0 -1, json.loads, messages_from_dict)
  2. append the two turns:  `history.add_messages([HumanMessage, AIMessage])`
                            (RedisChatMessageHistory does not override add_messages, so this is
                            LPUSH + EXPIRE per message when a TTL is set: 4 round trips)

The same turn `ragchat bench memory` times: read the conversation, append a user and an
assistant message of `--message-bytes` bytes each.

To time a conversation of exactly N messages at every turn, the list is trimmed back to
its N newest entries after each turn (LTRIM, outside the timed region; the rate reported
is timed turns divided by the time spent inside them).

Output: one JSON object per history size on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
import warnings

# langchain-community announces its sunset on import; the class is still what LangChain
# apps use with plain Redis (see README), so keep stderr quiet.
warnings.filterwarnings("ignore", category=DeprecationWarning)

from langchain_community.chat_message_histories import RedisChatMessageHistory
from langchain_core.messages import AIMessage, HumanMessage

try:
    from importlib.metadata import version as _pkg_version
except ImportError:  # pragma: no cover
    _pkg_version = None


def text(n_bytes: int, i: int) -> str:
    """An ASCII message of exactly n_bytes bytes, different for each i."""
    head = f"message {i}: "
    body = "the quick brown fox jumps over the lazy dog "
    s = head + body * (n_bytes // len(body) + 1)
    return s[:n_bytes]


def percentile(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    if not sorted_ns:
        return float("nan")
    k = max(0, min(len(sorted_ns) - 1, int(round(q * len(sorted_ns) + 0.5)) - 1))
    return sorted_ns[k] / 1e6


def prefill(history: RedisChatMessageHistory, n: int, message_bytes: int) -> None:
    batch = []
    for i in range(n):
        msg = HumanMessage(content=text(message_bytes, i)) if i % 2 == 0 else AIMessage(content=text(message_bytes, i))
        batch.append(msg)
        if len(batch) == 500:
            history.add_messages(batch)
            batch = []
    if batch:
        history.add_messages(batch)


def turn(history: RedisChatMessageHistory, i: int, message_bytes: int) -> tuple[int, int, int]:
    t0 = time.perf_counter_ns()
    msgs = history.messages
    n = len(msgs)
    t1 = time.perf_counter_ns()
    history.add_messages([HumanMessage(content=text(message_bytes, i)), AIMessage(content=text(message_bytes, i + 1))])
    t2 = time.perf_counter_ns()
    return n, t1 - t0, t2 - t1


def bench(url: str, n: int, turns: int, warmup: int, message_bytes: int, ttl: int | None) -> dict:
    session = f"bench-{uuid.uuid4().hex}"
    history = RedisChatMessageHistory(session_id=session, url=url, ttl=ttl)
    history.clear()
    prefill(history, n, message_bytes)
    client = history.redis_client
    key = history.key

    def trim() -> None:
        # LPUSH puts the newest message first: keep the n newest.
        client.ltrim(key, 0, n - 1)

    for i in range(warmup):
        turn(history, i, message_bytes)
        trim()

    totals, reads, appends = [], [], []
    wall0 = time.perf_counter_ns()
    for i in range(turns):
        got, r, a = turn(history, i, message_bytes)
        if got != n:
            raise SystemExit(f"langchain_turn: expected {n} messages of history, read {got}")
        trim()
        reads.append(r)
        appends.append(a)
        totals.append(r + a)
    wall = time.perf_counter_ns() - wall0
    history.clear()

    timed_s = sum(totals) / 1e9
    totals.sort()
    reads.sort()
    appends.sort()
    return {
        "system": "langchain",
        "impl": "langchain_community.chat_message_histories.RedisChatMessageHistory",
        "store": url,
        "history": n,
        "turns": turns,
        "clients": 1,
        "ttl": ttl,
        "turns_per_s": turns / timed_s,
        "p50_ms": percentile(totals, 0.50),
        "p99_ms": percentile(totals, 0.99),
        "p999_ms": percentile(totals, 0.999),
        "max_ms": totals[-1] / 1e6,
        "read_p50_ms": percentile(reads, 0.50),
        "append_p50_ms": percentile(appends, 0.50),
        "wall_s_including_untimed_trim": wall / 1e9,
    }


def versions() -> dict:
    out = {"python": sys.version.split()[0]}
    if _pkg_version:
        for p in ("langchain-community", "langchain-core", "redis"):
            try:
                out[p] = _pkg_version(p)
            except Exception:  # noqa: BLE001
                out[p] = None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="redis://host:port[/db]")
    ap.add_argument("--history", default="10,100,1000", help="comma-separated conversation lengths")
    ap.add_argument(
        "--turns",
        default="2000,1000,200",
        help="timed turns per history size: one number for all, or one per --history entry",
    )
    ap.add_argument("--warmup", type=int, default=20, help="untimed turns before timing")
    ap.add_argument("--message-bytes", type=int, default=300)
    ap.add_argument(
        "--ttl",
        type=int,
        default=3600,
        help="seconds; RedisChatMessageHistory's ttl (EXPIRE after each message), 0 = none. "
        "ragchat's default sliding TTL is 3600 s",
    )
    args = ap.parse_args()

    sizes = [int(x) for x in args.history.split(",") if x.strip()]
    turns = [int(x) for x in args.turns.split(",") if x.strip()]
    if len(turns) == 1:
        turns = turns * len(sizes)
    if len(turns) != len(sizes):
        ap.error("--turns needs one value or one per --history entry")

    ttl = args.ttl or None
    vers = versions()
    for n, t in zip(sizes, turns):
        print(f"langchain: {n} messages of history, {t} turns ...", file=sys.stderr, flush=True)
        r = bench(args.url, n, t, args.warmup, args.message_bytes, ttl)
        r["versions"] = vers
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
