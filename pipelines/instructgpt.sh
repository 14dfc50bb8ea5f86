#!/usr/bin/env bash
# pipelines/instructgpt.sh — the InstructGPT pipeline on the embedded default world, as
# `make demo` runs it. Stages so far: world -> pretrain (base model + BPE vocabulary) ->
# supervised fine-tuning -> evaluation of base vs SFT (held-out demonstration loss and the
# gold judge's score of their samples). The reward-model and PPO stages join as they land.
#
# Environment (all optional):
#   OUT=runs/demo      where everything goes (data/, base/, sft/, eval/, *.log.jsonl)
#   BIN=build/bin      the programs
#   SEED=1             one seed for the whole run
#   THREADS            --threads for every program (default: all cores)
#   PRETRAIN_STEPS=800, SFT_STEPS=600, SFT_LR=1e-3, JUDGE_K=2: the stages' sizes (the defaults
#   take about 6 minutes on 2 idle cores; measured settings, see README)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-runs/demo}
BIN=${BIN:-build/bin}
SEED=${SEED:-1}
THREADS=${THREADS:-}
PRETRAIN_STEPS=${PRETRAIN_STEPS:-800}
SFT_STEPS=${SFT_STEPS:-600}
SFT_LR=${SFT_LR:-1e-3}
JUDGE_K=${JUDGE_K:-2}
sft="$BIN/sft"
common=(--seed "$SEED" ${THREADS:+--threads "$THREADS"})

stage() { printf '\n== %s\n' "$*" >&2; }
seconds() { date +%s; }
t0=$(seconds)
mkdir -p "$OUT/eval"

stage "1/4 world: corpus, demonstrations and prompts (seed $SEED)"
"$sft" world --out "$OUT/data" --seed "$SEED"
d="$OUT/data"

stage "2/4 pretrain: BPE vocabulary + base GPT-2 (small: d 256, 4 layers) on corpus.train.txt"
"$sft" pretrain --corpus "$d/corpus.train.txt" --val "$d/corpus.val.txt" --vocab-size 2048 \
    --config small --steps "$PRETRAIN_STEPS" --out "$OUT/base" --overwrite \
    --log "$OUT/base.log.jsonl" "${common[@]}"

stage "3/4 supervised fine-tuning on demos.train.jsonl"
"$sft" train --base "$OUT/base/best" --demos "$d/demos.train.jsonl" \
    --val-demos "$d/demos.val.jsonl" --steps "$SFT_STEPS" --lr "$SFT_LR" \
    --eval-every 200 --out "$OUT/sft" --overwrite \
    --log "$OUT/sft.log.jsonl" "${common[@]}"

stage "4/4 evaluation on held-out data: base vs SFT"
for m in base sft; do
    "$sft" eval --model "$OUT/$m/best" --demos "$d/demos.val.jsonl" \
        --out "$OUT/eval/$m.demos.json" "${common[@]}"
    "$sft" eval --model "$OUT/$m/best" --judge simulated --prompts "$d/prompts.val.jsonl" \
        --k "$JUDGE_K" --out "$OUT/eval/$m.judge.json" "${common[@]}"
done

# The results table, from the JSON files sft eval wrote (node is on the machine: make deps
# needs npm for GPT-2's tokenizer files).
node - "$OUT" "$(($(seconds) - t0))" <<'JS' | tee "$OUT/results.txt"
const [out, secs] = process.argv.slice(2);
const read = (f) => JSON.parse(require('fs').readFileSync(`${out}/${f}`, 'utf8'));
const pad = (s, n) => String(s).padStart(n);
const base = read('base/run.json').results;
console.log(`\n== results on held-out data, ${secs} s in all`);
console.log(`corpus.val.txt: base model ${base.best_val_loss.toFixed(4)} nats/token ` +
            `(unigram entropy baseline ${base.unigram_nats.toFixed(4)}, untrained ${base.initial_val_loss.toFixed(4)})`);
console.log(`demos.val.jsonl loss per response token; gold judge on prompts.val.jsonl (range -1..1):`);
console.log(`${'model'.padEnd(6)} ${pad('demo loss', 10)} ${pad('perplexity', 10)} ${pad('gold score', 11)}  95% interval  ended`);
for (const [name, m] of [['base', 'base'], ['SFT', 'sft']]) {
  const d = read(`eval/${m}.demos.json`), j = read(`eval/${m}.judge.json`);
  const ci = j.ci95 ? `[${j.ci95[0].toFixed(3)}, ${j.ci95[1].toFixed(3)}]` : '(n/a)';
  console.log(`${name.padEnd(6)} ${pad(d.loss.toFixed(4), 10)} ${pad(d.perplexity.toFixed(2), 10)} ` +
              `${pad(j.mean.toFixed(3), 11)}  ${ci}  ${(100 * j.ended).toFixed(0)}%`);
}
JS
