#!/usr/bin/env bash
# The benchmark suite. Builds release binaries, then runs every scenario in ONE
# run for our `lune` and for plain-Rust references on ONE thread (bench-ref:
# tokio's current_thread runtime, the limit, and smol, the stack lune is built
# on), and for serving the hyper + Luau reference (bench-ref http-luau: the
# least any Luau runtime must do per request), server and load pinned to
# different cores, and prints the median of
# REPS repetitions as a markdown table: absolute figures, ours/tokio and
# ours/hyper+Luau ratios and the targets. Serving load comes from wrk. Two columns do not move with
# machine noise: syscalls per request (strace -c) and instructions per request
# (callgrind), both as the difference of two runs of N1 and N2 requests so
# startup and shutdown cancel out.
#
#   scripts/bench/run.sh                        # REPS=3 DURATION=5, all scenarios
#   SCENARIOS=syscalls scripts/bench/run.sh     # one part only (comma list)
#   REPS=5 DURATION=10 BENCH_OUT=bench.md scripts/bench/run.sh
#   LUNE_REF_BIN=/path/to/lune scripts/bench/run.sh   # extra column: another lune
#
# SCENARIOS: serve,client,ws,tcp,syscalls,instructions,rss,startup,reuse.
# SERVER_CPU / LOAD_CPU pin the measured side and the load (0 and 1).
# Sizes: CLIENT_REQUESTS (10000), WS_MESSAGES (20000), TCP_MIB (2048),
# SYSCALL_N1 / SYSCALL_N2 (3200 / 9600), IR_N1 / IR_N2 (2000 / 4000).
set -euo pipefail
cd "$(dirname "$0")/../.."

REPS=${REPS:-3}
DURATION=${DURATION:-5}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SCENARIOS=${SCENARIOS:-serve,client,ws,tcp,syscalls,instructions,rss,startup,reuse}
CLIENT_REQUESTS=${CLIENT_REQUESTS:-10000}
WS_MESSAGES=${WS_MESSAGES:-20000}
TCP_MIB=${TCP_MIB:-2048}
LUNE_REF_BIN=${LUNE_REF_BIN:-}

want() { [[ ",$SCENARIOS," == *",$1,"* ]]; }

# need <command> <debian package>: installs the package when the command is missing.
need() {
	command -v "$1" >/dev/null && return 0
	echo "installing $2" >&2
	{ apt-get install -y "$2" || { apt-get update && apt-get install -y "$2"; }; } >&2
}
need taskset util-linux
if want serve || want rss || want reuse; then need wrk wrk; fi
if want syscalls; then need strace strace; fi
if want instructions; then need valgrind valgrind; fi

# Two builds, not one: built together, lune would get the features the
# benchmark turns on in shared crates (tokio's runtime, among others).
cargo build --release --quiet -p lune
cargo build --release --quiet -p lune-bench
LUNE=$PWD/target/release/lune
REF=$PWD/target/release/bench-ref
# luau: the hyper + Luau reference (bench-ref http-luau), serving only.
IMPLS="ours tokio smol luau"
if [ -n "$LUNE_REF_BIN" ]; then IMPLS="$IMPLS luneref"; fi
WORK=$(mktemp -d)

# Every process this script starts is a background job or a descendant of one
# (strace's tracee, timeout's command): on exit, each job's tree is ended,
# deepest first, by process id.
kill_tree() {
	local child
	for child in $(pgrep -P "$1" 2>/dev/null); do
		kill_tree "$child"
	done
	kill "$1" 2>/dev/null || true
}
cleanup() {
	local pid
	for pid in $(jobs -p); do
		kill_tree "$pid"
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 130" INT TERM

# rec <key> <value>: one sample (the first word of value). med <key>: the median of the samples, "-"
# when nothing was measured, nan when every run failed.
rec() { echo "${2%% *}" >>"$WORK/s.$1"; }
med() {
	[ -e "$WORK/s.$1" ] || { echo -; return; }
	{ grep -E '^-?[0-9.]+(e[-+]?[0-9]+)?$' "$WORK/s.$1" || true; } | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else print a[int((NR + 1) / 2)] }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || a == "-" || b == "-" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { if (k == "") print "nan"; else printf "%.1f", k / 1024 }'; }

# cmd <impl> <mode> <args...>: sets CMD to the command line of that
# implementation's mode. Modes and arguments are bench-ref's, except:
# http-count <requests> (a server that exits after that many requests) and
# tcp-write <host> <port> <mib>.
cmd() {
	local impl=$1 mode=$2
	shift 2
	case $impl in
	ours | luneref)
		local bin=$LUNE
		[ "$impl" = luneref ] && bin=$LUNE_REF_BIN
		case $mode in
		http) CMD=("$bin" run scripts/bench/serve.luau "$@") ;;
		http-count) CMD=("$bin" run scripts/bench/serve_count.luau 0 "$@") ;;
		ws) CMD=("$bin" run scripts/bench/ws_server.luau "$@") ;;
		http-client) CMD=("$bin" run scripts/bench/request.luau "$@") ;;
		ws-client) CMD=("$bin" run scripts/bench/ws_client.luau "$@") ;;
		tcp-write) CMD=("$bin" run scripts/bench/tcp_write.luau "$@") ;;
		esac
		;;
	luau)
		case $mode in
		http) CMD=("$REF" http-luau "$@") ;;
		http-count) CMD=("$REF" http-luau 0 --exit-after "$1") ;;
		*) CMD=() ;;
		esac
		;;
	*)
		case $mode in
		http-count) CMD=("$REF" --rt "$impl" http 0 --exit-after "$1") ;;
		tcp-write) CMD=("$REF" --rt "$impl" tcp-write "$1:$2" "$3") ;;
		*) CMD=("$REF" --rt "$impl" "$mode" "$@") ;;
		esac
		;;
	esac
}

# start_server <cpu> <cmd...>: starts a server that prints "ready <port>"; sets
# PORT, SERVER_PID and SERVER_OUT (its output). Waits at most 60 s (startup
# under valgrind is slow).
start_server() {
	local cpu=$1
	shift
	SERVER_OUT="$WORK/server.$RANDOM$RANDOM"
	taskset -c "$cpu" "$@" >"$SERVER_OUT" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 1 6000); do
		if grep -q '^ready ' "$SERVER_OUT" 2>/dev/null; then
			PORT=$(grep '^ready ' "$SERVER_OUT" | head -1 | awk '{ print $2 }')
			return 0
		fi
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.01
	done
	echo "server did not start: $*" >&2
	cat "$SERVER_OUT" >&2
	exit 1
}
stop_server() {
	kill_tree "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null || true
}
# wait_server <seconds>: waits for a server that exits by itself, then stops it anyway.
wait_server() {
	for _ in $(seq 1 $(($1 * 20))); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.05
	done
	stop_server
}
# client <cpu> <cmd...>: runs a client to its end (at most 300 s; as a job of
# this shell, so that the cleanup ends it too); sets LINE to the first line of
# its output, empty if it failed, and CLIENT_OUT to the file with its output.
client() {
	local cpu=$1
	shift
	CLIENT_OUT="$WORK/client.$RANDOM$RANDOM"
	timeout 300 taskset -c "$cpu" "$@" >"$CLIENT_OUT" &
	if wait $!; then
		LINE=$(head -1 "$CLIENT_OUT")
	else
		echo "failed: $*" >&2
		LINE=""
	fi
}
rss_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

# wrk_load <port> <connections>: sets LINE to "<requests/s> <p99 ms> <requests>".
wrk_load() {
	client "$LOAD_CPU" wrk -t1 -c"$2" -d"${DURATION}s" --latency "http://127.0.0.1:$1/"
	LINE=$(awk '
		function ms(v) {
			if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0
			if (v ~ /m$/) return v * 60000; return v * 1000
		}
		/^ *99%/ { p99 = ms($2) }
		/ requests in / { n = $1 }
		/^Requests\/sec:/ { rps = $2 }
		END { if (rps != "") printf "%s %.3f %s\n", rps, p99, n }' "$CLIENT_OUT")
}

ROWS=()
# row <scenario> <key> <target>: a table row of the medians of <key>.<impl>.
row() {
	local cells="" impl
	for impl in $IMPLS; do
		cells="$cells | $(med "$2.$impl")"
	done
	ROWS+=("| $1$cells | $(ratio "$(med "$2.ours")" "$(med "$2.tokio")") | $(ratio "$(med "$2.ours")" "$(med "$2.luau")") | $3 |")
}

echo "benchmarking: REPS=$REPS DURATION=${DURATION}s SCENARIOS=$SCENARIOS, server on cpu $SERVER_CPU, load on cpu $LOAD_CPU" >&2

# 1. Serving hello world under wrk keep-alive load; server RSS idle and at 256
# connections (from the same runs).
SERVE_CONNS=""
if want serve; then SERVE_CONNS="64 256"; elif want rss; then SERVE_CONNS="256"; fi
for conns in $SERVE_CONNS; do
	for rep in $(seq 1 "$REPS"); do
		for impl in $IMPLS; do
			echo "serve: $impl, $conns connections, rep $rep" >&2
			cmd "$impl" http
			start_server "$SERVER_CPU" "${CMD[@]}"
			sleep 0.2
			idle=$(rss_kib "$SERVER_PID" VmRSS)
			wrk_load "$PORT" "$conns"
			read -r rps p99 _ <<<"$LINE"
			rec "serve$conns.$impl" "$rps"
			rec "p99_$conns.$impl" "$p99"
			if [ "$conns" = 256 ]; then
				rec "rss_idle.$impl" "$(mib "$idle")"
				rec "rss_peak.$impl" "$(mib "$(rss_kib "$SERVER_PID" VmHWM)")"
			fi
			stop_server
		done
	done
done
if want serve; then
	row "serve, 64 connections, req/s (wrk)" serve64 "≥ 0.85"
	row "serve, 64 connections, p99 ms" p99_64 "-"
	row "serve, 256 connections, req/s (wrk)" serve256 "≥ 0.80"
	row "serve, 256 connections, p99 ms" p99_256 "-"
fi

# 2. net.request against a tokio reference server: sequential and 16 workers.
if want client; then
	for workers in 1 16; do
		for rep in $(seq 1 "$REPS"); do
			for impl in $IMPLS; do
				[ "$impl" = luau ] && continue
				echo "client: $impl, $workers workers, rep $rep" >&2
				start_server "$LOAD_CPU" "$REF" --rt tokio http 0
				cmd "$impl" http-client "http://127.0.0.1:$PORT" "$CLIENT_REQUESTS" "$workers"
				client "$SERVER_CPU" "${CMD[@]}"
				rec "client$workers.$impl" "$LINE"
				# request.luau prints the connections the server accepted too.
				case $impl in
				ours | luneref) rec "conns$workers.$impl" "$(awk '{ print $2 }' <<<"$LINE")" ;;
				tokio) rec "conns$workers.tokio" "$workers" ;;
				esac
				stop_server
			done
		done
	done
	row "request, sequential, req/s" client1 "≥ 0.60"
	row "request, sequential, connections opened (one per worker)" conns1 "= 1"
	row "request, 16 workers, req/s" client16 "≥ 0.50"
	row "request, 16 workers, connections opened" conns16 "= 16"
fi

# 3. WebSocket echo round trips, 32-byte messages: as client (against the tokio
# echo server) and as server (driven by the tokio client).
if want ws; then
	for rep in $(seq 1 "$REPS"); do
		start_server "$LOAD_CPU" "$REF" --rt tokio ws 0
		ws_port=$PORT
		ws_pid=$SERVER_PID
		for impl in $IMPLS; do
			[ "$impl" = luau ] && continue
			echo "ws: $impl, rep $rep" >&2
			cmd "$impl" ws-client "ws://127.0.0.1:$ws_port/" "$WS_MESSAGES"
			client "$SERVER_CPU" "${CMD[@]}"
			rec "wsc.$impl" "$LINE"
			cmd "$impl" ws
			start_server "$SERVER_CPU" "${CMD[@]}"
			client "$LOAD_CPU" "$REF" --rt tokio ws-client "ws://127.0.0.1:$PORT/" "$WS_MESSAGES"
			rec "wss.$impl" "$LINE"
			stop_server
		done
		SERVER_PID=$ws_pid stop_server
	done
	row "WebSocket echo as client, msg/s" wsc "≥ 0.92"
	row "WebSocket echo as server, msg/s" wss "≥ 0.92"
fi

# 4. TCP: TCP_MIB MiB through net.tcp to a tokio sink.
if want tcp; then
	for rep in $(seq 1 "$REPS"); do
		start_server "$LOAD_CPU" "$REF" --rt tokio tcp-sink 0
		for impl in ours tokio smol; do
			echo "tcp: $impl, rep $rep" >&2
			cmd "$impl" tcp-write 127.0.0.1 "$PORT" "$TCP_MIB"
			client "$SERVER_CPU" "${CMD[@]}"
			rec "tcp.$impl" "$LINE"
		done
		stop_server
	done
	row "TCP write, MiB/s" tcp "≥ 0.95"
fi

# 5. Syscalls per request (strace -c), the difference of N1 and N2 requests.
# Serving: the server exits after N requests, sent by the tokio client over 64
# connections. Client: sequential requests to a tokio server.
calls_total() { awk '$NF == "total" { print $4 }' "$1" 2>/dev/null || true; }
# calls_breakdown <file N1> <file N2> <requests>: the top syscalls per request.
calls_breakdown() {
	awk -v n="$3" '
		$1 ~ /^[0-9.]+$/ && $NF != "total" { c[$NF] += (FILENAME == ARGV[1] ? -$4 : $4) }
		END { for (s in c) if (c[s] / n >= 0.05) printf "%.2f %s\n", c[s] / n, s }' "$1" "$2" 2>/dev/null |
		sort -rg | awk 'NR <= 8 { printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1 }' || true
}
# per_request <total N1> <total N2> <N2 - N1> <printf format>
per_request() { awk -v a="$1" -v b="$2" -v n="$3" -v f="$4" 'BEGIN { if (a == "" || b == "") print "nan"; else printf f, (b - a) / n }'; }
SYSCALL_N1=${SYSCALL_N1:-3200}
SYSCALL_N2=${SYSCALL_N2:-9600}
# counted_runs <what> <impl> <n> <timeout> <tool...>: runs <impl> under <tool>
# serving n requests over 64 connections, then as a client making n
# sequential requests. The tool's last argument is the start of its output
# file's path, completed with "<what>.<serve|client>.<impl>.<n>".
counted_runs() {
	local what=$1 impl=$2 n=$3 limit=$4
	shift 4
	local tool=("$@")
	local out=${tool[-1]}
	unset 'tool[-1]'
	echo "$what: serving, $impl, $n requests" >&2
	cmd "$impl" http-count "$n"
	start_server "$SERVER_CPU" "${tool[@]}" "$out$what.serve.$impl.$n" "${CMD[@]}"
	client "$LOAD_CPU" "$REF" --rt tokio http-client "http://127.0.0.1:$PORT/" "$n" 64
	wait_server "$limit"
	[ "$impl" = luau ] && return
	echo "$what: client, $impl, $n requests" >&2
	start_server "$LOAD_CPU" "$REF" --rt tokio http 0
	cmd "$impl" http-client "http://127.0.0.1:$PORT" "$n" 1
	client "$SERVER_CPU" "${tool[@]}" "$out$what.client.$impl.$n" "${CMD[@]}"
	stop_server
}
# rec_counted <key> <what> <impl> <n1> <n2> <total fn> <format>: records, for
# both sides, (total at n2 - total at n1) / (n2 - n1) from counted_runs' files.
rec_counted() {
	local key=$1 what=$2 impl=$3 n1=$4 n2=$5 total=$6 format=$7 side a b
	for side in serve client; do
		[ "$impl" = luau ] && [ $side = client ] && continue
		a=$("$total" "$WORK/$what.$side.$impl.$n1")
		b=$("$total" "$WORK/$what.$side.$impl.$n2")
		rec "${key}_$side.$impl" "$(per_request "$a" "$b" $((n2 - n1)) "$format")"
	done
}
if want syscalls; then
	for impl in ours tokio smol luau; do
		for n in $SYSCALL_N1 $SYSCALL_N2; do
			counted_runs strace "$impl" "$n" 30 strace -f -c -o "$WORK/"
		done
		rec_counted sys strace "$impl" "$SYSCALL_N1" "$SYSCALL_N2" calls_total %.2f
	done
	row "syscalls per request, serving (64 connections)" sys_serve "ours ≤ 3"
	row "syscalls per request, client (sequential)" sys_client "ours ≤ 5"
	BREAKDOWN=""
	for impl in ours tokio; do
		for side in serve client; do
			BREAKDOWN="$BREAKDOWN
$impl, syscalls per request $([ $side = serve ] && echo serving || echo "as client"): $(calls_breakdown "$WORK/strace.$side.$impl.$SYSCALL_N1" "$WORK/strace.$side.$impl.$SYSCALL_N2" $((SYSCALL_N2 - SYSCALL_N1)))"
		done
	done
fi

# 6. Instructions per request (callgrind's total Ir), the difference of N1 and
# N2 requests, server side (64 connections) and client side (sequential).
ir_total() { awk '/^(summary|totals):/ { print $2; exit }' "$1" 2>/dev/null || true; }
IR_N1=${IR_N1:-2000}
IR_N2=${IR_N2:-4000}
if want instructions; then
	for impl in ours tokio smol luau; do
		for n in $IR_N1 $IR_N2; do
			counted_runs cg "$impl" "$n" 120 valgrind --tool=callgrind --log-file="$WORK/valgrind.log" --callgrind-out-file="$WORK/"
		done
		rec_counted ir cg "$impl" "$IR_N1" "$IR_N2" ir_total %.0f
	done
	row "instructions per request, serving (64 connections)" ir_serve "-"
	row "instructions per request, client (sequential)" ir_client "-"
fi

if want rss; then
	row "server RSS idle, MiB" rss_idle "ours ≤ 8"
	row "server RSS peak at 256 connections, MiB" rss_peak "ours ≤ 20"
fi

# 7. Startup: lune run of a script that only requires @lune/net.
if want startup; then
	for _ in $(seq 1 20); do
		start=$(date +%s%N)
		timeout 30 "$LUNE" run scripts/bench/startup.luau
		rec startup.ours "$(awk -v us=$((($(date +%s%N) - start) / 1000)) 'BEGIN { printf "%.1f", us / 1000 }')"
	done
	row "startup, empty net script, ms" startup "ours ≤ 15"
fi

# 8. reusePort: two lune servers on one port, 64 keep-alive connections; the
# kernel spreads the connections over both. REUSE_CPUS pins them (both on
# SERVER_CPU by default, to compare with one tokio server on that core; give
# two cores, e.g. REUSE_CPUS="0 2", on a machine that has them to see the gain).
if want reuse; then
	read -r REUSE_CPU_A REUSE_CPU_B <<<"${REUSE_CPUS:-$SERVER_CPU $SERVER_CPU}"
	for rep in $(seq 1 "$REPS"); do
		echo "reuse: rep $rep" >&2
		start_server "$REUSE_CPU_A" "$LUNE" run scripts/bench/serve_reuse.luau 0
		pid_a=$SERVER_PID
		out_a=$SERVER_OUT
		start_server "$REUSE_CPU_B" "$LUNE" run scripts/bench/serve_reuse.luau "$PORT"
		pid_b=$SERVER_PID
		out_b=$SERVER_OUT
		wrk_load "$PORT" 64
		rec reuse.ours "$LINE"
		sleep 0.5 # each server prints its count every 0.25 s
		served_a=$(grep '^served ' "$out_a" | tail -1 | awk '{ print $2 }')
		served_b=$(grep '^served ' "$out_b" | tail -1 | awk '{ print $2 }')
		rec share.ours "$(awk -v a="${served_a:-0}" -v b="${served_b:-0}" 'BEGIN { m = a < b ? a : b; if (a + b == 0) print 0; else printf "%.1f\n", 100 * m / (a + b) }')"
		SERVER_PID=$pid_a stop_server
		SERVER_PID=$pid_b stop_server
		start_server "$SERVER_CPU" "$REF" --rt tokio http 0
		wrk_load "$PORT" 64
		rec reuse.tokio "$LINE"
		stop_server
	done
	row "serve, 2 lune processes with reusePort, 64 connections, req/s (tokio: one process)" reuse "-"
	row "reusePort, share of requests served by the less busy process, %" share "ours > 0: both serve"
fi

{
	echo
	header="| scenario | ours | tokio 1-thread | smol 1-thread | hyper + Luau (tokio)"
	rule="|---|---|---|---|---"
	if [ -n "$LUNE_REF_BIN" ]; then
		header="$header | other lune ($LUNE_REF_BIN)"
		rule="$rule|---"
	fi
	echo "$header | ours/tokio | ours/hyper+Luau | target |"
	echo "$rule|---|---|---|"
	printf '%s\n' "${ROWS[@]}"
	if [ -n "${BREAKDOWN:-}" ]; then
		echo "$BREAKDOWN"
	fi
} | tee "${BENCH_OUT:-/dev/null}"
