//! Deleting run history by hand: finished runs started before a time, with their per-record
//! errors, for one pipeline or the whole organization. Queued and running runs are never
//! touched.

use crate::{StoreError, to_millis};
use lockstep_domain::{OrganizationId, PipelineId};
use sqlx::AnyConnection;
use time::OffsetDateTime;

/// Which runs: the organization's finished ones, of one pipeline or all, started (or, never
/// started, queued) before `before` when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinishedRuns {
    pub organization: OrganizationId,
    pub pipeline: Option<PipelineId>,
    pub before: Option<OffsetDateTime>,
}

/// What a deletion removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub runs: u64,
    pub errors: u64,
}

/// The condition on `runs` that selects `which`, with its parameters from `$1`.
fn selection(which: &FinishedRuns) -> (String, Vec<String>, Option<i64>) {
    let mut sql =
        "organization_id = $1 AND state IN ('succeeded', 'failed', 'cancelled')".to_owned();
    let mut texts = vec![which.organization.to_string()];
    if let Some(pipeline) = which.pipeline {
        texts.push(pipeline.to_string());
        sql.push_str(&format!(" AND pipeline_id = ${}", texts.len()));
    }
    let before = which.before.map(to_millis);
    if before.is_some() {
        sql.push_str(&format!(
            " AND COALESCE(started_at, created_at) < ${}",
            texts.len() + 1
        ));
    }
    (sql, texts, before)
}

/// Deletes the runs `which` selects and their per-record errors, on the caller's transaction.
pub async fn delete_finished_runs(
    conn: &mut AnyConnection,
    which: &FinishedRuns,
) -> Result<Deleted, StoreError> {
    let (condition, texts, before) = selection(which);
    let errors_sql = format!(
        "DELETE FROM run_errors WHERE organization_id = $1 AND run_id IN \
         (SELECT id FROM runs WHERE {condition})"
    );
    let mut errors = sqlx::query(sqlx::AssertSqlSafe(errors_sql));
    for text in &texts {
        errors = errors.bind(text.clone());
    }
    if let Some(before) = before {
        errors = errors.bind(before);
    }
    let errors = errors.execute(&mut *conn).await?.rows_affected();
    let runs_sql = format!("DELETE FROM runs WHERE {condition}");
    let mut runs = sqlx::query(sqlx::AssertSqlSafe(runs_sql));
    for text in &texts {
        runs = runs.bind(text.clone());
    }
    if let Some(before) = before {
        runs = runs.bind(before);
    }
    let runs = runs.execute(&mut *conn).await?.rows_affected();
    Ok(Deleted { runs, errors })
}
