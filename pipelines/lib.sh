# pipelines/lib.sh — what pipelines/instructgpt.sh and pipelines/headline.sh share (sourced):
# messages, reading JSON, the reward server (started on demand, always stopped: EXIT, INT and
# TERM traps) and the stages with their completion markers.
# The caller sets: PIPE (name in messages), OUT, M (marker directory), STAGES (names in order),
# reward (the program), thr (--threads flags, an array), SERVE_MODEL, SERVE_WAIT (seconds).
# shellcheck shell=bash

say() { printf '%s\n' "$*" >&2; }
die() { say "$PIPE: error: $*"; exit 1; }
now() { date +%s.%N; }
# js FILE EXPR: EXPR evaluated with o = FILE's JSON (node is there: make deps needs npm)
js() { node -e 'const o = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
                const v = eval(process.argv[2]); console.log(v === undefined ? "" : v);' "$1" "$2"; }

# ---- the reward server: started on demand, always stopped ----------------------------------
serve_pid="" EP=""
stop_server() {
    [ -n "$serve_pid" ] || return 0
    if kill -0 "$serve_pid" 2>/dev/null; then
        kill -TERM "$serve_pid" 2>/dev/null || true
        # it finishes the batch in hand and exits; a stuck one gets SIGKILL after 5 s
        for _ in $(seq 50); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$serve_pid" 2>/dev/null || true
    fi
    wait "$serve_pid" 2>/dev/null || true
    say "   reward serve (pid $serve_pid) stopped"
    serve_pid="" EP=""
}
interrupted() { say ""; say "$PIPE: interrupted ($1): run the same command again to resume"; exit "$2"; }
trap stop_server EXIT
trap 'interrupted SIGINT 130' INT
trap 'interrupted SIGTERM 143' TERM

# The server runs in its own session (setsid), so a Ctrl-C meant for the stage in the
# foreground does not reach it: it keeps answering until this script stops it.
start_server() {
    [ -z "$serve_pid" ] || return 0
    # One thread unless THREADS is given: the server shares the cores with ppo, whose OpenMP
    # threads would otherwise be preempted by the server's while it scores.
    local serve_thr=(--threads "${THREADS:-1}")
    local epf="$OUT/serve.endpoint"
    rm -f "$epf"
    setsid "$reward" serve --model "$SERVE_MODEL" --bind 'tcp://127.0.0.1:*' \
        --endpoint-file "$epf" --log "$OUT/serve.log.jsonl" "${serve_thr[@]}" \
        > "$OUT/serve.out" 2> "$OUT/serve.err" < /dev/null &
    serve_pid=$!
    local t=0
    while [ ! -s "$epf" ]; do
        kill -0 "$serve_pid" 2>/dev/null ||
            { cat "$OUT/serve.err" >&2; serve_pid=""; die "reward serve exited (log: $OUT/serve.err)"; }
        t=$((t + 1))
        [ "$t" -le $((SERVE_WAIT * 10)) ] || die "reward serve did not listen within $SERVE_WAIT s"
        sleep 0.1
    done
    EP=$(head -n 1 "$epf")
    say "   reward serve (pid $serve_pid) listening on $EP"
}

# ---- stages -----------------------------------------------------------------------------------
prev="start" stage_t0=0 stage_name="" stage_fresh=0 n=0
# begin NAME TITLE SETTINGS...: 0 when the stage must run (stage_fresh=1 when it starts
# afresh rather than continuing an interrupted run of the same settings), 1 when done already.
begin() {
    stage_name=$1
    local title=$2
    shift 2
    n=$((n + 1))
    stage_hash=$(printf '%s\n' "$prev" "$@" | sha256sum | cut -c1-16)
    prev=$stage_hash
    printf '\n== %d/%d %s: %s\n' "$n" "${#STAGES[@]}" "$stage_name" "$title" >&2
    if [ "$(cut -d' ' -f1 "$M/$stage_name.done" 2>/dev/null)" = "$stage_hash" ]; then
        say "   done already ($(cut -d' ' -f2 "$M/$stage_name.done") s; marker $M/$stage_name.done): skipped"
        return 1
    fi
    # this stage and every later one run again
    local s after=0
    for s in "${STAGES[@]}"; do
        [ "$s" = "$stage_name" ] && after=1
        [ "$after" = 0 ] || rm -f "$M/$s.done"
    done
    if [ "$(cat "$M/$stage_name.started" 2>/dev/null)" = "$stage_hash" ]; then
        stage_fresh=0
        say "   continuing the interrupted run of these settings"
    else
        stage_fresh=1
        echo "$stage_hash" > "$M/$stage_name.started"
    fi
    stage_t0=$(now)
    return 0
}
finish() {
    local secs
    secs=$(awk -v a="$stage_t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    echo "$stage_hash $secs" > "$M/$stage_name.done.tmp"
    mv "$M/$stage_name.done.tmp" "$M/$stage_name.done"
    say "   $stage_name: $secs s"
}
# resume_flag DIR LOG: --resume when DIR holds a checkpoint of this stage's settings (the run
# appends to LOG), else --overwrite (LOG starts anew)
resume_flag() {
    if [ "$stage_fresh" = 0 ] && [ -f "$1/train_state.bin" ] && [ -f "$1/run.json" ]; then
        echo --resume
    else
        rm -f "$2"
        echo --overwrite
    fi
}
# trained DIR: the training command ended its run. A training command stops part-way on
# Ctrl-C, saves and exits 0 (run.json status "stopped"); bash then does not run the INT trap
# (the child handled the signal), so the stop is noticed here.
trained() {
    local st
    st=$(js "$1/run.json" o.status)
    [ "$st" != stopped ] || interrupted "$stage_name stopped part-way" 130
    [ "$st" = done ] || die "$1/run.json: status $st, not done"
}

