//! The long-term audit ledger's rows: entries with their running roots, the head (size and
//! compact frontier of the Merkle tree), and signed checkpoints.

use crate::{Backend, StoreError, to_millis};
use lockstep_domain::OrganizationId;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

/// Tables kept after their organization is deleted: ids and keyed hashes only, meaningless
/// without the destroyed key, and still verifiable.
pub const RETAINED_AFTER_DELETION: [&str; 3] =
    ["ledger_checkpoints", "ledger_entries", "ledger_heads"];

/// The tree's size and compact frontier (the roots of its perfect subtrees, left to right).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Head {
    pub size: u64,
    pub frontier: Vec<[u8; 32]>,
}

fn hashes(bytes: &[u8]) -> Result<Vec<[u8; 32]>, StoreError> {
    let (chunks, rest) = bytes.as_chunks::<32>();
    if !rest.is_empty() {
        return Err(StoreError::Corrupt("ledger hashes"));
    }
    Ok(chunks.to_vec())
}

/// The ledger's head, locked for this transaction on PostgreSQL (SQLite's write transaction
/// already serializes writers).
pub async fn head(
    conn: &mut AnyConnection,
    backend: Backend,
    org: OrganizationId,
) -> Result<Head, StoreError> {
    let sql = match backend {
        Backend::Sqlite => "SELECT size, frontier FROM ledger_heads WHERE organization_id = $1",
        Backend::Postgres => {
            "SELECT size, frontier FROM ledger_heads WHERE organization_id = $1 FOR UPDATE"
        }
    };
    let row = sqlx::query(sql)
        .bind(org.to_string())
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else {
        return Ok(Head::default());
    };
    let size: i64 = row.try_get("size")?;
    let frontier: Vec<u8> = row.try_get("frontier")?;
    Ok(Head {
        size: u64::try_from(size).map_err(|_| StoreError::Corrupt("ledger size"))?,
        frontier: hashes(&frontier)?,
    })
}

/// Appends entry number `head.size - 1` (the head is the one after appending).
pub async fn append(
    conn: &mut AnyConnection,
    org: OrganizationId,
    entry: &[u8],
    running_root: &[u8; 32],
    head: &Head,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let size = i64::try_from(head.size).map_err(|_| StoreError::Corrupt("ledger size"))?;
    sqlx::query(
        "INSERT INTO ledger_entries (organization_id, idx, entry, running_root) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(org.to_string())
    .bind(size - 1)
    .bind(entry.to_vec())
    .bind(running_root.to_vec())
    .execute(&mut *conn)
    .await
    .map_err(StoreError::unique("ledger entry"))?;
    sqlx::query(
        "INSERT INTO ledger_heads (organization_id, size, frontier, updated_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (organization_id) DO UPDATE \
         SET size = excluded.size, frontier = excluded.frontier, updated_at = excluded.updated_at",
    )
    .bind(org.to_string())
    .bind(size)
    .bind(head.frontier.concat())
    .bind(to_millis(at))
    .execute(conn)
    .await?;
    Ok(())
}

/// Every entry with its running root, in order.
pub async fn entries(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<Vec<(Vec<u8>, [u8; 32])>, StoreError> {
    let rows = sqlx::query(
        "SELECT entry, running_root FROM ledger_entries WHERE organization_id = $1 ORDER BY idx",
    )
    .bind(org.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let root: Vec<u8> = row.try_get("running_root")?;
            Ok((
                row.try_get("entry")?,
                root.try_into()
                    .map_err(|_| StoreError::Corrupt("running root"))?,
            ))
        })
        .collect()
}

/// Stores a signed checkpoint (a second one for the same size is ignored).
pub async fn insert_checkpoint(
    conn: &mut AnyConnection,
    org: OrganizationId,
    size: u64,
    note: &str,
    vkey: &str,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let size = i64::try_from(size).map_err(|_| StoreError::Corrupt("ledger size"))?;
    sqlx::query(
        "INSERT INTO ledger_checkpoints (organization_id, size, note, vkey, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (organization_id, size) DO NOTHING",
    )
    .bind(org.to_string())
    .bind(size)
    .bind(note.to_owned())
    .bind(vkey.to_owned())
    .bind(to_millis(at))
    .execute(conn)
    .await?;
    Ok(())
}

/// Every signed checkpoint, oldest first.
pub async fn checkpoints(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<Vec<String>, StoreError> {
    let rows =
        sqlx::query("SELECT note FROM ledger_checkpoints WHERE organization_id = $1 ORDER BY size")
            .bind(org.to_string())
            .fetch_all(conn)
            .await?;
    rows.iter()
        .map(|row| row.try_get::<String, _>("note").map_err(StoreError::from))
        .collect()
}

/// Ledgers that grew since their latest checkpoint: `(organization, size)`.
pub async fn needing_checkpoint(
    conn: &mut AnyConnection,
) -> Result<Vec<(OrganizationId, u64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT h.organization_id, h.size FROM ledger_heads h WHERE h.size > COALESCE( \
         (SELECT MAX(c.size) FROM ledger_checkpoints c WHERE c.organization_id = h.organization_id), 0) \
         AND EXISTS (SELECT 1 FROM organizations o WHERE o.id = h.organization_id)",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let org: String = row.try_get("organization_id")?;
            let size: i64 = row.try_get("size")?;
            Ok((
                org.parse()
                    .map_err(|_| StoreError::Corrupt("organization id"))?,
                u64::try_from(size).map_err(|_| StoreError::Corrupt("ledger size"))?,
            ))
        })
        .collect()
}

/// The verifier key of the newest checkpoint.
pub async fn latest_vkey(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query(
        "SELECT vkey FROM ledger_checkpoints WHERE organization_id = $1 ORDER BY size DESC LIMIT 1",
    )
    .bind(org.to_string())
    .fetch_optional(conn)
    .await?;
    row.map(|r| r.try_get::<String, _>("vkey"))
        .transpose()
        .map_err(StoreError::from)
}

/// Every organization that has a ledger (deleted ones included), by id.
pub async fn ledgers(conn: &mut AnyConnection) -> Result<Vec<OrganizationId>, StoreError> {
    let rows =
        sqlx::query("SELECT DISTINCT organization_id FROM ledger_entries ORDER BY organization_id")
            .fetch_all(conn)
            .await?;
    rows.iter()
        .map(|row| {
            let org: String = row.try_get("organization_id")?;
            org.parse()
                .map_err(|_| StoreError::Corrupt("organization id"))
        })
        .collect()
}
