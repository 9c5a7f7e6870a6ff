//! Mutated and random lines through every decoder, and mutated journalctl
//! JSON entries through the journal decoder: never a panic (the fuzz targets
//! in `agent/fuzz` do the same with coverage guidance).

use std::path::Path;

use ward_agent::decode::journal::{JournalDecoder, parse_entry};
use ward_agent::decode::{LineDecoder, LogFormat};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/fixtures");
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "log") {
                let text = std::fs::read(&p).unwrap();
                out.extend(text.split(|&b| b == b'\n').map(<[u8]>::to_vec));
            }
        }
    }
    out.push(br#"{"@timestamp": "2026-11-22T04:00:00Z", "a": {"b": [1, {"c": null}]}}"#.to_vec());
    out
}

/// A few random edits of `seed`: flipped bytes, cuts, JSON specials, repeats, noise.
fn mutate(rng: &mut Rng, seed: &[u8], specials: &[&[u8]]) -> Vec<u8> {
    let mut line = seed.to_vec();
    for _ in 0..=rng.below(8) {
        match rng.below(5) {
            0 if !line.is_empty() => {
                let i = rng.below(line.len());
                line[i] = rng.next() as u8;
            }
            1 if !line.is_empty() => {
                let i = rng.below(line.len());
                line.truncate(i);
            }
            2 => {
                let i = rng.below(line.len() + 1);
                let s = specials[rng.below(specials.len())];
                line.splice(i..i, s.iter().copied());
            }
            3 if !line.is_empty() => {
                let i = rng.below(line.len());
                let j = (i + rng.below(64)).min(line.len());
                let chunk = line[i..j].to_vec();
                line.splice(i..i, chunk);
            }
            _ => {
                let n = rng.below(32);
                line.extend((0..n).map(|_| rng.next() as u8));
            }
        }
    }
    line
}

#[test]
fn mutated_lines_never_panic_any_decoder() {
    let seeds = seeds();
    let decoders: Vec<LineDecoder> = [
        LogFormat::Auto,
        LogFormat::Syslog,
        LogFormat::Nginx,
        LogFormat::Apache,
        LogFormat::Json,
    ]
    .into_iter()
    .map(|f| LineDecoder::new(f, "h"))
    .collect();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let specials: &[&[u8]] = &[
        b"\"", b"[", b"]", b"{", b"}", b"\\", b" ", b"\0", b"\xff", b"%", b":", b"<", b">", b"\r",
    ];
    let mut decoded = 0usize;
    for round in 0..30_000 {
        let seed = rng.below(seeds.len());
        let line = mutate(&mut rng, &seeds[seed], specials);
        let text = String::from_utf8_lossy(&line);
        for d in &decoders {
            if d.decode(&text, format!("g:{round}")).is_ok() {
                decoded += 1;
            }
        }
    }
    // The mutations leave many lines readable: the decoders were exercised.
    assert!(decoded > 10_000, "only {decoded} decodes");
}

#[test]
fn mutated_journal_entries_never_panic_the_journal_decoder() {
    let seeds: Vec<Vec<u8>> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/journal_entry"))
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
    assert!(seeds.len() >= 4);
    let specials: &[&[u8]] = &[
        b"\"", b"[", b"]", b"{", b"}", b"\\", b",", b":", b"255", b"-1", b"null", b"\\u0000",
        b"\xff", b"1e999",
    ];
    let decoder = JournalDecoder::new("h");
    let mut rng = Rng(0x5eed_4a0b_0002);
    let (mut parsed, mut decoded) = (0usize, 0usize);
    for _ in 0..20_000 {
        let seed = rng.below(seeds.len());
        let line = mutate(&mut rng, &seeds[seed], specials);
        if let Ok(entry) = parse_entry(&line) {
            parsed += 1;
            if let Ok(event) = decoder.decode(&entry) {
                assert_eq!(event.origin, format!("journal:{}", entry.cursor));
                decoded += 1;
            }
        }
    }
    // Most mutations break the JSON; enough survive to reach the decoder.
    assert!(
        parsed > 400 && decoded > 400,
        "{parsed} parsed, {decoded} decoded"
    );
}
