#!/usr/bin/env bash
# tests/it/reward_data.sh: the rankings database's ways in and out. `sft sample --db` adds K
# completions per prompt (a rerun adds nothing); `reward import` reads a hand-written HH file and
# a K-way file in one transaction (a bad line names FILE:LINE: field and changes nothing);
# `reward export` writes files that validate against schemas/ and survive a round trip through a
# second database byte for byte (HH transcripts as they were imported); `reward agreement`
# reports 100% at noise 0 and about InstructGPT's 73% at the default noise. Needs python3 with
# jsonschema (Debian python3-jsonschema) and its stdlib sqlite3.
set -euo pipefail
: "${BIN:?set BIN to the absolute path of build/bin}"
cd "$(dirname "$0")/../.."
root=$(pwd)
export LC_ALL=C OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
source tests/it/sft_models.bash
sft="$BIN/sft" reward="$BIN/reward"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
run() { # run WANT_EXIT cmd...: stdout in $tmp/out, stderr in $tmp/err
    local want=$1 got=0
    shift
    "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
    cat "$tmp/out" "$tmp/err"
    [ "$got" = "$want" ] || fail "$* exited $got, want $want"
}
# sql DB 'STATEMENT; ...': each statement's rows, "|" between columns (python3's stdlib sqlite3)
sql() { python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for q in filter(str.strip, sys.argv[2].split(";")):
    for r in db.execute(q): print("|".join(map(str, r)))' "$@"; }

# ---- sft sample --db
zero="$tmp/zero"
gpt2_zero_model "$zero" 8 2 2 64
printf '{"prompt": "What is 7 plus 5?"}\n{"prompt": "Say hello to Maria."}\n{"prompt": "Reverse the word lamp."}\n' > "$tmp/prompts.jsonl"
run 0 "$sft" sample --help
grep -q -- '--db FILE' "$tmp/out" || fail "sft sample --help does not describe --db"
grep -q 'default temperature is 1' "$tmp/out" || fail "--help does not say the temperature for --db"
run 2 "$sft" sample --model "$zero" --prompts "$tmp/prompts.jsonl" --db "$tmp/s.db" --k 1
[ ! -e "$tmp/s.db" ] || fail "a usage error created the database"
run 0 "$sft" sample --model "$zero" --prompts "$tmp/prompts.jsonl" --db "$tmp/s.db" --k 3 --max-new 6
grep -q '^sft sample: 3 prompts added to .*, 0 already there; 9 completions' "$tmp/out" || fail "summary"
! grep -q '"response"' "$tmp/out" || fail "--db printed the JSONL"
[ "$(sql "$tmp/s.db" 'select count(*) from completions')" = 9 ] || fail "9 completions expected"
sql "$tmp/s.db" 'select distinct settings from completions' | grep -q '"temperature":1.0' ||
    fail "the default temperature with --db is not 1: $(sql "$tmp/s.db" 'select distinct settings from completions')"
[ "$(sql "$tmp/s.db" 'select distinct model from completions')" = "$(cd "$zero" && pwd -P)" ] ||
    fail "the model directory is not recorded"
run 0 "$sft" sample --model "$zero" --prompts "$tmp/prompts.jsonl" --db "$tmp/s.db" --k 3 --max-new 6
grep -q ': 0 prompts added to .*, 3 already there' "$tmp/out" || fail "a rerun added something"
[ "$(sql "$tmp/s.db" 'select count(*) from completions')" = 9 ] || fail "a rerun added completions"
run 0 "$sft" sample --model "$zero" --prompts "$tmp/prompts.jsonl" --db "$tmp/s.db" --k 3 --max-new 6 --temperature 0.5
[ "$(sql "$tmp/s.db" 'select count(*) from completions')" = 18 ] || fail "other settings add their own run"

# ---- import: a hand-written HH file (a NUL inside a response) and a K-way file
python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
hh = [
    {"chosen": "\n\nHuman: What is 7 plus 5?\n\nAssistant: 7 plus 5 is 12.",
     "rejected": "\n\nHuman: What is 7 plus 5?\n\nAssistant: 13, you fool."},
    {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a fruit.\n\nAssistant: Apple.",
     "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a fruit.\n\nAssistant: A ca\u0000r."},
]
with open(d + "/hh.jsonl", "w") as f:
    for o in hh: f.write(json.dumps(o) + "\n")
kw = [
    {"prompt": "Reverse the word lamp.", "responses": ["pmal", "lamp", "pmla", "lamp reversed is pmal."], "ranks": [2, 4, 3, 1], "labeler": "ann"},
    {"prompt": "Reverse the word lamp.", "responses": ["lamp", "pmal", "pmla", "lamp reversed is pmal."], "ranks": [3, 1, 2, 1], "labeler": "bob"},
    {"prompt": "Name three fruits.", "responses": ["Apple, pear, plum.", "Cars."], "ranks": [1, 2]},
    {"prompt": "Unranked, for reward label", "responses": ["one", "two"]},
]
with open(d + "/k.jsonl", "w") as f:
    for o in kw: f.write(json.dumps(o) + "\n")
bad = [{"prompt": "new 1", "responses": ["a", "b"], "ranks": [1, 2]},
       {"prompt": "new 2", "responses": ["a", "b"], "ranks": [2, 1], "labeler": "cy"},
       {"prompt": "x", "responses": ["a", "b"], "ranks": [1, 3]}]
with open(d + "/bad.jsonl", "w") as f:
    for o in bad: f.write(json.dumps(o) + "\n")
with open(d + "/badhh.jsonl", "w") as f:
    f.write(json.dumps({"chosen": "\n\nHuman: new\n\nAssistant: yes", "rejected": "\n\nHuman: new\n\nAssistant: no"}) + "\n\n" + json.dumps({"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: c\n\nAssistant: d"}) + "\n")
PY
run 0 "$reward" import --db "$tmp/a.db" --format pairwise "$tmp/hh.jsonl"
grep -q '2 lines of .*: 4 completions added, 2 rankings' "$tmp/out" || fail "HH import summary"
run 0 "$reward" import --db "$tmp/a.db" "$tmp/k.jsonl"
grep -q '4 lines of .*: 8 completions added, 3 rankings' "$tmp/out" || fail "K-way import summary"
[ "$(sql "$tmp/a.db" 'select count(*) from rankings')" = 5 ] || fail "5 rankings expected"
# the two labelers of the lamp prompt ranked the same four completions (one run, shared ids)
[ "$(sql "$tmp/a.db" "select count(*) from completions c join prompts p on p.id = c.prompt_id where p.text = cast('Reverse the word lamp.' as blob)")" = 4 ] ||
    fail "the same responses in another order made a second run"
[ "$(sql "$tmp/a.db" "select count(*) from completions where instr(text, x'00') > 0")" = 1 ] ||
    fail "the NUL inside a response was not kept"

# ---- a bad line aborts the whole import, names FILE:LINE: field, changes nothing
before=$(sql "$tmp/a.db" 'select count(*) from prompts; select count(*) from completions; select count(*) from rankings; select count(*) from labelers')
run 1 "$reward" import --db "$tmp/a.db" "$tmp/bad.jsonl"
grep -q "bad.jsonl:3: \"ranks\"\[1\] must be an integer from 1 to 2" "$tmp/err" || fail "bad rank message"
run 1 "$reward" import --db "$tmp/a.db" --format pairwise "$tmp/badhh.jsonl"
grep -q "badhh.jsonl:3: \"rejected\": its conversation" "$tmp/err" || fail "bad HH line message"
run 1 "$reward" import --db "$tmp/a.db" "$tmp/k.jsonl" # again: ann already ranked line 1's prompt
grep -q "k.jsonl:1: " "$tmp/err" || fail "a second import of the same rankings is not refused by line"
[ "$(sql "$tmp/a.db" 'select count(*) from prompts; select count(*) from completions; select count(*) from rankings; select count(*) from labelers')" = "$before" ] ||
    fail "a failed import changed the database"
[ "$(sql "$tmp/a.db" 'pragma integrity_check')" = ok ] || fail "integrity_check"

# ---- export, re-import into a second database, export again: the same bytes
for f in kway pairwise hh; do run 0 "$reward" export --db "$tmp/a.db" --format $f --out "$tmp/e1.$f.jsonl"; done
grep -q '5 rankings as' "$tmp/out" || fail "export summary"
run 0 "$reward" import --db "$tmp/b.db" "$tmp/e1.kway.jsonl"
for f in kway pairwise hh; do
    run 0 "$reward" export --db "$tmp/b.db" --format $f --out "$tmp/e2.$f.jsonl"
    cmp "$tmp/e1.$f.jsonl" "$tmp/e2.$f.jsonl" || fail "$f export differs after a round trip"
done
[ "$(wc -l < "$tmp/e1.kway.jsonl")" = 5 ] || fail "5 K-way lines expected"
# ann: 4 ranks, no tie -> 6 pairs; bob: a tie -> 5; two HH pairs; the fruit pair: 14 pairs
[ "$(wc -l < "$tmp/e1.pairwise.jsonl")" = 14 ] || fail "14 pairs expected: $(wc -l < "$tmp/e1.pairwise.jsonl")"
# an HH file alone comes back byte for byte (python's json.dumps wrote it, jansson rewrites it)
run 0 "$reward" import --db "$tmp/h.db" --format pairwise "$tmp/hh.jsonl"
run 0 "$reward" export --db "$tmp/h.db" --format hh --out "$tmp/hh.out.jsonl"
cmp "$tmp/hh.jsonl" "$tmp/hh.out.jsonl" || fail "HH transcripts not restored byte for byte"

# ---- every exported line validates against its schema; the schemas can fail
python3 - "$root/schemas" "$tmp" <<'PY'
import json, sys
from jsonschema import Draft202012Validator
sd, d = sys.argv[1], sys.argv[2]
v = {}
for n in ("kway", "pairwise"):
    s = json.load(open(f"{sd}/{n}.json"))
    Draft202012Validator.check_schema(s)
    v[n] = Draft202012Validator(s)
for f, n in (("kway", "kway"), ("pairwise", "pairwise"), ("hh", "pairwise")):
    for i, l in enumerate(open(f"{d}/e1.{f}.jsonl", encoding="utf-8"), 1):
        errs = [e.message for e in v[n].iter_errors(json.loads(l))]
        assert not errs, f"e1.{f}.jsonl:{i}: {errs}"
for n, bad in (("kway", {"prompt": "p", "responses": ["a"]}), ("kway", {"responses": ["a", "b"]}),
               ("kway", {"prompt": "p", "responses": ["a", "b"], "ranks": [0, 1]}),
               ("pairwise", {"chosen": "a"}), ("pairwise", {"chosen": "a", "rejected": "b"})):
    assert list(v[n].iter_errors(bad)), f"{n}.json accepts {bad}"
print("schemas: ok")
PY

# ---- agreement: two simulated labelers at noise 0 (100% but ties) and at the default noise
python3 - "$tmp" <<'PY'
import json, random, sys
r = random.Random(1)
with open(sys.argv[1] + "/agree.jsonl", "w") as f:
    for i in range(300):
        a, b = r.randint(2, 60), r.randint(2, 60)
        s = a + b
        resp = [f"Sure! {a} plus {b} is {s}.", f"{a} plus {b} is {s}.",
                f"{a} plus {b} is {s}, you idiot.", f"{a} plus {b} is {s + r.randint(1, 9)}."]
        r.shuffle(resp)
        f.write(json.dumps({"prompt": f"What is {a} plus {b}?", "responses": resp}) + "\n")
PY
run 0 "$reward" import --db "$tmp/g0.db" "$tmp/agree.jsonl"
cp "$tmp/g0.db" "$tmp/g1.db"
run 0 "$reward" agreement --db "$tmp/g0.db"
grep -q 'no prompt was ranked by two labelers' "$tmp/out" || fail "agreement on an unranked database"
run 0 "$reward" label --db "$tmp/g0.db" --simulated --noise 0 --seed 1
run 0 "$reward" agreement --db "$tmp/g0.db"
grep -qE '^  simulated-1 / simulated-2 +[0-9]+ +[0-9]+ +100\.0%' "$tmp/out" || fail "noise 0 is not 100%"
run 0 "$reward" label --db "$tmp/g1.db" --simulated --seed 1
run 0 "$reward" agreement --db "$tmp/g1.db"
pct=$(sed -n 's/^  simulated-1 \/ simulated-2 *[0-9]* *[0-9]* *\([0-9.]*\)%.*/\1/p' "$tmp/out")
awk -v p="$pct" 'BEGIN { exit !(p > 60 && p < 95) }' || fail "default-noise agreement $pct% is not near 73%"
echo "agreement at the default noise: $pct%"
echo "reward_data: ok"
