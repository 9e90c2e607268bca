//! Users: their encrypted personal data, role, status, password hash, lockout counters, TOTP
//! state and recovery codes. Every query names the organization, except the sign-in lookup by
//! e-mail index, which is what tells the organization(s).

use crate::{StoreError, from_millis, to_millis};
use lockstep_domain::{OrganizationId, Role, UserId};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

/// Whether a user may sign in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    Deactivated,
}

impl UserStatus {
    fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Deactivated => "deactivated",
        }
    }

    fn parse(s: &str) -> Result<UserStatus, StoreError> {
        match s {
            "active" => Ok(UserStatus::Active),
            "deactivated" => Ok(UserStatus::Deactivated),
            _ => Err(StoreError::Corrupt("user status")),
        }
    }
}

/// A stored user. Ciphertexts are opened by the app with the organization's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredUser {
    pub id: UserId,
    pub organization_id: OrganizationId,
    pub email_index: Vec<u8>,
    pub email_ciphertext: Vec<u8>,
    pub display_name_ciphertext: Vec<u8>,
    pub role: Role,
    pub status: UserStatus,
    pub password_hash: String,
    pub failed_logins: u32,
    pub locked_until: Option<OffsetDateTime>,
    pub totp_secret_ciphertext: Option<Vec<u8>>,
    pub totp_enabled: bool,
    pub totp_last_step: Option<u64>,
    pub created_at: OffsetDateTime,
}

const COLUMNS: &str = "id, organization_id, email_index, email_ciphertext, display_name_ciphertext, \
     role, status, password_hash, failed_logins, locked_until, totp_secret_ciphertext, totp_enabled, \
     totp_last_step, created_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<StoredUser, StoreError> {
    let id: String = row.try_get("id")?;
    let org: String = row.try_get("organization_id")?;
    let role: String = row.try_get("role")?;
    let status: String = row.try_get("status")?;
    let failed: i64 = row.try_get("failed_logins")?;
    let locked: Option<i64> = row.try_get("locked_until")?;
    let enabled: i64 = row.try_get("totp_enabled")?;
    let step: Option<i64> = row.try_get("totp_last_step")?;
    Ok(StoredUser {
        id: id.parse().map_err(|_| StoreError::Corrupt("user id"))?,
        organization_id: org
            .parse()
            .map_err(|_| StoreError::Corrupt("organization id"))?,
        email_index: row.try_get("email_index")?,
        email_ciphertext: row.try_get("email_ciphertext")?,
        display_name_ciphertext: row.try_get("display_name_ciphertext")?,
        role: role.parse().map_err(|_| StoreError::Corrupt("user role"))?,
        status: UserStatus::parse(&status)?,
        password_hash: row.try_get("password_hash")?,
        failed_logins: u32::try_from(failed).map_err(|_| StoreError::Corrupt("failed logins"))?,
        locked_until: locked.map(from_millis).transpose()?,
        totp_secret_ciphertext: row.try_get("totp_secret_ciphertext")?,
        totp_enabled: enabled != 0,
        totp_last_step: step
            .map(|s| u64::try_from(s).map_err(|_| StoreError::Corrupt("totp step")))
            .transpose()?,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

/// Inserts a new user; an e-mail already in use in the same organization is a conflict.
pub async fn insert(conn: &mut AnyConnection, user: &StoredUser) -> Result<(), StoreError> {
    let at = to_millis(user.created_at);
    sqlx::query(
        "INSERT INTO users (id, organization_id, email_index, email_ciphertext, \
         display_name_ciphertext, role, status, password_hash, failed_logins, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9)",
    )
    .bind(user.id.to_string())
    .bind(user.organization_id.to_string())
    .bind(user.email_index.clone())
    .bind(user.email_ciphertext.clone())
    .bind(user.display_name_ciphertext.clone())
    .bind(user.role.as_str())
    .bind(user.status.as_str())
    .bind(user.password_hash.clone())
    .bind(at)
    .execute(conn)
    .await
    .map_err(StoreError::unique("user"))?;
    Ok(())
}

/// The sign-in lookup: the users with this e-mail index, in whatever organization (a person may
/// be a member of several with one address), oldest first, at most `limit` of them.
pub async fn find_by_email_index(
    conn: &mut AnyConnection,
    email_index: &[u8],
    limit: u32,
) -> Result<Vec<StoredUser>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM users WHERE email_index = $1 ORDER BY created_at, id LIMIT $2"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(email_index.to_vec())
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// The user of this organization with this e-mail index (addresses are unique per
/// organization).
pub async fn find_in_organization_by_email_index(
    conn: &mut AnyConnection,
    org: OrganizationId,
    email_index: &[u8],
) -> Result<Option<StoredUser>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM users WHERE organization_id = $1 AND email_index = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(email_index.to_vec())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A user of this organization; `None` for a user of another organization.
pub async fn get(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: UserId,
) -> Result<Option<StoredUser>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE organization_id = $1 AND id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The organization's users, oldest first.
pub async fn list(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<Vec<StoredUser>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM users WHERE organization_id = $1 ORDER BY created_at, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Active Administrators of the organization (to refuse removing the last one).
pub async fn count_active_administrators(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM users WHERE organization_id = $1 AND role = 'administrator' \
         AND status = 'active'",
    )
    .bind(org.to_string())
    .fetch_one(conn)
    .await?;
    Ok(row.try_get("n")?)
}

async fn update(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: UserId,
    set: &'static str,
    bind: impl FnOnce(
        sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    // `set` uses $3.. for its values; $1 = organization, $2 = user, last = updated_at.
    let placeholders = set.matches('$').count() + 3;
    let sql = format!(
        "UPDATE users SET {set}, updated_at = ${placeholders} WHERE organization_id = $1 AND id = $2"
    );
    let query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(id.to_string());
    let done = bind(query).bind(to_millis(at)).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_role(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: UserId,
    role: Role,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    update(conn, org, id, "role = $3", |q| q.bind(role.as_str()), at).await
}

pub async fn set_status(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: UserId,
    status: UserStatus,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    update(
        conn,
        org,
        id,
        "status = $3",
        |q| q.bind(status.as_str()),
        at,
    )
    .await
}

pub async fn set_password_hash(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: UserId,
    hash: &str,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let hash = hash.to_owned();
    update(conn, org, id, "password_hash = $3", |q| q.bind(hash), at).await
}

/// Records the lockout counters after a sign-in attempt.
pub async fn set_login_failures(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: UserId,
    failed_logins: u32,
    locked_until: Option<OffsetDateTime>,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let locked = locked_until.map(to_millis);
    update(
        conn,
        org,
        id,
        "failed_logins = $3, locked_until = $4",
        |q| q.bind(i64::from(failed_logins)).bind(locked),
        at,
    )
    .await
}

/// Stores a pending (not yet confirmed) TOTP secret, or clears TOTP entirely with `None`.
pub async fn set_totp_secret(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: UserId,
    secret_ciphertext: Option<Vec<u8>>,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    update(
        conn,
        org,
        id,
        "totp_secret_ciphertext = $3, totp_enabled = 0, totp_last_step = NULL",
        |q| q.bind(secret_ciphertext),
        at,
    )
    .await
}

/// Turns TOTP on (after a first good code) and records the step used.
pub async fn enable_totp(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: UserId,
    step: u64,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let step = i64::try_from(step).map_err(|_| StoreError::Corrupt("totp step"))?;
    update(
        conn,
        org,
        id,
        "totp_enabled = 1, totp_last_step = $3",
        |q| q.bind(step),
        at,
    )
    .await
}

/// Records the last accepted TOTP step, only if it moves forward (a replay loses the race).
pub async fn advance_totp_step(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: UserId,
    step: u64,
) -> Result<bool, StoreError> {
    let step = i64::try_from(step).map_err(|_| StoreError::Corrupt("totp step"))?;
    let done = sqlx::query(
        "UPDATE users SET totp_last_step = $3 WHERE organization_id = $1 AND id = $2 \
         AND (totp_last_step IS NULL OR totp_last_step < $3)",
    )
    .bind(org.to_string())
    .bind(id.to_string())
    .bind(step)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: UserId,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM users WHERE organization_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces the user's recovery codes.
pub async fn replace_recovery_codes(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: UserId,
    hashes: &[[u8; 32]],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM recovery_codes WHERE organization_id = $1 AND user_id = $2")
        .bind(org.to_string())
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    for hash in hashes {
        sqlx::query(
            "INSERT INTO recovery_codes (user_id, organization_id, code_hash) VALUES ($1, $2, $3)",
        )
        .bind(id.to_string())
        .bind(org.to_string())
        .bind(hash.to_vec())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Uses one recovery code: `true` when it existed and was unused (now it is used).
pub async fn use_recovery_code(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: UserId,
    hash: &[u8; 32],
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE recovery_codes SET used_at = $4 WHERE organization_id = $1 AND user_id = $2 \
         AND code_hash = $3 AND used_at IS NULL",
    )
    .bind(org.to_string())
    .bind(id.to_string())
    .bind(hash.to_vec())
    .bind(to_millis(at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a sign-in (a new session): data sets of members who stay away expire.
pub async fn set_signed_in(
    conn: &mut AnyConnection,
    id: UserId,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET last_signed_in_at = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(to_millis(at))
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the member wants a mail when one of their data sets is removed (on by default).
pub async fn dataset_removal_notice(
    conn: &mut AnyConnection,
    id: UserId,
) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT dataset_removal_notice FROM users WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<i64, _>("dataset_removal_notice")? != 0,
        None => false,
    })
}

pub async fn set_dataset_removal_notice(
    conn: &mut AnyConnection,
    id: UserId,
    on: bool,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET dataset_removal_notice = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(i64::from(on))
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the member must reset their password before signing in with it again (set by an
/// Administrator's incident response, cleared by a completed reset).
pub async fn must_reset_password(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: UserId,
) -> Result<bool, StoreError> {
    let row =
        sqlx::query("SELECT must_reset_password FROM users WHERE organization_id = $1 AND id = $2")
            .bind(org.to_string())
            .bind(id.to_string())
            .fetch_optional(conn)
            .await?;
    Ok(match row {
        Some(row) => row.try_get::<i64, _>("must_reset_password")? != 0,
        None => false,
    })
}

pub async fn set_must_reset_password(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: UserId,
    on: bool,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET must_reset_password = $3 WHERE organization_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(id.to_string())
        .bind(i64::from(on))
        .execute(conn)
        .await?;
    Ok(())
}
