//! The application parsers alone: DNS, HTTP request head, TLS ClientHello.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward_agent::decode::net::{dns, http, tls};

fuzz_target!(|data: &[u8]| {
    let _ = dns::parse(data);
    let _ = http::parse(data);
    let _ = tls::parse(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = http::percent_decode(s);
    }
});
