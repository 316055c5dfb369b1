#!/usr/bin/env python3
"""Turn the raw outputs of `benches/peers/run` into a table, a JSON file and a plot.

Reads from --raw (written by `run`):
  machine.txt              key<TAB>value lines describing the machine
  commands.txt             label<TAB>command lines (what was run)
  limit_<cmd>_c<N>.csv     redis-benchmark --csv output (rpush/xadd, N clients)
  ragchat_c<N>.jsonl       `ragchat bench memory --json` output
  langchain_c<N>.jsonl     langchain_turn.py output
  e2e_<system>_c<N>.json   `ragchat bench http --json` against ragchat serve / the Python app
  e2e_<system>_c<N>.redis  redis_cpu_s<TAB>seconds of Redis CPU during that row
  e2e_sample_<system>.json one turn's response from each server

(or, with --from-json, from a latest.json written earlier: re-renders without re-running)

Writes to --out:
  latest.md                the tables, the targets and the machine (also printed on stdout)
  latest.json              everything above, raw
  latency_vs_length.png    p50 per-turn latency against conversation length (log x)
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import os
import re
import sys

# Targets of issue #7 (reported, not asserted).
TARGET_SINGLE_VS_RPUSH = 0.40  # ragchat 1-client turns/s >= 40% of redis-benchmark RPUSH -c 1 ops/s
TARGET_VS_LANGCHAIN_1000 = 100.0  # LangChain p50 / ragchat p50 at 1000 messages >= 100
TARGET_MULTI_VS_RPUSH = 0.40  # ragchat 50-client turns/s >= 40% of RPUSH -c 50 ops/s
MULTI_CLIENTS = 50


def read_kv(path: str) -> dict:
    out = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if "\t" in line:
                    k, v = line.split("\t", 1)
                    out[k] = v
    return out


def read_commands(path: str) -> list[dict]:
    return [{"what": k, "command": v} for k, v in read_kv(path).items()]


def read_limit(raw: str) -> list[dict]:
    rows = []
    for path in sorted(glob.glob(os.path.join(raw, "limit_*_c*.csv"))):
        m = re.match(r"limit_(\w+)_c(\d+)\.csv$", os.path.basename(path))
        if not m:
            continue
        with open(path, encoding="utf-8") as f:
            data = [r for r in csv.reader(f) if r and r[0] != "test"]
        if not data:
            continue
        r = data[-1]
        # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
        rows.append(
            {
                "system": "redis-benchmark",
                "command": m.group(1).upper(),
                "clients": int(m.group(2)),
                "ops_per_s": float(r[1]),
                "avg_ms": float(r[2]),
                "p50_ms": float(r[4]),
                "p99_ms": float(r[6]),
                "max_ms": float(r[7]),
            }
        )
    rows.sort(key=lambda r: (r["command"] != "RPUSH", r["clients"]))
    return rows


def read_jsonl(raw: str, system: str) -> list[dict]:
    rows = []
    for path in sorted(glob.glob(os.path.join(raw, f"{system}_c*.jsonl"))):
        want_clients = int(re.search(r"_c(\d+)\.jsonl$", path).group(1))
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                r["system"] = system
                r.setdefault("clients", want_clients)
                rows.append(r)
    rows.sort(key=lambda r: (r["clients"], r["history"]))
    return rows


E2E_SYSTEMS = {"ragchat": "ragchat serve", "python": "Python app (FastAPI + LangChain + BM25)"}


def read_e2e(raw: str) -> list[dict]:
    rows = []
    for path in sorted(glob.glob(os.path.join(raw, "e2e_*_c*.json"))):
        m = re.match(r"e2e_(\w+?)_c(\d+)\.json$", os.path.basename(path))
        if not m:
            continue
        with open(path, encoding="utf-8") as fh:
            lines = [line for line in fh if line.startswith("{")]
        if not lines:
            continue
        r = json.loads(lines[-1])
        redis_stats = read_kv(path[: -len(".json")] + ".redis")
        cpu = redis_stats.get("redis_cpu_s")
        calls = {k[len("cmd_") :]: int(v) for k, v in redis_stats.items() if k.startswith("cmd_") and k != "cmd_config|resetstat"}
        turns = r["turns"]
        rows.append(
            {
                "system": m.group(1),
                "clients": int(m.group(2)),
                "duration_s": r["duration_s"],
                "turns": turns,
                "turns_per_s": r["turns_per_s"],
                "p50_ms": r["p50_ms"],
                "p99_ms": r["p99_ms"],
                "max_ms": r["max_ms"],
                "errors": r["errors"],
                "first_error": r.get("first_error"),
                "redis_cpu_us_per_turn": float(cpu) * 1e6 / turns if cpu is not None and turns else None,
                "redis_calls_per_turn": {k: v / turns for k, v in sorted(calls.items())} if calls and turns else {},
                "server_phase_ms": r.get("phase_ms") or {},
            }
        )
    rows.sort(key=lambda r: (r["clients"], r["system"] != "ragchat"))
    return rows


def read_samples(raw: str) -> dict:
    out = {}
    for path in sorted(glob.glob(os.path.join(raw, "e2e_sample_*.json"))):
        system = os.path.basename(path)[len("e2e_sample_") : -len(".json")]
        with open(path, encoding="utf-8") as fh:
            answer = json.load(fh).get("answer", {})
        out[system] = {"content": answer.get("content"), "sources": len(answer.get("sources") or [])}
    return out


def e2e_ratios(rows: list[dict]) -> list[dict]:
    out = []
    for c in sorted({r["clients"] for r in rows}):
        r, p = find(rows, system="ragchat", clients=c), find(rows, system="python", clients=c)
        if r and p:
            out.append(
                {
                    "clients": c,
                    "ragchat_vs_python_rate": r["turns_per_s"] / p["turns_per_s"] if p["turns_per_s"] else None,
                    "python_p50_over_ragchat_p50": p["p50_ms"] / r["p50_ms"] if r["p50_ms"] else None,
                    "python_p99_over_ragchat_p99": p["p99_ms"] / r["p99_ms"] if r["p99_ms"] else None,
                }
            )
    return out


def find(rows: list[dict], **kw) -> dict | None:
    for r in rows:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def f(x, digits=3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def rate(x: float) -> str:
    return f"{x:,.0f}"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def times(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}x"


def verdict(ok: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "NOT RUN"}[ok]


def build(raw: str) -> dict:
    machine = read_kv(os.path.join(raw, "machine.txt"))
    limit = read_limit(raw)
    rag = read_jsonl(raw, "ragchat")
    lc = read_jsonl(raw, "langchain")
    rpush1 = find(limit, command="RPUSH", clients=1)
    rpushN = find(limit, command="RPUSH", clients=MULTI_CLIENTS)
    xadd1 = find(limit, command="XADD", clients=1)
    xaddN = find(limit, command="XADD", clients=MULTI_CLIENTS)

    sizes = sorted({r["history"] for r in rag + lc})
    ratios = []
    for n in sizes:
        r1 = find(rag, history=n, clients=1)
        rN = find(rag, history=n, clients=MULTI_CLIENTS)
        l1 = find(lc, history=n, clients=1)
        ratios.append(
            {
                "history": n,
                "ragchat_1_vs_rpush_1_rate": r1["turns_per_s"] / rpush1["ops_per_s"] if r1 and rpush1 else None,
                "ragchat_1_vs_xadd_1_rate": r1["turns_per_s"] / xadd1["ops_per_s"] if r1 and xadd1 else None,
                "ragchat_50_vs_rpush_50_rate": rN["turns_per_s"] / rpushN["ops_per_s"] if rN and rpushN else None,
                "ragchat_50_vs_xadd_50_rate": rN["turns_per_s"] / xaddN["ops_per_s"] if rN and xaddN else None,
                "ragchat_vs_langchain_rate": r1["turns_per_s"] / l1["turns_per_s"] if r1 and l1 else None,
                "langchain_p50_over_ragchat_p50": l1["p50_ms"] / r1["p50_ms"] if r1 and l1 else None,
            }
        )

    def worst(key: str) -> tuple[float | None, int | None]:
        vals = [(r[key], r["history"]) for r in ratios if r[key] is not None]
        return min(vals) if vals else (None, None)

    t1, t1n = worst("ragchat_1_vs_rpush_1_rate")
    tN, tNn = worst("ragchat_50_vs_rpush_50_rate")
    lc1000 = next((r["langchain_p50_over_ragchat_p50"] for r in ratios if r["history"] == 1000), None)
    targets = [
        {
            "target": f"ragchat 1-client turn rate >= {TARGET_SINGLE_VS_RPUSH:.0%} of redis-benchmark RPUSH 1-client rate",
            "measured": t1,
            "at_history": t1n,
            "pass": None if t1 is None else t1 >= TARGET_SINGLE_VS_RPUSH,
            "shown": f"{pct(t1)} (worst row: {t1n} messages)" if t1 is not None else "-",
        },
        {
            "target": f"ragchat >= {TARGET_VS_LANGCHAIN_1000:.0f}x LangChain at 1000 messages (p50 turn latency ratio)",
            "measured": lc1000,
            "at_history": 1000,
            "pass": None if lc1000 is None else lc1000 >= TARGET_VS_LANGCHAIN_1000,
            "shown": times(lc1000),
        },
        {
            "target": f"ragchat {MULTI_CLIENTS}-client turn rate >= {TARGET_MULTI_VS_RPUSH:.0%} of redis-benchmark RPUSH {MULTI_CLIENTS}-client rate",
            "measured": tN,
            "at_history": tNn,
            "pass": None if tN is None else tN >= TARGET_MULTI_VS_RPUSH,
            "shown": f"{pct(tN)} (worst row: {tNn} messages)"
            if tN is not None
            else "not run: this ragchat's `bench memory` has no --clients",
        },
    ]
    e2e = read_e2e(raw)
    return {
        "e2e": e2e,
        "e2e_ratios": e2e_ratios(e2e),
        "e2e_samples": read_samples(raw),
        "machine": machine,
        "commands": read_commands(os.path.join(raw, "commands.txt")),
        "limit": limit,
        "ragchat": rag,
        "langchain": lc,
        "ratios": ratios,
        "targets": targets,
    }


def markdown_memory(d: dict, out: list[str]) -> None:
    out.append("## Physical limit: redis-benchmark, 300-byte values, same Redis")
    out.append("")
    out.append("| command | clients | ops/s | p50 ms | p99 ms |")
    out.append("|---|---:|---:|---:|---:|")
    for r in d["limit"]:
        out.append(f"| {r['command']} | {r['clients']} | {rate(r['ops_per_s'])} | {f(r['p50_ms'])} | {f(r['p99_ms'])} |")
    out.append("")

    out.append("## Memory turn: ragchat and LangChain")
    out.append("")
    out.append("| system | clients | history | turns | turns/s | p50 ms | p99 ms | read p50 ms | append p50 ms |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in d["ragchat"] + d["langchain"]:
        name = "ragchat" if r["system"] == "ragchat" else "LangChain RedisChatMessageHistory"
        out.append(
            f"| {name} | {r['clients']} | {r['history']} | {r['turns']} | {rate(r['turns_per_s'])} | "
            f"{f(r['p50_ms'])} | {f(r['p99_ms'])} | {f(r.get('read_p50_ms'))} | {f(r.get('append_p50_ms'))} |"
        )
    out.append("")

    out.append("## Ratios")
    out.append("")
    out.append(
        "Rate ratios are ragchat turns/s over the peer's ops/s (limit) or turns/s (LangChain); "
        "a ragchat turn is one round trip when Redis vouches for its cached copy (the append, a "
        "Lua script of 7-12 commands), two otherwise; a redis-benchmark op is one command."
    )
    out.append("")
    out.append(
        "| history | ragchat / RPUSH (1 client) | ragchat / XADD (1 client) | "
        f"ragchat / RPUSH ({MULTI_CLIENTS} clients) | ragchat / XADD ({MULTI_CLIENTS} clients) | "
        "ragchat / LangChain (turns/s) | LangChain p50 / ragchat p50 |"
    )
    out.append("|---:|---:|---:|---:|---:|---:|---:|")
    for r in d["ratios"]:
        out.append(
            f"| {r['history']} | {pct(r['ragchat_1_vs_rpush_1_rate'])} | {pct(r['ragchat_1_vs_xadd_1_rate'])} | "
            f"{pct(r['ragchat_50_vs_rpush_50_rate'])} | {pct(r['ragchat_50_vs_xadd_50_rate'])} | "
            f"{times(r['ragchat_vs_langchain_rate'])} | {times(r['langchain_p50_over_ragchat_p50'])} |"
        )
    out.append("")

    out.append("## Targets (reported, not asserted)")
    out.append("")
    out.append("| target | measured | result |")
    out.append("|---|---:|---|")
    for t in d["targets"]:
        out.append(f"| {t['target']} | {t['shown']} | {verdict(t['pass'])} |")
    out.append("")


def calls_text(calls: dict | None) -> str:
    """`11.8: evalsha 1.1, xadd 2.0, ...`, biggest first; commands under 0.05 per turn left out."""
    if not calls:
        return "-"
    shown = sorted(((v, k) for k, v in calls.items() if v >= 0.05), reverse=True)
    return f"{sum(calls.values()):.1f}: " + ", ".join(f"{k} {v:.1f}" for v, k in shown)


def markdown_e2e(d: dict, out: list[str]) -> None:
    m = d["machine"]
    out.append("## The whole turn over HTTP: ragchat serve and the Python app it replaces")
    out.append("")
    out.append(
        "Both servers on the Redis above, driven by the same load generator (`ragchat bench http "
        "--protocol native`, its own process on the same two cores), each client in its own "
        "conversations, a new one every few turns (see Commands). A turn = read the history, "
        "retrieve (BM25 over the bundled articles), an extractive answer, append question and "
        "answer. The Python app: FastAPI on uvicorn "
        f"({m.get('web_app', 'versions not recorded')}), LangChain `RedisChatMessageHistory` "
        "(ttl 3600 s), `BM25Retriever`; `benches/peers/app/`. Redis CPU/turn is redis-server's "
        "user + system CPU over the row divided by its turns; Redis commands/turn counts "
        "`INFO commandstats` calls over the row, where the commands a Lua script runs count "
        "as well as the `EVALSHA` that runs them."
    )
    out.append("")
    out.append("| system | clients | turns | turns/s | p50 ms | p99 ms | max ms | errors | Redis CPU us/turn | Redis commands/turn |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in d["e2e"]:
        out.append(
            f"| {E2E_SYSTEMS.get(r['system'], r['system'])} | {r['clients']} | {r['turns']} | {rate(r['turns_per_s'])} | "
            f"{f(r['p50_ms'])} | {f(r['p99_ms'])} | {f(r['max_ms'], 1)} | {r['errors']} | {f(r['redis_cpu_us_per_turn'], 0)} | {calls_text(r.get('redis_calls_per_turn'))} |"
        )
    out.append("")
    if d.get("e2e_ratios"):
        out.append("| clients | ragchat / Python app (turns/s) | Python app p50 / ragchat p50 | Python app p99 / ragchat p99 |")
        out.append("|---:|---:|---:|---:|")
        for r in d["e2e_ratios"]:
            out.append(
                f"| {r['clients']} | {times(r['ragchat_vs_python_rate'])} | {times(r['python_p50_over_ragchat_p50'])} | "
                f"{times(r['python_p99_over_ragchat_p99'])} |"
            )
        out.append("")
    failed = [r for r in d["e2e"] if r["errors"]]
    for r in failed:
        out.append(f"- {E2E_SYSTEMS.get(r['system'], r['system'])}, {r['clients']} client(s): first error: `{r['first_error']}`")
    if failed:
        out.append("")
    samples = d.get("e2e_samples") or {}
    if samples:
        out.append('Each server\'s answer to "What is overfitting and how do I avoid it?" (checked before the rows):')
        out.append("")
        for system, a in samples.items():
            text = (a.get("content") or "").replace("\n", " ")
            out.append(f"- {E2E_SYSTEMS.get(system, system)} ({a.get('sources')} sources): {text[:400]}")
        out.append("")


def markdown(d: dict) -> str:
    m = d["machine"]
    out = []
    out.append("# ragchat vs its peers: the memory part of a chat turn, and the whole turn")
    out.append("")
    out.append(
        "Generated by `benches/peers/run`; every number below comes from one run of it. "
        "A memory turn = read the conversation's history + append a user and an assistant message "
        f"of {m.get('message_bytes', '300')} bytes each; the whole turn adds retrieval and the "
        "answer, over HTTP. See `benches/peers/README.md`."
    )
    out.append("")
    out.append("## Machine")
    out.append("")
    for k in ("date", "nproc", "cpu", "ram", "kernel", "loadavg_at_start", "loadavg_at_end", "redis", "redis_config", "ragchat", "python", "langchain", "web_app", "rows"):
        if k in m:
            out.append(f"- {k}: {m[k]}")
    out.append("")

    if d["limit"] or d["ragchat"] or d["langchain"]:
        markdown_memory(d, out)
    if d.get("e2e"):
        markdown_e2e(d, out)

    if d["commands"]:
        out.append("## Commands")
        out.append("")
        out.append("```sh")
        for c in d["commands"]:
            out.append(f"# {c['what']}")
            out.append(c["command"])
        out.append("```")
        out.append("")
    return "\n".join(out)


def plot(d: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6.2), dpi=120)
    series = [
        ("ragchat, 1 client", [r for r in d["ragchat"] if r["clients"] == 1], "o-", "C0"),
        (f"ragchat, {MULTI_CLIENTS} clients", [r for r in d["ragchat"] if r["clients"] == MULTI_CLIENTS], "o--", "C0"),
        ("LangChain RedisChatMessageHistory, 1 client", [r for r in d["langchain"] if r["clients"] == 1], "s-", "C3"),
    ]
    xs_all = sorted({r["history"] for r in d["ragchat"] + d["langchain"]}) or [10, 1000]
    for label, rows, style, color in series:
        if not rows:
            continue
        ax.plot([r["history"] for r in rows], [r["p50_ms"] for r in rows], style, color=color, label=label)
        for r in rows:
            ax.annotate(f"{r['p50_ms']:.3g}", (r["history"], r["p50_ms"]), textcoords="offset points", xytext=(4, 6), fontsize=8, color=color)
    styles = {("RPUSH", 1): ("-", "C2"), ("XADD", 1): (":", "C2"), ("RPUSH", MULTI_CLIENTS): ("-", "C7"), ("XADD", MULTI_CLIENTS): (":", "C7")}
    for r in d["limit"]:
        ls, color = styles.get((r["command"], r["clients"]), ("-.", "C5"))
        ax.hlines(
            r["p50_ms"], xs_all[0], xs_all[-1], linestyles=ls, colors=color, linewidth=1,
            label=f"redis-benchmark {r['command']} p50, {r['clients']} client{'s' if r['clients'] > 1 else ''} (one op)",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("conversation length (messages of history)")
    ax.set_ylabel("p50 latency of one turn (ms, log)")
    m = d["machine"]
    ax.set_title(
        "Memory part of a chat turn: read history + append 2 x 300 B\n"
        f"{m.get('nproc', '?')} cores, {m.get('cpu', '?')}, {m.get('redis', '')}",
        fontsize=9,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--raw", help="directory with the raw outputs of run")
    src.add_argument("--from-json", help="re-render from a latest.json written earlier")
    ap.add_argument("--out", required=True, help="results directory")
    args = ap.parse_args()

    if args.from_json:
        with open(args.from_json, encoding="utf-8") as fh:
            d = json.load(fh)
    else:
        d = build(args.raw)
    os.makedirs(args.out, exist_ok=True)
    md = markdown(d)
    with open(os.path.join(args.out, "latest.md"), "w", encoding="utf-8") as fh:
        fh.write(md)
    with open(os.path.join(args.out, "latest.json"), "w", encoding="utf-8") as fh:
        json.dump(d, fh, indent=2)
        fh.write("\n")
    png = os.path.join(args.out, "latency_vs_length.png")
    if d["ragchat"] or d["langchain"]:
        plot(d, png)
    elif os.path.exists(png):
        os.remove(png)  # a partial run (ROWS=e2e) has no memory rows to draw
    sys.stdout.write(md)


if __name__ == "__main__":
    main()
