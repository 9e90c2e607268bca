//! Pipelines and runs: Administrators and Editors define how records move from a source object
//! to a destination object (mappings, rules, a sync mode, a schedule) and start runs; everybody
//! sees pipelines and runs; Administrators and Editors read a run's per-record errors.
//!
//! A run is queued in the store and executed by a worker ([`Hub::work`]) that leases it, keeps
//! the lease alive with heartbeats (progress and cancellation ride along), and ends it. A worker
//! that dies loses its lease; another worker takes the run over and runs it again from the start,
//! which converges because every mode commits all-or-nothing (and incremental runs upsert).

use crate::audit::{Actor, Event, FieldChange};
use crate::connections::check_name;
use crate::identity::Caller;
use crate::policies::PolicyObjectKind;
use crate::{AppError, Hub};
use lockstep_connectors::ConnectionKind;
use lockstep_connectors::object_name::ObjectName;
use lockstep_domain::{ConnectionId, OrganizationId, PipelineId, RunId, UserId};
use lockstep_engine::{EngineError, PipelineSpec, Progress, Rejected, RunInput, RunObserver};
use lockstep_policy::Action;
use lockstep_storage::pipelines::{self, Counts, RunState, StoredPipeline, StoredRun};
use lockstep_storage::{StoreError, connections};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Why a pipeline into Tryton neither runs nor pulls.
pub(crate) const BOM_PIPELINE: &str = "this pipeline writes bills of materials to Tryton: upload a \
     BOM file as a data set (POST /api/v1/datasets/upload, or Upload a BOM on the Data sets page)";

/// How long a worker's lease on a run lasts without a heartbeat.
pub const LEASE: Duration = Duration::seconds(30);
/// How often a worker renews its lease and stores progress (at most; a third of the lease when
/// that is shorter).
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(2);
/// A run interrupted this many times (its workers died) is failed instead of retried again.
const MAX_ATTEMPTS: u32 = 3;
/// Rows per batch.
const BATCH_ROWS: usize = 8192;

/// A pipeline as it is shown.
#[derive(Debug, Clone)]
pub struct PipelineView {
    pub id: PipelineId,
    pub name: String,
    pub spec: PipelineSpec,
    pub next_run_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub last_run: Option<RunView>,
}

/// A run as it is shown.
#[derive(Debug, Clone)]
pub struct RunView {
    pub id: RunId,
    pub pipeline_id: PipelineId,
    pub state: RunState,
    pub trigger: String,
    pub requested_by: Option<UserId>,
    pub records_read: u64,
    pub records_written: u64,
    pub records_rejected: u64,
    pub warnings: u64,
    /// Records the filter skipped.
    pub records_skipped: u64,
    /// Incremental runs: records read after the first rejected cursor, not written this run.
    pub records_held_back: u64,
    /// Failed warning-level rules: rule label (`rules[3]`) → count.
    pub warning_counts: BTreeMap<String, u64>,
    /// Who started it, by display name: set for manual runs when the caller may see the
    /// member's name (see [`Hub::name_runs`]).
    pub requested_by_name: Option<String>,
    pub message: Option<String>,
    pub cancel_requested: bool,
    pub attempts: u32,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
}

impl RunView {
    /// The state as shown: `succeeded_with_rejections` for a run that committed while some
    /// records were rejected, else the stored state.
    pub fn state_name(&self) -> &'static str {
        if self.state == RunState::Succeeded && self.records_rejected > 0 {
            "succeeded_with_rejections"
        } else {
            self.state.as_str()
        }
    }

    /// Records read per second so far (or over the whole run once finished).
    pub fn rate(&self) -> Option<f64> {
        let start = self.started_at?;
        let end = self.finished_at.unwrap_or(self.updated_at);
        let seconds = (end - start).as_seconds_f64();
        (seconds > 0.0).then(|| self.records_read as f64 / seconds)
    }
}

fn run_view(r: StoredRun) -> RunView {
    RunView {
        id: r.id,
        pipeline_id: r.pipeline_id,
        state: r.state,
        trigger: r.trigger,
        requested_by: r.requested_by,
        records_read: r.records_read,
        records_written: r.records_written,
        records_rejected: r.records_rejected,
        warnings: r.warnings,
        records_skipped: r.records_skipped,
        records_held_back: r.records_held_back,
        warning_counts: r.warning_counts,
        requested_by_name: None,
        message: r.message,
        cancel_requested: r.cancel_requested,
        attempts: r.attempts,
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
        updated_at: r.updated_at,
    }
}

/// A rejected record as Administrators and Editors read it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunErrorView {
    #[serde(skip)]
    pub id: String,
    #[serde(skip)]
    pub position: u64,
    pub key: serde_json::Value,
    pub reason: String,
    /// What rejected it: `rules[2]`, `mappings[1]`, `filter` (empty for records rejected
    /// before this was kept).
    #[serde(default)]
    pub rule: String,
    /// A rule's verdict (`rule`) or a failure to evaluate or convert (`error`).
    #[serde(default = "rule_kind")]
    pub kind: lockstep_engine::RejectionKind,
    /// The fields the rule, mapping or filter refers to (empty for records rejected before
    /// this was kept).
    #[serde(default)]
    pub fields: Vec<String>,
    pub values: serde_json::Map<String, serde_json::Value>,
}

fn rule_kind() -> lockstep_engine::RejectionKind {
    lockstep_engine::RejectionKind::Rule
}

/// How a rejection kind is stored in clear next to the sealed record.
fn kind_name(kind: lockstep_engine::RejectionKind) -> &'static str {
    match kind {
        lockstep_engine::RejectionKind::Rule => "rule",
        lockstep_engine::RejectionKind::Error => "error",
    }
}

fn kind_from_name(name: &str) -> lockstep_engine::RejectionKind {
    if name == "error" {
        lockstep_engine::RejectionKind::Error
    } else {
        lockstep_engine::RejectionKind::Rule
    }
}

/// A run's rejected records of one rule and kind, counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectionGroup {
    /// `rules[2]`, `mappings[1]`, `filter` (empty for records rejected before this was kept).
    pub rule: String,
    pub kind: lockstep_engine::RejectionKind,
    /// The reason of the group's first record: a validation rule's own message, or what could
    /// not be evaluated or converted (never a record value).
    pub reason: String,
    /// The fields the rule refers to.
    pub fields: Vec<String>,
    pub count: u64,
}

/// Rejected records exported at most (the CSV download).
pub const EXPORT_LIMIT: u32 = 1_000_000;

fn spec_error(err: lockstep_engine::SpecError) -> AppError {
    AppError::InvalidConfig {
        field: err.field,
        reason: err.reason,
    }
}

/// When a cron expression fires next after `after`, read in the time zone `zone` (so
/// `0 2 * * *` is 02:00 local time, across daylight-saving changes).
fn next_fire(
    schedule: &str,
    after: OffsetDateTime,
    zone: &str,
) -> Result<OffsetDateTime, AppError> {
    use std::str::FromStr as _;
    let invalid = |reason: &str| AppError::InvalidConfig {
        field: "schedule".to_owned(),
        reason: reason.to_owned(),
    };
    let zone = crate::TimeZone::parse(zone)?.tz();
    let cron = croner::Cron::from_str(schedule).map_err(|_| invalid("is not a cron expression"))?;
    let start = chrono::DateTime::<chrono::Utc>::from_timestamp(after.unix_timestamp(), 0)
        .ok_or_else(|| invalid("cannot be evaluated"))?
        .with_timezone(&zone);
    let next = cron
        .find_next_occurrence(&start, false)
        .map_err(|_| invalid("never fires"))?;
    OffsetDateTime::from_unix_timestamp(next.timestamp()).map_err(|_| invalid("fires out of range"))
}

/// The longest a request waits for a run to end ([`Hub::wait_run`]).
pub const RUN_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(10);
/// How often a waiting request looks at the run.
const RUN_WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(20);
/// Requests that may wait for a run at once, hub-wide ([`Hub::wait_run`]).
static RUN_WAITERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(64);

impl Hub {
    async fn visible_pipeline(
        &self,
        caller: &Caller,
        action: Action,
        id: PipelineId,
    ) -> Result<StoredPipeline, AppError> {
        let mut conn = self.store.read().await?;
        let stored = pipelines::get(&mut conn, caller.organization(), id)
            .await?
            .ok_or(AppError::NotFound("pipeline"))?;
        drop(conn);
        if !self
            .access(caller)
            .await?
            .sees(PolicyObjectKind::Pipeline, &id.to_string())
        {
            return Err(AppError::NotFound("pipeline"));
        }
        self.authorize_in_organization(caller, action)?;
        Ok(stored)
    }

    pub(crate) async fn open_spec(&self, p: &StoredPipeline) -> Result<PipelineSpec, AppError> {
        let json = self
            .open_field(
                p.organization_id,
                "pipeline",
                &p.id.to_string(),
                "spec",
                &p.spec_ciphertext,
            )
            .await?;
        serde_json::from_slice(&json)
            .map_err(|_| AppError::Store(StoreError::Corrupt("pipeline spec")))
    }

    /// Parses and checks a specification: the engine's static checks, then the connections (of
    /// the caller's organization, of kinds that can read and write) and the discovered source
    /// fields.
    /// Whether the pipeline writes to Tryton: it moves bills of materials uploaded as data sets,
    /// never runs.
    pub(crate) async fn moves_boms(&self, p: &StoredPipeline) -> Result<bool, AppError> {
        let mut conn = self.store.read().await?;
        let destination =
            connections::get(&mut conn, p.organization_id, p.destination_connection_id).await?;
        Ok(destination.is_some_and(|d| d.kind == ConnectionKind::Tryton.as_str()))
    }

    async fn checked_spec(
        &self,
        org: OrganizationId,
        spec: serde_json::Value,
    ) -> Result<(PipelineSpec, ConnectionId, ConnectionId), AppError> {
        let spec: PipelineSpec = serde_path_to_error::deserialize(spec).map_err(|err| {
            let path = err.path().to_string();
            AppError::InvalidConfig {
                field: if path == "." { "spec".to_owned() } else { path },
                reason: err.into_inner().to_string(),
            }
        })?;
        spec.validate().map_err(spec_error)?;
        if let Some(profile) = spec.bom.as_ref().and_then(|b| b.profile.as_ref()) {
            serde_path_to_error::deserialize::<_, lockstep_bom::ImportProfile>(profile).map_err(
                |err| AppError::InvalidConfig {
                    field: format!("bom.profile.{}", err.path()),
                    reason: err.into_inner().to_string(),
                },
            )?;
        }
        let connection = |field: &str, id: &str| -> Result<ConnectionId, AppError> {
            id.parse().map_err(|_| AppError::InvalidConfig {
                field: format!("{field}.connection_id"),
                reason: "is not a connection id".to_owned(),
            })
        };
        let source_id = connection("source", &spec.source.connection_id)?;
        let destination_id = connection("destination", &spec.destination.connection_id)?;
        let mut conn = self.store.read().await?;
        let missing = |field: &str| AppError::InvalidConfig {
            field: format!("{field}.connection_id"),
            reason: "no such connection".to_owned(),
        };
        let source = connections::get(&mut conn, org, source_id)
            .await?
            .ok_or_else(|| missing("source"))?;
        let destination = connections::get(&mut conn, org, destination_id)
            .await?
            .ok_or_else(|| missing("destination"))?;
        drop(conn);
        let kind = |c: &connections::StoredConnection| {
            ConnectionKind::parse(&c.kind).ok_or(AppError::Store(StoreError::Corrupt("kind")))
        };
        let destination_kind = kind(&destination)?;
        // A pipeline into Tryton moves bills of materials uploaded as data sets: its source is
        // the file, so its source connection is only where the pipeline is listed.
        if destination_kind == ConnectionKind::Tryton {
            if spec.schedule.is_some() {
                return Err(AppError::InvalidConfig {
                    field: "schedule".to_owned(),
                    reason: "a pipeline into Tryton moves bills of materials uploaded as data \
                             sets: it has no schedule"
                        .to_owned(),
                });
            }
            return Ok((spec, source_id, destination_id));
        }
        if !matches!(
            kind(&source)?,
            ConnectionKind::Postgres | ConnectionKind::Mysql | ConnectionKind::Files
        ) {
            return Err(AppError::InvalidConfig {
                field: "source.connection_id".to_owned(),
                reason: "pipelines read from postgres, mysql and files connections".to_owned(),
            });
        }
        if !matches!(
            destination_kind,
            ConnectionKind::Postgres | ConnectionKind::Mysql
        ) {
            return Err(AppError::InvalidConfig {
                field: "destination.connection_id".to_owned(),
                reason: "pipelines write to postgres, mysql and tryton connections".to_owned(),
            });
        }
        // The destination's name as its kind reads it (`database.table`, `schema.table`).
        ObjectName::parse(destination_kind, &spec.destination.object, "default").map_err(
            |err| match AppError::from(err) {
                AppError::InvalidConfig { reason, .. } => AppError::InvalidConfig {
                    field: "destination.object".to_owned(),
                    reason,
                },
                other => other,
            },
        )?;
        let discovered = self.stored_objects_of(&source).await?;
        let object = discovered
            .iter()
            .find(|o| o.name == spec.source.object)
            .ok_or_else(|| AppError::InvalidConfig {
                field: "source.object".to_owned(),
                reason: "is not among the source connection's discovered objects (discover it \
                         first)"
                    .to_owned(),
            })?;
        spec.validate_against(&object.fields).map_err(spec_error)?;
        Ok((spec, source_id, destination_id))
    }

    async fn pipeline_view(
        &self,
        caller: &Caller,
        p: StoredPipeline,
    ) -> Result<PipelineView, AppError> {
        let spec = self.open_spec(&p).await?;
        let mut conn = self.store.read().await?;
        let last_run = pipelines::list_runs(&mut conn, p.organization_id, p.id, 1)
            .await?
            .into_iter()
            .next()
            .map(run_view);
        drop(conn);
        let last_run = match last_run {
            Some(run) => self.name_runs(caller, vec![run]).await?.pop(),
            None => None,
        };
        Ok(PipelineView {
            id: p.id,
            name: self.pipeline_name(&p).await?,
            spec,
            next_run_at: p.next_run_at,
            created_at: p.created_at,
            updated_at: p.updated_at,
            last_run,
        })
    }

    /// Defines a pipeline (Administrators and Editors). Refused with the field and the reason
    /// (an invalid rule names its position) and nothing stored when anything is wrong.
    pub async fn create_pipeline(
        &self,
        caller: &Caller,
        name: &str,
        spec: serde_json::Value,
    ) -> Result<PipelineView, AppError> {
        let org = caller.organization();
        self.authorize_in_organization(caller, Action::ManagePipelines)?;
        let name = check_name(name)?;
        let (spec, source, destination) = self.checked_spec(org, spec).await?;
        if spec.bom.is_some() && caller.member.role != lockstep_domain::Role::Administrator {
            return Err(AppError::Forbidden {
                needs: lockstep_domain::Role::Administrator,
            });
        }
        let id = PipelineId::from_uuid(Uuid::now_v7());
        let now = self.clock.now();
        let json = serde_json::to_string(&spec)
            .map_err(|_| AppError::Refused("the pipeline could not be encoded"))?;
        let spec_ciphertext = self
            .seal_field(org, "pipeline", &id.to_string(), "spec", json.as_bytes())
            .await?;
        let zone = self.time_zone(org).await?;
        let next_run_at = spec
            .schedule
            .as_deref()
            .map(|s| next_fire(s, now, &zone))
            .transpose()?;
        let sealed_name = self.seal_pipeline_name(org, id, &name).await?;
        let stored = StoredPipeline {
            id,
            organization_id: org,
            name: sealed_name.column,
            name_ciphertext: Some(sealed_name.ciphertext),
            source_connection_id: source,
            destination_connection_id: destination,
            mode: mode_name(&spec).to_owned(),
            spec_ciphertext,
            schedule: spec.schedule.clone(),
            next_run_at,
            cursor_ciphertext: None,
            created_by: Some(caller.user()),
            created_at: now,
            updated_at: now,
        };
        let event = Event::new(caller.actor(), "pipeline.created", "pipeline", id)
            .change("name", FieldChange::value(None::<String>, Some(&name)))
            .change("spec", FieldChange::value(None::<String>, Some(&json)));
        let mut tx = self.store.write().await?;
        pipelines::insert(&mut tx, &stored).await?;
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(pipeline = %id, organization = %org, by = %caller.user(), "pipeline created");
        self.pipeline_view(caller, stored).await
    }

    /// The time zone in which the organization's schedules are read: every member who may
    /// read pipelines may know it (changing it is a setting, for Administrators).
    pub async fn schedule_time_zone(&self, caller: &Caller) -> Result<String, AppError> {
        self.authorize_in_organization(caller, Action::ListPipelines)?;
        self.time_zone(caller.organization()).await
    }

    pub async fn list_pipelines(&self, caller: &Caller) -> Result<Vec<PipelineView>, AppError> {
        self.authorize_in_organization(caller, Action::ListPipelines)?;
        let mut conn = self.store.read().await?;
        let list = pipelines::list(&mut conn, caller.organization()).await?;
        drop(conn);
        let access = self.access(caller).await?;
        let mut views = Vec::with_capacity(list.len());
        for p in list {
            if !access.sees(PolicyObjectKind::Pipeline, &p.id.to_string()) {
                continue;
            }
            views.push(self.pipeline_view(caller, p).await?);
        }
        views.sort_by(|a, b| {
            (a.name.as_str(), a.id.to_string()).cmp(&(b.name.as_str(), b.id.to_string()))
        });
        Ok(views)
    }

    pub async fn get_pipeline(
        &self,
        caller: &Caller,
        id: PipelineId,
    ) -> Result<PipelineView, AppError> {
        let p = self
            .visible_pipeline(caller, Action::ListPipelines, id)
            .await?;
        self.pipeline_view(caller, p).await
    }

    /// Replaces a pipeline's name and/or specification (Administrators and Editors). A changed
    /// source, destination or cursor field starts incremental syncing from the beginning.
    pub async fn update_pipeline(
        &self,
        caller: &Caller,
        id: PipelineId,
        name: Option<&str>,
        spec: Option<serde_json::Value>,
    ) -> Result<PipelineView, AppError> {
        let stored = self
            .visible_pipeline(caller, Action::ManagePipelines, id)
            .await?;
        let org = stored.organization_id;
        let old_spec = self.open_spec(&stored).await?;
        let mut updated = stored.clone();
        let mut event = Event::new(caller.actor(), "pipeline.updated", "pipeline", id);
        if let Some(name) = name {
            let name = check_name(name)?;
            let old_name = self.pipeline_name(&stored).await?;
            if name != old_name {
                event = event.change("name", FieldChange::value(Some(&old_name), Some(&name)));
            }
            let sealed_name = self.seal_pipeline_name(org, id, &name).await?;
            updated.name = sealed_name.column;
            updated.name_ciphertext = Some(sealed_name.ciphertext);
        }
        let now = self.clock.now();
        if let Some(spec) = spec {
            let (mut spec, source, destination) = self.checked_spec(org, spec).await?;
            // How bills of materials are read is the Administrators' to change (the import
            // profile editor); a specification that does not say keeps what was saved.
            match &spec.bom {
                None => spec.bom = old_spec.bom.clone(),
                Some(bom)
                    if Some(bom) != old_spec.bom.as_ref()
                        && caller.member.role != lockstep_domain::Role::Administrator =>
                {
                    return Err(AppError::Forbidden {
                        needs: lockstep_domain::Role::Administrator,
                    });
                }
                Some(_) => {}
            }
            let old_json = serde_json::to_string(&old_spec).unwrap_or_default();
            let json = serde_json::to_string(&spec)
                .map_err(|_| AppError::Refused("the pipeline could not be encoded"))?;
            if json != old_json {
                event = event.change("spec", FieldChange::value(Some(&old_json), Some(&json)));
                updated.spec_ciphertext = self
                    .seal_field(org, "pipeline", &id.to_string(), "spec", json.as_bytes())
                    .await?;
            }
            if spec.source != old_spec.source
                || spec.destination != old_spec.destination
                || spec.cursor != old_spec.cursor
            {
                updated.cursor_ciphertext = None;
            }
            updated.source_connection_id = source;
            updated.destination_connection_id = destination;
            updated.mode = mode_name(&spec).to_owned();
            if spec.schedule != old_spec.schedule {
                let zone = self.time_zone(org).await?;
                updated.next_run_at = spec
                    .schedule
                    .as_deref()
                    .map(|s| next_fire(s, now, &zone))
                    .transpose()?;
            }
            updated.schedule = spec.schedule.clone();
        }
        updated.updated_at = now;
        let mut tx = self.store.write().await?;
        pipelines::update(&mut tx, &updated).await?;
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.pipeline_view(caller, updated).await
    }

    /// Saves how bills of materials uploaded through a pipeline are read — the import profile
    /// (columns and their roles, header row, hierarchy; `None`: detected per file) — and whether
    /// parts are matched by name after their code (Administrators).
    pub async fn set_pipeline_bom_settings(
        &self,
        caller: &Caller,
        id: PipelineId,
        settings: lockstep_engine::BomSettings,
    ) -> Result<PipelineView, AppError> {
        let stored = self
            .visible_pipeline(caller, Action::ManagePipelines, id)
            .await?;
        if caller.member.role != lockstep_domain::Role::Administrator {
            return Err(AppError::Forbidden {
                needs: lockstep_domain::Role::Administrator,
            });
        }
        let mut spec = self.open_spec(&stored).await?;
        spec.bom = Some(settings);
        let json = serde_json::to_value(&spec)
            .map_err(|_| AppError::Refused("the pipeline could not be encoded"))?;
        self.update_pipeline(caller, id, None, Some(json)).await
    }

    /// Deletes a pipeline with its runs and their errors (Administrators and Editors). A running
    /// run is asked to stop first; deleting waits for nothing.
    pub async fn delete_pipeline(&self, caller: &Caller, id: PipelineId) -> Result<(), AppError> {
        let stored = self
            .visible_pipeline(caller, Action::ManagePipelines, id)
            .await?;
        let org = stored.organization_id;
        let event = Event::new(caller.actor(), "pipeline.deleted", "pipeline", id).change(
            "name",
            FieldChange::value(Some(self.pipeline_name(&stored).await?), None::<String>),
        );
        let mut tx = self.store.write().await?;
        if !pipelines::delete(&mut tx, org, id).await? {
            return Err(AppError::NotFound("pipeline"));
        }
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Queues a run (Administrators and Editors); one run of a pipeline at a time.
    pub async fn start_run(&self, caller: &Caller, id: PipelineId) -> Result<RunView, AppError> {
        let stored = self
            .visible_pipeline(caller, Action::RunPipelines, id)
            .await?;
        if self.moves_boms(&stored).await? {
            return Err(AppError::Refused(BOM_PIPELINE));
        }
        let org = stored.organization_id;
        let now = self.clock.now();
        let run = StoredRun {
            id: RunId::from_uuid(Uuid::now_v7()),
            organization_id: org,
            pipeline_id: id,
            state: RunState::Queued,
            trigger: "manual".to_owned(),
            requested_by: Some(caller.user()),
            scheduled_for: None,
            records_read: 0,
            records_written: 0,
            records_rejected: 0,
            warnings: 0,
            records_skipped: 0,
            records_held_back: 0,
            warning_counts: BTreeMap::new(),
            message: None,
            cancel_requested: false,
            lease_owner: None,
            lease_expires_at: None,
            attempts: 0,
            created_at: now,
            started_at: None,
            finished_at: None,
            updated_at: now,
        };
        let event = Event::new(caller.actor(), "run.requested", "run", run.id)
            .change("pipeline", FieldChange::value(None::<String>, Some(id)));
        let mut tx = self.store.write().await?;
        if pipelines::active_run(&mut tx, org, id).await?.is_some() {
            return Err(AppError::Conflict(
                "run of this pipeline (one is queued or running)",
            ));
        }
        pipelines::insert_run(&mut tx, &run).await?;
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.work_available.notify_waiters();
        tracing::info!(run = %run.id, pipeline = %id, by = %caller.user(), "run queued");
        let mut views = self.name_runs(caller, vec![run_view(run)]).await?;
        views.pop().ok_or(AppError::NotFound("run"))
    }

    pub async fn list_runs(
        &self,
        caller: &Caller,
        id: PipelineId,
        limit: u32,
    ) -> Result<Vec<RunView>, AppError> {
        let stored = self
            .visible_pipeline(caller, Action::ListPipelines, id)
            .await?;
        let mut conn = self.store.read().await?;
        let runs: Vec<RunView> =
            pipelines::list_runs(&mut conn, stored.organization_id, id, limit.clamp(1, 500))
                .await?
                .into_iter()
                .map(run_view)
                .collect();
        drop(conn);
        self.name_runs(caller, runs).await
    }

    /// Fills in who started each manual run, by display name, for the member who started it and
    /// for Editors and Administrators (who run pipelines with them); Viewers see no name. A
    /// member deleted since has no name.
    pub(crate) async fn name_runs(
        &self,
        caller: &Caller,
        mut runs: Vec<RunView>,
    ) -> Result<Vec<RunView>, AppError> {
        let colleague = self
            .authorize_in_organization(caller, Action::RunPipelines)
            .is_ok();
        let mut names: HashMap<UserId, Option<String>> = HashMap::new();
        for run in &mut runs {
            let Some(user) = run.requested_by else {
                continue;
            };
            if !colleague && user != caller.user() {
                continue;
            }
            let name = match names.get(&user) {
                Some(name) => name.clone(),
                None => {
                    let name = match self.display_name_of(caller.organization(), user).await {
                        Ok(name) => Some(name),
                        Err(AppError::NotFound(_)) => None,
                        Err(err) => return Err(err),
                    };
                    names.insert(user, name.clone());
                    name
                }
            };
            run.requested_by_name = name;
        }
        Ok(runs)
    }

    pub async fn get_run(
        &self,
        caller: &Caller,
        pipeline: PipelineId,
        run: RunId,
    ) -> Result<RunView, AppError> {
        let stored = self
            .visible_pipeline(caller, Action::ListPipelines, pipeline)
            .await?;
        let mut conn = self.store.read().await?;
        let view = pipelines::get_run(&mut conn, stored.organization_id, pipeline, run)
            .await?
            .map(run_view)
            .ok_or(AppError::NotFound("run"))?;
        drop(conn);
        let mut views = self.name_runs(caller, vec![view]).await?;
        views.pop().ok_or(AppError::NotFound("run"))
    }

    /// [`Hub::get_run`], answered once the run has ended or `wait` has passed, whichever comes
    /// first: what a client that waits for a run asks instead of polling (the store is looked
    /// at every [`RUN_WAIT_STEP`], so the end is seen within that of when it is stored, also
    /// when another process executes the run). At most [`RUN_WAIT_MAX`].
    pub async fn wait_run(
        &self,
        caller: &Caller,
        pipeline: PipelineId,
        run: RunId,
        wait: std::time::Duration,
    ) -> Result<RunView, AppError> {
        if wait > RUN_WAIT_MAX {
            return Err(AppError::Invalid {
                field: "wait",
                reason: format!("is at most {} seconds", RUN_WAIT_MAX.as_secs()),
            });
        }
        let stored = self
            .visible_pipeline(caller, Action::ListPipelines, pipeline)
            .await?;
        // Waiting requests are bounded hub-wide: past the bound, a request is answered at once
        // (as without `wait`), so many of them cannot keep the store busy.
        let permit = RUN_WAITERS.try_acquire().ok();
        let wait = if permit.is_some() {
            wait
        } else {
            std::time::Duration::ZERO
        };
        let deadline = tokio::time::Instant::now() + wait;
        let view = loop {
            let mut conn = self.store.read().await?;
            let current = pipelines::get_run(&mut conn, stored.organization_id, pipeline, run)
                .await?
                .ok_or(AppError::NotFound("run"))?;
            drop(conn);
            let now = tokio::time::Instant::now();
            if current.state.is_finished() || now >= deadline {
                break run_view(current);
            }
            tokio::time::sleep(RUN_WAIT_STEP.min(deadline - now)).await;
        };
        let mut views = self.name_runs(caller, vec![view]).await?;
        views.pop().ok_or(AppError::NotFound("run"))
    }

    /// Cancels a run: a queued run ends at once, a running one at its next batch (its writes are
    /// rolled back).
    pub async fn cancel_run(
        &self,
        caller: &Caller,
        pipeline: PipelineId,
        run: RunId,
    ) -> Result<RunView, AppError> {
        let stored = self
            .visible_pipeline(caller, Action::RunPipelines, pipeline)
            .await?;
        let org = stored.organization_id;
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        let current = pipelines::get_run(&mut tx, org, pipeline, run)
            .await?
            .ok_or(AppError::NotFound("run"))?;
        if current.state.is_finished() {
            return Err(AppError::Refused("the run has already ended"));
        }
        pipelines::request_cancel(&mut tx, org, run, now).await?;
        if current.state == RunState::Queued {
            pipelines::finish_run(
                &mut tx,
                run,
                None,
                RunState::Cancelled,
                &Counts::default(),
                Some("cancelled before it started"),
                now,
            )
            .await?;
        }
        let event = Event::new(caller.actor(), "run.cancel_requested", "run", run);
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.get_run(caller, pipeline, run).await
    }

    /// A run's rejected records, all of them or those of one `(kind, rule)` group, in the order
    /// they were read (Administrators and Editors; audited: they hold record values).
    pub async fn run_errors(
        &self,
        caller: &Caller,
        pipeline: PipelineId,
        run: RunId,
        group: Option<(lockstep_engine::RejectionKind, &str)>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<RunErrorView>, AppError> {
        self.run_errors_as(caller, pipeline, run, group, limit, offset, None)
            .await
    }

    /// [`Hub::run_errors`] under the data policies (row filters of the pipeline's source
    /// object, redaction of either object), or as a member or a team would see them.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_errors_as(
        &self,
        caller: &Caller,
        pipeline: PipelineId,
        run: RunId,
        group: Option<(lockstep_engine::RejectionKind, &str)>,
        limit: u32,
        offset: u32,
        view_as: Option<crate::ViewAs>,
    ) -> Result<Vec<RunErrorView>, AppError> {
        let org = self
            .run_of(caller, Action::ReadRunErrors, pipeline, run)
            .await?;
        let policy = Arc::new(self.run_policy(caller, pipeline, view_as).await?);
        let views = self
            .open_run_errors(org, run, group, limit.clamp(1, 1000), offset)
            .await?;
        let views = policy.run_errors_off_thread(views).await?;
        let event = Event::new(caller.actor(), "run_errors.read", "run", run).change(
            "records",
            FieldChange::value(None::<String>, Some(views.len())),
        );
        self.record_read(caller, event).await?;
        Ok(views)
    }

    /// Every rejected record of a run, for a download (Administrators and Editors; audited as
    /// `run_errors.exported` with the number of records). At most [`EXPORT_LIMIT`].
    pub async fn export_run_errors(
        &self,
        caller: &Caller,
        pipeline: PipelineId,
        run: RunId,
    ) -> Result<Vec<RunErrorView>, AppError> {
        self.export_run_errors_as(caller, pipeline, run, None).await
    }

    /// [`Hub::export_run_errors`] under the data policies, or as a member or a team would.
    pub async fn export_run_errors_as(
        &self,
        caller: &Caller,
        pipeline: PipelineId,
        run: RunId,
        view_as: Option<crate::ViewAs>,
    ) -> Result<Vec<RunErrorView>, AppError> {
        const PAGE: u32 = 1000;
        let org = self
            .run_of(caller, Action::ReadRunErrors, pipeline, run)
            .await?;
        let policy = Arc::new(self.run_policy(caller, pipeline, view_as).await?);
        let mut views = Vec::new();
        let mut offset = 0;
        loop {
            let page = self.open_run_errors(org, run, None, PAGE, offset).await?;
            let last = page.len() < PAGE as usize;
            views.extend(policy.run_errors_off_thread(page).await?);
            offset += PAGE;
            if last || offset >= EXPORT_LIMIT {
                break;
            }
        }
        let event = Event::new(caller.actor(), "run_errors.exported", "run", run).change(
            "records",
            FieldChange::value(None::<String>, Some(views.len())),
        );
        self.record_read(caller, event).await?;
        Ok(views)
    }

    /// A run's rejected records counted per rule and kind, with each group's reason and the
    /// fields its rule refers to (every member who sees the run: no record value is shown),
    /// rule verdicts before errors.
    pub async fn run_error_groups(
        &self,
        caller: &Caller,
        pipeline: PipelineId,
        run: RunId,
    ) -> Result<Vec<RejectionGroup>, AppError> {
        let org = self
            .run_of(caller, Action::ListPipelines, pipeline, run)
            .await?;
        let mut conn = self.store.read().await?;
        let rows = pipelines::run_error_groups(&mut conn, org, run).await?;
        drop(conn);
        let mut groups: Vec<RejectionGroup> = Vec::with_capacity(rows.len());
        for (kind, rule, count, id, ciphertext) in rows {
            let kind = kind_from_name(&kind);
            if groups.iter().any(|g| g.kind == kind && g.rule == rule) {
                continue;
            }
            let view = self.open_run_error(org, id, 0, &ciphertext).await?;
            groups.push(RejectionGroup {
                rule,
                kind,
                reason: view.reason,
                fields: view.fields,
                count,
            });
        }
        Ok(groups)
    }

    /// The organization of a run the caller may act on with `action`.
    async fn run_of(
        &self,
        caller: &Caller,
        action: Action,
        pipeline: PipelineId,
        run: RunId,
    ) -> Result<OrganizationId, AppError> {
        let stored = self.visible_pipeline(caller, action, pipeline).await?;
        let org = stored.organization_id;
        let mut conn = self.store.read().await?;
        if pipelines::get_run(&mut conn, org, pipeline, run)
            .await?
            .is_none()
        {
            return Err(AppError::NotFound("run"));
        }
        Ok(org)
    }

    async fn open_run_errors(
        &self,
        org: OrganizationId,
        run: RunId,
        group: Option<(lockstep_engine::RejectionKind, &str)>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<RunErrorView>, AppError> {
        let mut conn = self.store.read().await?;
        let group = group.map(|(kind, rule)| (kind_name(kind), rule));
        let rows = pipelines::run_errors(&mut conn, org, run, group, limit, offset).await?;
        drop(conn);
        let mut views = Vec::with_capacity(rows.len());
        for (id, position, ciphertext) in rows {
            views.push(self.open_run_error(org, id, position, &ciphertext).await?);
        }
        Ok(views)
    }

    async fn open_run_error(
        &self,
        org: OrganizationId,
        id: String,
        position: u64,
        ciphertext: &[u8],
    ) -> Result<RunErrorView, AppError> {
        let json = self
            .open_field(org, "run_error", &id, "record", ciphertext)
            .await?;
        let mut view: RunErrorView = serde_json::from_slice(&json)
            .map_err(|_| AppError::Store(StoreError::Corrupt("run error")))?;
        view.id = id;
        view.position = position;
        Ok(view)
    }

    /// Deletes per-record errors older than `retention`; answers how many went.
    pub async fn purge_run_errors(&self, retention: Duration) -> Result<u64, AppError> {
        let mut tx = self.store.write().await?;
        let n = pipelines::delete_run_errors_before(&mut tx, self.clock.now() - retention).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(n)
    }

    /// Queues a run for every pipeline whose scheduled time has come, and moves its next time.
    /// Each scheduled time fires once whatever the number of hubs and workers: the next time is
    /// moved only if it is still the one read, and a run's `(pipeline, scheduled time)` is unique.
    /// A pipeline that is still running skips that time. Answers how many runs were queued.
    pub async fn schedule_due(&self) -> Result<u32, AppError> {
        let now = self.clock.now();
        let mut conn = self.store.read().await?;
        let due = pipelines::due(&mut conn, now).await?;
        drop(conn);
        let mut queued = 0;
        for (org, id, at, schedule) in due {
            let zone = self.time_zone(org).await?;
            let next = next_fire(&schedule, now, &zone).ok();
            let mut tx = self.store.write().await?;
            if !pipelines::advance_schedule(&mut tx, id, at, next).await? {
                continue;
            }
            if pipelines::active_run(&mut tx, org, id).await?.is_some() {
                tx.commit().await.map_err(StoreError::from)?;
                tracing::info!(pipeline = %id, "scheduled time skipped: a run is still active");
                continue;
            }
            let run = StoredRun {
                id: RunId::from_uuid(Uuid::now_v7()),
                organization_id: org,
                pipeline_id: id,
                state: RunState::Queued,
                trigger: "schedule".to_owned(),
                requested_by: None,
                scheduled_for: Some(at),
                records_read: 0,
                records_written: 0,
                records_rejected: 0,
                warnings: 0,
                records_skipped: 0,
                records_held_back: 0,
                warning_counts: BTreeMap::new(),
                message: None,
                cancel_requested: false,
                lease_owner: None,
                lease_expires_at: None,
                attempts: 0,
                created_at: now,
                started_at: None,
                finished_at: None,
                updated_at: now,
            };
            match pipelines::insert_run(&mut tx, &run).await {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => continue,
                Err(err) => return Err(err.into()),
            }
            let event = Event::new(Actor::Scheduler, "run.scheduled", "run", run.id)
                .change("pipeline", FieldChange::value(None::<String>, Some(id)));
            self.record(&mut tx, org, event).await?;
            tx.commit().await.map_err(StoreError::from)?;
            queued += 1;
            self.work_available.notify_waiters();
            tracing::info!(run = %run.id, pipeline = %id, "scheduled run queued");
        }
        Ok(queued)
    }

    /// Runs [`Hub::schedule_due`] every `every` until `shutdown` is set (while unsealed).
    pub async fn schedule(self: Arc<Self>, every: std::time::Duration, shutdown: Arc<AtomicBool>) {
        while !shutdown.load(Ordering::Relaxed) {
            if !self.is_sealed()
                && let Err(err) = self.schedule_due().await
            {
                tracing::error!(error = %err, "the scheduler failed");
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Executes queued runs until `shutdown` is set: leases the oldest run, executes it, and
    /// repeats; sleeps while there is nothing to do or the hub is sealed. `owner` names this
    /// worker in leases.
    pub async fn work(self: Arc<Self>, owner: String, shutdown: Arc<AtomicBool>) {
        while !shutdown.load(Ordering::Relaxed) {
            if self.is_sealed() {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            match self.lease_next(&owner).await {
                Ok(Some(run)) => {
                    let id = run.id;
                    if let Err(err) = Arc::clone(&self).execute_run(&owner, run).await {
                        tracing::error!(run = %id, error = %err, "run could not be executed");
                    }
                }
                Ok(None) => {
                    let notified = self.work_available.notified();
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), notified).await;
                }
                Err(err) => {
                    tracing::error!(error = %err, "leasing a run failed");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
            }
        }
    }

    async fn lease_next(&self, owner: &str) -> Result<Option<StoredRun>, AppError> {
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        let lease = self.options.run_lease;
        let run = pipelines::lease_next_run(&mut tx, self.store.backend(), owner, now, now + lease)
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(run)
    }

    async fn finish(
        &self,
        run: &StoredRun,
        owner: &str,
        state: RunState,
        counts: Counts,
        message: Option<&str>,
        cursor: Option<Vec<u8>>,
    ) -> Result<(), AppError> {
        let now = self.clock.now();
        let actor = run.requested_by.map_or(Actor::Scheduler, Actor::User);
        let action = match state {
            RunState::Succeeded => "run.succeeded",
            RunState::Cancelled => "run.cancelled",
            _ => "run.failed",
        };
        let mut event = Event::new(actor, action, "run", run.id)
            .change(
                "records_read",
                FieldChange::value(None::<String>, Some(counts.read)),
            )
            .change(
                "records_written",
                FieldChange::value(None::<String>, Some(counts.written)),
            )
            .change(
                "records_rejected",
                FieldChange::value(None::<String>, Some(counts.rejected)),
            );
        if state != RunState::Succeeded {
            event = event.failed();
        }
        let mut tx = self.store.write().await?;
        let ended =
            pipelines::finish_run(&mut tx, run.id, Some(owner), state, &counts, message, now)
                .await?;
        if !ended {
            // The lease was lost (another worker took the run over): leave it to that worker.
            return Ok(());
        }
        if let Some(cursor) = cursor {
            pipelines::set_cursor(&mut tx, run.organization_id, run.pipeline_id, Some(&cursor))
                .await?;
        }
        self.record(&mut tx, run.organization_id, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(run = %run.id, state = state.as_str(), read = counts.read, written = counts.written, rejected = counts.rejected, "run ended");
        Ok(())
    }

    /// Executes one leased run to its end.
    async fn execute_run(self: Arc<Self>, owner: &str, run: StoredRun) -> Result<(), AppError> {
        if run.attempts > MAX_ATTEMPTS {
            return self
                .finish(
                    &run,
                    owner,
                    RunState::Failed,
                    Counts::default(),
                    Some(
                        "the run stopped its worker 3 times without finishing (a crash, a \
                         restart or a lost lease each time); it is not tried again",
                    ),
                    None,
                )
                .await;
        }
        if run.cancel_requested {
            return self
                .finish(
                    &run,
                    owner,
                    RunState::Cancelled,
                    Counts::default(),
                    Some("cancelled"),
                    None,
                )
                .await;
        }
        let org = run.organization_id;
        let mut conn = self.store.read().await?;
        let pipeline = pipelines::get(&mut conn, org, run.pipeline_id)
            .await?
            .ok_or(AppError::NotFound("pipeline"))?;
        let source = connections::get(&mut conn, org, pipeline.source_connection_id)
            .await?
            .ok_or(AppError::NotFound("connection"))?;
        let destination = connections::get(&mut conn, org, pipeline.destination_connection_id)
            .await?
            .ok_or(AppError::NotFound("connection"))?;
        drop(conn);
        let spec = self.open_spec(&pipeline).await?;
        let cursor = match &pipeline.cursor_ciphertext {
            Some(ciphertext) => {
                let json = self
                    .open_field(
                        org,
                        "pipeline",
                        &pipeline.id.to_string(),
                        "cursor",
                        ciphertext,
                    )
                    .await?;
                serde_json::from_slice(&json).ok()
            }
            None => None,
        };
        let actor = run.requested_by.map_or(Actor::Scheduler, Actor::User);
        let observer = Arc::new(Observer {
            hub: Arc::clone(&self),
            run: run.id,
            org,
            progress: std::sync::Mutex::new(Progress::default()),
            position: AtomicU64::new(0),
            cancel: AtomicBool::new(false),
        });
        let heartbeat = {
            let hub = Arc::clone(&self);
            let observer = Arc::clone(&observer);
            let owner = owner.to_owned();
            let id = run.id;
            let lease = self.options.run_lease;
            let every = HEARTBEAT.min(std::time::Duration::from_secs_f64(
                (lease.as_seconds_f64() / 3.0).max(0.5),
            ));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let now = hub.clock.now();
                    let beat = async {
                        let mut tx = hub.store.write().await?;
                        let held = pipelines::heartbeat(
                            &mut tx,
                            id,
                            &owner,
                            observer.counts(),
                            now,
                            now + LEASE,
                        )
                        .await?;
                        tx.commit().await.map_err(StoreError::from)?;
                        Ok::<_, StoreError>(held)
                    }
                    .await;
                    match beat {
                        Ok(Some(false)) => {}
                        Ok(Some(true)) | Ok(None) => observer.cancel.store(true, Ordering::Relaxed),
                        Err(err) => tracing::warn!(run = %id, error = %err, "heartbeat failed"),
                    }
                }
            })
        };
        let result = async {
            let scrambler = match spec.uses_scramble() {
                true => Some(self.scrambler(org).await?),
                false => None,
            };
            let source = self.connector(actor.clone(), &source).await?;
            let destination = self.connector(actor.clone(), &destination).await?;
            lockstep_engine::execute(
                &source,
                &destination,
                RunInput {
                    spec: &spec,
                    cursor,
                    batch_rows: BATCH_ROWS,
                    scrambler,
                },
                observer.as_ref(),
            )
            .await
            .map_err(|err| match err {
                EngineError::Connector(err) => AppError::from(err),
                EngineError::Spec(err) => spec_error(err),
                EngineError::Cancelled => AppError::Refused("cancelled"),
                EngineError::Rule(reason) => AppError::Connector {
                    kind: lockstep_connectors::FailureKind::Other,
                    message: reason,
                },
                err @ (EngineError::Limit { .. } | EngineError::TooManyRejected { .. }) => {
                    AppError::Connector {
                        kind: lockstep_connectors::FailureKind::Other,
                        message: err.to_string(),
                    }
                }
            })
        }
        .await;
        heartbeat.abort();
        let counts = observer.counts();
        match result {
            Ok(outcome) => {
                let cursor = match &outcome.new_cursor {
                    Some(value) => Some(
                        self.seal_field(
                            org,
                            "pipeline",
                            &pipeline.id.to_string(),
                            "cursor",
                            value.to_string().as_bytes(),
                        )
                        .await?,
                    ),
                    None => None,
                };
                let counts = Counts {
                    read: outcome.records_read,
                    written: outcome.records_written,
                    rejected: outcome.records_rejected,
                    warnings: outcome.warnings,
                    skipped: outcome.skipped,
                    held_back: outcome.held_back,
                    warning_counts: outcome.warnings_by_rule.clone(),
                };
                self.finish(&run, owner, RunState::Succeeded, counts, None, cursor)
                    .await
            }
            Err(AppError::Refused("cancelled")) => {
                // Nothing was committed.
                let counts = uncommitted(counts);
                self.finish(
                    &run,
                    owner,
                    RunState::Cancelled,
                    counts,
                    Some("cancelled"),
                    None,
                )
                .await
            }
            Err(err) => {
                // Nothing was committed: every mode writes all or nothing.
                let counts = uncommitted(counts);
                let message = match &err {
                    AppError::Connector { message, .. } => message.clone(),
                    AppError::InvalidConfig { field, reason } => format!("{field}: {reason}"),
                    other => other.to_string(),
                };
                self.finish(&run, owner, RunState::Failed, counts, Some(&message), None)
                    .await
            }
        }
    }
}

/// The counts of a run that committed nothing: whatever was not rejected or skipped was held
/// back, so the counts still add up.
fn uncommitted(counts: Counts) -> Counts {
    Counts {
        written: 0,
        held_back: counts
            .read
            .saturating_sub(counts.rejected)
            .saturating_sub(counts.skipped),
        ..counts
    }
}

fn mode_name(spec: &PipelineSpec) -> &'static str {
    match spec.mode {
        lockstep_engine::Mode::FullRefresh => "full_refresh",
        lockstep_engine::Mode::Append => "append",
        lockstep_engine::Mode::Incremental => "incremental",
        lockstep_engine::Mode::Upsert => "upsert",
    }
}

/// Progress, rejected records and cancellation of one executing run.
struct Observer {
    hub: Arc<Hub>,
    run: RunId,
    org: OrganizationId,
    /// The last running totals the engine reported.
    progress: std::sync::Mutex<Progress>,
    position: AtomicU64,
    cancel: AtomicBool,
}

impl Observer {
    /// The running totals; records not yet decided count as held back until the run ends.
    fn counts(&self) -> Counts {
        let p = *self
            .progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Counts {
            read: p.read,
            written: p.written,
            rejected: p.rejected,
            warnings: p.warnings,
            skipped: p.skipped,
            held_back: p.pending,
            ..Counts::default()
        }
    }
}

impl RunObserver for Observer {
    async fn progress(&self, progress: Progress) {
        *self
            .progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = progress;
    }

    async fn rejected(&self, rejected: Vec<Rejected>) -> Result<(), EngineError> {
        let store = async {
            let mut sealed = Vec::with_capacity(rejected.len());
            for record in rejected {
                let id = Uuid::now_v7().to_string();
                let view = RunErrorView {
                    id: String::new(),
                    position: 0,
                    key: record.key,
                    reason: record.reason,
                    rule: record.rule,
                    kind: record.kind,
                    fields: record.fields,
                    values: record.values,
                };
                let json = serde_json::to_vec(&view)
                    .map_err(|_| AppError::Refused("a rejected record could not be encoded"))?;
                let ciphertext = self
                    .hub
                    .seal_field(self.org, "run_error", &id, "record", &json)
                    .await?;
                let position = self.position.fetch_add(1, Ordering::Relaxed);
                sealed.push((id, position, view.rule, kind_name(view.kind), ciphertext));
            }
            let now = self.hub.clock.now();
            let mut tx = self.hub.store.write().await?;
            for (id, position, rule, kind, ciphertext) in &sealed {
                let error = pipelines::NewRunError {
                    id,
                    position: *position,
                    rule,
                    kind,
                    ciphertext,
                };
                pipelines::insert_run_error(&mut tx, self.org, self.run, error, now).await?;
            }
            tx.commit().await.map_err(StoreError::from)?;
            Ok::<(), AppError>(())
        };
        store.await.map_err(|err| {
            tracing::error!(run = %self.run, error = %err, "rejected records could not be stored");
            EngineError::Rule("the rejected records could not be stored".to_owned())
        })
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

impl Hub {
    /// The discovered objects of a stored connection.
    pub(crate) async fn stored_objects_of(
        &self,
        stored: &connections::StoredConnection,
    ) -> Result<Vec<lockstep_connectors::ObjectMeta>, AppError> {
        Ok(self.stored_objects(stored).await?.objects)
    }
}

impl Hub {
    /// The organization's runs across its pipelines, newest first: those created within
    /// `within` of now (every run when `None`), at most `limit` (1 to 1,000). Everybody who
    /// may read pipelines may read them (the start page's recent runs and failures).
    pub async fn recent_runs(
        &self,
        caller: &Caller,
        within: Option<Duration>,
        limit: u32,
    ) -> Result<Vec<RunView>, AppError> {
        self.authorize_in_organization(caller, Action::ListPipelines)?;
        let since = match within {
            Some(within) => self.clock.now() - within,
            None => OffsetDateTime::UNIX_EPOCH,
        };
        let mut conn = self.store.read().await?;
        let runs: Vec<RunView> = pipelines::recent_runs(
            &mut conn,
            caller.organization(),
            since,
            limit.clamp(1, 1000),
        )
        .await?
        .into_iter()
        .map(run_view)
        .collect();
        drop(conn);
        let access = self.access(caller).await?;
        let runs = runs
            .into_iter()
            .filter(|r| access.sees(PolicyObjectKind::Pipeline, &r.pipeline_id.to_string()))
            .collect();
        self.name_runs(caller, runs).await
    }
}
