#!/usr/bin/env bash
# Data-parallel reward train over MPI (two ranks on this machine). With the same global --batch,
# `mpirun -np 2 reward train` gives the losses one process gives (within float tolerance: the
# sums are ordered differently), step by step, and the same validation accuracy; the batch (5)
# does not divide by the ranks, so the ranks hold different numbers of rankings and the
# weighting of the gradients by rankings is exercised. At every checkpoint both ranks hold
# bit-identical parameters (a checksum compared across the ranks, a "dist" event). Rank 0 alone
# prints and sets the reward bias. Skipped when built without MPI (make MPI=0) or without mpirun.
set -euo pipefail
: "${BIN:?BIN must be the absolute path of build/bin}"
source "$(dirname "${BASH_SOURCE[0]}")/mpi_env.bash"
mpi_skip_unless "$BIN/reward"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
mpi2() { timeout 300 mpirun -np 2 "$@"; }
R="$BIN/reward"

# losses EVENT LOG: "step loss" per line of the log's EVENT events
losses() {
    grep "\"event\":\"$1\"" "$2" |
        sed -n 's/.*"step":\([0-9]*\),"loss":\([-0-9.eE+]*\).*/\1 \2/p'
}
# same_losses EVENT A B: the same steps, each loss within 1e-5 relative
same_losses() {
    losses "$1" "$2" >a.txt
    losses "$1" "$3" >b.txt
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
# accuracies LOG: the validation metric of every "val" event, one per line
accuracies() { grep '"event":"val"' "$1" | sed -n 's/.*"accuracy":\([-0-9.eE+]*\).*/\1/p'; }

"$BIN/sft" world --out w --size tiny --seed 1 >/dev/null
"$BIN/sft" pretrain --corpus w/corpus.train.txt --out base --config tiny --vocab-size 512 \
    --steps 10 --seed 1 --threads 1 >pre.log 2>&1 || { cat pre.log; fail "pretrain"; }
"$BIN/it/world_db" r.db 60 4 2
"$R" label --db r.db --simulated --seed 1 >label.out 2>&1 || { cat label.out; fail "label"; }

# one process vs two ranks, global batch 5
A=(--db r.db --init base --steps 8 --eval-every 4 --lr 1e-3 --batch 5 --val-fraction 0.2
   --demos w/demos.train.jsonl --threads 1)
"$R" train "${A[@]}" --out r1 --log r1.jsonl >r1.out 2>&1 || fail "train: $(tail -3 r1.out)"
mpi2 "$R" train "${A[@]}" --out r2 --log r2.jsonl >r2.out 2>&1 ||
    fail "mpirun train: $(tail -5 r2.out)"
same_losses train r1.jsonl r2.jsonl
same_losses val_loss r1.jsonl r2.jsonl
identical r2.jsonl 2
accuracies r1.jsonl >acc1.txt
accuracies r2.jsonl >acc2.txt
[ -s acc1.txt ] && cmp -s acc1.txt acc2.txt ||
    fail "validation accuracy: $(paste -s acc1.txt) vs $(paste -s acc2.txt)"
grep -q '"ranks": 2' r2/run.json || fail "r2/run.json: ranks"
grep -q '"reward_bias"' r2/run.json || fail "r2/run.json: no reward bias"
[ "$(grep -c 'reward train: r2 done' r2.out)" -eq 1 ] || fail "rank 0 alone prints"
echo "ok"
