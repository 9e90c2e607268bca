//! What the store still holds about an organization: the row count of every table that names it.
//!
//! The tables are found from the schema itself (every table with an `organization_id` column, and
//! `organizations`), so a table added later is covered without editing this file. Security officers
//! ask "what is still stored about us"; the deletion tests ask it after a delete.
//!
//! The same questions by kind ([`tally`], [`ciphertexts_by_key_version`], [`key_versions`]) are
//! what the organization's own footprint page is built from (`lockstep-app`'s `footprint`).

use crate::{Backend, StoreError, from_millis};
use lockstep_domain::OrganizationId;
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// Tables that carry an `organization_id` column, by name.
pub async fn organization_tables(
    conn: &mut AnyConnection,
    backend: Backend,
) -> Result<Vec<String>, StoreError> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT m.name AS table_name FROM sqlite_master m, pragma_table_info(m.name) c \
             WHERE m.type = 'table' AND c.name = 'organization_id' ORDER BY m.name"
        }
        Backend::Postgres => {
            "SELECT table_name::text AS table_name FROM information_schema.columns \
             WHERE table_schema = current_schema() AND column_name = 'organization_id' \
             ORDER BY table_name"
        }
    };
    let rows = sqlx::query(sql).fetch_all(conn).await?;
    rows.iter()
        .map(|row| {
            row.try_get::<String, _>("table_name")
                .map_err(StoreError::from)
        })
        .collect()
}

/// `(table, rows)` for each table holding rows of this organization; empty when nothing is left.
pub async fn organization_footprint(
    conn: &mut AnyConnection,
    backend: Backend,
    org: OrganizationId,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut found = Vec::new();
    let mut tables: Vec<(String, &str)> = organization_tables(conn, backend)
        .await?
        .into_iter()
        .map(|table| (table, "organization_id"))
        .collect();
    tables.push(("organizations".to_owned(), "id"));
    for (table, column) in tables {
        // Table names come from the schema, never from input; quoted all the same.
        let sql = format!(
            "SELECT COUNT(*) AS n FROM \"{}\" WHERE {column} = $1",
            table.replace('"', "")
        );
        let n: i64 = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org.to_string())
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?;
        if n > 0 {
            found.push((table, n));
        }
    }
    Ok(found)
}

/// Where one kind of the organization's data is stored: a table (with an `organization_id`
/// column), the column saying when a row was made, and an optional condition. Only constants of
/// the code are ever put here, never input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub table: &'static str,
    /// The column holding when a row was made (Unix milliseconds), if the table has one.
    pub made_at: Option<&'static str>,
    /// An SQL condition the rows must meet as well (for a kind that is a part of a table).
    pub only: Option<&'static str>,
}

impl Source {
    pub const fn table(table: &'static str, made_at: &'static str) -> Source {
        Source {
            table,
            made_at: Some(made_at),
            only: None,
        }
    }
}

/// How many rows of one kind an organization has, and when the oldest was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub rows: u64,
    pub oldest: Option<OffsetDateTime>,
}

fn checked_name(name: &str) -> Result<&str, StoreError> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(name)
    } else {
        Err(StoreError::Corrupt("footprint table or column name"))
    }
}

/// The rows of `source` that belong to `org`: how many, and the oldest one's time.
pub async fn tally(
    conn: &mut AnyConnection,
    org: OrganizationId,
    source: Source,
) -> Result<Tally, StoreError> {
    let oldest = match source.made_at {
        Some(column) => format!("MIN({})", checked_name(column)?),
        None => "NULL".to_owned(),
    };
    let only = source
        .only
        .map(|condition| format!(" AND ({condition})"))
        .unwrap_or_default();
    // Names and conditions are constants of the code (checked all the same).
    let sql = format!(
        "SELECT COUNT(*) AS n, CAST({oldest} AS BIGINT) AS oldest FROM {} \
         WHERE organization_id = $1{only}",
        checked_name(source.table)?
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .fetch_one(conn)
        .await?;
    let rows: i64 = row.try_get("n")?;
    let oldest: Option<i64> = row.try_get("oldest")?;
    Ok(Tally {
        rows: u64::try_from(rows).unwrap_or(0),
        oldest: oldest.map(from_millis).transpose()?,
    })
}

/// The records staged in the organization's data sets (the rows of their record chunks).
pub async fn dataset_records(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<u64, StoreError> {
    let n: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(row_count), 0) AS BIGINT) AS n FROM dataset_chunks \
         WHERE organization_id = $1 AND kind = 'records'",
    )
    .bind(org.to_string())
    .fetch_one(conn)
    .await?
    .try_get("n")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The first entry of the organization's ledger (its bytes), if it has one.
pub async fn first_ledger_entry(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<Option<Vec<u8>>, StoreError> {
    let row = sqlx::query(
        "SELECT entry FROM ledger_entries WHERE organization_id = $1 ORDER BY idx LIMIT 1",
    )
    .bind(org.to_string())
    .fetch_optional(conn)
    .await?;
    row.map(|row| row.try_get("entry").map_err(StoreError::from))
        .transpose()
}

/// A version of the organization's data key: when it was made and the keyring version that
/// wraps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyVersion {
    pub version: u32,
    pub keyring_version: u32,
    pub created_at: OffsetDateTime,
}

/// Every version of the organization's data key, oldest first (no key material).
pub async fn key_versions(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<Vec<KeyVersion>, StoreError> {
    let rows = sqlx::query(
        "SELECT version, keyring_version, created_at FROM organization_keys \
         WHERE organization_id = $1 ORDER BY version",
    )
    .bind(org.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let version: i64 = row.try_get("version")?;
            let keyring_version: i64 = row.try_get("keyring_version")?;
            Ok(KeyVersion {
                version: u32::try_from(version).map_err(|_| StoreError::Corrupt("key version"))?,
                keyring_version: u32::try_from(keyring_version)
                    .map_err(|_| StoreError::Corrupt("keyring version"))?,
                created_at: from_millis(row.try_get("created_at")?)?,
            })
        })
        .collect()
}

/// How many of the organization's ciphertexts in `table.column` were made with each version of
/// its data key. The version is read from the ciphertext's header (bytes 2 to 5, big-endian:
/// see the vault's format), so nothing is decrypted; a value that is not an organization-key
/// ciphertext counts under version 0.
pub async fn ciphertexts_by_key_version(
    conn: &mut AnyConnection,
    org: OrganizationId,
    table: &'static str,
    column: &'static str,
) -> Result<BTreeMap<u32, u64>, StoreError> {
    let column = checked_name(column)?;
    let sql = format!(
        "SELECT substr({column}, 1, 5) AS head, COUNT(*) AS n FROM {} \
         WHERE organization_id = $1 AND {column} IS NOT NULL GROUP BY substr({column}, 1, 5)",
        checked_name(table)?
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .fetch_all(conn)
        .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let head: Vec<u8> = row.try_get("head")?;
        let n: i64 = row.try_get("n")?;
        let version = match head.as_slice() {
            [1, a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
            _ => 0,
        };
        *out.entry(version).or_insert(0) += u64::try_from(n).unwrap_or(0);
    }
    Ok(out)
}
