#!/usr/bin/env bash
# tests/it/wire_schema.sh: real wire messages (score, scores, ping, pong, info, the info reply,
# errors), captured by the wire unit test (CK_RUN_CASE=capture, WIRE_CAPTURE_DIR), each
# validate against its JSON Schema in schemas/wire/; every schema is itself valid draft
# 2020-12 and rejects a message that breaks it (so the check can fail). Needs python3 with
# jsonschema (Debian: python3-jsonschema, in .ci/deps.sh).
set -euo pipefail
: "${BIN:?set BIN to the absolute path of build/bin}"
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*"; exit 1; }

python3 -c 'import jsonschema' 2>/dev/null ||
    fail "python3 cannot import jsonschema (apt-get install -y python3-jsonschema)"

mkdir "$tmp/msgs"
WIRE_CAPTURE_DIR="$tmp/msgs" CK_RUN_SUITE=wire CK_RUN_CASE=capture CK_VERBOSITY=normal \
    "$BIN/run_tests" >"$tmp/run.log" 2>&1 || { cat "$tmp/run.log"; fail "capture test failed"; }
ls "$tmp/msgs"

python3 - "$root/schemas/wire" "$tmp/msgs" <<'PY'
import copy, glob, json, os, re, sys
from jsonschema import Draft202012Validator

schema_dir, msg_dir = sys.argv[1], sys.argv[2]
names = ["score", "scores", "ping", "pong", "info", "info-reply", "error"]
validators = {}
for n in names:
    with open(os.path.join(schema_dir, n + ".json")) as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", n
    validators[n] = Draft202012Validator(schema)

def errors(name, doc):
    return [e.message for e in validators[name].iter_errors(doc)]

seen = {n: 0 for n in names}
for path in sorted(glob.glob(os.path.join(msg_dir, "*.json"))):
    name = re.sub(r"-\d+\.json$", "", os.path.basename(path))
    with open(path, "rb") as f:
        doc = json.loads(f.read().decode("utf-8"))
    errs = errors(name, doc)
    if errs:
        sys.exit(f"FAIL: {os.path.basename(path)} breaks schemas/wire/{name}.json: {errs}")
    # a message of one kind is no message of another (types are distinct, info excepted)
    for other in names:
        if other != name and {name, other} != {"info", "info-reply"} and not errors(other, doc):
            sys.exit(f"FAIL: {os.path.basename(path)} also passes {other}.json")
    # and each schema refuses broken copies
    broken = []
    for mutate in ("v", "id", "type"):
        bad = copy.deepcopy(doc)
        if mutate == "v": bad["v"] = 2
        if mutate == "id": bad["id"] = [1]
        if mutate == "type": bad["type"] = "nonsense"
        broken.append((mutate, bad))
    if name == "score":
        bad = copy.deepcopy(doc); bad["items"][0]["prompt"] = 5; broken.append(("prompt", bad))
        bad = copy.deepcopy(doc); bad["items"] = [{"prompt": "p", "response": "r"}] * 257
        broken.append(("257 items", bad))
        bad = copy.deepcopy(doc); bad["extra"] = 1; broken.append(("extra field", bad))
    if name == "scores":
        bad = copy.deepcopy(doc); bad["scores"] = ["0.5"]; broken.append(("score string", bad))
    if name == "info-reply":
        bad = copy.deepcopy(doc); del bad["limits"]; broken.append(("no limits", bad))
    if name == "error":
        bad = copy.deepcopy(doc); bad["error"] = ""; broken.append(("empty error", bad))
    for what, bad in broken:
        if not errors(name, bad):
            sys.exit(f"FAIL: {name}.json accepts a message with a broken {what}")
    seen[name] += 1
missing = [n for n in names if not seen[n]]
if missing:
    sys.exit(f"FAIL: no captured {missing}")
print("validated", sum(seen.values()), "messages:", seen)
PY

# the captures hold what the protocol promises: U+0000 survives, scores have 17 digits
grep -q 'n\\u0000l' "$tmp"/msgs/score-0.json || fail "U+0000 not written as \\u0000"
grep -Eq '[0-9]\.[0-9]{10,}' "$tmp"/msgs/scores-0.json || fail "scores not written in full precision"
grep -q '"error":null\|"id":null' "$tmp"/msgs/error-*.json || fail "no error reply with a null id"
echo "ok"
