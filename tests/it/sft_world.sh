#!/usr/bin/env bash
# tests/it/sft_world.sh: `sft world` writes the six files of the embedded default world,
# byte for byte repeatably, and fails with the documented exit codes and messages.
set -euo pipefail
: "${BIN:?set BIN to the absolute path of build/bin}"
sft="$BIN/sft"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
files="corpus.train.txt corpus.val.txt demos.train.jsonl demos.val.jsonl prompts.train.jsonl prompts.val.jsonl"

fail() { echo "FAIL: $*"; exit 1; }

# run WANT_EXIT cmd...: stdout in $tmp/out, stderr in $tmp/err
run() {
    local want=$1 got=0
    shift
    "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
    [ "$got" = "$want" ] || { cat "$tmp/out" "$tmp/err"; fail "$* exited $got, want $want"; }
}

# usage and errors
run 0 "$sft" world --help
grep -q '^usage: sft world --out DIR' "$tmp/out" || fail "--help prints no usage"
run 0 "$sft" --help
grep -q '^  world ' "$tmp/out" || fail "sft --help does not list world"
run 2 "$sft" world
grep -q '^sft: error: --out is required' "$tmp/err" || fail "missing --out message"
grep -q "^Try 'sft world --help'" "$tmp/err" || fail "usage errors point at --help"
run 2 "$sft" world --out "$tmp/x" --size huge
grep -q "^sft: error: --size: expected tiny, small or medium, got 'huge'" "$tmp/err" ||
    fail "bad --size message"
run 2 "$sft" world --out "$tmp/x" --seed -3
grep -q "^sft: error: --seed" "$tmp/err" || fail "bad --seed message"
run 2 "$sft" world --out "$tmp/x" --seed 12abc
run 2 "$sft" world --out "$tmp/x" --bogus
grep -q "^sft: error: '--bogus' is not an option" "$tmp/err" || fail "unknown option message"
run 2 "$sft" world --out "$tmp/x" extra
run 2 "$sft" world --out
grep -q "^sft: error: '--out' needs a value" "$tmp/err" || fail "missing value message"
[ ! -e "$tmp/x" ] || fail "a usage error created the output directory"

# an output path under a plain file cannot be created: exit 1, the path named
touch "$tmp/plain"
run 1 "$sft" world --out "$tmp/plain/sub" --size tiny
grep -q "^sft: error: $tmp/plain" "$tmp/err" || fail "write error message: $(cat "$tmp/err")"

# a tiny world: six files, exact line counts, a summary naming each file
run 0 "$sft" world --out "$tmp/a/nested" --seed 4 --size tiny --log "$tmp/world.log"
grep -q '"seed": 4' "$tmp/a/nested/run.json" || fail "run.json lacks the seed"
grep -q '"status": "done"' "$tmp/a/nested/run.json" || fail "run.json lacks the status"
grep -q '^{"event":"world",.*"demos.train.jsonl":{"bytes":[0-9]*,"lines":400}' "$tmp/world.log" ||
    fail "--log has no world event"
for f in $files; do
    [ -s "$tmp/a/nested/$f" ] || fail "$f missing or empty"
    grep -q "  $f " "$tmp/out" || fail "summary does not list $f"
done
grep -q '^  demonstrator: good ' "$tmp/out" || fail "summary has no demonstrator rates"
[ "$(wc -l <"$tmp/a/nested/demos.train.jsonl")" -eq 400 ] || fail "demos.train lines"
[ "$(wc -l <"$tmp/a/nested/demos.val.jsonl")" -eq 100 ] || fail "demos.val lines"
[ "$(wc -l <"$tmp/a/nested/prompts.train.jsonl")" -eq 200 ] || fail "prompts.train lines"
[ "$(wc -l <"$tmp/a/nested/prompts.val.jsonl")" -eq 100 ] || fail "prompts.val lines"
if grep -vq '^{"prompt":"[^"]*","response":"[^"]*"}$' "$tmp/a/nested/demos.train.jsonl"; then
    fail "a demos line is not {\"prompt\",\"response\"}"
fi
if grep -vq '^{"prompt":"[^"]*"}$' "$tmp/a/nested/prompts.val.jsonl"; then
    fail "a prompts line is not {\"prompt\"}"
fi
if ls "$tmp/a/nested" | grep -q '\.tmp$'; then fail "temporary files left behind"; fi

# a failed write changes nothing: the last file's name is taken by a non-empty directory, so
# the new world cannot be put in place; the old world's files stay as they were, no temporaries
mkdir -p "$tmp/keep"
cp "$tmp/a/nested/"*.txt "$tmp/a/nested/"*.jsonl "$tmp/keep/"
rm "$tmp/a/nested/prompts.val.jsonl"
mkdir "$tmp/a/nested/prompts.val.jsonl"
echo x >"$tmp/a/nested/prompts.val.jsonl/inside"
run 1 "$sft" world --out "$tmp/a/nested" --seed 5 --size tiny
grep -q "^sft: error: $tmp/a/nested/prompts.val.jsonl: is a directory" "$tmp/err" ||
    fail "blocked target message: $(cat "$tmp/err")"
for f in $files; do
    [ "$f" = prompts.val.jsonl ] && continue
    cmp -s "$tmp/keep/$f" "$tmp/a/nested/$f" || fail "a failed write changed $f"
done
if ls "$tmp/a/nested" | grep -q '\.tmp$'; then fail "a failed write left temporary files"; fi
rm -r "$tmp/a/nested/prompts.val.jsonl"
cp "$tmp/keep/prompts.val.jsonl" "$tmp/a/nested/"

# same seed → same bytes (also when rewriting in place); another seed → other data
run 0 "$sft" world --out "$tmp/b" --seed 4 --size tiny
run 0 "$sft" world --out "$tmp/a/nested" --seed 4 --size tiny
for f in $files; do
    cmp -s "$tmp/a/nested/$f" "$tmp/b/$f" || fail "$f differs for the same seed"
done
run 0 "$sft" world --out "$tmp/c" --seed 5 --size tiny
! cmp -s "$tmp/b/demos.train.jsonl" "$tmp/c/demos.train.jsonl" || fail "seed has no effect"

# the default size is small: ~1 MB of training corpus, 6000 demonstrations
run 0 "$sft" world --out "$tmp/s"
grep -q 'size small' "$tmp/out" || fail "default size is not small"
bytes=$(wc -c <"$tmp/s/corpus.train.txt")
[ "$bytes" -ge 1000000 ] && [ "$bytes" -lt 1100000 ] || fail "corpus.train.txt is $bytes bytes"
[ "$(wc -l <"$tmp/s/demos.train.jsonl")" -eq 6000 ] || fail "small demos.train lines"
echo "sft_world: ok"
