//! What the store still holds about an organization: the row count of every table that names it.
//!
//! The tables are found from the schema itself (every table with an `organization_id` column, and
//! `organizations`), so a table added later is covered without editing this file. Security officers
//! ask "what is still stored about us"; the deletion tests ask it after a delete.

use crate::{Backend, StoreError};
use lockstep_domain::OrganizationId;
use sqlx::{AnyConnection, Row};

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
