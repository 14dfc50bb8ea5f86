#!/usr/bin/env bash
# Data-parallel sft over MPI (two ranks on this machine). With the same global --batch, `mpirun
# -np 2` gives the losses one process gives (within float tolerance: the sums are ordered
# differently), step by step and on validation, for `sft pretrain` and `sft train`; the batch
# (5) does not divide by the ranks, and in sft train the ranks hold different numbers of kept
# tokens, so both the uneven share and the token weighting of the gradients are exercised. At
# every checkpoint both ranks hold bit-identical parameters (a checksum compared across the
# ranks, logged as a "dist" event). A run started on 2 ranks resumes on 1 and continues as the
# single-process run does. A rank killed mid-run stops the job with a message naming it, and
# the last checkpoint resumes. Skipped when built without MPI (make MPI=0) or without mpirun.
set -euo pipefail
: "${BIN:?BIN must be the absolute path of build/bin}"
source "$(dirname "${BASH_SOURCE[0]}")/mpi_env.bash"
mpi_skip_unless "$BIN/sft"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
jnum() { sed -n "s/^ *\"$2\": \([-0-9.eE+]*\),\{0,1\}\$/\1/p" "$1" | head -n 1; }
mpi2() { timeout 300 mpirun -np 2 "$@"; }

# losses EVENT LOG: "step loss" per line of the log's EVENT events
losses() {
    grep "\"event\":\"$1\"" "$2" |
        sed -n 's/.*"step":\([0-9]*\),"loss":\([-0-9.eE+]*\).*/\1 \2/p'
}
# same_losses EVENT A B [FROM]: the same steps (from FROM on), each loss within 1e-5 relative
same_losses() {
    local from=${4:-0}
    losses "$1" "$2" | awk -v f="$from" '$1 >= f' >a.txt
    losses "$1" "$3" | awk -v f="$from" '$1 >= f' >b.txt
    [ -s a.txt ] || fail "$2: no $1 losses"
    cut -d' ' -f1 a.txt | cmp -s - <(cut -d' ' -f1 b.txt) || fail "$2 / $3: other $1 steps"
    paste -d' ' a.txt b.txt | awk -v what="$1 $2 vs $3" '
        { d = $2 - $4; if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2);
          if (r > worst) worst = r; if (r > 1e-5) { print what ": step " $1 ": " $2 " vs " $4; bad = 1 } }
        END { printf "%s: %d losses agree (worst relative difference %.2g)\n", what, NR, worst; exit bad }'
}
# identical LOG N: N "dist" events on 2 ranks, every one "same"
identical() {
    local n
    n=$(grep '"event":"dist"' "$1" | grep '"ranks":2' | grep -c '"same":true' || true)
    [ "$n" -eq "$2" ] || fail "$1: $n checksum checks on 2 ranks, expected $2"
    grep '"event":"dist"' "$1"
}

"$BIN/sft" world --out w --seed 1 --size tiny >/dev/null

# sft pretrain: one process vs two ranks, global batch 5
P=(--corpus w/corpus.train.txt --val w/corpus.val.txt --config tiny --seq 32 --vocab-size 512
   --steps 12 --batch 5 --eval-every 6 --threads 1)
"$BIN/sft" pretrain "${P[@]}" --out p1 --log p1.jsonl >p1.out 2>&1 || fail "pretrain: $(tail -3 p1.out)"
mpi2 "$BIN/sft" pretrain "${P[@]}" --out p2 --log p2.jsonl >p2.out 2>&1 ||
    fail "mpirun pretrain: $(tail -5 p2.out)"
same_losses train p1.jsonl p2.jsonl
same_losses val p1.jsonl p2.jsonl
identical p2.jsonl 2
grep -q '"ranks": 2' p2/run.json || fail "p2/run.json: ranks"
[ "$(grep -c 'sft pretrain: p2 done' p2.out)" -eq 1 ] || fail "pretrain: rank 0 alone prints"

# sft train from p1: one process vs two ranks, global batch 5
S=(--base p1 --demos w/demos.train.jsonl --val-demos w/demos.val.jsonl --steps 12 --batch 5
   --eval-every 6 --threads 1)
"$BIN/sft" train "${S[@]}" --out s1 --log s1.jsonl >s1.out 2>&1 || fail "train: $(tail -3 s1.out)"
mpi2 "$BIN/sft" train "${S[@]}" --out s2 --log s2.jsonl >s2.out 2>&1 ||
    fail "mpirun train: $(tail -5 s2.out)"
same_losses train s1.jsonl s2.jsonl
same_losses val s1.jsonl s2.jsonl
identical s2.jsonl 2

# started on 2 ranks, stopped at step 6, resumed on 1: continues as the single-process run
mpi2 "$BIN/sft" train "${S[@]}" --out r --log r.jsonl --stop-at 6 >r.out 2>&1 ||
    fail "mpirun stop-at: $(tail -5 r.out)"
grep -q '"status": "stopped"' r/run.json || fail "stop-at on 2 ranks: run.json status"
"$BIN/sft" train --out r --resume --threads 1 --log r.jsonl >>r.out 2>&1 ||
    fail "resume on 1 rank: $(tail -3 r.out)"
grep -q '"status": "done"' r/run.json && grep -q '"ranks": 1' r/run.json ||
    fail "resume on 1 rank: run.json"
same_losses train s1.jsonl r.jsonl 7

# a rank killed mid-run: the job stops naming it; the last checkpoint is intact and resumes
mpirun -np 2 "$BIN/sft" train "${S[@]}" --steps 100000 --eval-every 5 --out k >k.out 2>&1 &
mpid=$!
for _ in $(seq 600); do [ -s k/train_state.bin ] && break; sleep 0.1; done
[ -s k/train_state.bin ] || { kill "$mpid"; fail "no checkpoint from the run to kill"; }
victim=""
for pid in $(pgrep -P "$mpid"); do
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$pid
done
[ -n "$victim" ] || { kill "$mpid"; fail "rank 1's process not found"; }
kill -9 "$victim"
rc=0; timeout 60 tail --pid="$mpid" -f /dev/null || rc=$?
[ $rc -eq 0 ] || fail "mpirun did not stop after rank 1 died"
rc=0; wait "$mpid" || rc=$?
[ $rc -ne 0 ] || fail "mpirun exited 0 after a rank died"
cat k.out | tail -n 8
grep -q 'rank 1' k.out || fail "the message does not name rank 1: $(tail -5 k.out)"
step=$(jnum k/run.json step)
mpi2 "$BIN/sft" train --out k --resume --stop-at $((step + 2)) --threads 1 >>k.out 2>&1 ||
    fail "resume after the kill: $(tail -5 k.out)"
grep -q '"status": "stopped"' k/run.json && [ "$(jnum k/run.json step)" -eq $((step + 2)) ] ||
    fail "resume after the kill: run.json"
echo "ok"
