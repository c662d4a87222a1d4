# shellcheck shell=bash
# scripts/bench.sh's shared helpers: the load average, one hyperfine case as a row of
# results.tsv, the count of the node commands routectl runs, the raw exec concurrency sweep.
# Sourced by scripts/bench.sh after its names.

load1() { cut -d' ' -f1 /proc/loadavg; }

# hf SCENARIO N CASE RUNS [hyperfine options…] -- COMMAND
hf() {
    local scenario=$1 n=$2 name=$3 runs=$4
    shift 4
    local opts=()
    while [ "$1" != "--" ]; do opts+=("$1"); shift; done
    shift
    local file="$OUT/raw/${scenario}-${n}-${name// /_}.json" load
    load=$(load1)
    hyperfine --style none --runs "$runs" "${opts[@]}" --export-json "$file" "$1" >"$OUT/logs/hyperfine.log" 2>&1 ||
        { cat "$OUT/logs/hyperfine.log" >&2; die "hyperfine failed: $scenario $n $name"; }
    jq -r --arg s "$scenario" --arg n "$n" --arg c "$name" --arg l "$load" \
        '.results[0] | [$s, $n, $c, (.median*1000|.*100|round/100), (.mean*1000|.*100|round/100),
          ((.stddev // 0)*1000|.*100|round/100), (.min*1000|.*100|round/100), (.max*1000|.*100|round/100),
          (.times|length), $l] | @tsv' "$file" | tee -a "$RESULTS"
}

# Count the node commands of a routectl run: `-v` lines on stderr and summary.node_commands.
check_commands() {
    # shellcheck disable=SC2034 # DIR (the lab's directory) is part of the call, unused here
    local n=$1 dir=$2 flush=$3 topo=$4 label=$5
    local log="$OUT/logs/commands-${label}-${n}"
    (eval "$flush")
    "$ROUTECTL" -f "$topo" -v plan >"$log-plan-empty.out" 2>"$log-plan-empty.err" || true
    local plan_cmds apply_cmds apply_json sync_cmds sync_json
    plan_cmds=$(grep -c '^+ ' "$log-plan-empty.err" || true)
    "$ROUTECTL" -f "$topo" -v apply --auto-approve -o json >"$log-apply-empty.json" 2>"$log-apply-empty.err" || true
    apply_cmds=$(grep -c '^+ ' "$log-apply-empty.err" || true)
    apply_json=$(jq '.summary.node_commands' "$log-apply-empty.json")
    local batches readbacks
    # Each node's read is held for its write (one process per node for the whole apply); -v
    # shows the write as `+ (held) NODE: …`: `ip -batch` (netns: the read-back as its last line)
    # or the apply script (containers: READBACK 1, then the file mode and reload, before `ip
    # OPTIONS`).
    batches=$(grep -cE -- '(-batch -| ip -N -d -j)$' "$log-apply-empty.err" || true)
    readbacks=$(($(grep -c '^  | route show table all$' "$log-apply-empty.err" || true) +
        $(grep -cE -- ' 1 [0-7]{4} [a-z]+ ip -N -d -j$' "$log-apply-empty.err" || true)))
    "$ROUTECTL" -f "$topo" -v apply --auto-approve -o json >"$log-apply-sync.json" 2>"$log-apply-sync.err" || true
    sync_cmds=$(grep -c '^+ ' "$log-apply-sync.err" || true)
    sync_json=$(jq '.summary.node_commands' "$log-apply-sync.json")
    local verdict=ok
    [ "$plan_cmds" = "$n" ] && [ "$apply_cmds" = $((2 * n)) ] && [ "$apply_json" = "$n" ] &&
        [ "$batches" = "$n" ] && [ "$readbacks" = "$n" ] && [ "$sync_cmds" = "$n" ] && [ "$sync_json" = "$n" ] ||
        verdict=DEVIATION
    printf '%s\t%s\tplan=%s (want %s)\tapply-from-empty=%s -v lines, node_commands=%s, batches=%s, batches ending in a read-back=%s (want %s, %s, %s, %s)\tapply-in-sync=%s -v lines, node_commands=%s (want %s)\t%s\n' \
        "$label" "$n" "$plan_cmds" "$n" "$apply_cmds" "$apply_json" "$batches" "$readbacks" $((2 * n)) "$n" "$n" "$n" \
        "$sync_cmds" "$sync_json" "$n" "$verdict" | tee -a "$OUT/commands.tsv"
}

# Raw exec concurrency: 64 reads through a transport with J at once, for J in 1 2 4 … 32.
# COMMAND has {} where the node goes. `lxc exec` was seen to hang for good under concurrency
# (2 of 8 concurrent calls, once), so each call is killed after 15 s and failures are timed,
# not fatal: a run near or over 15 s in the raw JSON is such a hang.
exec_sweep() {
    local label=$1 list=$2 command=$3
    [ "$EXEC_SWEEP" = 1 ] || return 0
    for j in 1 2 4 8 16 32; do
        hf "exec-sweep-$label" 64 "64 reads, $j at once" "$RUNS" --warmup 1 -i -- \
            "xargs -P $j -I{} timeout -s KILL 15 $command <$list >/dev/null"
    done
}
