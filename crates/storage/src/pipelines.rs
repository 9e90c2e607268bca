//! Pipelines, their runs (a queue leased by workers) and the runs' per-record errors. Payloads
//! (specification, cursor, rejected records) are ciphertext made by the caller.

use crate::{Backend, StoreError, from_millis, to_millis};
use lockstep_domain::{ConnectionId, OrganizationId, PipelineId, RunId, UserId};
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPipeline {
    pub id: PipelineId,
    pub organization_id: OrganizationId,
    /// The keyed index of the name (unique in the organization), or, in a row written before
    /// names were sealed (`name_ciphertext` is `None`), the name in clear.
    pub name: String,
    /// The name sealed under the organization's key.
    pub name_ciphertext: Option<Vec<u8>>,
    pub source_connection_id: ConnectionId,
    pub destination_connection_id: ConnectionId,
    pub mode: String,
    pub spec_ciphertext: Vec<u8>,
    pub schedule: Option<String>,
    pub next_run_at: Option<OffsetDateTime>,
    pub cursor_ciphertext: Option<Vec<u8>>,
    pub created_by: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const PIPELINE_COLUMNS: &str = "id, organization_id, name, name_ciphertext, source_connection_id, \
     destination_connection_id, mode, spec_ciphertext, schedule, next_run_at, cursor_ciphertext, \
     created_by, created_at, updated_at";

fn parse<T: std::str::FromStr>(value: String, what: &'static str) -> Result<T, StoreError> {
    value.parse().map_err(|_| StoreError::Corrupt(what))
}

fn pipeline_from_row(row: &sqlx::any::AnyRow) -> Result<StoredPipeline, StoreError> {
    let next: Option<i64> = row.try_get("next_run_at")?;
    let created_by: Option<String> = row.try_get("created_by")?;
    Ok(StoredPipeline {
        id: parse(row.try_get("id")?, "pipeline id")?,
        organization_id: parse(row.try_get("organization_id")?, "organization id")?,
        name: row.try_get("name")?,
        name_ciphertext: row.try_get("name_ciphertext")?,
        source_connection_id: parse(row.try_get("source_connection_id")?, "connection id")?,
        destination_connection_id: parse(
            row.try_get("destination_connection_id")?,
            "connection id",
        )?,
        mode: row.try_get("mode")?,
        spec_ciphertext: row.try_get("spec_ciphertext")?,
        schedule: row.try_get("schedule")?,
        next_run_at: next.map(from_millis).transpose()?,
        cursor_ciphertext: row.try_get("cursor_ciphertext")?,
        created_by: created_by.map(|u| parse(u, "user id")).transpose()?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
    })
}

pub async fn insert(conn: &mut AnyConnection, p: &StoredPipeline) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO pipelines (id, organization_id, name, source_connection_id, \
         destination_connection_id, mode, spec_ciphertext, schedule, next_run_at, \
         cursor_ciphertext, created_by, created_at, updated_at, name_ciphertext) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(p.id.to_string())
    .bind(p.organization_id.to_string())
    .bind(p.name.clone())
    .bind(p.source_connection_id.to_string())
    .bind(p.destination_connection_id.to_string())
    .bind(p.mode.clone())
    .bind(p.spec_ciphertext.clone())
    .bind(p.schedule.clone())
    .bind(p.next_run_at.map(to_millis))
    .bind(p.cursor_ciphertext.clone())
    .bind(p.created_by.map(|u| u.to_string()))
    .bind(to_millis(p.created_at))
    .bind(to_millis(p.updated_at))
    .bind(p.name_ciphertext.clone())
    .execute(conn)
    .await
    .map_err(StoreError::unique("pipeline with this name"))?;
    Ok(())
}

/// Stores a changed definition (name, connections, mode, spec, schedule, next run, cursor).
pub async fn update(conn: &mut AnyConnection, p: &StoredPipeline) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE pipelines SET name = $1, source_connection_id = $2, \
         destination_connection_id = $3, mode = $4, spec_ciphertext = $5, schedule = $6, \
         next_run_at = $7, cursor_ciphertext = $8, updated_at = $9, name_ciphertext = $12 \
         WHERE organization_id = $10 AND id = $11",
    )
    .bind(p.name.clone())
    .bind(p.source_connection_id.to_string())
    .bind(p.destination_connection_id.to_string())
    .bind(p.mode.clone())
    .bind(p.spec_ciphertext.clone())
    .bind(p.schedule.clone())
    .bind(p.next_run_at.map(to_millis))
    .bind(p.cursor_ciphertext.clone())
    .bind(to_millis(p.updated_at))
    .bind(p.organization_id.to_string())
    .bind(p.id.to_string())
    .bind(p.name_ciphertext.clone())
    .execute(conn)
    .await
    .map_err(StoreError::unique("pipeline with this name"))?;
    Ok(())
}

pub async fn set_cursor(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: PipelineId,
    cursor_ciphertext: Option<&[u8]>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE pipelines SET cursor_ciphertext = $1 WHERE organization_id = $2 AND id = $3",
    )
    .bind(cursor_ciphertext.map(<[u8]>::to_vec))
    .bind(org.to_string())
    .bind(id.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: PipelineId,
) -> Result<Option<StoredPipeline>, StoreError> {
    let sql =
        format!("SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE organization_id = $1 AND id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(pipeline_from_row).transpose()
}

/// The organization's pipelines (in no useful order: names are sealed, the caller sorts).
pub async fn list(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<Vec<StoredPipeline>, StoreError> {
    let sql =
        format!("SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE organization_id = $1 ORDER BY id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter().map(pipeline_from_row).collect()
}

/// How many pipelines read from or write to the connection.
pub async fn count_using_connection(
    conn: &mut AnyConnection,
    org: OrganizationId,
    connection: ConnectionId,
) -> Result<i64, StoreError> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS n FROM pipelines WHERE organization_id = $1 \
         AND (source_connection_id = $2 OR destination_connection_id = $2)",
    )
    .bind(org.to_string())
    .bind(connection.to_string())
    .fetch_one(conn)
    .await?
    .try_get("n")?)
}

pub async fn delete(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: PipelineId,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM pipelines WHERE organization_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Pipelines whose next scheduled run is due, across organizations (the scheduler's view: ids,
/// times and the cron expression).
pub async fn due(
    conn: &mut AnyConnection,
    now: OffsetDateTime,
) -> Result<Vec<(OrganizationId, PipelineId, OffsetDateTime, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT organization_id, id, next_run_at, schedule FROM pipelines \
         WHERE next_run_at IS NOT NULL AND schedule IS NOT NULL AND next_run_at <= $1 \
         ORDER BY next_run_at",
    )
    .bind(to_millis(now))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                parse(row.try_get("organization_id")?, "organization id")?,
                parse(row.try_get("id")?, "pipeline id")?,
                from_millis(row.try_get("next_run_at")?)?,
                row.try_get("schedule")?,
            ))
        })
        .collect()
}

/// Moves a pipeline's next scheduled run, only if it is still `expected` (so two schedulers
/// cannot both advance it).
pub async fn advance_schedule(
    conn: &mut AnyConnection,
    id: PipelineId,
    expected: OffsetDateTime,
    next: Option<OffsetDateTime>,
) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE pipelines SET next_run_at = $1 WHERE id = $2 AND next_run_at = $3")
            .bind(next.map(to_millis))
            .bind(id.to_string())
            .bind(to_millis(expected))
            .execute(conn)
            .await?;
    Ok(done.rows_affected() > 0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RunState> {
        [
            RunState::Queued,
            RunState::Running,
            RunState::Succeeded,
            RunState::Failed,
            RunState::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Cancelled
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRun {
    pub id: RunId,
    pub organization_id: OrganizationId,
    pub pipeline_id: PipelineId,
    pub state: RunState,
    /// `manual` or `schedule`.
    pub trigger: String,
    pub requested_by: Option<UserId>,
    pub scheduled_for: Option<OffsetDateTime>,
    pub records_read: u64,
    pub records_written: u64,
    pub records_rejected: u64,
    pub warnings: u64,
    /// Records the filter skipped.
    pub records_skipped: u64,
    /// Incremental runs: records read but not written this run (at or after the first rejected
    /// record's cursor); they are read again next run.
    pub records_held_back: u64,
    /// Failed warning-level rules: rule label (`rules[3]`) → count.
    pub warning_counts: BTreeMap<String, u64>,
    /// Why it failed, in the hub's own words (never a record value).
    pub message: Option<String>,
    pub cancel_requested: bool,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<OffsetDateTime>,
    pub attempts: u32,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
}

const RUN_COLUMNS: &str = "id, organization_id, pipeline_id, state, trigger, requested_by, \
     scheduled_for, records_read, records_written, records_rejected, warnings, records_skipped, \
     records_held_back, warning_counts, message, cancel_requested, lease_owner, lease_expires_at, attempts, created_at, started_at, \
     finished_at, updated_at";

fn count(row: &sqlx::any::AnyRow, column: &str) -> Result<u64, StoreError> {
    let n: i64 = row.try_get(column)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn opt_time(row: &sqlx::any::AnyRow, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    let ms: Option<i64> = row.try_get(column)?;
    ms.map(from_millis).transpose()
}

fn warning_counts_from(text: Option<String>) -> Result<BTreeMap<String, u64>, StoreError> {
    match text {
        None => Ok(BTreeMap::new()),
        Some(text) => {
            serde_json::from_str(&text).map_err(|_| StoreError::Corrupt("run warning counts"))
        }
    }
}

fn run_from_row(row: &sqlx::any::AnyRow) -> Result<StoredRun, StoreError> {
    let state: String = row.try_get("state")?;
    let requested_by: Option<String> = row.try_get("requested_by")?;
    let cancel: i64 = row.try_get("cancel_requested")?;
    let attempts: i64 = row.try_get("attempts")?;
    Ok(StoredRun {
        id: parse(row.try_get("id")?, "run id")?,
        organization_id: parse(row.try_get("organization_id")?, "organization id")?,
        pipeline_id: parse(row.try_get("pipeline_id")?, "pipeline id")?,
        state: RunState::parse(&state).ok_or(StoreError::Corrupt("run state"))?,
        trigger: row.try_get("trigger")?,
        requested_by: requested_by.map(|u| parse(u, "user id")).transpose()?,
        scheduled_for: opt_time(row, "scheduled_for")?,
        records_read: count(row, "records_read")?,
        records_written: count(row, "records_written")?,
        records_rejected: count(row, "records_rejected")?,
        warnings: count(row, "warnings")?,
        records_skipped: count(row, "records_skipped")?,
        records_held_back: count(row, "records_held_back")?,
        warning_counts: warning_counts_from(row.try_get("warning_counts")?)?,
        message: row.try_get("message")?,
        cancel_requested: cancel != 0,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: opt_time(row, "lease_expires_at")?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        created_at: from_millis(row.try_get("created_at")?)?,
        started_at: opt_time(row, "started_at")?,
        finished_at: opt_time(row, "finished_at")?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
    })
}

/// Queues a run. A scheduled run with the same `scheduled_for` as an existing one is a conflict:
/// each scheduled time runs once, however many schedulers there are.
pub async fn insert_run(conn: &mut AnyConnection, r: &StoredRun) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO runs (id, organization_id, pipeline_id, state, trigger, requested_by, \
         scheduled_for, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(r.id.to_string())
    .bind(r.organization_id.to_string())
    .bind(r.pipeline_id.to_string())
    .bind(r.state.as_str())
    .bind(r.trigger.clone())
    .bind(r.requested_by.map(|u| u.to_string()))
    .bind(r.scheduled_for.map(to_millis))
    .bind(to_millis(r.created_at))
    .bind(to_millis(r.updated_at))
    .execute(conn)
    .await
    .map_err(StoreError::unique("run for this scheduled time"))?;
    Ok(())
}

pub async fn get_run(
    conn: &mut AnyConnection,
    org: OrganizationId,
    pipeline: PipelineId,
    id: RunId,
) -> Result<Option<StoredRun>, StoreError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE organization_id = $1 AND pipeline_id = $2 AND id = $3"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(pipeline.to_string())
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(run_from_row).transpose()
}

/// A pipeline's runs, newest first.
pub async fn list_runs(
    conn: &mut AnyConnection,
    org: OrganizationId,
    pipeline: PipelineId,
    limit: u32,
) -> Result<Vec<StoredRun>, StoreError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE organization_id = $1 AND pipeline_id = $2 \
         ORDER BY created_at DESC, id DESC LIMIT $3"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(pipeline.to_string())
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?;
    rows.iter().map(run_from_row).collect()
}

/// The pipeline's run that is queued or running, if any.
pub async fn active_run(
    conn: &mut AnyConnection,
    org: OrganizationId,
    pipeline: PipelineId,
) -> Result<Option<StoredRun>, StoreError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE organization_id = $1 AND pipeline_id = $2 \
         AND state IN ('queued', 'running') ORDER BY created_at LIMIT 1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(pipeline.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(run_from_row).transpose()
}

/// Takes the oldest run that is queued, or running under an expired lease (its worker died),
/// for `owner` until `lease_until`. On PostgreSQL concurrent workers skip each other's rows
/// (`FOR UPDATE SKIP LOCKED`); SQLite's write transactions are serialized anyway.
pub async fn lease_next_run(
    conn: &mut AnyConnection,
    backend: Backend,
    owner: &str,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Result<Option<StoredRun>, StoreError> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "SELECT id FROM runs WHERE state = 'queued' \
         OR (state = 'running' AND lease_expires_at < $1) \
         ORDER BY created_at, id LIMIT 1{lock}"
    );
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to_millis(now))
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let id: String = row.try_get("id")?;
    sqlx::query(
        "UPDATE runs SET state = 'running', lease_owner = $1, lease_expires_at = $2, \
         attempts = attempts + 1, started_at = COALESCE(started_at, $3), updated_at = $3 \
         WHERE id = $4",
    )
    .bind(owner.to_owned())
    .bind(to_millis(lease_until))
    .bind(to_millis(now))
    .bind(id.clone())
    .execute(&mut *conn)
    .await?;
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(conn)
        .await?;
    run_from_row(&row).map(Some)
}

/// Progress counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub read: u64,
    pub written: u64,
    pub rejected: u64,
    pub warnings: u64,
    pub skipped: u64,
    pub held_back: u64,
    /// Failed warning-level rules: rule label → count.
    pub warning_counts: BTreeMap<String, u64>,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Extends the lease and stores progress, if `owner` still holds the run; answers whether it
/// does and whether a cancel was requested.
pub async fn heartbeat(
    conn: &mut AnyConnection,
    id: RunId,
    owner: &str,
    counts: Counts,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Result<Option<bool>, StoreError> {
    let done = sqlx::query(
        "UPDATE runs SET lease_expires_at = $1, records_read = $2, records_written = $3, \
         records_rejected = $4, warnings = $5, updated_at = $6, records_skipped = $9, \
         records_held_back = $10 \
         WHERE id = $7 AND lease_owner = $8 AND state = 'running'",
    )
    .bind(to_millis(lease_until))
    .bind(to_i64(counts.read))
    .bind(to_i64(counts.written))
    .bind(to_i64(counts.rejected))
    .bind(to_i64(counts.warnings))
    .bind(to_millis(now))
    .bind(id.to_string())
    .bind(owner.to_owned())
    .bind(to_i64(counts.skipped))
    .bind(to_i64(counts.held_back))
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT cancel_requested FROM runs WHERE id = $1")
        .bind(id.to_string())
        .fetch_one(conn)
        .await?;
    let cancel: i64 = row.try_get("cancel_requested")?;
    Ok(Some(cancel != 0))
}

/// Ends a run (if `owner` still holds it, when given).
pub async fn finish_run(
    conn: &mut AnyConnection,
    id: RunId,
    owner: Option<&str>,
    state: RunState,
    counts: &Counts,
    message: Option<&str>,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let owned = if owner.is_some() {
        " AND lease_owner = $12"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE runs SET state = $1, records_read = $2, records_written = $3, \
         records_rejected = $4, warnings = $5, message = $6, finished_at = $7, updated_at = $7, \
         lease_owner = NULL, lease_expires_at = NULL, records_skipped = $9, \
         records_held_back = $10, warning_counts = $11 \
         WHERE id = $8 AND state IN ('queued', 'running'){owned}"
    );
    let warning_counts = if counts.warning_counts.is_empty() {
        None
    } else {
        Some(
            serde_json::to_string(&counts.warning_counts)
                .map_err(|_| StoreError::Corrupt("run warning counts"))?,
        )
    };
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(state.as_str())
        .bind(to_i64(counts.read))
        .bind(to_i64(counts.written))
        .bind(to_i64(counts.rejected))
        .bind(to_i64(counts.warnings))
        .bind(message.map(str::to_owned))
        .bind(to_millis(now))
        .bind(id.to_string())
        .bind(to_i64(counts.skipped))
        .bind(to_i64(counts.held_back))
        .bind(warning_counts);
    if let Some(owner) = owner {
        query = query.bind(owner.to_owned());
    }
    let done = query.execute(conn).await?;
    Ok(done.rows_affected() > 0)
}

/// Asks a queued or running run to stop; answers whether it was still active.
pub async fn request_cancel(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: RunId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE runs SET cancel_requested = 1, updated_at = $1 WHERE organization_id = $2 \
         AND id = $3 AND state IN ('queued', 'running')",
    )
    .bind(to_millis(now))
    .bind(org.to_string())
    .bind(id.to_string())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A rejected record to store: what rejected it in clear (`rule` such as `rules[2]`, `kind`
/// `rule` or `error`: no value), the record itself as ciphertext.
#[derive(Clone, Copy, Debug)]
pub struct NewRunError<'a> {
    pub id: &'a str,
    pub position: u64,
    pub rule: &'a str,
    pub kind: &'a str,
    pub ciphertext: &'a [u8],
}

pub async fn insert_run_error(
    conn: &mut AnyConnection,
    org: OrganizationId,
    run: RunId,
    error: NewRunError<'_>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO run_errors (id, organization_id, run_id, position, ciphertext, created_at, \
         rule, kind) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(error.id.to_owned())
    .bind(org.to_string())
    .bind(run.to_string())
    .bind(to_i64(error.position))
    .bind(error.ciphertext.to_vec())
    .bind(to_millis(now))
    .bind(error.rule.to_owned())
    .bind(error.kind.to_owned())
    .execute(conn)
    .await?;
    Ok(())
}

/// A run's rejected records counted per `(kind, rule)`, with the first record of each (for
/// its reason): `(kind, rule, count, first id, first ciphertext)`, ordered by kind and rule.
pub async fn run_error_groups(
    conn: &mut AnyConnection,
    org: OrganizationId,
    run: RunId,
) -> Result<Vec<(String, String, u64, String, Vec<u8>)>, StoreError> {
    let rows = sqlx::query(
        "SELECT e.kind, e.rule, g.n, e.id, e.ciphertext FROM run_errors e JOIN \
         (SELECT kind, rule, COUNT(*) AS n, MIN(position) AS first FROM run_errors \
          WHERE organization_id = $1 AND run_id = $2 GROUP BY kind, rule) g \
         ON e.kind = g.kind AND e.rule = g.rule AND e.position = g.first \
         WHERE e.organization_id = $1 AND e.run_id = $2 ORDER BY e.kind DESC, e.rule",
    )
    .bind(org.to_string())
    .bind(run.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("kind")?,
                row.try_get("rule")?,
                count(row, "n")?,
                row.try_get("id")?,
                row.try_get("ciphertext")?,
            ))
        })
        .collect()
}

/// A run's per-record errors in order: `(id, position, ciphertext)`; only those of one
/// `(kind, rule)` when `group` is given.
pub async fn run_errors(
    conn: &mut AnyConnection,
    org: OrganizationId,
    run: RunId,
    group: Option<(&str, &str)>,
    limit: u32,
    offset: u32,
) -> Result<Vec<(String, u64, Vec<u8>)>, StoreError> {
    let (kind, rule) = group.unwrap_or(("", ""));
    let rows = sqlx::query(
        "SELECT id, position, ciphertext FROM run_errors WHERE organization_id = $1 \
         AND run_id = $2 AND ($5 = 0 OR (kind = $6 AND rule = $7)) \
         ORDER BY position LIMIT $3 OFFSET $4",
    )
    .bind(org.to_string())
    .bind(run.to_string())
    .bind(i64::from(limit))
    .bind(i64::from(offset))
    .bind(i64::from(group.is_some()))
    .bind(kind.to_owned())
    .bind(rule.to_owned())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("id")?,
                count(row, "position")?,
                row.try_get("ciphertext")?,
            ))
        })
        .collect()
}

/// Deletes per-record errors older than `before` (the retention period); answers how many.
pub async fn delete_run_errors_before(
    conn: &mut AnyConnection,
    before: OffsetDateTime,
) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM run_errors WHERE created_at < $1")
        .bind(to_millis(before))
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// The organization's runs created at or after `since`, across its pipelines, newest first.
pub async fn recent_runs(
    conn: &mut AnyConnection,
    org: OrganizationId,
    since: OffsetDateTime,
    limit: u32,
) -> Result<Vec<StoredRun>, StoreError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE organization_id = $1 AND created_at >= $2 \
         ORDER BY created_at DESC, id DESC LIMIT $3"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(to_millis(since))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?;
    rows.iter().map(run_from_row).collect()
}
