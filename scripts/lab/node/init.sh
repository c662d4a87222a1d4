#!/bin/bash
# PID 1 of a routectl lab node: configures the network from /etc/routectl-lab.conf (addresses
# come back after a restart, routes do not), then waits; SIGPWR (lxc stop) or SIGTERM end it.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
main() {
	trap 'exit 0' PWR TERM INT
	if /usr/local/sbin/routectl-lab-apply /etc/routectl-lab.conf >/run/routectl-lab.log 2>&1; then
		echo "configured" >>/run/routectl-lab.log
	else
		echo "configuration failed" >>/run/routectl-lab.log
	fi
	while :; do
		sleep 2147483647 &
		wait $! || true
	done
}
main "$@"
exit 0
