#!/usr/bin/env python3
"""End-to-end latency: a log line appended on an agent host -> the incident
visible in the coordinator's API.

Starts a release `ward-server` (embedded SQLite, or PostgreSQL when
WARD_BENCH_DATABASE is a postgres:// URL) and one enrolled `ward-agent`
tailing an access log with the shipped pack, then runs TRIALS trials: each
appends one SQL injection request from a new client address (so each makes a
new incident) and polls `GET /api/v1/incidents?rule=...&sort=created` every
POLL_MS until an incident with that address is listed. Prints p50/p90/p99/max.

    bench/latency.py [TRIALS] [--bin DIR] [--poll-ms N] [--gap-ms N] [--json]

DIR holds release ward-server, ward and ward-agent (default
$CARGO_TARGET_DIR/release, else target/release).
"""

import argparse
import json
import statistics
import sys
import time

from benchlib import Bench, default_bin, fail, percentile

SQLI_RULE = "b1709dcc-6400-46db-8d02-0dd2a3435dbc"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trials", nargs="?", type=int, default=1000)
    ap.add_argument("--bin", default=default_bin())
    ap.add_argument("--poll-ms", type=float, default=5.0, help="API polling interval (ms)")
    ap.add_argument("--gap-ms", type=float, default=20.0, help="pause between trials (ms)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()

    with Bench(args.bin) as b:
        b.start_coordinator()
        log = b.path("access.log")
        with open(log, "w") as f:  # a file is followed once it has a first line (its fingerprint)
            f.write('127.0.0.1 - - [01/Dec/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 512 "-" "curl/8.0"\n')
        b.start_agent("web01", f'[[logs]]\npath = "{log}"\nformat = "auto"\n')
        query = f"/api/v1/incidents?rule={SQLI_RULE}&sort=created&limit=20"

        def listed():
            return {i.get("entities", {}).get("c-ip") or i.get("entities", {}).get("src_ip")
                    for i in b.api(query)}

        latencies = []
        with open(log, "a") as f:
            for n in range(args.trials):
                ip = f"10.{100 + n // 65536}.{(n // 256) % 256}.{n % 256}"
                stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
                t0 = time.monotonic()
                f.write(f'{ip} - - [{stamp}] "GET /news.php?id=1%27%20union%20select%201,2,3-- HTTP/1.1" '
                        f'200 512 "-" "Mozilla/5.0"\n')
                f.flush()
                while ip not in listed():
                    if time.monotonic() - t0 > 30:
                        fail(f"trial {n}: no incident for {ip} after 30 s")
                    time.sleep(args.poll_ms / 1000)
                latencies.append(time.monotonic() - t0)
                time.sleep(args.gap_ms / 1000)
        s = sorted(latencies)
        report = {
            "trials": len(s),
            "store": b.store,
            "poll_ms": args.poll_ms,
            "p50_ms": round(percentile(s, 50) * 1000, 1),
            "p90_ms": round(percentile(s, 90) * 1000, 1),
            "p99_ms": round(percentile(s, 99) * 1000, 1),
            "max_ms": round(s[-1] * 1000, 1),
            "mean_ms": round(statistics.fmean(s) * 1000, 1),
        }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['trials']} trials ({report['store']}, polling every {args.poll_ms} ms): "
              f"p50 {report['p50_ms']} ms, p90 {report['p90_ms']} ms, p99 {report['p99_ms']} ms, "
              f"max {report['max_ms']} ms, mean {report['mean_ms']} ms")


if __name__ == "__main__":
    sys.exit(main())
