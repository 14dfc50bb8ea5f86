#!/usr/bin/env bash
# reward train / eval / score on a tiny world-like database: world prompts with K = 4
# completions by the world's demonstrator (tests/it/world_db.c, through common/store), ranked by
# `reward label --simulated`, and a tiny pretrained GPT-2 as the starting model.
#   train: a score-head model loadable as GPT2ForSequenceClassification (no pad_token_id), OUT
#          and OUT/best complete, the training demonstrations score mean 0 with the bias, the
#          validation accuracy learned above chance; --stop-at + --resume gives the bytes of an
#          uninterrupted run (config.json's bias included); bad inputs (an LM where a reward
#          model is needed and the reverse, a database with no rankings, a missing database)
#          are clear errors that write nothing; usage errors exit 2.
#   eval:  the report and --json (accuracy inside its interval, the gold section on the world's
#          prompts), --comparisons in both formats, a bad comparisons line named FILE:LINE.
#   score: one {"score": x} per line in order, equal to a second run bit for bit, and a bad
#          line is FILE:LINE with nothing written.
set -euo pipefail
: "${BIN:?BIN must be the absolute path of build/bin}"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
R="$BIN/reward"
# jget FILE EXPR: a value from a JSON file (python3's json; EXPR indexes `d`)
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

"$BIN/sft" world --out w --size tiny --seed 1 >/dev/null
"$BIN/sft" pretrain --corpus w/corpus.train.txt --out base --config tiny --vocab-size 512 \
    --steps 30 --seed 1 --threads 1 >pre.log 2>&1 || { cat pre.log; fail "pretrain"; }
"$BIN/it/world_db" r.db 200 4 2
"$R" label --db r.db --simulated --seed 1 >label.out 2>&1 || { cat label.out; fail "label"; }
"$BIN/it/world_db" empty.db 5 4 1 # prompts and completions, no ranking

ARGS=(--db r.db --init base --steps 24 --eval-every 8 --lr 1e-3 --batch 4 --val-fraction 0.2
      --demos w/demos.train.jsonl --val-demos w/demos.val.jsonl --threads 1)

# --help, usage errors (exit 2)
"$R" train --help | grep -q -- '--val-fraction' || fail "train --help"
"$R" --help | grep -q 'score' || fail "reward --help lists score"
rc=0; "$R" train --init base --out x 2>err.txt || rc=$?
[ $rc -eq 2 ] && grep -q -- '--db' err.txt || fail "missing --db: exit $rc"
rc=0; "$R" train "${ARGS[@]}" --epochs 2 --out x 2>err.txt || rc=$?
[ $rc -eq 2 ] || fail "--epochs with --steps: exit $rc"
rc=0; "$R" eval --model base 2>err.txt || rc=$?
[ $rc -eq 2 ] && grep -q -- '--db and --comparisons' err.txt || fail "eval without a source: $rc"

# bad inputs: exit 1, a clear message, nothing written
bad_train() { # NAME EXPECTED-MESSAGE-PART ARGS...
    local name=$1 msg=$2
    shift 2
    rc=0; "$R" train "$@" --out "out-$name" 2>"$name.err" >/dev/null || rc=$?
    [ $rc -eq 1 ] || fail "$name: exit $rc, expected 1: $(cat "$name.err")"
    grep -q "^reward: error: .*$msg" "$name.err" || fail "$name: message: $(cat "$name.err")"
    [ ! -e "out-$name" ] || fail "$name: output written"
}
bad_train norankings 'empty.db: no ranking with a pair in the training split' \
    --db empty.db --init base --steps 2
bad_train nodb 'nope.db' --db nope.db --init base --steps 2

# an uninterrupted run
"$R" train "${ARGS[@]}" --out a --log a.jsonl >a.out 2>a.err || { cat a.err; fail "train"; }
cat a.out
for f in config.json model.safetensors vocab.json merges.txt train_state.bin run.json \
    best/config.json best/model.safetensors best/vocab.json best/merges.txt best/run.json; do
    [ -s "a/$f" ] || fail "a/$f missing"
done
[ "$(jget a/config.json 'd["architectures"][0]')" = GPT2ForSequenceClassification ] ||
    fail "architecture"
[ "$(jget a/config.json 'd.get("pad_token_id")')" = None ] || fail "pad_token_id is set"
[ "$(jget a/config.json 'd["num_labels"]')" = 1 ] || fail "num_labels"
# the safetensors header names the score head and the transformer.-prefixed trunk
head -c 4000 a/model.safetensors | grep -q '"score.weight":{"dtype":"F32","shape":\[1,32\]' ||
    fail "score.weight (1, 32) missing"
head -c 4000 a/model.safetensors | grep -q '"transformer.h.0.attn.c_attn.weight"' ||
    fail "transformer. prefix missing"
[ "$(grep -c '"event":"train"' a.jsonl)" -eq 24 ] || fail "log: 24 train events expected"
grep -q '"status": "done"' a/run.json || fail "run.json status"
init=$(jget a/run.json 'd["results"]["initial_val_accuracy"]')
best=$(jget a/run.json 'd["results"]["best_val_accuracy"]')
[ "$init" = 0.5 ] || fail "a zero score head starts at chance: initial accuracy $init"
awk -v b="$best" 'BEGIN { exit !(b > 0.55) }' || fail "best validation accuracy $best <= 0.55"
# the bias: training demonstrations score mean 0 under reward score (OUT and OUT/best)
for m in a a/best; do
    bias=$(jget "$m/config.json" 'd["rlhf"]["reward_bias"]')
    [ "$bias" != 0.0 ] || fail "$m: reward_bias not set"
    python3 -c 'import sys; a, b = map(float, sys.argv[1:]); sys.exit(abs(a - b) > 1e-12 * abs(a))' \
        "$(jget "$m/run.json" 'd["results"]["reward_bias"]')" "$bias" ||
        fail "$m: run.json reward_bias differs from config.json's"
    "$R" score --model "$m" --in w/demos.train.jsonl --out demo.scores 2>/dev/null
    [ "$(wc -l <demo.scores)" -eq "$(grep -c . w/demos.train.jsonl)" ] || fail "one score a line"
    python3 - "$m" demo.scores <<'PY' || fail "$m: training demonstrations do not score mean 0"
import json, sys
s = [json.loads(l)["score"] for l in open(sys.argv[2])]
mean = sum(s) / len(s)
sd = (sum((x - mean) ** 2 for x in s) / (len(s) - 1)) ** 0.5
print(f"{sys.argv[1]}: demonstrations mean {mean:.3g} (sd {sd:.3g})")
sys.exit(0 if abs(mean) < 1e-3 * max(sd, 1e-3) else 1)
PY
done
# an LM where a reward model is needed, a reward model where an LM is needed
rc=0; "$R" score --model base --in w/demos.val.jsonl >o.txt 2>err.txt || rc=$?
[ $rc -eq 1 ] && grep -q 'needs a reward model' err.txt && [ ! -s o.txt ] || fail "score an LM: $rc"
bad_train rminit 'needs a language model' --db r.db --init a --steps 2

# --stop-at, then --resume: the same bytes as the uninterrupted run
"$R" train "${ARGS[@]}" --out b --stop-at 11 >b.out 2>&1 || { cat b.out; fail "stop-at"; }
grep -q '"status": "stopped"' b/run.json || fail "stop-at: run.json status"
"$R" train "${ARGS[@]}" --out b --resume >>b.out 2>&1 || { cat b.out; fail "resume"; }
for f in model.safetensors train_state.bin config.json best/model.safetensors best/config.json; do
    cmp "a/$f" "b/$f" || fail "resume: $f differs"
done
"$R" train "${ARGS[@]}" --out c --stop-at 11 >c.out 2>&1
"$R" train --out c --resume --threads 1 >>c.out 2>&1 || { cat c.out; fail "bare resume"; }
cmp a/model.safetensors c/model.safetensors || fail "bare resume: model differs"

# eval: the report, --json, the gold section
"$R" eval --model a/best --db r.db >e.txt || fail "eval"
cat e.txt
grep -q 'val split, val-fraction 0.2' e.txt || fail "eval: val-fraction from run.json"
grep -q 'accuracy  .*against the labels' e.txt && grep -q 'gold judge' e.txt &&
    grep -q 'ceiling' e.txt || fail "eval report"
"$R" eval --model a/best --db r.db --json >e.json || fail "eval --json"
python3 - e.json a/run.json <<'PY' || fail "eval --json figures"
import json, sys
e, run = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
a, g = e["accuracy"], e["gold"]
assert e["split"] == "val" and e["pairs"] == run["results"]["val_pairs"] > 0, e
assert a["lo"] <= a["mean"] <= a["hi"] and a["n"] == e["pairs"]
# the accuracy training reported for best/ is what eval measures (same pairs, same model)
assert abs(a["mean"] - run["results"]["best_val_accuracy"]) < 1e-9, (a, run["results"])
assert g["prompts"] == e["prompts"] and 0 < g["ceiling"]["mean"] <= 1 and g["accuracy"]["n"] > 0
s = e["scores"]
assert s["min"] <= s["q05"] <= s["q25"] <= s["median"] <= s["q75"] <= s["q95"] <= s["max"]
PY
"$R" eval --model a/best --db r.db --split all --json >all.json
[ "$(jget all.json 'd["rankings"]')" -gt "$(jget e.json 'd["rankings"]')" ] || fail "--split all"
rc=0; "$R" eval --model base --db r.db 2>err.txt || rc=$?
[ $rc -eq 1 ] && grep -q 'needs a reward model' err.txt || fail "eval an LM: exit $rc"
rc=0; "$R" eval --model a --db empty.db 2>err.txt || rc=$?
[ $rc -eq 1 ] && grep -q 'no ranked pair' err.txt || fail "eval no rankings: exit $rc"

# eval --comparisons: K-way (a tie gives no pair) and pairwise (TRL and HH transcripts)
cat >k.jsonl <<'EOF'
{"prompt": "What is 7 plus 5?", "responses": ["7 plus 5 is 12.", "It is 13.", "Blue."], "ranks": [1, 2, 2]}

{"prompt": "Reverse the word lamp.", "responses": ["lamp reversed is pmal.", "lamp"], "ranks": [5, 9], "labeler": "ann"}
EOF
"$R" eval --model a --comparisons k.jsonl --json >k.json
[ "$(jget k.json 'd["pairs"]')" = 3 ] && [ "$(jget k.json 'd["gold"]["prompts"]')" = 2 ] ||
    fail "kway: $(cat k.json)"
printf '%s\n' '{"prompt": "Say hello to Maria.", "chosen": "Hello Maria!", "rejected": "Go away."}' \
    '{"chosen": "\n\nHuman: Name three fruits.\n\nAssistant: apple, pear and plum.", "rejected": "\n\nHuman: Name three fruits.\n\nAssistant: No."}' >p.jsonl
"$R" eval --model a --comparisons p.jsonl --format pairwise --json >p.json
[ "$(jget p.json 'd["pairs"]')" = 2 ] && [ "$(jget p.json 'd["gold"]["prompts"]')" = 2 ] ||
    fail "pairwise: $(cat p.json)"
printf '%s\n' '{"prompt": "a", "responses": ["x", "y"], "ranks": [1, 2]}' \
    '{"prompt": "a", "responses": ["x", "y", "z"], "ranks": [1, 2]}' >kbad.jsonl
rc=0; "$R" eval --model a --comparisons kbad.jsonl 2>err.txt || rc=$?
[ $rc -eq 1 ] && grep -q '^reward: error: kbad.jsonl:2: "ranks": 2 ranks for 3 responses' err.txt ||
    fail "bad kway line: exit $rc: $(cat err.txt)"
printf '%s\n' '{"chosen": "\n\nHuman: hi\n\nAssistant: yo", "rejected": "\n\nHuman: bye\n\nAssistant: yo"}' >pbad.jsonl
rc=0; "$R" eval --model a --comparisons pbad.jsonl --format pairwise 2>err.txt || rc=$?
[ $rc -eq 1 ] && grep -q "pbad.jsonl:1: \"rejected\": the transcript's prompt differs" err.txt ||
    fail "bad HH line: exit $rc: $(cat err.txt)"

# score: in order, bit-for-bit repeatable, a bad line writes nothing
head -n 5 w/demos.val.jsonl >in.jsonl
"$R" score --model a --in in.jsonl >s1.txt
"$R" score --model a --in in.jsonl --out s2.txt 2>/dev/null
cmp s1.txt s2.txt || fail "score: stdout and --out differ"
[ "$(wc -l <s1.txt)" -eq 5 ] && ! grep -qv '^{"score": -\{0,1\}[0-9][-0-9.e+]*}$' s1.txt ||
    fail "score lines: $(cat s1.txt)"
tail -n 1 in.jsonl >last.jsonl # the fifth line alone scores the same bits as in a file of five
[ "$("$R" score --model a --in last.jsonl)" = "$(tail -n 1 s1.txt)" ] || fail "score depends on its batchmates"
{ head -n 2 in.jsonl; echo '{"prompt": "What is 2 plus 2?"}'; tail -n 2 in.jsonl; } >bad.jsonl
rc=0; "$R" score --model a --in bad.jsonl --out bad.txt >o.txt 2>err.txt || rc=$?
[ $rc -eq 1 ] && grep -q '^reward: error: bad.jsonl:3: missing "response"' err.txt ||
    fail "score bad line: exit $rc: $(cat err.txt)"
[ ! -e bad.txt ] && [ ! -s o.txt ] || fail "score bad line: output written"
echo "ok"
