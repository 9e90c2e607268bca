//! Names written before they were sealed: finding the rows that still hold a name in clear and
//! replacing it with its sealed form (the caller seals; this module only stores).

use crate::StoreError;
use lockstep_domain::OrganizationId;
use sqlx::{AnyConnection, Row};

/// A table whose rows have a sealed name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamedTable {
    Connections,
    Pipelines,
    ApiTokens,
}

impl NamedTable {
    pub const ALL: [NamedTable; 3] = [
        NamedTable::Connections,
        NamedTable::Pipelines,
        NamedTable::ApiTokens,
    ];

    fn table(self) -> &'static str {
        match self {
            NamedTable::Connections => "connections",
            NamedTable::Pipelines => "pipelines",
            NamedTable::ApiTokens => "api_tokens",
        }
    }

    /// The object kind the name is sealed for (associated data).
    pub fn object_kind(self) -> &'static str {
        match self {
            NamedTable::Connections => "connection",
            NamedTable::Pipelines => "pipeline",
            NamedTable::ApiTokens => "api_token",
        }
    }
}

/// A row whose name is still in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct ClearName {
    pub organization_id: OrganizationId,
    /// The object's id, as stored.
    pub id: String,
    pub name: String,
}

impl std::fmt::Debug for ClearName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClearName")
            .field("organization_id", &self.organization_id)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Whether an object of `table` in `org` other than `except` (an id) holds `name` in clear: a
/// sealed name must not take a name a row written before names were sealed still has.
pub async fn clear_name_taken(
    conn: &mut AnyConnection,
    table: NamedTable,
    org: OrganizationId,
    name: &str,
    except: &str,
) -> Result<bool, StoreError> {
    let sql = format!(
        "SELECT id FROM {} WHERE organization_id = $1 AND name = $2 AND name_ciphertext IS NULL \
         AND id <> $3",
        table.table()
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(name.to_owned())
        .bind(except.to_owned())
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

/// Up to `limit` rows of `table` whose name is still in clear.
pub async fn clear_names(
    conn: &mut AnyConnection,
    table: NamedTable,
    limit: i64,
) -> Result<Vec<ClearName>, StoreError> {
    let sql = format!(
        "SELECT id, organization_id, name FROM {} WHERE name_ciphertext IS NULL ORDER BY id \
         LIMIT $1",
        table.table()
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| {
            let org: String = row.try_get("organization_id")?;
            Ok(ClearName {
                organization_id: org
                    .parse()
                    .map_err(|_| StoreError::Corrupt("organization id"))?,
                id: row.try_get("id")?,
                name: row.try_get("name")?,
            })
        })
        .collect()
}

/// Replaces a clear name with its stored sealed form (`column`: the keyed index, or empty),
/// unless the row changed meanwhile. Answers whether it did; a name whose index is already
/// taken is a conflict.
pub async fn seal(
    conn: &mut AnyConnection,
    table: NamedTable,
    row: &ClearName,
    column: &str,
    ciphertext: &[u8],
) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE {} SET name = $1, name_ciphertext = $2 WHERE organization_id = $3 AND id = $4 \
         AND name = $5 AND name_ciphertext IS NULL",
        table.table()
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(column.to_owned())
        .bind(ciphertext.to_vec())
        .bind(row.organization_id.to_string())
        .bind(row.id.clone())
        .bind(row.name.clone())
        .execute(conn)
        .await
        .map_err(StoreError::unique("object with this name"))?;
    Ok(done.rows_affected() == 1)
}
