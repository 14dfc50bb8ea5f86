#!/usr/bin/env bash
# sft pretrain on the tiny world: trains a vocabulary and a tiny model; the held-out loss falls
# below the unigram baseline; OUT and OUT/best hold complete model directories and run.json;
# --stop-at + --resume and Ctrl-C + --resume give the same bytes as an uninterrupted run, and
# --resume needs none of the first run's flags (one given with another value is refused);
# a NaN loss stops with exit 1 and the last good checkpoint intact; usage errors exit 2.
set -euo pipefail
: "${BIN:?BIN must be the absolute path of build/bin}"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
# jnum FILE KEY: the first number written as "KEY": N in a run.json
jnum() { sed -n "s/^ *\"$2\": \([-0-9.eE+]*\),\{0,1\}\$/\1/p" "$1" | head -n 1; }

"$BIN/sft" world --out w --seed 1 --size tiny >/dev/null
ARGS=(--corpus w/corpus.train.txt --val w/corpus.val.txt --config tiny --seq 64 --steps 100
      --eval-every 25 --threads 1)

# --help, usage errors, a missing file
"$BIN/sft" pretrain --help | grep -q -- '--vocab-size' || fail "--help"
rc=0; "$BIN/sft" pretrain --corpus w/corpus.train.txt --out x --bogus 2>err.txt || rc=$?
[ $rc -eq 2 ] || fail "bad flag: exit $rc, expected 2"
rc=0; "$BIN/sft" pretrain --corpus w/corpus.train.txt --out x 2>err.txt || rc=$?
[ $rc -eq 2 ] && grep -q -- '--vocab-size N or --tokenizer DIR is required' err.txt ||
    fail "no vocabulary: exit $rc"
rc=0; "$BIN/sft" pretrain --corpus w/corpus.train.txt --out x --vocab-size 600 --steps 0 \
    2>err.txt || rc=$?
[ $rc -eq 2 ] || fail "--steps 0: exit $rc"
rc=0; "$BIN/sft" pretrain --corpus missing.txt --out x --vocab-size 600 2>err.txt || rc=$?
[ $rc -eq 1 ] && grep -q 'missing.txt' err.txt && [ ! -e x ] || fail "missing corpus: exit $rc"

# an uninterrupted run with a trained vocabulary
"$BIN/sft" pretrain "${ARGS[@]}" --vocab-size 1024 --out a --log a.jsonl >a.out 2>a.err
for f in config.json model.safetensors vocab.json merges.txt train_state.bin run.json \
    best/config.json best/model.safetensors best/vocab.json best/merges.txt best/run.json; do
    [ -s "a/$f" ] || fail "a/$f missing"
done
grep -q '"template": "rlhf-v1"' a/config.json || fail "config.json lacks rlhf.template"
grep -q '"status": "done"' a/run.json || fail "run.json status"
grep -q 'unigram' a.out || fail "the summary lacks the unigram entropy"
[ "$(grep -c '"event":"train"' a.jsonl)" -eq 100 ] || fail "log: 100 train events expected"
grep -q '"event":"val"' a.jsonl || fail "log: no val events"
val=$(jnum a/run.json val_loss)
uni=$(jnum a/run.json unigram_nats)
init=$(jnum a/run.json initial_val_loss)
echo "held-out loss $val, unigram baseline $uni, at initialisation $init"
awk -v v="$val" -v u="$uni" -v i="$init" 'BEGIN { exit !(v + 0 < u + 0 && u + 0 < i + 0) }' ||
    fail "held-out loss $val is not below the unigram baseline $uni"

# a checkpoint is not overwritten by accident
rc=0; "$BIN/sft" pretrain "${ARGS[@]}" --vocab-size 1024 --out a 2>err.txt || rc=$?
[ $rc -eq 1 ] && grep -q 'already holds a checkpoint' err.txt || fail "overwrite guard: exit $rc"

# --stop-at, then --resume: the same bytes as the uninterrupted run
"$BIN/sft" pretrain "${ARGS[@]}" --vocab-size 1024 --out b --stop-at 33 >b.out 2>&1
grep -q '"status": "stopped"' b/run.json || fail "stop-at: run.json status"
"$BIN/sft" pretrain "${ARGS[@]}" --out b --resume >>b.out 2>&1
cmp a/model.safetensors b/model.safetensors || fail "resume: model differs"
cmp a/best/model.safetensors b/best/model.safetensors || fail "resume: best model differs"
cmp a/train_state.bin b/train_state.bin || fail "resume: train_state.bin differs"

# --resume restores every setting of run.json: none of the first run's flags is needed, and
# the result is the uninterrupted run's bytes; a flag given again must keep its value
"$BIN/sft" pretrain "${ARGS[@]}" --vocab-size 1024 --out e --stop-at 33 >e.out 2>&1
rc=0; "$BIN/sft" pretrain --corpus w/corpus.train.txt --out e --resume --batch 4 2>err.txt || rc=$?
[ $rc -eq 2 ] && grep -q -- '--batch 4 differs from the run being resumed (--batch 8 in e/run.json)' \
    err.txt || fail "resume --batch 4: exit $rc: $(cat err.txt)"
rc=0; "$BIN/sft" pretrain --out e --resume --lr 0.01 2>err.txt || rc=$?
[ $rc -eq 2 ] && grep -q -- '--lr 0.01 differs .*(--lr 0.003 in' err.txt ||
    fail "resume --lr: exit $rc: $(cat err.txt)"
cmp -s b/model.safetensors e/model.safetensors && fail "refused resumes changed the checkpoint"
"$BIN/sft" pretrain --corpus w/corpus.train.txt --out e --resume --threads 1 >>e.out 2>&1 ||
    fail "bare resume: $(tail -3 e.out)"
grep -q '"status": "done"' e/run.json || fail "bare resume: run.json status"
cmp a/model.safetensors e/model.safetensors || fail "bare resume: model differs"
cmp a/train_state.bin e/train_state.bin || fail "bare resume: train_state.bin differs"
rc=0; "$BIN/sft" pretrain --out nothing-here --resume 2>err.txt || rc=$?
[ $rc -eq 1 ] && grep -q 'nothing-here/run.json' err.txt || fail "resume of no run: exit $rc"

# Ctrl-C stops after a step, saves, exits 0; resuming to step 40 gives the bytes of a run
# that stopped at step 40 by itself (both have the same long schedule)
LONG=("${ARGS[@]}" --steps 100000)
"$BIN/sft" pretrain "${LONG[@]}" --vocab-size 1024 --out c --log c.jsonl >c.out 2>&1 &
pid=$!
for _ in $(seq 600); do
    grep -q '"step":5,' c.jsonl 2>/dev/null && break
    sleep 0.05
done
kill -INT $pid
rc=0; wait $pid || rc=$?
[ $rc -eq 0 ] || fail "Ctrl-C: exit $rc"
grep -q '"status": "stopped"' c/run.json || fail "Ctrl-C: run.json status"
stopped=$(jnum c/run.json step)
[ "$stopped" -lt 40 ] || fail "Ctrl-C came too late (step $stopped)"
"$BIN/sft" pretrain "${LONG[@]}" --out c --resume --stop-at 40 >>c.out 2>&1
"$BIN/sft" pretrain "${LONG[@]}" --vocab-size 1024 --out d --stop-at 40 >d.out 2>&1
cmp c/model.safetensors d/model.safetensors || fail "Ctrl-C at step $stopped + resume: differs"

# a NaN loss: exit 1, run.json "failed", the last checkpoint intact and resumable
NAN=("${ARGS[@]}" --lr 1000 --warmup 0 --grad-clip 0 --eval-every 5)
rc=0; "$BIN/sft" pretrain "${NAN[@]}" --vocab-size 1024 --out n >/dev/null 2>n.err || rc=$?
[ $rc -eq 1 ] || fail "NaN: exit $rc"
grep -q 'loss is NaN\|loss is infinite\|gradient norm is' n.err || fail "NaN: $(cat n.err)"
grep -q '"status": "failed"' n/run.json || fail "NaN: run.json status"
step=$(sed -n 's/.*the last good checkpoint (step \([0-9]*\)).*/\1/p' n.err)
[ -n "$step" ] || fail "NaN: no checkpoint named in: $(cat n.err)"
"$BIN/sft" pretrain "${NAN[@]}" --out n --resume --stop-at "$step" >/dev/null 2>&1 ||
    fail "NaN: the checkpoint of step $step does not resume"
echo "ok"
