//! A report as a small document model, rendered as Markdown or as a
//! self-contained printable HTML page (A4), so both say the same.

use std::fmt::Write;

/// What a field the data cannot fill shows, for a person to complete.
pub const BLANK: &str = "……… (cần bổ sung)";

/// One piece of a report.
#[derive(Debug, Clone)]
pub enum Block {
    /// A numbered section heading.
    Heading(String),
    /// `label: value`, or the blank marker when the value is unknown.
    Field(String, Option<String>),
    /// A labelled list; the blank marker when empty.
    List(String, Vec<String>),
    /// A paragraph.
    Para(String),
    /// A table with a header row; `empty` is said when it has no rows.
    Table {
        /// Column names.
        header: Vec<String>,
        /// Rows.
        rows: Vec<Vec<String>>,
        /// What to say instead of an empty table.
        empty: String,
    },
    /// Preformatted lines (evidence), each quoted as is.
    Code(Vec<String>),
}

/// A report ready to render.
#[derive(Debug, Clone)]
pub struct Doc {
    /// The e-mail subject line (`[TBSC] ...`).
    pub subject: String,
    /// Top-left lines: governing body and unit.
    pub issuer: Vec<String>,
    /// Top-right lines: national motto, then place and date.
    pub motto: Vec<String>,
    /// The form's reference (`Mẫu 03 ...`).
    pub form_ref: String,
    /// The title in capitals.
    pub title: String,
    /// Recipients (`Kính gửi`), blank marker when none.
    pub recipients: Vec<String>,
    /// The body.
    pub blocks: Vec<Block>,
    /// The signature block's caption and name.
    pub signature: (String, Option<String>),
    /// A closing line on how the report was made.
    pub footer: String,
}

fn value_or_blank(v: Option<&str>) -> &str {
    v.filter(|s| !s.trim().is_empty()).unwrap_or(BLANK)
}

/// Markdown-escapes a value that goes into running text or a table cell.
fn md(s: &str) -> String {
    md_except(s, &[])
}

/// Markdown-escapes all but the characters in `keep` (the subject keeps
/// its `[TBSC]` as typed: brackets alone make no link).
fn md_except(s: &str, keep: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            c if keep.contains(&c) => out.push(c),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// HTML-escapes text.
fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A value in HTML: escaped, or the blank marker in its own class.
fn html_value(v: Option<&str>) -> String {
    match v.filter(|s| !s.trim().is_empty()) {
        Some(s) => html(s),
        None => format!("<span class=\"blank\">{}</span>", html(BLANK)),
    }
}

impl Doc {
    /// The report as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "**Tiêu đề thư điện tử:** {}\n",
            md_except(&self.subject, &['[', ']'])
        );
        let _ = writeln!(o, "---\n");
        for l in &self.issuer {
            let _ = writeln!(o, "**{}**  ", md(l));
        }
        o.push('\n');
        for l in &self.motto {
            let _ = writeln!(o, "*{}*  ", md(l));
        }
        let _ = writeln!(o, "\n{}\n", md(&self.form_ref));
        let _ = writeln!(o, "# {}\n", md(&self.title));
        let recipients: Vec<String> = self.recipients.iter().map(|r| md(r)).collect();
        let _ = writeln!(
            o,
            "**Kính gửi:** {}\n",
            if recipients.is_empty() {
                BLANK.to_string()
            } else {
                recipients.join("; ")
            }
        );
        for b in &self.blocks {
            match b {
                Block::Heading(h) => {
                    let _ = writeln!(o, "\n## {}\n", md(h));
                }
                Block::Field(label, v) => {
                    let v = v.as_deref().map(md);
                    let _ = writeln!(o, "- **{}:** {}", md(label), value_or_blank(v.as_deref()));
                }
                Block::List(label, items) => {
                    if items.is_empty() {
                        let _ = writeln!(o, "- **{}:** {BLANK}", md(label));
                    } else {
                        let _ = writeln!(o, "- **{}:**", md(label));
                        for i in items {
                            let _ = writeln!(o, "  - {}", md(i));
                        }
                    }
                }
                Block::Para(p) => {
                    let _ = writeln!(o, "\n{}\n", md(p));
                }
                Block::Table {
                    header,
                    rows,
                    empty,
                } => {
                    if rows.is_empty() {
                        let _ = writeln!(o, "\n{}\n", md(empty));
                        continue;
                    }
                    let cells =
                        |r: &[String]| r.iter().map(|c| md(c)).collect::<Vec<_>>().join(" | ");
                    let _ = writeln!(o, "\n| {} |", cells(header));
                    let _ = writeln!(o, "|{}", "---|".repeat(header.len()));
                    for r in rows {
                        let _ = writeln!(o, "| {} |", cells(r));
                    }
                    o.push('\n');
                }
                Block::Code(lines) => {
                    if lines.is_empty() {
                        continue;
                    }
                    let fence = if lines.iter().any(|l| l.contains("```")) {
                        "~~~~"
                    } else {
                        "```"
                    };
                    let _ = writeln!(o, "\n{fence}text");
                    for l in lines {
                        let _ = writeln!(o, "{}", l.replace(['\n', '\r'], " "));
                    }
                    let _ = writeln!(o, "{fence}\n");
                }
            }
        }
        let (caption, name) = &self.signature;
        let name = name.as_deref().map(md);
        let _ = writeln!(
            o,
            "\n**{}**  \n*(Ký, ghi rõ họ tên)*  \n{}\n",
            md(caption),
            value_or_blank(name.as_deref())
        );
        let _ = writeln!(o, "---\n\n*{}*", md(&self.footer));
        o
    }

    /// The report as one self-contained HTML page that prints on A4.
    pub fn to_html(&self) -> String {
        let mut o = String::new();
        let _ = write!(
            o,
            "<!DOCTYPE html>\n<html lang=\"vi\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n",
            html(&self.subject)
        );
        let _ = writeln!(
            o,
            "<p class=\"subject\"><span class=\"label\">Tiêu đề thư điện tử:</span> {}</p>",
            html(&self.subject)
        );
        let _ = writeln!(
            o,
            "<main class=\"page\">\n<table class=\"masthead\"><tr><td>"
        );
        for l in &self.issuer {
            let _ = writeln!(o, "<div class=\"issuer\">{}</div>", html(l));
        }
        let _ = writeln!(o, "</td><td>");
        for (n, l) in self.motto.iter().enumerate() {
            let class = if n == 0 { "motto strong" } else { "motto" };
            let _ = writeln!(o, "<div class=\"{class}\">{}</div>", html(l));
        }
        let _ = writeln!(o, "</td></tr></table>");
        let _ = writeln!(o, "<p class=\"form-ref\">{}</p>", html(&self.form_ref));
        let _ = writeln!(o, "<h1>{}</h1>", html(&self.title));
        let recipients = if self.recipients.is_empty() {
            html_value(None)
        } else {
            self.recipients
                .iter()
                .map(|r| html(r))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let _ = writeln!(
            o,
            "<p class=\"recipients\"><span class=\"label\">Kính gửi:</span> {recipients}</p>"
        );
        for b in &self.blocks {
            match b {
                Block::Heading(h) => {
                    let _ = writeln!(o, "<h2>{}</h2>", html(h));
                }
                Block::Field(label, v) => {
                    let _ = writeln!(
                        o,
                        "<p class=\"field\"><span class=\"label\">{}:</span> {}</p>",
                        html(label),
                        html_value(v.as_deref())
                    );
                }
                Block::List(label, items) => {
                    if items.is_empty() {
                        let _ = writeln!(
                            o,
                            "<p class=\"field\"><span class=\"label\">{}:</span> {}</p>",
                            html(label),
                            html_value(None)
                        );
                    } else {
                        let _ = writeln!(
                            o,
                            "<p class=\"field\"><span class=\"label\">{}:</span></p>\n<ul>",
                            html(label)
                        );
                        for i in items {
                            let _ = writeln!(o, "<li>{}</li>", html(i));
                        }
                        let _ = writeln!(o, "</ul>");
                    }
                }
                Block::Para(p) => {
                    let _ = writeln!(o, "<p>{}</p>", html(p));
                }
                Block::Table {
                    header,
                    rows,
                    empty,
                } => {
                    if rows.is_empty() {
                        let _ = writeln!(o, "<p>{}</p>", html(empty));
                        continue;
                    }
                    let _ = write!(o, "<table class=\"grid\"><thead><tr>");
                    for h in header {
                        let _ = write!(o, "<th>{}</th>", html(h));
                    }
                    let _ = writeln!(o, "</tr></thead><tbody>");
                    for r in rows {
                        let _ = write!(o, "<tr>");
                        for c in r {
                            let _ = write!(o, "<td>{}</td>", html(c));
                        }
                        let _ = writeln!(o, "</tr>");
                    }
                    let _ = writeln!(o, "</tbody></table>");
                }
                Block::Code(lines) => {
                    if lines.is_empty() {
                        continue;
                    }
                    let body: Vec<String> = lines.iter().map(|l| html(l)).collect();
                    let _ = writeln!(o, "<pre>{}</pre>", body.join("\n"));
                }
            }
        }
        let (caption, name) = &self.signature;
        let _ = writeln!(
            o,
            "<div class=\"signature\"><div class=\"strong\">{}</div>\
             <div class=\"hint\">(Ký, ghi rõ họ tên)</div><div class=\"name\">{}</div></div>",
            html(caption),
            html_value(name.as_deref())
        );
        let _ = writeln!(
            o,
            "<p class=\"footer\">{}</p>\n</main>\n</body>\n</html>",
            html(&self.footer)
        );
        o
    }
}

/// Print styles: A4, Times-like serif (administrative documents), blanks
/// highlighted on screen and dotted on paper.
const CSS: &str = r#"@page { size: A4; margin: 20mm 15mm 20mm 30mm; }
html { background: #eee; }
body { margin: 0; font-family: "Times New Roman", "Liberation Serif", "DejaVu Serif", serif;
  font-size: 13pt; line-height: 1.45; color: #000; }
.page { background: #fff; max-width: 210mm; box-sizing: border-box; margin: 0 auto 2em;
  padding: 20mm 15mm 20mm 30mm; box-shadow: 0 0 4px #999; }
.subject { max-width: 210mm; margin: 1em auto; font-family: sans-serif; font-size: 11pt; }
.masthead { width: 100%; border-collapse: collapse; margin-bottom: 1em; }
.masthead td { vertical-align: top; text-align: center; width: 50%; }
.issuer { font-weight: bold; text-transform: uppercase; font-size: 12pt; }
.issuer:last-child { font-weight: normal; text-transform: none; }
.motto { font-style: italic; }
.motto.strong { font-weight: bold; font-style: normal; text-transform: uppercase; font-size: 12pt; }
.form-ref { text-align: right; font-style: italic; font-size: 11pt; }
h1 { text-align: center; font-size: 14pt; margin: 0.6em 0; }
h2 { font-size: 13pt; margin: 1em 0 0.3em; }
p { margin: 0.25em 0; text-align: justify; }
.field .label, .recipients .label, .subject .label { font-weight: bold; }
ul { margin: 0.2em 0 0.4em 1.5em; padding: 0; }
.blank { background: #fff3b0; font-style: italic; }
table.grid { width: 100%; border-collapse: collapse; font-size: 11pt; margin: 0.4em 0; }
table.grid th, table.grid td { border: 1px solid #000; padding: 2px 4px; vertical-align: top;
  text-align: left; word-break: break-word; }
pre { white-space: pre-wrap; word-break: break-all; font-size: 9pt; border: 1px solid #999;
  padding: 4px; }
.signature { width: 50%; margin: 2em 0 0 auto; text-align: center; }
.signature .strong { font-weight: bold; text-transform: uppercase; }
.signature .hint { font-style: italic; }
.signature .name { margin-top: 3em; font-weight: bold; }
.footer { margin-top: 2em; font-size: 9pt; color: #444; font-style: italic; }
@media print {
  html { background: none; }
  .page { box-shadow: none; margin: 0; padding: 0; max-width: none; }
  .subject { margin: 0 0 1em; }
  .blank { background: none; border-bottom: 1px dotted #000; }
  h2, .field, table.grid tr, .signature { break-inside: avoid; }
  h2 { break-after: avoid; }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Doc {
        Doc {
            subject: "[TBSC] a <b>".into(),
            issuer: vec!["Sở".into()],
            motto: vec!["CỘNG HÒA".into()],
            form_ref: "Mẫu 03".into(),
            title: "BÁO CÁO".into(),
            recipients: vec![],
            blocks: vec![
                Block::Field("Tên".into(), Some("x|y*".into())),
                Block::Field("Trống".into(), None),
                Block::List("Danh sách".into(), vec![]),
                Block::Code(vec!["<script>alert(1)</script>".into()]),
            ],
            signature: ("NGƯỜI BÁO CÁO".into(), None),
            footer: "Ward".into(),
        }
    }

    #[test]
    fn blanks_and_escaping_in_both_renderings() {
        let d = doc();
        let m = d.to_markdown();
        assert!(m.contains("**Tên:** x\\|y\\*"), "{m}");
        assert!(m.contains(&format!("**Trống:** {BLANK}")));
        assert!(m.contains(&format!("**Danh sách:** {BLANK}")));
        let h = d.to_html();
        assert!(!h.contains("<script>"));
        assert!(h.contains("&lt;script&gt;"));
        assert!(h.contains("<title>[TBSC] a &lt;b&gt;</title>"));
        assert_eq!(h.matches("class=\"blank\"").count(), 4, "{h}");
        assert!(h.contains("@page { size: A4;"));
    }
}
