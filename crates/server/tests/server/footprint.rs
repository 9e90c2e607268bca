//! The customer stays in control through the API: the configuration export (a canary checks
//! that no secret is in it), the ledger export audited, the footprint, and run history deleted.

use super::connections::env;
use axum::http::{Method, StatusCode, header};
use lockstep_app::Clock;
use lockstep_auth::TotpSecret;
use serde_json::json;

const CANARY: &str = "canary-export-5f1c2a";

#[tokio::test]
async fn the_export_holds_the_configuration_and_no_secret() {
    let mut env = env("loopback").await;
    // A connection with a secret, a member with TOTP, an API token, a pending invitation.
    let made = env
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "warehouse-export", "kind": "postgres",
                "config": {"host": "127.0.0.1", "database": "x", "user": "x"},
                "secrets": {"password": CANARY}})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let admin = env.hub.authenticate(&env.admin.clone()).await.unwrap();
    let enrolment = env.hub.start_totp(&admin).await.unwrap();
    let uri = url::Url::parse(&enrolment.otpauth_uri).unwrap();
    let secret = uri
        .query_pairs()
        .find(|(k, _)| k == "secret")
        .unwrap()
        .1
        .into_owned();
    let code = TotpSecret::from_base32(&secret)
        .unwrap()
        .code_at(env.clock.now())
        .unwrap();
    env.hub.confirm_totp(&admin, &code).await.unwrap();
    let token = env
        .admin(
            Method::POST,
            "/api/v1/me/tokens",
            Some(json!({"name": "ci", "scope": "read"})),
        )
        .await;
    assert_eq!(token.status, StatusCode::CREATED, "{}", token.body);
    let api_token = token.json()["token"].as_str().unwrap().to_owned();
    let invited = env
        .admin(
            Method::POST,
            "/api/v1/users/invitations",
            Some(json!({"email": "pending@alpha.io", "role": "viewer"})),
        )
        .await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.body);
    let invitation_token = invited.json()["invitation_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Editors may not export.
    let editor = env.editor.clone();
    let denied = env
        .call(Method::GET, "/api/v1/organization/export", &editor, None)
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);

    let export = env
        .admin(Method::GET, "/api/v1/organization/export", None)
        .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.body);
    let org = admin.organization();
    assert_eq!(
        export.headers[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"lockstep-{org}-export.json\"")
    );
    assert_eq!(export.headers[header::CACHE_CONTROL], "no-store");
    assert!(export.content_type().starts_with("application/json"));
    let body = &export.body;
    for secret in [
        CANARY,
        "$argon2",
        "lst_",
        "lss_",
        "lsi_",
        &api_token,
        &invitation_token,
        &secret,
        &env.admin,
    ] {
        assert!(
            !body.contains(secret),
            "the export holds a secret ({secret})"
        );
    }
    // It holds what it is for (so that the test can fail).
    for wanted in [
        "admin@alpha.io",
        "editor@alpha.io",
        "pending@alpha.io",
        "warehouse-export",
        "\"password_set\": true",
    ] {
        assert!(body.contains(wanted), "the export lacks {wanted}: {body}");
    }
    let doc = export.json();
    assert_eq!(doc["organization"]["id"], org.to_string());
    assert_eq!(doc["organization"]["name"], "alpha");
    let ada = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "admin@alpha.io")
        .unwrap();
    assert_eq!(ada["totp_enrolled"], true);
    assert_eq!(ada["role"], "administrator");
    assert!(ada.get("password_hash").is_none());

    // Both exports are audited.
    let ledger = env
        .admin(Method::GET, "/api/v1/audit/ledger/export", None)
        .await;
    assert_eq!(ledger.status, StatusCode::OK);
    for action in ["organization.exported", "ledger.exported"] {
        let events = env
            .admin(
                Method::GET,
                &format!("/api/v1/audit/events?action={action}"),
                None,
            )
            .await;
        assert_eq!(
            events.json()["events"].as_array().unwrap().len(),
            1,
            "{action}: {}",
            events.body
        );
    }
    env.assert_never_shown(CANARY).await;
}

#[tokio::test]
async fn the_footprint_and_run_history_deletion_answer_through_the_api() {
    let mut env = env("loopback").await;
    let footprint = env
        .admin(Method::GET, "/api/v1/organization/footprint", None)
        .await;
    assert_eq!(footprint.status, StatusCode::OK, "{}", footprint.body);
    let doc = footprint.json();
    let users = doc["stored"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "users")
        .unwrap();
    assert_eq!(users["count"], 3);
    assert_eq!(users["retention"]["rule"], "until_deleted");
    assert_eq!(doc["encryption"]["current_version"], 1);
    assert_eq!(doc["access"]["members_by_role"][0]["role"], "administrator");
    assert_eq!(
        doc["access"]["members_by_role"][0]["members"][0]["display_name"],
        "Ada"
    );

    let bad = env
        .admin(Method::DELETE, "/api/v1/runs?before=yesterday", None)
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(bad.json()["field"], "before");
    let none = env
        .admin(
            Method::DELETE,
            "/api/v1/runs?before=2999-01-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.body);
    assert_eq!(none.json(), json!({"runs_deleted": 0, "errors_deleted": 0}));
    let missing = env
        .admin(
            Method::DELETE,
            "/api/v1/pipelines/01900000-0000-7000-8000-000000000001/runs",
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
}
