#!/usr/bin/env bash
# tests/it/reward_serve.sh: `reward serve`, `reward keygen` and `reward score --connect` as
# processes, with a tiny reward model (tests/it/rm_tool.c) on free loopback ports:
#  - 8 concurrent clients get the offline scores bit for bit (17 digits; both sides 1 thread),
#    and the server's --log shows scoring calls that held more than one request;
#  - the info reply names the model and validates against schemas/wire/info-reply.json;
#  - a request whose prompt does not fit gets an error naming it, and the server goes on;
#  - a few hundred malformed frames each get one reply, and scoring still works after;
#  - the server killed mid-run and restarted: the client warns, retries and finishes with the
#    right scores; with no server at all it exits 1 with "no reply from EP after 3 tries";
#  - CURVE: a client with the server's public key scores, one without gets nothing;
#  - a non-loopback --bind without keys is refused; SIGTERM and SIGINT: exit 0.
set -euo pipefail
: "${BIN:?set BIN to the absolute path of build/bin}"
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
reward=$BIN/reward
tool=$BIN/it/rm_tool

# start_server NAME ARGS...: starts `reward serve` (log in $tmp/NAME.err), waits for the
# endpoint on its first stdout line; sets srv (pid) and ep.
start_server() {
    local name=$1
    shift
    rm -f "$tmp/$name.ep"
    "$reward" serve --model "$tmp/rm" --threads 1 "$@" > "$tmp/$name.ep" 2> "$tmp/$name.err" &
    srv=$!
    pids+=("$srv")
    for _ in $(seq 200); do
        grep -q . "$tmp/$name.ep" 2>/dev/null && break
        kill -0 "$srv" 2>/dev/null || { cat "$tmp/$name.err"; fail "$name: server died"; }
        sleep 0.05
    done
    ep=$(head -n 1 "$tmp/$name.ep")
    [[ $ep =~ ^tcp://127\.0\.0\.1:[0-9]+$ ]] || fail "$name: no endpoint on stdout: '$ep'"
}

# stop_server SIGNAL: signals the server and expects exit 0 and the summary line.
stop_server() {
    kill "-$1" "$srv"
    local rc=0
    wait "$srv" || rc=$?
    [ "$rc" = 0 ] || fail "server exited $rc after SIG$1"
}

"$tool" model "$tmp/rm" 7 0.25
for i in $(seq 0 47); do
    printf '{"prompt": "What is %d plus %d?", "response": "%d plus %d is %d. caf\\u00e9 \\u0000 \\u2713"}\n' \
        "$i" "$((i * 7 % 13))" "$i" "$((i * 7 % 13))" "$((i + i * 7 % 13))"
done > "$tmp/pairs.jsonl"
# a response far past the context (cut, end-of-text kept) and an empty one
printf '{"prompt": "Name three fruits.", "response": "%s"}\n' "$(printf 'apple pear plum %.0s' $(seq 60))" >> "$tmp/pairs.jsonl"
printf '{"prompt": "Say hello to Maria.", "response": ""}\n' >> "$tmp/pairs.jsonl"
"$tool" score "$tmp/rm" "$tmp/pairs.jsonl" 1 > "$tmp/offline.jsonl"
[ "$(wc -l < "$tmp/offline.jsonl")" = 50 ] || fail "offline scoring"
[ "$(sort -u "$tmp/offline.jsonl" | wc -l)" -gt 40 ] || fail "offline scores do not vary"

echo "== usage: a public address without keys, a missing --model"
rc=0
"$reward" serve --model "$tmp/rm" --bind tcp://0.0.0.0:5555 2> "$tmp/usage.err" || rc=$?
[ "$rc" = 2 ] || fail "non-loopback bind without keys: exit $rc, expected 2"
grep -q "reward: error: --bind tcp://0.0.0.0:5555 is not a loopback address: serving beyond this machine needs --curve-keys DIR" "$tmp/usage.err" ||
    { cat "$tmp/usage.err"; fail "message for a public bind"; }
rc=0
"$reward" serve 2> /dev/null || rc=$?
[ "$rc" = 2 ] || fail "no --model: exit $rc"
"$reward" serve --help | grep -q -- "--batch-wait-us" || fail "serve --help"
"$reward" score --connect x --help | grep -q -- "--curve-keys" || fail "score --connect --help"

echo "== 8 concurrent clients, the offline scores, batches of several requests"
start_server main --bind 'tcp://127.0.0.1:*' --log "$tmp/serve.jsonl" --log-every 0.1 \
    --batch-wait-us 5000 --endpoint-file "$tmp/endpoint"
[ "$(cat "$tmp/endpoint")" = "$ep" ] || fail "--endpoint-file holds '$(cat "$tmp/endpoint")', stdout '$ep'"
grep -q "on $ep" "$tmp/main.err" && grep -q "kill -TERM $srv stops it" "$tmp/main.err" ||
    { cat "$tmp/main.err"; fail "startup line"; }
cpids=()
for k in $(seq 8); do
    "$reward" score --connect "$ep" --in "$tmp/pairs.jsonl" --batch 4 > "$tmp/out.$k" 2> "$tmp/err.$k" &
    cpids+=($!)
done
for k in $(seq 8); do
    wait "${cpids[$((k - 1))]}" || { cat "$tmp/err.$k"; fail "client $k failed"; }
    cmp -s "$tmp/out.$k" "$tmp/offline.jsonl" ||
        { diff "$tmp/out.$k" "$tmp/offline.jsonl" | head; fail "client $k: scores differ from offline"; }
done
echo "8 clients x 50 pairs: the offline scores, bit for bit"

echo "== info"
"$tool" info "$ep" > "$tmp/info.json"
python3 - "$tmp/info.json" "$root/schemas/wire/info-reply.json" "$tmp/rm" <<'PY'
import json, sys
from jsonschema import Draft202012Validator
doc = json.load(open(sys.argv[1]))
errs = [e.message for e in Draft202012Validator(json.load(open(sys.argv[2]))).iter_errors(doc)]
assert not errs, errs
assert doc["model"] == sys.argv[3], doc["model"]
assert doc["config"] == {"n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64,
                         "vocab_size": doc["config"]["vocab_size"]}, doc["config"]
assert doc["template"] == "rlhf-v1" and doc["reward_bias"] == 0.25, doc
assert doc["limits"]["max_items"] == 256 and doc["limits"]["batch_items"] == 64, doc["limits"]
assert isinstance(doc["eos_id"], int)
print("info:", json.dumps(doc))
PY

echo "== a prompt that does not fit: an error for its request, the server goes on"
{ printf '{"prompt": "%s", "response": "r"}\n' "$(printf 'word %.0s' $(seq 80))"; } > "$tmp/long.jsonl"
rc=0
"$reward" score --connect "$ep" --in "$tmp/long.jsonl" > "$tmp/long.out" 2> "$tmp/long.err" || rc=$?
[ "$rc" = 1 ] && [ ! -s "$tmp/long.out" ] || fail "too-long prompt: exit $rc"
grep -q "reward: error: $tmp/long.jsonl:1-1: $ep: server error: item 0: prompt is [0-9]* tokens with the template, the context is 64" "$tmp/long.err" ||
    { cat "$tmp/long.err"; fail "too-long prompt message"; }

echo "== malformed frames"
"$tool" fuzz "$ep" 300
"$reward" score --connect "$ep" --in "$tmp/pairs.jsonl" > "$tmp/after.out"
cmp -s "$tmp/after.out" "$tmp/offline.jsonl" || fail "scores after the fuzz differ"

stop_server TERM
grep -q "reward serve: stopped after .* s: [0-9]* requests, [0-9]* items" "$tmp/main.err" ||
    { cat "$tmp/main.err"; fail "summary line"; }
python3 - "$tmp/serve.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert all(r["event"] == "serve" for r in rows)
multi = sum(r["multi_batches"] for r in rows)
largest = max(r["batch_items_max"] for r in rows)
last = rows[-1]
assert last["total_requests"] >= 8 * 13 + 1, last
assert multi > 0, f"no scoring call held more than one request ({len(rows)} reports)"
assert largest > 4, largest
for r in rows:
    assert r["latency_p50_ms"] <= r["latency_p99_ms"] <= r["latency_max_ms"], r
print(f"log: {len(rows)} reports, {multi} scoring calls held several requests, largest "
      f"{largest} items, {last['total_requests']} requests, {last['total_errors']} errors")
PY

echo "== the server killed mid-run and restarted on the same port"
start_server restart1 --bind 'tcp://127.0.0.1:*' --batch-wait-us 20000
port_ep=$ep
"$reward" score --connect "$ep" --in "$tmp/pairs.jsonl" --batch 1 --timeout 0.4 --tries 20 \
    > "$tmp/restart.out" 2> "$tmp/restart.err" &
client=$!
pids+=("$client")
for _ in $(seq 200); do [ "$(wc -l < "$tmp/restart.out")" -ge 5 ] && break; sleep 0.02; done
[ "$(wc -l < "$tmp/restart.out")" -lt 50 ] || fail "the client finished before the kill"
kill -9 "$srv"
wait "$srv" 2> /dev/null || true
sleep 1
start_server restart2 --bind "$port_ep"
rc=0
wait "$client" || rc=$?
[ "$rc" = 0 ] || { cat "$tmp/restart.err"; fail "client after the restart: exit $rc"; }
cmp -s "$tmp/restart.out" "$tmp/offline.jsonl" || fail "scores across the restart differ"
grep -q "reward: warning: $port_ep: no reply in 0.4 s, reconnecting and retrying (try 2 of 20)" "$tmp/restart.err" ||
    { cat "$tmp/restart.err"; fail "no retry warning"; }
stop_server INT

echo "== no server at all"
rc=0
"$reward" score --connect "$port_ep" --in "$tmp/pairs.jsonl" --timeout 0.2 > "$tmp/none.out" 2> "$tmp/none.err" || rc=$?
[ "$rc" = 1 ] && [ ! -s "$tmp/none.out" ] || fail "no server: exit $rc"
grep -qx "reward: error: no reply from $port_ep after 3 tries (0.2 s each)" "$tmp/none.err" ||
    { cat "$tmp/none.err"; fail "no-server message"; }

echo "== CURVE"
"$reward" keygen --out "$tmp/keys" > /dev/null
for f in server.key server.pub client.key client.pub; do
    [ "$(stat -c %a "$tmp/keys/$f")" = 600 ] || fail "$f mode"
done
rc=0
"$reward" keygen --out "$tmp/keys" 2> "$tmp/keygen.err" || rc=$?
[ "$rc" = 1 ] && grep -q "server.key: exists" "$tmp/keygen.err" || fail "keygen overwrote keys"
start_server curve --bind 'tcp://127.0.0.1:*' --curve-keys "$tmp/keys"
"$reward" score --connect "$ep" --in "$tmp/pairs.jsonl" --curve-keys "$tmp/keys" > "$tmp/curve.out"
cmp -s "$tmp/curve.out" "$tmp/offline.jsonl" || fail "CURVE scores differ"
mkdir "$tmp/pubonly" && cp "$tmp/keys/server.pub" "$tmp/pubonly/" # a fresh client pair
"$reward" score --connect "$ep" --in "$tmp/pairs.jsonl" --curve-keys "$tmp/pubonly" > "$tmp/curve2.out"
cmp -s "$tmp/curve2.out" "$tmp/offline.jsonl" || fail "CURVE scores (fresh client pair) differ"
rc=0
"$reward" score --connect "$ep" --in "$tmp/pairs.jsonl" --timeout 0.2 --tries 2 > "$tmp/plain.out" 2> "$tmp/plain.err" || rc=$?
[ "$rc" = 1 ] && [ ! -s "$tmp/plain.out" ] || fail "a client without the key: exit $rc"
grep -q "reward: error: no reply from $ep after 2 tries" "$tmp/plain.err" || { cat "$tmp/plain.err"; fail "plain client message"; }
"$reward" keygen --out "$tmp/other" > /dev/null
rc=0
"$reward" score --connect "$ep" --in "$tmp/pairs.jsonl" --timeout 0.2 --tries 2 --curve-keys "$tmp/other" > "$tmp/wrong.out" 2> /dev/null || rc=$?
[ "$rc" = 1 ] && [ ! -s "$tmp/wrong.out" ] || fail "a client with another server's key: exit $rc"
stop_server TERM
echo "ok"
