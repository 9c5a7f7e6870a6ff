#!/usr/bin/env bash
# Packet-analysis benchmark: builds a large pcap (default ≥ 100 MB) by repeating the
# corpus's Ethernet pcaps with shifted addresses and times, then times
# `ward-agent replay --pcap` (release build, shipped rules, one core) and, when installed,
# `suricata -r` on the same file.
#   bench/pcap.sh [MEGABYTES]
#   WARD_AGENT=path/to/ward-agent bench/pcap.sh   # time an existing build
set -euo pipefail
cd "$(dirname "$0")/.."
MB="${1:-100}"
OUT="${BENCH_DIR:-/tmp/ward-bench}"
mkdir -p "$OUT"
PCAP="$OUT/big-${MB}mb.pcap"
if [ ! -s "$PCAP" ]; then
    python3 - "$PCAP" "$MB" ../shared/corpus/pcaps <<'PY'
import os, struct, sys
out, mb, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
frames = []
for d, _, files in os.walk(root):
    for f in sorted(files):
        if not f.endswith(".pcap"):
            continue
        b = open(os.path.join(d, f), "rb").read()
        if len(b) < 24:
            continue
        magic = b[:4]
        if magic == b"\xd4\xc3\xb2\xa1": e, nano = "<", False
        elif magic == b"\xa1\xb2\xc3\xd4": e, nano = ">", False
        elif magic == b"\x4d\x3c\xb2\xa1": e, nano = "<", True
        elif magic == b"\xa1\xb2\x3c\x4d": e, nano = ">", True
        else: continue
        if struct.unpack(e + "I", b[20:24])[0] != 1:   # Ethernet only
            continue
        i, t0 = 24, None
        while i + 16 <= len(b):
            s, frac, incl, _ = struct.unpack(e + "IIII", b[i:i + 16])
            data = b[i + 16:i + 16 + incl]
            i += 16 + incl
            if len(data) < incl:
                break
            us = s * 1_000_000 + (frac // 1000 if nano else frac)
            t0 = us if t0 is None else t0
            frames.append((us - t0, data))
total, rnd, t = 0, 0, 1_795_000_000_000_000
with open(out, "wb") as w:
    w.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
    while total < mb * 1_000_000:
        for dt, data in frames:
            d = bytearray(data)
            # Shift IPv4 addresses per round so flows do not collide across rounds.
            if len(d) > 34 and d[12:14] == b"\x08\x00":
                d[27] = (d[27] + rnd) & 0xff
                d[29] = (d[29] + rnd // 256) & 0xff
            ts = t + dt
            w.write(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(d), len(d)))
            w.write(d)
            total += 16 + len(d)
        rnd += 1
        t += 600_000_000
print(f"{out}: {total / 1e6:.0f} MB, {rnd} rounds of {len(frames)} frames")
PY
fi
# WARD_AGENT: a ward-agent binary already built (e.g. `--profile profiling`);
# otherwise the release build is made here.
BIN="${WARD_AGENT:-}"
if [ -z "$BIN" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
    cargo build --release --quiet -p ward-agent
    BIN="$CARGO_TARGET_DIR/release/ward-agent"
fi
echo "== ward-agent replay --pcap (one core, shipped rules)"
for _ in 1 2 3; do
    /usr/bin/time -f "ward-agent: wall %e s, user %U s, sys %S s, %M KB max RSS" \
        taskset -c 0 env WARD_LOG=info "$BIN" replay --host bench --pcap "$PCAP" 2>&1 >/dev/null | grep -E "replay finished|ward-agent:"
done
if command -v suricata >/dev/null 2>&1; then
    echo "== suricata -r (single runmode, bench/suricata-net.rules)"
    SOUT="$OUT/suricata"
    for _ in 1 2 3; do
        rm -rf "$SOUT"; mkdir -p "$SOUT"
        /usr/bin/time -f "suricata: wall %e s, user %U s, sys %S s, %M KB max RSS" \
            taskset -c 0 suricata --runmode single -r "$PCAP" -S bench/suricata-net.rules -l "$SOUT" -k none 2>&1 >/dev/null | tail -1
        echo "alerts: $(wc -l < "$SOUT/fast.log")"
    done
fi
