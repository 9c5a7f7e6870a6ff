//! Agency profiles: who an agency is, who to call and what its system is,
//! for the regulatory reports (`report`). Types shared by the API and the
//! CLI, and the validation `PUT /api/v1/agencies/{name}/profile` applies.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Longest agency name (the key agents and incidents carry), in bytes.
pub const MAX_AGENCY_NAME: usize = 200;
/// Longest free-text field of a profile, in bytes.
pub const MAX_FIELD: usize = 500;
/// Most public IPs/domains or report recipients in one profile.
pub const MAX_LIST: usize = 100;

/// What an admin sets about an agency (body of `PUT .../profile`). Every
/// field is optional: a report leaves what is missing blank for a person.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFields {
    /// Official name of the unit operating the system (Tên đơn vị).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    /// The governing body (Cơ quan chủ quản).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governing_body: Option<String>,
    /// Postal address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Contact person's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_name: Option<String>,
    /// Contact person's position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_role: Option<String>,
    /// Contact person's phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_phone: Option<String>,
    /// Contact person's e-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
    /// The information system the reports are about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_name: Option<String>,
    /// Its security level, 1 to 5 (Decree 85/2016/NĐ-CP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_level: Option<u8>,
    /// Its public IP addresses and domain names.
    #[serde(default)]
    pub public_assets: Vec<String>,
    /// Who reports go to (e-mail addresses: the governing body, the
    /// provincial response unit, the national coordinator).
    #[serde(default)]
    pub report_to: Vec<String>,
}

/// A stored agency profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgencyProfile {
    /// The agency's name, as agents and incidents carry it.
    pub agency: String,
    /// What is known about it.
    #[serde(flatten)]
    pub fields: ProfileFields,
    /// Who set it last.
    pub updated_by: String,
    /// When (RFC 3339).
    pub updated_at: String,
}

/// An agency in `GET /api/v1/agencies`: seen in agents or incidents, or
/// given a profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgencyInfo {
    /// Its name.
    pub name: String,
    /// Enrolled agents.
    pub agents: i64,
    /// Real (not drill) incidents.
    pub incidents: i64,
    /// Of which open.
    pub open_incidents: i64,
    /// Its profile, if an admin set one.
    pub profile: Option<AgencyProfile>,
}

/// Checks an agency name taken from a URL or the command line.
pub fn check_agency_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.len() > MAX_AGENCY_NAME {
        return Err(format!(
            "an agency name is 1 to {MAX_AGENCY_NAME} bytes, not blank"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("an agency name has no control characters".into());
    }
    Ok(())
}

impl ProfileFields {
    /// Trims every field, turns empty strings into `None` and drops empty
    /// list items, then checks the result. Every problem is reported, one
    /// per line, naming the field.
    pub fn normalized(mut self) -> Result<Self, String> {
        let mut problems = Vec::new();
        for (name, value) in [
            ("full_name", &mut self.full_name),
            ("governing_body", &mut self.governing_body),
            ("address", &mut self.address),
            ("contact_name", &mut self.contact_name),
            ("contact_role", &mut self.contact_role),
            ("contact_phone", &mut self.contact_phone),
            ("contact_email", &mut self.contact_email),
            ("system_name", &mut self.system_name),
        ] {
            *value = value
                .take()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty());
            if let Some(v) = value.as_deref() {
                if v.len() > MAX_FIELD {
                    problems.push(format!("{name}: longer than {MAX_FIELD} bytes"));
                }
                if v.chars().any(|c| c.is_control() && c != '\n') {
                    problems.push(format!("{name}: contains control characters"));
                }
            }
        }
        if let Some(level) = self.security_level
            && !(1..=5).contains(&level)
        {
            problems.push(format!(
                "security_level: {level} is not a level of Decree 85/2016 (1 to 5)"
            ));
        }
        if let Some(phone) = self.contact_phone.as_deref()
            && let Err(e) = check_phone(phone)
        {
            problems.push(format!("contact_phone: {e}"));
        }
        if let Some(email) = self.contact_email.as_deref()
            && let Err(e) = check_email(email)
        {
            problems.push(format!("contact_email: {e}"));
        }
        for (name, list, check) in [
            (
                "public_assets",
                &mut self.public_assets,
                check_asset as fn(&str) -> Result<(), String>,
            ),
            ("report_to", &mut self.report_to, check_email),
        ] {
            let mut seen = Vec::new();
            for item in list.drain(..) {
                let item = item.trim().to_string();
                if item.is_empty() || seen.contains(&item) {
                    continue;
                }
                if let Err(e) = check(&item) {
                    problems.push(format!("{name}: {e}"));
                }
                seen.push(item);
            }
            if seen.len() > MAX_LIST {
                problems.push(format!("{name}: more than {MAX_LIST} entries"));
            }
            *list = seen;
        }
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(problems.join("; "))
        }
    }
}

/// A phone number: digits with `+`, spaces, dots, dashes and parentheses;
/// 6 to 15 digits.
fn check_phone(phone: &str) -> Result<(), String> {
    let ok_chars = phone
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '.' | '-' | '(' | ')'));
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    if ok_chars && (6..=15).contains(&digits) {
        Ok(())
    } else {
        Err(format!(
            "'{phone}' is not a phone number (6 to 15 digits, with + . - ( ) or spaces)"
        ))
    }
}

/// An e-mail address: `local@domain` with a dotted domain, no spaces.
pub fn check_email(email: &str) -> Result<(), String> {
    let bad = || format!("'{email}' is not an e-mail address (name@example.gov.vn)");
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || local.len() > 64
        || local.chars().any(|c| c.is_whitespace() || c.is_control())
        || domain.contains('@')
        || !is_domain(domain)
    {
        return Err(bad());
    }
    Ok(())
}

/// A public IP address or a domain name.
fn check_asset(asset: &str) -> Result<(), String> {
    if asset.parse::<IpAddr>().is_ok() || is_domain(asset) {
        Ok(())
    } else {
        Err(format!(
            "'{asset}' is neither an IP address nor a domain name"
        ))
    }
}

/// A DNS name of at least two labels: letters (any script, for IDNs),
/// digits and hyphens, labels of 1 to 63 bytes, at most 253 bytes.
pub fn is_domain(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    let labels: Vec<&str> = s.split('.').collect();
    s.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && !labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_reports_every_problem() {
        let f = ProfileFields {
            full_name: Some("  Sở Y tế  ".into()),
            address: Some("   ".into()),
            security_level: Some(7),
            contact_phone: Some("call me".into()),
            contact_email: Some("nobody".into()),
            public_assets: vec![
                "203.0.113.5".into(),
                "portal.example.gov.vn".into(),
                "".into(),
            ],
            report_to: vec!["ir@example.gov.vn".into(), "x@".into()],
            ..Default::default()
        };
        let err = f.normalized().unwrap_err();
        for needle in [
            "security_level",
            "contact_phone",
            "contact_email",
            "report_to: 'x@'",
        ] {
            assert!(err.contains(needle), "{needle} missing in {err}");
        }
        let ok = ProfileFields {
            full_name: Some("  Sở Y tế  ".into()),
            address: Some("   ".into()),
            security_level: Some(3),
            contact_phone: Some("+84 (24) 3822-1234".into()),
            public_assets: vec!["2001:db8::1".into(), "cổngthôngtin.vn".into(), "".into()],
            ..Default::default()
        }
        .normalized()
        .unwrap();
        assert_eq!(ok.full_name.as_deref(), Some("Sở Y tế"));
        assert_eq!(ok.address, None);
        assert_eq!(ok.public_assets.len(), 2);
    }

    #[test]
    fn domains_and_addresses() {
        assert!(is_domain("example.gov.vn"));
        assert!(!is_domain("localhost"));
        assert!(!is_domain("1.2.3.4"));
        assert!(!is_domain("-a.vn"));
        assert!(check_asset("10.0.0.300").is_err());
        assert!(check_email("a b@x.vn").is_err());
        assert!(check_agency_name("").is_err());
        assert!(check_agency_name("Sở TT&TT").is_ok());
    }
}
