#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs into agent/fuzz/seeds/<target>/ from
the rule fixtures and the shared corpus (run from the repository root)."""
import hashlib, json, pathlib, struct

root = pathlib.Path(__file__).resolve().parents[2]
seeds = root / "agent/fuzz/seeds"
corpus = root / "../shared/corpus/pcaps"


def put(target, data):
    d = seeds / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def frames(path, limit):
    b = path.read_bytes()
    if len(b) < 24 or b[:4] not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        return 0, []
    linktype = struct.unpack("<I", b[20:24])[0]
    out, off = [], 24
    while off + 16 <= len(b) and len(out) < limit:
        incl = struct.unpack("<I", b[off + 8 : off + 12])[0]
        out.append(b[off + 16 : off + 16 + incl])
        off += 16 + incl
    return linktype, out


def payload(frame):
    """UDP/TCP payload of an Ethernet/IPv4 frame, or None."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl = (ip[0] & 15) * 4
    proto, rest = ip[9], ip[ihl:]
    if proto == 17 and len(rest) > 8:
        return rest[8:]
    if proto == 6 and len(rest) > 20:
        data = rest[(rest[12] >> 4) * 4 :]
        return data or None
    return None


# Log lines of every fixture, and JSON lines.
for log in sorted((root / "rules/fixtures").rglob("*.log")):
    for line in log.read_bytes().splitlines()[:3]:
        put("decode_line", line)
put("decode_line", b'{"@timestamp": "2026-11-22T04:00:00Z", "a": {"b": [1, {"c": null}]}}')

# journalctl --output=json lines: strings, a byte-array message, several values, null.
base = {
    "__CURSOR": "s=9b8bf1a1331a4d49bcccfcc5a5134cd3;i=1;b=0123456789abcdef0123456789abcdef;m=3e9;t=6618de0f8d5fa;x=6f111fc563049568",
    "__REALTIME_TIMESTAMP": "1796111852951034",
    "__MONOTONIC_TIMESTAMP": "1001",
    "_BOOT_ID": "0123456789abcdef0123456789abcdef",
    "_HOSTNAME": "web01",
    "SYSLOG_IDENTIFIER": "sshd",
    "_COMM": "sshd",
    "_PID": "401",
    "PRIORITY": "5",
    "SYSLOG_FACILITY": "10",
    "MESSAGE": "Failed password for root from 203.0.113.7 port 50001 ssh2",
}
put("journal_entry", json.dumps(base).encode())
put("journal_entry", json.dumps(dict(base, MESSAGE=list(b"Failed password for r\xffoot from 203.0.113.9 port 1 ssh2"))).encode())
put("journal_entry", json.dumps(dict(base, SYSLOG_IDENTIFIER=["sudo", "x"], MESSAGE=None, _PID=[[52, 50]])).encode())
put("journal_entry", json.dumps(dict(base, SYSLOG_IDENTIFIER="sudo", MESSAGE="  bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/sh")).encode())

# Frames of a few captures (link type byte 0 = Ethernet, frames split by 0xA5) and their payloads.
for name in [
    "suricata-verify/dns/dns-eve/input.pcap",
    "suricata-verify/http-all-headers/input.pcap",
    "suricata-verify/tls/tls-glupteba/input.pcap",
    "zeek-traces/http/pipelined-requests.pcap",
    "zeek-traces/dns-txt-multiple.pcap",
]:
    linktype, fs = frames(corpus / name, 40)
    if linktype != 1 or not fs:
        continue
    put("net_decoder", b"\x00" + b"\xa5".join(fs))
    for p in [payload(f) for f in fs][:12]:
        if p:
            put("net_parsers", p)


# Streams whose heads are split over segments, in and out of order (head reassembly).
def tcp_frame(dport, seq, flags, data):
    tcp = struct.pack(">HHIIBBHHH", 40000, dport, seq, 1, 5 << 4, flags, 65535, 0, 0) + data
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0,
                     bytes([10, 9, 0, 1]), bytes([10, 9, 0, 2]))
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp


def client_hello(sni):
    n = len(sni)
    ext = struct.pack(">HHHBH", 0, n + 5, n + 3, 0, n) + sni
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x04\xc0\x2f\x00\x9c\x01\x00"
    body += struct.pack(">H", len(ext)) + ext
    hs = b"\x01\x00" + struct.pack(">H", len(body)) + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


for port, head, order in [
    (443, client_hello(b"split.example"), [2, 0, 1]),
    (80, b"GET /shell.php?cmd=id HTTP/1.1\r\nHost: victim\r\nUser-Agent: x\r\n\r\n", [0, 1, 2]),
]:
    cuts = [0, 10, len(head) // 2, len(head)]
    parts = [(cuts[i], head[cuts[i] : cuts[i + 1]]) for i in range(3)]
    fs = [tcp_frame(port, 999, 0x02, b"")]
    fs += [tcp_frame(port, 1000 + parts[i][0], 0x18, parts[i][1]) for i in order]
    assert all(b"\xa5" not in f for f in fs)
    put("net_decoder", b"\x00" + b"\xa5".join(fs))
