//! Any bytes, as a log line of any format: decoding must not panic, and a
//! decoded event must carry the line as its evidence.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use ward_agent::decode::{LineDecoder, LogFormat};

/// Built once: the decoders compile their patterns on creation.
static DECODERS: LazyLock<Vec<LineDecoder>> = LazyLock::new(|| {
    [
        LogFormat::Auto,
        LogFormat::Syslog,
        LogFormat::Nginx,
        LogFormat::Apache,
        LogFormat::Json,
    ]
    .into_iter()
    .map(|f| LineDecoder::new(f, "fuzz"))
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    for decoder in DECODERS.iter() {
        if let Ok(event) = decoder.decode(&line, "fuzz:0".into()) {
            assert!(!event.raw.is_empty());
        }
    }
});
