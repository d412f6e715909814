#!/usr/bin/env bash
# Profiles postee and its http plugin under the standard load of tools/loadgen
# (docs/performance.md, "Where the time goes"). Usage, from the repository root
# after `make build`:
#
#   tools/loadgen/profile.sh [out-dir] [extra loadgen flags, e.g. -dispatch]
#
# It writes to out-dir (default /tmp/postee-profile):
#   cpu.pb.gz, allocs.pb.gz, heap.pb.gz  postee's pprof profiles (10 s of CPU)
#   plugin.perf.txt                       the http plugin's hottest functions (perf, if installed)
#   fsync.txt                             fsync/fdatasync/pwrite calls of postee over 10 s (strace, if installed)
#                                         and the events accepted meanwhile (/metrics)
#   loadgen-*.txt                         the two load runs' reports
# Read them with e.g. `go tool pprof -top -cum bin/postee out-dir/cpu.pb.gz`.
# The strace run is a separate load run: tracing slows postee, so its rate
# is not a figure, only the ratio of syscalls to events.
set -euo pipefail
out=${1:-/tmp/postee-profile}
shift || true
mkdir -p "$out"
pprof=127.0.0.1:6067

find_pid() { # the newest process whose command line starts with $1
	pgrep -n -f "^$1" || true
}

wait_listening() { # prints the webhook address once loadgen reports it
	for _ in $(seq 1 300); do
		if addr=$(grep -o 'listening on [0-9.:]*' "$1" 2>/dev/null | head -1 | cut -d' ' -f3) && [ -n "$addr" ]; then
			echo "$addr"
			return
		fi
		sleep 0.2
	done
	echo "loadgen never reported postee listening" >&2
	exit 1
}

bin=$(pwd)/bin/postee
# 1. CPU and memory profiles.
go build -o "$out/loadgen" ./tools/loadgen
"$out/loadgen" -postee bin/postee -plugin-dir bin/plugins -duration 20s -postee-args "--pprof-addr $pprof" "$@" >"$out/loadgen-profile.txt" 2>&1 &
lg=$!
wait_listening "$out/loadgen-profile.txt" >/dev/null
sleep 6 # past the 3 s warm-up
plugin=$(pgrep -n -P "$(find_pid "$bin ")" -f postee-action-http || true)
curl -sf -o "$out/cpu.pb.gz" "http://$pprof/debug/pprof/profile?seconds=10" &
cpu=$!
if command -v perf >/dev/null && [ -n "$plugin" ]; then
	perf record -q -F 499 -g -o "$out/plugin.perf" -p "$plugin" -- sleep 10 2>/dev/null || true
fi
wait $cpu
curl -sf -o "$out/allocs.pb.gz" "http://$pprof/debug/pprof/allocs"
curl -sf -o "$out/heap.pb.gz" "http://$pprof/debug/pprof/heap"
wait $lg || true
if [ -f "$out/plugin.perf" ]; then
	perf report -i "$out/plugin.perf" --no-children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -40 >"$out/plugin.perf.txt" || true
fi

# 2. fsyncs per event.
if command -v strace >/dev/null; then
	"$out/loadgen" -postee bin/postee -plugin-dir bin/plugins -duration 20s -postee-args "--api-key profile-key" "$@" >"$out/loadgen-strace.txt" 2>&1 &
	lg=$!
	addr=$(wait_listening "$out/loadgen-strace.txt")
	sleep 6
	pid=$(find_pid "$bin ")
	accepted() { curl -sf -H 'X-API-Key: profile-key' "http://$addr/metrics" | awk '/^postee_events_accepted_total/ {print $2}'; }
	a0=$(accepted)
	timeout -s INT 10 strace -c -f -e trace=fsync,fdatasync,pwrite64 -p "$pid" -o "$out/strace.txt" 2>/dev/null || true
	a1=$(accepted)
	wait $lg || true
	{
		cat "$out/strace.txt"
		echo "events accepted while traced: $((a1 - a0))"
		awk -v n=$((a1 - a0)) '$NF ~ /^(fsync|fdatasync|pwrite64)$/ && n > 0 {printf "%s per event: %.2f\n", $NF, $4 / n}' "$out/strace.txt"
	} >"$out/fsync.txt"
fi
echo "profiles in $out"
