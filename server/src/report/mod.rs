//! Regulatory reports and exports of one incident: forms 03 and 04 of
//! Circular 20/2017/TT-BTTTT (Markdown, printable HTML, or that page as
//! PDF through a headless Chromium), one JSON
//! document, and a STIX 2.1 bundle. Built from the incident's detail, the
//! agency's profile and the responders' timeline; knows no HTTP and no SQL.
//! `README.md` beside this file maps the forms' fields to their sources.

pub mod circular20;
pub mod doc;
pub mod facts;
pub mod pdf;
pub mod stix;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::agency::AgencyProfile;
use crate::model::IncidentDetail;
pub use facts::Facts;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportForm {
    /// Mẫu 03: the initial incident report.
    Initial,
    /// Mẫu 04: the end-of-response report.
    Final,
    /// Everything as one JSON document.
    Json,
    /// A STIX 2.1 bundle.
    Stix,
}

impl std::str::FromStr for ReportForm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "03" | "3" => Ok(ReportForm::Initial),
            "04" | "4" => Ok(ReportForm::Final),
            "json" => Ok(ReportForm::Json),
            "stix" => Ok(ReportForm::Stix),
            other => Err(format!(
                "unknown report form '{other}' (03, 04, json or stix)"
            )),
        }
    }
}

impl ReportForm {
    /// The name used in URLs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportForm::Initial => "03",
            ReportForm::Final => "04",
            ReportForm::Json => "json",
            ReportForm::Stix => "stix",
        }
    }
}

/// How forms 03 and 04 are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// Markdown.
    Markdown,
    /// A self-contained HTML page that prints on A4.
    Html,
}

impl std::str::FromStr for ReportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "md" | "markdown" => Ok(ReportFormat::Markdown),
            "html" => Ok(ReportFormat::Html),
            other => Err(format!("unknown report format '{other}' (md or html)")),
        }
    }
}

/// What a report is made from.
pub struct ReportInput<'a> {
    /// The incident with its alerts and timeline.
    pub detail: &'a IncidentDetail,
    /// The agency's profile, if an admin set one.
    pub profile: Option<&'a AgencyProfile>,
    /// The coordinator's base URL (names it, and seeds STIX ids).
    pub coordinator: &'a str,
    /// When the report is made (dates forms 03/04 and the JSON document;
    /// never in the STIX bundle, which stays the same on re-export).
    pub generated_at: DateTime<Utc>,
}

/// A rendered report.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Its media type.
    pub content_type: &'static str,
    /// A file name for it (`ward-incident-12-mau03.html`).
    pub filename: String,
    /// The text.
    pub body: String,
}

/// The `json` form: the incident and everything the forms are made from.
#[derive(Debug, Serialize)]
pub struct IncidentReport<'a> {
    /// Format marker and version of this document.
    pub format: &'static str,
    /// When it was made (RFC 3339).
    pub generated_at: String,
    /// The coordinator's base URL.
    pub coordinator: &'a str,
    /// E-mail subjects of form 03 and 04.
    pub subjects: Subjects,
    /// The incident, its alerts (latest 100) and timeline.
    pub incident: &'a IncidentDetail,
    /// The agency's profile (`null` when none is set).
    pub agency_profile: Option<&'a AgencyProfile>,
    /// What the forms derive: indicators, techniques, times, notes.
    pub facts: &'a Facts,
}

/// The e-mail subjects of the two forms.
#[derive(Debug, Serialize)]
pub struct Subjects {
    /// Form 03.
    pub initial: String,
    /// Form 04.
    #[serde(rename = "final")]
    pub final_report: String,
}

/// Renders `form` for `input`. `format` applies to forms 03 and 04 only.
pub fn render(form: ReportForm, format: ReportFormat, input: &ReportInput<'_>) -> Rendered {
    let facts = Facts::of(input.detail, input.profile);
    let id = input.detail.incident.id;
    let doc_render = |doc: doc::Doc, name: &str| match format {
        ReportFormat::Markdown => Rendered {
            content_type: "text/markdown; charset=utf-8",
            filename: format!("ward-incident-{id}-{name}.md"),
            body: doc.to_markdown(),
        },
        ReportFormat::Html => Rendered {
            content_type: "text/html; charset=utf-8",
            filename: format!("ward-incident-{id}-{name}.html"),
            body: doc.to_html(),
        },
    };
    match form {
        ReportForm::Initial => doc_render(circular20::initial(input, &facts), "mau03"),
        ReportForm::Final => doc_render(circular20::final_report(input, &facts), "mau04"),
        ReportForm::Json => {
            let doc = IncidentReport {
                format: "ward-incident-report/1",
                generated_at: crate::store::ts(input.generated_at),
                coordinator: input.coordinator,
                subjects: Subjects {
                    initial: circular20::subject(circular20::Form::Initial, input),
                    final_report: circular20::subject(circular20::Form::Final, input),
                },
                incident: input.detail,
                agency_profile: input.profile,
                facts: &facts,
            };
            Rendered {
                content_type: "application/json",
                filename: format!("ward-incident-{id}.json"),
                body: serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into()),
            }
        }
        ReportForm::Stix => Rendered {
            content_type: "application/stix+json;version=2.1",
            filename: format!("ward-incident-{id}.stix.json"),
            body: serde_json::to_string_pretty(&stix::bundle(input, &facts))
                .unwrap_or_else(|_| "{}".into()),
        },
    }
}
