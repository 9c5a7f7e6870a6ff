//! Heartbeat event rates with the real binaries: a writer appends log lines
//! at a known rate while the agent runs; a heartbeat covering a whole
//! interval of that writing reports lines and events per second near it,
//! in `GET /api/v1/agents` (through `ward agents list --json`) and in the
//! table's column.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use ward_e2e::{Server, eventually, start_agent};

/// Lines per second the writer appends (in steps of 100 ms).
const RATE: f64 = 50.0;

#[test]
fn heartbeats_report_the_rate_lines_arrive_at() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let state = dir.path().join("agent");
    let server = Server::start(&data);
    server.enroll_agent("Sở Y tế", "rates01", &state);
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nhost = \"rates01\"\nheartbeat_interval_s = 2\npoll_interval_ms = 200\n[[logs]]\npath = {log:?}\n"
        ),
    )
    .unwrap();
    let _agent = start_agent(None, &config);
    let heartbeat = || -> Value { server.ward_json(&["agents", "list"])[0]["heartbeat"].clone() };
    eventually(Duration::from_secs(30), "a first heartbeat", || {
        heartbeat().is_object().then_some(())
    });

    // A steady writer: 5 lines every 100 ms, on its own schedule.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let log = log.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            let start = Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..5 {
                    writeln!(
                        f,
                        "Dec  1 10:00:00 rates01 app[42]: request {n} served in 3 ms"
                    )
                    .unwrap();
                    n += 1;
                }
                f.flush().unwrap();
                let next = Duration::from_millis(100 * (n / 5));
                if let Some(wait) = next.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            n as f64 / start.elapsed().as_secs_f64()
        })
    };

    // The first heartbeat that saw lines may cover the writer's start; take
    // one whose whole interval lies after it.
    let first = eventually(
        Duration::from_secs(60),
        "a heartbeat counting lines",
        || {
            let hb = heartbeat();
            (hb["events_total"].as_u64() > Some(0)).then_some(hb)
        },
    );
    let after = first["uptime_s"].as_u64().unwrap() + 2;
    let hb = eventually(
        Duration::from_secs(60),
        "a heartbeat over a whole interval of writing",
        || {
            let hb = heartbeat();
            (hb["uptime_s"].as_u64() >= Some(after + 2) && hb["lines_per_sec"].as_f64() > Some(0.0))
                .then_some(hb)
        },
    );
    let table = server.ward(&["agents", "list"]);
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();

    let lines = hb["lines_per_sec"].as_f64().unwrap();
    let events = hb["events_per_sec"].as_f64().unwrap();
    eprintln!("written {written:.1}/s; heartbeat lines {lines}/s, events {events}/s: {hb}");
    assert!(
        (written - RATE).abs() < RATE * 0.5,
        "the writer kept its rate: {written}"
    );
    for (what, r) in [("lines", lines), ("events", events)] {
        assert!(
            (0.3 * written..=3.0 * written).contains(&r),
            "{what}_per_sec {r} is not near the written {written}/s"
        );
    }
    assert_eq!(hb["alerts_per_sec"].as_f64(), Some(0.0), "{hb}");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("EV/S"), "{table}");
}
