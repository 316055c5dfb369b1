#!/usr/bin/env bash
# The bounded fuzzing run CI does after the tests: installs cargo-fuzz if missing, builds
# every target, runs each for FUZZ_SECONDS (default 20), prints one line per target and
# fails if any target found a crash. A longer run is the same with a bigger FUZZ_SECONDS
# (see README.md). Works on stable Rust: `--sanitizer none` needs no unstable flags.
#
# Seeds are read from fuzz/corpus/<target>/ and never written to; what a run discovers is
# kept in fuzz/target/fuzz-corpus/<target>/ (reused by the next run), logs in
# fuzz/target/fuzz-logs/, crashing inputs in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"

CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
# Same flags for build and run, so that `run` does not rebuild. No sanitizer: ASan needs
# nightly (or RUSTC_BOOTSTRAP), the code under test forbids `unsafe`, and panics (what
# the targets look for) are caught without it.
FLAGS=(--sanitizer none)
TARGETS=(stored_entry session_key store_url http_body keys_file)

log() { printf '\n=== fuzz: %s (%ss)\n' "$*" "$SECONDS"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
cargo fuzz --version

log "format"
# The main workspace's `cargo fmt --all` does not reach this one.
cargo fmt --check

log "build"
cargo fuzz build "${FLAGS[@]}"

mkdir -p target/fuzz-logs
summary=()
failed=()
for target in "${TARGETS[@]}"; do
    log "run $target for ${FUZZ_SECONDS}s"
    work=target/fuzz-corpus/$target
    logfile=target/fuzz-logs/$target.log
    mkdir -p "$work"
    status=ok
    # The first corpus folder is where libFuzzer writes new inputs; the seeds stay as
    # they are. -timeout turns a hang on one input into a reported failure.
    if ! cargo fuzz run "${FLAGS[@]}" "$target" "$work" "corpus/$target" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=10 -print_final_stats=1 \
        >"$logfile" 2>&1; then
        status=FAILED
        failed+=("$target")
        tail -n 60 "$logfile"
        for crash in artifacts/"$target"/*; do
            [ -f "$crash" ] || continue
            echo "crashing input $crash (base64, to reproduce elsewhere):"
            base64 -w 0 "$crash"
            echo
            echo "reproduce: cargo fuzz run ${FLAGS[*]} $target fuzz/$crash"
        done
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logfile" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logfile" | tail -n 1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$logfile" | tail -n 1)
    inputs=$(find "$work" -type f | wc -l)
    summary+=("$(printf '%-13s %-6s %10s execs in %4ss (%s/s), corpus %s inputs' \
        "$target" "$status" "${execs:-?}" "${secs:-?}" "${rate:-?}" "$inputs")")
done

log "summary"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: crash in ${failed[*]} (logs in fuzz/target/fuzz-logs/, inputs in fuzz/artifacts/)"
    exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets, no crash"
