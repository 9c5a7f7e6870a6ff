//! Literals every match of a regular expression contains, for the gate.
//!
//! [`required`] walks the expression's syntax tree (`regex-syntax`, the
//! parser of the `regex` crate the engine matches with) and returns sets of
//! literals, lower-case ASCII, such that any ASCII text the expression
//! matches contains, ASCII-case-insensitively, one literal of every set. A
//! run of pieces that each match one of few strings (literals, small
//! classes, optional groups, alternations of those) becomes the set of
//! their concatenations; other pieces give what they require of themselves;
//! an alternation requires the union of one set of each branch. Anything
//! not understood requires nothing. Non-ASCII text is never turned away by
//! the gate (see `NeedleSet::matches`), so only ASCII texts matter here:
//! non-ASCII members of classes and literals are dropped.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Most strings a run of exact pieces may stand for.
const MAX_EXACT: usize = 64;

/// Most ASCII members of a class kept as exact one-character strings.
const MAX_CLASS: usize = 16;

/// What a piece of the expression is known to match.
#[derive(Debug, Default)]
struct Info {
    /// Every string the piece can match (lower-case ASCII), when few.
    exact: Option<Vec<String>>,
    /// Sets of literals, one of each occurring in every match.
    sets: Vec<Vec<String>>,
}

impl Info {
    fn unknown() -> Self {
        Info::default()
    }

    fn exact(mut strings: Vec<String>) -> Self {
        strings.sort();
        strings.dedup();
        let sets = if strings.iter().any(String::is_empty) {
            Vec::new()
        } else {
            vec![strings.clone()]
        };
        Info {
            exact: Some(strings),
            sets,
        }
    }

    /// The set whose shortest literal is longest (the most selective
    /// guess), from the exact strings or the required sets.
    fn best_set(&self) -> Option<Vec<String>> {
        let shortest = |s: &Vec<String>| s.iter().map(String::len).min().unwrap_or(0);
        self.exact
            .iter()
            .chain(&self.sets)
            .filter(|s| !s.is_empty() && shortest(s) > 0)
            .max_by_key(|s| (shortest(s), usize::MAX - s.len()))
            .cloned()
    }
}

/// The literal sets of `pattern` compiled as the engine compiles it (see
/// the module docs); `None` when it does not parse. An empty list requires
/// nothing.
pub(super) fn required(pattern: &str) -> Option<Vec<Vec<String>>> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let mut sets: Vec<Vec<String>> = info(&hir)
        .sets
        .into_iter()
        .map(minimal)
        .filter(|s| !s.is_empty() && s.iter().all(|l| !l.is_empty()))
        .collect();
    sets.sort();
    sets.dedup();
    Some(sets)
}

/// The set without literals that contain another of its literals (a text
/// containing the longer one contains the shorter).
fn minimal(mut set: Vec<String>) -> Vec<String> {
    set.sort_by_key(String::len);
    let mut out: Vec<String> = Vec::with_capacity(set.len());
    for s in set {
        if !out.iter().any(|o| s.contains(o.as_str())) {
            out.push(s);
        }
    }
    out.sort();
    out
}

fn info(hir: &Hir) -> Info {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Info::exact(vec![String::new()]),
        HirKind::Literal(lit) => match std::str::from_utf8(&lit.0) {
            Ok(s) if s.is_ascii() => Info::exact(vec![s.to_ascii_lowercase()]),
            _ => Info::unknown(),
        },
        HirKind::Class(class) => class_info(class),
        HirKind::Capture(c) => info(&c.sub),
        HirKind::Repetition(r) => {
            let sub = info(&r.sub);
            match (r.min, r.max) {
                (0, Some(1)) => match sub.exact {
                    Some(mut strings) => {
                        strings.push(String::new());
                        Info::exact(strings)
                    }
                    None => Info::unknown(),
                },
                (0, _) => Info::unknown(),
                (1, Some(1)) => sub,
                _ => Info {
                    exact: None,
                    sets: sub.sets,
                },
            }
        }
        HirKind::Concat(parts) => concat_info(parts),
        HirKind::Alternation(alts) => alternation_info(alts),
    }
}

fn class_info(class: &Class) -> Info {
    let mut members: Vec<u8> = Vec::new();
    let mut add = |start: u32, end: u32| {
        for c in start..=end.min(0x7f) {
            let b = (c as u8).to_ascii_lowercase();
            if !members.contains(&b) {
                members.push(b);
            }
            if members.len() > MAX_CLASS {
                return false;
            }
        }
        true
    };
    let small = match class {
        Class::Unicode(c) => c
            .ranges()
            .iter()
            .all(|r| add(u32::from(r.start()), u32::from(r.end()))),
        Class::Bytes(c) => c
            .ranges()
            .iter()
            .all(|r| add(u32::from(r.start()), u32::from(r.end()))),
    };
    if !small || members.is_empty() {
        return Info::unknown();
    }
    Info::exact(
        members
            .into_iter()
            .map(|b| char::from(b).to_string())
            .collect(),
    )
}

fn concat_info(parts: &[Hir]) -> Info {
    let mut sets = Vec::new();
    // The strings the exact pieces since the last break stand for.
    let mut run: Vec<String> = vec![String::new()];
    let mut whole = true;
    let flush = |run: &mut Vec<String>, sets: &mut Vec<Vec<String>>| {
        if run.iter().all(|s| !s.is_empty()) {
            let mut set = std::mem::take(run);
            set.sort();
            set.dedup();
            sets.push(set);
        }
        *run = vec![String::new()];
    };
    for part in parts {
        let p = info(part);
        match p.exact {
            Some(strings) if run.len() * strings.len() <= MAX_EXACT => {
                run = run
                    .iter()
                    .flat_map(|a| strings.iter().map(move |b| format!("{a}{b}")))
                    .collect();
                run.sort();
                run.dedup();
            }
            Some(strings) => {
                whole = false;
                flush(&mut run, &mut sets);
                run = strings;
            }
            None => {
                whole = false;
                flush(&mut run, &mut sets);
                sets.extend(p.sets);
            }
        }
    }
    if whole {
        return Info::exact(run);
    }
    flush(&mut run, &mut sets);
    Info { exact: None, sets }
}

fn alternation_info(alts: &[Hir]) -> Info {
    let infos: Vec<Info> = alts.iter().map(info).collect();
    let exact: Option<Vec<String>> = infos
        .iter()
        .map(|i| i.exact.clone())
        .collect::<Option<Vec<_>>>()
        .map(|all| all.concat());
    if let Some(strings) = exact
        && strings.len() <= MAX_EXACT
    {
        return Info::exact(strings);
    }
    // Each branch's best set: a match is a match of some branch.
    let union: Option<Vec<String>> = infos
        .iter()
        .map(Info::best_set)
        .collect::<Option<Vec<_>>>()
        .map(|sets| sets.concat());
    match union {
        Some(mut set) => {
            set.sort();
            set.dedup();
            Info {
                exact: None,
                sets: vec![set],
            }
        }
        None => Info::unknown(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(p: &str) -> Vec<Vec<String>> {
        required(p).expect("parses")
    }

    fn strs(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter()
            .map(|s| s.iter().map(|x| x.to_string()).collect())
            .collect()
    }

    #[test]
    fn literals_classes_and_alternations() {
        assert_eq!(sets("abc"), strs(&[&["abc"]]));
        assert_eq!(sets("(?i)AbC"), strs(&[&["abc"]]));
        assert_eq!(sets("a.*b"), strs(&[&["a"], &["b"]]));
        assert_eq!(sets("[?&]x="), strs(&[&["&x=", "?x="]]));
        assert_eq!(sets("/bin/(ba)?sh"), strs(&[&["/bin/bash", "/bin/sh"]]));
        // A branch that is not exact gives its best set.
        assert_eq!(sets(r"(whoami|cat\s+/etc/)"), strs(&[&["/etc/", "whoami"]]));
        // A branch that requires nothing: the alternation requires nothing.
        assert_eq!(sets("(abc|.*)"), Vec::<Vec<String>>::new());
        assert_eq!(sets(".*"), Vec::<Vec<String>>::new());
        assert!(required("(").is_none());
    }

    #[test]
    fn the_webshell_pattern() {
        let p = r"(?i)[?&](cmd|exec|command|execute|shell|c|run|x)=[^&]*(whoami|\bid\b|uname|/bin/(ba)?sh|cat\s+/etc/|wget\s|curl\s|powershell|cmd\.exe|net\s+user|ipconfig|ifconfig|\bls\s+-|nc\s+-e)";
        let s = sets(p);
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(s[0].contains(&"?cmd=".to_string()) || s[1].contains(&"?cmd=".to_string()));
        let re = regex::Regex::new(p).unwrap();
        for text in [
            "/x.php?cmd=whoami",
            "/a?b=1&CMD=cat%20/etc/passwd",
            "/a?c=wget http://x/",
            "/a?x=/bin/bash -i",
            "/a?Run=ls -la",
            "/a?shell=nc -e /bin/sh",
        ] {
            let text = text.replace("%20", " ");
            assert!(re.is_match(&text), "{text}");
            let lower = text.to_ascii_lowercase();
            for set in &s {
                assert!(
                    set.iter().any(|l| lower.contains(l.as_str())),
                    "{text}: {set:?}"
                );
            }
        }
    }
}
