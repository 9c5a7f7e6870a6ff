"""Shared set-up of the whole-process benches: a release coordinator on
loopback and enrolled agents, all in one temporary directory removed at exit.
"""

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request


def fail(msg):
    sys.exit(f"error: {msg}")


def wait_for(what, predicate, timeout=60.0):
    """Polls `predicate` every 50 ms until it returns something true."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    fail(f"timed out waiting for {what}")


def default_bin():
    return os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release")


def check_bins(bindir):
    for b in ("ward-server", "ward", "ward-agent"):
        if not os.access(os.path.join(bindir, b), os.X_OK):
            fail(f"{bindir}/{b} is missing (build with cargo build --release -p ward-server -p ward-agent)")


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list."""
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


class Bench:
    """A temporary directory, a coordinator (SQLite, or PostgreSQL when
    WARD_BENCH_DATABASE is set) and the processes started in it."""

    def __init__(self, bindir):
        check_bins(bindir)
        self.bin = bindir
        self.work = tempfile.mkdtemp(prefix="ward-bench.")
        self.procs = []
        self.env = dict(os.environ, WARD_LOG="warn")

    def __enter__(self):
        return self

    def __exit__(self, *_):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.work, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.work, name)

    def spawn(self, name, cmd, log_level="warn"):
        """Starts a process whose output goes to WORK/NAME.log."""
        log = open(self.path(f"{name}.log"), "w")
        p = subprocess.Popen(cmd, stdout=log, stderr=log, env=dict(self.env, WARD_LOG=log_level))
        self.procs.append(p)
        return p

    def start_coordinator(self):
        data = self.path("srv")
        port = 20000 + os.getpid() % 20000
        cmd = [os.path.join(self.bin, "ward-server"), "serve", "--data", data, "--listen", f"127.0.0.1:{port}"]
        self.store = "sqlite"
        if os.environ.get("WARD_BENCH_DATABASE"):
            cmd += ["--database", os.environ["WARD_BENCH_DATABASE"]]
            self.store = "postgres"
        self.server = self.spawn("server", cmd)
        token_file = os.path.join(data, "admin.token")
        self.ca = os.path.join(data, "tls", "cert.pem")
        wait_for("the coordinator", lambda: os.path.exists(self.ca)
                 and os.path.exists(token_file) and os.path.getsize(token_file) > 0)
        self.url = f"https://127.0.0.1:{port}"
        self.token = open(token_file).read().strip()
        self.cli_env = dict(self.env, WARD_SERVER=self.url, WARD_CA=self.ca, WARD_TOKEN=self.token)
        wait_for("the API", lambda: self.cli("agents", "list").returncode == 0)
        self.tls = ssl.create_default_context(cafile=self.ca)
        self.tls.check_hostname = False

    def cli(self, *args):
        return subprocess.run([os.path.join(self.bin, "ward"), *args], env=self.cli_env,
                              capture_output=True, text=True)

    def api(self, path):
        """GET PATH on the coordinator's API as the admin, decoded JSON."""
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, context=self.tls, timeout=10) as resp:
            return json.load(resp)

    def start_agent(self, name, config_body):
        """Enrolls an agent and runs it with `config_body` (TOML without
        state_dir) until the bench ends. Returns the process."""
        r = self.cli("enroll-token", "create", "--agency", "bench", "--json")
        if r.returncode != 0:
            fail(f"enroll-token create: {r.stderr}")
        state = self.path(f"{name}-state")
        r = subprocess.run([os.path.join(self.bin, "ward-agent"), "enroll", "--token",
                            json.loads(r.stdout)["token"], "--state", state, "--hostname", name],
                           env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"enrollment failed: {r.stderr}")
        config = self.path(f"{name}.toml")
        with open(config, "w") as f:
            f.write(f'state_dir = "{state}"\nhost = "{name}"\n{config_body}')
        # The agent logs at info so that its "following file" line says it is ready.
        p = self.spawn(name, [os.path.join(self.bin, "ward-agent"), "run", "--config", config], "info")
        wait_for(f"agent {name} to start", lambda: "following file" in open(self.path(f"{name}.log")).read())
        return p
