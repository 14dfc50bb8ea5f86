#!/usr/bin/env bash
# sft train on the tiny world: world -> pretrain (tiny, trained vocabulary) -> SFT. The held-out
# demo loss falls below the base model's; OUT and OUT/best are complete; --stop-at + --resume
# (with or without the first run's flags) gives the bytes of an uninterrupted run; every bad demonstrations line (not JSON, not an
# object, a missing field, a wrong type, too long for the context) is "sft: error: FILE:LINE:"
# with exit 1 and nothing written; usage errors exit 2.
set -euo pipefail
: "${BIN:?BIN must be the absolute path of build/bin}"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
jnum() { sed -n "s/^ *\"$2\": \([-0-9.eE+]*\),\{0,1\}\$/\1/p" "$1" | head -n 1; }

"$BIN/sft" world --out w --seed 1 --size tiny >/dev/null
"$BIN/sft" pretrain --corpus w/corpus.train.txt --config tiny --seq 64 --vocab-size 1024 \
    --steps 60 --eval-every 0 --threads 1 --out base >/dev/null 2>&1
ARGS=(--base base --demos w/demos.train.jsonl --val-demos w/demos.val.jsonl --steps 40
      --eval-every 15 --threads 1)

# --help and usage errors
"$BIN/sft" train --help | grep -q -- '--val-demos' || fail "--help"
rc=0; "$BIN/sft" train "${ARGS[@]}" --out x --bogus 2>err.txt || rc=$?
[ $rc -eq 2 ] || fail "bad flag: exit $rc, expected 2"
rc=0; "$BIN/sft" train --demos w/demos.train.jsonl --out x 2>err.txt || rc=$?
[ $rc -eq 2 ] && grep -q -- '--base' err.txt || fail "missing --base: exit $rc"
rc=0; "$BIN/sft" train "${ARGS[@]}" --epochs 2 --out x 2>err.txt || rc=$?
[ $rc -eq 2 ] || fail "--epochs with --steps: exit $rc"

# bad lines: exit 1, "sft: error: FILE:LINE: ...", before anything is written
long=$(printf 'word %.0s' $(seq 400))
bad() { # bad NAME LINE-TEXT EXPECTED-MESSAGE-PART [flag]: line 3 of a copy of the demos is bad
    local flag=${4:---demos}
    { head -n 2 w/demos.train.jsonl; printf '%s\n' "$2"; tail -n +3 w/demos.train.jsonl; } >"$1.jsonl"
    local args=("${ARGS[@]}")
    if [ "$flag" = --demos ]; then args[3]="$1.jsonl"; else args[5]="$1.jsonl"; fi
    rc=0; "$BIN/sft" train "${args[@]}" --out "out-$1" --log "$1.log" 2>"$1.err" || rc=$?
    [ $rc -eq 1 ] || fail "$1: exit $rc, expected 1"
    grep -q "^sft: error: $1.jsonl:3: .*$3" "$1.err" || fail "$1: message: $(cat "$1.err")"
    [ ! -e "out-$1" ] && [ ! -e "$1.log" ] || fail "$1: output written"
}
bad notjson '{"prompt": "a", ' 'invalid JSON'
bad notobject '["prompt", "response"]' 'not a JSON object'
bad missing '{"prompt": "What is 2 plus 2?"}' 'missing "response"'
bad wrongtype '{"prompt": "What is 2 plus 2?", "response": 4}' '"response" must be a string'
bad toolong "{\"prompt\": \"Say it.\", \"response\": \"$long\"}" 'the context is 128'
bad valmissing '{"response": "4"}' 'missing "prompt"' --val-demos

# an uninterrupted run
"$BIN/sft" train "${ARGS[@]}" --out a --log a.jsonl >a.out 2>a.err
for f in config.json model.safetensors vocab.json merges.txt train_state.bin run.json \
    best/config.json best/model.safetensors best/vocab.json best/merges.txt best/run.json; do
    [ -s "a/$f" ] || fail "a/$f missing"
done
grep -q '"template": "rlhf-v1"' a/config.json || fail "config.json lacks rlhf.template"
grep -q '"status": "done"' a/run.json || fail "run.json status"
[ "$(grep -c '"event":"train"' a.jsonl)" -eq 40 ] || fail "log: 40 train events expected"
cat a.out
val=$(jnum a/run.json val_loss)
base=$(jnum a/run.json initial_val_loss)
awk -v v="$val" -v b="$base" 'BEGIN { exit !(v + 0 < b + 0) }' ||
    fail "held-out demo loss $val is not below the base model's $base"
cmp -s base/vocab.json a/vocab.json && cmp -s base/merges.txt a/merges.txt ||
    fail "the tokenizer was not copied from the base model"

# --stop-at, then --resume: the same bytes as the uninterrupted run
"$BIN/sft" train "${ARGS[@]}" --out b --stop-at 17 >b.out 2>&1
grep -q '"status": "stopped"' b/run.json || fail "stop-at: run.json status"
rc=0; "$BIN/sft" train "${ARGS[@]}" --out b 2>err.txt || rc=$?
[ $rc -eq 1 ] && grep -q 'already holds a checkpoint' err.txt || fail "overwrite guard: exit $rc"
"$BIN/sft" train "${ARGS[@]}" --out b --resume >>b.out 2>&1
cmp a/model.safetensors b/model.safetensors || fail "resume: model differs"
cmp a/best/model.safetensors b/best/model.safetensors || fail "resume: best model differs"
cmp a/train_state.bin b/train_state.bin || fail "resume: train_state.bin differs"
# a resume with another batch is refused, naming both values (exit 2: the command line)
rc=0; "$BIN/sft" train "${ARGS[@]}" --out b --resume --batch 4 2>err.txt || rc=$?
[ $rc -eq 2 ] && grep -q -- '--batch 4 differs from the run being resumed (--batch 16 in b/run.json)' \
    err.txt || fail "resume --batch 4: exit $rc: $(cat err.txt)"
# --resume alone restores every setting (--base, --demos, --steps, ...) and continues exactly
"$BIN/sft" train "${ARGS[@]}" --out c --stop-at 17 >c.out 2>&1
"$BIN/sft" train --out c --resume --threads 1 >>c.out 2>&1 || fail "bare resume: $(tail -3 c.out)"
cmp a/model.safetensors c/model.safetensors || fail "bare resume: model differs"
cmp a/train_state.bin c/train_state.bin || fail "bare resume: train_state.bin differs"
echo "ok"
