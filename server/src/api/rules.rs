//! `GET /rules`: the rules the coordinator serves to agents, with how often
//! each fired in real incidents.

use std::collections::HashMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use ward_agent::engine::RulePack;

use super::{ApiError, AppState, User};
use crate::model::{RuleInfo, RulesResponse};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/rules", get(list))
}

/// Every detection and correlation rule of `pack`, without hits, by id.
/// A rule without an id is named by its title, as its alerts are.
pub fn catalogue(pack: &RulePack) -> Vec<RuleInfo> {
    let mut out = Vec::new();
    for (file, c) in &pack.collections {
        let file = file.strip_prefix("shipped:").unwrap_or(file).to_string();
        let info =
            |id: &Option<String>, title: &str, level: Option<&str>, tags: &[String], kind| {
                RuleInfo {
                    id: id.clone().unwrap_or_else(|| title.to_string()),
                    title: title.to_string(),
                    level: level.map(str::to_string),
                    tags: tags.to_vec(),
                    file: file.clone(),
                    kind: String::from(kind),
                    hits: 0,
                    last_hit: None,
                }
            };
        for r in &c.rules {
            let level = r.level.as_ref().map(|l| l.as_str());
            out.push(info(&r.id, &r.title, level, &r.tags, "detection"));
        }
        for r in &c.correlations {
            let level = r.level.as_ref().map(|l| l.as_str());
            out.push(info(&r.id, &r.title, level, &r.tags, "correlation"));
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

async fn list(State(state): State<AppState>, user: User) -> Result<Json<RulesResponse>, ApiError> {
    user.require(&["admin", "responder", "viewer"])?;
    let hits: HashMap<String, (i64, Option<String>)> = state
        .store
        .rule_hits(user.0.scope())
        .await?
        .into_iter()
        .map(|h| (h.rule_id, (h.alerts, h.last_hit)))
        .collect();
    let Some(bundle) = state.bundle.as_ref() else {
        return Ok(Json(RulesResponse {
            bundle_version: None,
            rules: Vec::new(),
        }));
    };
    let rules = bundle
        .rules
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if let Some((n, last)) = hits.get(&r.id) {
                r.hits = *n;
                r.last_hit = last.clone();
            }
            r
        })
        .collect();
    Ok(Json(RulesResponse {
        bundle_version: Some(bundle.version.clone()),
        rules,
    }))
}
