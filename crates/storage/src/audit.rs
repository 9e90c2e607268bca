//! Short-term audit events: appended in the transaction of the change they record, pruned to the
//! organization's depth per object, searched by Administrators.

use crate::{StoreError, from_millis, to_millis};
use lockstep_domain::OrganizationId;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: String,
    pub organization_id: OrganizationId,
    pub at: OffsetDateTime,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub object_kind: String,
    pub object_id: String,
    pub outcome: String,
    pub changes_ciphertext: Option<Vec<u8>>,
}

const COLUMNS: &str = "id, organization_id, at, actor_kind, actor_id, action, object_kind, \
     object_id, outcome, changes_ciphertext";

fn from_row(row: &sqlx::any::AnyRow) -> Result<StoredEvent, StoreError> {
    let org: String = row.try_get("organization_id")?;
    Ok(StoredEvent {
        id: row.try_get("id")?,
        organization_id: org
            .parse()
            .map_err(|_| StoreError::Corrupt("organization id"))?,
        at: from_millis(row.try_get("at")?)?,
        actor_kind: row.try_get("actor_kind")?,
        actor_id: row.try_get("actor_id")?,
        action: row.try_get("action")?,
        object_kind: row.try_get("object_kind")?,
        object_id: row.try_get("object_id")?,
        outcome: row.try_get("outcome")?,
        changes_ciphertext: row.try_get("changes_ciphertext")?,
    })
}

/// Appends an event and keeps only the newest `depth` events of its object.
pub async fn append(
    conn: &mut AnyConnection,
    event: &StoredEvent,
    depth: u32,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events (id, organization_id, seq, at, actor_kind, actor_id, action, \
         object_kind, object_id, outcome, changes_ciphertext) VALUES ($1, $2, \
         (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_events WHERE organization_id = $2), \
         $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(event.id.clone())
    .bind(event.organization_id.to_string())
    .bind(to_millis(event.at))
    .bind(event.actor_kind.clone())
    .bind(event.actor_id.clone())
    .bind(event.action.clone())
    .bind(event.object_kind.clone())
    .bind(event.object_id.clone())
    .bind(event.outcome.clone())
    .bind(event.changes_ciphertext.clone())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM audit_events WHERE organization_id = $1 AND object_kind = $2 \
         AND object_id = $3 AND id NOT IN (SELECT id FROM audit_events \
         WHERE organization_id = $1 AND object_kind = $2 AND object_id = $3 \
         ORDER BY seq DESC, id DESC LIMIT $4)",
    )
    .bind(event.organization_id.to_string())
    .bind(event.object_kind.clone())
    .bind(event.object_id.clone())
    .bind(i64::from(depth.max(1)))
    .execute(conn)
    .await?;
    Ok(())
}

/// One object's events, newest first.
pub async fn for_object(
    conn: &mut AnyConnection,
    org: OrganizationId,
    object_kind: &str,
    object_id: &str,
) -> Result<Vec<StoredEvent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events WHERE organization_id = $1 AND object_kind = $2 \
         AND object_id = $3 ORDER BY seq DESC, id DESC"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(object_kind.to_owned())
        .bind(object_id.to_owned())
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// What to search for; every filter is optional.
#[derive(Clone, Debug, Default)]
pub struct Search {
    pub actor_id: Option<String>,
    pub object_kind: Option<String>,
    pub object_id: Option<String>,
    pub action: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub limit: u32,
    pub offset: u32,
}

/// The organization's events matching `search`, newest first, one page.
pub async fn search(
    conn: &mut AnyConnection,
    org: OrganizationId,
    search: &Search,
) -> Result<Vec<StoredEvent>, StoreError> {
    // Each filter is "$n IS NULL OR column = $n", so the statement is fixed text.
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events WHERE organization_id = $1 \
         AND ($2 IS NULL OR actor_id = $2) AND ($3 IS NULL OR object_kind = $3) \
         AND ($4 IS NULL OR object_id = $4) AND ($5 IS NULL OR action = $5) \
         AND ($6 IS NULL OR at >= $6) AND ($7 IS NULL OR at < $7) \
         ORDER BY seq DESC, id DESC LIMIT $8 OFFSET $9"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(search.actor_id.clone())
        .bind(search.object_kind.clone())
        .bind(search.object_id.clone())
        .bind(search.action.clone())
        .bind(search.from.map(to_millis))
        .bind(search.to.map(to_millis))
        .bind(i64::from(search.limit))
        .bind(i64::from(search.offset))
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}
