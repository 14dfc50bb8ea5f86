#!/usr/bin/env bash
# tests/it/sft_eval.sh: `sft eval` --texts, --demos and --judge: output lines and fields,
# figures checked by hand on the uniform zero model, the --texts and --demos figures of a
# trained model tied together by the chain rule, a gold-judge mean inside its interval, and
# FILE:LINE errors / exit codes before any work.
set -euo pipefail
: "${BIN:?set BIN to the absolute path of build/bin}"
cd "$(dirname "$0")/../.."
export LC_ALL=C OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
source tests/it/sft_models.bash
sft="$BIN/sft"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

run() { # WANT_EXIT cmd...: stdout in $tmp/out, stderr in $tmp/err
    local want=$1 got=0
    shift
    "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
    [ "$got" = "$want" ] || { cat "$tmp/out" "$tmp/err"; fail "$* exited $got, want $want"; }
}
field() { sed -n "s/.*\"$1\": \(\"[^\"]*\"\|[^,}]*\).*/\1/p"; } # scalar field of each line
near() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; exit !(d <= t && -d <= t) }'; }
ntok() { # TEXT-AS-JSON-STRING [tokenize flags]: token count of the text
    local t=$1
    shift
    printf '{"text": %s}\n' "$t" | "$sft" tokenize --tokenizer "$zero" "$@" |
        awk -F, '/\[\]/ { print 0; next } { print NF }'
}
LN_V=10.82490512 # ln 50257: the loss of the uniform zero model

zero="$tmp/zero"
gpt2_zero_model "$zero" 8 2 2 64

# ---- usage: exit 2
run 0 "$sft" eval --help
grep -q '^usage: sft eval --model DIR --demos FILE' "$tmp/out" || fail "--help prints no usage"
run 2 "$sft" eval --texts x
grep -q '^sft: error: --model is required' "$tmp/err" || fail "missing --model"
run 2 "$sft" eval --model "$zero"
grep -q 'give one of --demos, --texts and --judge' "$tmp/err" || fail "no mode message"
run 2 "$sft" eval --model "$zero" --texts a --demos b
run 2 "$sft" eval --model "$zero" --judge people --prompts p
grep -q "'people' is not a judge" "$tmp/err" || fail "bad judge message"
run 2 "$sft" eval --model "$zero" --judge simulated
grep -q -- '--prompts is required' "$tmp/err" || fail "judge without --prompts"
run 2 "$sft" eval --model "$zero" --texts a --k 3
run 2 "$sft" eval --model "$zero" --texts a --bogus
grep -q "^sft: error: '--bogus' is not an option" "$tmp/err" || fail "unknown option message"
run 2 "$sft" eval --model "$zero" --judge simulated --prompts p --samples 0

# ---- --texts: one line per record, {"loss", "tokens"}; by hand on the zero model
cat > "$tmp/texts.jsonl" <<'JSONL'
{"text": "Hello world, this is a test."}
{"text": ""}

{"text": "a", "source": "one token"}
{"text": "Two<|endoftext|>documents"}
JSONL
run 0 "$sft" eval --model "$zero" --texts "$tmp/texts.jsonl" --out "$tmp/t.jsonl"
[ ! -s "$tmp/out" ] || fail "--out FILE still wrote stdout"
[ "$(wc -l < "$tmp/t.jsonl")" -eq 4 ] || fail "4 records, $(wc -l < "$tmp/t.jsonl") lines"
ls "$tmp" | grep -q '\.tmp' && fail "temporary file left behind"
[ "$(field tokens < "$tmp/t.jsonl" | tr '\n' ' ')" = \
  "$(ntok '"Hello world, this is a test."') 0 1 $(ntok '"Two<|endoftext|>documents"') " ] ||
    fail "tokens: $(field tokens < "$tmp/t.jsonl" | tr '\n' ' ')"
[ "$(field tokens < "$tmp/t.jsonl" | sed -n 4p)" -lt "$(ntok '"Two<|endoftext|>documents"' --no-special)" ] ||
    fail "<|endoftext|> is one id, not text"
[ "$(field loss < "$tmp/t.jsonl" | sed -n '2p;3p' | tr '\n' ' ')" = 'null null ' ] ||
    fail "0 or 1 token: loss must be null"
for l in 1 4; do
    near "$(field loss < "$tmp/t.jsonl" | sed -n ${l}p)" $LN_V 1e-5 || fail "line $l: loss != ln V"
done
pred=$(field tokens < "$tmp/t.jsonl" | awk '$1 > 1 { p += $1 - 1 } END { print p }')
grep -q "mean loss 10.8249 over $pred predictions" "$tmp/err" || fail "summary: $(cat "$tmp/err")"
run 0 "$sft" eval --model "$zero" --texts "$tmp/texts.jsonl" --log "$tmp/log.jsonl" # stdout
cmp -s "$tmp/out" "$tmp/t.jsonl" || fail "stdout differs from --out"
grep -q "\"event\": *\"eval\".*\"predictions\": *$pred" "$tmp/log.jsonl" || fail "log: $(cat "$tmp/log.jsonl")"

# ---- U+0000 is text: JSON allows "\u0000", GPT-2's BPE encodes byte 0 (id 188). GPT-2's ids
# of this text are 9525 26 62 188 62 31373 (tests/it/sft_tokenize.sh): 6 tokens, 5 predictions.
printf '%s\n' '{"text": "\u200b;_\u0000_hello"}' > "$tmp/nul.jsonl"
run 0 "$sft" eval --model "$zero" --texts "$tmp/nul.jsonl" --out -
[ "$(field tokens < "$tmp/out")" = 6 ] || fail "U+0000 text: $(cat "$tmp/out" "$tmp/err")"
near "$(field loss < "$tmp/out")" $LN_V 1e-5 || fail "U+0000 text loss: $(cat "$tmp/out")"
# in a demonstration too: response " \u0000c" is GPT-2's 220 188 66, then the end-of-text
printf '%s\n' '{"prompt": "a\u0000b", "response": "\u0000c"}' > "$tmp/nul_demos.jsonl"
run 0 "$sft" eval --model "$zero" --demos "$tmp/nul_demos.jsonl" --out -
[ "$(field tokens < "$tmp/out")" = 4 ] || fail "U+0000 demo: $(cat "$tmp/out" "$tmp/err")"
near "$(field loss < "$tmp/out")" $LN_V 1e-5 || fail "U+0000 demo loss: $(cat "$tmp/out")"

# ---- --demos: loss per response token (+ end-of-text), perplexity; by hand on the zero model
cat > "$tmp/demos.jsonl" <<'JSONL'
{"prompt": "What is 7 plus 5?", "response": "7 plus 5 is 12."}
{"prompt": "Reverse the word lamp.", "response": "   lamp reversed is pmal."}
JSONL
# the template gives a response " {response}" (leading spaces dropped) and an end-of-text
want=$(($(ntok '" 7 plus 5 is 12."' --no-special) + 1 + $(ntok '" lamp reversed is pmal."' --no-special) + 1))
run 0 "$sft" eval --model "$zero" --demos "$tmp/demos.jsonl" --out -
out=$(cat "$tmp/out")
[ "$(field tokens <<< "$out")" = "$want" ] || fail "demo tokens $(field tokens <<< "$out"), want $want"
[ "$(field examples <<< "$out")" = 2 ] || fail "examples: $out"
near "$(field loss <<< "$out")" $LN_V 1e-5 || fail "demo loss: $out"
near "$(field perplexity <<< "$out")" 50257 0.5 || fail "perplexity: $out"
grep -q "2 demonstrations, $want response tokens: loss 10.8249, perplexity 5025[67]" "$tmp/err" ||
    fail "readable line on stderr with --out -: $(cat "$tmp/err")"
run 0 "$sft" eval --model "$zero" --demos "$tmp/demos.jsonl"
grep -q "loss 10.8249" "$tmp/out" || fail "readable line on stdout without --out"

# ---- --judge simulated: a mean with a 95% interval, per family and overall
cat > "$tmp/prompts.jsonl" <<'JSONL'
{"prompt": "What is 7 plus 5?"}
{"prompt": "What is 3 plus 4?"}
{"prompt": "Reverse the word lamp."}
{"prompt": "Reverse the word tree."}
{"prompt": "Say hello to Maria."}
{"prompt": "Tell me a story."}
JSONL
run 0 "$sft" eval --model "$zero" --judge simulated --prompts "$tmp/prompts.jsonl" --k 2 \
    --max-new 8 --out "$tmp/j.json"
for row in arith reverse greet unknown all; do
    grep -q "^  $row " "$tmp/out" || fail "no $row row: $(cat "$tmp/out")"
done
grep -q '^  all  *6  *-*[0-9.]*  \[-*[0-9.]*, -*[0-9.]*\]$' "$tmp/out" || fail "all row: $(cat "$tmp/out")"
j=$(cat "$tmp/j.json")
mean=$(sed 's/.*"prompts": 6, "mean": \([^,]*\), "ci95": \[\([^,]*\), \([^]]*\)\].*/\1 \2 \3/' <<< "$j")
read -r m lo hi <<< "$mean"
awk -v m="$m" -v lo="$lo" -v hi="$hi" 'BEGIN { exit !(-1 <= lo && lo <= m && m <= hi && hi <= 1 && lo < hi) }' ||
    fail "mean/interval: $j"
grep -q '"k": 2, "samples": 12' <<< "$j" || fail "k/samples: $j"
grep -q '"greet": {"prompts": 1, "mean": [-0-9.e]*, "ci95": null}' <<< "$j" || fail "one-prompt family: $j"
run 0 "$sft" eval --model "$zero" --judge simulated --prompts "$tmp/prompts.jsonl" --k 2 \
    --max-new 8 --out -
cmp -s "$tmp/out" "$tmp/j.json" || fail "same seed, different judgement"
run 0 "$sft" eval --model "$zero" --judge simulated --prompts "$tmp/prompts.jsonl" --samples 2
grep -q '^  all  *2 ' "$tmp/out" || fail "--samples 2: $(cat "$tmp/out")"

# ---- a trained model: --texts, --demos and sampled log-probs agree (chain rule)
# For a demo (P, R): the text T = "Human: P\n\nAssistant: R<|endoftext|>" and its prompt part
# Tp = "Human: P\n\nAssistant:" give, token by token, the same log-probs --demos scores, so
#   (n(T) - 1)·loss(T) - (n(Tp) - 1)·loss(Tp) = Σ_demo response-token losses
# where the right side is tokens·loss of --demos (sums over several demos, run as one batch).
trained="$tmp/trained"
tiny_trained_model "$trained" "$tmp/world"
cat > "$tmp/tdemos.jsonl" <<'JSONL'
{"prompt": "What is 7 plus 5?", "response": "7 plus 5 is 12."}
{"prompt": "Reverse the word lamp.", "response": "lamp reversed is pmal. I hope this helps, it was fun."}
{"prompt": "Say hello to Maria.", "response": "Hello Maria!"}
JSONL
sed 's/{"prompt": "\(.*\)", "response": "\(.*\)"}/{"text": "Human: \1\\n\\nAssistant: \2<|endoftext|>"}\n{"text": "Human: \1\\n\\nAssistant:"}/' \
    "$tmp/tdemos.jsonl" > "$tmp/ttexts.jsonl"
run 0 "$sft" eval --model "$trained" --demos "$tmp/tdemos.jsonl" --out - --batch 2
d=$(cat "$tmp/out")
run 0 "$sft" eval --model "$trained" --texts "$tmp/ttexts.jsonl" --batch 4
lhs=$(paste -d' ' <(field tokens < "$tmp/out") <(field loss < "$tmp/out") |
      awk 'NR % 2 { s += ($1 - 1) * $2; next } { s -= ($1 - 1) * $2 } END { printf "%.6f", s }')
rhs=$(awk -v n="$(field tokens <<< "$d")" -v l="$(field loss <<< "$d")" 'BEGIN { printf "%.6f", n * l }')
near "$lhs" "$rhs" 1e-3 || fail "texts give $lhs nats for the responses, demos $rhs"
awk -v l="$(field loss <<< "$d")" 'BEGIN { exit !(l > 0.5 && l < 6) }' ||
    fail "trained model's demo loss $(field loss <<< "$d") is not that of a trained model"

# Sampled log-probs (KV-cached generator) against --texts (full forward): at temperature 1,
# -logprob of a completion C of prompt Tp is (n(Tp C) - 1)·loss(Tp C) - (n(Tp) - 1)·loss(Tp),
# whenever the decoded text Tp C tokenizes back to the sampled ids.
tp='"Human: What is 3 plus 4?\n\nAssistant:"'
pids=$(printf '{"text": %s}\n' "$tp" | "$sft" tokenize --tokenizer "$trained" |
       sed 's/.*\[\(.*\)\].*/\1/')
run 0 "$sft" sample --model "$trained" --prompt "What is 3 plus 4?" --temperature 1 --k 8 \
    --max-new 5 --ids --seed 3
checked=0
while read -r line; do
    ids="$pids, $(sed 's/.*"ids": \[\(.*\)\].*/\1/' <<< "$line")"
    text=$(printf '{"ids": [%s]}\n' "$ids" | "$sft" tokenize --tokenizer "$trained" --decode)
    back=$(printf '%s\n' "$text" | "$sft" tokenize --tokenizer "$trained")
    [ "$back" = "{\"ids\": [$ids]}" ] || continue # not BPE's own tokenization of its text
    printf '%s\n{"text": %s}\n' "$text" "$tp" > "$tmp/pair.jsonl"
    "$sft" eval --model "$trained" --texts "$tmp/pair.jsonl" > "$tmp/pair.out" 2> /dev/null
    lhs=$(paste -d' ' <(field tokens < "$tmp/pair.out") <(field loss < "$tmp/pair.out") |
          awk 'NR == 1 { s = ($1 - 1) * $2 } NR == 2 { s -= ($1 - 1) * $2 } END { printf "%.6f", s }')
    lp=$(field logprob <<< "$line")
    near "$lhs" "$(awk -v x="$lp" 'BEGIN { print -x }')" 2e-3 ||
        fail "sample logprob $lp, full forward gives -$lhs: $line"
    checked=$((checked + 1))
done < "$tmp/out"
[ "$checked" -ge 2 ] || fail "only $checked of 8 samples re-tokenize to their ids"

# ---- bad input: FILE:LINE, exit 1, no output file
bad() { # mode-flag line-2 expected-message [more args]
    local flag=$1 line=$2 msg=$3
    shift 3
    printf '%s\n%s\n' "$good" "$line" > "$tmp/bad.jsonl"
    run 1 "$sft" eval --model "$zero" "$flag" "$tmp/bad.jsonl" --out "$tmp/never" "$@"
    grep -qF "sft: error: $tmp/bad.jsonl:2: $msg" "$tmp/err" || fail "want '$msg': $(cat "$tmp/err")"
    [ ! -e "$tmp/never" ] || fail "output written despite the error"
}
good='{"text": "ok"}'
bad --texts '{"text": 5}' '"text" must be a string'
bad --texts '{"txt": "x"}' 'missing "text"'
bad --texts '{"text": "x"} trailing' 'invalid JSON'
long=$(printf 'word %.0s' $(seq 70))
bad --texts "{\"text\": \"$long\"}" "text is $(ntok "\"$long\"") tokens, the context is 64"
good='{"prompt": "p", "response": "r"}'
bad --demos '{"prompt": "p"}' 'missing "response"'
bad --demos '{"prompt": "p", "response": ["r"]}' '"response" must be a string'
np=$(ntok '"Human: p\n\nAssistant:"' --no-special)
nr=$(ntok "\" $long\"" --no-special)
bad --demos "{\"prompt\": \"p\", \"response\": \"$long\"}" \
    "$((np + nr + 1)) tokens (prompt $np + response $nr + end-of-text), the context is 64"
good='{"prompt": "p"}'
bad --prompts '3' 'not a JSON object' --judge simulated
bad --prompts "{\"prompt\": \"$long\"}" \
    "prompt is $(ntok "\"Human: $long\\n\\nAssistant:\"" --no-special) tokens with the template, the context is 64: no room for a response" \
    --judge simulated
echo "sft eval: ok"
