//! Deleting run history by hand (Administrators): a pipeline's finished runs, or every
//! pipeline's, started before a time, with their per-record errors — before the retention
//! period would have removed the errors. Queued and running runs are never deleted.

use crate::audit::{Actor, Event, FieldChange};
use crate::identity::Caller;
use crate::policies::PolicyObjectKind;
use crate::{AppError, Hub};
use lockstep_domain::PipelineId;
use lockstep_policy::Action;
use lockstep_storage::run_history::{self, FinishedRuns};
use lockstep_storage::{StoreError, pipelines};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What a deletion of run history removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunHistoryDeleted {
    pub runs_deleted: u64,
    pub errors_deleted: u64,
}

/// Reads the cut-off: an RFC 3339 time (`2026-11-01T00:00:00Z`).
fn cut_off(before: Option<&str>) -> Result<Option<OffsetDateTime>, AppError> {
    before
        .map(|text| {
            OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| AppError::Invalid {
                field: "before",
                reason: "must be an RFC 3339 time such as 2026-11-01T00:00:00Z".to_owned(),
            })
        })
        .transpose()
}

impl Hub {
    /// Deletes the finished runs of pipeline `id` started before `before` (all of them without
    /// it) and their per-record errors (Administrators). Another organization's pipeline, or one
    /// the caller's access does not reach, is "not found"; the role is asked before the cut-off
    /// is read. Audited `pipeline.runs_deleted` with the counts and the cut-off.
    pub async fn delete_pipeline_run_history(
        &self,
        caller: &Caller,
        id: PipelineId,
        before: Option<&str>,
    ) -> Result<RunHistoryDeleted, AppError> {
        let org = caller.organization();
        let mut conn = self.store.read().await?;
        let stored = pipelines::get(&mut conn, org, id)
            .await?
            .ok_or(AppError::NotFound("pipeline"))?;
        drop(conn);
        if !self
            .access(caller)
            .await?
            .sees(PolicyObjectKind::Pipeline, &stored.id.to_string())
        {
            return Err(AppError::NotFound("pipeline"));
        }
        self.authorize_in_organization(caller, Action::DeleteRunHistory)?;
        let before = cut_off(before)?;
        let which = FinishedRuns {
            organization: org,
            pipeline: Some(id),
            before,
        };
        let event = Event::new(
            Actor::User(caller.user()),
            "pipeline.runs_deleted",
            "pipeline",
            id,
        );
        self.delete_runs(org, &which, event).await
    }

    /// Deletes the finished runs of every pipeline of the organization started before `before`
    /// (all of them without it) and their per-record errors (Administrators). Audited
    /// `organization.runs_deleted` with the counts and the cut-off.
    pub async fn delete_organization_run_history(
        &self,
        caller: &Caller,
        before: Option<&str>,
    ) -> Result<RunHistoryDeleted, AppError> {
        let org = caller.organization();
        self.authorize_in_organization(caller, Action::DeleteRunHistory)?;
        let before = cut_off(before)?;
        let which = FinishedRuns {
            organization: org,
            pipeline: None,
            before,
        };
        let event = Event::new(
            Actor::User(caller.user()),
            "organization.runs_deleted",
            "organization",
            org,
        );
        self.delete_runs(org, &which, event).await
    }

    async fn delete_runs(
        &self,
        org: lockstep_domain::OrganizationId,
        which: &FinishedRuns,
        event: Event,
    ) -> Result<RunHistoryDeleted, AppError> {
        let mut tx = self.store.write().await?;
        let deleted = run_history::delete_finished_runs(&mut tx, which).await?;
        let cut_off = match which.before {
            Some(at) => at
                .format(&Rfc3339)
                .map_err(|_| AppError::Refused("the cut-off could not be written"))?,
            None => "all finished runs".to_owned(),
        };
        let event = event
            .change(
                "runs_deleted",
                FieldChange::value(None::<u64>, Some(deleted.runs)),
            )
            .change(
                "errors_deleted",
                FieldChange::value(None::<u64>, Some(deleted.errors)),
            )
            .change("before", FieldChange::value(None::<String>, Some(cut_off)));
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(
            organization = %org,
            pipeline = ?which.pipeline.map(|p| p.to_string()),
            runs = deleted.runs,
            errors = deleted.errors,
            "run history deleted"
        );
        Ok(RunHistoryDeleted {
            runs_deleted: deleted.runs,
            errors_deleted: deleted.errors,
        })
    }
}
