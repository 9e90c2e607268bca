//! Single sign-on: an organization's identity provider configuration (settings and client secret
//! sealed by the app), the e-mail domains that lead to it (keyed index), the sign-ins waiting for
//! the provider's answer, and the SAML assertion ids already used.

use crate::{StoreError, from_millis, to_millis};
use lockstep_domain::{OrganizationId, Role, UserId};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

/// Which protocol an organization's identity provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SsoKind {
    Oidc,
    Saml,
}

impl SsoKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SsoKind::Oidc => "oidc",
            SsoKind::Saml => "saml",
        }
    }

    fn parse(text: &str) -> Result<SsoKind, StoreError> {
        match text {
            "oidc" => Ok(SsoKind::Oidc),
            "saml" => Ok(SsoKind::Saml),
            _ => Err(StoreError::Corrupt("sso kind")),
        }
    }
}

/// An organization's SSO configuration as stored; `settings` and `client_secret` are sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSsoConfig {
    pub organization_id: OrganizationId,
    pub kind: SsoKind,
    pub enabled: bool,
    pub sso_only: bool,
    pub jit_enabled: bool,
    pub jit_role: Role,
    pub break_glass_user_id: Option<UserId>,
    pub settings: Vec<u8>,
    pub client_secret: Option<Vec<u8>>,
    pub last_test_at: Option<OffsetDateTime>,
    pub last_test_result: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl std::fmt::Debug for StoredSsoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSsoConfig")
            .field("organization_id", &self.organization_id)
            .field("kind", &self.kind)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "organization_id, kind, enabled, sso_only, jit_enabled, jit_role, \
     break_glass_user_id, settings, client_secret, last_test_at, last_test_result, created_at, \
     updated_at";

fn config_from_row(row: &sqlx::any::AnyRow) -> Result<StoredSsoConfig, StoreError> {
    let org: String = row.try_get("organization_id")?;
    let kind: String = row.try_get("kind")?;
    let role: String = row.try_get("jit_role")?;
    let break_glass: Option<String> = row.try_get("break_glass_user_id")?;
    let tested: Option<i64> = row.try_get("last_test_at")?;
    Ok(StoredSsoConfig {
        organization_id: org
            .parse()
            .map_err(|_| StoreError::Corrupt("organization id"))?,
        kind: SsoKind::parse(&kind)?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        sso_only: row.try_get::<i64, _>("sso_only")? != 0,
        jit_enabled: row.try_get::<i64, _>("jit_enabled")? != 0,
        jit_role: role.parse().map_err(|_| StoreError::Corrupt("jit role"))?,
        break_glass_user_id: break_glass
            .map(|id| id.parse().map_err(|_| StoreError::Corrupt("user id")))
            .transpose()?,
        settings: row.try_get("settings")?,
        client_secret: row.try_get("client_secret")?,
        last_test_at: tested.map(from_millis).transpose()?,
        last_test_result: row.try_get("last_test_result")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
    })
}

/// The organization's SSO configuration, if it has one.
pub async fn get(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<Option<StoredSsoConfig>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM sso_configs WHERE organization_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(config_from_row).transpose()
}

/// Stores the configuration, replacing the organization's earlier one.
pub async fn put(conn: &mut AnyConnection, c: &StoredSsoConfig) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sso_configs WHERE organization_id = $1")
        .bind(c.organization_id.to_string())
        .execute(&mut *conn)
        .await?;
    let sql = format!(
        "INSERT INTO sso_configs ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(c.organization_id.to_string())
        .bind(c.kind.as_str())
        .bind(i64::from(c.enabled))
        .bind(i64::from(c.sso_only))
        .bind(i64::from(c.jit_enabled))
        .bind(c.jit_role.as_str())
        .bind(c.break_glass_user_id.map(|id| id.to_string()))
        .bind(c.settings.clone())
        .bind(c.client_secret.clone())
        .bind(c.last_test_at.map(to_millis))
        .bind(c.last_test_result.clone())
        .bind(to_millis(c.created_at))
        .bind(to_millis(c.updated_at))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the outcome of the last test sign-in (`ok` or a refusal code).
pub async fn set_test_result(
    conn: &mut AnyConnection,
    org: OrganizationId,
    result: &str,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE sso_configs SET last_test_at = $1, last_test_result = $2 WHERE organization_id = $3",
    )
    .bind(to_millis(at))
    .bind(result.to_owned())
    .bind(org.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes the configuration, its domains and its waiting sign-ins; answers whether there was one.
pub async fn delete(conn: &mut AnyConnection, org: OrganizationId) -> Result<bool, StoreError> {
    for sql in [
        "DELETE FROM sso_domains WHERE organization_id = $1",
        "DELETE FROM sso_requests WHERE organization_id = $1",
    ] {
        sqlx::query(sql)
            .bind(org.to_string())
            .execute(&mut *conn)
            .await?;
    }
    let done = sqlx::query("DELETE FROM sso_configs WHERE organization_id = $1")
        .bind(org.to_string())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Replaces the organization's domains; a domain another organization holds is a conflict.
pub async fn set_domains(
    conn: &mut AnyConnection,
    org: OrganizationId,
    domain_indexes: &[Vec<u8>],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sso_domains WHERE organization_id = $1")
        .bind(org.to_string())
        .execute(&mut *conn)
        .await?;
    for index in domain_indexes {
        sqlx::query("INSERT INTO sso_domains (domain_index, organization_id) VALUES ($1, $2)")
            .bind(index.clone())
            .bind(org.to_string())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::unique("sso domain"))?;
    }
    Ok(())
}

/// The organization whose identity provider this domain leads to.
pub async fn organization_of_domain(
    conn: &mut AnyConnection,
    domain_index: &[u8],
) -> Result<Option<OrganizationId>, StoreError> {
    let row = sqlx::query("SELECT organization_id FROM sso_domains WHERE domain_index = $1")
        .bind(domain_index.to_vec())
        .fetch_optional(conn)
        .await?;
    row.map(|row| {
        row.try_get::<String, _>("organization_id")?
            .parse()
            .map_err(|_| StoreError::Corrupt("organization id"))
    })
    .transpose()
}

/// A sign-in sent to the identity provider, waiting for its answer.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    pub lookup_hash: [u8; 32],
    pub organization_id: OrganizationId,
    pub kind: SsoKind,
    pub binding_hash: [u8; 32],
    pub pending: Vec<u8>,
    pub tested_by: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("organization_id", &self.organization_id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

pub async fn insert_request(conn: &mut AnyConnection, p: &PendingSignIn) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sso_requests (lookup_hash, organization_id, kind, binding_hash, pending, \
         tested_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(p.lookup_hash.to_vec())
    .bind(p.organization_id.to_string())
    .bind(p.kind.as_str())
    .bind(p.binding_hash.to_vec())
    .bind(p.pending.clone())
    .bind(p.tested_by.map(|id| id.to_string()))
    .bind(to_millis(p.created_at))
    .bind(to_millis(p.expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes and answers the waiting sign-in with this lookup hash: each is used at most once.
pub async fn take_request(
    conn: &mut AnyConnection,
    lookup_hash: &[u8; 32],
) -> Result<Option<PendingSignIn>, StoreError> {
    let row = sqlx::query(
        "SELECT lookup_hash, organization_id, kind, binding_hash, pending, tested_by, created_at, \
         expires_at FROM sso_requests WHERE lookup_hash = $1",
    )
    .bind(lookup_hash.to_vec())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let done = sqlx::query("DELETE FROM sso_requests WHERE lookup_hash = $1")
        .bind(lookup_hash.to_vec())
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        // Taken by a concurrent answer in between.
        return Ok(None);
    }
    let org: String = row.try_get("organization_id")?;
    let kind: String = row.try_get("kind")?;
    let binding: Vec<u8> = row.try_get("binding_hash")?;
    let tested_by: Option<String> = row.try_get("tested_by")?;
    Ok(Some(PendingSignIn {
        lookup_hash: *lookup_hash,
        organization_id: org
            .parse()
            .map_err(|_| StoreError::Corrupt("organization id"))?,
        kind: SsoKind::parse(&kind)?,
        binding_hash: binding
            .try_into()
            .map_err(|_| StoreError::Corrupt("sso binding hash"))?,
        pending: row.try_get("pending")?,
        tested_by: tested_by
            .map(|id| id.parse().map_err(|_| StoreError::Corrupt("user id")))
            .transpose()?,
        created_at: from_millis(row.try_get("created_at")?)?,
        expires_at: from_millis(row.try_get("expires_at")?)?,
    }))
}

/// Remembers a SAML assertion id until it expires; answers false when it was already used.
pub async fn remember_assertion(
    conn: &mut AnyConnection,
    org: OrganizationId,
    assertion_hash: &[u8; 32],
    expires_at: OffsetDateTime,
) -> Result<bool, StoreError> {
    // ON CONFLICT keeps a PostgreSQL transaction usable where a unique violation would abort it.
    let done = sqlx::query(
        "INSERT INTO sso_assertions (organization_id, assertion_hash, expires_at) \
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(org.to_string())
    .bind(assertion_hash.to_vec())
    .bind(to_millis(expires_at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets waiting sign-ins and used assertion ids past their time.
pub async fn delete_expired(
    conn: &mut AnyConnection,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for sql in [
        "DELETE FROM sso_requests WHERE expires_at < $1",
        "DELETE FROM sso_assertions WHERE expires_at < $1",
    ] {
        deleted += sqlx::query(sql)
            .bind(to_millis(now))
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    Ok(deleted)
}
