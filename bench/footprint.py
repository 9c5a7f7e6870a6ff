#!/usr/bin/env python3
"""Agent footprint: RSS and CPU of a release `ward-agent` with the shipped
pack, idle and under a steady log rate, and the binary's size.

Starts a release coordinator and one enrolled agent that tails an auth log
and an access log and watches a small web root (so the Sigma pack, the IOC
lists and the YARA rules are all loaded). After WARMUP seconds it samples the
agent's /proc for SECONDS idle, then appends RATE lines/s (sshd and web
access lines, a few of them attacks) for SECONDS more.

    bench/footprint.py [--bin DIR] [--seconds N] [--rate N] [--warmup N] [--json]
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time

from benchlib import Bench, default_bin

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kb(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def auth_line(rng):
    ts = time.strftime("%b %e %H:%M:%S")
    ip = f"198.18.{rng.randrange(256)}.{rng.randrange(256)}"
    pid = rng.randrange(1000, 60000)
    kind = rng.random()
    if kind < 0.6:
        return f"{ts} web01 sshd[{pid}]: Accepted publickey for deploy from {ip} port {rng.randrange(1024, 65535)} ssh2"
    if kind < 0.9:
        return f"{ts} web01 CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"
    return f"{ts} web01 sshd[{pid}]: Failed password for invalid user admin from {ip} port {rng.randrange(1024, 65535)} ssh2"


def access_line(rng):
    ts = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    ip = f"198.19.{rng.randrange(256)}.{rng.randrange(256)}"
    path = rng.choice(["/", "/tin-tuc/thong-bao.html", "/static/app.css", "/dich-vu-cong/ho-so?id=123",
                       "/images/logo.png", "/wp-login.php", "/index.php?id=1%27%20union%20select%201,2--"])
    status = 404 if path == "/wp-login.php" else 200
    return f'{ip} - - [{ts}] "GET {path} HTTP/1.1" {status} {rng.randrange(200, 90000)} "-" "Mozilla/5.0 (X11; Linux x86_64)"'


def usage_since(pid, c0, t0):
    """CPU share since (CPU seconds c0, monotonic time t0), RSS and peak RSS."""
    return {
        "cpu_percent": round(100 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0), 2),
        "rss_mb": round(status_kb(pid, "VmRSS") / 1024, 1),
        "peak_rss_mb": round(status_kb(pid, "VmHWM") / 1024, 1),
    }


def sample(pid, seconds):
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return usage_since(pid, c0, t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=default_bin())
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--rate", type=int, default=1000, help="lines per second in the loaded phase")
    ap.add_argument("--warmup", type=float, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    with Bench(args.bin) as b:
        agent_bin = os.path.join(args.bin, "ward-agent")
        stripped = b.path("ward-agent.stripped")
        shutil.copy(agent_bin, stripped)
        subprocess.run(["strip", stripped], check=True)
        report = {
            "binary_mb": round(os.path.getsize(agent_bin) / 2**20, 1),
            "stripped_binary_mb": round(os.path.getsize(stripped) / 2**20, 1),
        }
        b.start_coordinator()
        auth, access, www = b.path("auth.log"), b.path("access.log"), b.path("www")
        os.makedirs(os.path.join(www, "uploads"))
        for n in range(50):
            with open(os.path.join(www, f"page{n}.html"), "w") as f:
                f.write(f"<html><body>Trang {n}</body></html>\n" * 20)
        rng = random.Random(7)
        with open(auth, "w") as fa, open(access, "w") as fw:  # followed once they have a first line
            fa.write(auth_line(rng) + "\n")
            fw.write(access_line(rng) + "\n")
        agent = b.start_agent("web01", f'[[logs]]\npath = "{auth}"\n[[logs]]\npath = "{access}"\n'
                                       f'[[files]]\npath = "{www}"\n')
        time.sleep(args.warmup)
        report["idle"] = sample(agent.pid, args.seconds)

        c0, t0 = cpu_seconds(agent.pid), time.monotonic()
        written = 0
        with open(auth, "a") as fa, open(access, "a") as fw:
            while (elapsed := time.monotonic() - t0) < args.seconds:
                due = int(elapsed * args.rate) + 1
                while written < due:
                    if written % 2:
                        fa.write(auth_line(rng) + "\n")
                    else:
                        fw.write(access_line(rng) + "\n")
                    written += 1
                fa.flush()
                fw.flush()
                time.sleep(0.01)
        wall = time.monotonic() - t0
        time.sleep(2)  # let the agent finish the last lines before reading its counters
        report["loaded"] = {
            "lines": written,
            "lines_per_sec": round(written / wall),
            **usage_since(agent.pid, c0, t0),
        }
        hb = b.api("/api/v1/agents")[0].get("heartbeat") or {}
        report["agent_reported"] = {k: hb[k] for k in ("lines_per_sec", "alerts_per_sec", "rss_bytes", "cpu_seconds")
                                    if k in hb}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"binary: {report['binary_mb']} MB, stripped {report['stripped_binary_mb']} MB")
        i, l = report["idle"], report["loaded"]
        print(f"idle {args.seconds:.0f} s: CPU {i['cpu_percent']} % of a core, RSS {i['rss_mb']} MB (peak {i['peak_rss_mb']} MB)")
        print(f"{l['lines_per_sec']} lines/s for {args.seconds:.0f} s ({l['lines']} lines): CPU {l['cpu_percent']} % "
              f"of a core, RSS {l['rss_mb']} MB (peak {l['peak_rss_mb']} MB)")
        print(f"agent's own heartbeat: {report['agent_reported']}")


if __name__ == "__main__":
    sys.exit(main())
