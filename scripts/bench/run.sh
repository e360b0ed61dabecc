#!/usr/bin/env bash
# The benchmark suite: builds release binaries, runs every scenario for our
# `lune` and for a plain-Rust reference (one executor thread) in ONE run, with
# server and load generator pinned to different cores, and prints the median
# of REPS repetitions as a table of absolute figures and ours/reference ratios.
#
#   scripts/bench/run.sh            # REPS=3 DURATION=5 by default
#   REPS=5 DURATION=10 scripts/bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

REPS=${REPS:-3}
DURATION=${DURATION:-5}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

cargo build --release --quiet -p lune -p lune-bench
LUNE=$PWD/target/release/lune
REF=$PWD/target/release/bench-ref
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else print a[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || b == "nan" || a == "nan") print "n/a"; else printf "%.2f", a / b }'; }

# start_server <cpu> <cmd...>: starts a server that prints "ready <port>", sets PORT,
# SERVER_PID and SERVER_OUT (the file with its output).
start_server() {
	local cpu=$1
	shift
	local out="$WORK/server.$RANDOM"
	SERVER_OUT=$out
	taskset -c "$cpu" "$@" >"$out" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 1 500); do
		if grep -q '^ready ' "$out" 2>/dev/null; then
			PORT=$(grep '^ready ' "$out" | head -1 | awk '{ print $2 }')
			return 0
		fi
		sleep 0.01 # poll the server's output until it reports its port
	done
	echo "server did not start: $*" >&2
	cat "$out" >&2
	exit 1
}
stop_server() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
rss_kib() { awk "/^$2:/ { print \$2 }" "/proc/$1/status"; }

ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 |"); }

echo "benchmarking: REPS=$REPS DURATION=${DURATION}s, server on cpu $SERVER_CPU, load on cpu $LOAD_CPU" >&2

# 1 + 5. net.serve hello world under keep-alive load; memory of our server.
for conns in 64 256; do
	for impl in ours ref; do
		rps_file="$WORK/rps.$impl.$conns"; p99_file="$WORK/p99.$impl.$conns"
		: >"$rps_file"; : >"$p99_file"
		for _ in $(seq 1 "$REPS"); do
			if [ "$impl" = ours ]; then
				start_server "$SERVER_CPU" "$LUNE" run scripts/bench/serve.luau
				idle=$(rss_kib "$SERVER_PID" VmRSS)
			else
				start_server "$SERVER_CPU" "$REF" http 0
			fi
			read -r rps p99 < <(taskset -c "$LOAD_CPU" "$REF" load "http://127.0.0.1:$PORT/" "$conns" "$DURATION")
			echo "$rps" >>"$rps_file"; echo "$p99" >>"$p99_file"
			if [ "$impl" = ours ] && [ "$conns" = 256 ]; then
				echo "$idle" >>"$WORK/rss_idle"; rss_kib "$SERVER_PID" VmHWM >>"$WORK/rss_peak"
			fi
			stop_server
		done
	done
	ours=$(median <"$WORK/rps.ours.$conns"); ref=$(median <"$WORK/rps.ref.$conns")
	row "serve, $conns connections, req/s" "$ours" "$ref" "$(ratio "$ours" "$ref")"
	ours=$(median <"$WORK/p99.ours.$conns"); ref=$(median <"$WORK/p99.ref.$conns")
	row "serve, $conns connections, p99 ms" "$ours" "$ref" "$(ratio "$ours" "$ref")"
done

# 2. net.request against the reference server: sequential and 16 workers.
for workers in 1 16; do
	: >"$WORK/req.ours"; : >"$WORK/req.ref"; : >"$WORK/conns"
	for _ in $(seq 1 "$REPS"); do
		start_server "$LOAD_CPU" "$REF" http 0
		read -r rps conns < <(taskset -c "$SERVER_CPU" "$LUNE" run scripts/bench/request.luau "http://127.0.0.1:$PORT" 3000 "$workers")
		echo "$rps" >>"$WORK/req.ours"; echo "$conns" >>"$WORK/conns"
		stop_server
		start_server "$LOAD_CPU" "$REF" http 0
		taskset -c "$SERVER_CPU" "$REF" http-client "http://127.0.0.1:$PORT/" 3000 "$workers" >>"$WORK/req.ref"
		stop_server
	done
	ours=$(median <"$WORK/req.ours"); ref=$(median <"$WORK/req.ref")
	label=$([ "$workers" = 1 ] && echo "sequential" || echo "$workers workers")
	row "request, $label, req/s" "$ours" "$ref" "$(ratio "$ours" "$ref")"
	row "request, $label, connections opened" "$(median <"$WORK/conns")" "$workers" "-"
done

# 3. WebSocket echo round trips, 32-byte messages, as client and as server.
: >"$WORK/wsc.ours"; : >"$WORK/wsc.ref"; : >"$WORK/wss.ours"; : >"$WORK/wss.ref"
for _ in $(seq 1 "$REPS"); do
	start_server "$LOAD_CPU" "$REF" ws 0
	taskset -c "$SERVER_CPU" "$LUNE" run scripts/bench/ws_client.luau "ws://127.0.0.1:$PORT/" 20000 >>"$WORK/wsc.ours"
	taskset -c "$SERVER_CPU" "$REF" ws-client "ws://127.0.0.1:$PORT/" 20000 >>"$WORK/wsc.ref"
	stop_server
	start_server "$SERVER_CPU" "$LUNE" run scripts/bench/ws_server.luau
	taskset -c "$LOAD_CPU" "$REF" ws-client "ws://127.0.0.1:$PORT/" 20000 >>"$WORK/wss.ours"
	stop_server
	start_server "$SERVER_CPU" "$REF" ws 0
	taskset -c "$LOAD_CPU" "$REF" ws-client "ws://127.0.0.1:$PORT/" 20000 >>"$WORK/wss.ref"
	stop_server
done
ours=$(median <"$WORK/wsc.ours"); ref=$(median <"$WORK/wsc.ref")
row "WebSocket echo as client, msg/s" "$ours" "$ref" "$(ratio "$ours" "$ref")"
ours=$(median <"$WORK/wss.ours"); ref=$(median <"$WORK/wss.ref")
row "WebSocket echo as server, msg/s" "$ours" "$ref" "$(ratio "$ours" "$ref")"

# 4. TCP: 2 GiB through net.tcp to a sink.
: >"$WORK/tcp.ours"; : >"$WORK/tcp.ref"
for _ in $(seq 1 "$REPS"); do
	start_server "$LOAD_CPU" "$REF" tcp-sink 0
	taskset -c "$SERVER_CPU" "$LUNE" run scripts/bench/tcp_write.luau 127.0.0.1 "$PORT" 2048 >>"$WORK/tcp.ours"
	taskset -c "$SERVER_CPU" "$REF" tcp-write "127.0.0.1:$PORT" 2048 >>"$WORK/tcp.ref"
	stop_server
done
ours=$(median <"$WORK/tcp.ours"); ref=$(median <"$WORK/tcp.ref")
row "TCP write, MiB/s" "$ours" "$ref" "$(ratio "$ours" "$ref")"

# 5. Memory of our server (KiB): idle, and peak under 256 connections.
row "server RSS idle, MiB" "$(median <"$WORK/rss_idle" | awk '{ printf "%.1f", $1 / 1024 }')" "-" "target ≤ 8"
row "server RSS peak at 256 connections, MiB" "$(median <"$WORK/rss_peak" | awk '{ printf "%.1f", $1 / 1024 }')" "-" "target ≤ 20"

# 6. Startup: lune run of a script that only requires @lune/net.
: >"$WORK/startup"
for _ in $(seq 1 20); do
	start=$(date +%s%N)
	"$LUNE" run scripts/bench/startup.luau
	echo $(( ($(date +%s%N) - start) / 1000 )) >>"$WORK/startup"
done
row "startup, empty net script, ms" "$(median <"$WORK/startup" | awk '{ printf "%.1f", $1 / 1000 }')" "-" "target ≤ 15"

# 7. reusePort: two lune servers on one port, 64 keep-alive connections; the
# kernel spreads the connections over both. REUSE_CPUS pins them (both on
# SERVER_CPU by default, to compare with one server on that core; give two
# cores, e.g. REUSE_CPUS="0 2", on a machine that has them to see the gain).
read -r REUSE_CPU_A REUSE_CPU_B <<<"${REUSE_CPUS:-$SERVER_CPU $SERVER_CPU}"
: >"$WORK/reuse.rps"; : >"$WORK/reuse.share"
for _ in $(seq 1 "$REPS"); do
	start_server "$REUSE_CPU_A" "$LUNE" run scripts/bench/serve_reuse.luau 0
	pid_a=$SERVER_PID; out_a=$SERVER_OUT
	start_server "$REUSE_CPU_B" "$LUNE" run scripts/bench/serve_reuse.luau "$PORT"
	pid_b=$SERVER_PID; out_b=$SERVER_OUT
	read -r rps _ < <(taskset -c "$LOAD_CPU" "$REF" load "http://127.0.0.1:$PORT/" 64 "$DURATION")
	echo "$rps" >>"$WORK/reuse.rps"
	sleep 0.5 # each server prints its count every 0.25 s
	served_a=$(grep '^served ' "$out_a" | tail -1 | awk '{ print $2 }'); served_b=$(grep '^served ' "$out_b" | tail -1 | awk '{ print $2 }')
	awk -v a="${served_a:-0}" -v b="${served_b:-0}" 'BEGIN { m = a < b ? a : b; if (a + b == 0) print 0; else printf "%.1f\n", 100 * m / (a + b) }' >>"$WORK/reuse.share"
	SERVER_PID=$pid_a stop_server
	SERVER_PID=$pid_b stop_server
done
ours=$(median <"$WORK/reuse.rps"); ref=$(median <"$WORK/rps.ref.64")
row "serve, 2 lune processes with reusePort, 64 connections, req/s (reference: one process)" "$ours" "$ref" "$(ratio "$ours" "$ref")"
row "reusePort, share of requests served by the less busy process, %" "$(median <"$WORK/reuse.share")" "-" "> 0: both serve"

echo
echo "| scenario | ours | reference | ours/reference |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
