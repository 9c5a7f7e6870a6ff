//! Gate atoms for the `re` and numeric (`gt`, `gte`, `lt`, `lte`)
//! modifiers, which the literal atoms of the gate cannot express: a regex
//! item needs the literals every match contains (see [`regex_literals`]),
//! and a numeric item is decided exactly, the way the engine decides it
//! (the value parsed with `str::parse::<f64>`, compared with each bound,
//! any bound enough; a value that does not parse, or a missing field,
//! fails).

use rsigma_parser::{DetectionItem, Modifier, SigmaValue};

use super::{Builder, Compare, Cond, Verdict, and, or, regex_literals};

/// A numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// A numeric item: the field's value compared with any of the bounds.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct NumTest {
    op: NumOp,
    bounds: Vec<f64>,
}

impl NumTest {
    /// The engine's verdict on `value`: certain either way.
    pub(super) fn verdict(&self, value: &str) -> Verdict {
        let Ok(v) = value.parse::<f64>() else {
            return Verdict::No;
        };
        let holds = |b: &f64| match self.op {
            NumOp::Gt => v > *b,
            NumOp::Gte => v >= *b,
            NumOp::Lt => v < *b,
            NumOp::Lte => v <= *b,
        };
        if self.bounds.iter().any(holds) {
            Verdict::Yes
        } else {
            Verdict::No
        }
    }
}

/// A rule value as the engine reads a number from it; `None` when it
/// would not compile.
fn bound(v: &SigmaValue) -> Option<f64> {
    match v {
        SigmaValue::Integer(n) => Some(*n as f64),
        SigmaValue::Float(n) => Some(*n),
        SigmaValue::String(s) => s
            .as_plain()
            .unwrap_or_else(|| s.original.clone())
            .parse()
            .ok(),
        _ => None,
    }
}

/// A rule value as the engine reads a pattern from it.
fn pattern(v: &SigmaValue) -> Option<String> {
    match v {
        SigmaValue::String(s) => Some(s.as_plain().unwrap_or_else(|| s.original.clone())),
        SigmaValue::Integer(n) => Some(n.to_string()),
        SigmaValue::Float(n) => Some(n.to_string()),
        SigmaValue::Bool(b) => Some(b.to_string()),
        SigmaValue::Null => None,
    }
}

impl Builder {
    /// The condition of a `re` or numeric item on the field `name`; `None`
    /// for every other item (and for combinations with other modifiers,
    /// left to the literal atoms' reading).
    pub(super) fn operator_item(&mut self, name: &str, item: &DetectionItem) -> Option<Cond> {
        let mods = &item.field.modifiers;
        if item.values.is_empty() {
            return None;
        }
        let op = match mods.as_slice() {
            [Modifier::Gt] => Some(NumOp::Gt),
            [Modifier::Gte] => Some(NumOp::Gte),
            [Modifier::Lt] => Some(NumOp::Lt),
            [Modifier::Lte] => Some(NumOp::Lte),
            _ => None,
        };
        if let Some(op) = op {
            let bounds = item.values.iter().map(bound).collect::<Option<Vec<_>>>()?;
            let slot = self.slot(name);
            self.nums.push(NumTest { op, bounds });
            return Some(Cond::Num {
                slot,
                test: self.nums.len() - 1,
            });
        }
        let flags_only = mods.contains(&Modifier::Re)
            && mods.iter().all(|m| {
                matches!(
                    m,
                    Modifier::Re | Modifier::IgnoreCase | Modifier::Multiline | Modifier::DotAll
                )
            });
        if !flags_only {
            return None;
        }
        // The pattern as the engine builds it: flags inline, then the value.
        let mut flags = String::new();
        for (m, f) in [
            (Modifier::IgnoreCase, 'i'),
            (Modifier::Multiline, 'm'),
            (Modifier::DotAll, 's'),
        ] {
            if mods.contains(&m) {
                flags.push(f);
            }
        }
        let slot = self.slot(name);
        let mut parts = Vec::new();
        for v in &item.values {
            let p = pattern(v)?;
            let full = if flags.is_empty() {
                p
            } else {
                format!("(?{flags}){p}")
            };
            let sets = regex_literals::required(&full)?;
            let atoms: Vec<Cond> = sets
                .into_iter()
                .map(|needles| Cond::Any {
                    slot,
                    set: self.set(Some(slot), needles, Compare::Contains, false),
                })
                .collect();
            // The field must be there even when no literal is known (an
            // atom already needs it); never certain (the sets are inexact).
            parts.push(if atoms.is_empty() {
                Cond::Present(slot)
            } else {
                and(atoms)
            });
        }
        Some(or(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Gate;
    use super::*;
    use crate::event::{Event, EventKind};

    fn verdicts(g: &Gate, fields: &[(&'static str, &str)]) -> Vec<(usize, Verdict)> {
        let mut e = Event::new(chrono::Utc::now(), "h", "o");
        e.kind = EventKind::Network;
        for (k, v) in fields {
            e.set(*k, *v);
        }
        let mut out = Vec::new();
        g.candidates(&e, &mut g.scratch(), &mut out);
        out
    }

    #[test]
    fn regex_and_numeric_items_turn_events_away() {
        let rules = rsigma_parser::parse_sigma_yaml(
            r#"
title: shell
logsource: {product: ward}
detection:
    sel:
        event_type: http_request
        uri_decoded|re: '(?i)[?&](cmd|x)=[^&]*(whoami|/bin/(ba)?sh)'
    condition: sel
---
title: label
logsource: {product: ward}
detection:
    sel:
        event_type: dns_query
        query_longest_label|gte: 40
        query_entropy|gt: '3.5'
    condition: sel
---
title: flags
logsource: {product: ward}
detection:
    sel:
        uri|re|i: 'ADMIN'
    condition: sel
"#,
        )
        .expect("parses")
        .rules;
        let g = Gate::new(&rules, |_| None);
        let http = |uri| verdicts(&g, &[("event_type", "http_request"), ("uri_decoded", uri)]);
        assert_eq!(http("/index.html?page=2"), []);
        assert_eq!(http("/a?CMD=/bin/bash -i"), [(0, Verdict::Maybe)]);
        // Both literals, but in the wrong order: the engine decides.
        assert_eq!(http("/bin/sh?x="), [(0, Verdict::Maybe)]);
        assert_eq!(http("/a?cmd=ls"), []);
        let dns = |label, entropy| {
            verdicts(
                &g,
                &[
                    ("event_type", "dns_query"),
                    ("query_longest_label", label),
                    ("query_entropy", entropy),
                ],
            )
        };
        assert_eq!(dns("40", "3.6"), [(1, Verdict::Yes)]);
        assert_eq!(dns("39", "3.6"), []);
        assert_eq!(dns("40", "3.5"), []);
        assert_eq!(dns("many", "3.6"), []);
        assert_eq!(verdicts(&g, &[("uri", "/x/admin/")]), [(2, Verdict::Maybe)]);
        assert_eq!(verdicts(&g, &[("uri", "/x/")]), []);
    }

    #[test]
    fn numbers_are_read_as_the_engine_reads_them() {
        let t = NumTest {
            op: NumOp::Gte,
            bounds: vec![40.0],
        };
        assert_eq!(t.verdict("40"), Verdict::Yes);
        assert_eq!(t.verdict("40.5"), Verdict::Yes);
        assert_eq!(t.verdict("39"), Verdict::No);
        assert_eq!(t.verdict("x"), Verdict::No);
        assert_eq!(t.verdict(""), Verdict::No);
        assert_eq!(t.verdict("inf"), Verdict::Yes);
        let t = NumTest {
            op: NumOp::Lt,
            bounds: vec![1.0, 5.0],
        };
        assert_eq!(t.verdict("3"), Verdict::Yes);
        assert_eq!(t.verdict("5"), Verdict::No);
        assert_eq!(t.verdict("NaN"), Verdict::No);
    }
}
