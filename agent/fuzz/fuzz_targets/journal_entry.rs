//! Any bytes, as a line of `journalctl --output=json`: parsing and decoding
//! must not panic, and a decoded event must name its cursor as its origin.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use ward_agent::decode::journal::{JournalDecoder, parse_entry};

static DECODER: LazyLock<JournalDecoder> = LazyLock::new(|| JournalDecoder::new("fuzz"));

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = parse_entry(data) {
        if let Ok(event) = DECODER.decode(&entry) {
            assert_eq!(event.origin, format!("journal:{}", entry.cursor));
            assert!(!event.raw.is_empty());
        }
    }
});
