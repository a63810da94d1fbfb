#!/usr/bin/env bash
# Every trace event name the code records (a `struct trace_desc` in any
# library or program) is in docs/tracing.md, as `name...` (a counter's
# track adds its argument: `queue depth`). A name the table does not
# explain is a name a reader of a trace cannot look up.
set -euo pipefail
cd "$(dirname "$0")/.."
doc=docs/tracing.md
names=$(cat server/*.c render/*.c trace/*.c prof/*.c cmd/*.c | tr '\n\t' '  ' |
	grep -oE 'trace_desc +[A-Za-z_0-9]+ *= *\{ *"[^"]+"' | sed 's/.*"\(.*\)"$/\1/' | sort -u)
[ -n "$names" ] || { echo "FAIL no trace names found in the sources"; exit 1; }
missing=0 n=0
while read -r name; do
	n=$((n + 1))
	if ! grep -qF "\`$name" "$doc"; then
		echo "FAIL trace name '$name' is not in $doc"
		missing=$((missing + 1))
	fi
done <<<"$names"
[ "$missing" -eq 0 ] || exit 1
echo "PASS all $n trace event names are in $doc"
