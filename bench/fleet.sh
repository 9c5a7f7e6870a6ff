#!/usr/bin/env bash
# Coordinator benchmark: a release `ward-server` on the embedded SQLite store
# (or PostgreSQL when WARD_BENCH_DATABASE is a postgres:// URL), driven over
# loopback TLS by `ward-agent load`: AGENTS simulated agents heartbeating every
# 30 s and RATE alerts/s in batches of 10 for SECONDS. Prints alerts/s stored
# and p50/p99 latency of alert batches and heartbeats, and the server's peak RSS.
# Each simulated host sees WARD_BENCH_ATTACKERS attacker addresses (default 4,
# of a pool of 398 shared by the fleet): most alerts join an open incident.
# WARD_BENCH_ATTACKERS=398 is the worst case, nearly every alert a new incident.
# A simulated agent sends what it has pending (up to 1,000 alerts) once its
# previous request is answered, as a real agent's spool does;
# WARD_BENCH_FIXED_BATCHES=1 sends every scheduled batch of 10 on its own.
#   bench/fleet.sh [AGENTS] [RATE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
AGENTS="${1:-2000}"
RATE="${2:-20000}"
SECS="${3:-60}"
# WARD_BENCH_BIN: a directory with release ward-server, ward and ward-agent
# already built (then nothing is built). WARD_BENCH_SERVER_LOG: the server's
# WARD_LOG filter (default warn; `warn,sqlx::query=debug` logs every statement
# with its time).
if [ -n "${WARD_BENCH_BIN:-}" ]; then
    BIN="$WARD_BENCH_BIN"
else
    cargo build --release -p ward-server -p ward-agent --bins >&2
    BIN="${CARGO_TARGET_DIR:-target}/release"
fi
DATA="$(mktemp -d /tmp/ward-fleet.XXXXXX)"
# $SERVER is /usr/bin/time's pid: the server is its child (killing time alone
# would leave the server running).
stop_server() { pkill -TERM -P "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
trap 'stop_server; rm -rf "$DATA"' EXIT
PORT=$((20000 + RANDOM % 20000))
DB_ARGS=()
if [ -n "${WARD_BENCH_DATABASE:-}" ]; then DB_ARGS=(--database "$WARD_BENCH_DATABASE"); fi
WARD_LOG=${WARD_BENCH_SERVER_LOG:-warn} /usr/bin/time -v -o "$DATA/server.time" \
    "$BIN/ward-server" serve --data "$DATA/srv" --listen "127.0.0.1:$PORT" "${DB_ARGS[@]}" \
    2>"$DATA/server.log" &
SERVER=$!
for _ in $(seq 100); do [ -s "$DATA/srv/admin.token" ] && [ -s "$DATA/srv/tls/cert.pem" ] && break; sleep 0.1; done
export WARD_SERVER="https://127.0.0.1:$PORT" WARD_TOKEN="$(cat "$DATA/srv/admin.token")" WARD_CA="$DATA/srv/tls/cert.pem"
for _ in $(seq 100); do "$BIN/ward" agents list >/dev/null 2>&1 && break; sleep 0.1; done
TOKEN="$("$BIN/ward" enroll-token create --agency bench --uses "$AGENTS" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
echo "== ward-agent load: $AGENTS agents, $RATE alerts/s, ${SECS}s, ${WARD_BENCH_ATTACKERS:-4} attackers per host, store: ${WARD_BENCH_DATABASE:-sqlite (embedded)}"
WARD_LOG=warn WARD_ENROLL_TOKEN="$TOKEN" "$BIN/ward-agent" load --agents "$AGENTS" --rate "$RATE" \
    --batch 10 --heartbeat-secs 30 --duration-secs "$SECS" \
    --attackers-per-host "${WARD_BENCH_ATTACKERS:-4}" ${WARD_BENCH_FIXED_BATCHES:+--fixed-batches} | tee "$DATA/report.txt" ||
    echo "(the load tool exited non-zero: it had errors; the counts below still hold)"
stop_server
# Counted in the store itself once the server has stopped (the API lists
# incidents a page at a time).
if [ -z "${WARD_BENCH_DATABASE:-}" ]; then
    echo "stored alerts (coordinator): $(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM alerts").fetchone()[0])' "$DATA/srv/ward.db")"
else
    echo "stored alerts (coordinator): $(psql -At "$WARD_BENCH_DATABASE" -c 'SELECT count(*) FROM alerts')"
fi
grep -E "Maximum resident|Percent of CPU" "$DATA/server.time" | sed 's/^\s*/server: /'
