#!/usr/bin/env python3
"""Generate large, real-looking auth and access logs for benchmarks.

Lines are real corpus lines (loghub OpenSSH, fail2ban and CrowdSec test logs,
the Elastic Apache sample) with addresses, ports, users and times varied, so
the mix of benign traffic and attacks stays realistic.

    bench/gen_logs.py OUT_DIR [LINES]     # writes OUT_DIR/auth.log, OUT_DIR/access.log
"""
import os
import random
import re
import sys
from datetime import datetime, timedelta

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "corpus", "logs")
IP = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b")
SYSLOG_TS = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ")
ACCESS_TS = re.compile(r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]")
USERS = ["root", "admin", "oracle", "test", "ubuntu", "postgres", "git", "deploy", "user", "guest"]


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]


def auth_templates():
    lines = read(os.path.join(CORPUS, "loghub", "OpenSSH", "OpenSSH_2k.log"))
    lines += read(os.path.join(CORPUS, "loghub", "Linux", "Linux_2k.log"))
    for name in ("sshd", "pam-generic"):
        p = os.path.join(CORPUS, "fail2ban-tests", name)
        if os.path.exists(p):
            lines += [l for l in read(p) if SYSLOG_TS.match(l)]
    return [l for l in lines if SYSLOG_TS.match(l)]


def access_templates():
    lines = read(os.path.join(CORPUS, "elastic-examples", "apache_logs"))
    hub = os.path.join(CORPUS, "crowdsec-hub-tests")
    for d in sorted(os.listdir(hub)):
        if not os.path.isdir(os.path.join(hub, d)):
            continue
        for f in sorted(os.listdir(os.path.join(hub, d))):
            if f.endswith(".log"):
                lines += [l for l in read(os.path.join(hub, d, f)) if ACCESS_TS.search(l)]
    return [l for l in lines if ACCESS_TS.search(l)]


def vary_ip(line, rng):
    return IP.sub(lambda m: "%d.%d.%d.%d" % (rng.choice([198, 203, 192, 45, 103, 14]), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)), line)


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    os.makedirs(out, exist_ok=True)
    rng = random.Random(20261122)
    start = datetime(2026, 11, 22, 0, 0, 0)

    auth = auth_templates()
    with open(os.path.join(out, "auth.log"), "w") as f:
        for i in range(n):
            t = start + timedelta(milliseconds=i * 40)
            line = vary_ip(rng.choice(auth), rng)
            line = SYSLOG_TS.sub(t.strftime("%b %e %H:%M:%S "), line)
            if rng.random() < 0.2:
                line = line.replace("root", rng.choice(USERS))
            f.write(line + "\n")

    access = access_templates()
    with open(os.path.join(out, "access.log"), "w") as f:
        for i in range(n):
            t = start + timedelta(milliseconds=i * 40)
            line = vary_ip(rng.choice(access), rng)
            line = ACCESS_TS.sub(t.strftime("[%d/%b/%Y:%H:%M:%S +0700]"), line)
            f.write(line + "\n")
    print("wrote %d lines each to %s/auth.log and %s/access.log" % (n, out, out))


if __name__ == "__main__":
    main()
