//! Forms as PDF: the printable A4 page printed by a headless Chromium.
//!
//! No pure-Rust PDF writer lays out Vietnamese text, tables and page
//! breaks the way the printable HTML already does, so the CLI hands that
//! page to the browser the responders' workstations have anyway
//! (`chromium --headless --print-to-pdf`). The page is self-contained (no
//! network), the browser runs with a throw-away profile, and it is killed
//! after [`PRINT_TIMEOUT`].

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the browser may take to print one form.
pub const PRINT_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable naming the browser to print with.
pub const BROWSER_ENV: &str = "WARD_CHROMIUM";

/// Why a form could not be printed.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// No browser found.
    #[error(
        "printing a PDF needs Chromium (apt-get install chromium), or {BROWSER_ENV}=/path/to/chrome; \
         --html gives the printable page without it"
    )]
    NoBrowser,
    /// The browser failed or printed nothing.
    #[error("{browser} could not print the form: {why}")]
    Failed {
        /// The browser run.
        browser: String,
        /// What went wrong.
        why: String,
    },
    /// A file could not be written or read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The browser to print with: [`BROWSER_ENV`], else the first of
/// `chromium`, `chromium-browser`, `google-chrome` on `PATH`.
pub fn find_browser() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(BROWSER_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// Prints the HTML page `html` to the PDF file `out`.
pub fn print_html(html: &str, out: &Path) -> Result<(), PdfError> {
    let browser = find_browser().ok_or(PdfError::NoBrowser)?;
    let work = tempfile::tempdir()?;
    let page = work.path().join("form.html");
    std::fs::write(&page, html)?;
    let pdf = work.path().join("form.pdf");
    let failed = |why: String| PdfError::Failed {
        browser: browser.display().to_string(),
        why,
    };
    let mut child = Command::new(&browser)
        .arg("--headless")
        .arg("--no-sandbox")
        .arg("--disable-gpu")
        .arg("--no-first-run")
        .arg("--no-pdf-header-footer")
        .arg(format!(
            "--user-data-dir={}",
            work.path().join("profile").display()
        ))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > PRINT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(format!(
                "no PDF after {} s",
                PRINT_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let bytes = std::fs::read(&pdf).unwrap_or_default();
    if !status.success() || !bytes.starts_with(b"%PDF-") {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(failed(format!(
            "{status}, {} bytes of PDF; {last}",
            bytes.len()
        )));
    }
    std::fs::write(out, bytes)?;
    Ok(())
}
