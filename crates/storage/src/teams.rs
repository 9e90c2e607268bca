//! Teams, their members, and the organization's data policies (one sealed document per layer).

use crate::{StoreError, from_millis, to_millis};
use lockstep_domain::{OrganizationId, TeamId, UserId};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

/// A team as stored: its name sealed, `name` its keyed index.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredTeam {
    pub id: TeamId,
    pub organization_id: OrganizationId,
    pub name: String,
    pub name_ciphertext: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl std::fmt::Debug for StoredTeam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTeam")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .finish_non_exhaustive()
    }
}

fn parse<T: std::str::FromStr>(text: &str, what: &'static str) -> Result<T, StoreError> {
    text.parse().map_err(|_| StoreError::Corrupt(what))
}

fn team_from_row(row: &sqlx::any::AnyRow) -> Result<StoredTeam, StoreError> {
    Ok(StoredTeam {
        id: parse(&row.try_get::<String, _>("id")?, "team id")?,
        organization_id: parse(
            &row.try_get::<String, _>("organization_id")?,
            "organization id",
        )?,
        name: row.try_get("name")?,
        name_ciphertext: row.try_get("name_ciphertext")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
    })
}

const COLUMNS: &str = "id, organization_id, name, name_ciphertext, created_at, updated_at";

pub async fn insert(conn: &mut AnyConnection, team: &StoredTeam) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO teams (id, organization_id, name, name_ciphertext, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(team.id.to_string())
    .bind(team.organization_id.to_string())
    .bind(team.name.clone())
    .bind(team.name_ciphertext.clone())
    .bind(to_millis(team.created_at))
    .bind(to_millis(team.updated_at))
    .execute(conn)
    .await
    .map_err(StoreError::unique("team with this name"))?;
    Ok(())
}

/// Stores a new name.
pub async fn rename(conn: &mut AnyConnection, team: &StoredTeam) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE teams SET name = $1, name_ciphertext = $2, updated_at = $3 \
         WHERE organization_id = $4 AND id = $5",
    )
    .bind(team.name.clone())
    .bind(team.name_ciphertext.clone())
    .bind(to_millis(team.updated_at))
    .bind(team.organization_id.to_string())
    .bind(team.id.to_string())
    .execute(conn)
    .await
    .map_err(StoreError::unique("team with this name"))?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: TeamId,
) -> Result<Option<StoredTeam>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM teams WHERE organization_id = $1 AND id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(team_from_row).transpose()
}

pub async fn list(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<Vec<StoredTeam>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM teams WHERE organization_id = $1 ORDER BY id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter().map(team_from_row).collect()
}

/// Deletes a team (its memberships go with it); answers whether it existed.
pub async fn delete(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: TeamId,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM teams WHERE organization_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Adds a member; answers false when they were in the team already.
pub async fn add_member(
    conn: &mut AnyConnection,
    org: OrganizationId,
    team: TeamId,
    user: UserId,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO team_members (team_id, user_id, organization_id, added_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (team_id, user_id) DO NOTHING",
    )
    .bind(team.to_string())
    .bind(user.to_string())
    .bind(org.to_string())
    .bind(to_millis(at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Removes a member; answers whether they were in the team.
pub async fn remove_member(
    conn: &mut AnyConnection,
    org: OrganizationId,
    team: TeamId,
    user: UserId,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "DELETE FROM team_members WHERE organization_id = $1 AND team_id = $2 AND user_id = $3",
    )
    .bind(org.to_string())
    .bind(team.to_string())
    .bind(user.to_string())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Every membership of the organization as (team, user), in team then user order.
pub async fn memberships(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<Vec<(TeamId, UserId)>, StoreError> {
    let rows = sqlx::query(
        "SELECT team_id, user_id FROM team_members WHERE organization_id = $1 \
         ORDER BY team_id, user_id",
    )
    .bind(org.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                parse(&row.try_get::<String, _>("team_id")?, "team id")?,
                parse(&row.try_get::<String, _>("user_id")?, "user id")?,
            ))
        })
        .collect()
}

/// The teams `user` is in.
pub async fn teams_of(
    conn: &mut AnyConnection,
    org: OrganizationId,
    user: UserId,
) -> Result<Vec<TeamId>, StoreError> {
    let rows = sqlx::query(
        "SELECT team_id FROM team_members WHERE organization_id = $1 AND user_id = $2 \
         ORDER BY team_id",
    )
    .bind(org.to_string())
    .bind(user.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| parse(&row.try_get::<String, _>("team_id")?, "team id"))
        .collect()
}

/// A data policy layer as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPolicy {
    pub enabled: bool,
    /// The rules as JSON, sealed under the organization's key.
    pub document: Vec<u8>,
    pub updated_at: OffsetDateTime,
}

/// The stored layer (`access`, `ownership`, `redaction`), if it was ever set.
pub async fn policy(
    conn: &mut AnyConnection,
    org: OrganizationId,
    layer: &str,
) -> Result<Option<StoredPolicy>, StoreError> {
    let row = sqlx::query(
        "SELECT enabled, document, updated_at FROM data_policies \
         WHERE organization_id = $1 AND layer = $2",
    )
    .bind(org.to_string())
    .bind(layer.to_owned())
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(StoredPolicy {
            enabled: row.try_get::<i64, _>("enabled")? != 0,
            document: row.try_get("document")?,
            updated_at: from_millis(row.try_get("updated_at")?)?,
        })
    })
    .transpose()
}

pub async fn put_policy(
    conn: &mut AnyConnection,
    org: OrganizationId,
    layer: &str,
    policy: &StoredPolicy,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO data_policies (organization_id, layer, enabled, document, updated_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (organization_id, layer) DO UPDATE SET enabled = excluded.enabled, \
         document = excluded.document, updated_at = excluded.updated_at",
    )
    .bind(org.to_string())
    .bind(layer.to_owned())
    .bind(i64::from(policy.enabled))
    .bind(policy.document.clone())
    .bind(to_millis(policy.updated_at))
    .execute(conn)
    .await?;
    Ok(())
}
