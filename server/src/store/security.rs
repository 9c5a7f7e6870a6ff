//! Users, API tokens, revocation, agency scopes and the audit log.

use sqlx::Row;

use super::{Result, Store, StoreError, now};
use crate::model::{AuditEntry, TokenInfo, UserInfo};

/// The agencies a caller may see: `None` is all of them.
pub type Scope<'a> = Option<&'a [String]>;

/// A scope as one SQL parameter: a JSON array for `json_each`, or NULL.
pub(crate) fn scope_param(scope: Scope<'_>) -> Option<String> {
    scope.map(|agencies| serde_json::to_string(agencies).unwrap_or_else(|_| "[]".into()))
}

/// What an audit entry records.
#[derive(Debug, Clone)]
pub struct AuditRecord<'a> {
    /// Who.
    pub actor: &'a str,
    /// What.
    pub action: &'a str,
    /// On what.
    pub target: &'a str,
    /// `ok` or `denied`.
    pub outcome: &'a str,
    /// The HTTP status answered.
    pub status: u16,
    /// The client's address.
    pub peer: &'a str,
    /// More.
    pub detail: &'a str,
}

impl Store {
    /// Adds a user with a first API token, in one transaction.
    /// `Conflict` when the name is taken. Returns (user id, token id).
    #[allow(clippy::too_many_arguments)]
    pub async fn add_user(
        &self,
        name: &str,
        role: &str,
        agencies: &[String],
        password_hash: Option<&str>,
        created_by: &str,
        token_hash: &str,
    ) -> Result<(i64, i64)> {
        let mut tx = self.write.begin().await?;
        let now = now();
        let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!("user '{name}' exists")));
        }
        let user_id: i64 = sqlx::query_scalar(
            "INSERT INTO users (name, role, password_hash, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name)
        .bind(role)
        .bind(password_hash)
        .bind(created_by)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?;
        for agency in agencies {
            sqlx::query("INSERT INTO user_agencies (user_id, agency) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(user_id)
                .bind(agency)
                .execute(&mut *tx)
                .await?;
        }
        let token_id: i64 = sqlx::query_scalar(
            "INSERT INTO api_tokens (name, role, token_hash, created_at, user_id)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name)
        .bind(role)
        .bind(token_hash)
        .bind(&now)
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((user_id, token_id))
    }

    /// A new API token for an existing user. Returns (token id, role, agencies).
    pub async fn add_user_token(
        &self,
        name: &str,
        token_hash: &str,
    ) -> Result<(i64, String, Vec<String>)> {
        let row = sqlx::query("SELECT id, role FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.write)
            .await?
            .ok_or(StoreError::NotFound)?;
        let (user_id, role): (i64, String) = (row.get(0), row.get(1));
        let token_id: i64 = sqlx::query_scalar(
            "INSERT INTO api_tokens (name, role, token_hash, created_at, user_id)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name)
        .bind(&role)
        .bind(token_hash)
        .bind(now())
        .bind(user_id)
        .fetch_one(&self.write)
        .await?;
        let agencies = self.user_agencies(user_id).await?;
        Ok((token_id, role, agencies))
    }

    pub(super) async fn user_agencies(&self, user_id: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT agency FROM user_agencies WHERE user_id = $1 ORDER BY agency",
        )
        .bind(user_id)
        .fetch_all(&self.write)
        .await?)
    }

    /// A user's argon2 password hash, if any.
    pub async fn password_hash(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT password_hash FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.read)
                .await?
                .flatten(),
        )
    }

    /// All users.
    pub async fn users(&self) -> Result<Vec<UserInfo>> {
        let rows = sqlx::query(
            "SELECT u.id, u.name, u.role, CASE WHEN u.password_hash IS NULL THEN 0 ELSE 1 END, u.created_by, u.created_at,
                    (SELECT json_group_array(agency) FROM
                        (SELECT agency FROM user_agencies a WHERE a.user_id = u.id ORDER BY agency) AS s)
             FROM users u ORDER BY u.name",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UserInfo {
                    name: r.get(1),
                    role: r.get(2),
                    has_password: r.get::<i64, _>(3) != 0,
                    created_by: r.get(4),
                    created_at: r.get(5),
                    agencies: super::from_json(r.get(6))?,
                })
            })
            .collect()
    }

    /// All API tokens (never their hashes).
    pub async fn api_tokens(&self) -> Result<Vec<TokenInfo>> {
        let rows = sqlx::query(
            "SELECT t.id, COALESCE(u.name, t.name), COALESCE(u.role, t.role), t.created_at, t.revoked_at
             FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id ORDER BY t.id",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| TokenInfo {
                id: r.get(0),
                user: r.get(1),
                role: r.get(2),
                created_at: r.get(3),
                revoked_at: r.get(4),
            })
            .collect())
    }

    /// Revokes an API token. `NotFound` when there is no such live token.
    pub async fn revoke_api_token(&self, id: i64) -> Result<()> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(id)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Number of live admin tokens other than `except`.
    pub async fn other_admin_tokens(&self, except: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id
             WHERE t.revoked_at IS NULL AND COALESCE(u.role, t.role) = 'admin' AND t.id <> $1",
        )
        .bind(except)
        .fetch_one(&self.write)
        .await?)
    }

    /// Revokes an agent within `scope`: its credential stops working.
    /// `NotFound` when there is no such agent (in scope) or it is revoked.
    pub async fn revoke_agent(&self, id: &str, scope: Scope<'_>) -> Result<()> {
        let done = sqlx::query(
            "UPDATE agents SET revoked_at = $1
             WHERE id = $2 AND revoked_at IS NULL
               AND ($3 IS NULL OR agency IN (SELECT value FROM json_each($3)))",
        )
        .bind(now())
        .bind(id)
        .bind(scope_param(scope))
        .execute(&self.write)
        .await?;
        self.credentials.forget_all();
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Who a credential hash belongs to, revoked or not, for the audit log
    /// of denied attempts: a user name, `agent:ID`, or `None`.
    pub async fn credential_owner(&self, hash: &str) -> Result<Option<String>> {
        let user: Option<String> = sqlx::query_scalar(
            "SELECT COALESCE(u.name, t.name) || CASE WHEN t.revoked_at IS NULL THEN '' ELSE ' (revoked)' END
             FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.read)
        .await?;
        if user.is_some() {
            return Ok(user);
        }
        let agent: Option<String> =
            sqlx::query_scalar("SELECT 'agent:' || id FROM agents WHERE token_hash = $1")
                .bind(hash)
                .fetch_optional(&self.read)
                .await?;
        if agent.is_some() {
            return Ok(agent);
        }
        Ok(
            sqlx::query_scalar("SELECT 'province:' || name FROM provinces WHERE token_hash = $1")
                .bind(hash)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    /// The agency of an incident (`NotFound` when there is none).
    pub async fn incident_agency(&self, id: i64) -> Result<String> {
        sqlx::query_scalar("SELECT agency FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// The agency of an alert's incident (`NotFound` when there is none).
    pub async fn alert_agency(&self, alert_id: &str) -> Result<String> {
        sqlx::query_scalar(
            "SELECT i.agency FROM alerts a JOIN incidents i ON i.id = a.incident_id WHERE a.id = $1",
        )
        .bind(alert_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or(StoreError::NotFound)
    }

    // ---- audit ------------------------------------------------------------

    /// Appends to the audit log (the only write to it there is).
    pub async fn audit(&self, rec: &AuditRecord<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit (at, actor, action, target, outcome, status, peer, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(now())
        .bind(rec.actor)
        .bind(rec.action)
        .bind(rec.target)
        .bind(rec.outcome)
        .bind(i64::from(rec.status))
        .bind(rec.peer)
        .bind(rec.detail)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Audit entries after id `after`, oldest first, at most `limit`.
    pub async fn audit_entries(&self, after: i64, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, outcome, status, peer, detail
             FROM audit WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                id: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                action: r.get(3),
                target: r.get(4),
                outcome: r.get(5),
                status: u16::try_from(r.get::<i64, _>(6)).unwrap_or(0),
                peer: r.get(7),
                detail: r.get(8),
            })
            .collect())
    }
}
