//! Loading a rule pack from files, with one diagnostic per bad rule.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};
use rsigma_parser::{
    Detection, LintRule, LintWarning, Severity as LintSeverity, SigmaCollection, lint_yaml_str,
    parse_sigma_yaml,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::ioc::IocSet;
use crate::decode::KNOWN_FIELDS;
use crate::event::FIELD_ALIASES;

/// The rule pack shipped inside the binary (`rules/sigma/` at build time).
pub static SHIPPED_PACK: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../rules/sigma");

/// The indicator lists shipped inside the binary (`rules/ioc/` at build time).
pub static SHIPPED_IOC: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../rules/ioc");

/// Largest rule file accepted, in bytes.
pub const MAX_RULE_FILE_BYTES: usize = 1024 * 1024;

/// One problem with one rule: where, which rule, a stable code, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The rule file.
    pub file: String,
    /// The rule's id or title, when the problem is inside one rule.
    pub rule: Option<String>,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// Stable code, e.g. `unknown-field`.
    pub code: &'static str,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, ": rule '{rule}'")?;
        }
        write!(f, ": error[{}]: {}", self.code, self.message)
    }
}

/// One rule file's text and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuleSource {
    /// A path or `shipped:NAME` for the built-in pack.
    pub name: String,
    /// The YAML text.
    pub text: String,
}

/// A loaded, checked set of Sigma rules.
#[derive(Debug, Clone)]
pub struct RulePack {
    /// Parsed rules, one collection per file.
    pub collections: Vec<(String, SigmaCollection)>,
    /// Indicator lists (`ioc/*.txt` beside `sigma/`).
    pub iocs: IocSet,
    /// Identity of the pack: a hash of every file's name and text.
    pub version: String,
}

impl RulePack {
    /// The pack shipped in the binary.
    pub fn shipped() -> Result<RulePack, Vec<Diagnostic>> {
        let (sigma, iocs) = Self::shipped_sources();
        Self::from_parts(sigma, iocs)
    }

    /// The rule texts and indicator lists of the shipped pack.
    pub fn shipped_sources() -> (Vec<RuleSource>, Vec<RuleSource>) {
        let mut sources = Vec::new();
        collect_embedded(&SHIPPED_PACK, &mut sources);
        let iocs = SHIPPED_IOC
            .files()
            .filter(|f| f.path().extension().and_then(|e| e.to_str()) == Some("txt"))
            .filter_map(|f| {
                Some(RuleSource {
                    name: format!("shipped:ioc/{}", f.path().display()),
                    text: f.contents_utf8()?.to_string(),
                })
            })
            .collect();
        (sources, iocs)
    }

    /// A pack from Sigma rule texts and indicator lists (`name` ending in
    /// `<list>.txt`).
    pub fn from_parts(
        sigma: Vec<RuleSource>,
        iocs: Vec<RuleSource>,
    ) -> Result<RulePack, Vec<Diagnostic>> {
        RulePack::from_sources(sigma)?.with_iocs(iocs)
    }

    /// Adds indicator lists (`name` ending in `<list>.txt`) to the pack.
    pub fn with_iocs(mut self, mut lists: Vec<RuleSource>) -> Result<RulePack, Vec<Diagnostic>> {
        lists.sort_by(|a, b| a.name.cmp(&b.name));
        let mut diags = Vec::new();
        let mut hasher = Sha256::new();
        hasher.update(self.version.as_bytes());
        for src in &lists {
            hasher.update(src.name.as_bytes());
            hasher.update([0]);
            hasher.update(src.text.as_bytes());
            hasher.update([0]);
            let list = Path::new(&src.name)
                .file_stem()
                .map_or_else(|| src.name.clone(), |s| s.to_string_lossy().into_owned());
            self.iocs.add_list(&src.name, &list, &src.text, &mut diags);
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        if !lists.is_empty() {
            self.version = hex::encode(&hasher.finalize()[..8]);
        }
        Ok(self)
    }

    /// Loads rule files and directories. A directory holding a `sigma/`
    /// subdirectory is a pack root and only that subdirectory is read;
    /// any other directory is searched recursively for `*.yml`/`*.yaml`.
    pub fn load(paths: &[PathBuf]) -> Result<RulePack, Vec<Diagnostic>> {
        let (sigma, iocs) = Self::read_sources(paths)?;
        Self::from_parts(sigma, iocs)
    }

    /// The rule texts and indicator lists [`RulePack::load`] reads.
    pub fn read_sources(
        paths: &[PathBuf],
    ) -> Result<(Vec<RuleSource>, Vec<RuleSource>), Vec<Diagnostic>> {
        let mut sources = Vec::new();
        let mut diags = Vec::new();
        let mut iocs = Vec::new();
        for p in paths {
            let root = if p.join("sigma").is_dir() {
                collect_iocs(&p.join("ioc"), &mut iocs, &mut diags);
                p.join("sigma")
            } else {
                p.clone()
            };
            collect_files(&root, &mut sources, &mut diags);
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        if sources.is_empty() {
            return Err(vec![Diagnostic {
                file: paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                rule: None,
                line: None,
                code: "no-rules",
                message: "no rule files (*.yml, *.yaml) found".into(),
            }]);
        }
        Ok((sources, iocs))
    }

    /// Parses and checks rule texts. Every problem of every rule is
    /// reported, not just the first.
    pub fn from_sources(mut sources: Vec<RuleSource>) -> Result<RulePack, Vec<Diagnostic>> {
        sources.sort_by(|a, b| a.name.cmp(&b.name));
        let mut diags = Vec::new();
        let mut collections = Vec::new();
        let mut hasher = Sha256::new();
        for src in &sources {
            hasher.update(src.name.as_bytes());
            hasher.update([0]);
            hasher.update(src.text.as_bytes());
            hasher.update([0]);
            if let Some(c) = check_source(src, &mut diags) {
                collections.push((src.name.clone(), c));
            }
        }
        check_references(&collections, &mut diags);
        if diags.is_empty() {
            // Compile once to surface what the parser accepts but the
            // evaluator rejects (bad regexes, bad modifiers, bad references).
            let mut engine = rsigma_eval::CorrelationEngine::new(Default::default());
            for (file, c) in &collections {
                for r in &c.rules {
                    if let Err(e) = engine.add_rule(r) {
                        diags.push(Diagnostic {
                            file: file.clone(),
                            rule: Some(r.id.clone().unwrap_or_else(|| r.title.clone())),
                            line: None,
                            code: "compile",
                            message: e.to_string(),
                        });
                    }
                }
            }
            for (file, c) in &collections {
                for corr in &c.correlations {
                    if let Err(e) = engine.add_correlation(corr) {
                        diags.push(Diagnostic {
                            file: file.clone(),
                            rule: Some(corr.id.clone().unwrap_or_else(|| corr.title.clone())),
                            line: None,
                            code: "compile",
                            message: e.to_string(),
                        });
                    }
                }
            }
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        Ok(RulePack {
            collections,
            iocs: IocSet::default(),
            version: hex::encode(&hasher.finalize()[..8]),
        })
    }

    /// Number of detection and correlation rules.
    pub fn rule_count(&self) -> usize {
        self.collections
            .iter()
            .map(|(_, c)| c.rules.len() + c.correlations.len())
            .sum()
    }
}

fn collect_embedded(dir: &Dir<'static>, out: &mut Vec<RuleSource>) {
    for f in dir.files() {
        let is_yaml = matches!(
            f.path().extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        );
        if is_yaml && let Some(text) = f.contents_utf8() {
            out.push(RuleSource {
                name: format!("shipped:{}", f.path().display()),
                text: text.to_string(),
            });
        }
    }
    for d in dir.dirs() {
        collect_embedded(d, out);
    }
}

/// The `*.txt` indicator lists of a pack's `ioc/` directory, if it has one.
fn collect_iocs(dir: &Path, out: &mut Vec<RuleSource>, diags: &mut Vec<Diagnostic>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("txt"))
        .collect();
    paths.sort();
    for p in paths {
        collect_files(&p, out, diags);
    }
}

fn collect_files(path: &Path, out: &mut Vec<RuleSource>, diags: &mut Vec<Diagnostic>) {
    let is_yaml = |p: &Path| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"));
    let mut files = Vec::new();
    read_rule_files(
        path,
        &is_yaml,
        MAX_RULE_FILE_BYTES as u64,
        &mut files,
        diags,
    );
    for (name, bytes) in files {
        match String::from_utf8(bytes) {
            Ok(text) => out.push(RuleSource { name, text }),
            Err(_) => diags.push(Diagnostic {
                file: name,
                rule: None,
                line: None,
                code: "encoding",
                message: "rule file is not UTF-8".into(),
            }),
        }
    }
}

/// Reads the rule files at `path`: the file itself, or every file under the
/// directory for which `is_rule` holds, in name order, as `(name, bytes)`.
/// Only real directories are descended into, so a symlink loop in a rules
/// tree cannot recurse forever. Unreadable and oversized files become
/// diagnostics.
pub(super) fn read_rule_files(
    path: &Path,
    is_rule: &dyn Fn(&Path) -> bool,
    max_bytes: u64,
    out: &mut Vec<(String, Vec<u8>)>,
    diags: &mut Vec<Diagnostic>,
) {
    let io_diag = |e: std::io::Error| Diagnostic {
        file: path.display().to_string(),
        rule: None,
        line: None,
        code: "io",
        message: e.to_string(),
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return diags.push(io_diag(e)),
    };
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => return diags.push(io_diag(e)),
        };
        entries.sort();
        for p in entries {
            let real_dir = std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
            if real_dir || is_rule(&p) {
                read_rule_files(&p, is_rule, max_bytes, out, diags);
            }
        }
        return;
    }
    if meta.len() > max_bytes {
        return diags.push(Diagnostic {
            file: path.display().to_string(),
            rule: None,
            line: None,
            code: "too-large",
            message: format!(
                "rule file is {} bytes; the limit is {max_bytes}",
                meta.len()
            ),
        });
    }
    match std::fs::read(path) {
        Ok(bytes) => out.push((path.display().to_string(), bytes)),
        Err(e) => diags.push(io_diag(e)),
    }
}

/// The title of the YAML document that contains 0-based `line`.
fn document_title_at(text: &str, line: u32) -> Option<String> {
    let mut title = None;
    for (i, l) in text.lines().enumerate() {
        if l.trim_end() == "---" {
            if i as u32 > line {
                break;
            }
            title = None;
            continue;
        }
        if title.is_none()
            && let Some(t) = l.strip_prefix("title:")
        {
            title = Some(t.trim().trim_matches(['\'', '"']).to_string());
        }
        if i as u32 >= line && title.is_some() {
            break;
        }
    }
    title
}

fn lint_code(w: &LintWarning) -> &'static str {
    match w.rule {
        LintRule::UnknownKey => "unknown-key",
        LintRule::YamlParseError => "yaml",
        _ => "invalid-rule",
    }
}

fn check_source(src: &RuleSource, diags: &mut Vec<Diagnostic>) -> Option<SigmaCollection> {
    let before = diags.len();
    for w in lint_yaml_str(&src.text) {
        let fatal = matches!(w.severity, LintSeverity::Error) || w.rule == LintRule::UnknownKey;
        if !fatal {
            continue;
        }
        let line = w.span.map(|s| s.start_line);
        diags.push(Diagnostic {
            file: src.name.clone(),
            rule: line.and_then(|l| document_title_at(&src.text, l)),
            line: line.map(|l| l + 1),
            code: lint_code(&w),
            message: if w.path.is_empty() || w.path == "/" {
                w.message.clone()
            } else {
                format!("{} (at {})", w.message, w.path)
            },
        });
    }
    let collection = match parse_sigma_yaml(&src.text) {
        Ok(c) => c,
        Err(e) => {
            if diags.len() == before {
                diags.push(Diagnostic {
                    file: src.name.clone(),
                    rule: None,
                    line: e.location().map(|l| l.line),
                    code: "parse",
                    message: e.to_string(),
                });
            }
            return None;
        }
    };
    if diags.len() == before {
        for e in &collection.errors {
            diags.push(Diagnostic {
                file: src.name.clone(),
                rule: None,
                line: None,
                code: "parse",
                message: e.clone(),
            });
        }
    }
    for rule in collection
        .rules
        .iter()
        .filter(|r| decoded_by_ward(&r.logsource))
    {
        let mut fields = BTreeSet::new();
        for d in rule.detection.named.values() {
            detection_fields(d, &mut fields);
        }
        for f in fields {
            let known = KNOWN_FIELDS.iter().any(|(k, _)| *k == f)
                || FIELD_ALIASES.iter().any(|(a, _)| *a == f);
            if !known {
                diags.push(Diagnostic {
                    file: src.name.clone(),
                    rule: Some(rule.id.clone().unwrap_or_else(|| rule.title.clone())),
                    line: None,
                    code: "unknown-field",
                    message: format!(
                        "field '{f}' is not produced by any Ward decoder, so this rule could never match (see rules/README.md for the field list)"
                    ),
                });
            }
        }
    }
    for corr in &collection.correlations {
        for f in &corr.group_by {
            if !KNOWN_FIELDS.iter().any(|(k, _)| k == f) {
                diags.push(Diagnostic {
                    file: src.name.clone(),
                    rule: Some(corr.id.clone().unwrap_or_else(|| corr.title.clone())),
                    line: None,
                    code: "unknown-field",
                    message: format!("group-by field '{f}' is not produced by any Ward decoder"),
                });
            }
        }
    }
    (diags.len() == before).then_some(collection)
}

/// Whether events of this logsource come from Ward's own decoders, whose
/// field names are known. Rules for other sources (JSON application logs)
/// may use any field.
fn decoded_by_ward(ls: &rsigma_parser::LogSource) -> bool {
    let is = |v: &Option<String>, names: &[&str]| {
        v.as_deref()
            .is_some_and(|v| names.iter().any(|n| n.eq_ignore_ascii_case(v)))
    };
    is(&ls.product, &["linux", "unix", "nginx", "apache"])
        || is(&ls.category, &["webserver"])
        || is(
            &ls.service,
            &["sshd", "auth", "sudo", "su", "syslog", "cron"],
        )
}

fn detection_fields(d: &Detection, out: &mut BTreeSet<String>) {
    match d {
        Detection::AllOf(items) => {
            for item in items {
                if let Some(name) = &item.field.name {
                    out.insert(name.clone());
                }
            }
        }
        Detection::AnyOf(ds) | Detection::And(ds) => {
            for d in ds {
                detection_fields(d, out);
            }
        }
        Detection::Keywords(_) => {}
        Detection::ArrayMatch { field, .. } => {
            out.insert(field.clone());
        }
        _ => {}
    }
}

/// Correlations must name rules that exist; ids must be unique.
fn check_references(collections: &[(String, SigmaCollection)], diags: &mut Vec<Diagnostic>) {
    let mut known: HashMap<String, String> = HashMap::new();
    for (file, c) in collections {
        for r in &c.rules {
            for key in [r.id.as_ref(), r.name.as_ref()].into_iter().flatten() {
                if let Some(prev) = known.insert(key.clone(), file.clone()) {
                    diags.push(Diagnostic {
                        file: file.clone(),
                        rule: Some(key.clone()),
                        line: None,
                        code: "duplicate-id",
                        message: format!("rule id or name '{key}' is also used in {prev}"),
                    });
                }
            }
        }
        for r in &c.correlations {
            for key in [r.id.as_ref(), r.name.as_ref()].into_iter().flatten() {
                known.insert(key.clone(), file.clone());
            }
        }
    }
    for (file, c) in collections {
        for corr in &c.correlations {
            for r in &corr.rules {
                if !known.contains_key(r) {
                    diags.push(Diagnostic {
                        file: file.clone(),
                        rule: Some(corr.id.clone().unwrap_or_else(|| corr.title.clone())),
                        line: None,
                        code: "unknown-reference",
                        message: format!("correlation refers to rule '{r}', which no loaded rule has as id or name"),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<RulePack, Vec<Diagnostic>> {
        RulePack::from_sources(vec![RuleSource {
            name: "t.yml".into(),
            text: text.into(),
        }])
    }

    const GOOD: &str = "title: T\nid: 5e9b3c43-6a2a-4b39-9d0b-2d2b1b1c0a01\nlogsource:\n  product: linux\ndetection:\n  sel:\n    program: sshd\n  condition: sel\nlevel: low\n";

    #[test]
    fn shipped_pack_loads() {
        let pack = RulePack::shipped().unwrap_or_else(|d| panic!("{d:#?}"));
        assert!(pack.rule_count() >= 4);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_loop_in_a_rules_tree_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r.yml"), GOOD).unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
        let pack = RulePack::load(&[dir.path().to_owned()]).unwrap();
        assert_eq!(pack.rule_count(), 1);
    }

    #[test]
    fn good_rule_loads() {
        assert_eq!(check(GOOD).unwrap().rule_count(), 1);
    }

    #[test]
    fn unknown_field_is_named() {
        let d = check(&GOOD.replace("program: sshd", "prgram: sshd")).unwrap_err();
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, "unknown-field");
        assert_eq!(
            d[0].rule.as_deref(),
            Some("5e9b3c43-6a2a-4b39-9d0b-2d2b1b1c0a01")
        );
        assert!(d[0].message.contains("prgram"));
    }

    #[test]
    fn unknown_key_is_named() {
        let d = check(&GOOD.replace("level: low", "levle: low")).unwrap_err();
        assert!(
            d.iter()
                .any(|d| d.code == "unknown-key" && d.message.contains("levle")),
            "{d:?}"
        );
        assert_eq!(d[0].rule.as_deref(), Some("T"));
    }

    #[test]
    fn broken_yaml_is_reported_with_a_line() {
        let d = check("title: T\ndetection: [\n").unwrap_err();
        assert_eq!(d[0].code, "yaml");
        assert!(d[0].line.is_some());
    }

    #[test]
    fn dangling_correlation_reference() {
        let text = format!(
            "{GOOD}---\ntitle: C\ncorrelation:\n  type: event_count\n  rules: [nope]\n  group-by: [src_ip]\n  timespan: 1m\n  condition:\n    gte: 2\nlevel: high\n"
        );
        let d = check(&text).unwrap_err();
        assert!(d.iter().any(|d| d.code == "unknown-reference"), "{d:?}");
    }
}
