//! Any bytes, as a log line of any format: decoding must not panic, and a
//! decoded event must carry the line as its evidence.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward_agent::decode::{LineDecoder, LogFormat};

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    for format in [
        LogFormat::Auto,
        LogFormat::Syslog,
        LogFormat::Nginx,
        LogFormat::Apache,
        LogFormat::Json,
    ] {
        let decoder = LineDecoder::new(format, "fuzz");
        if let Ok(event) = decoder.decode(&line, "fuzz:0".into()) {
            assert!(!event.raw.is_empty());
        }
    }
});
