#!/usr/bin/env bash
# tests/it/ppo_train.sh: `ppo train` on tiny models of the embedded world against a real
# `reward serve`: usage errors; no server at start (exit 1 naming the address, nothing
# written); a value model that reads other tokens (refused, naming both directories); a short
# run (OUT, OUT/value, OUT/best, run.json's settings for ppo eval, the per-iteration figures in
# --log); --stop-at then --resume ends with the same bytes as an uninterrupted run; the server
# killed mid-run and restarted (warnings, and still the same bytes); the server gone for good
# (exit 1, the checkpoint intact, a later --resume finishes); a NaN stop with the last good
# checkpoint intact.
set -euo pipefail
: "${BIN:?set BIN to the absolute path of build/bin}"
cd "$(dirname "$0")/../.."
export LC_ALL=C OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
source tests/it/sft_models.bash
source tests/it/ppo_models.bash
sft="$BIN/sft" ppo="$BIN/ppo" reward="$BIN/reward"
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
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# start_server EP: `reward serve` of $rm at EP, in the background (pid in srv)
start_server() {
    rm -f "$tmp/ep"
    "$reward" serve --model "$rm" --bind "$1" --threads 1 --endpoint-file "$tmp/ep" \
        > /dev/null 2> "$tmp/serve.err" &
    srv=$!
    for _ in $(seq 100); do [ -s "$tmp/ep" ] && return 0; sleep 0.05; done
    cat "$tmp/serve.err"
    fail "reward serve did not start"
}
stop_server() { kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; srv=""; }
wait_for() { # FILE: until it exists (a checkpoint), at most 30 s
    for _ in $(seq 600); do [ -e "$1" ] && return 0; sleep 0.05; done
    fail "$1 never appeared"
}
same_bytes() { # DIR_A DIR_B: the checkpoints are identical
    local f
    for f in model.safetensors value/model.safetensors train_state.bin best/model.safetensors \
        best/value/model.safetensors; do
        cmp -s "$1/$f" "$2/$f" || fail "$2/$f differs from $1/$f"
    done
}

# ---- models: a tiny LM pretrained and briefly fine-tuned on the world's demonstrations (so
# some responses end), a reward model made from its trunk, and one with another vocabulary
"$sft" world --out "$tmp/world" --size tiny --seed 1 > /dev/null
"$sft" pretrain --corpus "$tmp/world/corpus.train.txt" --out "$tmp/base" --config tiny \
    --vocab-size 512 --steps 30 --seed 1 --threads 1 > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "pretrain"; }
"$sft" train --base "$tmp/base" --demos "$tmp/world/demos.train.jsonl" --steps 40 --lr 3e-3 \
    --out "$tmp/sft" --seed 1 --threads 1 > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "sft train"; }
rm="$tmp/rm"
score_model_from_lm "$tmp/sft" "$rm" 7
"$sft" pretrain --corpus "$tmp/world/corpus.train.txt" --out "$tmp/other" --config tiny \
    --vocab-size 400 --steps 2 --seed 1 --threads 1 > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "pretrain other"; }
score_model_from_lm "$tmp/other" "$tmp/rm_other" 7
head -n 40 "$tmp/world/prompts.train.jsonl" > "$tmp/prompts.jsonl"
models=(--sft "$tmp/sft" --value-init "$rm" --prompts "$tmp/prompts.jsonl"
    --corpus "$tmp/world/corpus.train.txt")
small=(--batch 8 --minibatch 4 --max-new 32 --temperature 1 --kl-target 3 --whiten-rewards
    --seed 5)

echo "== usage"
run 0 "$ppo" train --help
grep -q '^usage: ppo train --sft DIR --value-init DIR --reward EP' "$tmp/out" || fail "--help"
run 0 "$ppo" --help
grep -q 'train' "$tmp/out" || fail "ppo --help lists no train"
run 2 "$ppo" train --sft "$tmp/sft" --reward tcp://127.0.0.1:1 --prompts p --corpus c --out "$tmp/x"
grep -q -- '--value-init is required' "$tmp/err" || fail "missing --value-init: $(cat "$tmp/err")"
run 2 "$ppo" train "${models[@]}" --reward tcp://127.0.0.1:1 --out "$tmp/x" --judge people
grep -q "'people' is not a judge" "$tmp/err" || fail "bad judge"
run 2 "$ppo" train --sft "$tmp/sft" --value-init "$rm" --prompts p --reward tcp://127.0.0.1:1 \
    --out "$tmp/x"
grep -q -- '--corpus is required for the ptx term' "$tmp/err" || fail "missing --corpus"
run 2 "$ppo" train "${models[@]}" --reward tcp://127.0.0.1:1 --out "$tmp/x" --batch 4 --minibatch 8
[ ! -e "$tmp/x" ] || fail "a usage error wrote OUT"

echo "== no server at start: exit 1 after the client's tries, naming the address"
port=$(free_port)
run 1 "$ppo" train "${models[@]}" --reward "tcp://127.0.0.1:$port" --timeout 0.2 --tries 2 \
    --out "$tmp/x"
grep -q "ppo: error: no reply from tcp://127.0.0.1:$port after 2 tries" "$tmp/err" ||
    fail "no-server message: $(cat "$tmp/err")"
[ ! -e "$tmp/x" ] || fail "no server: OUT written"

echo "== a value model that reads other tokens is refused, naming both directories"
run 1 "$ppo" train --sft "$tmp/sft" --value-init "$tmp/rm_other" --prompts "$tmp/prompts.jsonl" \
    --corpus "$tmp/world/corpus.train.txt" --reward "tcp://127.0.0.1:$port" --out "$tmp/x"
grep "$tmp/rm_other" "$tmp/err" | grep -q "$tmp/sft" || fail "vocabulary: $(cat "$tmp/err")"
[ ! -e "$tmp/x" ] || fail "refused value model: OUT written"

echo "== a short run: OUT, OUT/value, OUT/best, run.json, the figures"
ep="tcp://127.0.0.1:$(free_port)"
start_server "$ep"
run 0 "$ppo" train "${models[@]}" "${small[@]}" --reward "$ep" --iterations 12 --eval-every 3 \
    --judge simulated --out "$tmp/a" --log "$tmp/a.jsonl"
for f in config.json model.safetensors vocab.json merges.txt run.json train_state.bin \
    value/config.json value/model.safetensors best/model.safetensors best/value/model.safetensors \
    best/run.json; do
    [ -s "$tmp/a/$f" ] || fail "no $f in OUT"
done
grep -q 'GPT2LMHeadModel' "$tmp/a/config.json" || fail "the policy is no LM"
grep -q 'GPT2ForSequenceClassification' "$tmp/a/value/config.json" || fail "value head"
python3 - "$tmp/a" "$tmp/a.jsonl" <<'PY' || fail "run.json or log"
import json, sys
run = json.load(open(sys.argv[1] + "/run.json"))
s = run["settings"]
assert run["status"] == "done", run["status"]
assert s["temperature"] == 1 and s["max_new"] == 32 and s["top_p"] == 1 and s["top_k"] == 0, s
for k in ("kl_coef", "ptx_coef", "clip", "gamma", "lam", "epochs", "minibatch", "kl_target",
          "whiten_rewards", "missing_eos_score", "batch", "iterations", "reward", "lr", "value_lr"):
    assert k in s, k
assert run["results"]["best_step"] in (3, 6, 9, 12), run["results"]
rows = [json.loads(l) for l in open(sys.argv[2])]
train = [r for r in rows if r["event"] == "train"]
assert [r["step"] for r in train] == list(range(1, 13))
for k in ("score", "kl", "entropy", "clipfrac", "approx_kl", "value_loss", "explained_var",
          "ptx_loss", "response_len", "ended", "tokens_per_s", "gold", "t_generate",
          "t_score_wait", "t_forward", "t_update", "t_ptx", "kl_coef", "value_lr"):
    assert k in train[-1], k
assert any(r["ended"] > 0 for r in train), "no response ended: the server saw nothing"
val = [r for r in rows if r["event"] == "ppo_val"]
assert [r["step"] for r in val] == [0, 3, 6, 9, 12] and all("gold" in r for r in val), val
PY
# ppo eval samples at the training rollouts' settings, from run.json
run 0 "$ppo" eval --policy "$tmp/a" --reward "$ep" --prompts "$tmp/prompts.jsonl" --k 1
grep -q "temperature 1, top-p 1, top-k 0, max-new 32 ($tmp/a/run.json" "$tmp/out" ||
    fail "ppo eval settings: $(cat "$tmp/out")"

echo "== --stop-at, then --resume: the same bytes as the uninterrupted run"
run 0 "$ppo" train "${models[@]}" "${small[@]}" --reward "$ep" --iterations 12 --eval-every 3 \
    --judge simulated --out "$tmp/b" --stop-at 5
grep -q 'stopped at iteration 5/12' "$tmp/out" || fail "stop-at: $(cat "$tmp/out")"
run 0 "$ppo" train --out "$tmp/b" --resume
same_bytes "$tmp/a" "$tmp/b"

echo "== the server killed mid-run and restarted: ppo warns, waits, and ends with the same bytes"
"$ppo" train "${models[@]}" "${small[@]}" --reward "$ep" --iterations 12 --eval-every 3 \
    --judge simulated --out "$tmp/c" --timeout 0.3 --tries 2 > "$tmp/c.out" 2> "$tmp/c.err" &
pid=$!
wait_for "$tmp/c/train_state.bin"
stop_server
sleep 1.5
start_server "$ep"
wait "$pid" || { cat "$tmp/c.err"; fail "ppo train exited $? after the restart"; }
grep -q 'ppo: warning: the reward server is not answering' "$tmp/c.err" ||
    fail "no warning: $(cat "$tmp/c.err")"
grep -q 'the reward server answers again' "$tmp/c.err" || fail "no recovery: $(cat "$tmp/c.err")"
same_bytes "$tmp/a" "$tmp/c"

echo "== the server gone for good: exit 1, the checkpoint intact, --resume finishes later"
"$ppo" train "${models[@]}" "${small[@]}" --reward "$ep" --iterations 200 --eval-every 2 \
    --out "$tmp/d" --timeout 0.2 --tries 2 --reward-timeout 1 > "$tmp/d.out" 2> "$tmp/d.err" &
pid=$!
wait_for "$tmp/d/train_state.bin"
stop_server
rc=0
wait "$pid" || rc=$?
[ "$rc" = 1 ] || { cat "$tmp/d.err"; fail "server gone: exit $rc, want 1"; }
grep -q "ppo: error: $ep: the reward server did not answer for [0-9]* s (--reward-timeout); stopped: the last checkpoint (iteration [0-9]*) is intact in $tmp/d" "$tmp/d.err" ||
    fail "server gone: $(cat "$tmp/d.err")"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["status"] == "failed", r["status"]' \
    "$tmp/d/run.json" || fail "run.json does not say failed"
saved=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["results"]["step"])' "$tmp/d/run.json")
start_server "$ep"
run 0 "$ppo" train --out "$tmp/d" --resume --stop-at $((saved + 1))
grep -q "stopped at iteration $((saved + 1))/200" "$tmp/out" || fail "resume after the outage: $(cat "$tmp/out")"

echo "== a NaN stops the run with the last good checkpoint intact"
# an absurd learning rate reached by a warmup: good steps (each checkpointed), then the loss
# grows by orders of magnitude per step until it overflows (after 8-15 steps, depending on the
# build's float rounding); the run stops at the first non-finite loss or gradient
nan=("${models[@]}" "${small[@]}" --reward "$ep" --iterations 40 --eval-every 1 --lr 1e4
    --warmup 100 --epochs 4)
run 1 "$ppo" train "${nan[@]}" --out "$tmp/n"
grep -q 'is NaN; stopped without saving it: the last good checkpoint (step [0-9]*) is intact' "$tmp/err" ||
    { cat "$tmp/err"; fail "NaN message"; }
step=$(sed -n 's/.*checkpoint (step \([0-9]*\)).*/\1/p' "$tmp/err")
# what is in OUT is that step's checkpoint, byte for byte: a run stopped there writes the same
run 0 "$ppo" train "${nan[@]}" --out "$tmp/n2" --stop-at "$step"
for f in model.safetensors value/model.safetensors train_state.bin; do
    cmp -s "$tmp/n/$f" "$tmp/n2/$f" || fail "after the NaN stop, $f is not step $step's"
done
stop_server
echo "ok"
