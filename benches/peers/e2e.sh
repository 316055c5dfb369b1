# Sourced by `run` (section 4, ROWS=all or e2e): the whole chat turn over HTTP, `ragchat
# serve` against the Python app in app/ (FastAPI + LangChain's RedisChatMessageHistory +
# BM25), both on run's private Redis, both driven by `ragchat bench http --protocol native`.
# Uses run's variables (RAGCHAT_BIN PY VENV URL PORT TMP RAW HERE ROOT E2E_* APP_WORKERS
# SERVERS) and helpers (say die step rcli record free_port).

# wait_http URL PID LOG: returns once URL answers 200; dies if the process exits first.
wait_http() {
    local url=$1 pid=$2 log=$3
    for _ in $(seq 1 600); do
        curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || die "the server behind $url exited: $(tail -20 "$log")"
        sleep 0.1
    done
    die "no answer from $url after 60 s: $(tail -20 "$log")"
}

# After each row, the .redis file beside its JSON holds redis_cpu_s (CPU over the row) and
# cmd_<name> (calls over the row, from INFO commandstats after a CONFIG RESETSTAT; commands
# run inside a Lua script count too, as well as the EVALSHA that runs them).

# redis_cpu: seconds of CPU the private redis-server has used (user + system, all threads).
redis_cpu() {
    redis-cli -p "$PORT" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {printf "%.6f", s}'
}

# sample NAME BASE: one turn through the server; dies unless it answers 200 with an answer.
sample() {
    local name=$1 base=$2 out="$RAW/e2e_sample_$1.json" code
    code=$(curl -sS -o "$out" -w '%{http_code}' -H 'content-type: application/json' \
        -d '{"content":"What is overfitting and how do I avoid it?"}' \
        "$base/v1/sessions/e2e-sample-$name/messages") || die "$name: the sample turn failed"
    [[ "$code" == 200 ]] || die "$name answered the sample turn with HTTP $code: $(head -c 500 "$out")"
    "$PY" - "$out" "$name" >&2 <<'EOF' || die "$name: the sample turn's body has no answer"
import json, sys
answer = json.load(open(sys.argv[1]))["answer"]
print(f"==> {sys.argv[2]} answers: {answer['content'][:300]!r} ({len(answer.get('sources') or [])} sources)")
EOF
}

SERVE_PORT=$(free_port)
say "starting ragchat serve on 127.0.0.1:$SERVE_PORT (store $URL, rate limits and quotas off)"
"$RAGCHAT_BIN" serve --addr "127.0.0.1:$SERVE_PORT" --store "$URL" --data-dir "$TMP/serve-data" \
    --turns-per-minute 0 --requests-per-second 0 --max-sessions-per-user 0 --max-user-mb 0 \
    > "$TMP/serve.log" 2>&1 &
serve_pid=$!
SERVERS+=("$serve_pid")
record "e2e: ragchat serve" "ragchat serve --addr 127.0.0.1:$SERVE_PORT --store $URL --turns-per-minute 0 --requests-per-second 0 --max-sessions-per-user 0 --max-user-mb 0"

APP_PORT=$(free_port)
say "starting the Python app (uvicorn, $APP_WORKERS workers) on 127.0.0.1:$APP_PORT"
REDIS_URL="$URL" CORPUS_DIR="$ROOT/corpus" "$VENV/bin/uvicorn" main:app --app-dir "$HERE/app" \
    --host 127.0.0.1 --port "$APP_PORT" --workers "$APP_WORKERS" --no-access-log --log-level warning \
    > "$TMP/app.log" 2>&1 &
app_pid=$!
SERVERS+=("$app_pid")
record "e2e: Python app" "REDIS_URL=$URL CORPUS_DIR=corpus benches/peers/.venv/bin/uvicorn main:app --app-dir benches/peers/app --host 127.0.0.1 --port $APP_PORT --workers $APP_WORKERS --no-access-log --log-level warning"

wait_http "http://127.0.0.1:$SERVE_PORT/readyz" "$serve_pid" "$TMP/serve.log"
wait_http "http://127.0.0.1:$APP_PORT/healthz" "$app_pid" "$TMP/app.log"
sample ragchat "http://127.0.0.1:$SERVE_PORT"
sample python "http://127.0.0.1:$APP_PORT"

# Which system goes first alternates with each client count, so neither always runs on
# the machine as the other left it.
IFS=, read -r -a e2e_clients <<< "$E2E_CLIENTS"
order=(ragchat python)
for c in "${e2e_clients[@]}"; do
    for system in "${order[@]}"; do
        if [[ "$system" == ragchat ]]; then base="http://127.0.0.1:$SERVE_PORT"; else base="http://127.0.0.1:$APP_PORT"; fi
        rcli flushall
        say "ragchat bench http --protocol native: $system, $c client(s), $E2E_DURATION s"
        record "e2e: $system, $c client(s)" "ragchat bench http --url $base --protocol native --concurrency $c --duration $E2E_DURATION --turns-per-chat $E2E_TURNS_PER_CHAT --json"
        redis-cli -p "$PORT" config resetstat > /dev/null
        cpu_before=$(redis_cpu)
        step "$RAW/e2e_${system}_c$c.json" "$RAGCHAT_BIN" bench http --url "$base" --protocol native \
            --concurrency "$c" --duration "$E2E_DURATION" --turns-per-chat "$E2E_TURNS_PER_CHAT" --json
        cpu_after=$(redis_cpu)
        printf 'redis_cpu_s\t%s\n' "$(awk -v a="$cpu_before" -v b="$cpu_after" 'BEGIN {printf "%.6f", b - a}')" \
            > "$RAW/e2e_${system}_c$c.redis"
        redis-cli -p "$PORT" info commandstats | tr -d '\r' \
            | awk -F'[:,=]' '/^cmdstat_/ {sub("cmdstat_", "", $1); printf "cmd_%s\t%s\n", $1, $3}' \
            >> "$RAW/e2e_${system}_c$c.redis"
        "$PY" - "$RAW/e2e_${system}_c$c.json" >&2 <<'EOF'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(f"==>   {r['turns']} turns, {r['turns_per_s']:.0f} turns/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, errors {r['errors']}")
if r["errors"]:
    print(f"==>   WARNING: {r['errors']} failed requests, first: {r['first_error']}")
EOF
    done
    order=("${order[1]}" "${order[0]}")
done
rcli flushall

for pid in "${SERVERS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
SERVERS=()
