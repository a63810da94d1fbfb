#!/usr/bin/env bash
# tests/cluster_failover.sh - scripts/cluster 2 under load while one
# instance is killed (SIGKILL: a crash, not a drain). Every request must be
# answered 200, or 503 where nginx could not place it on the instance left
# (429 where the instance left says the client is over its share); anything
# else fails the test. Prints the counts as `name value unit`.
#
#   tests/cluster_failover.sh [BIN_DIR]
set -euo pipefail
bin=${1:-bin}
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/tests/cluster_start.sh"
tmp=$(mktemp -d)
chmod 755 "$tmp" # nginx's workers (www-data under root) keep pictures under it
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
	[ -n "${cpid:-}" ] && kill "$cpid" 2>/dev/null
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
# Cache off (the instances', and nginx's for these requests: no-cache), so
# that requests are in flight on the instance when it dies.
cluster_start "$port" "$tmp/cluster" 2 -- --cache-mb 0
victim=$(awk 'NR == 1 { print $1 }' "$tmp/cluster/instances")
hey -z 6s -c 6 -H "Cache-Control: no-cache" -o csv "http://127.0.0.1:$port/mandelbrot" >"$tmp/hey.csv" &
hpid=$!
sleep 2
kill -9 "$victim"
wait "$hpid"
count() { awk -F, -v s="$1" 'NR > 1 && $7 == s { n++ } END { print n + 0 }' "$tmp/hey.csv"; }
ok=$(count 200)
busy=$(count 503)
other=$(awk -F, 'NR > 1 && $7 != 200 && $7 != 503 && $7 != 429 { n++ } END { print n + 0 }' "$tmp/hey.csv")
echo "failover_200 $ok responses"
echo "failover_503 $busy responses"
echo "failover_failed $other responses"
kill -0 "$victim" 2>/dev/null && { echo "FAIL the instance was not killed"; exit 1; }
if [ "$other" -eq 0 ] && [ "$ok" -gt 0 ]; then
	echo "PASS an instance killed under load: no request failed ($busy answered 503: nowhere to retry)"
else
	echo "FAIL $other requests failed"
	exit 1
fi
