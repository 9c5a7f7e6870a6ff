//! Compiled YARA rules kept in the agent's state dir, so that a restart
//! never runs the compiler.
//!
//! Compiling a rule set (yara-x's compiler, then cranelift turning the
//! rules' WASM into native code) costs seconds and leaves megabytes of
//! compiler code and heap resident in the process for good. The agent
//! therefore compiles once, in a short-lived child (`ward-agent
//! compile-yara`, [`Build::Child`]), which writes the serialized rules to
//! `STATE/yara-rules.bin`; the long-lived process only deserializes them
//! (native code included, so not even cranelift runs in it).
//!
//! The file is keyed by [`key`]: the rule files' digest, the yara-x version,
//! the agent's version and the compile options. Any other key, a damaged
//! file (checksum) or anything yara-x refuses to deserialize is a [`Miss`]:
//! the rules are compiled again and the file rewritten, never a panic.
//! Compiled rules hold native code, so the file is trusted only because the
//! agent writes it itself (mode 0600, tmp → fsync → rename) in its own state
//! dir; it is never taken from anywhere else.
//!
//! ```
//! use ward_agent::engine::yara::YaraSources;
//! use ward_agent::engine::yara::cache::{self, Build, Built};
//!
//! let state = tempfile::tempdir().unwrap();
//! let origin = cache::Origin::Shipped;
//! let first = cache::load_or_build(state.path(), &origin, &Build::InProcess).unwrap();
//! assert_eq!(first.built, Built::Compiled);
//! let again = cache::load_or_build(state.path(), &origin, &Build::InProcess).unwrap();
//! assert_eq!(again.built, Built::Cached);
//! assert_eq!(again.rules.version, YaraSources::shipped().version());
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{EXTERNAL_VARIABLES, MODULES_NOT_BUILT, YaraRules, YaraSources};
use crate::engine::Diagnostic;

/// The cache file's name in the state dir.
pub const CACHE_FILE: &str = "yara-rules.bin";

/// The hidden `ward-agent` subcommand that compiles rules into the cache.
pub const COMPILE_SUBCOMMAND: &str = "compile-yara";

/// Largest cache file read (a community rule set compiles to tens of MiB).
pub const MAX_CACHE_BYTES: u64 = 512 * 1024 * 1024;

/// Start of the file; the last byte is the layout's version.
const MAGIC: &[u8; 8] = b"WARDYRC\x01";
/// Magic, key, meta length (u32), rules length (u64), checksum.
const HEADER_LEN: usize = 8 + 32 + 4 + 8 + 32;

/// Where the compiled rules are kept.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(CACHE_FILE)
}

/// The cache key of a rule set: everything that decides what compiling it
/// produces. Whatever changes the output of [`YaraSources::compile`] must be
/// part of it.
pub fn key(sources: &YaraSources) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [
        "ward-yara-cache",
        yara_x::VERSION,
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for list in [MODULES_NOT_BUILT, EXTERNAL_VARIABLES] {
        h.update(list.join(",").as_bytes());
        h.update([0]);
    }
    h.update(sources.digest());
    h.finalize().into()
}

/// Why the cache did not give rules.
#[derive(Debug, thiserror::Error)]
pub enum Miss {
    /// No cache file.
    #[error("no compiled YARA rules cached")]
    Absent,
    /// Compiled from other rule files, another yara-x or another agent.
    #[error("the cached YARA rules are of other rule files or another ward-agent build")]
    Stale,
    /// Not a cache file, cut short, failing its checksum, or refused by yara-x.
    #[error("the cached YARA rules are damaged: {0}")]
    Damaged(String),
}

/// A skipped rule's diagnostic as stored (codes are `&'static str` in
/// [`Diagnostic`]).
#[derive(Serialize, Deserialize)]
struct StoredDiagnostic {
    file: String,
    rule: Option<String>,
    line: Option<u32>,
    code: String,
    message: String,
}

/// The codes [`YaraSources::compile`] gives skipped rules.
const SKIP_CODES: &[&str] = &["yara-compile", "yara-module", "yara-dependency"];

impl StoredDiagnostic {
    fn into_diagnostic(self) -> Diagnostic {
        Diagnostic {
            file: self.file,
            rule: self.rule,
            line: self.line,
            code: SKIP_CODES
                .iter()
                .copied()
                .find(|c| *c == self.code)
                .unwrap_or("yara-compile"),
            message: self.message,
        }
    }
}

/// What the file says about the rules besides yara-x's bytes.
#[derive(Serialize, Deserialize)]
struct Meta {
    version: String,
    count: usize,
    skipped: Vec<StoredDiagnostic>,
}

/// The cache file's bytes for `rules` compiled from `sources`.
fn encode(sources: &YaraSources, rules: &YaraRules) -> anyhow::Result<Vec<u8>> {
    let meta = serde_json::to_vec(&Meta {
        version: rules.version.clone(),
        count: rules.count,
        skipped: rules
            .skipped
            .iter()
            .map(|d| StoredDiagnostic {
                file: d.file.clone(),
                rule: d.rule.clone(),
                line: d.line,
                code: d.code.to_string(),
                message: d.message.clone(),
            })
            .collect(),
    })?;
    let compiled = yara_x::Rules::serialize(&rules.rules)
        .map_err(|e| anyhow::anyhow!("serializing the YARA rules: {e}"))?;
    let checksum = Sha256::new()
        .chain_update(&meta)
        .chain_update(&compiled)
        .finalize();
    let mut out = Vec::with_capacity(HEADER_LEN + meta.len() + compiled.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&key(sources));
    out.extend_from_slice(&u32::try_from(meta.len())?.to_le_bytes());
    out.extend_from_slice(&(compiled.len() as u64).to_le_bytes());
    out.extend_from_slice(&checksum);
    out.extend_from_slice(&meta);
    out.extend_from_slice(&compiled);
    Ok(out)
}

/// The rules in a cache file's bytes, when they are those of `sources`.
fn decode(sources: &YaraSources, bytes: &[u8]) -> Result<YaraRules, Miss> {
    let damaged = |why: &str| Miss::Damaged(why.to_string());
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(damaged("not a ward-agent YARA cache file"));
    }
    if bytes[8..40] != key(sources) {
        return Err(Miss::Stale);
    }
    let meta_len = u32::from_le_bytes(bytes[40..44].try_into().expect("4 bytes")) as usize;
    let rules_len = u64::from_le_bytes(bytes[44..52].try_into().expect("8 bytes"));
    let body = &bytes[HEADER_LEN..];
    if (meta_len as u64).checked_add(rules_len) != u64::try_from(body.len()).ok() {
        return Err(damaged("its length does not match its header"));
    }
    if Sha256::digest(body)[..] != bytes[52..84] {
        return Err(damaged("checksum mismatch"));
    }
    let (meta, compiled) = body.split_at(meta_len);
    let meta: Meta = serde_json::from_slice(meta).map_err(|e| Miss::Damaged(e.to_string()))?;
    let rules = yara_x::Rules::deserialize(compiled).map_err(|e| Miss::Damaged(e.to_string()))?;
    if meta.version != sources.version() || rules.iter().len() != meta.count {
        return Err(damaged("its rules are not the ones its header names"));
    }
    Ok(YaraRules {
        rules: Arc::new(rules),
        version: meta.version,
        skipped: meta
            .skipped
            .into_iter()
            .map(StoredDiagnostic::into_diagnostic)
            .collect(),
        count: meta.count,
    })
}

/// The cached rules of `sources`, or why there are none.
pub fn load(state_dir: &Path, sources: &YaraSources) -> Result<YaraRules, Miss> {
    let file = match std::fs::File::open(path(state_dir)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Miss::Absent),
        Err(e) => return Err(Miss::Damaged(e.to_string())),
    };
    let mut bytes = Vec::new();
    file.take(MAX_CACHE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Miss::Damaged(e.to_string()))?;
    if bytes.len() as u64 > MAX_CACHE_BYTES {
        return Err(Miss::Damaged(format!(
            "larger than {MAX_CACHE_BYTES} bytes"
        )));
    }
    decode(sources, &bytes)
}

/// Saves `rules`, compiled from `sources`, as the cache (tmp → fsync →
/// rename, mode 0600).
pub fn store(state_dir: &Path, sources: &YaraSources, rules: &YaraRules) -> anyhow::Result<()> {
    crate::sources::write_atomically(&path(state_dir), &encode(sources, rules)?, 0o600)
}

/// Which rule files a rule set is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The rules shipped in the binary.
    Shipped,
    /// Rule files and directories, as [`YaraSources::read`] takes them.
    Paths(Vec<PathBuf>),
}

impl Origin {
    /// Reads the rule files.
    pub fn read(&self) -> Result<YaraSources, Vec<Diagnostic>> {
        match self {
            Origin::Shipped => Ok(YaraSources::shipped()),
            Origin::Paths(paths) => YaraSources::read(paths),
        }
    }

    /// The arguments of [`COMPILE_SUBCOMMAND`] for this origin and state dir.
    pub fn compile_args(&self, state_dir: &Path) -> Vec<std::ffi::OsString> {
        let mut args = vec![
            COMPILE_SUBCOMMAND.into(),
            "--state".into(),
            state_dir.into(),
        ];
        if let Origin::Paths(paths) = self {
            for p in paths {
                args.push("--rules".into());
                args.push(p.into());
            }
        }
        args
    }
}

/// How rules are compiled when the cache has none.
#[derive(Debug, Clone)]
pub enum Build {
    /// In this process.
    InProcess,
    /// In a child process: this executable (a `ward-agent`) run with
    /// [`Origin::compile_args`]; when that fails the rules are compiled in
    /// this process after all.
    Child(PathBuf),
}

/// Where loaded rules came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Built {
    /// From the cache, as they were.
    Cached,
    /// Compiled by a child process into the cache, then loaded from it.
    Child,
    /// Compiled in this process (and cached for the next start).
    Compiled,
}

/// Rules and how they were obtained.
#[derive(Debug)]
pub struct Loaded {
    /// The rules.
    pub rules: YaraRules,
    /// Whether they were compiled, and where.
    pub built: Built,
    /// Why the cache did not serve them at first, when it did not.
    pub miss: Option<Miss>,
}

/// The rules of `origin`: from the cache in `state_dir` when it holds them,
/// else compiled (by `build`) and cached. A cache that cannot be written
/// is logged; the rules still load. The error is the rule files' problems
/// (unreadable, or no rule compiles).
pub fn load_or_build(
    state_dir: &Path,
    origin: &Origin,
    build: &Build,
) -> Result<Loaded, Vec<Diagnostic>> {
    let sources = origin.read()?;
    let miss = match load(state_dir, &sources) {
        Ok(rules) => {
            return Ok(Loaded {
                rules,
                built: Built::Cached,
                miss: None,
            });
        }
        Err(miss) => miss,
    };
    if let Build::Child(exe) = build {
        match run_child(exe, origin, state_dir) {
            Ok(()) => match load(state_dir, &sources) {
                Ok(rules) => {
                    return Ok(Loaded {
                        rules,
                        built: Built::Child,
                        miss: Some(miss),
                    });
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "the YARA compiler process left no usable rules; compiling them in the agent"
                ),
            },
            Err(e) => tracing::warn!(
                error = %e,
                "the YARA compiler process failed; compiling the rules in the agent"
            ),
        }
    }
    let rules = sources.compile()?;
    if let Err(e) = store(state_dir, &sources, &rules) {
        tracing::warn!(error = %e, path = %path(state_dir).display(), "could not cache the compiled YARA rules");
    }
    Ok(Loaded {
        rules,
        built: Built::Compiled,
        miss: Some(miss),
    })
}

/// Runs `exe compile-yara …` and waits for it.
fn run_child(exe: &Path, origin: &Origin, state_dir: &Path) -> anyhow::Result<()> {
    let status = Command::new(exe)
        .args(origin.compile_args(state_dir))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(|e| anyhow::anyhow!("starting {}: {e}", exe.display()))?;
    if !status.success() {
        anyhow::bail!("{} {COMPILE_SUBCOMMAND} ended with {status}", exe.display());
    }
    Ok(())
}

/// What [`COMPILE_SUBCOMMAND`] does: compiles the rules of `origin` and
/// writes them to the cache in `state_dir`. The rules, for a summary.
pub fn compile_into(state_dir: &Path, origin: &Origin) -> anyhow::Result<YaraRules> {
    let sources = origin.read().map_err(diagnostics_error)?;
    let rules = sources.compile().map_err(diagnostics_error)?;
    store(state_dir, &sources, &rules)?;
    Ok(rules)
}

/// One error listing every diagnostic.
pub fn diagnostics_error(diags: Vec<Diagnostic>) -> anyhow::Error {
    let list: Vec<String> = diags.iter().map(ToString::to_string).collect();
    anyhow::anyhow!("the YARA rules do not load:\n{}", list.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::yara::{FileContext, ScanLimits};

    const WEBSHELL: &[u8] = b"<?php @eval($_POST['x']); ?>";

    fn ctx() -> FileContext<'static> {
        FileContext {
            path: "/var/www/html/uploads/a.php",
            owner: "www-data",
        }
    }

    fn matches(rules: &YaraRules, data: &[u8]) -> Vec<String> {
        rules
            .scanner(ScanLimits::default())
            .scan(data, &ctx())
            .unwrap()
            .into_iter()
            .map(|m| m.rule)
            .collect()
    }

    fn write_rules(dir: &Path, text: &str) {
        std::fs::write(dir.join("local.yar"), text).unwrap();
    }

    #[test]
    fn a_restart_reuses_the_cache_and_it_scans_like_compiled_rules() {
        let state = tempfile::tempdir().unwrap();
        let compiled = load_or_build(state.path(), &Origin::Shipped, &Build::InProcess).unwrap();
        assert_eq!(compiled.built, Built::Compiled);
        assert!(matches!(compiled.miss, Some(Miss::Absent)));
        let before = std::fs::metadata(path(state.path())).unwrap();
        let cached = load_or_build(state.path(), &Origin::Shipped, &Build::InProcess).unwrap();
        assert_eq!(cached.built, Built::Cached);
        assert!(cached.miss.is_none());
        assert_eq!(cached.rules.version, compiled.rules.version);
        assert_eq!(cached.rules.count, compiled.rules.count);
        // Not rewritten when it served.
        let after = std::fs::metadata(path(state.path())).unwrap();
        assert_eq!(before.modified().unwrap(), after.modified().unwrap());
        assert_eq!(
            matches(&cached.rules, WEBSHELL),
            matches(&compiled.rules, WEBSHELL)
        );
        assert!(matches(&cached.rules, WEBSHELL).contains(&"ward_php_eval_request".to_string()));
        assert!(matches(&cached.rules, b"<?php echo 'hello';").is_empty());
    }

    #[test]
    fn changed_rule_files_are_compiled_again() {
        let state = tempfile::tempdir().unwrap();
        let rules = tempfile::tempdir().unwrap();
        let origin = Origin::Paths(vec![rules.path().to_path_buf()]);
        write_rules(
            rules.path(),
            "rule first { strings: $a = \"alpha\" condition: $a }",
        );
        let one = load_or_build(state.path(), &origin, &Build::InProcess).unwrap();
        assert_eq!(matches(&one.rules, b"alpha"), ["first"]);
        write_rules(
            rules.path(),
            "rule second { strings: $a = \"beta\" condition: $a }",
        );
        let two = load_or_build(state.path(), &origin, &Build::InProcess).unwrap();
        assert_eq!(two.built, Built::Compiled);
        assert!(matches!(two.miss, Some(Miss::Stale)), "{:?}", two.miss);
        assert_ne!(two.rules.version, one.rules.version);
        assert!(matches(&two.rules, b"alpha").is_empty());
        assert_eq!(matches(&two.rules, b"beta"), ["second"]);
        // And that is what the next start finds.
        let three = load_or_build(state.path(), &origin, &Build::InProcess).unwrap();
        assert_eq!(three.built, Built::Cached);
        assert_eq!(three.rules.version, two.rules.version);
    }

    #[test]
    fn skipped_rules_are_remembered_with_their_diagnostics() {
        let state = tempfile::tempdir().unwrap();
        let rules = tempfile::tempdir().unwrap();
        write_rules(
            rules.path(),
            "import \"pe\"\nrule p { condition: pe.is_pe }\nrule q { strings: $a = \"x\" condition: $a }\nrule bad { condition: nope }\n",
        );
        let origin = Origin::Paths(vec![rules.path().to_path_buf()]);
        let compiled = load_or_build(state.path(), &origin, &Build::InProcess).unwrap();
        let cached = load_or_build(state.path(), &origin, &Build::InProcess).unwrap();
        assert_eq!(cached.built, Built::Cached);
        assert_eq!(cached.rules.skipped, compiled.rules.skipped);
        assert_eq!(cached.rules.count, 1);
        let codes: Vec<_> = cached.rules.skipped.iter().map(|d| d.code).collect();
        assert!(codes.contains(&"yara-module"), "{codes:?}");
        assert!(codes.contains(&"yara-compile"), "{codes:?}");
    }

    #[test]
    fn a_damaged_cache_file_is_compiled_again_and_rewritten() {
        let state = tempfile::tempdir().unwrap();
        let good = load_or_build(state.path(), &Origin::Shipped, &Build::InProcess).unwrap();
        let file = path(state.path());
        let original = std::fs::read(&file).unwrap();
        let mut flipped = original.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        let mut wrong_magic = original.clone();
        wrong_magic[0] = b'X';
        let mut bad_length = original.clone();
        bad_length[44] ^= 1;
        let mut huge_length = original.clone();
        huge_length[44..52].copy_from_slice(&u64::MAX.to_le_bytes());
        let damages: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("cut short", original[..original.len() / 2].to_vec()),
            ("header only", original[..HEADER_LEN].to_vec()),
            ("a flipped byte", flipped),
            ("another magic", wrong_magic),
            ("a wrong length", bad_length),
            ("a length past u64", huge_length),
            ("text", b"hello, this is not compiled YARA".to_vec()),
        ];
        for (what, bytes) in damages {
            std::fs::write(&file, &bytes).unwrap();
            let again = load_or_build(state.path(), &Origin::Shipped, &Build::InProcess)
                .unwrap_or_else(|d| panic!("{what}: {d:?}"));
            assert_eq!(again.built, Built::Compiled, "{what}");
            assert!(
                matches!(again.miss, Some(Miss::Damaged(_))),
                "{what}: {:?}",
                again.miss
            );
            assert_eq!(again.rules.version, good.rules.version, "{what}");
            assert!(
                matches(&again.rules, WEBSHELL).contains(&"ward_php_eval_request".to_string()),
                "{what}"
            );
            // Rewritten: the next start uses it.
            let next = load_or_build(state.path(), &Origin::Shipped, &Build::InProcess).unwrap();
            assert_eq!(next.built, Built::Cached, "{what}");
        }
    }

    #[test]
    fn yara_bytes_that_pass_the_checksum_but_not_yara_x_are_damage() {
        let state = tempfile::tempdir().unwrap();
        let sources = YaraSources::shipped();
        let rules = sources.compile().unwrap();
        let mut bytes = encode(&sources, &rules).unwrap();
        // Garble yara-x's part and fix the checksum, as a bug writing it would.
        let start = HEADER_LEN + u32::from_le_bytes(bytes[40..44].try_into().unwrap()) as usize;
        for b in &mut bytes[start..start + 16] {
            *b = 0x5a;
        }
        let checksum = Sha256::digest(&bytes[HEADER_LEN..]);
        bytes[52..84].copy_from_slice(&checksum);
        std::fs::write(path(state.path()), &bytes).unwrap();
        assert!(matches!(
            load(state.path(), &sources),
            Err(Miss::Damaged(_))
        ));
    }

    #[test]
    fn an_unwritable_state_dir_still_loads_the_rules() {
        let state = tempfile::tempdir().unwrap();
        let missing = state.path().join("no-such-dir");
        let loaded = load_or_build(&missing, &Origin::Shipped, &Build::InProcess).unwrap();
        assert_eq!(loaded.built, Built::Compiled);
        assert!(loaded.rules.count > 0);
    }

    #[test]
    fn a_failing_child_falls_back_to_compiling_here() {
        let state = tempfile::tempdir().unwrap();
        let build = Build::Child(state.path().join("no-such-ward-agent"));
        let loaded = load_or_build(state.path(), &Origin::Shipped, &build).unwrap();
        assert_eq!(loaded.built, Built::Compiled);
        let next = load_or_build(state.path(), &Origin::Shipped, &build).unwrap();
        assert_eq!(next.built, Built::Cached);
    }

    #[test]
    fn rule_files_that_do_not_load_are_an_error_not_a_cache_entry() {
        let state = tempfile::tempdir().unwrap();
        let rules = tempfile::tempdir().unwrap();
        write_rules(rules.path(), "rule broken { condition: nope }");
        let origin = Origin::Paths(vec![rules.path().to_path_buf()]);
        let diags = load_or_build(state.path(), &origin, &Build::InProcess).unwrap_err();
        assert!(diags.iter().any(|d| d.code == "yara-compile"), "{diags:?}");
        assert!(!path(state.path()).exists());
    }

    #[test]
    fn compile_args_name_the_state_dir_and_every_rules_path() {
        let args = Origin::Paths(vec!["/r/a".into(), "/r/b.yar".into()])
            .compile_args(Path::new("/var/lib/ward-agent"));
        let args: Vec<_> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                COMPILE_SUBCOMMAND,
                "--state",
                "/var/lib/ward-agent",
                "--rules",
                "/r/a",
                "--rules",
                "/r/b.yar"
            ]
        );
        assert_eq!(
            Origin::Shipped.compile_args(Path::new("/s")).len(),
            3,
            "the shipped rules need no --rules"
        );
    }
}
