# shellcheck shell=bash
# shellcheck disable=SC2034 # LXD_TOUCHED is read by scripts/bench.sh's cleanup
# scripts/bench.sh's LXD cases (--lxd): routectl on the running LXD lab against the
# tutorial-style loop, with host access and the optional Ansible playbook. Sourced by
# scripts/bench.sh.

lxd_topology() {
    lxc list --format json | jq -r --arg nodes "$LXD_NODES" '
        ($nodes | split(" ")) as $want
        | [.[] | select(.name as $n | $want | index($n))] | sort_by(.name)
        | "[cluster]\ninterface = \"eth1\"\ntransport = \"lxc\"\n",
          (.[] | . as $i
            | ($i.state.network.eth1.addresses[] | select(.family == "inet") | .address) as $ip
            | ($i.state.network.cnio0.addresses[] | select(.family == "inet")) as $pod
            | "[[nodes]]\nname = \"\($i.name)\"\ninternal_ip = \"\($ip)\"\npod_cidr = \"\($pod.address | split(".") | .[0:3] | join(".")).0/\($pod.netmask)\"\n")'
}

# Skips the LXD part (with a message, not a failure) when there is no lab to use.
lxd_skip() {
    echo "== LXD lab skipped: $*" | tee -a "$OUT/machine.txt" >&2
}

bench_lxd() {
    command -v lxc >/dev/null || { lxd_skip "lxc is not installed"; return 0; }
    # The lab is shared with the test suite: take its lock (held until this script exits).
    exec {LAB_LOCK_FD}>>/tmp/routectl-test-lxd-lab.lock
    flock -n "$LAB_LOCK_FD" || { echo "   waiting for the LXD lab's lock (a test holds it)"; flock "$LAB_LOCK_FD"; }
    lxc list >/dev/null 2>&1 || { lxd_skip "lxc list fails (is the LXD daemon up?)"; return 0; }
    for n in $LXD_NODES; do
        [ "$(lxc list --format json | jq -r --arg n "$n" '.[] | select(.name == $n) | .status')" = Running ] ||
            { lxd_skip "$n is not running"; return 0; }
    done
    # With the lock held, routes of protocol 211 are what the last test left (each test resets
    # the lab when it takes it): start from none.
    for n in $LXD_NODES; do lxc exec "$n" -- ip route flush proto 211; done
    local dir="$WORK/lxd" topo n_nodes
    mkdir -p "$dir"
    lxd_topology >"$dir/topology.toml"
    topo="$dir/topology.toml"
    "$ROUTECTL" -f "$topo" validate >/dev/null
    n_nodes=$(echo $LXD_NODES | wc -w)
    # The routes every node gets, as (node, pod CIDR, gateway).
    lxc list --format json | jq -r --arg nodes "$LXD_NODES" '
        ($nodes | split(" ")) as $want
        | [.[] | select(.name as $n | $want | index($n))
           | {name, ip: (.state.network.eth1.addresses[] | select(.family == "inet") | .address),
              pod: (.state.network.cnio0.addresses[] | select(.family == "inet")
                    | "\(.address | split(".") | .[0:3] | join(".")).0/\(.netmask)")}] as $all
        | $all[] as $a | $all[] | select(.name != $a.name) | "\($a.name)\t\(.pod)\t\(.ip)"' >"$dir/routes.tsv"
    awk -F'\t' '{ printf "lxc exec %s -- ip route add %s via %s dev eth1 proto 211\n", $1, $2, $3 }' "$dir/routes.tsv" >"$dir/loop-add.sh"
    awk -F'\t' '{ printf "lxc exec %s -- ip route replace %s via %s dev eth1 proto 211\n", $1, $2, $3 }' "$dir/routes.tsv" >"$dir/loop-replace.sh"
    for n in $LXD_NODES; do
        awk -F'\t' -v n="$n" '$1 == n { printf "route add %s via %s dev eth1 proto 211\n", $2, $3 }' "$dir/routes.tsv" >"$dir/batch-$n"
        echo "$n"
    done >"$dir/namespaces"
    {
        echo "for n in $LXD_NODES; do lxc exec \$n -- ip -batch - <$dir/batch-\$n & done; wait"
    } >"$dir/ideal.sh"
    local flush="for node in $LXD_NODES; do lxc exec \$node -- ip route flush proto 211 & done; wait"
    local reads="for node in $LXD_NODES; do lxc exec \$node -- ip -N -d -j route show table all >/dev/null & done; wait"
    LXD_TOUCHED=1
    # RTBENCH_LXD_WATCH_ONLY=1 (with --watch lxd): only the watch on the LXD lab.
    [ "${RTBENCH_LXD_WATCH_ONLY:-0}" = 1 ] && return 0
    echo "== LXD lab: $LXD_NODES ($(wc -l <"$dir/routes.tsv") routes; load $(load1))"
    hf lxd "$n_nodes" "read round from empty (parallel)" "$RUNS" --warmup 2 -- "$reads"
    hf lxd "$n_nodes" "plan from empty" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo plan"
    hf lxd "$n_nodes" "apply from empty" "$RUNS" --warmup 1 --prepare "$flush" -- "$ROUTECTL -f $topo apply --auto-approve"
    if [ -n "$BASELINE" ]; then
        hf lxd "$n_nodes" "apply from empty (baseline build)" "$RUNS" --warmup 1 --prepare "$flush" -- \
            "$BASELINE -f $topo apply --auto-approve"
    fi
    if [ "$HOST" = 1 ]; then
        lxd_host_cases "$n_nodes" "$topo" "$flush"
    fi
    check_commands "$n_nodes" "$dir" "$flush" "$topo" lxd
    hf lxd "$n_nodes" "read round in sync (parallel)" "$RUNS" --warmup 2 -- "$reads"
    hf lxd "$n_nodes" "plan in sync" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo plan"
    hf lxd "$n_nodes" "apply in sync" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo apply --auto-approve"
    hf lxd "$n_nodes" "tutorial loop (ip route add)" "$RUNS" --prepare "$flush" -- "bash $dir/loop-add.sh"
    hf lxd "$n_nodes" "tutorial loop (ip route replace)" "$RUNS" --prepare "$flush" -- "bash $dir/loop-replace.sh"
    hf lxd "$n_nodes" "batch per node, parallel (ideal)" "$RUNS" --warmup 1 --prepare "$flush" -- "bash $dir/ideal.sh"
    for j in 1 2 3; do
        hf lxd-sweep "$n_nodes" "apply from empty -j $j" "$RUNS" --warmup 1 --prepare "$flush" -- \
            "$ROUTECTL -f $topo -j $j apply --auto-approve"
    done
    if [ "$ANSIBLE" = 1 ]; then
        bench_ansible "$dir" "$n_nodes" "$flush"
    fi
    # 64 reads spread over the lab's containers, J at once.
    local all_nodes
    # shellcheck disable=SC2086 # a list of names
    all_nodes=$(printf '%s\n' $LXD_NODES)
    for _ in $(seq 16); do echo "$all_nodes"; done | head -64 >"$dir/exec-list"
    exec_sweep lxd "$dir/exec-list" "lxc exec {} -- ip -N -d -j route show table all"
    (eval "$flush")
}

# lxd_host_cases N_NODES TOPOLOGY FLUSH: host access on the LXD lab, the read round through
# `nsenter` it replaces and the daemon's answers it waits for.
lxd_host_cases() {
    local n_nodes=$1 topo=$2 flush=$3
    local pids="" nsenter_reads
    for node in $LXD_NODES; do pids+=" $(lxc query "/1.0/instances/$node/state" | jq -r .pid)"; done
    nsenter_reads="for pid in$pids; do nsenter -t \$pid -n ip -N -d -j route show table all >/dev/null & done; wait"
    (eval "$flush")
    hf lxd "$n_nodes" "read round from empty via nsenter (parallel)" "$RUNS" --warmup 2 -- "$nsenter_reads"
    hf lxd "$n_nodes" "plan from empty (host access)" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo --access host plan"
    hf lxd "$n_nodes" "apply from empty (host access)" "$RUNS" --warmup 1 --prepare "$flush" -- \
        "$ROUTECTL -f $topo --access host apply --auto-approve"
    hf lxd "$n_nodes" "plan in sync (host access)" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo --access host plan"
    if [ -n "$BASELINE" ]; then
        (eval "$flush")
        hf lxd "$n_nodes" "plan from empty (host access, baseline build)" "$RUNS" --warmup 1 -- \
            "$BASELINE -f $topo --access host plan"
        hf lxd "$n_nodes" "apply from empty (host access, baseline build)" "$RUNS" --warmup 1 --prepare "$flush" -- \
            "$BASELINE -f $topo --access host apply --auto-approve"
    fi
    hf lxd "$n_nodes" "read round in sync via nsenter (parallel)" "$RUNS" --warmup 2 -- "$nsenter_reads"
    hf lxd "$n_nodes" "LXD API instances recursion=2 (curl)" "$RUNS" --warmup 2 -- \
        "curl -s --unix-socket /var/lib/lxd/unix.socket 'http://lxd/1.0/instances?recursion=2' >/dev/null"
    hf lxd "$n_nodes" "LXD API instances recursion=1 (curl)" "$RUNS" --warmup 2 -- \
        "curl -s --unix-socket /var/lib/lxd/unix.socket 'http://lxd/1.0/instances?recursion=1' >/dev/null"
    # What host access asks outside a cluster: the list and each node's state, side by side.
    hf lxd "$n_nodes" "LXD API list and each state in parallel (curl)" "$RUNS" --warmup 2 -- \
        "curl -s --unix-socket /var/lib/lxd/unix.socket 'http://lxd/1.0/instances?recursion=1' >/dev/null &
             for n in $LXD_NODES; do curl -s --unix-socket /var/lib/lxd/unix.socket http://lxd/1.0/instances/\$n/state >/dev/null & done; wait"
}

bench_ansible() {
    local dir=$1 n_nodes=$2 flush=$3 venv="$WORK/venv"
    if [ -n "${RTBENCH_VENV:-}" ]; then
        venv=$RTBENCH_VENV # a venv kept from an earlier run (not removed)
    else
        echo "   installing ansible-core and community.general (PyPI package ansible) into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q ansible >"$OUT/logs/pip.log" 2>&1
    fi
    "$venv/bin/ansible" --version | head -1 >>"$OUT/machine.txt"
    "$venv/bin/ansible-galaxy" collection list community.general 2>/dev/null | tail -1 >>"$OUT/machine.txt"
    {
        echo "[workers]"
        for n in $LXD_NODES; do echo "$n"; done
        echo "[workers:vars]"
        echo "ansible_connection=community.general.lxd"
        echo "ansible_python_interpreter=/usr/bin/false"
    } >"$dir/inventory.ini"
    {
        echo "- hosts: workers"
        echo "  gather_facts: false"
        echo "  tasks:"
        echo "    - name: pod routes"
        echo "      raw: ip route replace {{ item }} dev eth1 proto 211"
        echo "      loop: \"{{ routes[inventory_hostname] }}\""
        echo "  vars:"
        echo "    routes:"
        for n in $LXD_NODES; do
            echo "      $n:"
            awk -F'\t' -v n="$n" '$1 == n { printf "        - \"%s via %s\"\n", $2, $3 }' "$dir/routes.tsv"
        done
    } >"$dir/playbook.yml"
    local env="ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_STDOUT_CALLBACK=null ANSIBLE_LOCAL_TEMP=$WORK/ansible-tmp"
    # One run by hand, so that a broken setup fails loudly instead of being timed.
    (eval "$flush")
    env $env "$venv/bin/ansible-playbook" -i "$dir/inventory.ini" "$dir/playbook.yml" >"$OUT/logs/ansible.log" 2>&1 ||
        { cat "$OUT/logs/ansible.log" >&2; die "ansible-playbook failed"; }
    for n in $LXD_NODES; do
        [ "$(lxc exec "$n" -- ip route show proto 211 | wc -l)" -gt 0 ] || die "ansible added no route on $n"
    done
    hf lxd "$n_nodes" "ansible playbook (raw: ip route replace)" "$SLOW_RUNS" --warmup 1 --prepare "$flush" -- \
        "env $env $venv/bin/ansible-playbook -i $dir/inventory.ini $dir/playbook.yml"
}
