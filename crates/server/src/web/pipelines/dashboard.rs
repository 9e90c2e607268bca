//! The signed-in member's start page (`/dashboard`, where `/` leads): the organization's recent
//! runs with their state, the failures and rejections of the last days with each failed run's
//! reason, and the pipelines by their next scheduled run. Every role sees it; it is built only
//! from use cases every member may call.

use super::{RunInfo, SignedIn, WebError, render, when};
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use lockstep_app::RunState;
use lockstep_app::RunView;
use std::collections::BTreeMap;
use time::Duration;

/// Runs shown as recent.
const RECENT_RUNS: u32 = 10;
/// The days counted for failures and rejections.
const DAYS: i64 = 7;
/// Runs counted over those days (the count says so when there were more).
const COUNTED_RUNS: u32 = 1000;
/// Failed runs listed with their reason.
const FAILURES_SHOWN: usize = 20;
/// Pipelines listed by their next run.
const SCHEDULED_SHOWN: usize = 10;

/// A run with the name of its pipeline.
struct DashboardRun {
    pipeline_id: String,
    pipeline: String,
    run: RunInfo,
}

/// What the last days added up to.
struct Totals {
    runs: usize,
    /// More runs than were counted.
    more: bool,
    succeeded: usize,
    with_rejections: usize,
    failed: usize,
    records_rejected: u64,
}

/// A pipeline by its next scheduled run.
struct Scheduled {
    id: String,
    name: String,
    schedule: String,
    next_run: String,
}

#[derive(Template)]
#[template(path = "dashboard/dashboard.html")]
struct DashboardPage {
    shell: super::Shell,
    has_pipelines: bool,
    can_edit: bool,
    days: i64,
    recent: Vec<DashboardRun>,
    totals: Totals,
    failures: Vec<DashboardRun>,
    scheduled: Vec<Scheduled>,
}

pub(super) async fn dashboard(
    State(state): State<AppState>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    let pipelines = state.hub.list_pipelines(&signed.caller).await?;
    let names: BTreeMap<String, String> = pipelines
        .iter()
        .map(|p| (p.id.to_string(), p.name.clone()))
        .collect();
    let named = |r: &RunView| {
        let pipeline_id = r.pipeline_id.to_string();
        DashboardRun {
            pipeline: names
                .get(&pipeline_id)
                .cloned()
                .unwrap_or_else(|| pipeline_id.clone()),
            pipeline_id,
            run: RunInfo::new(r, signed.nav.time_zone),
        }
    };
    let recent = state
        .hub
        .recent_runs(&signed.caller, None, RECENT_RUNS)
        .await?;
    let week = state
        .hub
        .recent_runs(&signed.caller, Some(Duration::days(DAYS)), COUNTED_RUNS)
        .await?;
    let totals = Totals {
        runs: week.len(),
        more: week.len() >= COUNTED_RUNS as usize,
        succeeded: week
            .iter()
            .filter(|r| r.state_name() == RunState::Succeeded.as_str())
            .count(),
        with_rejections: week
            .iter()
            .filter(|r| r.state_name() == "succeeded_with_rejections")
            .count(),
        failed: week.iter().filter(|r| r.state == RunState::Failed).count(),
        records_rejected: week.iter().map(|r| r.records_rejected).sum(),
    };
    let failures = week
        .iter()
        .filter(|r| r.state == RunState::Failed)
        .take(FAILURES_SHOWN)
        .map(named)
        .collect();
    let mut scheduled: Vec<_> = pipelines
        .iter()
        .filter_map(|p| Some((p.next_run_at?, p)))
        .collect();
    scheduled.sort_by_key(|(next, _)| *next);
    let page = DashboardPage {
        shell: signed.shell("Dashboard", "dashboard"),
        has_pipelines: !pipelines.is_empty(),
        can_edit: signed.nav.can_edit(),
        days: DAYS,
        recent: recent.iter().map(named).collect(),
        totals,
        failures,
        scheduled: scheduled
            .into_iter()
            .take(SCHEDULED_SHOWN)
            .map(|(next, p)| Scheduled {
                id: p.id.to_string(),
                name: p.name.clone(),
                schedule: p.spec.schedule.clone().unwrap_or_default(),
                next_run: when(signed.nav.time_zone, next),
            })
            .collect(),
    };
    Ok(render(&page))
}
