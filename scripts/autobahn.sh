#!/usr/bin/env bash
# Runs the Autobahn WebSocket test suite (wstest, from PyPI's
# autobahntestsuite on Python 2.7) against our WebSocket code in both roles:
# the fuzzing client against `scripts/autobahn/echo_server.luau` (net.serve)
# and the fuzzing server against `scripts/autobahn/echo_client.luau`
# (net.socket). Not part of CI: it takes minutes.
#
#   scripts/autobahn.sh              every case but compression (12.*, 13.*)
#   COMPRESS=1 scripts/autobahn.sh   every case, compression offered/accepted
#   CASES='["1.*","2.*"]' scripts/autobahn.sh   only these
#
# Reports go to target/autobahn/{server,client}/index.html; the summary
# counts each role's outcomes and the script exits non-zero on any FAILED
# (or, with COMPRESS=1, UNIMPLEMENTED) case.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/target/autobahn
mkdir -p "$out"

# wstest: autobahntestsuite for Python 2.7, installed once into the cache.
cache=${AUTOBAHN_CACHE:-$HOME/.cache/autobahn}
python2=()
if python2.7 -c pass 2>/dev/null; then
	python2=(python2.7)
elif command -v pyenv >/dev/null && pyenv versions --bare | grep '^2\.7' >/dev/null; then
	python2=(env "PYENV_VERSION=$(pyenv versions --bare | grep '^2\.7' | tail -1)" python)
fi
[ "${#python2[@]}" -gt 0 ] || { echo "autobahn: needs Python 2.7 (python2.7 or pyenv)" >&2; exit 1; }
if [ ! -d "$cache/autobahntestsuite" ]; then
	"${python2[@]}" -m pip install --target "$cache" autobahntestsuite >&2
fi
# (addsitedir, not PYTHONPATH: zope's namespace package needs its .pth file)
wstest=("${python2[@]}" -c 'import site, sys; site.addsitedir(sys.argv.pop(1)); from autobahntestsuite.wstest import run; run()' "$cache")

cargo build --release --quiet -p lune
lune=$root/target/release/lune

cases=${CASES:-'["*"]'}
if [ -n "${COMPRESS:-}" ]; then
	exclude='[]'
	flag=compress
else
	exclude='["12.*", "13.*"]'
	flag=
fi

# 1. Our server, the suite's client.
log=$(mktemp)
"$lune" run scripts/autobahn/echo_server.luau $flag > "$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	port=$(sed -n 's/^ready \([0-9]*\)$/\1/p' "$log")
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "${port:-}" ] || { cat "$log" >&2; exit 1; }
rm -rf "$out/server"
cat > "$out/client.json" <<JSON
{ "outdir": "$out/server", "servers": [{ "agent": "lune", "url": "ws://127.0.0.1:$port" }],
  "cases": $cases, "exclude-cases": $exclude, "exclude-agent-cases": {} }
JSON
(cd "$out" && exec "${wstest[@]}" -m fuzzingclient -s "$out/client.json") > "$out/server.log" 2>&1 ||
	{ tail -20 "$out/server.log" >&2; exit 1; }
kill $server 2>/dev/null || true

# 2. Our client, the suite's server.
ws_port=${AUTOBAHN_PORT:-9001}
cat > "$out/server.json" <<JSON
{ "url": "ws://127.0.0.1:$ws_port", "outdir": "$out/client",
  "cases": $cases, "exclude-cases": $exclude, "exclude-agent-cases": {} }
JSON
rm -rf "$out/client"
(cd "$out" && exec "${wstest[@]}" -m fuzzingserver -s "$out/server.json") > "$out/client.log" 2>&1 &
suite=$!
trap 'kill $server $suite 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	kill -0 $suite 2>/dev/null || { tail -20 "$out/client.log" >&2; exit 1; }
	(exec 3<>"/dev/tcp/127.0.0.1/$ws_port") 2>/dev/null && break
	sleep 0.2
done
"$lune" run scripts/autobahn/echo_client.luau "ws://127.0.0.1:$ws_port" $flag
kill $suite 2>/dev/null || true
wait $suite 2>/dev/null || true

# 3. The summary: outcomes per role, from the suite's own index.
python3 - "$out" "${COMPRESS:-}" <<'PY'
import json, sys, collections
out, compress = sys.argv[1], sys.argv[2]
bad = False
for role in ("server", "client"):
    with open(f"{out}/{role}/index.json") as f:
        index = json.load(f)
    counts = collections.Counter()
    failed = []
    for agent, results in index.items():
        for case, result in results.items():
            outcome = result["behavior"]
            if result.get("behaviorClose") in ("FAILED",) and outcome != "UNIMPLEMENTED":
                outcome = "FAILED"
            counts[outcome] += 1
            if outcome == "FAILED" or (compress and outcome == "UNIMPLEMENTED"):
                failed.append(case)
    print(f"autobahn, our {role}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if failed:
        bad = True
        print(f"  not passing: {' '.join(sorted(failed)[:40])}")
sys.exit(1 if bad else 0)
PY
