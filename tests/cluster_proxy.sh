#!/usr/bin/env bash
# tests/cluster_proxy.sh - scripts/cluster 2: what nginx in front changes.
#   - a picture asked before is answered by nginx (X-Cache-Status: HIT) and
#     reaches no instance; Cache-Control: no-cache goes to one;
#   - the instances judge the client nginx forwards: with --debug-allow
#     127.0.0.2, /debug/ answers a client from 127.0.0.2 and refuses one
#     from 127.0.0.3, even when that one writes X-Forwarded-For: 127.0.0.2.
# Prints PASS/FAIL lines; exits 1 on a failure.
#
#   tests/cluster_proxy.sh [BIN_DIR]
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
cluster_start "$port" "$tmp/cluster" 2 -- --debug-allow 127.0.0.2
fails=0
check() { if [ "$2" = "$3" ]; then echo "PASS $1"; else echo "FAIL $1: got '$2', want '$3'"; fails=$((fails + 1)); fi; }
url="http://127.0.0.1:$port"
renders() { # pictures the instances answered 200
	local n=0 p v
	while read -r _ p; do
		v=$(curl -s "http://127.0.0.1:$p/metrics" |
			awk '$1 == "mandelweb_http_requests_total{route=\"/mandelbrot\",status=\"200\"}" { print $2 }')
		n=$((n + ${v:-0}))
	done <"$tmp/cluster/instances"
	echo "$n"
}
status() { curl -s -o /dev/null -D - "$@" | awk 'tolower($1) == "x-cache-status:" { print $2 }' | tr -d '\r'; }
check "the first ask is a miss" "$(status "$url/mandelbrot?w=48&h=48")" MISS
for _ in 1 2 3 4 5; do check "a repeat is nginx's" "$(status "$url/mandelbrot?w=48&h=48")" HIT; done
check "one render for six asks" "$(renders)" 1
check "no-cache goes to an instance" "$(status -H 'Cache-Control: no-cache' "$url/mandelbrot?w=48&h=48")" BYPASS
check "and renders anew" "$(renders)" 2
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
check "/debug/ from an allowed client behind nginx (400: the bad seconds)" \
	"$(code --interface 127.0.0.2 "$url/debug/trace?seconds=x")" 400
check "/debug/ from another client behind nginx" "$(code --interface 127.0.0.3 "$url/debug/trace?seconds=x")" 403
check "/debug/ from it, forwarding the allowed address itself" \
	"$(code --interface 127.0.0.3 -H 'X-Forwarded-For: 127.0.0.2' "$url/debug/trace?seconds=x")" 403
exit $((fails > 0))
