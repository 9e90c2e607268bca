//! Tryton's JSON-RPC over HTTP: one POST per call to `<url><database>/rpc/`, the session in an
//! `Authorization: Session …` header, answers bounded in size and time, failures mapped to
//! [`ConnectorError`]s that carry neither the password, the session nor Tryton's own message
//! (which quotes record values).

use super::TrytonConfig;
use crate::{ConnectorError, Context, FailureKind, Secret};
use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use url::Url;

/// The most bytes read from one answer.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// One client of one Tryton database, logged in or not.
pub(crate) struct Rpc {
    client: reqwest::Client,
    ctx: Context,
    /// `<url><database>/rpc/`.
    url: Url,
    /// `<url>rpc/`: the calls that need no database (`common.server.version`).
    root_url: Url,
    /// `Session base64(user:id:session)`, marked sensitive; `None` until logged in.
    session: Option<HeaderValue>,
    next_id: AtomicU64,
}

impl Rpc {
    pub(crate) fn new(ctx: &Context, config: &TrytonConfig) -> Result<Rpc, ConnectorError> {
        let url = config.rpc_url()?;
        let root_url = config
            .base_url()?
            .join("rpc/")
            .map_err(|_| ConnectorError::config("config.url", "must be an absolute http(s) URL"))?;
        ctx.egress.check_url(&url)?;
        Ok(Rpc {
            client: ctx.egress.http_client(ctx.timeout)?,
            ctx: ctx.clone(),
            url,
            root_url,
            session: None,
            next_id: AtomicU64::new(1),
        })
    }

    /// `common.db.login`: on success the session is kept for the next calls. Answers the
    /// user's id.
    pub(crate) async fn login(
        &mut self,
        user: &str,
        password: &Secret,
    ) -> Result<i64, ConnectorError> {
        let params = json!([user, {"password": password.expose()}, "en"]);
        let answer = self
            .post(&self.url.clone(), "common.db.login", params, None)
            .await?;
        // [user_id, session, bus_url]
        let Some([Value::Number(id), Value::String(session), ..]) =
            answer.as_array().map(Vec::as_slice)
        else {
            // Tryton 8.2 answers a refused login with HTTP 401; older ones answered `false`.
            return Err(if answer == Value::Bool(false) || answer.is_null() {
                refused_login()
            } else {
                protocol("common.db.login")
            });
        };
        let user_id = id.as_i64().ok_or_else(|| protocol("common.db.login"))?;
        let session = Secret::new(session.clone());
        let token = zeroize::Zeroizing::new(format!("{user}:{user_id}:{}", session.expose()));
        let encoded = zeroize::Zeroizing::new(format!(
            "Session {}",
            base64::engine::general_purpose::STANDARD.encode(token.as_bytes())
        ));
        let mut header = HeaderValue::from_str(&encoded).map_err(|_| {
            ConnectorError::config(
                "config.user",
                "cannot be sent in an HTTP header (line breaks or control characters)",
            )
        })?;
        header.set_sensitive(true);
        self.session = Some(header);
        Ok(user_id)
    }

    /// `common.db.logout`; the session is forgotten whatever the answer.
    pub(crate) async fn logout(&mut self) -> Result<(), ConnectorError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        self.post(
            &self.url.clone(),
            "common.db.logout",
            json!([]),
            Some(&session),
        )
        .await
        .map(drop)
    }

    /// A detached logout for `Drop`: sent on the current Tokio runtime, if any, and not waited
    /// for (the request is bounded by the client's timeout).
    pub(crate) fn logout_in_background(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(AUTHORIZATION, session)
            .body(json!({"id": 0, "method": "common.db.logout", "params": []}).to_string());
        runtime.spawn(async move {
            let _ = request.send().await;
        });
    }

    /// The server's version series (`8.2`), from the database-less endpoint.
    pub(crate) async fn server_version(&self) -> Result<String, ConnectorError> {
        let answer = self
            .post(&self.root_url, "common.server.version", json!([]), None)
            .await?;
        answer
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| protocol("common.server.version"))
    }

    /// Calls `method` (`model.product.product.search_read`) with `params` in the session.
    ///
    /// Tryton checks a session by reading every session of the user from the same address; when
    /// another of them ends meanwhile (a concurrent logout), the check fails with an
    /// `AccessError` on `Session` although nothing is wrong with this call, which Tryton then
    /// rolled back whole. Such an answer is retried, up to [`SESSION_RACE_ATTEMPTS`] times.
    pub(crate) async fn call(&self, method: &str, params: Value) -> Result<Value, ConnectorError> {
        let session = self.session.as_ref().ok_or_else(|| {
            ConnectorError::failed(FailureKind::Authentication, "not logged in to Tryton")
        })?;
        let mut attempt = 1;
        loop {
            let answer = self
                .post_answer(&self.url, method, params.clone(), Some(session))
                .await?;
            if attempt >= SESSION_RACE_ATTEMPTS || !session_race(&answer) {
                return answer_result(method, answer);
            }
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            attempt += 1;
        }
    }

    async fn post(
        &self,
        url: &Url,
        method: &str,
        params: Value,
        session: Option<&HeaderValue>,
    ) -> Result<Value, ConnectorError> {
        let answer = self.post_answer(url, method, params, session).await?;
        answer_result(method, answer)
    }

    /// The JSON-RPC answer to `method`, an error answer included.
    async fn post_answer(
        &self,
        url: &Url,
        method: &str,
        params: Value,
        session: Option<&HeaderValue>,
    ) -> Result<Value, ConnectorError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"id": id, "method": method, "params": params}).to_string();
        let mut request = self
            .client
            .post(url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body);
        if let Some(session) = session {
            request = request.header(AUTHORIZATION, session.clone());
        }
        let call = async {
            let mut response = request
                .send()
                .await
                .map_err(|err| crate::rest::http_failure("Tryton", &err))?;
            check_status(method, response.status())?;
            if response
                .content_length()
                .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
            {
                return Err(too_large(method));
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|err| crate::rest::http_failure("Tryton", &err))?
            {
                if bytes.len().saturating_add(chunk.len()) > MAX_ANSWER_BYTES {
                    return Err(too_large(method));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        };
        // reqwest's own timeout covers each request; this one also covers a slow body.
        let bytes = tokio::time::timeout(self.ctx.timeout, call)
            .await
            .map_err(|_| {
                ConnectorError::failed(
                    FailureKind::Timeout,
                    format!("Tryton did not answer {method} in time"),
                )
            })??;
        serde_json::from_slice(&bytes).map_err(|_| protocol(method))
    }
}

/// How many times a call is made when Tryton's session check races with another session's end.
const SESSION_RACE_ATTEMPTS: u32 = 5;

/// Whether `answer` is Tryton's session check failing on a session that ended meanwhile
/// (`AccessError` "You are trying to read records … of "Session" that don't exist").
fn session_race(answer: &Value) -> bool {
    let Some(error) = answer.get("error").filter(|e| !e.is_null()) else {
        return false;
    };
    error.get(0).and_then(Value::as_str) == Some("AccessError")
        && error
            .get(1)
            .and_then(|args| args.get(0))
            .and_then(Value::as_str)
            .is_some_and(|text| text.contains("of \"Session\""))
}

/// What an HTTP status other than 200 means.
fn check_status(method: &str, status: StatusCode) -> Result<(), ConnectorError> {
    let failed = |kind, what: String| Err(ConnectorError::failed(kind, what));
    match status {
        s if s.is_success() => Ok(()),
        StatusCode::UNAUTHORIZED if method == "common.db.login" => Err(refused_login()),
        StatusCode::UNAUTHORIZED => failed(
            FailureKind::Authentication,
            "Tryton refused the session (expired or logged out)".to_owned(),
        ),
        StatusCode::FORBIDDEN => failed(
            FailureKind::Authentication,
            format!("Tryton does not allow {method} to this user (HTTP 403)"),
        ),
        StatusCode::TOO_MANY_REQUESTS => failed(
            FailureKind::Authentication,
            "Tryton refuses logins for now after too many failed ones; try again later".to_owned(),
        ),
        StatusCode::NOT_FOUND => failed(
            FailureKind::NotFound,
            "Tryton has no such database (HTTP 404); check the URL and the database name"
                .to_owned(),
        ),
        StatusCode::GATEWAY_TIMEOUT => failed(
            FailureKind::Timeout,
            format!("Tryton gave up on {method} (its own time limit)"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => failed(
            FailureKind::Protocol,
            format!("Tryton refused {method}: the request is larger than it accepts"),
        ),
        s => failed(
            FailureKind::Protocol,
            format!("Tryton answered {method} with HTTP {}", s.as_u16()),
        ),
    }
}

/// The `result` of a JSON-RPC answer, or its `error` mapped to a failure.
fn answer_result(method: &str, mut answer: Value) -> Result<Value, ConnectorError> {
    if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
        return Err(tryton_error(method, error));
    }
    match answer.get_mut("result") {
        Some(result) => Ok(result.take()),
        None => Err(protocol(method)),
    }
}

/// A Tryton error answer, `[class, args]` for Tryton's own exceptions, `[text, traceback]`
/// for others. Only the class is used: the text quotes record values.
fn tryton_error(method: &str, error: &Value) -> ConnectorError {
    let class = error.get(0).and_then(Value::as_str).unwrap_or_default();
    let text = error
        .get(1)
        .and_then(|args| args.get(0))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (kind, what) = match class {
        "UserError" | "AccessError" if text.starts_with("You are not allowed to") => (
            FailureKind::Authentication,
            "the Tryton user lacks the access rights for it".to_owned(),
        ),
        "UserError"
        | "AccessError"
        | "RequiredValidationError"
        | "DomainValidationError"
        | "DigitsValidationError"
        | "SQLConstraintError"
        | "SizeValidationError" => (
            FailureKind::Other,
            "Tryton refused the values (a validation rule, a unique code, a missing record or \
             an access rule)"
                .to_owned(),
        ),
        "UserWarning" => (
            FailureKind::Other,
            "Tryton asks a user to confirm a warning first".to_owned(),
        ),
        "ConcurrencyException" => (
            FailureKind::Other,
            "the records were changed in Tryton meanwhile; try again".to_owned(),
        ),
        "LoginException" => (
            FailureKind::Authentication,
            "Tryton asks for another login step (a second factor?), which the connector cannot \
             give"
                .to_owned(),
        ),
        "RateLimitException" => (
            FailureKind::Authentication,
            "Tryton refuses logins for now after too many failed ones; try again later".to_owned(),
        ),
        _ => (
            FailureKind::Other,
            "Tryton failed (an error inside the server; its log says more)".to_owned(),
        ),
    };
    ConnectorError::failed(kind, format!("{method}: {what}"))
}

fn refused_login() -> ConnectorError {
    ConnectorError::failed(
        FailureKind::Authentication,
        "Tryton refused the login: wrong user name or password",
    )
}

fn protocol(method: &str) -> ConnectorError {
    ConnectorError::failed(
        FailureKind::Protocol,
        format!("Tryton's answer to {method} is not what Tryton 8.2 answers"),
    )
}

fn too_large(method: &str) -> ConnectorError {
    ConnectorError::failed(
        FailureKind::Protocol,
        format!(
            "Tryton's answer to {method} is larger than {} MiB",
            MAX_ANSWER_BYTES / 1024 / 1024
        ),
    )
}

/// Tryton's typed JSON values (`{"__class__": "Decimal", "decimal": "1.5"}`, bytes, dates) as
/// plain JSON: decimals as strings, bytes as base64 (no line breaks), dates and times in
/// ISO 8601; everything else as is.
pub(crate) fn plain(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(plain).collect()),
        Value::Object(map) => match map.get("__class__").and_then(Value::as_str) {
            Some("Decimal") => map.get("decimal").cloned().unwrap_or(Value::Null),
            Some("bytes") => map
                .get("base64")
                .and_then(Value::as_str)
                .map(|b| Value::String(b.chars().filter(|c| !c.is_whitespace()).collect()))
                .unwrap_or(Value::Null),
            Some("date") => Value::String(format!(
                "{:04}-{:02}-{:02}",
                int(&map, "year"),
                int(&map, "month"),
                int(&map, "day")
            )),
            Some("datetime") => Value::String(format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
                int(&map, "year"),
                int(&map, "month"),
                int(&map, "day"),
                int(&map, "hour"),
                int(&map, "minute"),
                int(&map, "second"),
                int(&map, "microsecond")
            )),
            Some("time") => Value::String(format!(
                "{:02}:{:02}:{:02}.{:06}",
                int(&map, "hour"),
                int(&map, "minute"),
                int(&map, "second"),
                int(&map, "microsecond")
            )),
            Some("timedelta") => map.get("seconds").cloned().unwrap_or(Value::Null),
            _ => Value::Object(map.into_iter().map(|(k, v)| (k, plain(v))).collect()),
        },
        other => other,
    }
}

fn int(map: &serde_json::Map<String, Value>, key: &str) -> i64 {
    map.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// Bytes as Tryton's JSON-RPC takes them.
pub(crate) fn bytes_value(bytes: &[u8]) -> Value {
    json!({"__class__": "bytes", "base64": base64::engine::general_purpose::STANDARD.encode(bytes)})
}

/// Bytes from Tryton's JSON-RPC (`{"__class__": "bytes", "base64": "…\n…"}`, base64 with line
/// breaks).
pub(crate) fn bytes_of(value: &Value) -> Option<Vec<u8>> {
    let encoded: String = value
        .get("base64")?
        .as_str()?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tryton_errors_keep_the_class_and_drop_the_text() {
        let error = json!([
            "UserError",
            ["The value \"SECRET-PART\" is not valid", "", null]
        ]);
        let err = tryton_error("model.production.bom.create", &error);
        assert_eq!(err.kind(), Some(FailureKind::Other));
        assert!(!err.to_string().contains("SECRET-PART"));
        let error = json!([
            "UserError",
            ["You are not allowed to access \"Product\".", "", null]
        ]);
        let err = tryton_error("model.product.product.search_read", &error);
        assert_eq!(err.kind(), Some(FailureKind::Authentication));
        let err =
            answer_result("m", json!({"id": 1, "error": ["'res.user'", "Traceback"]})).unwrap_err();
        assert!(!err.to_string().contains("res.user"));
        assert_eq!(
            answer_result("m", json!({"id": 1, "result": [1]})).unwrap(),
            json!([1])
        );
        assert!(answer_result("m", json!({"id": 1})).is_err());
    }

    #[test]
    fn a_session_ended_meanwhile_is_told_apart() {
        let race = json!({"id": 1, "error": ["AccessError", [
            "You are trying to read records \"13\" of \"Session\" that don't exist.", ""]]});
        assert!(session_race(&race));
        let other = json!({"id": 1, "error": ["AccessError", [
            "You are trying to read records \"13\" of \"Product\" that don't exist.", ""]]});
        assert!(!session_race(&other));
        assert!(!session_race(
            &json!({"id": 1, "error": ["UserError", ["of \"Session\"", ""]]})
        ));
        assert!(!session_race(&json!({"id": 1, "result": []})));
    }

    #[test]
    fn typed_values_become_plain_json() {
        let value = json!({
            "q": {"__class__": "Decimal", "decimal": "1.50"},
            "d": {"__class__": "date", "year": 2026, "month": 1, "day": 2},
            "b": {"__class__": "bytes", "base64": "aGVs\nbG8=\n"},
            "n": [1, {"x": true}],
        });
        assert_eq!(
            plain(value),
            json!({"q": "1.50", "d": "2026-01-02", "b": "aGVsbG8=", "n": [1, {"x": true}]})
        );
        assert_eq!(
            bytes_of(&json!({"__class__": "bytes", "base64": "aGVs\nbG8=\n"})).unwrap(),
            b"hello"
        );
        assert_eq!(bytes_of(&bytes_value(b"\x00\xff")).unwrap(), b"\x00\xff");
    }
}
