//! `/api/v1/audit/*`: Administrators read their organization's audit events.

use crate::AppState;
use crate::extract::Authenticated;
use crate::problem::ApiError;
use axum::Json;
use axum::extract::{Path, Query, State};
use lockstep_app::{AuditEvent, AuditSearch, FieldChange};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Actor {
    /// `user`, `operator` or `anonymous`.
    kind: String,
    id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Object {
    kind: String,
    id: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EventBody {
    id: String,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    actor: Actor,
    action: String,
    object: Object,
    /// `success` or `failure`.
    outcome: String,
    /// Changed fields: `{"before", "after"}`, or `{"changed": true}` for secrets.
    #[schema(value_type = Object)]
    changes: BTreeMap<String, FieldChange>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EventList {
    events: Vec<EventBody>,
}

fn body(e: AuditEvent) -> EventBody {
    EventBody {
        id: e.id,
        at: e.at,
        actor: Actor {
            kind: e.actor_kind,
            id: e.actor_id,
        },
        action: e.action,
        object: Object {
            kind: e.object_kind,
            id: e.object_id,
        },
        outcome: e.outcome,
        changes: e.changes,
    }
}

/// An object's last events, newest first (Administrators).
#[utoipa::path(get, path = "/api/v1/audit/objects/{kind}/{id}", tag = "audit",
    params(("kind" = String, Path, description = "user, session, api_token, invitation, organization"), ("id" = String, Path)),
    responses((status = 200, body = EventList), (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn object_events(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Json<EventList>, ApiError> {
    let events = state.hub.object_events(&caller, &kind, &id).await?;
    Ok(Json(EventList {
        events: events.into_iter().map(body).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchQuery {
    /// The acting user's (or operator token's) id.
    actor: Option<String>,
    object_kind: Option<String>,
    object_id: Option<String>,
    action: Option<String>,
    /// RFC 3339, inclusive.
    #[serde(default, with = "time::serde::rfc3339::option")]
    from: Option<OffsetDateTime>,
    /// RFC 3339, exclusive.
    #[serde(default, with = "time::serde::rfc3339::option")]
    to: Option<OffsetDateTime>,
    /// 1..=500, default 100.
    limit: Option<u32>,
    offset: Option<u32>,
}

/// Search the organization's events, newest first, one page (Administrators).
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit",
    params(SearchQuery),
    responses((status = 200, body = EventList), (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn search(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventList>, ApiError> {
    let Query(q) = query.map_err(|_| {
        ApiError::invalid(
            "query",
            "use actor, object_kind, object_id, action, from, to (RFC 3339), limit, offset",
        )
    })?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 500"));
    }
    let events = state
        .hub
        .search_events(
            &caller,
            AuditSearch {
                actor_id: q.actor,
                object_kind: q.object_kind,
                object_id: q.object_id,
                action: q.action,
                from: q.from,
                to: q.to,
                limit,
                offset: q.offset.unwrap_or(0),
            },
        )
        .await?;
    Ok(Json(EventList {
        events: events.into_iter().map(body).collect(),
    }))
}
