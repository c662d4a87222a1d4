# shellcheck shell=bash
# shellcheck disable=SC2034 # SSH_TOUCHED is read by scripts/bench.sh's cleanup
# scripts/bench.sh's --ssh cases: routectl on the SSH lab (scripts/lab-ssh.sh) against plain
# and multiplexed ssh read rounds, and the handshakes it makes. Sourced by scripts/bench.sh.

SSH_STATE=/var/lib/routectl-lab/ssh-lab
SSH_ADDRS=""
ssh_masters_exit() {
    local a
    for a in $SSH_ADDRS; do
        ssh -F "$SSH_STATE/ssh_config" -o "ControlPath=$WORK/rt/ssh/%C" -O exit "$a" >/dev/null 2>&1
    done
    return 0
}

ssh_logins() { cat "$SSH_STATE"/nodes/*/sshd.log 2>/dev/null | grep -c 'Accepted publickey' || true; }

bench_ssh() {
    local workers=$1 n topo="$WORK/ssh/topology.toml"
    [ "$(id -u)" = 0 ] || die "the SSH lab needs root"
    SSH_TOUCHED=1
    mkdir -p "$WORK/ssh"
    "$ROOT/scripts/lab-ssh.sh" up --nodes "$workers" >"$OUT/logs/lab-ssh.log" 2>&1 ||
        { cat "$OUT/logs/lab-ssh.log" >&2; die "scripts/lab-ssh.sh up failed"; }
    "$ROOT/scripts/lab-ssh.sh" reset-routes >>"$OUT/logs/lab-ssh.log" 2>&1
    "$ROUTECTL" discover --from machines "$SSH_STATE/machines.txt" \
        --ssh-config "$SSH_STATE/ssh_config" --out "$topo" --force -q
    SSH_ADDRS=$(awk '{print $1}' "$SSH_STATE/machines.txt" | tr '\n' ' ')
    {
        echo '#!/bin/sh'
        for a in $SSH_ADDRS; do
            echo "ssh -F $SSH_STATE/ssh_config -o ControlPath=$WORK/rt/ssh/%C -O exit $a >/dev/null 2>&1"
        done
        echo 'exit 0'
    } >"$WORK/ssh/drop-masters"
    chmod +x "$WORK/ssh/drop-masters"
    n=$(wc -w <<<"$SSH_ADDRS")
    printf '%s\n' $SSH_ADDRS >"$WORK/ssh/addrs"
    export ROUTECTL_RUNTIME_DIR=$WORK/rt
    local rc="$ROUTECTL -q -f $topo"
    local read="ip -N -d -j route show table all"
    local cfg="-F $SSH_STATE/ssh_config -o BatchMode=yes"
    hf ssh "$n" "plain parallel ssh read round (no multiplexing)" "$RUNS" -- \
        "xargs -P 0 -I{} ssh $cfg -o ControlMaster=no -o ControlPath=none -T {} $read <$WORK/ssh/addrs >/dev/null"
    hf ssh "$n" "routectl plan, first (no master)" "$RUNS" --prepare "$WORK/ssh/drop-masters" -- \
        "$rc plan"
    $rc apply --auto-approve >/dev/null
    hf ssh "$n" "routectl plan, second (masters kept)" "$RUNS" --warmup 1 -- "$rc plan"
    hf ssh "$n" "routectl apply in sync (masters kept)" "$RUNS" --warmup 1 -- "$rc apply --auto-approve"
    hf ssh "$n" "multiplexed parallel ssh read round" "$RUNS" --warmup 1 -- \
        "xargs -P 0 -I{} ssh $cfg -o ControlMaster=auto -o ControlPath=$WORK/rt/ssh/%C -T {} $read <$WORK/ssh/addrs >/dev/null"
    # Handshakes: a cold start, then 10 plans and an apply.
    ssh_masters_exit
    local before after
    before=$(ssh_logins)
    for _ in 1 2 3 4 5 6 7 8 9 10; do $rc plan >/dev/null; done
    $rc apply --auto-approve >/dev/null
    after=$(ssh_logins)
    printf 'ssh\t%s\thandshakes for 10 plans and an apply (from no master)\t%s\n' "$n" "$((after - before))" |
        tee -a "$OUT/commands.tsv"
    ssh_masters_exit
    "$ROOT/scripts/lab-ssh.sh" reset-routes >>"$OUT/logs/lab-ssh.log" 2>&1
    unset ROUTECTL_RUNTIME_DIR
}
