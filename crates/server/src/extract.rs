//! Extractors: JSON bodies whose rejections are problem+json, and the operator's bearer token.

use crate::AppState;
use crate::problem::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use lockstep_app::{Operator, SecretToken};
use serde::de::DeserializeOwned;

/// A JSON body. A missing content type, malformed JSON or a wrong field type is a 4xx
/// problem+json that names the problem (serde's message names the field, never echoes a value).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

fn json_problem(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Send the body as JSON",
        )
        .detail("Set `Content-Type: application/json`."),
        JsonRejection::JsonDataError(err) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
            "The request body does not have the expected fields",
        )
        .detail(serde_detail(&err.body_text())),
        JsonRejection::BytesRejection(err) if err.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "The request body is too large",
            )
        }
        JsonRejection::JsonSyntaxError(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "The request body is not valid JSON",
        ),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "The request body could not be read",
        ),
    }
}

/// Path parameters. A segment that cannot be read (not UTF-8 once percent-decoded) is a 422
/// problem naming the path, like a malformed id.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(path_problem(&rejection)),
        }
    }
}

fn path_problem(rejection: &axum::extract::rejection::PathRejection) -> ApiError {
    use axum::extract::path::ErrorKind;
    let axum::extract::rejection::PathRejection::FailedToDeserializePathParams(err) = rejection
    else {
        return ApiError::invalid("path", "the path cannot be read");
    };
    match err.kind() {
        ErrorKind::InvalidUtf8InPathParam { key } => {
            ApiError::invalid(key, "is not valid UTF-8 once percent-decoded")
        }
        ErrorKind::ParseErrorAtKey {
            key, expected_type, ..
        } => ApiError::invalid(key, format!("must be a {expected_type}")),
        _ => ApiError::invalid(
            "path",
            "a path segment is not one of the values the operation lists",
        ),
    }
}

/// Query parameters. An unknown parameter or a value of the wrong type is a 422 problem that
/// names the parameter (never its value).
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => {
                let text = rejection.body_text();
                let detail = serde_detail(
                    text.strip_prefix("Failed to deserialize query string: ")
                        .unwrap_or(&text),
                );
                Err(ApiError::invalid("query", detail))
            }
        }
    }
}

/// serde_json's data errors read like "…: missing field `name` at line 1 column 2" or
/// "invalid type: integer `5`, expected a string"; keep the part that names the field and drop
/// quoted values, so a secret sent in the wrong field is never echoed back.
fn serde_detail(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_value = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' if !in_value => {
                // A quoted field name follows "field " / "variant "; anything else is a value.
                let keep = out.ends_with("field ") || out.ends_with("variant ");
                if keep {
                    out.push('`');
                    for n in chars.by_ref() {
                        out.push(n);
                        if n == '`' {
                            break;
                        }
                    }
                } else {
                    in_value = true;
                    out.push_str("(value)");
                }
            }
            '`' => in_value = false,
            _ if in_value => {}
            _ => out.push(c),
        }
    }
    match out.split_once("target type: ") {
        Some((_, tail)) => tail.to_owned(),
        None => out,
    }
}

/// The operator, authenticated by `Authorization: Bearer <operator token>`.
#[derive(Debug)]
pub struct OperatorAuth(pub Operator);

impl FromRequestParts<AppState> for OperatorAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or_else(ApiError::unauthenticated)?;
        let operator = state.hub.authenticate_operator(&token).await?;
        Ok(OperatorAuth(operator))
    }
}

fn bearer_token(parts: &Parts) -> Option<SecretToken> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return None;
    }
    Some(SecretToken::from_text(token.trim()))
}

#[cfg(test)]
mod tests {
    use super::serde_detail;

    #[test]
    fn serde_details_keep_field_names_and_drop_values() {
        assert_eq!(
            serde_detail(
                "Failed to deserialize the JSON body into the target type: missing field `name` at line 1 column 2"
            ),
            "missing field `name` at line 1 column 2"
        );
        let detail = serde_detail(
            "Failed to deserialize the JSON body into the target type: invalid type: string `a: hunter2`, expected u8 at line 1 column 20",
        );
        assert!(!detail.contains("hunter2"), "{detail}");
        assert!(detail.contains("expected u8"), "{detail}");
        let detail = serde_detail("x: unknown field `pasword`, expected one of `key`, `reset`");
        assert!(detail.contains("`pasword`"), "{detail}");
    }
}

/// The session cookie's name. The `__Host-` prefix makes browsers insist on Secure, Path=/ and
/// no Domain, so no other host can set or read it.
pub const SESSION_COOKIE: &str = "__Host-lockstep_session";

/// A signed-in member, by `Authorization: Bearer <session or API token>` or by the session
/// cookie. A cookie-authenticated request that changes something must carry the session's CSRF
/// token in `X-CSRF-Token`; a bearer token cannot be sent by a browser on its own, so it needs none.
#[derive(Debug)]
pub struct Authenticated(pub lockstep_app::Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(token) = bearer_token(parts) {
            let caller = state.hub.authenticate(token.expose()).await?;
            audit_support_request(parts, state, &caller).await?;
            return Ok(Authenticated(caller));
        }
        let Some(token) = session_cookie(parts) else {
            return Err(ApiError::unauthenticated());
        };
        let caller = state.hub.authenticate(&token).await?;
        if !parts.method.is_safe() {
            let csrf = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !caller.csrf_matches(csrf) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "The CSRF token is missing or wrong",
                )
                .detail("Send the csrf_token from sign-in as `X-CSRF-Token`."));
            }
        }
        audit_support_request(parts, state, &caller).await?;
        Ok(Authenticated(caller))
    }
}

/// A support person's request is recorded in the organization's audit (method and route
/// template) before it is served; one that cannot be recorded is not served.
pub(crate) async fn audit_support_request(
    parts: &Parts,
    state: &AppState,
    caller: &lockstep_app::Caller,
) -> Result<(), lockstep_app::AppError> {
    if caller.support_grant().is_none() {
        return Ok(());
    }
    let route = parts
        .extensions
        .get::<axum::extract::MatchedPath>()
        .map_or("(unmatched)", axum::extract::MatchedPath::as_str);
    state
        .hub
        .record_support_request(caller, parts.method.as_str(), route)
        .await
}

fn session_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}
