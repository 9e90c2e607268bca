//! Support access through the API: a support account sees nothing of any organization until its
//! Administrator grants a role for a limited time; under the grant it works with that role and no
//! more, every request audited with actor kind `support` and the grant's id; when the grant
//! expires or is revoked, its open session is refused on the next request.

use super::connections::{Env, env};
use super::web::PASSWORD;
use axum::http::{Method, StatusCode};
use lockstep_app::Clock;
use lockstep_auth::TotpSecret;
use serde_json::{Value, json};

const SUPPORT_EMAIL: &str = "helper@platform.example";

/// A support account, set up through the API (password, then TOTP): its id and TOTP secret.
async fn support_account(env: &mut Env) -> (String, TotpSecret) {
    let created = env
        .hub
        .add_support_user(&env.operator, SUPPORT_EMAIL)
        .await
        .unwrap();
    let token = created.setup_token.expose().to_owned();
    // Not set up yet: it cannot be granted access.
    let early = env
        .admin(
            Method::POST,
            "/api/v1/organization/support-access",
            Some(json!({"support_user_id": created.account.id, "role": "viewer", "hours": 1, "reason": "too early"})),
        )
        .await;
    assert_eq!(early.status, 422, "{}", early.body);
    assert_eq!(early.json()["field"], "support_user_id");
    let confirm_first = anonymous(
        env,
        "/api/v1/auth/support/setup/confirm",
        json!({"token": token, "code": "000000"}),
    )
    .await;
    assert_eq!(
        confirm_first.0,
        StatusCode::FORBIDDEN,
        "{}",
        confirm_first.1
    );
    let weak = anonymous(
        env,
        "/api/v1/auth/support/setup",
        json!({"token": token, "password": "password"}),
    )
    .await;
    assert_eq!(weak.0, 422, "{}", weak.1);
    let (status, body) = anonymous(
        env,
        "/api/v1/auth/support/setup",
        json!({"token": token, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let uri = body["otpauth_uri"].as_str().unwrap();
    let secret = TotpSecret::from_otpauth_uri(uri).unwrap();
    let wrong = anonymous(
        env,
        "/api/v1/auth/support/setup/confirm",
        json!({"token": token, "code": "000000"}),
    )
    .await;
    assert_eq!(wrong.0, 422, "{}", wrong.1);
    let code = secret.code_at(env.clock.now()).unwrap().to_string();
    let (status, body) = anonymous(
        env,
        "/api/v1/auth/support/setup/confirm",
        json!({"token": token, "code": code}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // The setup link is used up.
    let again = anonymous(
        env,
        "/api/v1/auth/support/setup",
        json!({"token": token, "password": PASSWORD}),
    )
    .await;
    assert_eq!(again.0, StatusCode::NOT_FOUND);
    (created.account.id.to_string(), secret)
}

async fn anonymous(env: &mut Env, path: &str, body: Value) -> (StatusCode, Value) {
    let answer = super::call(&env.app, Method::POST, path, None, Some(&body.to_string())).await;
    let json = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    (answer.status, json)
}

/// Signs the support person in (a fresh TOTP step each time): their `lsp_` session token.
async fn support_login(env: &mut Env, secret: &TotpSecret) -> String {
    env.clock.advance(time::Duration::seconds(31));
    let code = secret.code_at(env.clock.now()).unwrap().to_string();
    let wrong = anonymous(
        env,
        "/api/v1/auth/support/login",
        json!({"email": SUPPORT_EMAIL, "password": "not-the-password", "totp": code}),
    )
    .await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    let (status, body) = anonymous(
        env,
        "/api/v1/auth/support/login",
        json!({"email": SUPPORT_EMAIL, "password": PASSWORD, "totp": code}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The same code twice is a replay.
    let replay = anonymous(
        env,
        "/api/v1/auth/support/login",
        json!({"email": SUPPORT_EMAIL, "password": PASSWORD, "totp": code}),
    )
    .await;
    assert_eq!(replay.0, StatusCode::UNAUTHORIZED);
    let token = body["session_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("lsp_"));
    token
}

async fn grant(env: &mut Env, support_user: &str, role: &str, hours: i64) -> String {
    let made = env
        .admin(
            Method::POST,
            "/api/v1/organization/support-access",
            Some(json!({"support_user_id": support_user, "role": role, "hours": hours, "reason": "ticket 4711: a pipeline fails"})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(made.json()["active"], true);
    assert_eq!(made.json()["support_email"], SUPPORT_EMAIL);
    made.json()["id"].as_str().unwrap().to_owned()
}

async fn organization_id(env: &mut Env) -> String {
    let me = env.admin(Method::GET, "/api/v1/me", None).await;
    me.json()["organization_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn support_sees_nothing_without_a_grant_and_works_with_the_granted_role_until_it_ends() {
    let mut env = env("loopback").await;
    let org = organization_id(&mut env).await;
    let (support_user, secret) = support_account(&mut env).await;
    let token = support_login(&mut env, &secret).await;

    // No grant: no organization to enter, nothing of any organization visible.
    let list = env
        .call(
            Method::GET,
            "/api/v1/auth/support/organizations",
            &token,
            None,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.json()["organizations"], json!([]));
    let enter = env
        .call(
            Method::POST,
            "/api/v1/auth/support/enter",
            &token,
            Some(json!({"organization_id": org})),
        )
        .await;
    assert_eq!(enter.status, StatusCode::NOT_FOUND, "{}", enter.body);
    for path in [
        "/api/v1/pipelines",
        "/api/v1/users",
        "/api/v1/connections",
        "/api/v1/audit/events",
        "/api/v1/datasets",
    ] {
        let answer = env.call(Method::GET, path, &token, None).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            answer.body
        );
    }

    // Only Administrators grant, for at most 72 hours, with a reason.
    let editor = env.editor.clone();
    let by_editor = env
        .call(
            Method::POST,
            "/api/v1/organization/support-access",
            &editor,
            Some(json!({"support_user_id": support_user, "role": "viewer", "hours": 1, "reason": "x"})),
        )
        .await;
    assert_eq!(by_editor.status, StatusCode::FORBIDDEN);
    for (hours, reason, field) in [
        (73, "why", "hours"),
        (0, "why", "hours"),
        (2, " ", "reason"),
    ] {
        let bad = env
            .admin(
                Method::POST,
                "/api/v1/organization/support-access",
                Some(json!({"support_user_id": support_user, "role": "viewer", "hours": hours, "reason": reason})),
            )
            .await;
        assert_eq!(bad.status, 422, "{}", bad.body);
        assert_eq!(bad.json()["field"], field);
    }
    let viewer_grant = grant(&mut env, &support_user, "viewer", 2).await;

    // With a Viewer grant: it enters, reads, cannot change, and is nobody's account here.
    let list = env
        .call(
            Method::GET,
            "/api/v1/auth/support/organizations",
            &token,
            None,
        )
        .await;
    assert_eq!(
        list.json()["organizations"][0]["organization_id"],
        org.as_str()
    );
    assert_eq!(list.json()["organizations"][0]["role"], "viewer");
    let enter = env
        .call(
            Method::POST,
            "/api/v1/auth/support/enter",
            &token,
            Some(json!({"organization_id": org})),
        )
        .await;
    assert_eq!(enter.status, StatusCode::OK, "{}", enter.body);
    assert_eq!(enter.json()["grant_id"], viewer_grant.as_str());
    let pipelines = env
        .call(Method::GET, "/api/v1/pipelines", &token, None)
        .await;
    assert_eq!(pipelines.status, StatusCode::OK, "{}", pipelines.body);
    let me = env.call(Method::GET, "/api/v1/me", &token, None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.json()["email"], SUPPORT_EMAIL);
    assert_eq!(me.json()["role"], "viewer");
    let change = env
        .call(
            Method::POST,
            "/api/v1/pipelines",
            &token,
            Some(json!({"name": "x", "mode": "append"})),
        )
        .await;
    assert_eq!(change.status, StatusCode::FORBIDDEN, "{}", change.body);
    let users = env.call(Method::GET, "/api/v1/users", &token, None).await;
    assert_eq!(users.status, StatusCode::FORBIDDEN, "{}", users.body);
    let own_token = env
        .call(
            Method::POST,
            "/api/v1/me/tokens",
            &token,
            Some(json!({"name": "mine", "scope": "read"})),
        )
        .await;
    assert_eq!(
        own_token.status,
        StatusCode::FORBIDDEN,
        "{}",
        own_token.body
    );
    assert_eq!(
        own_token.json()["type"],
        "urn:lockstep:problem:customer-only"
    );
    let pull = env
        .call(
            Method::POST,
            "/api/v1/datasets",
            &token,
            Some(json!({"pipeline_id": "01900000-0000-7000-8000-000000000001"})),
        )
        .await;
    assert_eq!(pull.status, StatusCode::FORBIDDEN, "{}", pull.body);

    // Another organization stays invisible, grant or not.
    let other = env
        .hub
        .create_organization(&env.operator, "beta", "admin@beta.io")
        .await
        .unwrap();
    let enter_other = env
        .call(
            Method::POST,
            "/api/v1/auth/support/enter",
            &token,
            Some(json!({"organization_id": other.id})),
        )
        .await;
    assert_eq!(enter_other.status, StatusCode::NOT_FOUND);

    // Every member sees that support has access, and the Administrators see the grant.
    let editor_view = env
        .call(
            Method::GET,
            "/api/v1/organization/support-access",
            &editor,
            None,
        )
        .await;
    assert_eq!(editor_view.status, StatusCode::FORBIDDEN);
    let grants = env
        .admin(Method::GET, "/api/v1/organization/support-access", None)
        .await;
    assert_eq!(grants.json()["grants"][0]["id"], viewer_grant.as_str());
    assert_eq!(
        grants.json()["grants"][0]["reason"],
        "ticket 4711: a pipeline fails"
    );

    // Every request is in the organization's audit, with actor kind `support` and the grant.
    let events = env
        .admin(
            Method::GET,
            "/api/v1/audit/events?action=support.request&limit=500",
            None,
        )
        .await;
    let events = events.json()["events"].as_array().unwrap().clone();
    assert!(!events.is_empty());
    for event in &events {
        assert_eq!(event["actor"]["kind"], "support", "{event}");
        assert_eq!(event["actor"]["id"], viewer_grant.as_str(), "{event}");
    }
    let routes: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["changes"]["method"]["after"].as_str().unwrap(),
                e["changes"]["route"]["after"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "GET /api/v1/pipelines",
        "POST /api/v1/pipelines",
        "GET /api/v1/me",
    ] {
        assert!(
            routes.iter().any(|r| r == expected),
            "{expected} missing from {routes:?}"
        );
    }
    let entered = env
        .admin(
            Method::GET,
            "/api/v1/audit/events?action=support.entered",
            None,
        )
        .await;
    assert_eq!(entered.json()["events"][0]["actor"]["kind"], "support");

    // After the grant's end, the open session is refused on the next request, and it cannot
    // enter again.
    env.clock.advance(time::Duration::hours(2));
    // The Administrator's own session ended meanwhile (idle): they sign in again.
    env.admin = env
        .hub
        .login(
            "admin@alpha.io",
            &lockstep_app::Password::new(PASSWORD.to_owned()),
            None,
        )
        .await
        .unwrap()
        .session_token
        .expose()
        .to_owned();
    let after = env
        .call(Method::GET, "/api/v1/pipelines", &token, None)
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.body);
    let token = support_login(&mut env, &secret).await;
    let enter = env
        .call(
            Method::POST,
            "/api/v1/auth/support/enter",
            &token,
            Some(json!({"organization_id": org})),
        )
        .await;
    assert_eq!(enter.status, StatusCode::NOT_FOUND);
    let grants = env
        .admin(Method::GET, "/api/v1/organization/support-access", None)
        .await;
    assert_eq!(
        grants.json()["grants"][0]["active"],
        false,
        "the past grant stays listed"
    );

    // An Administrator grant: administers, but never as a customer; revoked, its session ends
    // at once.
    let admin_grant = grant(&mut env, &support_user, "administrator", 72).await;
    let enter = env
        .call(
            Method::POST,
            "/api/v1/auth/support/enter",
            &token,
            Some(json!({"organization_id": org})),
        )
        .await;
    assert_eq!(enter.status, StatusCode::OK, "{}", enter.body);
    let users = env.call(Method::GET, "/api/v1/users", &token, None).await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.body);
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/organization/support-access",
            json!({"support_user_id": support_user, "role": "administrator", "hours": 72, "reason": "more"}),
        ),
        (
            Method::POST,
            "/api/v1/users/invitations",
            json!({"email": "new@alpha.io", "role": "administrator"}),
        ),
    ] {
        let refused = env.call(method, path, &token, Some(body)).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            refused.body
        );
    }
    let revoked = env
        .admin(
            Method::DELETE,
            &format!("/api/v1/organization/support-access/{admin_grant}"),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    let after = env.call(Method::GET, "/api/v1/users", &token, None).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.body);
    let twice = env
        .admin(
            Method::DELETE,
            &format!("/api/v1/organization/support-access/{admin_grant}"),
            None,
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    let revocation = env
        .admin(
            Method::GET,
            "/api/v1/audit/events?action=support.revoked",
            None,
        )
        .await;
    assert_eq!(
        revocation.json()["events"][0]["changes"]["sessions_ended"]["after"],
        "1"
    );
}

#[tokio::test]
async fn the_operator_manages_support_accounts_and_removing_one_ends_its_sessions() {
    let f = super::unsealed_hub().await;
    let op = f.creds.operator_token.expose().to_owned();
    let made = super::call(
        &f.app,
        Method::POST,
        "/api/v1/sys/support-users",
        Some(&op),
        Some(r#"{"email":"s@platform.example"}"#),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert!(
        made.json()["setup_token"]
            .as_str()
            .unwrap()
            .starts_with("lsu_")
    );
    let id = made.json()["id"].as_str().unwrap().to_owned();
    let dup = super::call(
        &f.app,
        Method::POST,
        "/api/v1/sys/support-users",
        Some(&op),
        Some(r#"{"email":"S@platform.example"}"#),
    )
    .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);
    let bad = super::call(
        &f.app,
        Method::POST,
        "/api/v1/sys/support-users",
        Some(&op),
        Some(r#"{"email":"not an address"}"#),
    )
    .await;
    assert_eq!(bad.status, 422);
    let list = super::call(
        &f.app,
        Method::GET,
        "/api/v1/sys/support-users",
        Some(&op),
        None,
    )
    .await;
    assert_eq!(
        list.json()["support_users"][0]["email"],
        "s@platform.example"
    );
    assert_eq!(list.json()["support_users"][0]["active"], false);
    assert!(!list.body.contains("lsu_"), "the setup token is shown once");
    let anonymous = super::call(&f.app, Method::GET, "/api/v1/sys/support-users", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let removed = super::call(
        &f.app,
        Method::DELETE,
        &format!("/api/v1/sys/support-users/{id}"),
        Some(&op),
        None,
    )
    .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let again = super::call(
        &f.app,
        Method::DELETE,
        &format!("/api/v1/sys/support-users/{id}"),
        Some(&op),
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let list = super::call(
        &f.app,
        Method::GET,
        "/api/v1/sys/support-users",
        Some(&op),
        None,
    )
    .await;
    assert_eq!(list.json()["support_users"], json!([]));
}
