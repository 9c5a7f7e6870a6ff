//! `ward-agent scan PATH...`: the one-shot YARA scan (CLI glue over
//! `ward_agent::files::scan_tree`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ward_agent::engine::YaraRules;
use ward_agent::engine::yara::ScanLimits;
use ward_agent::files::{Finding, Hashing, ScanCounters, ScanEvent, scan_tree};

/// What `scan` was asked to do.
pub struct ScanArgs {
    pub paths: Vec<PathBuf>,
    pub rules: Option<PathBuf>,
    pub limits: ScanLimits,
    pub threads: usize,
    pub progress: bool,
}

pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let rules = match &args.rules {
        Some(dir) => YaraRules::load(std::slice::from_ref(dir)),
        None => YaraRules::shipped(),
    }
    .map_err(|diags| {
        let list: Vec<String> = diags.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the YARA rules do not load:\n{}", list.join("\n"))
    })?;
    for d in &rules.skipped {
        tracing::warn!("{d}");
    }
    if !rules.skipped.is_empty() {
        tracing::warn!(
            skipped = rules.skipped.len(),
            loaded = rules.count,
            "some YARA rules were rejected and are not used"
        );
    }
    let mut missing = 0;
    for p in &args.paths {
        if let Err(e) = std::fs::metadata(p) {
            eprintln!("ward-agent: {}: {e}", p.display());
            missing += 1;
        }
    }

    let bar = if args.progress && std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Some(bar)
    } else {
        None
    };

    let counters = ScanCounters::default();
    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_error: Option<std::io::Error> = None;
    scan_tree(
        &rules,
        &args.paths,
        args.limits,
        args.threads,
        Hashing::WhenMatched,
        &counters,
        |ev| {
            match ev {
                ScanEvent::File(f) => {
                    for m in &f.matches {
                        let finding = Finding {
                            path: &f.path,
                            rule: &m.rule,
                            namespace: &m.namespace,
                            title: &m.title,
                            severity: m.severity,
                            tags: &m.tags,
                            sha256: &f.sha256,
                            size: f.size,
                            strings: &m.strings,
                        };
                        let r = serde_json::to_writer(&mut out, &finding)
                            .map_err(std::io::Error::from)
                            .and_then(|()| out.write_all(b"\n"));
                        if let Err(e) = r
                            && write_error.is_none()
                        {
                            write_error = Some(e);
                        }
                    }
                }
                ScanEvent::Skipped {
                    path,
                    reason,
                    detail,
                } => {
                    let line =
                        format!("skipped {}: {} ({detail})", path.display(), reason.as_str());
                    match &bar {
                        Some(bar) => bar.suspend(|| tracing::debug!("{line}")),
                        None => tracing::debug!("{line}"),
                    }
                }
            }
            if let Some(bar) = &bar {
                bar.set_length(counters.found_bytes.load(Ordering::Relaxed));
                bar.set_position(counters.scanned_bytes.load(Ordering::Relaxed));
                bar.set_message(format!(
                    "{} files, {} matched",
                    counters.scanned.load(Ordering::Relaxed),
                    counters.matched_files.load(Ordering::Relaxed)
                ));
            }
        },
        |err| tracing::warn!("{err}"),
    );
    out.flush()?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if let Some(e) = write_error {
        // A closed pipe (`| head`) is not worth a complaint.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(anyhow::Error::from(e).context("writing findings"));
        }
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let scanned = counters.scanned.load(Ordering::Relaxed);
    let bytes = counters.scanned_bytes.load(Ordering::Relaxed);
    let skipped = counters
        .skipped
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let skipped_text: Vec<String> = skipped
        .iter()
        .map(|(r, n)| format!("{n} {}", r.as_str()))
        .collect();
    eprintln!(
        "scanned {scanned} files ({:.1} MB) in {secs:.2} s ({:.1} MB/s, {:.0} files/s) with {} rules: {} matches in {} files; skipped: {}; walk errors: {}",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs,
        scanned as f64 / secs,
        rules.count,
        counters.matches.load(Ordering::Relaxed),
        counters.matched_files.load(Ordering::Relaxed),
        if skipped_text.is_empty() {
            "none".to_string()
        } else {
            skipped_text.join(", ")
        },
        counters.walk_errors.load(Ordering::Relaxed),
    );
    Ok(if missing > 0 {
        ExitCode::from(2)
    } else if counters.matched_files.load(Ordering::Relaxed) > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
