#!/usr/bin/env bash
# pipelines/instructgpt.sh — InstructGPT's three stages on the embedded default world, as
# `make demo` runs it:
#   world -> pretrain -> SFT -> K completions per prompt into SQLite -> rankings (simulated
#   labeler; with HUMAN=N a person ranks N prompts first) -> reward model -> reward serve ->
#   PPO-ptx -> evaluation of base / SFT / PPO on held-out data -> table, summary.json, curves.
#
# Every stage leaves a marker, OUT/stages/NAME.done, holding a hash of its settings chained
# with the hashes of the stages before it, and the seconds it took. A stage whose marker
# matches is skipped, so a re-run resumes; a stage whose settings (or an earlier stage's)
# changed runs again, and so does every stage after it. A training stage stopped part-way
# (Ctrl-C) continues its checkpoint with --resume when its settings are unchanged.
# `reward serve` runs in the background only for the stages that need it, on a free loopback
# port, and is stopped when the script exits for any reason (done, failure, Ctrl-C, SIGTERM).
#
# Environment (all optional):
#   OUT=runs/demo (QUICK=1: runs/demo-quick)  where everything goes
#   QUICK=1        a tiny configuration (tiny world and model, a few steps per stage): an
#                  end-to-end check of the plumbing in about a minute (make test runs it)
#   HUMAN=N        rank N prompts yourself in `reward label` first (this terminal)
#   BIN=build/bin  the programs     SEED=1  one seed for the whole run
#   THREADS        --threads for every program (default: all cores)
#   Stage sizes (defaults below): PRETRAIN_STEPS SFT_STEPS SFT_LR SAMPLE_PROMPTS K
#   RM_EPOCHS RM_LR PPO_STEPS PPO_BATCH PPO_ARGS EVAL_PROMPTS EVAL_K
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
[ "$QUICK" = 0 ] || QUICK=1
if [ "$QUICK" = 1 ]; then
    OUT=${OUT:-runs/demo-quick}
    WORLD_SIZE=tiny CONFIG=tiny VOCAB=512
    : "${PRETRAIN_STEPS:=60}" "${SFT_STEPS:=60}" "${SFT_LR:=3e-3}" "${SAMPLE_PROMPTS:=40}" "${K:=3}"
    : "${RM_EPOCHS:=1}" "${RM_LR:=3e-4}" "${RM_BATCH:=8}" "${PPO_STEPS:=3}" "${PPO_BATCH:=8}"
    : "${EVAL_PROMPTS:=16}" "${EVAL_K:=2}" "${SERVE_WAIT:=30}"
else
    OUT=${OUT:-runs/demo}
    WORLD_SIZE=small CONFIG=small VOCAB=2048
    : "${PRETRAIN_STEPS:=800}" "${SFT_STEPS:=600}" "${SFT_LR:=1e-3}" "${SAMPLE_PROMPTS:=2000}" "${K:=4}"
    : "${RM_EPOCHS:=1}" "${RM_LR:=1e-4}" "${RM_BATCH:=8}" "${PPO_STEPS:=150}" "${PPO_BATCH:=16}"
    : "${EVAL_PROMPTS:=300}" "${EVAL_K:=2}" "${SERVE_WAIT:=120}"
fi
BIN=${BIN:-build/bin}
SEED=${SEED:-1}
THREADS=${THREADS:-}
HUMAN=${HUMAN:-0}
PPO_ARGS=${PPO_ARGS:-}
SAMPLE_MAX_NEW=${SAMPLE_MAX_NEW:-48}

sft="$BIN/sft" reward="$BIN/reward" ppo="$BIN/ppo"
thr=(${THREADS:+--threads "$THREADS"})
M="$OUT/stages"
d="$OUT/data"
STAGES=(world pretrain sft sample label rm ppo eval)
mkdir -p "$M" "$OUT/eval"

PIPE=instructgpt SERVE_MODEL="$OUT/rm/best"
# shellcheck source=pipelines/lib.sh
source pipelines/lib.sh

t_all=$(now)
say "instructgpt: $OUT (seed $SEED$([ "$QUICK" = 1 ] && echo ', QUICK'); load average $(cut -d' ' -f1-3 /proc/loadavg))"

if begin world "corpus, demonstrations and prompts" "$WORLD_SIZE" "$SEED"; then
    "$sft" world --out "$d" --size "$WORLD_SIZE" --seed "$SEED"
    finish
fi

cmd=(--corpus "$d/corpus.train.txt" --val "$d/corpus.val.txt" --vocab-size "$VOCAB"
     --config "$CONFIG" --steps "$PRETRAIN_STEPS" --out "$OUT/base" --seed "$SEED")
if begin pretrain "BPE vocabulary + base GPT-2 ($CONFIG) on corpus.train.txt" "${cmd[@]}"; then
    "$sft" pretrain "${cmd[@]}" "$(resume_flag "$OUT/base" "$OUT/base.log.jsonl")" --log "$OUT/base.log.jsonl" "${thr[@]}"
    trained "$OUT/base"
    finish
fi

cmd=(--base "$OUT/base/best" --demos "$d/demos.train.jsonl" --val-demos "$d/demos.val.jsonl"
     --steps "$SFT_STEPS" --lr "$SFT_LR" --eval-every "$(((SFT_STEPS + 2) / 3))" --out "$OUT/sft"
     --seed "$SEED")
if begin sft "supervised fine-tuning on demos.train.jsonl" "${cmd[@]}"; then
    "$sft" train "${cmd[@]}" "$(resume_flag "$OUT/sft" "$OUT/sft.log.jsonl")" --log "$OUT/sft.log.jsonl" "${thr[@]}"
    trained "$OUT/sft"
    finish
fi

# The SFT model's K completions of each training prompt, for ranking. samples.db is the
# untouched sample; the label stage ranks a copy of it (rankings.db), so changing the
# labeling redoes only the labeling.
cmd=(--model "$OUT/sft/best" --prompts "$d/prompts.sample.jsonl" --k "$K" --max-new "$SAMPLE_MAX_NEW"
     --seed "$SEED")
if begin sample "$K completions of each of $SAMPLE_PROMPTS prompts into SQLite" "${cmd[@]}" \
    "$SAMPLE_PROMPTS"; then
    head -n "$SAMPLE_PROMPTS" "$d/prompts.train.jsonl" > "$d/prompts.sample.jsonl"
    [ "$stage_fresh" = 0 ] || rm -f "$OUT/samples.db" "$OUT/samples.db-wal" "$OUT/samples.db-shm"
    # a rerun after an interruption adds only the prompts still missing
    "$sft" sample "${cmd[@]}" --db "$OUT/samples.db" "${thr[@]}"
    finish
fi

if begin label "rankings: $HUMAN by you, the rest by the simulated labeler" "$HUMAN" "$SEED"; then
    db="$OUT/rankings.db"
    if [ "$stage_fresh" = 1 ] || [ ! -f "$db" ]; then
        rm -f "$db" "$db-wal" "$db-shm" "$M/label.human"
        cp "$OUT/samples.db" "$db.tmp" && mv "$db.tmp" "$db"
    fi
    if [ "$HUMAN" -gt 0 ] && [ ! -f "$M/label.human" ]; then
        say "   your turn: rank $HUMAN prompts (best first, e.g. 3>1=4>2; ? for help; q to stop early)"
        "$reward" label --db "$db" --labeler "${USER:-you}" --limit "$HUMAN"
        touch "$M/label.human"
    fi
    "$reward" label --db "$db" --simulated --seed "$SEED"
    finish
fi

cmd=(--db "$OUT/rankings.db" --init "$OUT/sft/best" --out "$OUT/rm" --demos "$d/demos.train.jsonl"
     --val-demos "$d/demos.val.jsonl" --epochs "$RM_EPOCHS" --lr "$RM_LR" --batch "$RM_BATCH" --seed "$SEED")
if begin rm "reward model from the SFT model, on the rankings" "${cmd[@]}"; then
    "$reward" train "${cmd[@]}" "$(resume_flag "$OUT/rm" "$OUT/rm.log.jsonl")" --log "$OUT/rm.log.jsonl" "${thr[@]}"
    trained "$OUT/rm"
    "$reward" eval --model "$OUT/rm/best" --db "$OUT/rankings.db" --json > "$OUT/eval/rm.json"
    finish
fi

# shellcheck disable=SC2206
cmd=(--sft "$OUT/sft/best" --value-init "$OUT/rm/best" --prompts "$d/prompts.train.jsonl"
     --corpus "$d/corpus.train.txt" --steps "$PPO_STEPS" --batch "$PPO_BATCH" --judge simulated
     --out "$OUT/ppo" --seed "$SEED" $PPO_ARGS)
if begin ppo "PPO-ptx against the served reward model" "${cmd[@]}"; then
    start_server
    "$ppo" train "${cmd[@]}" --reward "$EP" "$(resume_flag "$OUT/ppo" "$OUT/ppo.log.jsonl")" --log "$OUT/ppo.log.jsonl" \
        "${thr[@]}"
    trained "$OUT/ppo"
    finish
fi

# Evaluation on held-out data. (ppo eval sends all of a model's samples in one request, which
# the server scores pair by pair: --timeout 60 lets it answer a few hundred.) ppo eval pairs sample k of the policy with sample k of the
# baseline (the SFT model) under one seed; the base model is evaluated against the SFT model
# with the same sampling settings, so the SFT figures of both runs are the same samples.
if begin eval "base / SFT / PPO on held-out prompts and demonstrations" "$EVAL_K" \
    "$EVAL_PROMPTS"; then
    head -n "$EVAL_PROMPTS" "$d/prompts.val.jsonl" > "$d/prompts.eval.jsonl"
    start_server
    for m in base sft ppo; do
        dir="$OUT/$m/best"
        [ "$m" != ppo ] || dir="$OUT/ppo"
        "$sft" eval --model "$dir" --demos "$d/demos.val.jsonl" --out "$OUT/eval/$m.demos.json" \
            --seed "$SEED" "${thr[@]}"
    done
    "$ppo" eval --policy "$OUT/ppo" --baseline "$OUT/sft/best" --reward "$EP" \
        --prompts "$d/prompts.eval.jsonl" --judge simulated --k "$EVAL_K" --seed "$SEED" --timeout 60 --tries 2 \
        --out "$OUT/eval/ppo_vs_sft.jsonl" --json "${thr[@]}" > "$OUT/eval/ppo_vs_sft.json"
    s="$OUT/eval/ppo_vs_sft.json"
    "$ppo" eval --policy "$OUT/base/best" --baseline "$OUT/sft/best" --reward "$EP" \
        --prompts "$d/prompts.eval.jsonl" --judge simulated --k "$EVAL_K" --seed "$SEED" --timeout 60 --tries 2 \
        --temperature "$(js "$s" o.sampling.temperature)" --top-p "$(js "$s" o.sampling.top_p)" \
        --top-k "$(js "$s" o.sampling.top_k)" --max-new "$(js "$s" o.sampling.max_new)" \
        --out "$OUT/eval/base_vs_sft.jsonl" --json "${thr[@]}" > "$OUT/eval/base_vs_sft.json"
    finish
fi
stop_server

# ---- the curves -------------------------------------------------------------------------------
say ""
say "== curves"
plots=()
plot() { # OUT.png TITLE PANEL...
    if bash pipelines/plot.sh "$@"; then plots+=("$1"); else say "   (no picture $1)"; fi
}
plot "$OUT/base.png" "pretraining (sft pretrain)" \
    "loss (nats/token)=$OUT/base.log.jsonl:train:loss:train,$OUT/base.log.jsonl:val:loss:held-out"
plot "$OUT/sft.png" "supervised fine-tuning (sft train)" \
    "loss (nats/response token)=$OUT/sft.log.jsonl:train:loss:train,$OUT/sft.log.jsonl:val:loss:held-out"
plot "$OUT/rm.png" "reward model (reward train)" \
    "held-out pairwise accuracy=$OUT/rm.log.jsonl:val:accuracy:held-out" \
    "ranking loss=$OUT/rm.log.jsonl:train:loss:train,$OUT/rm.log.jsonl:val_loss:loss:held-out"
plot "$OUT/ppo.png" "PPO-ptx (ppo train)" \
    "reward model score=$OUT/ppo.log.jsonl:train:score:rollouts,$OUT/ppo.log.jsonl:ppo_val:reward:held-out" \
    "gold score (judge)=$OUT/ppo.log.jsonl:train:gold:rollouts,$OUT/ppo.log.jsonl:ppo_val:gold:held-out" \
    "KL to SFT (nats/reply)=$OUT/ppo.log.jsonl:train:kl:rollouts"

# ---- the table and summary.json ---------------------------------------------------------------
secs=$(awk -v a="$t_all" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
node pipelines/summary.js "$OUT" "$secs" "$(cut -d' ' -f1-3 /proc/loadavg)" "${STAGES[*]}" \
    "${plots[*]}" | tee "$OUT/results.txt"
