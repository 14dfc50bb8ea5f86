#!/usr/bin/env bash
# pipelines/plot.sh — a training curve as a PNG from the --log JSONL files the training
# commands write (sft pretrain/train, reward train, ppo train), drawn by gnuplot.
#
#   pipelines/plot.sh OUT.png TITLE PANEL [PANEL...]
#   PANEL  = YLABEL=SERIES[,SERIES...]     one panel per argument, stacked, sharing the x axis
#   SERIES = LOG:EVENT:FIELD[:LEGEND]      FIELD of every {"event": EVENT} line of LOG against
#                                          its "step" (else "iter", else the line's number)
# e.g. pipelines/plot.sh runs/demo/sft.png "sft train" \
#        "loss=runs/demo/sft.log.jsonl:train:loss:train,runs/demo/sft.log.jsonl:val:loss:held-out"
# A series with no points is left out (with a warning); a picture with none fails (exit 1).
# Needs gnuplot (Debian gnuplot-nox) and node.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '4,10p' "$0" >&2; exit 2; }
out=$1 title=$2
shift 2
command -v gnuplot > /dev/null || { echo "plot: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# extract LOG EVENT FIELD > data: "x y" per matching line (non-numbers skipped)
extract() {
    node -e '
const [log, ev, field] = process.argv.slice(1);
let i = 0, out = [];
for (const line of require("fs").readFileSync(log, "utf8").split("\n")) {
  if (!line.trim()) continue;
  let o; try { o = JSON.parse(line); } catch (e) { continue; }
  if (o.event !== ev) continue;
  i++;
  const y = o[field], x = o.step ?? o.iter ?? o.iteration ?? i;
  if (typeof y === "number" && isFinite(y)) out.push(`${x} ${y}`);
}
process.stdout.write(out.join("\n") + (out.length ? "\n" : ""));' "$@"
}

gp="$tmp/plot.gp" np=$# k=0 total=0
esc() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
{
    echo "set terminal pngcairo size 900,$((80 + 260 * np)) font 'sans,11'"
    echo "set output \"$(esc "$out.tmp")\""
    echo "set multiplot layout $np,1 title \"$(esc "$title")\" font 'sans,13'"
    echo "set grid; set key below horizontal; set xlabel 'step'; set xrange [0:*]"
    echo "set style line 1 lc rgb '#9ecae1' lw 1; set style line 2 lc rgb '#d62728' lw 2 pt 7 ps 0.6"
    echo "set style line 3 lc rgb '#2ca02c' lw 2 pt 7 ps 0.6; set style line 4 lc rgb '#1f77b4' lw 2"
} > "$gp"
for panel in "$@"; do
    ylabel=${panel%%=*} series=${panel#*=}
    plotcmd="" s=0
    IFS=, read -r -a list <<< "$series"
    for one in "${list[@]}"; do
        IFS=: read -r log ev field legend <<< "$one"
        k=$((k + 1)) s=$((s + 1))
        data="$tmp/$k.dat"
        if [ -f "$log" ]; then extract "$log" "$ev" "$field" > "$data"; else : > "$data"; fi
        if [ ! -s "$data" ]; then
            echo "plot: warning: no \"$field\" in \"$ev\" events of $log" >&2
            continue
        fi
        total=$((total + 1))
        pts=$(wc -l < "$data")
        # a dense noisy series (per-step training loss) as a thin line, sparse ones with points
        if [ "$pts" -gt 60 ]; then style="with lines ls 1"
        else style="with linespoints ls $((s == 1 ? 4 : s))"; fi
        [ "$s" != 2 ] || [ "$pts" -gt 60 ] || style="with linespoints ls 2"
        plotcmd+="${plotcmd:+, }\"$data\" using 1:2 $style title \"$(esc "${legend:-$field}")\""
        if [ "$pts" -gt 60 ]; then # and its trailing mean over a fifteenth of the points
            w=$((pts / 15))
            awk -v w="$w" '{ s += $2; if (NR > w) s -= old[NR % w]; old[NR % w] = $2
                             if (NR >= w) print $1, s / w }' "$data" > "$data.mean"
            plotcmd+=", \"$data.mean\" using 1:2 with lines ls 4 title \"$(esc "${legend:-$field}, mean of $w")\""
        fi
    done
    echo "set ylabel \"$(esc "$ylabel")\"" >> "$gp"
    if [ -n "$plotcmd" ]; then echo "plot $plotcmd" >> "$gp"
    else echo "set label 1 'no data' at graph 0.5,0.5 center; plot NaN notitle; unset label 1" >> "$gp"; fi
done
echo "unset multiplot" >> "$gp"
[ "$total" -gt 0 ] || { echo "plot: no data for $out" >&2; exit 1; }
gnuplot "$gp"
mv "$out.tmp" "$out"
echo "plot: $out" >&2
