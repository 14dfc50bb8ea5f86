#!/usr/bin/env bash
# tests/it/ppo_eval.sh: `ppo eval` on tiny models of the embedded world: a policy against
# itself (every pair a tie: win rate exactly 1/2, KL exactly 0), against a different model
# (the --json figures recomputed from the per-prompt --out file: rewards, win rate, KL, gold
# win rate, lengths, ended shares), pairing by random stream, the sampling settings read from
# the policy's run.json, a reward server that does not answer (exit 1 with the client's
# message, before any sampling), bad input (FILE:LINE, nothing written), usage errors, and —
# when `reward serve` is built — the same figures through a real server.
set -euo pipefail
: "${BIN:?set BIN to the absolute path of build/bin}"
cd "$(dirname "$0")/../.."
export LC_ALL=C OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
source tests/it/sft_models.bash
source tests/it/ppo_models.bash
sft="$BIN/sft" ppo="$BIN/ppo"
tmp=$(mktemp -d)
srv=""
trap '[ -z "$srv" ] || kill "$srv" 2>/dev/null || true; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

run() { # WANT_EXIT cmd...: stdout in $tmp/out, stderr in $tmp/err
    local want=$1 got=0
    shift
    "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
    [ "$got" = "$want" ] || { cat "$tmp/out" "$tmp/err"; fail "$* exited $got, want $want"; }
}
jget() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

# ---- models: a tiny trained LM (the policy), a different LM with the same tokenizer (the
# baseline), a reward model made from the policy's trunk, and a few world prompts
pol="$tmp/pol" base="$tmp/base" rm="$tmp/rm"
tiny_trained_model "$pol" "$tmp/world"
"$sft" pretrain --corpus "$tmp/world/corpus.train.txt" --out "$base" --config tiny \
    --tokenizer "$pol" --steps 10 --seed 2 --threads 1 > "$tmp/base.log" 2>&1 ||
    { cat "$tmp/base.log"; fail "baseline pretrain"; }
score_model_from_lm "$pol" "$rm" 7
head -n 12 "$tmp/world/prompts.val.jsonl" > "$tmp/prompts.jsonl"
common=(--reward-model "$rm" --prompts "$tmp/prompts.jsonl" --max-new 12 --seed 3)

# ---- usage: exit 2
run 0 "$ppo" eval --help
grep -q '^usage: ppo eval --policy DIR' "$tmp/out" || fail "--help prints no usage"
run 0 "$ppo" --help
grep -q 'eval' "$tmp/out" || fail "ppo --help lists no eval"
run 2 "$ppo" eval --prompts p --reward-model r
grep -q '^ppo: error: --policy is required' "$tmp/err" || fail "missing --policy"
run 2 "$ppo" eval --policy "$pol" --prompts p
grep -q 'give one of --reward (a reward server) and --reward-model' "$tmp/err" || fail "no reward"
run 2 "$ppo" eval --policy "$pol" --prompts p --reward tcp://x:1 --reward-model "$rm"
run 2 "$ppo" eval --policy "$pol" --prompts p --reward-model "$rm" --tries 2
grep -q -- '--timeout and --tries go with --reward' "$tmp/err" || fail "--tries without --reward"
run 2 "$ppo" eval --policy "$pol" --prompts p --reward-model "$rm" --judge people
grep -q "'people' is not a judge" "$tmp/err" || fail "bad judge"
run 2 "$ppo" eval --policy "$pol" --prompts p --reward tcp://x:1 --timeout 0
run 2 "$ppo" eval --policy "$pol" --prompts p --reward-model "$rm" --k 0

# ---- the policy against itself: the same streams give the same texts, every pair ties
run 0 "$ppo" eval --policy "$pol" --baseline "$pol" "${common[@]}" --k 3 --judge simulated \
    --json --out "$tmp/self.jsonl"
cp "$tmp/out" "$tmp/self.json"
python3 - "$tmp/self.json" "$tmp/self.jsonl" <<'PY' || fail "policy vs itself: $(cat "$tmp/self.json")"
import json, sys
d = json.load(open(sys.argv[1]))
rows = [json.loads(l) for l in open(sys.argv[2])]
assert d["n"] == 12 and d["k"] == 3 and len(rows) == 12, (d["n"], len(rows))
assert d["win_rate"] == 0.5 and d["win_rate_ci"] == [0.5, 0.5], d["win_rate_ci"]
assert d["gold_win_rate"] == 0.5 and d["gold_win_rate_ci"] == [0.5, 0.5]
assert (d["wins"], d["ties"], d["losses"]) == (0, 36, 0)
assert d["kl"] == 0 and d["kl_ci"] == [0, 0], (d["kl"], d["kl_ci"])
assert d["policy_reward"] == d["baseline_reward"] and d["gold_policy"] == d["gold_baseline"]
for r in rows:
    assert [s["response"] for s in r["policy"]] == [s["response"] for s in r["baseline"]]
    assert all(s["kl"] == 0 for s in r["policy"])
PY
grep -q 'reward model   0.5000 \[0.5000, 0.5000\]  (0 wins, 36 ties, 0 losses)' "$tmp/err" ||
    fail "report on stderr with --json: $(cat "$tmp/err")"

# ---- against a different model: the --json figures from the --out file, by hand
run 0 "$ppo" eval --policy "$pol" --baseline "$base" "${common[@]}" --judge simulated --json \
    --out "$tmp/diff.jsonl" --log "$tmp/log.jsonl"
cp "$tmp/out" "$tmp/diff.json"
python3 - "$tmp/diff.json" "$tmp/diff.jsonl" "$tmp/prompts.jsonl" <<'PY' || fail "figures: $(cat "$tmp/diff.json")"
import json, math, sys
d = json.load(open(sys.argv[1]))
rows = [json.loads(l) for l in open(sys.argv[2])]
prompts = [json.loads(l)["prompt"] for l in open(sys.argv[3])]
for key in ("n", "policy_reward", "baseline_reward", "win_rate", "win_rate_ci", "kl", "kl_ci",
            "gold_policy", "gold_baseline", "gold_win_rate", "gold_win_rate_ci",
            "policy_reward_ci", "baseline_reward_ci", "gold_policy_ci", "gold_baseline_ci",
            "policy_tokens", "baseline_tokens", "policy_ended", "baseline_ended",
            "policy_failures", "baseline_failures", "sampling"):
    assert key in d, key
assert [r["prompt"] for r in rows] == prompts
K = d["k"]
assert d["n"] == len(rows) == 12 and K == 2
def near(a, b, tol=1e-8):
    return abs(a - b) <= tol * max(1.0, abs(b))
def mean(xs):
    return sum(xs) / len(xs)
def rate(r, key):  # the policy's per-prompt win rate over pairs (policy k, baseline k)
    p, b = r["policy"], r["baseline"]
    assert [s["k"] for s in p] == [s["k"] for s in b] == list(range(K))
    return mean([1.0 if x[key] > y[key] else 0.5 if x[key] == y[key] else 0.0
                 for x, y in zip(p, b)])
def t_interval(xs):  # mean ± t(0.975, n-1)·s/√n; t for n = 12 (df 11)
    m = mean(xs)
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    return m - 2.200985160 * s / math.sqrt(len(xs)), m + 2.200985160 * s / math.sqrt(len(xs))
for side in ("policy", "baseline"):
    per = [mean([s["reward"] for s in r[side]]) for r in rows]
    assert near(d[side + "_reward"], mean(per)), side
    lo, hi = t_interval(per)
    assert near(d[side + "_reward_ci"][0], lo, 1e-7) and near(d[side + "_reward_ci"][1], hi, 1e-7)
    assert near(d["gold_" + side], mean([mean([s["gold"] for s in r[side]]) for r in rows]))
    samples = [s for r in rows for s in r[side]]
    assert near(d[side + "_tokens"], mean([s["tokens"] for s in samples]))
    assert near(d[side + "_ended"], mean([1.0 if s["ended"] else 0.0 for s in samples]))
    assert all(1 <= s["tokens"] <= 12 for s in samples)
    assert set(d[side + "_failures"]) == {"empty", "echo", "rude", "rambling", "offtopic"}
win = [rate(r, "reward") for r in rows]
assert near(d["win_rate"], mean(win)), (d["win_rate"], mean(win))
lo, hi = t_interval(win)
assert near(d["win_rate_ci"][0], lo, 1e-7) and near(d["win_rate_ci"][1], hi, 1e-7)
assert d["wins"] + d["ties"] + d["losses"] == 12 * K
assert near(d["gold_win_rate"], mean([rate(r, "gold") for r in rows]))
kl = [mean([s["kl"] for s in r["policy"]]) for r in rows]
assert near(d["kl"], mean(kl)) and d["kl"] > 0.1, d["kl"]  # two different models
assert d["policy_reward"] != d["baseline_reward"]
assert d["sampling"]["temperature"] == 0.7 and d["sampling"]["max_new"] == 12
assert d["sampling"]["from"]["max_new"] == "flag" and d["sampling"]["from"]["top_p"] == "default"
PY
grep -q '"event": *"eval".*"win_rate"' "$tmp/log.jsonl" || fail "--log: $(cat "$tmp/log.jsonl")"
# the same seed gives the same samples and figures; another --batch too (one stream per sample)
run 0 "$ppo" eval --policy "$pol" --baseline "$base" "${common[@]}" --judge simulated --json \
    --out "$tmp/diff2.jsonl" --batch 5
cmp -s "$tmp/diff.jsonl" "$tmp/diff2.jsonl" || fail "--batch 5 changed the samples"
cmp -s "$tmp/out" "$tmp/diff.json" || fail "--batch 5 changed the figures"
# without --json the report is on stdout; without a baseline only the policy's figures
run 0 "$ppo" eval --policy "$pol" "${common[@]}"
grep -q '^  reward  *-*[0-9.]* \[-*[0-9.]*, -*[0-9.]*\]' "$tmp/out" || fail "report: $(cat "$tmp/out")"
grep -q 'win rate' "$tmp/out" && fail "a win rate without a baseline"
run 0 "$ppo" eval --policy "$pol" "${common[@]}" --json
python3 -c 'import json, sys; d = json.load(sys.stdin); assert "baseline_reward" not in d and "kl" not in d and "policy_reward" in d' \
    < "$tmp/out" || fail "policy alone: $(cat "$tmp/out")"

# ---- the sampling settings of the policy's training rollouts (run.json "settings")
cp -r "$pol" "$tmp/pol_rl"
printf '{"format": "rlhf-run-v1", "settings": {"temperature": 1.3, "max_new": 4, "top_k": 50}}\n' \
    > "$tmp/pol_rl/run.json"
run 0 "$ppo" eval --policy "$tmp/pol_rl" --reward-model "$rm" --prompts "$tmp/prompts.jsonl" \
    --top-k 7 --json --out "$tmp/rl.jsonl"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
s = d["sampling"]
assert (s["temperature"], s["max_new"], s["top_k"], s["top_p"]) == (1.3, 4, 7, 1.0), s
assert s["from"] == {"temperature": "run.json", "top_p": "default", "top_k": "flag", "max_new": "run.json"}
assert all(x["tokens"] <= 4 for l in open(sys.argv[2]) for x in json.loads(l)["policy"])
' "$tmp/out" "$tmp/rl.jsonl" || fail "run.json settings: $(cat "$tmp/out")"
grep -qF "temperature 1.3, top-p 1, top-k 7, max-new 4 ($tmp/pol_rl/run.json: temperature, max_new; flags: top_k; sampler defaults: top_p)" \
    "$tmp/err" || fail "settings line: $(cat "$tmp/err")"
printf '{"settings": {"temperature": "hot"}}\n' > "$tmp/pol_rl/run.json"
run 1 "$ppo" eval --policy "$tmp/pol_rl" --reward-model "$rm" --prompts "$tmp/prompts.jsonl"
grep -qF "ppo: error: $tmp/pol_rl/run.json: settings.temperature: expected a number" "$tmp/err" ||
    fail "bad run.json setting: $(cat "$tmp/err")"

# ---- no reward server: exit 1 with the client's message, before any sampling
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run 1 "$ppo" eval --policy "$pol" --baseline "$base" --reward "tcp://127.0.0.1:$port" \
    --prompts "$tmp/prompts.jsonl" --timeout 0.2 --tries 2 --out "$tmp/never"
grep -qx "ppo: error: no reply from tcp://127.0.0.1:$port after 2 tries (0.2 s each)" "$tmp/err" ||
    fail "no-server message: $(cat "$tmp/err")"
grep -q "ppo: warning: tcp://127.0.0.1:$port: no reply in 0.2 s, reconnecting and retrying (try 2 of 2)" \
    "$tmp/err" || fail "no retry warning: $(cat "$tmp/err")"
grep -q 'ppo eval (policy)' "$tmp/err" && fail "sampled before asking the server"
[ ! -e "$tmp/never" ] || fail "--out written without scores"

# ---- bad input: FILE:LINE or the model's problem, exit 1, nothing written
printf '{"prompt": "What is 2 plus 2?"}\n{"prompt": 7}\n' > "$tmp/bad.jsonl"
run 1 "$ppo" eval --policy "$pol" --reward-model "$rm" --prompts "$tmp/bad.jsonl" --out "$tmp/never"
grep -qF "ppo: error: $tmp/bad.jsonl:2: \"prompt\" must be a string" "$tmp/err" ||
    fail "bad prompts line: $(cat "$tmp/err")"
long=$(printf 'word %.0s' $(seq 140))
printf '{"prompt": "ok"}\n\n{"prompt": "%s"}\n' "$long" > "$tmp/long.jsonl"
run 1 "$ppo" eval --policy "$pol" --reward-model "$rm" --prompts "$tmp/long.jsonl"
grep -q "ppo: error: $tmp/long.jsonl:3: prompt is [0-9]* tokens with the template, the context is 128: no room for a response" \
    "$tmp/err" || fail "long prompt: $(cat "$tmp/err")"
run 1 "$ppo" eval --policy "$pol" --reward-model "$pol" --prompts "$tmp/prompts.jsonl"
grep -q "ppo: error: $pol: .*this command needs a reward" "$tmp/err" || fail "LM as reward model: $(cat "$tmp/err")"
other="$tmp/other"
gpt2_zero_model "$other" 8 2 2 64
run 1 "$ppo" eval --policy "$pol" --baseline "$other" --reward-model "$rm" --prompts "$tmp/prompts.jsonl"
grep -q "do not read tokens the same way\|vocab" "$tmp/err" || fail "incompatible baseline: $(cat "$tmp/err")"
[ ! -e "$tmp/never" ] || fail "--out written despite an error"

# ---- through a real reward server, when `reward serve` is built: the same figures
if "$BIN/reward" serve --help > /dev/null 2>&1; then
    "$BIN/reward" serve --model "$rm" --bind 'tcp://127.0.0.1:*' --threads 1 > "$tmp/ep" 2> "$tmp/serve.err" &
    srv=$!
    for _ in $(seq 100); do [ -s "$tmp/ep" ] && break; sleep 0.1; done
    ep=$(head -n 1 "$tmp/ep")
    [ -n "$ep" ] || { cat "$tmp/serve.err"; fail "reward serve did not start"; }
    run 0 "$ppo" eval --policy "$pol" --baseline "$base" --reward "$ep" --prompts "$tmp/prompts.jsonl" \
        --max-new 12 --seed 3 --judge simulated --json --out "$tmp/served.jsonl"
    cmp -s "$tmp/served.jsonl" "$tmp/diff.jsonl" || fail "served scores differ from in-process ones"
    python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert a.pop("reward").startswith("tcp://") and b.pop("reward_model")
assert a == b, (a, b)
' "$tmp/out" "$tmp/diff.json" || fail "served figures differ"
    grep -q "reward model $ep (serving $rm)" "$tmp/err" || fail "server named: $(cat "$tmp/err")"
    kill -TERM "$srv"
    wait "$srv" || fail "reward serve exit status"
    srv=""
fi
echo "ppo eval: ok"
