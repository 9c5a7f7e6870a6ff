//! Agency profiles (`0008_agency_profiles.sql`) and the list of agencies.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Scope, Store, from_json, now, scope_param};
use crate::agency::{AgencyInfo, AgencyProfile, ProfileFields};

/// The columns `profile_from_row` reads, as a literal for `concat!`
/// (queries are static strings).
macro_rules! profile_columns {
    () => {
        "p.agency, p.full_name, p.governing_body, p.address, p.contact_name,
         p.contact_role, p.contact_phone, p.contact_email, p.system_name, p.security_level,
         p.public_assets, p.report_to, p.updated_by, p.updated_at"
    };
}

/// One profile by agency name.
const PROFILE_BY_AGENCY: &str = concat!(
    "SELECT ",
    profile_columns!(),
    " FROM agency_profiles p WHERE p.agency = $1"
);

/// A profile from the columns of `profile_columns!` starting at `at`.
fn profile_from_row(r: &AnyRow, at: usize) -> Result<AgencyProfile> {
    let level: Option<i64> = r.get(at + 9);
    Ok(AgencyProfile {
        agency: r.get(at),
        fields: ProfileFields {
            full_name: r.get(at + 1),
            governing_body: r.get(at + 2),
            address: r.get(at + 3),
            contact_name: r.get(at + 4),
            contact_role: r.get(at + 5),
            contact_phone: r.get(at + 6),
            contact_email: r.get(at + 7),
            system_name: r.get(at + 8),
            security_level: level.and_then(|l| u8::try_from(l).ok()),
            public_assets: from_json(r.get(at + 10))?,
            report_to: from_json(r.get(at + 11))?,
        },
        updated_by: r.get(at + 12),
        updated_at: r.get(at + 13),
    })
}

impl Store {
    /// The profile of `agency`, if one was set.
    pub async fn agency_profile(&self, agency: &str) -> Result<Option<AgencyProfile>> {
        let row = sqlx::query(PROFILE_BY_AGENCY)
            .bind(agency)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| profile_from_row(&r, 0)).transpose()
    }

    /// Sets (replaces) the profile of `agency`. Returns the stored profile.
    pub async fn put_agency_profile(
        &self,
        agency: &str,
        fields: &ProfileFields,
        actor: &str,
    ) -> Result<AgencyProfile> {
        let to_json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO agency_profiles (agency, full_name, governing_body, address, contact_name,
                 contact_role, contact_phone, contact_email, system_name, security_level,
                 public_assets, report_to, updated_by, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (agency) DO UPDATE SET
                 full_name = excluded.full_name, governing_body = excluded.governing_body,
                 address = excluded.address, contact_name = excluded.contact_name,
                 contact_role = excluded.contact_role, contact_phone = excluded.contact_phone,
                 contact_email = excluded.contact_email, system_name = excluded.system_name,
                 security_level = excluded.security_level, public_assets = excluded.public_assets,
                 report_to = excluded.report_to, updated_by = excluded.updated_by,
                 updated_at = excluded.updated_at",
        )
        .bind(agency)
        .bind(&fields.full_name)
        .bind(&fields.governing_body)
        .bind(&fields.address)
        .bind(&fields.contact_name)
        .bind(&fields.contact_role)
        .bind(&fields.contact_phone)
        .bind(&fields.contact_email)
        .bind(&fields.system_name)
        .bind(fields.security_level.map(i64::from))
        .bind(to_json(&fields.public_assets))
        .bind(to_json(&fields.report_to))
        .bind(actor)
        .bind(now())
        .execute(&self.write)
        .await?;
        // Read back through the writer: the read pool may lag a WAL commit.
        let row = sqlx::query(PROFILE_BY_AGENCY)
            .bind(agency)
            .fetch_one(&self.write)
            .await?;
        profile_from_row(&row, 0)
    }

    /// Agencies in `scope` seen in agents or incidents or given a profile,
    /// by name, with their counts and profiles.
    pub async fn agencies(&self, scope: Scope<'_>) -> Result<Vec<AgencyInfo>> {
        let rows = sqlx::query(concat!(
            "SELECT n.agency,
                    (SELECT COUNT(*) FROM agents a WHERE a.agency = n.agency),
                    (SELECT COUNT(*) FROM incidents i WHERE i.agency = n.agency AND i.drill = 0),
                    (SELECT COUNT(*) FROM incidents i WHERE i.agency = n.agency AND i.drill = 0
                        AND i.status NOT IN ('resolved', 'false_positive')),
                    CASE WHEN p.agency IS NULL THEN 0 ELSE 1 END, ",
            profile_columns!(),
            " FROM (SELECT agency FROM agents UNION SELECT agency FROM incidents
                   UNION SELECT agency FROM agency_profiles) n
             LEFT JOIN agency_profiles p ON p.agency = n.agency
             WHERE ($1 IS NULL OR n.agency IN (SELECT value FROM json_each($1)))
             ORDER BY n.agency"
        ))
        .bind(scope_param(scope))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let has_profile = r.get::<i64, _>(4) != 0;
                Ok(AgencyInfo {
                    name: r.get(0),
                    agents: r.get(1),
                    incidents: r.get(2),
                    open_incidents: r.get(3),
                    profile: if has_profile {
                        Some(profile_from_row(r, 5)?)
                    } else {
                        None
                    },
                })
            })
            .collect()
    }
}
