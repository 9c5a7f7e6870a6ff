//! Mutated and random lines through every decoder: never a panic (the fuzz
//! target in `agent/fuzz` does the same with coverage guidance).

use std::path::Path;

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
        let mut line = seeds[rng.below(seeds.len())].clone();
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
