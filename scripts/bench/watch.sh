# shellcheck shell=bash
# scripts/bench.sh's --watch cases: `reconcile --watch`'s idle CPU and restore latencies on
# the netns and LXD labs. Sourced by scripts/bench.sh.

now_ms() { date +%s%3N; }

# CPU ticks (utime + stime) of a process and its children.
cpu_ticks() {
    local total=0 p
    for p in "$1" $(pgrep -P "$1" || true); do
        [ -r "/proc/$p/stat" ] || continue
        total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
    done
    echo "$total"
}

# watch_row SCENARIO N CASE "ms ms ms …": median, min, max of the trials.
watch_row() {
    local sorted med
    sorted=$(tr ' ' '\n' <<<"$4" | grep . | sort -n)
    med=$(sed -n "$(( ($(wc -l <<<"$sorted") + 1) / 2 ))p" <<<"$sorted")
    printf '%s\t%s\t%s\t%s\t\t\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$med" "$(head -1 <<<"$sorted")" \
        "$(tail -1 <<<"$sorted")" "$(wc -l <<<"$sorted")" "$(load1)" | tee -a "$RESULTS"
}

# until_ms LIMIT_S COMMAND…: runs COMMAND every 10 ms until it succeeds; prints the ms taken
# (or the limit, marked with a trailing !).
until_ms() {
    local limit=$1 t0
    shift
    t0=$(now_ms)
    while ! "$@" >/dev/null 2>&1; do
        if [ $(( $(now_ms) - t0 )) -gt $((limit * 1000)) ]; then echo "$((limit * 1000))!"; return; fi
        sleep 0.01
    done
    echo $(( $(now_ms) - t0 ))
}

has_route() { [ -n "$("${@:1:$#-1}" route show "${!#}" proto 211)" ]; }

# start_watch TOPOLOGY LOG ACCESS: starts `reconcile --watch`, waits until it watches.
start_watch() {
    local extra=()
    [ "$3" = host ] && extra=(--access host)
    "$ROUTECTL" -f "$1" "${extra[@]}" --lock-file "$WORK/watch.lock" reconcile --watch --interval 60s 2>"$2" &
    WATCH_PID=$!
    local t0=$SECONDS
    until grep -q 'watching ' "$2"; do
        [ $((SECONDS - t0)) -lt 30 ] || die "reconcile --watch did not start: $(cat "$2")"
        sleep 0.1
    done
    sleep 2 # the first rounds the watchers' start triggers
}

stop_watch() {
    kill "$WATCH_PID" 2>/dev/null || true
    wait "$WATCH_PID" 2>/dev/null || true
}

bench_watch_netns() {
    local n=$1 dir="$WORK/watch$1"
    echo "== reconcile --watch on $n namespaces (load $(load1))"
    lab_up "$n" "$dir"
    local topo="$dir/topology.toml" ns addr route
    "$ROUTECTL" -f "$topo" apply -y -q
    ns=$(sed -n 1p "$dir/nodes.tsv" | cut -f1)
    addr=$(sed -n 1p "$dir/nodes.tsv" | cut -f3)
    route=$(sed -n 2p "$dir/nodes.tsv" | cut -f4)
    for access in host exec; do
        local log="$OUT/logs/watch-netns-$n-$access.log" c0 c1 hz trials=""
        start_watch "$topo" "$log" "$access"
        hz=$(getconf CLK_TCK)
        c0=$(cpu_ticks "$WATCH_PID")
        sleep "$IDLE"
        c1=$(cpu_ticks "$WATCH_PID")
        printf 'watch\t%s\tidle CPU, %s access (%% of a core over %s s)\t%s\n' "$n" "$access" "$IDLE" \
            "$(awk -v d=$((c1 - c0)) -v hz="$hz" -v s="$IDLE" 'BEGIN { printf "%.3f", 100 * d / hz / s }')" | tee -a "$RESULTS"
        for _ in 1 2 3 4 5; do
            ip -n "$ns" route del "$route"
            trials+=" $(until_ms 10 has_route ip -n "$ns" "$route")"
            sleep 0.5
        done
        watch_row watch "$n" "deleted route restored, $access access (ms)" "$trials"
        trials=""
        for _ in 1 2 3 4 5; do
            ip -n "$ns" addr del "$addr/16" dev eth1
            ip -n "$ns" addr add "$addr/16" dev eth1
            trials+=" $(until_ms 10 has_route ip -n "$ns" "$route")"
            sleep 0.5
        done
        watch_row watch "$n" "address re-add flush repaired, $access access (ms)" "$trials"
        stop_watch
    done
    lab_down
}

bench_watch_lxd() {
    local topo="$WORK/lxd/topology.toml" route trials
    [ -f "$topo" ] || return 0
    route=$(awk -F'\t' '$1 == "worker-2" { print $2; exit }' "$WORK/lxd/routes.tsv")
    echo "== reconcile --watch on the LXD lab (load $(load1))"
    "$ROUTECTL" -f "$topo" apply -y -q
    for access in host exec; do
        start_watch "$topo" "$OUT/logs/watch-lxd-$access.log" "$access"
        trials=""
        # Deleted and polled from the host in the container's namespace (`lxc exec` itself
        # takes 50-500 ms here, which would be most of what is measured).
        local pid
        pid=$(lxc query /1.0/instances/worker-2/state | jq -r .pid)
        for _ in 1 2 3; do
            nsenter -t "$pid" -n ip route del "$route" || true
            trials+=" $(until_ms 10 has_route nsenter -t "$pid" -n ip "$route")"
            sleep 0.5
        done
        watch_row watch-lxd 3 "deleted route restored, $access access (ms)" "$trials"
        trials=""
        for _ in 1 2; do
            local t0
            t0=$(now_ms)
            lxc restart --force worker-2
            until_ms 30 has_route lxc exec worker-2 -- ip "$route" >/dev/null
            trials+=" $(( $(now_ms) - t0 ))"
            sleep 1
        done
        watch_row watch-lxd 3 "restarted container's routes back, $access access (ms from lxc restart)" "$trials"
        stop_watch
    done
}
