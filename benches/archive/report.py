"""Summarises benches/archive/run's JSON lines as Markdown (stdout)."""
import json
import statistics
import sys
from pathlib import Path

out = Path(sys.argv[1])


def rows(name):
    path = out / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def by_label(rs):
    groups = {}
    for r in rs:
        if "label" in r:
            groups.setdefault(r["label"], []).append(r)
    return groups


def med(rs, key):
    return statistics.median(r[key] for r in rs)


def table(title, rs, base="off"):
    groups = by_label(rs)
    if not groups:
        return
    print(f"\n### {title}\n")
    print("| mode | runs | turns/s (median) | p50 ms (median) | p99 ms (median) | p50 vs " + base + " |")
    print("|---|---|---|---|---|---|")
    base_p50 = med(groups[base], "p50_ms") if base in groups else None
    for label, g in groups.items():
        ratio = f"{med(g, 'p50_ms') / base_p50:.2f}x" if base_p50 else ""
        print(f"| {label} | {len(g)} | {med(g, 'turns_per_s'):.0f} | {med(g, 'p50_ms'):.3f} | {med(g, 'p99_ms'):.3f} | {ratio} |")
    if base_p50:
        print("\nPer round, p50 of each mode / p50 of `" + base + "` in the same round:")
        for i, r in enumerate(groups[base]):
            cells = []
            for label, g in groups.items():
                if label != base and i < len(g):
                    cells.append(f"{label} {g[i]['p50_ms'] / r['p50_ms']:.2f}x")
            print(f"- round {i + 1}: " + ", ".join(cells))


table("One client: a turn (read history + append 2 messages)", rows("single.jsonl"))
table("50 clients", rows("multi.jsonl"))
lag = rows("lag.jsonl")
if lag:
    r, secs = lag[0], lag[-1].get("seconds")
    print("\n### The archive's lag under 50 clients\n")
    print(f"- {r['turns']} turns in {secs:.0f} s ({r['turns_per_s']:.0f} turns/s, p50 {r['p50_ms']:.3f} ms)")
    print(f"- largest lag during the run: {r.get('archive_lag_max_s', float('nan')):.2f} s")
    print(f"- caught up {r.get('archive_drain_s', float('nan')):.2f} s after the run")
for r in rows("rehydrate.jsonl"):
    print("\n### Loading a conversation back from PostgreSQL\n")
    print(f"- {r['sessions']} conversations of {r['messages']} messages: first read p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.2f} ms")
table("Stores used alone, one client", rows("alone.jsonl"), base="sqlite")
