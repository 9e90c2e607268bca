//! Data sets: records pulled through a pipeline and staged for review, their shares, their
//! records in chunks and their edits. Every payload is ciphertext made by the caller under the
//! data set's own key; the key is stored only wrapped by the organization's key. In clear: ids,
//! the state, times, counts and one flags byte per record.

use crate::{StoreError, from_millis, to_millis};
use lockstep_domain::{DatasetId, OrganizationId, PipelineId, UserId};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDataset {
    pub id: DatasetId,
    pub organization_id: OrganizationId,
    pub pipeline_id: PipelineId,
    pub owner_id: UserId,
    /// The data set's key, sealed under the organization's key (bound to the data set).
    pub key_ciphertext: Vec<u8>,
    pub name_ciphertext: Vec<u8>,
    pub filter_ciphertext: Option<Vec<u8>>,
    /// The records' schema (and what the data set needs to open them), sealed.
    pub schema_ciphertext: Option<Vec<u8>>,
    /// `pulling`, `ready`, `submitting`, `submitted`, `failed`.
    pub state: String,
    /// Why it failed, in words that name no value.
    pub message: Option<String>,
    /// Counts as JSON (numbers only).
    pub counts: String,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    /// Last opened, edited or submitted.
    pub touched_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, organization_id, pipeline_id, owner_id, key_ciphertext, \
     name_ciphertext, filter_ciphertext, schema_ciphertext, state, message, counts, lease_owner, \
     lease_expires_at, created_at, touched_at, updated_at";

fn parse<T: std::str::FromStr>(value: String, what: &'static str) -> Result<T, StoreError> {
    value.parse().map_err(|_| StoreError::Corrupt(what))
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<StoredDataset, StoreError> {
    let lease: Option<i64> = row.try_get("lease_expires_at")?;
    Ok(StoredDataset {
        id: parse(row.try_get("id")?, "data set id")?,
        organization_id: parse(row.try_get("organization_id")?, "organization id")?,
        pipeline_id: parse(row.try_get("pipeline_id")?, "pipeline id")?,
        owner_id: parse(row.try_get("owner_id")?, "user id")?,
        key_ciphertext: row.try_get("key_ciphertext")?,
        name_ciphertext: row.try_get("name_ciphertext")?,
        filter_ciphertext: row.try_get("filter_ciphertext")?,
        schema_ciphertext: row.try_get("schema_ciphertext")?,
        state: row.try_get("state")?,
        message: row.try_get("message")?,
        counts: row.try_get("counts")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: lease.map(from_millis).transpose()?,
        created_at: from_millis(row.try_get("created_at")?)?,
        touched_at: from_millis(row.try_get("touched_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
    })
}

pub async fn insert(conn: &mut AnyConnection, d: &StoredDataset) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO datasets (id, organization_id, pipeline_id, owner_id, key_ciphertext, \
         name_ciphertext, filter_ciphertext, schema_ciphertext, state, message, counts, \
         lease_owner, lease_expires_at, created_at, touched_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(d.id.to_string())
    .bind(d.organization_id.to_string())
    .bind(d.pipeline_id.to_string())
    .bind(d.owner_id.to_string())
    .bind(d.key_ciphertext.clone())
    .bind(d.name_ciphertext.clone())
    .bind(d.filter_ciphertext.clone())
    .bind(d.schema_ciphertext.clone())
    .bind(d.state.clone())
    .bind(d.message.clone())
    .bind(d.counts.clone())
    .bind(d.lease_owner.clone())
    .bind(d.lease_expires_at.map(to_millis))
    .bind(to_millis(d.created_at))
    .bind(to_millis(d.touched_at))
    .bind(to_millis(d.updated_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: DatasetId,
) -> Result<Option<StoredDataset>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM datasets WHERE organization_id = $1 AND id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The data sets `user` owns or that are shared with them, newest first.
pub async fn list_visible(
    conn: &mut AnyConnection,
    org: OrganizationId,
    user: UserId,
) -> Result<Vec<StoredDataset>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM datasets WHERE organization_id = $1 AND (owner_id = $2 OR id IN \
         (SELECT dataset_id FROM dataset_shares WHERE user_id = $2)) ORDER BY created_at DESC, id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(user.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Every data set of the organization, newest first.
pub async fn list_all(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<Vec<StoredDataset>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM datasets WHERE organization_id = $1 ORDER BY created_at DESC, id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Stores the state, message, counts, schema and lease of a data set.
pub async fn update(conn: &mut AnyConnection, d: &StoredDataset) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE datasets SET owner_id = $3, state = $4, message = $5, counts = $6, \
         lease_owner = $7, lease_expires_at = $8, touched_at = $9, updated_at = $10, \
         schema_ciphertext = $11, filter_ciphertext = $12 \
         WHERE organization_id = $1 AND id = $2",
    )
    .bind(d.organization_id.to_string())
    .bind(d.id.to_string())
    .bind(d.owner_id.to_string())
    .bind(d.state.clone())
    .bind(d.message.clone())
    .bind(d.counts.clone())
    .bind(d.lease_owner.clone())
    .bind(d.lease_expires_at.map(to_millis))
    .bind(to_millis(d.touched_at))
    .bind(to_millis(d.updated_at))
    .bind(d.schema_ciphertext.clone())
    .bind(d.filter_ciphertext.clone())
    .execute(conn)
    .await?;
    Ok(())
}

/// Renews the lease of the data set's pull or submit held by `owner` and stores its counts;
/// false when the lease is no longer theirs.
pub async fn heartbeat(
    conn: &mut AnyConnection,
    id: DatasetId,
    owner: &str,
    counts: &str,
    until: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE datasets SET counts = $3, lease_expires_at = $4 WHERE id = $1 AND lease_owner = $2",
    )
    .bind(id.to_string())
    .bind(owner.to_owned())
    .bind(counts.to_owned())
    .bind(to_millis(until))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks the data set opened now.
pub async fn touch(
    conn: &mut AnyConnection,
    id: DatasetId,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE datasets SET touched_at = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(to_millis(at))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: DatasetId,
) -> Result<bool, StoreError> {
    // Children first: SQLite's secure_delete overwrites their pages as they go.
    for table in ["dataset_chunks", "dataset_edits", "dataset_shares"] {
        let sql = format!("DELETE FROM {table} WHERE dataset_id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
    }
    let done = sqlx::query("DELETE FROM datasets WHERE organization_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// What the clean-up needs to know of every data set: its owner's last sign-in and the
/// organization's retention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staleness {
    pub id: DatasetId,
    pub organization_id: OrganizationId,
    pub owner_id: UserId,
    pub state: String,
    pub touched_at: OffsetDateTime,
    pub lease_expires_at: Option<OffsetDateTime>,
    /// The owner's last sign-in, or when they joined.
    pub owner_seen_at: OffsetDateTime,
    pub retention_days: u32,
}

pub async fn staleness(conn: &mut AnyConnection) -> Result<Vec<Staleness>, StoreError> {
    let rows = sqlx::query(
        "SELECT d.id, d.organization_id, d.owner_id, d.state, d.touched_at, d.lease_expires_at, \
         COALESCE(u.last_signed_in_at, u.created_at) AS owner_seen_at, \
         COALESCE(s.dataset_retention_days, 5) AS retention_days \
         FROM datasets d JOIN users u ON u.id = d.owner_id \
         LEFT JOIN organization_settings s ON s.organization_id = d.organization_id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let lease: Option<i64> = row.try_get("lease_expires_at")?;
            Ok(Staleness {
                id: parse(row.try_get("id")?, "data set id")?,
                organization_id: parse(row.try_get("organization_id")?, "organization id")?,
                owner_id: parse(row.try_get("owner_id")?, "user id")?,
                state: row.try_get("state")?,
                touched_at: from_millis(row.try_get("touched_at")?)?,
                lease_expires_at: lease.map(from_millis).transpose()?,
                owner_seen_at: from_millis(row.try_get("owner_seen_at")?)?,
                retention_days: u32::try_from(row.try_get::<i64, _>("retention_days")?)
                    .map_err(|_| StoreError::Corrupt("retention days"))?,
            })
        })
        .collect()
}

// Shares

pub async fn add_share(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: DatasetId,
    user: UserId,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO dataset_shares (dataset_id, user_id, organization_id, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (dataset_id, user_id) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(user.to_string())
    .bind(org.to_string())
    .bind(to_millis(at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn remove_share(
    conn: &mut AnyConnection,
    id: DatasetId,
    user: UserId,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM dataset_shares WHERE dataset_id = $1 AND user_id = $2")
        .bind(id.to_string())
        .bind(user.to_string())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The members a data set is shared with, in the order they were added.
pub async fn shares(conn: &mut AnyConnection, id: DatasetId) -> Result<Vec<UserId>, StoreError> {
    let rows = sqlx::query(
        "SELECT user_id FROM dataset_shares WHERE dataset_id = $1 ORDER BY created_at, user_id",
    )
    .bind(id.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| parse(row.try_get("user_id")?, "user id"))
        .collect()
}

// Chunks

/// Records (`records`) or the destination's records read for the comparison (`destination`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkKind {
    Records,
    Destination,
}

impl ChunkKind {
    fn as_str(self) -> &'static str {
        match self {
            ChunkKind::Records => "records",
            ChunkKind::Destination => "destination",
        }
    }
}

/// A chunk's place and flags, without its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkIndex {
    pub chunk: u64,
    pub first_row: u64,
    pub row_count: u64,
    /// One byte per record.
    pub flags: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredChunk {
    pub index: ChunkIndex,
    /// Sealed under the data set's key.
    pub payload: Vec<u8>,
}

fn as_i64(v: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(what))
}

fn as_u64(row: &sqlx::any::AnyRow, column: &str) -> Result<u64, StoreError> {
    u64::try_from(row.try_get::<i64, _>(column)?).map_err(|_| StoreError::Corrupt("chunk"))
}

pub async fn put_chunk(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: DatasetId,
    kind: ChunkKind,
    chunk: &StoredChunk,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO dataset_chunks (dataset_id, organization_id, kind, chunk, first_row, \
         row_count, flags, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (dataset_id, kind, chunk) DO UPDATE SET first_row = excluded.first_row, \
         row_count = excluded.row_count, flags = excluded.flags, payload = excluded.payload",
    )
    .bind(id.to_string())
    .bind(org.to_string())
    .bind(kind.as_str())
    .bind(as_i64(chunk.index.chunk, "chunk")?)
    .bind(as_i64(chunk.index.first_row, "chunk")?)
    .bind(as_i64(chunk.index.row_count, "chunk")?)
    .bind(chunk.index.flags.clone())
    .bind(chunk.payload.clone())
    .execute(conn)
    .await?;
    Ok(())
}

/// Changes a chunk's flags only.
pub async fn set_flags(
    conn: &mut AnyConnection,
    id: DatasetId,
    kind: ChunkKind,
    chunk: u64,
    flags: &[u8],
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE dataset_chunks SET flags = $4 WHERE dataset_id = $1 AND kind = $2 AND chunk = $3",
    )
    .bind(id.to_string())
    .bind(kind.as_str())
    .bind(as_i64(chunk, "chunk")?)
    .bind(flags.to_vec())
    .execute(conn)
    .await?;
    Ok(())
}

/// Every chunk's place and flags, in order.
pub async fn chunk_index(
    conn: &mut AnyConnection,
    id: DatasetId,
    kind: ChunkKind,
) -> Result<Vec<ChunkIndex>, StoreError> {
    let rows = sqlx::query(
        "SELECT chunk, first_row, row_count, flags FROM dataset_chunks \
         WHERE dataset_id = $1 AND kind = $2 ORDER BY chunk",
    )
    .bind(id.to_string())
    .bind(kind.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ChunkIndex {
                chunk: as_u64(row, "chunk")?,
                first_row: as_u64(row, "first_row")?,
                row_count: as_u64(row, "row_count")?,
                flags: row.try_get("flags")?,
            })
        })
        .collect()
}

/// One chunk with its payload.
pub async fn chunk(
    conn: &mut AnyConnection,
    id: DatasetId,
    kind: ChunkKind,
    chunk: u64,
) -> Result<Option<StoredChunk>, StoreError> {
    let row = sqlx::query(
        "SELECT chunk, first_row, row_count, flags, payload FROM dataset_chunks \
         WHERE dataset_id = $1 AND kind = $2 AND chunk = $3",
    )
    .bind(id.to_string())
    .bind(kind.as_str())
    .bind(as_i64(chunk, "chunk")?)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(StoredChunk {
            index: ChunkIndex {
                chunk: as_u64(&row, "chunk")?,
                first_row: as_u64(&row, "first_row")?,
                row_count: as_u64(&row, "row_count")?,
                flags: row.try_get("flags")?,
            },
            payload: row.try_get("payload")?,
        })
    })
    .transpose()
}

/// Removes every chunk and edit of the data set (a new pull replaces them).
pub async fn clear_chunks(
    conn: &mut AnyConnection,
    id: DatasetId,
    kind: ChunkKind,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM dataset_chunks WHERE dataset_id = $1 AND kind = $2")
        .bind(id.to_string())
        .bind(kind.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

// Edits

pub async fn put_edit(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: DatasetId,
    key_hash: &[u8],
    payload: &[u8],
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO dataset_edits (dataset_id, organization_id, key_hash, payload, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (dataset_id, key_hash) DO UPDATE SET \
         payload = excluded.payload, updated_at = excluded.updated_at",
    )
    .bind(id.to_string())
    .bind(org.to_string())
    .bind(key_hash.to_vec())
    .bind(payload.to_vec())
    .bind(to_millis(at))
    .execute(conn)
    .await?;
    Ok(())
}

/// `(key hash, payload)` of every edit.
pub async fn edits(
    conn: &mut AnyConnection,
    id: DatasetId,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
    let rows = sqlx::query("SELECT key_hash, payload FROM dataset_edits WHERE dataset_id = $1")
        .bind(id.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("key_hash")?, row.try_get("payload")?)))
        .collect()
}

// Files

/// What a data set's file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// The bill of materials the data set was read from.
    Source,
    /// The file it is compared with.
    Against,
    /// A file of one of its parts (a thumbnail, a PDF, a STEP or DXF derivative).
    Part,
    /// The shape of a bill of materials' tree (each record's parent), for pages of the tree.
    Tree,
}

impl FileKind {
    fn as_str(self) -> &'static str {
        match self {
            FileKind::Source => "source",
            FileKind::Against => "against",
            FileKind::Part => "part",
            FileKind::Tree => "tree",
        }
    }
}

/// A data set's file: keyed hashes for its place, its payload sealed under the data set's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    pub kind: FileKind,
    pub file_key: Vec<u8>,
    pub part_key: Vec<u8>,
    pub size: u64,
    /// What the file is, sealed apart from its bytes.
    pub header: Vec<u8>,
    pub payload: Vec<u8>,
    pub created_at: OffsetDateTime,
}

/// Adds a file, or replaces the one of the same kind and key.
pub async fn put_file(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: DatasetId,
    file: &StoredFile,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO dataset_files (dataset_id, organization_id, kind, file_key, part_key, size, \
         header, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (dataset_id, kind, file_key) DO UPDATE SET part_key = excluded.part_key, \
         size = excluded.size, header = excluded.header, payload = excluded.payload, \
         created_at = excluded.created_at",
    )
    .bind(id.to_string())
    .bind(org.to_string())
    .bind(file.kind.as_str())
    .bind(file.file_key.clone())
    .bind(file.part_key.clone())
    .bind(as_i64(file.size, "file size")?)
    .bind(file.header.clone())
    .bind(file.payload.clone())
    .bind(to_millis(file.created_at))
    .execute(conn)
    .await?;
    Ok(())
}

fn stored_file(row: &sqlx::any::AnyRow, kind: FileKind) -> Result<StoredFile, StoreError> {
    Ok(StoredFile {
        kind,
        file_key: row.try_get("file_key")?,
        part_key: row.try_get("part_key")?,
        size: as_u64(row, "size")?,
        header: row.try_get("header")?,
        payload: row.try_get("payload")?,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

/// One file by kind and key.
pub async fn file(
    conn: &mut AnyConnection,
    id: DatasetId,
    kind: FileKind,
    file_key: &[u8],
) -> Result<Option<StoredFile>, StoreError> {
    let row = sqlx::query(
        "SELECT file_key, part_key, size, header, payload, created_at FROM dataset_files \
         WHERE dataset_id = $1 AND kind = $2 AND file_key = $3",
    )
    .bind(id.to_string())
    .bind(kind.as_str())
    .bind(file_key.to_vec())
    .fetch_optional(conn)
    .await?;
    row.map(|row| stored_file(&row, kind)).transpose()
}

/// Every file of a kind, in key order.
pub async fn files(
    conn: &mut AnyConnection,
    id: DatasetId,
    kind: FileKind,
) -> Result<Vec<StoredFile>, StoreError> {
    let rows = sqlx::query(
        "SELECT file_key, part_key, size, header, payload, created_at FROM dataset_files \
         WHERE dataset_id = $1 AND kind = $2 ORDER BY file_key",
    )
    .bind(id.to_string())
    .bind(kind.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter().map(|row| stored_file(row, kind)).collect()
}

/// Every file of a kind without its bytes (the payload left empty), in key order.
pub async fn file_headers(
    conn: &mut AnyConnection,
    id: DatasetId,
    kind: FileKind,
) -> Result<Vec<StoredFile>, StoreError> {
    let rows = sqlx::query(
        "SELECT file_key, part_key, size, header, created_at FROM dataset_files \
         WHERE dataset_id = $1 AND kind = $2 ORDER BY file_key",
    )
    .bind(id.to_string())
    .bind(kind.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(StoredFile {
                kind,
                file_key: row.try_get("file_key")?,
                part_key: row.try_get("part_key")?,
                size: as_u64(row, "size")?,
                header: row.try_get("header")?,
                payload: Vec::new(),
                created_at: from_millis(row.try_get("created_at")?)?,
            })
        })
        .collect()
}

/// Removes every file of a kind.
pub async fn clear_files(
    conn: &mut AnyConnection,
    id: DatasetId,
    kind: FileKind,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM dataset_files WHERE dataset_id = $1 AND kind = $2")
        .bind(id.to_string())
        .bind(kind.as_str())
        .execute(conn)
        .await?;
    Ok(())
}
