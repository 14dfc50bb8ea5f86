#!/usr/bin/env bash
# tests/it/demo_quick.sh: `make demo QUICK=1` end to end — pipelines/instructgpt.sh with real
# processes, a real rankings database and a real reward server, on the tiny configuration:
#  - the first run goes through every stage and ends with the table (base / SFT / PPO rows),
#    summary.json (ppo eval's fields, the three models' figures, seconds per stage, the PNGs),
#    four PNG curves, and no `reward serve` left running;
#  - a second run skips every stage (markers) and writes the same figures;
#  - a changed PPO setting redoes PPO and evaluation only; SIGINT to the script's process group
#    during PPO stops it (exit 130) with no server left behind, and the next run continues the
#    PPO checkpoint (--resume) instead of starting over, then finishes.
set -euo pipefail
: "${BIN:?set BIN to the absolute path of build/bin}"
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
OUT=$tmp/demo
pg=""
cleanup() {
    [ -z "$pg" ] || kill -KILL -- "-$pg" 2>/dev/null || true
    for p in $(servers); do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
# servers: pids of `reward serve` processes serving this test's models
servers() {
    local f
    for f in /proc/[0-9]*/cmdline; do
        { tr '\0' ' ' < "$f"; } 2> /dev/null | grep -q "reward serve --model $OUT/" || continue
        f=${f#/proc/}
        echo "${f%/cmdline}"
    done
}
# The pipeline needs every stage's program; on a branch without them it has nothing to run.
for c in "reward train" "ppo train"; do
    $BIN/$c --help > /dev/null 2>&1 || { echo "skipped: $c is not built here"; exit 0; }
done
demo() { QUICK=1 OUT=$OUT BIN=$BIN bash "$root/pipelines/instructgpt.sh" "$@"; }
js() { node -e 'const o = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
                const v = eval(process.argv[2]); console.log(v === undefined ? "" : v);' "$1" "$2"; }

# ---- 1. the whole pipeline ---------------------------------------------------------------------
t0=$(date +%s)
demo > "$tmp/run1.out" 2> "$tmp/run1.err" || { tail -40 "$tmp/run1.err"; fail "first run failed"; }
echo "first run: $(($(date +%s) - t0)) s"
cat "$tmp/run1.out"
for s in world pretrain sft sample label rm ppo eval; do
    grep -q "^   $s: [0-9.]* s$" "$tmp/run1.err" || fail "stage $s did not report its seconds"
done
grep -q 'reward serve (pid [0-9]*) listening on tcp://127.0.0.1:' "$tmp/run1.err" || fail "no server"
[ -z "$(servers)" ] || fail "reward serve left running after the run: $(servers)"
for m in base SFT PPO; do grep -q "^$m " "$tmp/run1.out" || fail "no $m row in the table"; done
grep -q '^    SFT .*$' "$tmp/run1.out" && grep -q '^    PPO ' "$tmp/run1.out" || fail "no samples"
S=$OUT/summary.json
for f in n k policy_reward win_rate win_rate_ci kl gold_policy gold_baseline gold_win_rate \
    gold_win_rate_ci models.base.demo_loss models.sft.gold models.ppo.gold_win_rate_ci \
    models.ppo.ended stages.ppo.seconds reward_model.eval.accuracy samples.length; do
    [ -n "$(js "$S" "o.$f")" ] || fail "summary.json has no $f"
done
# the table shows summary.json's figures
want=$(js "$S" 'o.gold_win_rate.toFixed(2)')
grep -q "^PPO .* $want \[" "$tmp/run1.out" || fail "PPO row lacks the gold win rate $want"
[ "$(js "$S" o.n)" = 16 ] || fail "expected 16 evaluation prompts"
[ "$(js "$S" 'o.models.sft.demo_loss < o.models.base.demo_loss')" = true ] ||
    fail "SFT does not lower the held-out demonstration loss"
[ "$(js "$S" 'o.plots.length')" = 4 ] || fail "summary names $(js "$S" 'o.plots') as its curves"
for p in base sft rm ppo; do
    [ "$(head -c 8 "$OUT/$p.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
        fail "$OUT/$p.png is not a PNG"
done
# the database holds K=3 completions per prompt and the simulated rankings
[ "$(js "$OUT/eval/rm.json" 'o.rankings > 0')" = true ] || fail "no held-out rankings"

# ---- 2. a re-run skips every stage -------------------------------------------------------------
cp "$S" "$tmp/summary1.json"
demo > "$tmp/run2.out" 2> "$tmp/run2.err" || { tail -20 "$tmp/run2.err"; fail "second run failed"; }
[ "$(grep -c '   done already' "$tmp/run2.err")" = 8 ] || { cat "$tmp/run2.err"; fail "not every stage skipped"; }
! grep -q 'reward serve (pid' "$tmp/run2.err" || fail "a server was started for nothing"
[ "$(js "$S" o.gold_win_rate)" = "$(js "$tmp/summary1.json" o.gold_win_rate)" ] || fail "figures changed"

# ---- 3. Ctrl-C during PPO (a changed PPO setting: PPO and eval only run again) ------------------
export PPO_STEPS=200 # many: a tiny iteration takes milliseconds, and the Ctrl-C must land in PPO
rm -f "$OUT/ppo.log.jsonl" # the new PPO run's log (a fresh run's is started anew)
setsid bash -c 'QUICK=1 OUT=$0 BIN=$1 exec bash "$2/pipelines/instructgpt.sh"' "$OUT" "$BIN" "$root" \
    > "$tmp/run3.out" 2> "$tmp/run3.err" &
pg=$!
# wait for two PPO iterations in the log (a checkpoint to continue comes with the stop)
for _ in $(seq 1200); do
    [ -f "$OUT/ppo.log.jsonl" ] && [ "$(grep -c '"event": *"train"' "$OUT/ppo.log.jsonl")" -ge 2 ] && break
    kill -0 "$pg" 2>/dev/null || { cat "$tmp/run3.err"; fail "run 3 ended before PPO was interrupted"; }
    sleep 0.1
done
[ -n "$(servers)" ] || fail "no server during PPO"
kill -INT -- "-$pg"
rc=0
wait "$pg" || rc=$?
pg=""
[ "$rc" = 130 ] || { tail -20 "$tmp/run3.err"; fail "interrupted run exited $rc, not 130"; }
grep -q 'instructgpt: interrupted (ppo stopped part-way)' "$tmp/run3.err" || fail "no interruption message"
for _ in $(seq 50); do [ -z "$(servers)" ] && break; sleep 0.1; done
[ -z "$(servers)" ] || fail "reward serve left running after Ctrl-C: $(servers)"
[ "$(grep -c '   done already' "$tmp/run3.err")" = 6 ] || fail "stages before PPO not skipped"
[ ! -f "$OUT/stages/ppo.done" ] || fail "PPO marked done after Ctrl-C"
[ "$(js "$OUT/ppo/run.json" o.status)" = stopped ] || fail "ppo run.json: $(js "$OUT/ppo/run.json" o.status)"

demo > "$tmp/run4.out" 2> "$tmp/run4.err" || { tail -30 "$tmp/run4.err"; fail "resumed run failed"; }
[ "$(grep -c '   done already' "$tmp/run4.err")" = 6 ] || fail "resumed run redid an earlier stage"
grep -q 'continuing the interrupted run' "$tmp/run4.err" || fail "PPO started over"
[ "$(js "$OUT/ppo/run.json" 'o.argv.includes("--resume") && o.results.start_step > 0')" = true ] ||
    fail "ppo train did not continue its checkpoint (start_step $(js "$OUT/ppo/run.json" o.results.start_step))"
[ "$(js "$OUT/ppo/run.json" o.status)" = done ] || fail "PPO not finished"
[ "$(js "$OUT/ppo/run.json" o.results.step)" = 200 ] || fail "PPO at step $(js "$OUT/ppo/run.json" o.results.step)"
[ -z "$(servers)" ] || fail "reward serve left running after the resumed run"
echo "ok"
