//! `/api/v1/audit/*`: Administrators read their organization's audit events.

use crate::AppState;
use crate::extract::{ApiPath, Authenticated};
use crate::problem::ApiError;
use axum::Json;
use axum::extract::{Query, State};
use lockstep_app::{AuditEvent, AuditSearch, FieldChange};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Actor {
    /// `user`, `operator`, `anonymous`, `scheduler`, or `support` (its id is the support access
    /// grant the support person worked under).
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

/// The kinds of object that audit events are about.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AuditedKind {
    User,
    Session,
    ApiToken,
    Invitation,
    Organization,
    Connection,
    Pipeline,
    Run,
    Dataset,
    Passkey,
}

impl AuditedKind {
    fn as_str(self) -> &'static str {
        match self {
            AuditedKind::User => "user",
            AuditedKind::Session => "session",
            AuditedKind::ApiToken => "api_token",
            AuditedKind::Invitation => "invitation",
            AuditedKind::Organization => "organization",
            AuditedKind::Connection => "connection",
            AuditedKind::Pipeline => "pipeline",
            AuditedKind::Run => "run",
            AuditedKind::Dataset => "dataset",
            AuditedKind::Passkey => "passkey",
        }
    }
}

/// An object's last events, newest first (Administrators). An object without events is 404.
#[utoipa::path(get, path = "/api/v1/audit/objects/{kind}/{id}", tag = "audit",
    params(("kind" = AuditedKind, Path), ("id" = String, Path)),
    responses((status = 200, body = EventList)))]
pub(crate) async fn object_events(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((kind, id)): ApiPath<(AuditedKind, String)>,
) -> Result<Json<EventList>, ApiError> {
    let events = state.hub.object_events(&caller, kind.as_str(), &id).await?;
    Ok(Json(EventList {
        events: events.into_iter().map(body).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
    /// 1 to 500, default 100.
    #[param(minimum = 1, maximum = 500)]
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

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CheckpointBody {
    /// The signed note: origin, size, base64 root, blank line, signature line(s).
    checkpoint: String,
    /// The hub's verifier key (`name+keyid+base64`).
    vkey: String,
}

/// The newest signed checkpoint of the organization's ledger (Administrators).
#[utoipa::path(get, path = "/api/v1/audit/ledger/checkpoint", tag = "audit",
    responses((status = 200, body = CheckpointBody), (status = 403, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn checkpoint(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<CheckpointBody>, ApiError> {
    let checkpoint = state.hub.latest_checkpoint(&caller).await?;
    Ok(Json(CheckpointBody {
        checkpoint,
        vkey: state.hub.ledger_vkey()?,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct InclusionQuery {
    /// The entry's position (0-based).
    index: u64,
    /// The tree size the proof is for (a checkpoint's size).
    size: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct InclusionBody {
    index: u64,
    size: u64,
    /// The entry, base64.
    entry: String,
    /// Audit path hashes, base64, leaf to root.
    proof: Vec<String>,
}

/// An inclusion proof of one ledger entry in the tree of `size` entries (Administrators).
#[utoipa::path(get, path = "/api/v1/audit/ledger/proofs/inclusion", tag = "audit",
    params(InclusionQuery),
    responses((status = 200, body = InclusionBody), (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn inclusion(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<InclusionBody>, ApiError> {
    let Query(q) =
        query.map_err(|_| ApiError::invalid("query", "give index and size as numbers"))?;
    let (entry, proof) = state.hub.inclusion_proof(&caller, q.index, q.size).await?;
    Ok(Json(InclusionBody {
        index: q.index,
        size: q.size,
        entry: b64(&entry),
        proof: proof.iter().map(|h| b64(h)).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsistencyQuery {
    /// The older tree size.
    from: u64,
    /// The newer tree size.
    to: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ConsistencyBody {
    from: u64,
    to: u64,
    /// Proof hashes, base64.
    proof: Vec<String>,
}

/// A consistency proof between two sizes of the ledger (Administrators).
#[utoipa::path(get, path = "/api/v1/audit/ledger/proofs/consistency", tag = "audit",
    params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyBody), (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn consistency(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ConsistencyBody>, ApiError> {
    let Query(q) = query.map_err(|_| ApiError::invalid("query", "give from and to as numbers"))?;
    let proof = state.hub.consistency_proof(&caller, q.from, q.to).await?;
    Ok(Json(ConsistencyBody {
        from: q.from,
        to: q.to,
        proof: proof.iter().map(|h| b64(h)).collect(),
    }))
}

/// The whole ledger (entries, running roots, checkpoints, verifier key) as one document that an
/// auditor verifies without the hub: `lockstep audit verify --export FILE` (Administrators).
#[utoipa::path(get, path = "/api/v1/audit/ledger/export", tag = "audit",
    responses((status = 200, description = "The exported ledger (JSON)"), (status = 403, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn export(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<lockstep_app::ExportedLedger>, ApiError> {
    Ok(Json(state.hub.export_ledger(&caller).await?))
}
