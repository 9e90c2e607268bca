//! `GET /healthz`: liveness and seal state, without authentication.

use crate::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// Always `ok` when the process answers.
    status: &'static str,
    sealed: bool,
}

/// Is the hub up, and is it sealed?
#[utoipa::path(get, path = "/healthz", tag = "system",
    security(()),
    responses((status = 200, description = "The hub answers", body = Health)))]
pub(crate) async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        sealed: state.hub.is_sealed(),
    })
}
