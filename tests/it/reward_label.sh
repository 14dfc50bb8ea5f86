#!/usr/bin/env bash
# tests/it/reward_label.sh: `reward label` for a person, driven through a real pseudo-terminal at
# 80x24 (tests/it/pty_screen.py, python3's stdlib pty): a completion holding ESC [ 2 J and
# ESC ] 0 ; x BEL shows as visible text and never reaches the terminal raw; a typo shows its
# message and keeps the typed text for editing; keys typed during the pager are kept; wide CJK
# text wraps; a resize redraws at the new width; an undo; then SIGKILL part-way: every ranking
# saved before is in the database, integrity_check is ok, and a new session resumes at the next
# prompt. NO_COLOR output has no colour, non-terminal output no escape at all; two scripted
# labelers at once never rank a prompt twice outside the overlap and never see SQLITE_BUSY.
# Each captured screen is printed in the log (build/it/reward_label.log).
set -euo pipefail
: "${BIN:?set BIN to the absolute path of build/bin}"
cd "$(dirname "$0")/../.."
export LC_ALL=C OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
reward="$BIN/reward"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
long = " ".join(f"Sentence {i} of a long answer that goes on and on." for i in range(60))
items = [
    ("Which is larger, 17 or 42?", ["42 is larger.", "evil \x1b[2J cleared \x1b]0;x\x07 retitled", "17."]),
    ("Name three fruits.", [long, "Apple, pear and plum.", "Cars."]),
    ("Say hello in Chinese.", ["你好！" * 40, "Hello."]),
    ("What is 7 plus 5?", ["12.", "13."]),
    ("Reverse the word lamp.", ["pmal", "lamp"]),
]
with open(d + "/items.jsonl", "w") as f:
    for p, r in items:
        f.write(json.dumps({"prompt": p, "responses": r}) + "\n")
PY
"$reward" import --db "$tmp/r.db" "$tmp/items.jsonl"

python3 - "$reward" "$tmp/r.db" <<'PY'
import os, re, sqlite3, sys
sys.path.insert(0, "tests/it")
from pty_screen import Pty
reward, db = sys.argv[1], sys.argv[2]
PROMPT = r"rank \(e\.g\. 2>1\)"
env = dict(os.environ, TERM="xterm")
env.pop("NO_COLOR", None)
t = Pty([reward, "label", "--db", db, "--labeler", "ann"], 24, 80, env)

# prompt 1: the hostile completion is shown as text
t.expect(PROMPT); t.settle()
t.screen.dump("prompt 1, a completion with escape sequences")
s = t.screen.text()
assert "^[[2J" in s and "^[]0;x^G" in s, "escapes not made visible"
assert b"\x1b]" not in t.raw, "ESC ] reached the terminal"
assert t.raw.count(b"\x1b[2J") == t.raw.count(b"\x1b[H\x1b[2J"), "a raw ESC [ 2 J from the text"
assert re.search(r"prompt 1 · done 0, skipped 0, left 5", s), "no progress line"

# a typo: its message, the typed text kept for editing
m = t.send("1>5\r"); t.expect("completion 5 does not exist", since=m); t.settle()
t.screen.dump("after the typo 1>5")
assert t.screen.lines()[t.screen.y].endswith("> 1>5"), "the typed text is not kept"
m = t.send("\x7f2>3\r"); t.expect(r"saved 1>2>3 for prompt 1", since=m)

# prompt 2: long, paged; typing during the pager keeps the keys
t.expect("-- more", since=m); t.settle()
t.screen.dump("prompt 2, paged")
assert all(len(l) <= 80 for l in t.screen.lines())
m = t.send("2"); t.expect(PROMPT + r".*> 2", since=m); t.settle()
m = t.send(">1>3\r"); t.expect(r"saved 2>1>3 for prompt 2", since=m)

# prompt 3: wide characters; a resize redraws at the new width
t.expect(PROMPT, since=m); t.settle()
t.screen.dump("prompt 3, CJK at 80 columns")
assert "你好！" in t.screen.text()
m = len(t.raw); t.resize(20, 60); t.expect(r"\x1b\[H\x1b\[2J", since=m); t.expect(PROMPT, since=m); t.settle()
t.screen.dump("prompt 3 after a resize to 60x20")
assert "Say hello in Chinese." in t.screen.text()
# the undo brings prompt 2 back
m = t.send("u\r"); t.expect("undone: your ranking of prompt 2", since=m); t.expect("-- more", since=m)
t.settle()
t.screen.dump("the undone prompt 2 again, paged at 60x20")
assert all(len(l) <= 60 for l in t.screen.lines())
m = t.send("3"); t.expect(PROMPT + r".*> 3", since=m)
m = t.send(">1>2\r"); t.expect("saved 3>1>2 for prompt 2", since=m); t.expect(PROMPT, since=m)
m = t.send("2>1\r"); t.expect("saved 2>1 for prompt 3", since=m); t.expect(PROMPT, since=m)
m = t.send("1>2 1@7\r"); t.expect("saved 1>2 1@7 for prompt 4", since=m); t.expect(PROMPT, since=m)
t.settle()
t.screen.dump("prompt 5, progress and pace")
assert re.search(r"prompt 5 · done 4, skipped 0, left 1 · \d+ s each, ~\S+ to go", t.screen.text())
t.send("2>")  # half typed, then the machine dies
t.settle(0.2)
t.kill()

con = sqlite3.connect(db)
assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
got = con.execute("select p.text, group_concat(r2.rank, ',') from rankings r join prompts p on p.id = r.prompt_id "
                  "join ranks r2 on r2.ranking_id = r.id group by r.id order by p.id").fetchall()
got = [(bytes(p).decode(), ranks) for p, ranks in got]
want = [("Which is larger, 17 or 42?", "1,2,3"), ("Name three fruits.", "2,3,1"),
        ("Say hello in Chinese.", "2,1"), ("What is 7 plus 5?", "1,2")]
assert got == want, f"rankings after the kill: {got}"
assert con.execute("select rating from ranks where rating is not null").fetchall() == [(7,)]
con.close()

# a new session resumes at the next prompt
t = Pty([reward, "label", "--db", db, "--labeler", "ann"], 24, 80, env)
t.expect(PROMPT); t.settle()
t.screen.dump("a new session after SIGKILL")
assert "Reverse the word lamp." in t.screen.text() and "prompt 5" in t.screen.text()
m = t.send("q\r"); assert t.wait() == 0

# NO_COLOR: no SGR sequence at all
t = Pty([reward, "label", "--db", db, "--labeler", "ann"], 24, 80, dict(env, NO_COLOR="1"))
t.expect(PROMPT); t.send("q\r"); t.wait()
assert not re.search(rb"\x1b\[[0-9;]*m", t.raw), "colour with NO_COLOR"
print("pty: ok")
PY

# ---- not a terminal: one answer per line, no escape sequence at all
printf '?\n2>1\n' | "$reward" label --db "$tmp/r.db" --labeler ann > "$tmp/plain" 2>&1 || { cat "$tmp/plain"; fail "scripted run"; }
cat "$tmp/plain"
grep -q 'saved 2>1 for prompt 5' "$tmp/plain" || fail "the scripted answer was not saved"
! grep -q $'\x1b' "$tmp/plain" || fail "escape sequences in non-terminal output"

# ---- two labelers at once, scripted through stdin
python3 - "$tmp" <<'PY'
import json, sys
with open(sys.argv[1] + "/many.jsonl", "w") as f:
    for i in range(60):
        f.write(json.dumps({"prompt": f"Prompt number {i}.", "responses": [f"a{i}", f"b{i}"]}) + "\n")
PY
"$reward" import --db "$tmp/two.db" "$tmp/many.jsonl"
cp "$tmp/two.db" "$tmp/seq.db"
answers() { for i in $(seq 200); do echo '2>1'; done; }
answers | "$reward" label --db "$tmp/seq.db" --labeler ann > /dev/null
answers | "$reward" label --db "$tmp/seq.db" --labeler bob > /dev/null # gets just the overlap
answers | "$reward" label --db "$tmp/two.db" --labeler ann > "$tmp/ann" 2>&1 &
a=$!
answers | "$reward" label --db "$tmp/two.db" --labeler bob > "$tmp/bob" 2>&1 &
b=$!
wait $a || { cat "$tmp/ann"; fail "labeler ann failed"; }
wait $b || { cat "$tmp/bob"; fail "labeler bob failed"; }
! grep -qi 'busy\|locked\|error' "$tmp/ann" "$tmp/bob" || fail "an error reached a labeler"
tail -n1 "$tmp/ann" "$tmp/bob"
python3 - "$tmp" <<'PY'
import sqlite3, sys
d = sys.argv[1]
def twice(db):
    c = sqlite3.connect(db)
    assert c.execute("pragma integrity_check").fetchone()[0] == "ok"
    n = c.execute("select count(*) from prompts").fetchone()[0]
    once = c.execute("select count(distinct prompt_id) from rankings").fetchone()[0]
    assert once == n, f"{db}: {n - once} prompts left unranked"
    return {r[0] for r in c.execute("select prompt_id from rankings group by prompt_id having count(*) > 1")}
seq, two = twice(d + "/seq.db"), twice(d + "/two.db")
assert seq == two, f"ranked twice: {sorted(two)}, the overlap is {sorted(seq)}"
print(f"two labelers at once: 60 prompts, {len(two)} overlap prompts ranked by both, no other twice")
PY
echo "reward_label: ok"
