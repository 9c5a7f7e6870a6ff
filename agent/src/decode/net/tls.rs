//! TLS ClientHello: the server name (SNI) and the offered version.
//!
//! Only a ClientHello whose first record starts the TCP payload is read (no
//! reassembly); a hello cut by the segment end yields what was read before
//! the cut. Limits: one record (at most 16 KiB + header), at most
//! [`MAX_EXTENSIONS`] extensions, a server name of at most 255 bytes.

/// Most extensions walked.
pub const MAX_EXTENSIONS: usize = 64;

/// Anomaly: the hello ends beyond this segment.
pub const TRUNCATED: u16 = 1;

/// What a ClientHello says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHello {
    /// `legacy_version` of the hello, e.g. 0x0303.
    pub version: u16,
    /// The first host name of the server_name extension, lower-cased.
    pub sni: Option<String>,
    /// Anomaly flags.
    pub anomalies: u16,
}

/// A TLS version number as text (`TLS 1.2`, ...).
pub fn version_name(v: u16) -> String {
    match v {
        0x0300 => "SSL 3.0".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        other => format!("0x{other:04x}"),
    }
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

/// Whether a payload starts like a TLS handshake record (cheap).
pub fn looks_like_client_hello(p: &[u8]) -> bool {
    p.len() >= 6 && p[0] == 0x16 && p[1] == 0x03 && p[2] <= 0x04 && p[5] == 0x01
}

/// Parses a ClientHello at the start of a TCP payload.
pub fn parse(payload: &[u8]) -> Option<ClientHello> {
    if !looks_like_client_hello(payload) {
        return None;
    }
    let record_len = usize::from(u16::from_be_bytes([payload[3], payload[4]]));
    let mut hello = ClientHello::default();
    let body = if payload.len() < 5 + record_len {
        hello.anomalies |= TRUNCATED;
        &payload[5..]
    } else {
        &payload[5..5 + record_len]
    };
    let mut c = Cursor(body);
    c.u8()?; // handshake type (1)
    c.take(3)?; // handshake length
    hello.version = c.u16()?;
    if parse_rest(&mut c, &mut hello).is_none() {
        hello.anomalies |= TRUNCATED;
    }
    Some(hello)
}

fn parse_rest(c: &mut Cursor<'_>, hello: &mut ClientHello) -> Option<()> {
    c.take(32)?; // random
    let sid = c.u8()?;
    c.take(usize::from(sid))?;
    let suites = c.u16()?;
    c.take(usize::from(suites))?;
    let comp = c.u8()?;
    c.take(usize::from(comp))?;
    let ext_len = c.u16()?;
    let exts = c.take(usize::from(ext_len)).unwrap_or(c.0);
    let mut e = Cursor(exts);
    for _ in 0..MAX_EXTENSIONS {
        let Some(ty) = e.u16() else { break };
        let len = e.u16()?;
        let data = e.take(usize::from(len))?;
        if ty == 0 {
            let mut s = Cursor(data);
            s.u16()?; // list length
            let name_type = s.u8()?;
            let n = s.u16()?;
            let name = s.take(usize::from(n).min(255))?;
            if name_type == 0 {
                hello.sni = Some(String::from_utf8_lossy(name).to_ascii_lowercase());
            }
        }
    }
    Some(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A TLS 1.2 ClientHello with SNI `evil.example`, two cipher suites.
    pub(crate) fn client_hello(sni: &str) -> Vec<u8> {
        let mut ext = Vec::new();
        let n = sni.len() as u16;
        ext.extend_from_slice(&[0, 0]);
        ext.extend_from_slice(&(n + 5).to_be_bytes());
        ext.extend_from_slice(&(n + 3).to_be_bytes());
        ext.push(0);
        ext.extend_from_slice(&n.to_be_bytes());
        ext.extend_from_slice(sni.as_bytes());
        ext.extend_from_slice(&[0x00, 0x17, 0, 0]); // extended master secret, empty
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 4, 0xc0, 0x2f, 0x00, 0x9c, 1, 0]);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 0x03, 0x01];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn sni() {
        let h = parse(&client_hello("Evil.Example")).unwrap();
        assert_eq!(h.sni.as_deref(), Some("evil.example"));
        assert_eq!(version_name(h.version), "TLS 1.2");
        assert_eq!(h.anomalies, 0);
    }

    #[test]
    fn every_cut_is_handled() {
        let full = client_hello("a.example");
        for n in 0..full.len() {
            if let Some(h) = parse(&full[..n]) {
                assert_ne!(h.anomalies & TRUNCATED, 0, "{n}");
            }
        }
        assert!(parse(b"GET / HTTP/1.1\r\n").is_none());
    }
}
