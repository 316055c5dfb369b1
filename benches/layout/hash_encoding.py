#!/usr/bin/env python3
"""What a session hash's encoding costs a turn: HMGET and HSET as the lean append sends them
(12 fields read, 6 written), and MEMORY USAGE, on a hash Redis keeps as a listpack against
the same hash as a hashtable, at the sizes a session's hash takes as its conversation grows
(10 figures plus one field per dedupe bucket in use).

Redis keeps a hash as a listpack while it has at most hash-max-listpack-entries fields and no
value longer than hash-max-listpack-value bytes (64): a session's hash stays one until a
bucket holds five ids (80 bytes), typically a few hundred messages in. A listpack is read by
scanning it, so each field a command names costs a pass over the hash.

    benches/layout/hash_encoding.py PORT [--requests 100000]

Run it against a private redis-server: it FLUSHALLs and resets INFO commandstats.
"""

import argparse
import subprocess

FIGURES = ["seq", "count", "bytes", "created_at", "trimmed", "title", "auto", "arch",
           "updated_at", "lh"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("port")
    ap.add_argument("--requests", type=int, default=100000)
    args = ap.parse_args()

    def cli(*words):
        return subprocess.run(["redis-cli", "-p", args.port, *words], check=True,
                              capture_output=True, text=True).stdout.strip()

    def usec_per_call(command, words):
        cli("CONFIG", "RESETSTAT")
        subprocess.run(["redis-benchmark", "-p", args.port, "-n", str(args.requests), "-c", "20",
                        "-q", *words], check=True, capture_output=True)
        for line in cli("INFO", "commandstats").splitlines():
            if line.startswith(f"cmdstat_{command}:"):
                return float(line.split("usec_per_call=")[1].split(",")[0])
        raise SystemExit(f"no {command} in INFO commandstats")

    print("| fields | encoding | HMGET of 12 fields, us | HSET of 6 fields, us | MEMORY USAGE, bytes |")
    print("|---:|---|---:|---:|---:|")
    for buckets in (8, 24, 56, 120, 190):
        cli("FLUSHALL")
        for key, encoding in (("lp", "listpack"), ("ht", "hashtable")):
            words = ["HSET", key]
            for f in FIGURES:
                words += [f, "1764400000000"]
            for b in range(buckets):
                words += [f"#{b:03d}", "i" * 32]  # two ids a bucket
            if encoding == "hashtable":
                words += ["pad", "p" * 65]  # a value past hash-max-listpack-value
            cli(*words)
            assert cli("OBJECT", "ENCODING", key) == encoding, key
            size = int(cli("MEMORY", "USAGE", key, "SAMPLES", "0"))
            a, b = f"#{buckets // 2:03d}", f"#{buckets - 1:03d}"
            read = usec_per_call("hmget", ["HMGET", key, *FIGURES[:8], "converting", "lh", a, b])
            write = usec_per_call("hset", ["HSET", key, "updated_at", "1", "count", "2", "bytes",
                                           "3", "seq", "4", a, "i" * 48, b, "i" * 48])
            print(f"| {buckets + len(FIGURES)} | {encoding} | {read:.2f} | {write:.2f} | {size} |")
    cli("FLUSHALL")


if __name__ == "__main__":
    main()
