//! Fields from the messages of sshd, sudo, su and the shadow utilities
//! (useradd, groupadd, passwd), as they appear in auth.log / secure.

use regex::Regex;

use crate::event::{Event, FieldValue};

/// Parses authentication messages into `action`, `outcome`, `user`,
/// `src_ip`, ... fields. Cheap to clone (the regexes are shared).
#[derive(Debug, Clone)]
pub struct AuthParser {
    ssh_failed: Regex,
    ssh_accepted: Regex,
    ssh_invalid: Regex,
    ssh_max_attempts: Regex,
    pam_failure: Regex,
    sudo_command: Regex,
    useradd_user: Regex,
    useradd_group: Regex,
    su_failed: Regex,
    crontab: Regex,
    kv: Regex,
}

impl Default for AuthParser {
    fn default() -> Self {
        Self::new()
    }
}

/// `message` when it starts with `prefix` (the literal start of an
/// anchored pattern), so the pattern runs only where it can match.
fn gate<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    message.starts_with(prefix).then_some(message)
}

fn re(s: &str) -> Regex {
    Regex::new(s).expect("built-in pattern compiles")
}

/// An sshd login line: `<prefix> (invalid user )?USER from IP port PORT`.
struct Login<'a> {
    method: &'a str,
    invalid: bool,
    user: &'a str,
    ip: &'a str,
    port: Option<&'a str>,
}

/// Whitespace as the patterns' `\s` has it, for ASCII text.
fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ')
}

/// Length of the leading run of bytes matching `f`.
fn run(s: &str, f: impl Fn(u8) -> bool) -> usize {
    s.bytes().position(|b| !f(b)).unwrap_or(s.len())
}

/// `(.*?) from (\S+)( port (\d+))?` at the start of ASCII `s`, read as
/// the regex engine reads it: the shortest user for which the rest
/// matches; with `need_port`, the port part is required.
fn from_port(s: &str, need_port: bool) -> Option<(&str, &str, Option<&str>)> {
    static FROM: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(" from "));
    let finder = &*FROM;
    let mut at = 0;
    while let Some(i) = finder.find(&s.as_bytes()[at..]) {
        let k = at + i;
        at = k + 1;
        let after = &s[k + 6..];
        let n = run(after, |b| !is_space(b));
        if n == 0 {
            continue;
        }
        let port = after[n..].strip_prefix(" port ").and_then(|p| {
            let d = run(p, |b| b.is_ascii_digit());
            (d > 0).then(|| &p[..d])
        });
        if need_port && port.is_none() {
            continue;
        }
        return Some((&s[..k], &after[..n], port));
    }
    None
}

/// `(invalid user )?(.*?) from (\S+) port (\d+)`, the optional part
/// preferred when the rest then matches.
fn maybe_invalid(s: &str) -> Option<(bool, &str, &str, &str)> {
    if let Some(after) = s.strip_prefix("invalid user ")
        && let Some((user, ip, Some(port))) = from_port(after, true)
    {
        return Some((true, user, ip, port));
    }
    let (user, ip, port) = from_port(s, true)?;
    Some((false, user, ip, port?))
}

/// The leading `\S+` of ASCII `s` and what follows it.
fn word(s: &str) -> Option<(&str, &str)> {
    let n = run(s, |b| !is_space(b));
    (n > 0).then(|| s.split_at(n))
}

/// The first value of each of `keys` among the `key=value` pairs of
/// ASCII `s` (`(\w+)=(\S*)`, scanned left to right).
fn kv_ascii<'a, const N: usize>(s: &'a str, keys: [&str; N]) -> [Option<&'a str>; N] {
    let mut out = [None; N];
    let b = s.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        if !word(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && word(b[i]) {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            continue;
        }
        let key = &s[start..i];
        i += 1;
        let vstart = i;
        while i < b.len() && !is_space(b[i]) {
            i += 1;
        }
        if let Some(slot) = keys.iter().position(|k| *k == key)
            && out[slot].is_none()
        {
            out[slot] = Some(&s[vstart..i]);
        }
    }
    out
}

/// Where field values come from: slices of the event's record (the
/// message is `raw[base..]`), or copies when the message is not part of it.
struct Values<'a> {
    message: &'a str,
    base: Option<usize>,
}

impl Values<'_> {
    fn of(&self, part: &str) -> FieldValue {
        let at = (part.as_ptr() as usize).wrapping_sub(self.message.as_ptr() as usize);
        match self.base {
            Some(base) if at <= self.message.len() && at + part.len() <= self.message.len() => {
                FieldValue::Raw {
                    start: (base + at) as u32,
                    end: (base + at + part.len()) as u32,
                }
            }
            _ => FieldValue::from(part),
        }
    }
}

impl AuthParser {
    /// Compiles the patterns.
    pub fn new() -> Self {
        AuthParser {
            ssh_failed: re(r"^Failed (\S+) for (invalid user )?(.*?) from (\S+) port (\d+)"),
            ssh_accepted: re(r"^Accepted (\S+) for (.*?) from (\S+) port (\d+)"),
            ssh_invalid: re(r"^Invalid user (.*?) from (\S+)(?: port (\d+))?"),
            ssh_max_attempts: re(
                r"^error: maximum authentication attempts exceeded for (invalid user )?(.*?) from (\S+) port (\d+)",
            ),
            pam_failure: re(r"^pam_unix\(([\w-]+):auth\): authentication failure;(.*)$"),
            sudo_command: re(
                r"^\s*(\S+) : (?:(.*?) ; )?TTY=(\S+) ; PWD=(.*?) ; USER=(\S+) ;(?: GROUP=\S+ ;)?(?: ENV=.*? ;)? COMMAND=(.*)$",
            ),
            useradd_user: re(
                r"^new user: name=([^,]+), UID=(\d+), GID=(\d+), home=([^,]+), shell=([^,\s]+)",
            ),
            useradd_group: re(r"^new group: name=([^,]+), GID=(\d+)"),
            su_failed: re(r"^FAILED (?:SU|su) (?:\(to (\S+)\) )?(\S+) on (\S+)"),
            crontab: re(r"^\((\S+)\) (REPLACE|BEGIN EDIT|END EDIT|LIST|DELETE|RELOAD) \((\S+)\)"),
            kv: re(r"(\w+)=(\S*)"),
        }
    }

    /// Adds fields to a syslog event whose `program` it knows. Leaves
    /// other events untouched. The event holds only the syslog envelope
    /// (`hostname`, `program`, `pid`, `facility`, `syslog_severity`,
    /// `message`), so the fields added are new to it: they are pushed,
    /// not searched for.
    pub fn enrich(&self, event: &mut Event) {
        let Some(program) = event.get("program") else {
            return;
        };
        let program = if program.starts_with("sshd") {
            "sshd"
        } else if program == "sudo" {
            "sudo"
        } else if program == "su" {
            "su"
        } else if matches!(program, "useradd" | "groupadd" | "adduser") {
            "useradd"
        } else if program == "crontab" {
            "crontab"
        } else {
            return;
        };
        let Some(slot) = event.fields.iter().position(|(k, _)| k == "message") else {
            return;
        };
        // The record is lent out of the event while fields are added; the
        // new values are slices of it, as the message is.
        let raw = std::mem::take(&mut event.raw);
        let message = event.fields[slot].1.clone();
        let values = match &message {
            FieldValue::Raw { start, end } => Values {
                message: raw.get(*start as usize..*end as usize).unwrap_or(""),
                base: Some(*start as usize),
            },
            FieldValue::Text(t) => Values {
                message: t,
                base: None,
            },
        };
        self.enrich_message(event, program, &values);
        event.raw = raw;
    }

    fn enrich_message(&self, event: &mut Event, program: &str, v: &Values<'_>) {
        let message = v.message;
        // Every pattern is anchored at a literal start: checking it first keeps
        // the regex engines (which search from an inner literal) off most lines.
        if let Some((service, [rhost, user, ruser, tty])) = self.pam_failure(message) {
            event.push("action", FieldValue::fixed("pam_auth"));
            event.push("outcome", FieldValue::fixed("failure"));
            event.push("pam_service", v.of(service));
            for (value, field) in [
                (rhost, "src_ip"),
                (user, "user"),
                (ruser, "remote_user"),
                (tty, "tty"),
            ] {
                if let Some(value) = value.filter(|s| !s.is_empty()) {
                    event.push(field, v.of(value));
                }
            }
            return;
        }
        match program {
            "sshd" => self.sshd(event, v),
            "sudo" => self.sudo(event, message),
            "su" => self.su(event, message),
            "crontab" => self.crontab(event, message),
            _ => self.useradd(event, message),
        }
    }

    /// `pam_unix(SERVICE:auth): authentication failure; k=v ...`: the
    /// service and the first rhost, user, ruser and tty values.
    #[allow(clippy::type_complexity)]
    fn pam_failure<'a>(&self, m: &'a str) -> Option<(&'a str, [Option<&'a str>; 4])> {
        const KEYS: [&str; 4] = ["rhost", "user", "ruser", "tty"];
        let rest = m.strip_prefix("pam_unix(")?;
        if m.is_ascii() {
            let n = run(rest, |b| {
                b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
            });
            if n == 0 {
                return None;
            }
            let tail = rest[n..].strip_prefix(":auth): authentication failure;")?;
            return Some((&rest[..n], kv_ascii(tail, KEYS)));
        }
        let c = self.pam_failure.captures(m)?;
        let tail = c.get(2).map_or("", |t| t.as_str());
        let mut out = [None; 4];
        for kv in self.kv.captures_iter(tail) {
            if let (Some(k), Some(val)) = (kv.get(1), kv.get(2))
                && let Some(slot) = KEYS.iter().position(|key| *key == k.as_str())
                && out[slot].is_none()
            {
                out[slot] = Some(val.as_str());
            }
        }
        Some((c.get(1)?.as_str(), out))
    }

    /// The sshd login lines, by hand for ASCII text (the common case) and
    /// through the patterns otherwise; both read them the same way.
    fn login<'a>(&self, m: &'a str) -> Option<(&'static str, Login<'a>)> {
        if m.is_ascii() {
            if let Some(rest) = m.strip_prefix("Failed ") {
                let (method, rest) = word(rest)?;
                let (invalid, user, ip, port) = maybe_invalid(rest.strip_prefix(" for ")?)?;
                return Some((
                    "failed",
                    Login {
                        method,
                        invalid,
                        user,
                        ip,
                        port: Some(port),
                    },
                ));
            }
            if let Some(rest) = m.strip_prefix("Accepted ") {
                let (method, rest) = word(rest)?;
                let (user, ip, port) = from_port(rest.strip_prefix(" for ")?, true)?;
                return Some((
                    "accepted",
                    Login {
                        method,
                        invalid: false,
                        user,
                        ip,
                        port,
                    },
                ));
            }
            if let Some(rest) = m.strip_prefix("Invalid user ") {
                let (user, ip, port) = from_port(rest, false)?;
                return Some((
                    "invalid",
                    Login {
                        method: "",
                        invalid: true,
                        user,
                        ip,
                        port,
                    },
                ));
            }
            let rest = m.strip_prefix("error: maximum authentication attempts exceeded for ")?;
            let (invalid, user, ip, port) = maybe_invalid(rest)?;
            return Some((
                "max",
                Login {
                    method: "",
                    invalid,
                    user,
                    ip,
                    port: Some(port),
                },
            ));
        }
        let s = |c: &regex::Captures<'a>, i| c.get(i).map_or("", |g| g.as_str());
        if let Some(c) = gate(m, "Failed ").and_then(|m| self.ssh_failed.captures(m)) {
            let login = Login {
                method: s(&c, 1),
                invalid: c.get(2).is_some(),
                user: s(&c, 3),
                ip: s(&c, 4),
                port: c.get(5).map(|p| p.as_str()),
            };
            return Some(("failed", login));
        }
        if let Some(c) = gate(m, "Accepted ").and_then(|m| self.ssh_accepted.captures(m)) {
            let login = Login {
                method: s(&c, 1),
                invalid: false,
                user: s(&c, 2),
                ip: s(&c, 3),
                port: c.get(4).map(|p| p.as_str()),
            };
            return Some(("accepted", login));
        }
        if let Some(c) = gate(m, "Invalid user ").and_then(|m| self.ssh_invalid.captures(m)) {
            let login = Login {
                method: "",
                invalid: true,
                user: s(&c, 1),
                ip: s(&c, 2),
                port: c.get(3).map(|p| p.as_str()),
            };
            return Some(("invalid", login));
        }
        let c = gate(m, "error: maximum authentication")
            .and_then(|m| self.ssh_max_attempts.captures(m))?;
        let login = Login {
            method: "",
            invalid: c.get(1).is_some(),
            user: s(&c, 2),
            ip: s(&c, 3),
            port: c.get(4).map(|p| p.as_str()),
        };
        Some(("max", login))
    }

    fn sshd(&self, event: &mut Event, v: &Values<'_>) {
        let Some((kind, l)) = self.login(v.message) else {
            return;
        };
        let (action, outcome) = match kind {
            "failed" => ("login", "failure"),
            "accepted" => ("login", "success"),
            "invalid" => ("invalid_user", "failure"),
            _ => ("max_auth_attempts", "failure"),
        };
        event.push("action", FieldValue::fixed(action));
        event.push("outcome", FieldValue::fixed(outcome));
        if !l.method.is_empty() {
            event.push("auth_method", v.of(l.method));
        }
        if kind != "accepted" {
            event.push(
                "user_valid",
                FieldValue::fixed(if l.invalid { "false" } else { "true" }),
            );
        }
        event.push("user", v.of(l.user));
        event.push("src_ip", v.of(l.ip));
        if let Some(p) = l.port {
            event.push("src_port", v.of(p));
        }
    }

    fn sudo(&self, event: &mut Event, message: &str) {
        if let Some(c) = self.sudo_command.captures(message) {
            event.push("action", "sudo");
            event.push("user", c[1].to_string());
            match c.get(2) {
                Some(reason) => {
                    event.push("outcome", "failure");
                    event.push("reason", reason.as_str());
                }
                None => event.push("outcome", "success"),
            }
            event.push("tty", c[3].to_string());
            event.push("cwd", c[4].to_string());
            event.push("target_user", c[5].to_string());
            event.push("command", c[6].to_string());
        }
    }

    fn su(&self, event: &mut Event, message: &str) {
        if let Some(c) = gate(message, "FAILED ").and_then(|m| self.su_failed.captures(m)) {
            event.push("action", "su");
            event.push("outcome", "failure");
            event.push("target_user", c.get(1).map_or("root", |m| m.as_str()));
            event.push("user", c[2].to_string());
            event.push("tty", c[3].to_string());
        }
    }

    fn crontab(&self, event: &mut Event, message: &str) {
        if let Some(c) = gate(message, "(").and_then(|m| self.crontab.captures(m)) {
            let action = match &c[2] {
                "REPLACE" => "crontab_replace",
                "BEGIN EDIT" | "END EDIT" => "crontab_edit",
                "LIST" => "crontab_list",
                "DELETE" => "crontab_delete",
                _ => "crontab_reload",
            };
            event.push("action", action);
            event.push("outcome", "success");
            event.push("user", c[1].to_string());
            event.push("target_user", c[3].to_string());
        }
    }

    fn useradd(&self, event: &mut Event, message: &str) {
        if let Some(c) = gate(message, "new user: ").and_then(|m| self.useradd_user.captures(m)) {
            event.push("action", "user_added");
            event.push("outcome", "success");
            event.push("target_user", c[1].to_string());
            event.push("uid", c[2].to_string());
            event.push("gid", c[3].to_string());
            event.push("home", c[4].to_string());
            event.push("shell", c[5].to_string());
        } else if let Some(c) =
            gate(message, "new group: ").and_then(|m| self.useradd_group.captures(m))
        {
            event.push("action", "group_added");
            event.push("outcome", "success");
            event.push("group", c[1].to_string());
            event.push("gid", c[2].to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::decode::{LineDecoder, LogFormat};

    fn fields(line: &str) -> Vec<(String, String)> {
        let e = LineDecoder::new(LogFormat::Syslog, "h")
            .decode(line, "t:0".into())
            .unwrap();
        e.field_values()
            .filter(|(k, _)| !matches!(*k, "hostname" | "pid" | "message" | "program"))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn check(line: &str, expected: &[(&str, &str)]) {
        let got = fields(line);
        for (k, v) in expected {
            assert!(
                got.iter().any(|(gk, gv)| gk == k && gv == v),
                "{line}\nexpected {k}={v}\ngot {got:?}"
            );
        }
    }

    #[test]
    fn auth_messages() {
        check(
            "Nov 22 04:00:01 h sshd[1]: Invalid user oracle from 198.51.100.9 port 4242",
            &[
                ("action", "invalid_user"),
                ("user", "oracle"),
                ("src_ip", "198.51.100.9"),
            ],
        );
        check(
            "Nov 22 04:00:01 h sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.9  user=root",
            &[
                ("action", "pam_auth"),
                ("src_ip", "198.51.100.9"),
                ("user", "root"),
                ("pam_service", "sshd"),
            ],
        );
        check(
            "Nov 22 04:00:01 h sudo:    alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash",
            &[
                ("action", "sudo"),
                ("outcome", "failure"),
                ("user", "alice"),
                ("target_user", "root"),
                ("command", "/bin/bash"),
                ("reason", "3 incorrect password attempts"),
            ],
        );
        check(
            "Nov 22 04:00:01 h sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id",
            &[
                ("action", "sudo"),
                ("outcome", "success"),
                ("command", "/usr/bin/id"),
            ],
        );
        check(
            "Nov 22 04:00:01 h useradd[99]: new user: name=backdoor, UID=0, GID=0, home=/root, shell=/bin/bash, from=/dev/pts/1",
            &[
                ("action", "user_added"),
                ("target_user", "backdoor"),
                ("uid", "0"),
                ("shell", "/bin/bash"),
            ],
        );
        check(
            "Nov 22 04:00:01 h crontab[812]: (www-data) REPLACE (www-data)",
            &[
                ("action", "crontab_replace"),
                ("user", "www-data"),
                ("target_user", "www-data"),
            ],
        );
        check(
            "Nov 22 04:00:01 h su[12]: FAILED SU (to root) bob on pts/2",
            &[
                ("action", "su"),
                ("outcome", "failure"),
                ("user", "bob"),
                ("target_user", "root"),
            ],
        );
        check(
            "Nov 22 04:00:01 h sshd-session[5]: error: maximum authentication attempts exceeded for root from 192.0.2.1 port 22 ssh2 [preauth]",
            &[
                ("action", "max_auth_attempts"),
                ("user", "root"),
                ("src_ip", "192.0.2.1"),
            ],
        );
    }
}
