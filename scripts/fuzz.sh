#!/usr/bin/env bash
# Coverage-guided fuzzing of routectl's parsers of untrusted input:
#   topology    routectl::topology::parse     (the TOML topology file)
#   iproute     routectl::iproute::parse_routes / parse_stream (what `ip -j` prints)
#   saved_plan  routectl::core::saved::parse + its checks (`routectl apply PLAN_FILE`)
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]    (default 600, every target)
#
# Uses cargo-fuzz (libFuzzer) on the stable toolchain: with `--sanitizer none` cargo-fuzz passes
# only stable flags (-Cpasses=sancov-module, -Cllvm-args=-sanitizer-coverage-*, --cfg fuzzing),
# so no nightly and no RUSTC_BOOTSTRAP are needed. No sanitizer: routectl is safe Rust (one
# kill(2) call aside); what the targets find are panics, failed invariants, aborts, timeouts and
# out-of-memory. Both targets run at once, each on one core, at the lowest priority.
# Installs what it needs (a C++ compiler for libFuzzer, cargo-fuzz). Crashes land in
# fuzz/artifacts/TARGET/, logs in fuzz/logs/; exits 1 when a target found something.
set -euo pipefail

seconds=${1:-600}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"

if ! command -v c++ >/dev/null; then
    apt-get update -q && apt-get install -y -q --no-install-recommends g++
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets=(topology iproute saved_plan)
if [ $# -gt 0 ]; then
    targets=("$@")
fi
nice -n 19 cargo fuzz build --sanitizer none -O

# Seeds: the malformed-topology corpus, the example topology, real `ip -j` captures and the
# hostile node outputs of the test suite. The corpus directories keep what earlier runs found.
mkdir -p corpus/topology corpus/iproute corpus/saved_plan logs
cp -f "$root"/topology.example.toml "$root"/tests/topologies/*.toml corpus/topology/ 2>/dev/null || true
cp -f "$root"/tests/fixtures/ip/* corpus/iproute/ 2>/dev/null || true
cp -f "$root"/tests/fixtures/node_output/* corpus/iproute/ 2>/dev/null || true
cp -f "$root"/fuzz/seeds/saved_plan/* corpus/saved_plan/

pids=()
for t in "${targets[@]}"; do
    nice -n 19 cargo fuzz run --sanitizer none -O "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -dict="dict/$t.dict" -print_final_stats=1 >"logs/$t.log" 2>&1 &
    pids+=($!)
done
status=0
for i in "${!targets[@]}"; do
    if ! wait "${pids[$i]}"; then
        status=1
    fi
done

for t in "${targets[@]}"; do
    echo "== $t"
    grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "logs/$t.log" | tail -n 1 || true
    grep -E 'stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "logs/$t.log" || true
    echo "corpus directory: $(find "corpus/$t" -type f | wc -l) files (libFuzzer keeps superseded inputs; corp: above is the live corpus)"
    if compgen -G "artifacts/$t/*" >/dev/null; then
        echo "FINDINGS:"
        ls -l "artifacts/$t/"
        grep -E 'panicked|ERROR: libFuzzer|SUMMARY' "logs/$t.log" | head -n 5 || true
    else
        echo "findings: none"
    fi
done
exit "$status"
