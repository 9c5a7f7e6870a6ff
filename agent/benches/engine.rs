//! Decode + detect throughput with the full shipped pack, one core.
//!
//! Inputs: `WARD_BENCH_AUTH` and `WARD_BENCH_ACCESS` (files made by
//! `bench/gen_logs.py`), or the committed rule fixtures when unset.
//! `cargo bench -p ward-agent --bench engine`

use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ward_agent::decode::{LineDecoder, LogFormat};
use ward_agent::engine::{Detector, RulePack, SigmaDetector};

const SAMPLE_LINES: usize = 200_000;

fn lines(env: &str, fallback: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/fixtures");
    let files: Vec<PathBuf> = match std::env::var_os(env) {
        Some(p) => vec![PathBuf::from(p)],
        None => fallback.iter().map(|f| root.join(f)).collect(),
    };
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        out.extend(text.lines().take(SAMPLE_LINES).map(str::to_owned));
    }
    // Small fixture sets are repeated to a meaningful sample.
    while out.len() < 10_000 {
        out.extend_from_within(..);
    }
    out.truncate(SAMPLE_LINES);
    out
}

fn bench_logs(c: &mut Criterion, name: &str, lines: &[String]) {
    let pack = RulePack::shipped().expect("shipped pack");
    let decoder = LineDecoder::new(LogFormat::Auto, "bench-host");
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.sample_size(10);
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for (i, l) in lines.iter().enumerate() {
                if let Ok(e) = decoder.decode(l, format!("bench:{i}")) {
                    n += e.fields.len();
                }
            }
            n
        })
    });
    group.bench_function("decode+detect", |b| {
        b.iter(|| {
            let mut detector = SigmaDetector::new(&pack).unwrap();
            let mut alerts = 0usize;
            for (i, l) in lines.iter().enumerate() {
                if let Ok(e) = decoder.decode(l, format!("bench:{i}")) {
                    alerts += detector.process(&e).len();
                }
            }
            alerts
        })
    });
    group.finish();
}

fn engine(c: &mut Criterion) {
    let auth = lines(
        "WARD_BENCH_AUTH",
        &[
            "linux/ssh_brute_force/positive.log",
            "linux/ssh_brute_force/negative.log",
            "linux/sudo_auth_failure/negative.log",
        ],
    );
    let access = lines(
        "WARD_BENCH_ACCESS",
        &[
            "web/web_sql_injection/positive.log",
            "web/web_404_flood/negative.log",
        ],
    );
    bench_logs(c, "auth", &auth);
    bench_logs(c, "access", &access);
}

criterion_group!(benches, engine);
criterion_main!(benches);
