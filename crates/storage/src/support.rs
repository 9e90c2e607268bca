//! Support access: the platform's support accounts (added by the operator, in no organization),
//! the grants an organization's Administrator gives them (a role, for a limited time), and their
//! sessions, bound to one organization and grant once they enter it.

use crate::{StoreError, from_millis, to_millis};
use lockstep_domain::{OrganizationId, Role, UserId};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

/// A support account. Ciphertexts are sealed under the hub's support-account key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSupportUser {
    pub id: Uuid,
    pub email_index: Vec<u8>,
    pub email_ciphertext: Vec<u8>,
    /// `None` until the person chose one with their setup link.
    pub password_hash: Option<String>,
    pub totp_secret_ciphertext: Option<Vec<u8>>,
    pub totp_last_step: Option<u64>,
    /// Password chosen and TOTP confirmed: may sign in.
    pub active: bool,
    pub setup_token_hash: Option<Vec<u8>>,
    pub setup_expires_at: Option<OffsetDateTime>,
    pub failed_logins: u32,
    pub locked_until: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

const USER_COLUMNS: &str = "id, email_index, email_ciphertext, password_hash, \
     totp_secret_ciphertext, totp_last_step, active, setup_token_hash, setup_expires_at, \
     failed_logins, locked_until, created_at";

fn uuid_of(text: &str, what: &'static str) -> Result<Uuid, StoreError> {
    text.parse().map_err(|_| StoreError::Corrupt(what))
}

fn user_from_row(row: &sqlx::any::AnyRow) -> Result<StoredSupportUser, StoreError> {
    let id: String = row.try_get("id")?;
    let step: Option<i64> = row.try_get("totp_last_step")?;
    let active: i64 = row.try_get("active")?;
    let expires: Option<i64> = row.try_get("setup_expires_at")?;
    let failed: i64 = row.try_get("failed_logins")?;
    let locked: Option<i64> = row.try_get("locked_until")?;
    Ok(StoredSupportUser {
        id: uuid_of(&id, "support user id")?,
        email_index: row.try_get("email_index")?,
        email_ciphertext: row.try_get("email_ciphertext")?,
        password_hash: row.try_get("password_hash")?,
        totp_secret_ciphertext: row.try_get("totp_secret_ciphertext")?,
        totp_last_step: step
            .map(|s| u64::try_from(s).map_err(|_| StoreError::Corrupt("totp step")))
            .transpose()?,
        active: active != 0,
        setup_token_hash: row.try_get("setup_token_hash")?,
        setup_expires_at: expires.map(from_millis).transpose()?,
        failed_logins: u32::try_from(failed).map_err(|_| StoreError::Corrupt("failed logins"))?,
        locked_until: locked.map(from_millis).transpose()?,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

/// Adds a support account waiting for its setup; an address already in use is a conflict.
pub async fn insert_user(
    conn: &mut AnyConnection,
    user: &StoredSupportUser,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO support_users (id, email_index, email_ciphertext, active, setup_token_hash, \
         setup_expires_at, failed_logins, created_at) VALUES ($1, $2, $3, 0, $4, $5, 0, $6)",
    )
    .bind(user.id.to_string())
    .bind(user.email_index.clone())
    .bind(user.email_ciphertext.clone())
    .bind(user.setup_token_hash.clone())
    .bind(user.setup_expires_at.map(to_millis))
    .bind(to_millis(user.created_at))
    .execute(conn)
    .await
    .map_err(StoreError::unique("support account"))?;
    Ok(())
}

pub async fn list_users(conn: &mut AnyConnection) -> Result<Vec<StoredSupportUser>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM support_users ORDER BY created_at, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?;
    rows.iter().map(user_from_row).collect()
}

pub async fn get_user(
    conn: &mut AnyConnection,
    id: Uuid,
) -> Result<Option<StoredSupportUser>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM support_users WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn find_user_by_email_index(
    conn: &mut AnyConnection,
    index: &[u8],
) -> Result<Option<StoredSupportUser>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM support_users WHERE email_index = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(index.to_vec())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn find_user_by_setup_token(
    conn: &mut AnyConnection,
    token_hash: &[u8; 32],
) -> Result<Option<StoredSupportUser>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM support_users WHERE setup_token_hash = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(token_hash.to_vec())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// Stores the password and the TOTP secret chosen during setup (not active until confirmed).
pub async fn set_credentials(
    conn: &mut AnyConnection,
    id: Uuid,
    password_hash: &str,
    totp_secret_ciphertext: &[u8],
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE support_users SET password_hash = $2, totp_secret_ciphertext = $3, \
         totp_last_step = NULL, active = 0 WHERE id = $1",
    )
    .bind(id.to_string())
    .bind(password_hash.to_owned())
    .bind(totp_secret_ciphertext.to_vec())
    .execute(conn)
    .await?;
    Ok(())
}

/// Confirms setup: the account may sign in, the setup link is used up.
pub async fn activate(conn: &mut AnyConnection, id: Uuid, step: u64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE support_users SET active = 1, totp_last_step = $2, setup_token_hash = NULL, \
         setup_expires_at = NULL WHERE id = $1",
    )
    .bind(id.to_string())
    .bind(i64::try_from(step).unwrap_or(i64::MAX))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a used TOTP step; `false` when it (or a later one) was used already (a replay).
pub async fn use_totp_step(
    conn: &mut AnyConnection,
    id: Uuid,
    step: u64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE support_users SET totp_last_step = $2 WHERE id = $1 \
         AND (totp_last_step IS NULL OR totp_last_step < $2)",
    )
    .bind(id.to_string())
    .bind(i64::try_from(step).unwrap_or(i64::MAX))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_login_failures(
    conn: &mut AnyConnection,
    id: Uuid,
    count: u32,
    locked_until: Option<OffsetDateTime>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE support_users SET failed_logins = $2, locked_until = $3 WHERE id = $1")
        .bind(id.to_string())
        .bind(i64::from(count))
        .bind(locked_until.map(to_millis))
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes a support account and its sessions; its grants stay as the organizations' record.
pub async fn delete_user(conn: &mut AnyConnection, id: Uuid) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM support_users WHERE id = $1")
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A grant of support access to one organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredGrant {
    pub id: Uuid,
    pub organization_id: OrganizationId,
    pub support_user_id: Uuid,
    pub role: Role,
    pub reason_ciphertext: Vec<u8>,
    pub email_ciphertext: Vec<u8>,
    pub granted_by: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub revoked_by: Option<UserId>,
}

impl StoredGrant {
    /// In force at `now`: not revoked, not expired.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

const GRANT_COLUMNS: &str = "id, organization_id, support_user_id, role, reason_ciphertext, \
     email_ciphertext, granted_by, created_at, expires_at, revoked_at, revoked_by";

fn user_id_of(text: Option<String>) -> Result<Option<UserId>, StoreError> {
    text.map(|t| t.parse().map_err(|_| StoreError::Corrupt("user id")))
        .transpose()
}

fn grant_from_row(row: &sqlx::any::AnyRow) -> Result<StoredGrant, StoreError> {
    let id: String = row.try_get("id")?;
    let org: String = row.try_get("organization_id")?;
    let support_user: String = row.try_get("support_user_id")?;
    let role: String = row.try_get("role")?;
    let revoked: Option<i64> = row.try_get("revoked_at")?;
    Ok(StoredGrant {
        id: uuid_of(&id, "support grant id")?,
        organization_id: org
            .parse()
            .map_err(|_| StoreError::Corrupt("organization id"))?,
        support_user_id: uuid_of(&support_user, "support user id")?,
        role: role
            .parse()
            .map_err(|_| StoreError::Corrupt("grant role"))?,
        reason_ciphertext: row.try_get("reason_ciphertext")?,
        email_ciphertext: row.try_get("email_ciphertext")?,
        granted_by: user_id_of(row.try_get("granted_by")?)?,
        created_at: from_millis(row.try_get("created_at")?)?,
        expires_at: from_millis(row.try_get("expires_at")?)?,
        revoked_at: revoked.map(from_millis).transpose()?,
        revoked_by: user_id_of(row.try_get("revoked_by")?)?,
    })
}

pub async fn insert_grant(conn: &mut AnyConnection, grant: &StoredGrant) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO support_grants (id, organization_id, support_user_id, role, \
         reason_ciphertext, email_ciphertext, granted_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(grant.id.to_string())
    .bind(grant.organization_id.to_string())
    .bind(grant.support_user_id.to_string())
    .bind(grant.role.as_str())
    .bind(grant.reason_ciphertext.clone())
    .bind(grant.email_ciphertext.clone())
    .bind(grant.granted_by.map(|u| u.to_string()))
    .bind(to_millis(grant.created_at))
    .bind(to_millis(grant.expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// The organization's grants, newest first, at most `limit`.
pub async fn list_grants(
    conn: &mut AnyConnection,
    org: OrganizationId,
    limit: i64,
) -> Result<Vec<StoredGrant>, StoreError> {
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM support_grants WHERE organization_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(grant_from_row).collect()
}

/// The organization's grants in force at `now`.
pub async fn active_grants(
    conn: &mut AnyConnection,
    org: OrganizationId,
    now: OffsetDateTime,
) -> Result<Vec<StoredGrant>, StoreError> {
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM support_grants WHERE organization_id = $1 \
         AND revoked_at IS NULL AND expires_at > $2 ORDER BY expires_at, id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(to_millis(now))
        .fetch_all(conn)
        .await?;
    rows.iter().map(grant_from_row).collect()
}

pub async fn get_grant(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: Uuid,
) -> Result<Option<StoredGrant>, StoreError> {
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM support_grants WHERE organization_id = $1 AND id = $2"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(grant_from_row).transpose()
}

/// A support account's grants in force at `now`, in every organization.
pub async fn active_grants_of(
    conn: &mut AnyConnection,
    support_user: Uuid,
    now: OffsetDateTime,
) -> Result<Vec<StoredGrant>, StoreError> {
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM support_grants WHERE support_user_id = $1 \
         AND revoked_at IS NULL AND expires_at > $2 ORDER BY expires_at, id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(support_user.to_string())
        .bind(to_millis(now))
        .fetch_all(conn)
        .await?;
    rows.iter().map(grant_from_row).collect()
}

/// Revokes a grant in force; `false` when there is none such (unknown, already revoked).
pub async fn revoke_grant(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: Uuid,
    by: Option<UserId>,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE support_grants SET revoked_at = $3, revoked_by = $4 \
         WHERE organization_id = $1 AND id = $2 AND revoked_at IS NULL",
    )
    .bind(org.to_string())
    .bind(id.to_string())
    .bind(to_millis(at))
    .bind(by.map(|u| u.to_string()))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A support person's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSupportSession {
    pub id: Uuid,
    pub support_user_id: Uuid,
    pub token_hash: [u8; 32],
    pub csrf_hash: [u8; 32],
    /// The organization and grant they work under, once they entered one.
    pub organization_id: Option<OrganizationId>,
    pub grant_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
}

const SESSION_COLUMNS: &str = "id, support_user_id, token_hash, csrf_hash, organization_id, \
     grant_id, created_at, last_seen_at";

fn hash32(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("token hash"))
}

fn session_from_row(row: &sqlx::any::AnyRow) -> Result<StoredSupportSession, StoreError> {
    let id: String = row.try_get("id")?;
    let user: String = row.try_get("support_user_id")?;
    let org: Option<String> = row.try_get("organization_id")?;
    let grant: Option<String> = row.try_get("grant_id")?;
    Ok(StoredSupportSession {
        id: uuid_of(&id, "support session id")?,
        support_user_id: uuid_of(&user, "support user id")?,
        token_hash: hash32(row.try_get("token_hash")?)?,
        csrf_hash: hash32(row.try_get("csrf_hash")?)?,
        organization_id: org
            .map(|o| {
                o.parse()
                    .map_err(|_| StoreError::Corrupt("organization id"))
            })
            .transpose()?,
        grant_id: grant.map(|g| uuid_of(&g, "support grant id")).transpose()?,
        created_at: from_millis(row.try_get("created_at")?)?,
        last_seen_at: from_millis(row.try_get("last_seen_at")?)?,
    })
}

pub async fn insert_session(
    conn: &mut AnyConnection,
    s: &StoredSupportSession,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO support_sessions (id, support_user_id, token_hash, csrf_hash, \
         organization_id, grant_id, created_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(s.id.to_string())
    .bind(s.support_user_id.to_string())
    .bind(s.token_hash.to_vec())
    .bind(s.csrf_hash.to_vec())
    .bind(s.organization_id.map(|o| o.to_string()))
    .bind(s.grant_id.map(|g| g.to_string()))
    .bind(to_millis(s.created_at))
    .bind(to_millis(s.last_seen_at))
    .execute(conn)
    .await
    .map_err(StoreError::unique("support session"))?;
    Ok(())
}

pub async fn find_session_by_token_hash(
    conn: &mut AnyConnection,
    token_hash: &[u8; 32],
) -> Result<Option<StoredSupportSession>, StoreError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM support_sessions WHERE token_hash = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(token_hash.to_vec())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(session_from_row).transpose()
}

/// Binds a session to the organization and grant its support person now works under.
pub async fn enter(
    conn: &mut AnyConnection,
    session: Uuid,
    org: OrganizationId,
    grant: Uuid,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE support_sessions SET organization_id = $2, grant_id = $3 WHERE id = $1")
        .bind(session.to_string())
        .bind(org.to_string())
        .bind(grant.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn touch_session(
    conn: &mut AnyConnection,
    session: Uuid,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE support_sessions SET last_seen_at = $2 WHERE id = $1")
        .bind(session.to_string())
        .bind(to_millis(at))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_session(conn: &mut AnyConnection, session: Uuid) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM support_sessions WHERE id = $1")
        .bind(session.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends every session working under `grant`; answers how many.
pub async fn delete_sessions_of_grant(
    conn: &mut AnyConnection,
    grant: Uuid,
) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM support_sessions WHERE grant_id = $1")
        .bind(grant.to_string())
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Revokes every grant of the organization in force at `at` and ends every support session in
/// it (the incident button for the whole organization); answers `(grants, sessions)`.
pub async fn revoke_all(
    conn: &mut AnyConnection,
    org: OrganizationId,
    by: Option<UserId>,
    at: OffsetDateTime,
) -> Result<(u64, u64), StoreError> {
    let grants = sqlx::query(
        "UPDATE support_grants SET revoked_at = $2, revoked_by = $3 \
         WHERE organization_id = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(org.to_string())
    .bind(to_millis(at))
    .bind(by.map(|u| u.to_string()))
    .execute(&mut *conn)
    .await?;
    let sessions = sqlx::query("DELETE FROM support_sessions WHERE organization_id = $1")
        .bind(org.to_string())
        .execute(&mut *conn)
        .await?;
    Ok((grants.rows_affected(), sessions.rows_affected()))
}
