# tests/cluster_start.sh - sourced by the cluster tests: cluster_start
# starts scripts/cluster and waits for it by readiness.
#
#   cluster_start PORT DIR N [-- MANDELWEB FLAGS...]
#
# Starts "$here/scripts/cluster" in the background ($cpid), its output in
# DIR.out, and waits until it says it is up: it waits on each instance's
# /readyz, then nginx's (60 s each), so this waits as long as that takes
# (the cluster gives up first). When it does not come up, prints its output
# and each instance's stderr, and exits 1.
cluster_start() {
	local port=$1 dir=$2
	shift 2
	"$here/scripts/cluster" -p "$port" -b "$bin" -d "$dir" "$@" >"$dir.out" 2>&1 &
	cpid=$!
	while kill -0 "$cpid" 2>/dev/null && ! grep -q '^cluster ' "$dir.out"; do
		sleep 0.1
	done
	grep -q '^cluster ' "$dir.out" && return 0
	echo "FAIL cluster did not start"
	cat "$dir.out"
	for e in "$dir"/mw*.err; do [ -f "$e" ] && { echo "--- $e"; cat "$e"; }; done
	exit 1
}
