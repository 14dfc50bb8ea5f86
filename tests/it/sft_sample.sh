#!/usr/bin/env bash
# tests/it/sft_sample.sh: `sft sample` prints K completions per prompt with their fields,
# repeatably, with log-probs that match the model (the uniform zero model by hand), and fails
# with FILE:LINE messages and the documented exit codes before sampling anything.
set -euo pipefail
: "${BIN:?set BIN to the absolute path of build/bin}"
cd "$(dirname "$0")/../.."
export LC_ALL=C OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
source tests/it/sft_models.bash
sft="$BIN/sft"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# run WANT_EXIT cmd...: stdout in $tmp/out, stderr in $tmp/err
run() {
    local want=$1 got=0
    shift
    "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
    [ "$got" = "$want" ] || { cat "$tmp/out" "$tmp/err"; fail "$* exited $got, want $want"; }
}
# field NAME < jsonl: the value of a scalar field of each line (our own output's layout)
field() { sed -n "s/.*\"$1\": \(\"[^\"]*\"\|[^,}]*\).*/\1/p"; }
# near A B TOL: |A - B| <= TOL
near() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; exit !(d <= t && -d <= t) }'; }

zero="$tmp/zero"
gpt2_zero_model "$zero" 8 2 2 64
cat > "$tmp/prompts.jsonl" <<'JSONL'
{"prompt": "What is 7 plus 5?"}
{"prompt": "Reverse the word lamp.", "id": 2}

{"prompt": "Say hello to Maria."}
JSONL

# ---- usage: exit 2, nothing sampled
run 0 "$sft" sample --help
grep -q '^usage: sft sample --model DIR' "$tmp/out" || fail "--help prints no usage"
run 0 "$sft" --help
grep -q '^  sample ' "$tmp/out" || fail "sft --help does not list sample"
run 2 "$sft" sample --prompt hi
grep -q '^sft: error: --model is required' "$tmp/err" || fail "missing --model: $(cat "$tmp/err")"
run 2 "$sft" sample --model "$zero"
grep -q 'give one of --prompt TEXT and --prompts FILE' "$tmp/err" || fail "no prompt message"
run 2 "$sft" sample --model "$zero" --prompt hi --prompts "$tmp/prompts.jsonl"
run 2 "$sft" sample --model "$zero" --prompt hi --bogus
grep -q "^sft: error: '--bogus' is not an option" "$tmp/err" || fail "unknown option message"
run 2 "$sft" sample --model "$zero" --prompt hi --k 0
run 2 "$sft" sample --model "$zero" --prompt hi --top-p 1.5
run 2 "$sft" sample --model "$zero" --prompt hi --temperature -1
run 2 "$sft" sample --model "$zero" --prompt hi --max-new abc
run 2 "$sft" sample --model "$zero" --prompt hi extra

# ---- K lines per prompt, in order, with every field
run 0 "$sft" sample --model "$zero" --prompts "$tmp/prompts.jsonl" --k 2 --max-new 6 \
    --temperature 1 --seed 5 --ids
cp "$tmp/out" "$tmp/a.jsonl"
[ "$(wc -l < "$tmp/a.jsonl")" -eq 6 ] || fail "3 prompts x 2 should be 6 lines: $(cat "$tmp/a.jsonl")"
[ "$(field prompt < "$tmp/a.jsonl" | tr '\n' '|')" = \
  '"What is 7 plus 5?"|"What is 7 plus 5?"|"Reverse the word lamp."|"Reverse the word lamp."|"Say hello to Maria."|"Say hello to Maria."|' ] ||
    fail "prompts out of order: $(field prompt < "$tmp/a.jsonl")"
[ "$(field k < "$tmp/a.jsonl" | tr '\n' ' ')" = '0 1 0 1 0 1 ' ] || fail "k indices"
for f in response ended tokens logprob ids; do
    [ "$(grep -c "\"$f\": " "$tmp/a.jsonl")" -eq 6 ] || fail "field $f missing"
done
grep -q '"logprob": -' "$tmp/a.jsonl" || fail "logprob not negative"
# the zero model predicts the uniform distribution: at temperature 1 every token has
# log-probability -ln 50257, so logprob = -tokens * 10.82490512
paste -d' ' <(field tokens < "$tmp/a.jsonl") <(field logprob < "$tmp/a.jsonl") > "$tmp/tl"
while read -r n lp; do
    [ "$n" -ge 1 ] && [ "$n" -le 6 ] || fail "tokens $n outside 1..--max-new 6"
    near "$lp" "$(awk -v n="$n" 'BEGIN { printf "%.9f", -n * log(50257) }')" 1e-4 ||
        fail "logprob $lp for $n uniform tokens, want $n * -ln 50257"
done < "$tmp/tl"
# ids: one per new token
sed -n 's/.*"ids": \[\([^]]*\)\].*/\1/p' "$tmp/a.jsonl" | awk -F', ' '{ print NF }' > "$tmp/nids"
field tokens < "$tmp/a.jsonl" | cmp -s - "$tmp/nids" || fail "ids count differs from tokens"

# ---- repeatable: same seed, same bytes; the batch changes nothing; another seed differs
run 0 "$sft" sample --model "$zero" --prompts "$tmp/prompts.jsonl" --k 2 --max-new 6 \
    --temperature 1 --seed 5 --ids
cmp -s "$tmp/out" "$tmp/a.jsonl" || fail "same seed, different output"
run 0 "$sft" sample --model "$zero" --prompts "$tmp/prompts.jsonl" --k 2 --max-new 6 \
    --temperature 1 --seed 5 --ids --batch 1
field response < "$tmp/out" | cmp -s - <(field response < "$tmp/a.jsonl") ||
    fail "--batch 1 drew other tokens than --batch 16"
run 0 "$sft" sample --model "$zero" --prompts "$tmp/prompts.jsonl" --k 2 --max-new 6 \
    --temperature 1 --seed 6 --ids
! cmp -s "$tmp/out" "$tmp/a.jsonl" || fail "another seed, same output"
# greedy on a uniform model takes the first of the tied ids, 0 ("!"), every time
run 0 "$sft" sample --model "$zero" --prompt "anything" --temperature 0 --max-new 3 --ids
grep -q '"response": "!!!", "ended": false, "tokens": 3, .*"ids": \[0, 0, 0\]' "$tmp/out" ||
    fail "greedy: $(cat "$tmp/out")"
# --prompt: one line; --log writes a summary event
run 0 "$sft" sample --model "$zero" --prompt "hi" --k 3 --max-new 2 --log "$tmp/log.jsonl"
[ "$(wc -l < "$tmp/out")" -eq 3 ] || fail "--prompt --k 3 gave $(wc -l < "$tmp/out") lines"
grep -q '"event": *"sample".*"sequences": *3' "$tmp/log.jsonl" || fail "log: $(cat "$tmp/log.jsonl")"

# ---- bad input: exit 1, FILE:LINE, nothing on stdout
bad() { # line-2 content, expected message
    printf '{"prompt": "ok"}\n%s\n' "$1" > "$tmp/bad.jsonl"
    run 1 "$sft" sample --model "$zero" --prompts "$tmp/bad.jsonl"
    grep -qF "sft: error: $tmp/bad.jsonl:2: $2" "$tmp/err" || fail "want '$2', got $(cat "$tmp/err")"
    [ ! -s "$tmp/out" ] || fail "output before the error"
}
bad '{"prompt": 5}' '"prompt" must be a string'
bad '{"text": "x"}' 'missing "prompt"'
bad '["x"]' 'not a JSON object'
bad '{"prompt": "x"' 'invalid JSON'
long=$(printf 'word %.0s' $(seq 80))
n=$(printf '{"text": "Human: %s\\n\\nAssistant:"}\n' "$long" | "$sft" tokenize --tokenizer "$zero" |
    awk -F, '{ print NF }')
bad "{\"prompt\": \"$long\"}" "prompt is $n tokens with the template, the context is 64: no room for a response"
run 1 "$sft" sample --model "$zero" --prompts "$tmp/missing.jsonl"
grep -q "missing.jsonl: cannot open" "$tmp/err" || fail "missing file: $(cat "$tmp/err")"

# ---- bad model directories
mkdir "$tmp/notok" && cp "$zero/config.json" "$zero/model.safetensors" "$tmp/notok/"
run 1 "$sft" sample --model "$tmp/notok" --prompt hi
grep -q "needs its tokenizer" "$tmp/err" || fail "no tokenizer: $(cat "$tmp/err")"
cp -r "$zero" "$tmp/chat"
sed -i 's/"eos_token_id": 50256}/"eos_token_id": 50256, "rlhf": {"template": "chatml-v2"}}/' "$tmp/chat/config.json"
run 1 "$sft" sample --model "$tmp/chat" --prompt hi
grep -q 'rlhf.template is "chatml-v2", this build knows only "rlhf-v1"' "$tmp/err" ||
    fail "template: $(cat "$tmp/err")"
echo "sft sample: ok"
