//! Fields from the messages of sshd, sudo, su and the shadow utilities
//! (useradd, groupadd, passwd), as they appear in auth.log / secure.

use regex::Regex;

use crate::event::Event;

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
    /// other events untouched.
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
        let Some(message) = event.get("message").map(str::to_owned) else {
            return;
        };
        // Every pattern is anchored at a literal start: checking it first keeps
        // the regex engines (which search from an inner literal) off most lines.
        if let Some(c) = gate(&message, "pam_unix(").and_then(|m| self.pam_failure.captures(m)) {
            let kv = self.kv_pairs(c.get(2).map_or("", |m| m.as_str()));
            event.set("action", "pam_auth");
            event.set("outcome", "failure");
            event.set("pam_service", c[1].to_string());
            for (k, field) in [
                ("rhost", "src_ip"),
                ("user", "user"),
                ("ruser", "remote_user"),
                ("tty", "tty"),
            ] {
                if let Some(v) = kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone())
                    && !v.is_empty()
                {
                    event.set(field, v);
                }
            }
            return;
        }
        match program {
            "sshd" => self.sshd(event, &message),
            "sudo" => self.sudo(event, &message),
            "su" => self.su(event, &message),
            "crontab" => self.crontab(event, &message),
            _ => self.useradd(event, &message),
        }
    }

    fn kv_pairs(&self, s: &str) -> Vec<(String, String)> {
        self.kv
            .captures_iter(s)
            .map(|c| (c[1].to_string(), c[2].to_string()))
            .collect()
    }

    fn sshd(&self, event: &mut Event, message: &str) {
        if let Some(c) = gate(message, "Failed ").and_then(|m| self.ssh_failed.captures(m)) {
            event.set("action", "login");
            event.set("outcome", "failure");
            event.set("auth_method", c[1].to_string());
            event.set(
                "user_valid",
                if c.get(2).is_some() { "false" } else { "true" },
            );
            event.set("user", c[3].to_string());
            event.set("src_ip", c[4].to_string());
            event.set("src_port", c[5].to_string());
        } else if let Some(c) =
            gate(message, "Accepted ").and_then(|m| self.ssh_accepted.captures(m))
        {
            event.set("action", "login");
            event.set("outcome", "success");
            event.set("auth_method", c[1].to_string());
            event.set("user", c[2].to_string());
            event.set("src_ip", c[3].to_string());
            event.set("src_port", c[4].to_string());
        } else if let Some(c) =
            gate(message, "Invalid user ").and_then(|m| self.ssh_invalid.captures(m))
        {
            event.set("action", "invalid_user");
            event.set("outcome", "failure");
            event.set("user_valid", "false");
            event.set("user", c[1].to_string());
            event.set("src_ip", c[2].to_string());
            if let Some(p) = c.get(3) {
                event.set("src_port", p.as_str());
            }
        } else if let Some(c) = gate(message, "error: maximum authentication")
            .and_then(|m| self.ssh_max_attempts.captures(m))
        {
            event.set("action", "max_auth_attempts");
            event.set("outcome", "failure");
            event.set(
                "user_valid",
                if c.get(1).is_some() { "false" } else { "true" },
            );
            event.set("user", c[2].to_string());
            event.set("src_ip", c[3].to_string());
            event.set("src_port", c[4].to_string());
        }
    }

    fn sudo(&self, event: &mut Event, message: &str) {
        if let Some(c) = self.sudo_command.captures(message) {
            event.set("action", "sudo");
            event.set("user", c[1].to_string());
            match c.get(2) {
                Some(reason) => {
                    event.set("outcome", "failure");
                    event.set("reason", reason.as_str());
                }
                None => event.set("outcome", "success"),
            }
            event.set("tty", c[3].to_string());
            event.set("cwd", c[4].to_string());
            event.set("target_user", c[5].to_string());
            event.set("command", c[6].to_string());
        }
    }

    fn su(&self, event: &mut Event, message: &str) {
        if let Some(c) = gate(message, "FAILED ").and_then(|m| self.su_failed.captures(m)) {
            event.set("action", "su");
            event.set("outcome", "failure");
            event.set("target_user", c.get(1).map_or("root", |m| m.as_str()));
            event.set("user", c[2].to_string());
            event.set("tty", c[3].to_string());
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
            event.set("action", action);
            event.set("outcome", "success");
            event.set("user", c[1].to_string());
            event.set("target_user", c[3].to_string());
        }
    }

    fn useradd(&self, event: &mut Event, message: &str) {
        if let Some(c) = gate(message, "new user: ").and_then(|m| self.useradd_user.captures(m)) {
            event.set("action", "user_added");
            event.set("outcome", "success");
            event.set("target_user", c[1].to_string());
            event.set("uid", c[2].to_string());
            event.set("gid", c[3].to_string());
            event.set("home", c[4].to_string());
            event.set("shell", c[5].to_string());
        } else if let Some(c) =
            gate(message, "new group: ").and_then(|m| self.useradd_group.captures(m))
        {
            event.set("action", "group_added");
            event.set("outcome", "success");
            event.set("group", c[1].to_string());
            event.set("gid", c[2].to_string());
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
        e.fields
            .into_iter()
            .filter(|(k, _)| !matches!(k.as_ref(), "hostname" | "pid" | "message" | "program"))
            .map(|(k, v)| (k.to_string(), v))
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
