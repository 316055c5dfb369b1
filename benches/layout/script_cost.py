#!/usr/bin/env python3
"""Redis time of one call of the append script, without ragchat's client around it.

Loads buckets.lua + common.lua + append.lua (or, with --turn, the lean append: buckets.lua
+ turn.lua; or a variant given whole with --script, to try a change without rebuilding
ragchat), fills one session with HISTORY messages through the full script, then appends
two 300-byte messages per call N times and prints the script's `usec_per_call` from INFO
commandstats and the time of the Redis commands it runs. With --turn the calls pass the
session's seq and bucket count as session.rs does (a call the lean script declines stops
the run). It speaks RESP itself (no Python package needed).

    benches/layout/script_cost.py PORT [--history 10000] [--max 10000] [--calls 5000]
        [--depth 1] [--tracking] [--turn] [--script FILE] [--fcall]

--depth 1 sends one call per round trip, as a chat turn does; a deeper pipeline runs the
calls back to back with warm CPU caches and hides what the session's size costs.
--tracking turns client-side caching on (RESP3, CLIENT TRACKING ON) as ragchat does.
--fcall runs the timed script as a Redis Function (Redis 7): what it prepends is defined
once, at FUNCTION LOAD, where an EVALSHA makes every function of it again on each call.
Run it against a private redis-server: it deletes the session's keys (FLUSHALL) after.
"""

import argparse
import socket
import struct
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REDIS_DIR = HERE.parent.parent / "crates/memory/src/backend/redis"


def encode(args):
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, int):
            arg = str(arg).encode()
        elif isinstance(arg, str):
            arg = arg.encode()
        parts += [b"$%d\r\n" % len(arg), arg, b"\r\n"]
    return b"".join(parts)


class Connection:
    """A RESP2/RESP3 connection that skips push frames (tracking invalidations)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""
        self.pushes = 0

    def _line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(1 << 20)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bytes(self, n):
        while len(self.buf) < n + 2:
            self.buf += self.sock.recv(1 << 20)
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def _frame(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind in (b"$", b"="):
            n = int(rest)
            return None if n < 0 else self._bytes(n)
        if kind in (b"*", b"~", b">"):
            n = int(rest)
            items = None if n < 0 else [self._frame() for _ in range(n)]
            return ("push", items) if kind == b">" else items
        if kind == b"%":
            return [self._frame() for _ in range(2 * int(rest))]
        if kind == b"_":
            return None
        if kind in (b",", b"#", b"("):
            return rest
        raise ValueError(f"unexpected reply {line!r}")

    def _reply(self):
        while True:
            frame = self._frame()
            if isinstance(frame, tuple):
                self.pushes += 1
                continue
            if isinstance(frame, RuntimeError):
                raise frame
            return frame

    def run(self, *commands):
        self.sock.sendall(b"".join(encode(c) for c in commands))
        return [self._reply() for _ in commands]


def packed(content, role, seq=0):
    """A message as pack.rs packs it (tag 2, id, seq, created_at ms, role, status)."""
    now = int(time.time() * 1000)
    return (
        bytes([2])
        + uuid.uuid4().bytes
        + struct.pack(">Qq", seq, now)
        + role
        + b"c"
        + struct.pack(">I", 0)
        + content
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--history", type=int, default=10000)
    ap.add_argument("--max", type=int, default=10000, help="max_messages (0 = unbounded)")
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--depth", type=int, default=1)
    ap.add_argument("--tracking", action="store_true")
    ap.add_argument("--script", type=Path, help="the whole script (default: the repo's)")
    ap.add_argument("--turn", action="store_true",
                    help="time turn.lua, the lean append (or --script, called as it is)")
    ap.add_argument("--fcall", action="store_true",
                    help="call the timed script as a Redis Function (FCALL): the files it "
                         "prepends (buckets.lua, common.lua) are the library's top level, "
                         "run once when it loads, and the script proper is the function")
    args = ap.parse_args()

    def read(*names):
        return "".join((REDIS_DIR / f).read_text() for f in names)

    repo_script = read("buckets.lua", "common.lua", "append.lua")
    # The timed script as the files it prepends and the script proper.
    if args.script:
        prelude, proper = "", args.script.read_text()
    elif args.turn:
        prelude, proper = read("buckets.lua"), read("turn.lua")
    else:
        prelude, proper = read("buckets.lua", "common.lua"), read("append.lua")
    script = prelude + proper
    conn = Connection(args.port)
    if args.tracking:
        conn.run(["HELLO", "3"], ["CLIENT", "TRACKING", "ON"])
    # The session is filled by the repo's script; the timed calls run the variant.
    (fill_sha,) = conn.run(["SCRIPT", "LOAD", repo_script])
    (sha,) = conn.run(["SCRIPT", "LOAD", script])
    if args.fcall:
        # A function gets its keys and arguments as parameters, not as the globals KEYS
        # and ARGV the scripts read, and redis.call does not exist while a library loads:
        # the library declares all three at its top level and each call sets them.
        prelude = prelude.replace("local call = redis.call", "")
        library = ("#!lua name=script_cost\nlocal KEYS, ARGV, call\n" + prelude
                   + "\nlocal function timed(keys, args)\n"
                   + "KEYS, ARGV, call = keys, args, redis.call\n" + proper + "\nend\n"
                   + "redis.register_function('timed', timed)\n")
        conn.run(["FUNCTION", "LOAD", "REPLACE", library])
    invoke = ["FCALL", "timed"] if args.fcall else ["EVALSHA", sha]
    base = "ragchat:{bench}:s:s1"
    keys = [f"{base}:l", f"{base}:h", "ragchat:{bench}:sessions", "ragchat:{bench}:usage",
            f"{base}:log", f"{base}:meta", f"{base}:ids"]
    content = b"x" * 300

    def append(messages, invoke=invoke):
        # ARGV as session.rs sends them, with ragchat's default quotas.
        return (invoke + [len(keys)] + keys
                + [int(time.time() * 1000), 3600, args.max, "s1", len(messages), 0,
                   16 << 20, 1000, 256 << 20, "", 0, 1] + messages)

    filled = 0
    while filled < args.history:
        n = min(500, args.history - filled)
        conn.run(append([packed(content, b"u") for _ in range(n)], ["EVALSHA", fill_sha]))
        filled += n
    seq, buckets = conn.run(["HGET", keys[1], "seq"], ["HGET", keys[1], "lh"])
    seq, buckets = int(seq), int(buckets or 256)

    def turn():
        # ARGV as session.rs sends them to turn.lua: the values carry their seqs, and the
        # bucket count follows buckets.lua's rule (two splits at most per append).
        nonlocal seq, buckets
        messages = [packed(content, b"u", seq + 1), packed(content, b"a", seq + 2)]
        call = (invoke + [4] + keys[:4]
                + [int(time.time() * 1000), seq, buckets, args.max, "s1", 16 << 20, 256 << 20,
                   "", 0, 3600] + messages)
        seq += 2
        for _ in range(2):
            if seq > 16 * buckets:
                buckets += 1
        return call

    conn.run(["CONFIG", "RESETSTAT"])
    for _ in range(0, args.calls, args.depth):
        replies = conn.run(*[turn() if args.turn else
                             append([packed(content, b"u"), packed(content, b"a")])
                             for _ in range(args.depth)])
        if args.turn and any(r == b"FULL" for r in replies):
            raise SystemExit("turn.lua answered FULL: the lean path was not taken")
    (stats,) = conn.run(["INFO", "commandstats"])
    script_us, inner_us = 0.0, 0.0
    for line in stats.decode().splitlines():
        if not line.startswith("cmdstat_"):
            continue
        name, fields = line.split(":", 1)
        values = dict(f.split("=") for f in fields.split(","))
        if name in ("cmdstat_evalsha", "cmdstat_fcall"):
            script_us = float(values["usec_per_call"])
        elif name != "cmdstat_config|resetstat":
            inner_us += float(values["usec"])
    print(f"history {args.history}, max {args.max}, depth {args.depth}, tracking "
          f"{'on' if args.tracking else 'off'}: {script_us:.2f} us per call, of which "
          f"{inner_us / args.calls:.2f} us in its Redis commands")
    conn.run(["FLUSHALL"])
    if args.fcall:
        conn.run(["FUNCTION", "DELETE", "script_cost"])


if __name__ == "__main__":
    main()
