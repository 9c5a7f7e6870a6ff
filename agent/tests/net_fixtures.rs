//! The committed network fixtures are exactly what the generator
//! (`agent/examples/net_fixtures.rs`) writes, so they can be regenerated and
//! reviewed rather than edited by hand.

use std::path::Path;

#[allow(dead_code)]
#[path = "../examples/net_fixtures.rs"]
mod net_fixtures;

#[test]
fn committed_pcaps_match_the_generator() {
    let tmp = tempfile::tempdir().unwrap();
    net_fixtures::write_all(tmp.path());
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/fixtures/network");
    let mut compared = 0;
    for rule in std::fs::read_dir(tmp.path()).unwrap() {
        let rule = rule.unwrap().file_name();
        for kind in ["positive.pcap", "negative.pcap"] {
            let fresh = std::fs::read(tmp.path().join(&rule).join(kind)).unwrap();
            let path = committed.join(&rule).join(kind);
            let old = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                fresh == old,
                "{} differs from the generator's output; run `cargo run -p ward-agent --example net_fixtures -- rules/fixtures/network`",
                path.display()
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 16);
}
