# shellcheck shell=bash
# scripts/bench.sh's netns cases: a lab of N network namespaces and routectl against the
# per-route loop and `ip -batch`. Sourced by scripts/bench.sh.

# nodes.tsv: namespace, node name, internal IP, pod CIDR, pod gateway (same addressing as
# benches/common/mod.rs).
lab_up() {
    local n=$1 dir=$2
    mkdir -p "$dir/batch"
    awk -v n="$n" -v p="$PFX" 'BEGIN { for (i = 0; i < n; i++) { a = i + 10; b = 64 + int(i / 256)
        printf "%s-%05d\tnode-%05d\t10.0.%d.%d\t10.%d.%d.0/24\t10.%d.%d.1\n", p, i, i, int(a / 256), a % 256, b, i % 256, b, i % 256 } }' \
        >"$dir/nodes.tsv"
    cut -f1 "$dir/nodes.tsv" >"$dir/namespaces"
    {
        printf '[cluster]\ninterface = "eth1"\ntransport = "netns"\npod_cidr = "10.64.0.0/10"\n'
        awk -F'\t' '{ printf "\n[[nodes]]\nname = \"%s\"\ninstance = \"%s\"\ninternal_ip = \"%s\"\npod_cidr = \"%s\"\n", $2, $1, $3, $4 }' "$dir/nodes.tsv"
    } >"$dir/topology.toml"
    # Per node, the routes to every other node: a batch file, and the per-route loop.
    awk -F'\t' -v dir="$dir" '{ ns[NR] = $1; ip[NR] = $3; pod[NR] = $4 }
        END { for (i = 1; i <= NR; i++) { f = dir "/batch/" ns[i]
            for (j = 1; j <= NR; j++) if (j != i) {
                printf "route add %s via %s dev eth1 proto 211\n", pod[j], ip[j] > f
                printf "ip -n %s route add %s via %s dev eth1 proto 211\n", ns[i], pod[j], ip[j] > (dir "/loop.sh") }
            close(f) } }' "$dir/nodes.tsv"
    local hub="$PFX-hub"
    ip netns add "$hub"
    printf 'link set lo up\nlink add br0 type bridge\nlink set br0 up\n' | ip -n "$hub" -batch -
    local i=0 hubscript=""
    while IFS=$'\t' read -r ns _ addr _ gw; do
        ip netns add "$ns"
        hubscript+="link add v$i type veth peer name eth1 netns $ns"$'\n'"link set v$i master br0"$'\n'"link set v$i up"$'\n'
        i=$((i + 1))
    done <"$dir/nodes.tsv"
    printf '%s' "$hubscript" | ip -n "$hub" -batch -
    while IFS=$'\t' read -r ns _ addr _ gw; do
        printf 'link set lo up\nlink set eth1 up\naddr add %s/16 dev eth1\nlink add cnio0 type bridge\nlink set cnio0 up\naddr add %s/24 dev cnio0\n' \
            "$addr" "$gw" | ip -n "$ns" -batch -
    done <"$dir/nodes.tsv"
}

lab_down() {
    for ns in $(ip netns list | awk '{print $1}' | grep "^${PFX}-"); do ip netns del "$ns"; done
}

# One parallel round of reads (no routectl): xargs with 4 and 16 lanes, and every node at once
# from a shell loop; the fastest is the reference routectl is held to.
read_rounds() {
    local n=$1 list=$2 state=$3
    local read="ip -n {} -N -d -j route show table all"
    hf netns "$n" "read round $state (4 lanes)" "$RUNS" --warmup 2 -- "xargs -P 4 -I{} $read <$list >/dev/null"
    hf netns "$n" "read round $state (16 lanes)" "$RUNS" --warmup 2 -- "xargs -P 16 -I{} $read <$list >/dev/null"
    hf netns "$n" "read round $state (all at once)" "$RUNS" --warmup 2 -- \
        "for ns in \$(cat $list); do ip -n \$ns -N -d -j route show table all >/dev/null & done; wait"
}

bench_netns() {
    local n=$1
    local dir="$WORK/n$n"
    echo "== netns lab, $n nodes (load $(load1))"
    local t0=$SECONDS
    lab_up "$n" "$dir"
    echo "   lab up in $((SECONDS - t0)) s"
    local topo="$dir/topology.toml" ns_list="$dir/namespaces"
    local flush="xargs -P 8 -I{} sh -c 'ip -n {} route flush proto 211 2>/dev/null || true' <$ns_list"
    local slow=$RUNS
    [ "$n" -ge 100 ] && slow=$SLOW_RUNS

    read_rounds "$n" "$ns_list" "from empty"
    hf netns "$n" "plan from empty" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo plan"
    hf netns "$n" "apply from empty" "$RUNS" --warmup 1 --prepare "$flush" -- \
        "$ROUTECTL -f $topo apply --auto-approve"
    if [ -n "$BASELINE" ]; then
        hf netns "$n" "apply from empty (baseline build)" "$RUNS" --warmup 1 --prepare "$flush" -- \
            "$BASELINE -f $topo apply --auto-approve"
    fi
    if [ "$HOST" = 1 ]; then
        (eval "$flush")
        hf netns "$n" "plan from empty (host access)" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo --access host plan"
        hf netns "$n" "apply from empty (host access)" "$RUNS" --warmup 1 --prepare "$flush" -- \
            "$ROUTECTL -f $topo --access host apply --auto-approve"
    fi
    check_commands "$n" "$dir" "$flush" "$topo" netns
    read_rounds "$n" "$ns_list" "in sync"
    hf netns "$n" "plan in sync" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo plan"
    hf netns "$n" "apply in sync" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo apply --auto-approve"
    if [ "$HOST" = 1 ]; then
        hf netns "$n" "plan in sync (host access)" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo --access host plan"
        hf netns "$n" "apply in sync (host access)" "$RUNS" --warmup 1 -- \
            "$ROUTECTL -f $topo --access host apply --auto-approve"
    fi
    hf netns "$n" "per-route loop (ip route add)" "$slow" --prepare "$flush" -- "bash $dir/loop.sh"
    hf netns "$n" "batch per node, sequential" "$RUNS" --warmup 1 --prepare "$flush" -- \
        "for ns in \$(cat $ns_list); do ip -n \$ns -batch - <$dir/batch/\$ns; done"
    hf netns "$n" "batch per node, 8 lanes" "$RUNS" --warmup 1 --prepare "$flush" -- \
        "xargs -P 8 -I{} sh -c 'ip -n {} -batch - <$dir/batch/{}' <$ns_list"
    if [[ " $SWEEP_SIZES " == *" $n "* ]]; then
        for j in $SWEEP; do
            "$ROUTECTL" -f "$topo" apply -y -q
            hf netns-sweep "$n" "plan in sync -j $j" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo -j $j plan"
            hf netns-sweep "$n" "apply from empty -j $j" "$RUNS" --warmup 1 --prepare "$flush" -- \
                "$ROUTECTL -f $topo -j $j apply --auto-approve"
        done
    fi
    (eval "$flush")
    lab_down
}
