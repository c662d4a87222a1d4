# shellcheck shell=bash
# scripts/bench.sh's --offline cases: `routectl plan --observed` of synthetic clusters.
# Sourced by scripts/bench.sh.

bench_offline() {
    local n=$1
    local dir="$WORK/offline-$n"
    echo "== offline plan --observed, $n nodes (load $(load1))"
    for state in in-sync empty; do
        (cd "$ROOT" && cargo bench --quiet --bench gen_observed -- --out "$dir-$state" --nodes "$n" --state "$state") >/dev/null
        # The text plan and the JSON document of the same plan (the JSON is to stay within 2x
        # of the text's time; both streamed to stdout).
        local output
        for output in text json; do
            local cmd="$ROUTECTL -f $dir-$state/topology.toml plan --observed $dir-$state/observed --output $output"
            hf offline "$n" "plan --observed $state --output $output" "$SLOW_RUNS" --warmup 1 -- "$cmd"
            local rss=()
            for _ in 1 2 3; do
                /usr/bin/time -f '%M' -o "$WORK/rss" $cmd >/dev/null
                rss+=("$(cat "$WORK/rss")")
            done
            local med
            med=$(printf '%s\n' "${rss[@]}" | sort -n | sed -n 2p)
            printf 'offline\t%s\tpeak RSS %s --output %s (KB, median of 3)\t%s\n' "$n" "$state" "$output" "$med" | tee -a "$OUT/rss.tsv"
        done
        rm -rf "$dir-$state"
    done
}
