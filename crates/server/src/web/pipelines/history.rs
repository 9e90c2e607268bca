//! Deleting a pipeline's run history by hand (Administrators): the small form on the pipeline's
//! page takes a day, read as its midnight in the organization's time zone; finished runs
//! started before it go with their rejected records. The use case is the API's
//! (`DELETE /api/v1/pipelines/{id}/runs`).

use super::super::page::{WebError, render_status, see_other};
use super::super::session::Posted;
use super::{pipeline_id, show_page};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use lockstep_app::{AppError, TimeZone};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

#[derive(Deserialize)]
pub(super) struct HistoryForm {
    /// `YYYY-MM-DD` (the date input's value).
    before: String,
}

/// The day's midnight in `zone`, as RFC 3339; the text as it is when it is no day (the use
/// case then refuses it, after asking the policy).
fn cut_off(day: &str, zone: TimeZone) -> String {
    time::Date::parse(day.trim(), format_description!("[year]-[month]-[day]"))
        .ok()
        .and_then(|date| zone.from_local(date.midnight()))
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| day.to_owned())
}

pub(super) async fn delete_history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, form): Posted<HistoryForm>,
) -> Result<Response, WebError> {
    let pipeline = pipeline_id(&id)?;
    let before = cut_off(&form.before, signed.nav.time_zone);
    match state
        .hub
        .delete_pipeline_run_history(&signed.caller, pipeline, Some(before.as_str()))
        .await
    {
        Ok(_) => Ok(see_other(&format!(
            "/pipelines/{id}?notice=history-deleted"
        ))),
        Err(AppError::Invalid { .. }) => {
            let alert = "Pick the day before which finished runs are deleted.".to_owned();
            let page = show_page(&state, &signed, &id, None, Some(alert)).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(err) => Err(err.into()),
    }
}
