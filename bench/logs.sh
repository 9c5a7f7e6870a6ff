#!/usr/bin/env bash
# Log detection throughput, side by side on the same files and one core:
#   ward-agent replay (full shipped pack)  vs  fail2ban-regex  vs  CrowdSec replay.
#
#   bench/logs.sh [LINES]      # default 1,000,000 lines per file
#   WARD_AGENT=path/to/ward-agent bench/logs.sh   # time an existing build
#
# Installs the peers from Debian when missing (see ../shared/PEERS.md), generates
# the logs with bench/gen_logs.py, and prints a Markdown table for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
work=${WARD_BENCH_DIR:-/tmp/ward-bench}
mkdir -p "$work"

if ! command -v fail2ban-regex >/dev/null || ! command -v crowdsec >/dev/null || [ ! -x /usr/bin/time ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends fail2ban time
    mkdir -p /etc/crowdsec
    [ -s /etc/crowdsec/online_api_credentials.yaml ] || echo '# offline' >/etc/crowdsec/online_api_credentials.yaml
    apt-get install -y -qq --no-install-recommends crowdsec
fi

if [ "$(wc -l <"$work/auth.log" 2>/dev/null || echo 0)" -ne "$lines" ]; then
    python3 bench/gen_logs.py "$work" "$lines"
fi

# WARD_AGENT: a ward-agent binary already built (e.g. `--profile profiling`,
# the release build with symbols); otherwise the release build is made here.
ward=${WARD_AGENT:-}
if [ -z "$ward" ]; then
    cargo build --release -p ward-agent
    target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    ward=$target/release/ward-agent
fi

# run NAME CMD... → "NAME seconds maxrss_kb" (one core, stdout discarded)
run() {
    local name=$1
    shift
    /usr/bin/time -f "%e %M %U %S" -o "$work/time.$$" taskset -c 0 "$@" >"$work/out.$name" 2>"$work/err.$name" || {
        echo "$name failed; see $work/err.$name" >&2
        return 1
    }
    echo "$name $(cat "$work/time.$$")"
}

crowdsec_cfg() {
    local dir=$work/crowdsec
    rm -rf "$dir"
    mkdir -p "$dir/data" "$dir/acquis.d"
    : >"$dir/acquis.yaml"
    # Debian's package lacks http_path_traversal.txt; without it every HTTP event logs an error.
    cp -r /var/lib/crowdsec/data/. "$dir/data/" 2>/dev/null || true
    [ -f "$dir/data/http_path_traversal.txt" ] || cp "$dir/data/path_traversal.txt" "$dir/data/http_path_traversal.txt" 2>/dev/null || true
    cat >"$dir/config.yaml" <<YAML
common:
  daemonize: false
  log_media: stdout
  log_level: error
  working_dir: .
config_paths:
  config_dir: /etc/crowdsec/
  data_dir: $dir/data/
  simulation_path: /etc/crowdsec/simulation.yaml
  hub_dir: /var/lib/crowdsec/hub/
  index_path: /var/lib/crowdsec/hub/.index.json
  notification_dir: /etc/crowdsec/notifications/
  plugin_dir: /usr/lib/crowdsec/plugins/
crowdsec_service:
  acquisition_path: $dir/acquis.yaml
  acquisition_dir: $dir/acquis.d
  parser_routines: 1
cscli:
  output: human
db_config:
  log_level: error
  type: sqlite
  db_path: $dir/data/crowdsec.db
  use_wal: true
api:
  client:
    insecure_skip_verify: false
    credentials_path: $dir/local_api_credentials.yaml
  server:
    log_level: error
    listen_uri: 127.0.0.1:18089
    profiles_path: /etc/crowdsec/profiles.yaml
    trusted_ips:
      - 127.0.0.1
prometheus:
  enabled: false
YAML
    cscli -c "$dir/config.yaml" machines add replay --auto --force -f "$dir/local_api_credentials.yaml" >/dev/null 2>&1
    echo "$dir/config.yaml"
}

results=()
results+=("$(run ward-auth "$ward" replay --log "$work/auth.log")")
results+=("$(run ward-access "$ward" replay --log "$work/access.log")")
results+=("$(run fail2ban-sshd fail2ban-regex -r --usedns=no --print-no-missed --print-no-ignored "$work/auth.log" /etc/fail2ban/filter.d/sshd.conf)")
results+=("$(run fail2ban-nginx fail2ban-regex -r --usedns=no --print-no-missed --print-no-ignored "$work/access.log" /etc/fail2ban/filter.d/nginx-botsearch.conf)")
# CrowdSec reads a head of each file (CROWDSEC_LINES, default 20,000): at its
# ≈2,000 auth and ≈200 nginx lines/s, a million access lines would take over an
# hour. Its lines/s below are per its own line count.
cs_lines=${CROWDSEC_LINES:-20000}
[ "$cs_lines" -gt "$lines" ] && cs_lines=$lines
for f in auth access; do
    head -n "$cs_lines" "$work/$f.log" >"$work/$f.crowdsec.log"
done
cfg=$(crowdsec_cfg)
results+=("$(run crowdsec-auth crowdsec -c "$cfg" -dsn "file://$work/auth.crowdsec.log" -type syslog || echo "crowdsec-auth failed")")
cfg=$(crowdsec_cfg)
results+=("$(run crowdsec-access crowdsec -c "$cfg" -dsn "file://$work/access.crowdsec.log" -type nginx || echo "crowdsec-access failed")")

ward_alerts_auth=$(wc -l <"$work/out.ward-auth")
ward_alerts_access=$(wc -l <"$work/out.ward-access")
echo
echo "| run | lines | wall s | CPU s | lines/s (CPU) | max RSS (MB) |"
echo "|---|---:|---:|---:|---:|---:|"
for r in "${results[@]}"; do
    set -- $r
    n=$lines
    case $1 in crowdsec-*) n=$cs_lines ;; esac
    if [ $# -lt 5 ]; then
        echo "| $1 | $n | failed | | | |"
        continue
    fi
    awk -v n="$1" -v l="$n" -v s="$2" -v m="$3" -v u="$4" -v sy="$5" 'BEGIN { cpu = u + sy; printf "| %s | %d | %.2f | %.2f | %.0f | %.0f |\n", n, l, s, cpu, (cpu > 0 ? l / cpu : 0), m / 1024 }'
done
echo
echo "ward alerts: auth $ward_alerts_auth, access $ward_alerts_access (outputs in $work/out.*)"
