#!/usr/bin/env bash
# pipelines/headline.sh — InstructGPT's headline at toy scale (`make headline`, after
# `make demo`): labelers preferred a 1.3B aligned model to the 175B model it came from. Here a
# larger base + SFT model (the `medium` configuration: d 384, 6 layers, ~3x the demo model's
# parameters) is trained on the same world with the demo's tokenizer, and the demo's small
# PPO policy is judged against that larger SFT model by the gold judge, with its interval.
# Resumes like the demo (markers in OUT/stages).
#
# Environment (all optional): DEMO=runs/demo  OUT=runs/headline  BIN=build/bin  SEED=1
#   THREADS  CONFIG=medium  PRETRAIN_STEPS=800  SFT_STEPS=600 (the demo's step counts)  SFT_LR=6e-4  EVAL_K=2
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO=${DEMO:-runs/demo}
OUT=${OUT:-runs/headline}
BIN=${BIN:-build/bin}
SEED=${SEED:-1}
THREADS=${THREADS:-}
PRETRAIN_STEPS=${PRETRAIN_STEPS:-800}
SFT_STEPS=${SFT_STEPS:-600}
SFT_LR=${SFT_LR:-6e-4}
EVAL_K=${EVAL_K:-2}
CONFIG=${CONFIG:-medium}
SERVE_WAIT=${SERVE_WAIT:-120}
sft="$BIN/sft" reward="$BIN/reward" ppo="$BIN/ppo"
thr=(${THREADS:+--threads "$THREADS"})
M="$OUT/stages"
d="$DEMO/data"
STAGES=(pretrain sft eval)
PIPE=headline SERVE_MODEL="$DEMO/rm/best"
[ -f "$DEMO/stages/eval.done" ] || { echo "headline: error: run make demo first ($DEMO is not complete)" >&2; exit 1; }
mkdir -p "$M"
# shellcheck source=pipelines/lib.sh
source pipelines/lib.sh

t_all=$(now)
say "headline: $OUT against the demo's policy in $DEMO (load average $(cut -d' ' -f1-3 /proc/loadavg))"
# the demo's stage markers chain into this run's, so a new demo redoes the headline
prev=$(cat "$DEMO/stages/eval.done" | cut -d' ' -f1)

cmd=(--corpus "$d/corpus.train.txt" --val "$d/corpus.val.txt" --tokenizer "$DEMO/base"
     --config "$CONFIG" --steps "$PRETRAIN_STEPS" --out "$OUT/base" --seed "$SEED")
if begin pretrain "the larger base model ($CONFIG) with the demo's tokenizer" "${cmd[@]}"; then
    "$sft" pretrain "${cmd[@]}" "$(resume_flag "$OUT/base" "$OUT/base.log.jsonl")" \
        --log "$OUT/base.log.jsonl" "${thr[@]}"
    trained "$OUT/base"
    finish
fi

cmd=(--base "$OUT/base/best" --demos "$d/demos.train.jsonl" --val-demos "$d/demos.val.jsonl"
     --steps "$SFT_STEPS" --lr "$SFT_LR" --eval-every "$(((SFT_STEPS + 2) / 3))" --out "$OUT/sft"
     --seed "$SEED")
if begin sft "supervised fine-tuning of the larger model" "${cmd[@]}"; then
    "$sft" train "${cmd[@]}" "$(resume_flag "$OUT/sft" "$OUT/sft.log.jsonl")" \
        --log "$OUT/sft.log.jsonl" "${thr[@]}"
    trained "$OUT/sft"
    finish
fi

if begin eval "the demo's PPO policy against the larger SFT model" "$EVAL_K"; then
    start_server
    "$sft" eval --model "$OUT/sft/best" --demos "$d/demos.val.jsonl" --out "$OUT/sft.demos.json" \
        --seed "$SEED" "${thr[@]}"
    "$ppo" eval --policy "$DEMO/ppo" --baseline "$OUT/sft/best" --reward "$EP" \
        --prompts "$d/prompts.val.jsonl" --judge simulated --k "$EVAL_K" --seed "$SEED" --timeout 60 --tries 2 \
        --out "$OUT/ppo_vs_medium_sft.jsonl" --json "${thr[@]}" > "$OUT/ppo_vs_medium_sft.json"
    finish
fi
stop_server

secs=$(awk -v a="$t_all" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
node - "$OUT" "$DEMO" "$secs" <<'JS' | tee "$OUT/results.txt"
const [out, demo, secs] = process.argv.slice(2);
const fs = require('fs');
const read = (f) => JSON.parse(fs.readFileSync(f, 'utf8'));
const e = read(`${out}/ppo_vs_medium_sft.json`);
const params = (dir) => { const c = read(`${dir}/config.json`); const C = c.n_embd, L = c.n_layer;
  return (c.vocab_size * C + c.n_positions * C + L * 12 * C * C) / 1e6; };
const t = (s) => Number(((fs.readFileSync(`${out}/stages/${s}.done`, 'utf8').split(' ')[1]) || 0));
const f = (x, d = 3) => x.toFixed(d);
console.log(`\n== the headline at toy scale (${out}; pretrain ${t('pretrain')} s, SFT ${t('sft')} s, eval ${t('eval')} s; ${secs} s this run)`);
console.log(`demo PPO policy (${f(params(`${demo}/ppo`), 2)}M parameters) vs the larger SFT model (${f(params(`${out}/sft/best`), 2)}M), ` +
            `${e.n} held-out prompts x ${e.k}:`);
console.log(`  gold score       PPO ${f(e.gold_policy)} [${f(e.gold_policy_ci[0])}, ${f(e.gold_policy_ci[1])}]   ` +
            `larger SFT ${f(e.gold_baseline)} [${f(e.gold_baseline_ci[0])}, ${f(e.gold_baseline_ci[1])}]`);
console.log(`  gold win rate    ${f(e.gold_win_rate)} [${f(e.gold_win_rate_ci[0])}, ${f(e.gold_win_rate_ci[1])}] ` +
            `(${e.gold_wins} wins, ${e.gold_ties} ties, ${e.gold_losses} losses)`);
console.log(`  reward win rate  ${f(e.win_rate)} [${f(e.win_rate_ci[0])}, ${f(e.win_rate_ci[1])}]`);
JS
