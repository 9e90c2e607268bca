//! `/api/v1/connections*` and `/api/v1/oauth/callback`: the organization's systems.
//!
//! Administrators create, edit, test, discover, connect (OAuth) and delete connections; everybody
//! sees a connection's id, name and kind and its discovered objects; Administrators and Editors
//! read samples. Secrets go in and never come out: no response carries one.

use crate::AppState;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::problem::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lockstep_app::connectors::{ConnectionKind, ObjectMeta, Record, Secret};
use lockstep_app::{ConnectionUpdate, ConnectionView, NewConnection, UploadView};
use lockstep_domain::{ConnectionId, UploadId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateConnection {
    name: String,
    /// `postgres`, `mysql`, `sqlite`, `files` or `rest`.
    kind: String,
    /// The kind's settings (see the README); never secrets.
    #[serde(default = "empty_object")]
    config: serde_json::Value,
    /// Secret fields by name (`password`, `client_key`, `api_key`, `client_secret`): stored
    /// encrypted, never shown again.
    #[serde(default)]
    secrets: BTreeMap<String, String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchConnection {
    name: Option<String>,
    /// The whole new configuration (replaces the old one).
    config: Option<serde_json::Value>,
    /// Secrets to set; `null` removes one. Secrets not named are kept.
    secrets: Option<BTreeMap<String, Option<String>>>,
    /// The kind cannot change; sent only to be checked.
    kind: Option<String>,
}

super::auth::opaque_debug!(CreateConnection, PatchConnection);

impl utoipa::PartialSchema for CreateConnection {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::bodies::new_connection()
    }
}

impl utoipa::ToSchema for CreateConnection {
    fn schemas(
        out: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        super::bodies::connection_schemas(out);
    }
}

impl utoipa::PartialSchema for PatchConnection {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::bodies::connection_patch()
    }
}

impl utoipa::ToSchema for PatchConnection {
    fn schemas(
        out: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        super::bodies::connection_schemas(out);
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OAuthBody {
    connected: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct UploadBody {
    id: UploadId,
    name: String,
    size: u64,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl From<UploadView> for UploadBody {
    fn from(u: UploadView) -> Self {
        UploadBody {
            id: u.id,
            name: u.name,
            size: u.size,
            created_at: u.created_at,
        }
    }
}

/// A connection. Editors and Viewers get `id`, `name` and `kind` only.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ConnectionBody {
    id: ConnectionId,
    name: String,
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    config: Option<serde_json::Value>,
    /// The names of the secrets that are set (never their values).
    #[serde(skip_serializing_if = "Option::is_none")]
    secrets_set: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oauth: Option<OAuthBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<UploadBody>>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    created_at: Option<OffsetDateTime>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    updated_at: Option<OffsetDateTime>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    discovered_at: Option<OffsetDateTime>,
}

impl From<ConnectionView> for ConnectionBody {
    fn from(v: ConnectionView) -> Self {
        let kind = v.kind.as_str().to_owned();
        match v.details {
            None => ConnectionBody {
                id: v.id,
                name: v.name,
                kind,
                config: None,
                secrets_set: None,
                oauth: None,
                files: None,
                created_at: None,
                updated_at: None,
                discovered_at: None,
            },
            Some(d) => ConnectionBody {
                id: v.id,
                name: v.name,
                files: (v.kind == ConnectionKind::Files)
                    .then(|| d.uploads.into_iter().map(UploadBody::from).collect()),
                kind,
                config: Some(d.config),
                secrets_set: Some(d.secrets_set),
                oauth: d.oauth.map(|o| OAuthBody {
                    connected: o.connected,
                    expires_at: o.expires_at,
                }),
                created_at: Some(d.created_at),
                updated_at: Some(d.updated_at),
                discovered_at: d.discovered_at,
            },
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ConnectionList {
    connections: Vec<ConnectionBody>,
}

fn connection_id(id: &str) -> Result<ConnectionId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::invalid("id", "is not a connection id"))
}

fn secrets(map: BTreeMap<String, String>) -> BTreeMap<String, Secret> {
    map.into_iter().map(|(k, v)| (k, Secret::new(v))).collect()
}

/// Create a connection (Administrators).
#[utoipa::path(post, path = "/api/v1/connections", tag = "connections",
    request_body = CreateConnection,
    responses(
        (status = 201, body = ConnectionBody),
        (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 409, body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<CreateConnection>,
) -> Result<(StatusCode, Json<ConnectionBody>), ApiError> {
    let view = state
        .hub
        .create_connection(
            &caller,
            NewConnection {
                name: body.name,
                kind: body.kind,
                config: body.config,
                secrets: secrets(body.secrets),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view.into())))
}

/// The organization's connections (every role; details for Administrators).
#[utoipa::path(get, path = "/api/v1/connections", tag = "connections",
    responses((status = 200, body = ConnectionList)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<ConnectionList>, ApiError> {
    let list = state.hub.list_connections(&caller).await?;
    Ok(Json(ConnectionList {
        connections: list.into_iter().map(ConnectionBody::from).collect(),
    }))
}

/// One connection (every role; details for Administrators).
#[utoipa::path(get, path = "/api/v1/connections/{id}", tag = "connections",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ConnectionBody), (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConnectionBody>, ApiError> {
    let view = state
        .hub
        .get_connection(&caller, connection_id(&id)?)
        .await?;
    Ok(Json(view.into()))
}

/// Change a connection's name, configuration or secrets (Administrators). Without `secrets`, the
/// stored secrets are kept.
#[utoipa::path(patch, path = "/api/v1/connections/{id}", tag = "connections",
    params(("id" = uuid::Uuid, Path)),
    request_body = PatchConnection,
    responses((status = 409, description = "Another connection has this name", body = ApiError, content_type = "application/problem+json"),
        (status = 200, body = ConnectionBody),
        (status = 404, body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PatchConnection>,
) -> Result<Json<ConnectionBody>, ApiError> {
    let id = connection_id(&id)?;
    if let Some(kind) = &body.kind {
        let current = state.hub.get_connection(&caller, id).await?;
        if current.kind.as_str() != kind {
            return Err(ApiError::invalid(
                "kind",
                "a connection's kind cannot change",
            ));
        }
    }
    let update = ConnectionUpdate {
        name: body.name,
        config: body.config,
        secrets: body.secrets.map(|map| {
            map.into_iter()
                .map(|(k, v)| (k, v.map(Secret::new)))
                .collect()
        }),
    };
    let view = state.hub.update_connection(&caller, id, update).await?;
    Ok(Json(view.into()))
}

/// Delete a connection with its secrets, metadata and files; OAuth tokens are revoked first
/// (Administrators).
#[utoipa::path(delete, path = "/api/v1/connections/{id}", tag = "connections",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 409, description = "Pipelines use the connection", body = ApiError, content_type = "application/problem+json"),
        (status = 204), (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .hub
        .delete_connection(&caller, connection_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What "test connection" found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TestResult {
    ok: bool,
    /// What failed: `refused`, `timeout`, `authentication`, `tls`, `dns`, `policy`,
    /// `not_found`, `protocol` or `other`.
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
    message: String,
}

/// Test a connection: connect and check the credentials (Administrators). A failed connection is
/// a 200 answer with `ok: false` saying what failed.
#[utoipa::path(post, path = "/api/v1/connections/{id}/test", tag = "connections",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = TestResult), (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn test(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TestResult>, ApiError> {
    let outcome = state
        .hub
        .test_connection(&caller, connection_id(&id)?)
        .await?;
    Ok(Json(TestResult {
        ok: outcome.ok,
        failure: outcome.failure.map(|f| f.as_str().to_owned()),
        message: outcome.message,
    }))
}

/// Discovered objects and fields. A file also says how it was read (`layout`: `encoding`, and
/// `delimiter` for CSV) or, when it cannot be read, why (`error`, naming the line; no fields).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ObjectList {
    #[schema(value_type = Vec<Object>)]
    objects: Vec<ObjectMeta>,
    #[serde(with = "time::serde::rfc3339::option")]
    discovered_at: Option<OffsetDateTime>,
}

/// Discover the connection's objects and fields and store them as its metadata (Administrators).
#[utoipa::path(post, path = "/api/v1/connections/{id}/discover", tag = "connections",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ObjectList),
        (status = 404, body = ApiError, content_type = "application/problem+json"),
        (status = 502, description = "The connection failed", body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn discover(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ObjectList>, ApiError> {
    let found = state
        .hub
        .discover_connection(&caller, connection_id(&id)?)
        .await?;
    Ok(Json(ObjectList {
        objects: found.objects,
        discovered_at: found.discovered_at,
    }))
}

/// The discovered objects and fields (every role).
#[utoipa::path(get, path = "/api/v1/connections/{id}/objects", tag = "connections",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ObjectList), (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn objects(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ObjectList>, ApiError> {
    let found = state
        .hub
        .connection_objects(&caller, connection_id(&id)?)
        .await?;
    Ok(Json(ObjectList {
        objects: found.objects,
        discovered_at: found.discovered_at,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SampleQuery {
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// Administrators: the records as a member (`user:ID`) or a team (`team:ID`) sees them
    /// under the data policies (audited).
    view_as: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Sample {
    object: String,
    #[schema(value_type = Vec<Object>)]
    records: Vec<Record>,
}

/// A sample of an object's records (Administrators and Editors; audited).
#[utoipa::path(get, path = "/api/v1/connections/{id}/objects/{name}/sample", tag = "connections",
    params(("id" = uuid::Uuid, Path), ("name" = String, Path), SampleQuery),
    responses((status = 200, body = Sample),
        (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 404, body = ApiError, content_type = "application/problem+json"),
        (status = 502, description = "The connection failed", body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn sample(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, name)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<SampleQuery>,
) -> Result<Json<Sample>, ApiError> {
    let view_as = super::policies::view_as(query.view_as.as_deref())?;
    let records = state
        .hub
        .sample_records_as(
            &caller,
            connection_id(&id)?,
            &name,
            query.limit.unwrap_or(20),
            view_as,
        )
        .await?;
    Ok(Json(Sample {
        object: name,
        records,
    }))
}

/// Where to send the browser.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OAuthStarted {
    /// The provider's authorization URL, with a single-use state and a PKCE challenge.
    authorize_url: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// Start connecting with OAuth 2.0 (authorization code with PKCE; Administrators): open the
/// answered URL in the browser that made this call; the provider sends it back to
/// `/api/v1/oauth/callback`, which completes only with the `__Host-lockstep_oauth` cookie this
/// answer sets (so a leaked state alone connects nothing).
#[utoipa::path(post, path = "/api/v1/connections/{id}/oauth/start", tag = "connections",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = OAuthStarted),
        (status = 404, body = ApiError, content_type = "application/problem+json"),
        (status = 409, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn oauth_start(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let started = state.hub.oauth_start(&caller, connection_id(&id)?).await?;
    let mut response = Json(OAuthStarted {
        authorize_url: started.authorize_url,
        expires_at: started.expires_at,
    })
    .into_response();
    let max_age = (started.expires_at - OffsetDateTime::now_utc())
        .whole_seconds()
        .max(0);
    // The value is a generated token (base64url), always a valid header value.
    if let Some(cookie) = crate::web::oauth_cookie(started.binding.expose(), max_age) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Disconnected {
    /// Whether the provider confirmed the revocation (false when it has no revocation endpoint
    /// or did not answer; the tokens are deleted here either way).
    revoked: bool,
}

/// Disconnect OAuth: revoke the tokens at the provider where it offers revocation, and delete
/// them here (Administrators).
#[utoipa::path(post, path = "/api/v1/connections/{id}/oauth/disconnect", tag = "connections",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Disconnected),
        (status = 404, body = ApiError, content_type = "application/problem+json"),
        (status = 409, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn oauth_disconnect(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Disconnected>, ApiError> {
    let revoked = state
        .hub
        .oauth_disconnect(&caller, connection_id(&id)?)
        .await?;
    Ok(Json(Disconnected { revoked }))
}

#[derive(Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

super::auth::opaque_debug!(CallbackQuery);

/// The OAuth provider's redirect back to the hub (opened by the Administrator's browser; the
/// single-use state and the `__Host-lockstep_oauth` cookie set when the flow started are the
/// credential, and the cookie is deleted). Answers a short HTML page; for a browser that asks for
/// HTML (`Accept: text/html`) it links on to the connection's page, and app.js follows the link.
#[utoipa::path(get, path = "/api/v1/oauth/callback", tag = "connections",
    security(()),
    params(CallbackQuery),
    responses((status = 200, description = "Connected", content_type = "text/html"),
        (status = 404, description = "Not connected: the connection is gone", content_type = "text/html"),
        (status = 409, description = "Not connected: no state, or it is unknown, used, expired or not this browser's, or the provider did not grant access", content_type = "text/html"),
        (status = 502, description = "Not connected: the token exchange failed", content_type = "text/html")))]
pub(crate) async fn oauth_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // A query that cannot be read is treated like one without a state: the page says so.
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let browser = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    let result = state
        .hub
        .oauth_callback(lockstep_app::OAuthCallback {
            state: query.state,
            code: query.code,
            error: query.error,
            binding: crate::web::oauth_binding(&headers)
                .map(|value| lockstep_app::SecretToken::from_text(&value)),
        })
        .await;
    let mut response = callback_page(browser, result);
    if let Some(clear) = crate::web::oauth_cookie("", 0) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

/// The callback's answer: a page for a person.
fn callback_page(
    browser: bool,
    result: Result<lockstep_app::OAuthConnected, lockstep_app::AppError>,
) -> Response {
    if browser && let Ok(done) = &result {
        // Not a 303: the provider's cross-site redirect chain would make the browser leave out
        // the SameSite=Strict session cookie on the connection's page. A link followed by
        // app.js is a navigation from this site, which carries it.
        let target = format!("/connections/{}?notice=connected", done.connection);
        let page = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Connected — Lockstep</title>\
             <link rel=\"stylesheet\" href=\"/static/app.css\"><script src=\"/static/app.js\" defer></script></head>\
             <body><main><section class=\"card narrow\"><h1>Connected</h1>\
             <p>Lockstep holds the connection's tokens now.</p>\
             <p><a data-follow href=\"{target}\">Continue to the connection</a></p></section></main></body></html>"
        );
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            page,
        )
            .into_response();
    }
    let (status, title, text) = match result {
        Ok(done) => (
            StatusCode::OK,
            "Connected",
            format!(
                "Lockstep holds the tokens of connection {} now. You can close this window.",
                done.connection
            ),
        ),
        // The problem's own status: 409 for a state that is unknown, used, expired or not this
        // browser's and for a provider's refusal, 502 when the token exchange failed.
        Err(err) => {
            let problem = ApiError::from(err);
            (
                problem.status,
                "Not connected",
                problem.detail.unwrap_or(problem.title),
            )
        }
    };
    let page = if browser {
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} — Lockstep</title>\
             <link rel=\"stylesheet\" href=\"/static/app.css\"></head>\
             <body><main><section class=\"card narrow\"><h1>{title}</h1><p>{}</p>\
             <p><a href=\"/connections\">Back to the connections</a></p></section></main></body></html>",
            escape(&text)
        )
    } else {
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} — Lockstep</title></head>\
             <body><main><h1>{title}</h1><p>{}</p></main></body></html>",
            escape(&text)
        )
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Upload a CSV, JSON or JSON Lines file to a `files` connection (Administrators; at most
/// 32 MiB; kept encrypted). The body is the file; a file of the same name is replaced.
#[utoipa::path(put, path = "/api/v1/connections/{id}/files/{name}", tag = "connections",
    params(("id" = uuid::Uuid, Path), ("name" = String, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 409, description = "Not a files connection, or the file was refused", body = ApiError, content_type = "application/problem+json"),
        (status = 201, body = UploadBody),
        (status = 404, body = ApiError, content_type = "application/problem+json"),
        (status = 413, body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn upload(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, name)): ApiPath<(String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<UploadBody>), ApiError> {
    let view = state
        .hub
        .upload_file(&caller, connection_id(&id)?, &name, &body)
        .await?;
    Ok((StatusCode::CREATED, Json(view.into())))
}

/// Delete an uploaded file (Administrators).
#[utoipa::path(delete, path = "/api/v1/connections/{id}/files/{name}", tag = "connections",
    params(("id" = uuid::Uuid, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn delete_file(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, name)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .hub
        .delete_upload(&caller, connection_id(&id)?, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
