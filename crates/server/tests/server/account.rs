//! The member's own credentials through the API: what ends API tokens (signing out with one,
//! a password change, "sign out everywhere"; the password reset is in lockstep-app's tests),
//! and what a token's scope and expiry allow.

use super::Answer;
use super::connections::{Env, env};
use super::web::PASSWORD;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

/// A new API token of the admin, made with the admin's session.
async fn new_token(env: &mut Env, name: &str) -> String {
    let made = env
        .admin(
            Method::POST,
            "/api/v1/me/tokens",
            Some(json!({"name": name, "scope": "manage", "expires_in_days": 30})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    made.json()["token"].as_str().unwrap().to_owned()
}

async fn works(env: &mut Env, token: &str) -> bool {
    let me = env.call(Method::GET, "/api/v1/me", token, None).await;
    assert!(
        me.status == StatusCode::OK || me.status == StatusCode::UNAUTHORIZED,
        "{}",
        me.body
    );
    me.status == StatusCode::OK
}

#[tokio::test]
async fn signing_out_with_an_api_token_revokes_it() {
    let mut env = env("loopback").await;
    let token = new_token(&mut env, "ci").await;
    let other = new_token(&mut env, "nightly").await;
    assert!(works(&mut env, &token).await);
    let out = env
        .call(Method::POST, "/api/v1/auth/logout", &token, None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    assert!(
        !works(&mut env, &token).await,
        "the token outlived its sign-out"
    );
    assert!(works(&mut env, &other).await, "another token was revoked");
    let admin = env.admin.clone();
    assert!(works(&mut env, &admin).await, "the session ended");
    let events = env
        .admin(
            Method::GET,
            "/api/v1/audit/events?action=api_token.revoked",
            None,
        )
        .await;
    assert_eq!(events.json()["events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_password_change_and_signing_out_everywhere_revoke_api_tokens_unless_asked_not_to() {
    let mut env = env("loopback").await;
    let token = new_token(&mut env, "ci").await;
    let change = |current: &str, new: &str, revoke: Option<bool>| {
        let mut body = json!({"current_password": current, "new_password": new});
        if let Some(revoke) = revoke {
            body["revoke_api_tokens"] = json!(revoke);
        }
        body
    };
    let kept = env
        .admin(
            Method::POST,
            "/api/v1/me/password",
            Some(change(PASSWORD, "a second long passphrase", Some(false))),
        )
        .await;
    assert_eq!(kept.status, StatusCode::NO_CONTENT, "{}", kept.body);
    assert!(works(&mut env, &token).await);
    let by_default = env
        .admin(
            Method::POST,
            "/api/v1/me/password",
            Some(change(
                "a second long passphrase",
                "a third long passphrase",
                None,
            )),
        )
        .await;
    assert_eq!(
        by_default.status,
        StatusCode::NO_CONTENT,
        "{}",
        by_default.body
    );
    assert!(
        !works(&mut env, &token).await,
        "a password change kept the token"
    );

    let token = new_token(&mut env, "ci").await;
    let bad = env
        .admin(
            Method::DELETE,
            "/api/v1/me/sessions?revoke_api_tokens=maybe",
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("revoke_api_tokens") && !bad.body.contains("maybe"));
    let admin = env.admin.clone();
    assert!(
        works(&mut env, &admin).await,
        "a refused request changed something"
    );
    let kept = env
        .admin(
            Method::DELETE,
            "/api/v1/me/sessions?revoke_api_tokens=false",
            None,
        )
        .await;
    assert_eq!(kept.status, StatusCode::NO_CONTENT, "{}", kept.body);
    assert!(works(&mut env, &token).await);
    assert!(!works(&mut env, &admin).await);

    let pw = lockstep_app::Password::new("a third long passphrase".to_owned());
    env.admin = env
        .hub
        .login("admin@alpha.io", &pw, None)
        .await
        .unwrap()
        .session_token
        .expose()
        .to_owned();
    let everywhere = env.admin(Method::DELETE, "/api/v1/me/sessions", None).await;
    assert_eq!(
        everywhere.status,
        StatusCode::NO_CONTENT,
        "{}",
        everywhere.body
    );
    assert!(
        !works(&mut env, &token).await,
        "signing out everywhere kept the token"
    );
}

/// A token made with `session` (a member's session token) through the API.
async fn scoped_token(env: &mut Env, session: &str, scope: &str, extra: Value) -> Answer {
    let mut body = json!({"name": format!("{scope} token"), "scope": scope});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let session = session.to_owned();
    env.call(Method::POST, "/api/v1/me/tokens", &session, Some(body))
        .await
}

async fn made(env: &mut Env, session: &str, scope: &str) -> String {
    let made = scoped_token(env, session, scope, json!({})).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(made.json()["scope"], scope);
    made.json()["token"].as_str().unwrap().to_owned()
}

/// A 403 problem+json that names the token's scope as the reason.
fn assert_scope_too_narrow(answer: &Answer, scope: &str, needs: &str) {
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert_eq!(answer.content_type(), "application/problem+json");
    let body = answer.json();
    assert_eq!(body["type"], "urn:lockstep:problem:token-scope-too-narrow");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("scope is {scope}")) && detail.contains(needs),
        "{detail}"
    );
}

/// A files connection with one uploaded CSV, a PostgreSQL destination and a pipeline between
/// them, made by the Administrator; answers the pipeline's id.
async fn a_pipeline(e: &mut Env) -> String {
    let created = e
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "BOM exports", "kind": "files"})),
        )
        .await;
    let files = created.json()["id"].as_str().unwrap().to_owned();
    let request = axum::http::Request::builder()
        .method(Method::PUT)
        .uri(format!("/api/v1/connections/{files}/files/bom.csv"))
        .header("authorization", format!("Bearer {}", e.admin))
        .body(axum::body::Body::from("PartNo,Qty\nP-100,2\n"))
        .unwrap();
    let response = tower::ServiceExt::oneshot(e.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    e.admin(
        Method::POST,
        &format!("/api/v1/connections/{files}/discover"),
        None,
    )
    .await;
    let dst = super::pipelines::postgres_connection(e, "ERP").await;
    let created = e
        .admin(
            Method::POST,
            "/api/v1/pipelines",
            Some(json!({"name": "Nightly canary sync", "source": {"connection_id": files, "object": "uploads/bom.csv"},
                "destination": {"connection_id": dst, "object": "public.scoped_token_never_written"},
                "mappings": [{"source": "PartNo", "destination": "item_code"}],
                "mode": "append"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    created.json()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_read_token_reads_but_changes_nothing() {
    let mut env = env("loopback").await;
    let admin = env.admin.clone();
    let read = made(&mut env, &admin, "read").await;
    let listed = env
        .call(Method::GET, "/api/v1/connections", &read, None)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let users = env.call(Method::GET, "/api/v1/users", &read, None).await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.body);

    let create = env
        .call(
            Method::POST,
            "/api/v1/connections",
            &read,
            Some(json!({"name": "BOM exports", "kind": "files"})),
        )
        .await;
    assert_scope_too_narrow(&create, "read", "manage");
    let invite = env
        .call(
            Method::POST,
            "/api/v1/users/invitations",
            &read,
            Some(json!({"email": "new@alpha.io", "role": "viewer"})),
        )
        .await;
    assert_scope_too_narrow(&invite, "read", "manage");
    let listed = env
        .call(Method::GET, "/api/v1/connections", &read, None)
        .await;
    assert_eq!(
        listed.json()["connections"].as_array().map(Vec::len),
        Some(0),
        "a refused request created something: {}",
        listed.body
    );
}

#[tokio::test]
async fn a_run_token_starts_and_cancels_runs_but_edits_no_pipeline() {
    let mut env = env("loopback").await;
    let pipeline = a_pipeline(&mut env).await;
    let editor = env.editor.clone();
    let run = made(&mut env, &editor, "run").await;
    let read = made(&mut env, &editor, "read").await;

    let refused = env
        .call(
            Method::POST,
            &format!("/api/v1/pipelines/{pipeline}/runs"),
            &read,
            None,
        )
        .await;
    assert_scope_too_narrow(&refused, "read", "run");
    let started = env
        .call(
            Method::POST,
            &format!("/api/v1/pipelines/{pipeline}/runs"),
            &run,
            None,
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    let queued = started.json()["id"].as_str().unwrap().to_owned();
    let cancelled = env
        .call(
            Method::POST,
            &format!("/api/v1/pipelines/{pipeline}/runs/{queued}/cancel"),
            &run,
            None,
        )
        .await;
    assert_eq!(cancelled.json()["state"], "cancelled", "{}", cancelled.body);

    let edit = env
        .call(
            Method::PATCH,
            &format!("/api/v1/pipelines/{pipeline}"),
            &run,
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_scope_too_narrow(&edit, "run", "manage");
    let delete = env
        .call(
            Method::DELETE,
            &format!("/api/v1/pipelines/{pipeline}"),
            &run,
            None,
        )
        .await;
    assert_scope_too_narrow(&delete, "run", "manage");
    let kept = env
        .call(
            Method::GET,
            &format!("/api/v1/pipelines/{pipeline}"),
            &run,
            None,
        )
        .await;
    assert_eq!(kept.json()["name"], "Nightly canary sync", "{}", kept.body);
    // The pipeline's and the connections' names are sealed at rest.
    let rows = lockstep_storage::testing::snapshot(&env.store.store)
        .await
        .unwrap()
        .join("\n");
    for name in ["Nightly canary sync", "BOM exports"] {
        let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(
            !rows.contains(name) && !rows.to_lowercase().contains(&hex),
            "{name} is stored in clear"
        );
    }
}

#[tokio::test]
async fn a_tokens_scope_never_exceeds_its_owners_role() {
    let mut env = env("loopback").await;
    let pipeline = a_pipeline(&mut env).await;
    let viewer = env.viewer.clone();
    // A Viewer may make a manage token; it still does only what a Viewer may.
    let manage = made(&mut env, &viewer, "manage").await;
    let listed = env
        .call(Method::GET, "/api/v1/pipelines", &manage, None)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let start = env
        .call(
            Method::POST,
            &format!("/api/v1/pipelines/{pipeline}/runs"),
            &manage,
            None,
        )
        .await;
    assert_eq!(start.status, StatusCode::FORBIDDEN, "{}", start.body);
    assert_eq!(start.json()["type"], "urn:lockstep:problem:forbidden");
    let create = env
        .call(
            Method::POST,
            "/api/v1/connections",
            &manage,
            Some(json!({"name": "x", "kind": "files"})),
        )
        .await;
    assert_eq!(create.status, StatusCode::FORBIDDEN, "{}", create.body);
}

#[tokio::test]
async fn token_scope_and_expiry_are_chosen_and_checked_at_creation() {
    let mut env = env("loopback").await;
    let admin = env.admin.clone();
    let now = env.hub.now();

    // No expiry given: 90 days.
    let default = scoped_token(&mut env, &admin, "read", json!({})).await;
    assert_eq!(default.status, StatusCode::CREATED, "{}", default.body);
    let expires = time::OffsetDateTime::parse(
        default.json()["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((expires - now).whole_days(), 90);

    let at = (now + time::Duration::days(7))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let dated = scoped_token(&mut env, &admin, "run", json!({"expires_at": at})).await;
    assert_eq!(dated.status, StatusCode::CREATED, "{}", dated.body);

    for (scope, extra, field) in [
        ("admin", json!({}), "scope"),
        ("read", json!({"expires_in_days": 366}), "expires_in_days"),
        ("read", json!({"expires_in_days": 0}), "expires_in_days"),
        (
            "read",
            json!({"expires_at": (now + time::Duration::days(400)).format(&time::format_description::well_known::Rfc3339).unwrap()}),
            "expires_at",
        ),
        (
            "read",
            json!({"expires_at": (now - time::Duration::days(1)).format(&time::format_description::well_known::Rfc3339).unwrap()}),
            "expires_at",
        ),
        (
            "read",
            json!({"expires_in_days": 7, "expires_at": at}),
            "expires_at",
        ),
    ] {
        let refused = scoped_token(&mut env, &admin, scope, extra.clone()).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{extra}: {}",
            refused.body
        );
        assert!(refused.body.contains(field), "{extra}: {}", refused.body);
    }
    let missing = env
        .admin(
            Method::POST,
            "/api/v1/me/tokens",
            Some(json!({"name": "no scope"})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(missing.body.contains("scope"), "{}", missing.body);

    let list = env.admin(Method::GET, "/api/v1/me/tokens", None).await;
    let listed = list.json();
    let scopes: Vec<&str> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["scope"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["read", "run"], "{}", list.body);
}

#[tokio::test]
async fn an_expired_token_is_401_like_an_unknown_one() {
    let mut env = env("loopback").await;
    let admin = env.admin.clone();
    let made = scoped_token(&mut env, &admin, "read", json!({"expires_in_days": 7})).await;
    let token = made.json()["token"].as_str().unwrap().to_owned();
    assert!(works(&mut env, &token).await);
    env.clock
        .advance(time::Duration::days(7) - time::Duration::seconds(1));
    assert!(works(&mut env, &token).await, "ended before its expiry");
    env.clock.advance(time::Duration::seconds(1));
    let expired = env.call(Method::GET, "/api/v1/me", &token, None).await;
    let unknown = env
        .call(
            Method::GET,
            "/api/v1/me",
            "lst_not-a-token-of-this-hub",
            None,
        )
        .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.body, unknown.body);
    assert_eq!(expired.content_type(), "application/problem+json");
}
