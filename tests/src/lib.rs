//! Harness for end-to-end tests: builds the real binaries once, starts
//! `ward-server` on a free loopback port with a temp data dir, and runs
//! `ward` and `ward-agent` against it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Directory holding the built binaries.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // target/debug/deps/<test> → target/debug
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target directory")
            .to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let target = dir.parent().expect("target root");
        let mut build = Command::new(cargo);
        // The variables `cargo test` sets for this test (CARGO_MANIFEST_DIR,
        // ...) would look like changed inputs to dependencies' build scripts
        // and force a rebuild; the nested build must see the outer environment.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CARGO_") && key != "CARGO_HOME" {
                build.env_remove(key.as_ref());
            }
        }
        let status = build
            .args(["build", "--quiet", "--workspace", "--bins"])
            .env("CARGO_TARGET_DIR", target)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .expect("running cargo build for the binaries");
        assert!(status.success(), "building the binaries failed");
        dir
    })
}

/// Path of one of the project's binaries.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(p.exists(), "{} was not built", p.display());
    p
}

/// The repository's `rules/` directory.
pub fn rules_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules")).to_path_buf()
}

/// A child process whose stderr is collected in the background; killed on drop.
pub struct Proc {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Proc {
    /// Starts `cmd`, collecting its stderr.
    pub fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning process");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Proc { child, stderr }
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle`; panics with the log after `timeout`.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.stderr();
            if s.contains(needle) {
                return s;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("process exited ({status}) before logging '{needle}':\n{s}");
            }
            assert!(
                start.elapsed() < timeout,
                "no '{needle}' after {timeout:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL (no chance to clean up) and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                panic!("process ignored SIGTERM:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running coordinator.
pub struct Server {
    /// The process.
    pub proc: Proc,
    /// Its base URL.
    pub url: String,
    /// The admin API token from `DATA/admin.token`.
    pub admin_token: String,
    /// The coordinator's certificate (`DATA/tls/cert.pem`), `WARD_CA` for
    /// `ward`; `None` when it serves plain HTTP.
    pub ca: Option<PathBuf>,
    /// SHA-256 of its certificate, as enrollment tokens pin it.
    pub cert_sha256: Option<String>,
    /// The data dir.
    pub data: PathBuf,
    /// The network namespace it runs in (`ward` runs there too), if any.
    pub netns: Option<String>,
}

/// A command for `program`, run inside network namespace `netns` when given.
pub fn command_in(netns: Option<&str>, program: &Path) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

impl Server {
    /// Starts `ward-server serve` on a free loopback port.
    pub fn start(data: &Path) -> Server {
        Server::start_in(data, None)
    }

    /// Starts `ward-server serve` on a free loopback port of network
    /// namespace `netns` (the root namespace when `None`).
    pub fn start_in(data: &Path, netns: Option<&str>) -> Server {
        Server::spawn(data, netns, "127.0.0.1:0", &[])
    }

    /// Starts `ward-server serve --listen LISTEN` (e.g. again on the port
    /// of a stopped coordinator, over the same data dir).
    pub fn start_at(data: &Path, netns: Option<&str>, listen: &str) -> Server {
        Server::spawn(data, netns, listen, &[])
    }

    /// Starts `ward-server serve` with extra arguments (e.g. `--insecure-http`).
    pub fn start_with(data: &Path, netns: Option<&str>, extra: &[&str]) -> Server {
        Server::spawn(data, netns, "127.0.0.1:0", extra)
    }

    /// Starts `ward-server serve --listen LISTEN` with extra arguments.
    pub fn start_at_with(data: &Path, netns: Option<&str>, listen: &str, extra: &[&str]) -> Server {
        Server::spawn(data, netns, listen, extra)
    }

    fn spawn(data: &Path, netns: Option<&str>, listen: &str, extra: &[&str]) -> Server {
        let mut cmd = command_in(netns, &bin("ward-server"));
        cmd.args(["serve", "--listen", listen, "--data"])
            .arg(data)
            .args(extra)
            .env("WARD_LOG", "info,sqlx=warn");
        let mut proc = Proc::spawn(cmd);
        let log = proc.wait_for("listening on ", Duration::from_secs(60));
        let url = log
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("URL after 'listening on'")
            .to_string();
        let line = log
            .lines()
            .find(|l| l.contains("listening on "))
            .unwrap_or_default();
        let cert_sha256 = line
            .split("cert_sha256=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned);
        let ca = url
            .starts_with("https://")
            .then(|| data.join("tls").join("cert.pem"));
        let admin_token = std::fs::read_to_string(data.join("admin.token"))
            .expect("admin.token written on first start")
            .trim()
            .to_string();
        Server {
            proc,
            url,
            admin_token,
            ca,
            cert_sha256,
            data: data.to_owned(),
            netns: netns.map(str::to_owned),
        }
    }

    /// The `host:port` it listens on.
    pub fn addr(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_string()
    }

    /// Runs `ward ARGS` as the admin.
    pub fn ward(&self, args: &[&str]) -> Output {
        self.ward_as(&self.admin_token, args)
    }

    /// Runs `ward ARGS` with API token `token` (and `WARD_CA` set to the
    /// coordinator's certificate).
    pub fn ward_as(&self, token: &str, args: &[&str]) -> Output {
        let mut cmd = command_in(self.netns.as_deref(), &bin("ward"));
        cmd.args(args)
            .env("WARD_SERVER", &self.url)
            .env("WARD_TOKEN", token)
            .env_remove("WARD_CA");
        if let Some(ca) = &self.ca {
            cmd.env("WARD_CA", ca);
        }
        cmd.output().expect("running ward")
    }

    /// A reqwest client that trusts this coordinator's certificate.
    pub fn http_client(&self) -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca).expect("reading the coordinator's cert.pem");
            builder = builder.tls_certs_merge(
                reqwest::Certificate::from_pem_bundle(&pem).expect("a PEM certificate"),
            );
        }
        builder.build().expect("building the HTTP client")
    }

    /// `ward incidents list --json`.
    pub fn incidents(&self) -> Vec<serde_json::Value> {
        self.ward_json(&["incidents", "list"])
            .as_array()
            .expect("a JSON array")
            .clone()
    }

    /// Creates an enrollment token for `agency` and enrolls an agent named
    /// `hostname` with it, its identity in `state` (in the server's
    /// namespace); panics on failure.
    pub fn enroll_agent(&self, agency: &str, hostname: &str, state: &Path) {
        let token = self.ward_json(&["enroll-token", "create", "--agency", agency]);
        let token = token["token"].as_str().expect("a token");
        let out = command_in(self.netns.as_deref(), &bin("ward-agent"))
            .args([
                "enroll",
                "--hostname",
                hostname,
                "--token",
                token,
                "--state",
            ])
            .arg(state)
            .output()
            .expect("running ward-agent enroll");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `ward ARGS --json` and parses stdout; panics on failure.
    pub fn ward_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--json");
        let out = self.ward(&all);
        assert!(
            out.status.success(),
            "ward {all:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "ward {all:?} printed non-JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// The value of a Prometheus counter or gauge on `/metrics` (0 when absent).
    pub fn metric(&self, name: &str) -> f64 {
        let url = format!("{}/metrics", self.url);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let client = self.http_client();
        let body = rt
            .block_on(async {
                client
                    .get(&url)
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await
            })
            .expect("GET /metrics");
        body.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == name).then(|| v.trim().parse().ok()).flatten()
            })
            .unwrap_or(0.0)
    }
}

/// Starts `ward-agent run --config CONFIG` (in network namespace `netns`
/// when given) and waits until it has loaded its rules.
pub fn start_agent(netns: Option<&str>, config: &Path) -> Proc {
    let mut cmd = command_in(netns, &bin("ward-agent"));
    cmd.args(["run", "--config"])
        .arg(config)
        .env("WARD_LOG", "info");
    let mut agent = Proc::spawn(cmd);
    agent.wait_for("agent started", Duration::from_secs(30));
    agent
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two network namespaces made by a test, joined by a veth pair:
/// `inside` (10.77.0.1/24 on `inside_if`) and `outside` (10.77.0.2/24).
/// Only these namespaces carry the test's traffic. Both are deleted on drop,
/// also when the test fails.
pub struct NetnsPair {
    /// The namespace the agent runs in.
    pub inside: String,
    /// The namespace traffic comes from.
    pub outside: String,
    /// The veth end inside `inside`.
    pub inside_if: String,
}

impl NetnsPair {
    /// Address of the inside end.
    pub const INSIDE_IP: &'static str = "10.77.0.1";
    /// Address of the outside end.
    pub const OUTSIDE_IP: &'static str = "10.77.0.2";

    /// Creates the namespaces and the veth pair; an error names the failing
    /// `ip` command (needs root and iproute2).
    pub fn create() -> Result<NetnsPair, String> {
        let id = std::process::id();
        let pair = NetnsPair {
            inside: format!("ward-test-{id}-in"),
            outside: format!("ward-test-{id}-out"),
            inside_if: format!("wv{id}i"),
        };
        let outside_if = format!("wv{id}o");
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", &pair.inside],
            vec!["netns", "add", &pair.outside],
            vec![
                "link",
                "add",
                &pair.inside_if,
                "netns",
                &pair.inside,
                "type",
                "veth",
                "peer",
                "name",
                &outside_if,
                "netns",
                &pair.outside,
            ],
            vec![
                "-n",
                &pair.inside,
                "addr",
                "add",
                "10.77.0.1/24",
                "dev",
                &pair.inside_if,
            ],
            vec![
                "-n",
                &pair.outside,
                "addr",
                "add",
                "10.77.0.2/24",
                "dev",
                &outside_if,
            ],
            vec!["-n", &pair.inside, "link", "set", &pair.inside_if, "up"],
            vec!["-n", &pair.outside, "link", "set", &outside_if, "up"],
            vec!["-n", &pair.inside, "link", "set", "lo", "up"],
            vec!["-n", &pair.outside, "link", "set", "lo", "up"],
        ];
        for args in steps {
            let out = Command::new("ip")
                .args(&args)
                .output()
                .map_err(|e| format!("cannot run ip (install iproute2): {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "ip {} failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(pair)
    }

    /// Runs a bash script inside `outside`; returns its output.
    pub fn from_outside(&self, script: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.outside, "bash", "-c", script])
            .output()
            .expect("running bash in the outside namespace")
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        for ns in [&self.inside, &self.outside] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Appends `lines` (each ended by a newline) to `path`, creating it, and
/// syncs the file, as a logging daemon's write would land.
pub fn append_lines(path: &Path, lines: &[String]) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut text = lines.join("\n");
    text.push('\n');
    f.write_all(text.as_bytes()).unwrap();
    f.sync_all().unwrap();
}

/// `n` sshd "Failed password for root" lines of `host` from `ip`, stamped
/// now in the syslog (RFC 3164) form.
pub fn failed_ssh_logins(host: &str, ip: &str, n: usize) -> Vec<String> {
    let ts = chrono::Local::now().format("%b %e %H:%M:%S");
    (0..n)
        .map(|i| {
            format!(
                "{ts} {host} sshd[{}]: Failed password for root from {ip} port {} ssh2",
                4000 + i,
                50000 + i
            )
        })
        .collect()
}
