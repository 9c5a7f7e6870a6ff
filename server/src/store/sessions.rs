//! Web sessions (API tokens with an expiry, issued at login) and rule hit
//! counts for the rules page.

use sqlx::Row;

use super::security::scope_param;
use super::{Result, Scope, Store, now};

/// A user who may log in: what a session token is issued for.
#[derive(Debug, Clone)]
pub struct LoginUser {
    /// The user's id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// The argon2id PHC string (users without a password cannot log in).
    pub password_hash: Option<String>,
}

/// Alerts of one rule in real incidents.
#[derive(Debug, Clone)]
pub struct RuleHits {
    /// The rule's id (as alerts carry it).
    pub rule_id: String,
    /// Alerts.
    pub alerts: i64,
    /// Event time of the latest (RFC 3339).
    pub last_hit: Option<String>,
}

impl Store {
    /// The user named `name`, for a login.
    pub async fn login_user(&self, name: &str) -> Result<Option<LoginUser>> {
        let row = sqlx::query("SELECT id, name, role, password_hash FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| LoginUser {
            id: r.get(0),
            name: r.get(1),
            role: r.get(2),
            password_hash: r.get(3),
        }))
    }

    /// Stores a session token (its hash) for `user`, valid until
    /// `expires_at` (RFC 3339). Returns the token's id.
    pub async fn add_session(
        &self,
        user: &LoginUser,
        token_hash: &str,
        expires_at: &str,
    ) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO api_tokens (name, role, token_hash, created_at, user_id, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&user.name)
        .bind(&user.role)
        .bind(token_hash)
        .bind(now())
        .bind(user.id)
        .bind(expires_at)
        .fetch_one(&self.write)
        .await?)
    }

    /// When API token `token_id` expires (`None`: never, or no such token).
    pub async fn token_expiry(&self, token_id: i64) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT expires_at FROM api_tokens WHERE id = $1")
                .bind(token_id)
                .fetch_optional(&self.read)
                .await?
                .flatten(),
        )
    }

    /// Alerts per rule in real (not drill) incidents within `scope`, with
    /// the latest alert's time.
    pub async fn rule_hits(&self, scope: Scope<'_>) -> Result<Vec<RuleHits>> {
        let rows = sqlx::query(
            "SELECT a.rule_id, COUNT(*), MAX(a.time)
             FROM alerts a JOIN incidents i ON i.id = a.incident_id
             WHERE i.drill = 0
               AND ($1 IS NULL OR i.agency IN (SELECT value FROM json_each($1)))
             GROUP BY a.rule_id",
        )
        .bind(scope_param(scope))
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| RuleHits {
                rule_id: r.get(0),
                alerts: r.get(1),
                last_hit: r.get(2),
            })
            .collect())
    }
}
