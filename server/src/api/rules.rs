//! The served rule bundle: `GET /rules` (what agents are handed, every rule
//! with how often it fired in real incidents) and `POST /rules/reload`
//! (admins: read the rules directory again and re-sign; audited, failures
//! included).

use std::collections::HashMap;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use ward_agent::engine::RulePack;

use super::{ApiError, AppState, Peer, User};
use crate::bundles::Bundles;
use crate::model::{RuleInfo, RulesResponse};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/rules", get(list))
        .route("/rules/reload", post(reload))
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

/// The served bundle and its rules with the hits `user` may see.
async fn describe(
    state: &AppState,
    user: &User,
    b: &Bundles,
    previous: Option<String>,
) -> Result<RulesResponse, ApiError> {
    let hits: HashMap<String, (i64, Option<String>)> = state
        .store
        .rule_hits(user.0.scope())
        .await?
        .into_iter()
        .map(|h| (h.rule_id, (h.alerts, h.last_hit)))
        .collect();
    let cur = b.current();
    let rules = cur
        .catalogue
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
    Ok(RulesResponse {
        version: Some(cur.version.clone()),
        signed_at: Some(cur.signed_at.clone()),
        rule_files: cur.rules,
        dir: b.rules_dir().map(|d| d.display().to_string()),
        last_error: b.last_error(),
        previous,
        rules,
    })
}

async fn list(State(state): State<AppState>, user: User) -> Result<Json<RulesResponse>, ApiError> {
    user.require(&["admin", "responder", "viewer"])?;
    let Some(bundles) = state.bundle.clone() else {
        return Ok(Json(RulesResponse {
            version: None,
            signed_at: None,
            rule_files: 0,
            dir: None,
            last_error: None,
            previous: None,
            rules: Vec::new(),
        }));
    };
    Ok(Json(describe(&state, &user, &bundles, None).await?))
}

async fn reload(
    State(state): State<AppState>,
    peer: Peer,
    user: User,
) -> Result<Json<RulesResponse>, ApiError> {
    user.require(&["admin"])?;
    let bundles = state
        .bundle
        .clone()
        .ok_or_else(|| ApiError::NotFound("this coordinator serves no rule bundle".into()))?;
    let b = bundles.clone();
    let outcome = tokio::task::spawn_blocking(move || b.reload())
        .await
        .unwrap_or_else(|e| Err(format!("reloading the rules failed: {e}")));
    crate::bundles::audit_reload(&state.store, &user.0.name, &peer.0, &outcome).await;
    match outcome {
        Ok(r) => Ok(Json(
            describe(&state, &user, &bundles, Some(r.previous)).await?,
        )),
        Err(e) => Err(ApiError::Unprocessable(format!(
            "the rules do not load; still serving the previous bundle: {e}"
        ))),
    }
}
