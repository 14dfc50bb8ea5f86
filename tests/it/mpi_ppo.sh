#!/usr/bin/env bash
# Data-parallel ppo train over MPI (two ranks on this machine) against two real `reward serve`
# processes. With the same global --batch, `mpirun -np 2 ppo train` computes what one process
# computes, iteration by iteration, within float tolerance (the sums are ordered differently,
# and a batch row's bits depend on its position in a BLAS call): the same scores, KL, gold
# scores, losses and validation rewards. The batch (5), minibatch (3) and pretraining batch (3)
# do not divide by the ranks, so the ranks hold different numbers of rows and some minibatch
# slices hold none of a rank's rows (that rank still takes part in the update). At every
# checkpoint both ranks hold bit-identical parameters (a "dist" event). Rank 0 alone prints the
# summary. A run stopped under two ranks resumes in one process and ends where the
# uninterrupted run ends. Skipped when built without MPI (make MPI=0) or without mpirun.
set -euo pipefail
: "${BIN:?BIN must be the absolute path of build/bin}"
cd "$(dirname "$0")/../.."
source tests/it/ppo_models.bash
export LC_ALL=C
source "$(dirname "${BASH_SOURCE[0]}")/mpi_env.bash"
mpi_skip_unless "$BIN/ppo"
T=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mpi2() { timeout 600 mpirun -np 2 "$@"; }
sft="$BIN/sft" ppo="$BIN/ppo" reward="$BIN/reward"

# models: a tiny LM, briefly fine-tuned (so responses end), a reward model from its trunk
"$sft" world --out "$T/w" --size tiny --seed 1 >/dev/null
"$sft" pretrain --corpus "$T/w/corpus.train.txt" --out "$T/base" --config tiny --vocab-size 512 \
    --steps 30 --seed 1 --threads 1 >"$T/log" 2>&1 || { cat "$T/log"; fail "pretrain"; }
"$sft" train --base "$T/base" --demos "$T/w/demos.train.jsonl" --steps 40 --lr 3e-3 \
    --out "$T/sft" --seed 1 --threads 1 >"$T/log" 2>&1 || { cat "$T/log"; fail "sft train"; }
score_model_from_lm "$T/sft" "$T/rm" 7
head -n 40 "$T/w/prompts.train.jsonl" >"$T/prompts.jsonl"

# two servers of the same model (their scores are the offline ones, bit for bit)
eps=()
for i in 1 2; do
    "$reward" serve --model "$T/rm" --bind 'tcp://127.0.0.1:*' --threads 1 \
        --endpoint-file "$T/ep$i" >/dev/null 2>"$T/serve$i.err" &
    pids+=($!)
    for _ in $(seq 200); do [ -s "$T/ep$i" ] && break; sleep 0.05; done
    [ -s "$T/ep$i" ] || { cat "$T/serve$i.err"; fail "reward serve $i did not start"; }
    eps+=("$(head -n 1 "$T/ep$i")")
done
EP="${eps[0]},${eps[1]}"

A=(--sft "$T/sft" --value-init "$T/rm" --prompts "$T/prompts.jsonl"
   --corpus "$T/w/corpus.train.txt" --reward "$EP" --batch 5 --minibatch 3 --ptx-batch 3
   --epochs 2 --max-new 24 --iterations 6 --eval-every 3 --whiten-rewards --kl-target 3
   --judge simulated --seed 3 --threads 1)

"$ppo" train "${A[@]}" --out "$T/p1" --log "$T/p1.jsonl" >"$T/p1.out" 2>&1 ||
    fail "ppo train: $(tail -5 "$T/p1.out")"
mpi2 "$ppo" train "${A[@]}" --out "$T/p2" --log "$T/p2.jsonl" >"$T/p2.out" 2>&1 ||
    fail "mpirun ppo train: $(tail -5 "$T/p2.out")"

# the figures of every "train" and "ppo_val" event agree; both ranks' parameters are identical
compare() { # LOG_A LOG_B
    python3 - "$1" "$2" <<'PY'
import json, sys
def load(path):
    rows = [json.loads(l) for l in open(path)]
    return ([r for r in rows if r["event"] == "train"], [r for r in rows if r["event"] == "ppo_val"],
            [r for r in rows if r["event"] == "dist"])
(ta, va, _), (tb, vb, db) = load(sys.argv[1]), load(sys.argv[2])
assert [r["step"] for r in ta] == [r["step"] for r in tb] == list(range(1, 7)), "train steps"
assert [r["step"] for r in va] == [r["step"] for r in vb] == [0, 3, 6], "validation steps"
worst = 0.0
def close(what, step, x, y, rel, floor):
    global worst
    d = abs(x - y) / max(abs(x), floor)
    worst = max(worst, d)
    assert d <= rel, f"{what} at step {step}: {x} vs {y}"
for a, b in zip(ta, tb):
    for k in ("loss", "score", "kl", "gold", "entropy", "ptx_loss", "value_loss", "ended",
              "response_len", "kl_coef", "clipfrac", "explained_var"):
        close(k, a["step"], a[k], b[k], 1e-3, 1e-2)
for a, b in zip(va, vb):
    for k in ("reward", "gold", "ended", "response_len"):
        close("validation " + k, a["step"], a[k], b[k], 1e-3, 1e-2)
print(f"{len(ta)} iterations and {len(va)} validations agree (worst relative difference {worst:.2g})")
if db:
    assert all(r["ranks"] == 2 and r["same"] for r in db), db
    print(f"{len(db)} checksum checks: both ranks hold the same parameters")
PY
}
compare "$T/p1.jsonl" "$T/p2.jsonl" || fail "one process vs two ranks"
[ "$(grep -c '"event":"dist"' "$T/p2.jsonl")" -ge 2 ] || fail "no checksum checks in p2.jsonl"
grep -q '"ranks": 2' "$T/p2/run.json" || fail "p2/run.json: ranks"
[ "$(grep -c "ppo train: $T/p2 done" "$T/p2.out")" -eq 1 ] || fail "rank 0 alone prints"

# stopped under two ranks at iteration 3, resumed in one process: it ends as the others do
mpi2 "$ppo" train "${A[@]}" --out "$T/p3" --log "$T/p3.jsonl" --stop-at 3 >"$T/p3.out" 2>&1 ||
    fail "mpirun ppo train --stop-at 3: $(tail -5 "$T/p3.out")"
"$ppo" train "${A[@]}" --out "$T/p3" --log "$T/p3.jsonl" --resume >>"$T/p3.out" 2>&1 ||
    fail "ppo train --resume: $(tail -5 "$T/p3.out")"
compare "$T/p1.jsonl" "$T/p3.jsonl" || fail "two ranks, then one"

# a batch smaller than the ranks is refused before anything is written
if mpi2 "$ppo" train "${A[@]}" --batch 1 --minibatch 1 --out "$T/p4" >"$T/p4.out" 2>&1; then
    fail "--batch 1 on 2 ranks was accepted"
fi
grep -q 'smaller than the 2 ranks' "$T/p4.out" || fail "batch < ranks: $(cat "$T/p4.out")"
[ ! -e "$T/p4" ] || fail "batch < ranks: OUT written"
echo "ok"
