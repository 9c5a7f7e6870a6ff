//! YARA rules over bytes, with [`yara_x`].
//!
//! [`YaraRules`] compiles rule files once (the shipped `rules/yara/` pack or a
//! user's directory, e.g. community rules) into an `Arc<yara_x::Rules>` that
//! every worker shares; each worker thread owns one [`YaraScanner`] (a
//! `yara_x::Scanner` is not `Send`). Rules yara-x rejects are skipped and
//! reported as [`Diagnostic`]s (file, line, rule, reason) instead of failing
//! the whole set, so a community rule set with a few incompatible rules still
//! loads. The engine sees bytes and returns [`RuleMatch`]es; reading files,
//! size limits and hashing belong to [`crate::files`].
//!
//! ```
//! use ward_agent::engine::yara::{FileContext, ScanLimits, YaraRules};
//!
//! let rules = YaraRules::shipped().expect("the shipped YARA rules compile");
//! let scanner = rules.scanner(ScanLimits::default());
//! let mut session = scanner.session(); // one per thread, reused
//! let ctx = FileContext { path: "/var/www/html/uploads/a.php", owner: "www-data" };
//! let found = session.scan(b"<?php @eval($_POST['x']); ?>", &ctx).unwrap();
//! assert!(found.iter().any(|m| m.rule == "ward_php_eval_request"));
//! assert!(session.scan(b"<?php echo 'hello';", &ctx).unwrap().is_empty());
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use include_dir::{Dir, include_dir};
use serde::Serialize;
use sha2::{Digest, Sha256};
use yara_x::{Compiler, IgnoredRuleReason, MetaValue, ScanError, Scanner, SourceCode};

use super::pack::{Diagnostic, MAX_RULE_FILE_BYTES, read_rule_files};
use crate::wire::Severity;

pub mod cache;

/// The YARA rules shipped inside the binary (`rules/yara/` at build time).
pub static SHIPPED_YARA: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../rules/yara");

/// Extensions of YARA rule files.
pub const YARA_EXTENSIONS: &[&str] = &["yar", "yara"];

/// Modules that community rules import but `ward-agent` is built without.
/// Rules that need them are skipped with a diagnostic, the rest still load.
const MODULES_NOT_BUILT: &[&str] = &[
    "pe", "elf", "macho", "dotnet", "dex", "lnk", "cuckoo", "magic", "crx", "vt", "zip",
];

/// External variables signature-base style rules use; set per scanned file.
pub const EXTERNAL_VARIABLES: &[&str] = &["filename", "filepath", "extension", "filetype", "owner"];

/// Most matched strings kept per rule match.
pub const MAX_MATCHED_STRINGS: usize = 8;
/// Longest matched data kept per string, in bytes (before escaping).
pub const MAX_MATCH_BYTES: usize = 120;

/// Compiled YARA rules, shareable between threads.
#[derive(Clone)]
pub struct YaraRules {
    rules: Arc<yara_x::Rules>,
    /// Identity: a hash of every file's name and text.
    pub version: String,
    /// Rules that did not compile and were left out.
    pub skipped: Vec<Diagnostic>,
    /// Number of rules compiled.
    pub count: usize,
}

impl std::fmt::Debug for YaraRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YaraRules")
            .field("version", &self.version)
            .field("count", &self.count)
            .field("skipped", &self.skipped.len())
            .finish()
    }
}

/// One rule file's text and name.
struct YaraSource {
    name: String,
    namespace: String,
    text: Vec<u8>,
}

/// The rule files of a YARA rule set, read but not compiled, and their
/// identity. Reading is cheap; compiling is what costs time and memory, so
/// [`cache`] looks compiled rules up by [`YaraSources::digest`] first.
pub struct YaraSources {
    files: Vec<YaraSource>,
    digest: [u8; 32],
}

impl std::fmt::Debug for YaraSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YaraSources")
            .field("files", &self.files.len())
            .field("version", &self.version())
            .finish()
    }
}

impl YaraSources {
    /// The rule files shipped in the binary.
    pub fn shipped() -> YaraSources {
        let mut files = Vec::new();
        collect_embedded(&SHIPPED_YARA, &mut files);
        YaraSources::new(files)
    }

    /// Reads `*.yar`/`*.yara` files and directories (recursively). A
    /// directory holding a `yara/` subdirectory is a pack root and only that
    /// subdirectory is read. It is an error when files cannot be read or
    /// there are none.
    pub fn read(paths: &[PathBuf]) -> Result<YaraSources, Vec<Diagnostic>> {
        let mut files = Vec::new();
        let mut diags = Vec::new();
        for p in paths {
            let root = if p.join("yara").is_dir() {
                p.join("yara")
            } else {
                p.clone()
            };
            collect_files(&root, &mut files, &mut diags);
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        if files.is_empty() {
            return Err(vec![Diagnostic {
                file: paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                rule: None,
                line: None,
                code: "no-rules",
                message: "no YARA rule files (*.yar, *.yara) found".into(),
            }]);
        }
        Ok(YaraSources::new(files))
    }

    fn new(mut files: Vec<YaraSource>) -> YaraSources {
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let mut hasher = Sha256::new();
        for src in &files {
            hasher.update(src.name.as_bytes());
            hasher.update([0]);
            hasher.update(&src.text);
            hasher.update([0]);
        }
        YaraSources {
            files,
            digest: hasher.finalize().into(),
        }
    }

    /// SHA-256 of every file's name and text, in name order.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// The rule set's version ([`YaraRules::version`]): the first 8 bytes
    /// of [`YaraSources::digest`], hex.
    pub fn version(&self) -> String {
        hex::encode(&self.digest[..8])
    }

    /// Compiles the rules. Rules yara-x rejects are left out and listed in
    /// [`YaraRules::skipped`]; it is an error when no rule compiles.
    pub fn compile(&self) -> Result<YaraRules, Vec<Diagnostic>> {
        YaraRules::from_sources(self)
    }
}

impl YaraRules {
    /// The rules shipped in the binary. They must all compile.
    pub fn shipped() -> Result<YaraRules, Vec<Diagnostic>> {
        let rules = YaraSources::shipped().compile()?;
        if !rules.skipped.is_empty() {
            return Err(rules.skipped);
        }
        Ok(rules)
    }

    /// Loads `*.yar`/`*.yara` files and directories (recursively), as
    /// [`YaraSources::read`] reads them. Rules that do not compile are
    /// skipped and listed in [`YaraRules::skipped`]; it is an error when
    /// files cannot be read or no rule at all compiles.
    pub fn load(paths: &[PathBuf]) -> Result<YaraRules, Vec<Diagnostic>> {
        YaraSources::read(paths)?.compile()
    }

    /// Every problem with the YARA files under `paths` (empty: all compile).
    pub fn check(paths: &[PathBuf]) -> Vec<Diagnostic> {
        match YaraRules::load(paths) {
            Ok(r) => r.skipped,
            Err(d) => d,
        }
    }

    fn from_sources(set: &YaraSources) -> Result<YaraRules, Vec<Diagnostic>> {
        let sources = &set.files;
        let mut compiler = Compiler::new();
        compiler.colorize_errors(false);
        for m in MODULES_NOT_BUILT {
            compiler.ignore_module(*m);
        }
        for var in EXTERNAL_VARIABLES {
            compiler
                .define_global(var, "")
                .expect("external variable names are valid identifiers");
        }
        let mut diags = Vec::new();
        // Which file each error index belongs to.
        let mut error_file: Vec<usize> = Vec::new();
        let mut ignored_before = 0;
        for (i, src) in sources.iter().enumerate() {
            compiler.new_namespace(&src.namespace);
            let _ =
                compiler.add_source(SourceCode::from(src.text.as_slice()).with_origin(&src.name));
            error_file.resize(compiler.errors().len(), i);
            // Rules left out because they need a module not built in.
            for (rule, reason) in compiler.ignored_rules().skip(ignored_before) {
                match reason {
                    IgnoredRuleReason::IgnoredModule(m) => diags.push(Diagnostic {
                        file: src.name.clone(),
                        rule: Some(rule.to_string()),
                        line: None,
                        code: "yara-module",
                        message: format!(
                            "rule needs the YARA module '{m}', which ward-agent is built without; rule skipped"
                        ),
                    }),
                    IgnoredRuleReason::IgnoredRule(dep) => diags.push(Diagnostic {
                        file: src.name.clone(),
                        rule: Some(rule.to_string()),
                        line: None,
                        code: "yara-dependency",
                        message: format!("rule depends on skipped rule '{dep}'; rule skipped"),
                    }),
                    IgnoredRuleReason::CompileError(_) => {}
                }
            }
            ignored_before = compiler.ignored_rules().len();
        }
        // Map error index → rule name for errors inside a rule.
        let mut error_rule: BTreeMap<usize, String> = BTreeMap::new();
        for (rule, reason) in compiler.ignored_rules() {
            if let IgnoredRuleReason::CompileError(e) = reason
                && let Some(idx) = compiler.errors().iter().position(|x| std::ptr::eq(x, e))
            {
                error_rule.insert(idx, rule.to_string());
            }
        }
        for (idx, err) in compiler.errors().iter().enumerate() {
            let file = &sources[error_file.get(idx).copied().unwrap_or(0)];
            let (line, title) = error_location(err);
            diags.push(Diagnostic {
                file: file.name.clone(),
                rule: error_rule.get(&idx).cloned(),
                line,
                code: "yara-compile",
                message: title.unwrap_or_else(|| first_line(&err.to_string())),
            });
        }
        let rules = compiler.build();
        let count = rules.iter().len();
        if count == 0 {
            if diags.is_empty() {
                diags.push(Diagnostic {
                    file: sources
                        .iter()
                        .map(|s| s.name.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                    rule: None,
                    line: None,
                    code: "no-rules",
                    message: "the files hold no YARA rules".into(),
                });
            }
            return Err(diags);
        }
        Ok(YaraRules {
            rules: Arc::new(rules),
            version: set.version(),
            skipped: diags,
            count,
        })
    }

    /// A scanner for the current thread.
    pub fn scanner(&self, limits: ScanLimits) -> YaraScanner {
        YaraScanner {
            rules: self.rules.clone(),
            limits,
        }
    }
}

/// The first line of a yara-x error and the 1-based line it points at.
fn error_location(err: &yara_x::errors::CompileError) -> (Option<u32>, Option<String>) {
    let json = serde_json::to_value(err).unwrap_or_default();
    let line = json["labels"]
        .as_array()
        .and_then(|l| l.first())
        .and_then(|l| l["line"].as_u64())
        .map(|l| l as u32);
    let title = json["title"].as_str().map(|t| {
        let label = json["labels"]
            .as_array()
            .and_then(|l| l.first())
            .and_then(|l| l["text"].as_str())
            .unwrap_or("");
        if label.is_empty() {
            t.to_string()
        } else {
            format!("{t}: {label}")
        }
    });
    (line, title)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).trim().to_string()
}

fn namespace_of(name: &str) -> String {
    let stem = Path::new(name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("rules");
    let ns: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if ns.starts_with(|c: char| c.is_ascii_digit()) || ns.is_empty() {
        format!("ns_{ns}")
    } else {
        ns
    }
}

fn is_yara_file(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| YARA_EXTENSIONS.contains(&e))
}

fn collect_embedded(dir: &Dir<'static>, out: &mut Vec<YaraSource>) {
    for f in dir.files() {
        if is_yara_file(f.path()) {
            let name = format!("shipped:yara/{}", f.path().display());
            out.push(YaraSource {
                namespace: namespace_of(&name),
                name,
                text: f.contents().to_vec(),
            });
        }
    }
    for d in dir.dirs() {
        collect_embedded(d, out);
    }
}

fn collect_files(path: &Path, out: &mut Vec<YaraSource>, diags: &mut Vec<Diagnostic>) {
    let mut files = Vec::new();
    read_rule_files(
        path,
        &is_yara_file,
        MAX_RULE_FILE_BYTES as u64 * 4,
        &mut files,
        diags,
    );
    out.extend(files.into_iter().map(|(name, text)| YaraSource {
        namespace: namespace_of(&name),
        name,
        text,
    }));
}

/// Limits of one scan.
#[derive(Debug, Clone, Copy)]
pub struct ScanLimits {
    /// Larger inputs are not scanned by the caller; the scanner also never
    /// looks past this many bytes.
    pub max_size: u64,
    /// A scan running longer than this stops with [`ScanFailure::Timeout`].
    pub timeout: Duration,
}

impl Default for ScanLimits {
    fn default() -> Self {
        ScanLimits {
            max_size: 32 * 1024 * 1024,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Per-file values of the external variables.
#[derive(Debug, Clone, Default)]
pub struct FileContext<'a> {
    /// Full path.
    pub path: &'a str,
    /// Owner's user name (or uid).
    pub owner: &'a str,
}

/// Why a scan produced no verdict.
#[derive(Debug, thiserror::Error)]
pub enum ScanFailure {
    /// The scan took longer than the limit.
    #[error("scan timed out")]
    Timeout,
    /// Anything else yara-x reported.
    #[error("scan failed: {0}")]
    Other(String),
}

/// One matched string of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchedString {
    /// The pattern's identifier (`$a`).
    pub id: String,
    /// Offset in the file.
    pub offset: usize,
    /// The matched bytes, printable ASCII kept, everything else `\xNN`
    /// escaped, capped at [`MAX_MATCH_BYTES`].
    pub data: String,
}

/// One rule that matched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleMatch {
    /// Rule identifier.
    pub rule: String,
    /// The namespace (the rule file's stem).
    pub namespace: String,
    /// The rule's tags.
    pub tags: Vec<String>,
    /// From the rule's `severity` metadata, else high.
    pub severity: Severity,
    /// From the rule's `description` metadata, else the rule name.
    pub title: String,
    /// Matched strings, at most [`MAX_MATCHED_STRINGS`].
    pub strings: Vec<MatchedString>,
}

/// A YARA scanner bound to one thread.
pub struct YaraScanner {
    rules: Arc<yara_x::Rules>,
    limits: ScanLimits,
}

impl YaraScanner {
    /// The limits in force.
    pub fn limits(&self) -> ScanLimits {
        self.limits
    }

    /// Scans bytes. A fresh `yara_x::Scanner` per call would cost the WASM
    /// store set-up each time, so callers scanning many inputs use
    /// [`YaraScanner::session`].
    pub fn scan(&self, data: &[u8], ctx: &FileContext<'_>) -> Result<Vec<RuleMatch>, ScanFailure> {
        self.session().scan(data, ctx)
    }

    /// A reusable `yara_x::Scanner` borrowing these rules (not `Send`).
    pub fn session(&self) -> ScanSession<'_> {
        let mut scanner = Scanner::new(&self.rules);
        scanner
            .set_timeout(self.limits.timeout)
            .use_mmap(false)
            .max_scan_size(usize::try_from(self.limits.max_size).unwrap_or(usize::MAX))
            .max_matches_per_pattern(1000);
        ScanSession { scanner }
    }
}

/// A `yara_x::Scanner` reused across inputs on one thread.
pub struct ScanSession<'r> {
    scanner: Scanner<'r>,
}

impl ScanSession<'_> {
    /// Scans bytes with the per-file external variables set.
    pub fn scan(
        &mut self,
        data: &[u8],
        ctx: &FileContext<'_>,
    ) -> Result<Vec<RuleMatch>, ScanFailure> {
        let path = Path::new(ctx.path);
        let filename = path.file_name().and_then(|s| s.to_str()).unwrap_or("");
        let extension = path.extension().and_then(|s| s.to_str()).unwrap_or("");
        for (var, value) in [
            ("filename", filename),
            ("filepath", ctx.path),
            ("extension", extension),
            ("filetype", extension),
            ("owner", ctx.owner),
        ] {
            // Defined at compile time; cannot fail for a string.
            let _ = self.scanner.set_global(var, value);
        }
        let results = self.scanner.scan(data).map_err(|e| match e {
            ScanError::Timeout => ScanFailure::Timeout,
            other => ScanFailure::Other(other.to_string()),
        })?;
        let mut out = Vec::new();
        for rule in results.matching_rules() {
            let mut severity = Severity::High;
            let mut title = rule.identifier().to_string();
            for (key, value) in rule.metadata() {
                match (key, value) {
                    ("severity", MetaValue::String(s)) => {
                        if let Ok(s) = s.to_ascii_lowercase().parse() {
                            severity = s;
                        }
                    }
                    ("description", MetaValue::String(s)) => title = s.to_string(),
                    _ => {}
                }
            }
            // The first match of each pattern is evidence enough.
            let strings: Vec<MatchedString> = rule
                .patterns()
                .filter_map(|pattern| {
                    pattern.matches().next().map(|m| MatchedString {
                        id: pattern.identifier().to_string(),
                        offset: m.range().start,
                        data: escape_bytes(m.data(), MAX_MATCH_BYTES),
                    })
                })
                .take(MAX_MATCHED_STRINGS)
                .collect();
            out.push(RuleMatch {
                rule: rule.identifier().to_string(),
                namespace: rule.namespace().to_string(),
                tags: rule.tags().map(|t| t.identifier().to_string()).collect(),
                severity,
                title,
                strings,
            });
        }
        Ok(out)
    }
}

/// Printable ASCII as is, everything else as `\xNN`; cut at `max` input bytes.
pub fn escape_bytes(data: &[u8], max: usize) -> String {
    let mut s = String::with_capacity(data.len().min(max) + 8);
    for &b in data.iter().take(max) {
        match b {
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    if data.len() > max {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(text: &str) -> Result<YaraRules, Vec<Diagnostic>> {
        YaraSources::new(vec![YaraSource {
            name: "t.yar".into(),
            namespace: "t".into(),
            text: text.as_bytes().to_vec(),
        }])
        .compile()
    }

    #[test]
    fn the_shipped_rules_compile() {
        let r = YaraRules::shipped().unwrap_or_else(|d| panic!("{d:#?}"));
        assert!(r.count >= 10, "{}", r.count);
    }

    #[test]
    fn bad_rules_are_skipped_with_a_diagnostic_each() {
        let r = compile(
            r#"
rule good { strings: $a = "evil" condition: $a }
rule bad_ident { condition: no_such_thing }
rule bad_regex { strings: $a = /(/ condition: $a }
"#,
        )
        .unwrap();
        assert_eq!(r.count, 1);
        let rules: Vec<_> = r.skipped.iter().filter_map(|d| d.rule.clone()).collect();
        assert!(rules.contains(&"bad_ident".to_string()), "{:#?}", r.skipped);
        assert!(
            r.skipped.iter().all(|d| d.line.is_some()),
            "{:#?}",
            r.skipped
        );
    }

    #[test]
    fn rules_needing_missing_modules_are_named() {
        let r = compile(
            "import \"pe\"\nrule p { condition: pe.is_pe }\nrule q { strings: $a = \"x\" condition: $a }\n",
        )
        .unwrap();
        assert_eq!(r.count, 1);
        assert!(
            r.skipped
                .iter()
                .any(|d| d.rule.as_deref() == Some("p") && d.code == "yara-module"),
            "{:#?}",
            r.skipped
        );
    }

    #[test]
    fn nothing_compiles_is_an_error() {
        assert!(compile("rule x { condition: nope }").is_err());
        assert!(compile("this is not yara").is_err());
    }

    #[test]
    fn matches_carry_metadata_tags_and_escaped_strings() {
        let r = compile(
            r#"
rule shell : webshell php {
  meta: description = "test shell" severity = "critical"
  strings: $a = "eval($_POST" $b = { 00 01 }
  condition: $a or $b
}
rule by_name { condition: filename == "x.php" }
"#,
        )
        .unwrap();
        let scanner = r.scanner(ScanLimits::default());
        let ctx = FileContext {
            path: "/srv/x.php",
            owner: "www-data",
        };
        let m = scanner
            .scan(b"<?php eval($_POST['a']); \x00\x01", &ctx)
            .unwrap();
        assert_eq!(m.len(), 2);
        let shell = m.iter().find(|m| m.rule == "shell").unwrap();
        assert_eq!(shell.severity, Severity::Critical);
        assert_eq!(shell.title, "test shell");
        assert_eq!(shell.tags, vec!["webshell", "php"]);
        assert_eq!(shell.strings[0].data, "eval($_POST");
        assert_eq!(shell.strings[1].data, "\\x00\\x01");
        assert!(
            scanner
                .scan(b"hello", &FileContext::default())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn escaping_caps_and_escapes() {
        assert_eq!(escape_bytes(b"a\\b\n", 10), "a\\\\b\\x0a");
        assert_eq!(escape_bytes(b"abcdef", 3), "abc…");
    }
}
