//! The whole network decoder (link layers, flows, TCP head reassembly,
//! DNS/HTTP/TLS) on arbitrary frames: the first byte picks the link type
//! and splits the input into frames, so flow state across packets (and
//! heads split over segments) is exercised too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward_agent::decode::net::{FlowConfig, LinkType, NetDecoder};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let link = [LinkType::Ethernet, LinkType::Raw, LinkType::LinuxSll, LinkType::Null]
        [usize::from(first & 3)];
    let config = FlowConfig {
        max_flows: 16,
        ..FlowConfig::default()
    };
    let mut d = NetDecoder::new("fuzz", "fuzz", config);
    let mut out = Vec::new();
    let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    for (i, frame) in rest.split(|&b| b == 0xA5).enumerate() {
        let t = t0 + chrono::Duration::milliseconds(i as i64 * 700);
        d.decode(t, link, frame, i as u64, &mut out);
    }
    d.finish(&mut out);
});
