//! Administrators through the API: pending invitations (listed, resent, revoked, replaced) and
//! the reset of a member's second factor.

use super::call;
use super::connections::{Env, env};
use super::web::PASSWORD;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

async fn invite(env: &mut Env, email: &str) -> Value {
    let made = env
        .admin(
            Method::POST,
            "/api/v1/users/invitations",
            Some(json!({"email": email, "role": "viewer"})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    made.json()
}

/// Accepting `token` anonymously: its status.
async fn accept(env: &Env, token: &str, name: &str) -> StatusCode {
    let body = json!({"token": token, "password": PASSWORD, "display_name": name}).to_string();
    call(
        &env.app,
        Method::POST,
        "/api/v1/auth/invitations/accept",
        None,
        Some(&body),
    )
    .await
    .status
}

async fn pending(env: &mut Env) -> Vec<Value> {
    let list = env
        .admin(Method::GET, "/api/v1/users/invitations", None)
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    list.json()["invitations"].as_array().unwrap().clone()
}

#[tokio::test]
async fn invitations_are_listed_resent_revoked_and_replaced_through_the_api() {
    let mut env = env("loopback").await;
    let first = invite(&mut env, "vi@alpha.io").await;
    assert_eq!(first["replaced"], false);
    let second = invite(&mut env, "vi@alpha.io").await;
    assert_eq!(second["replaced"], true);
    let unknown = accept(&env, "lsi_unknown", "Nobody").await;
    assert_eq!(unknown, StatusCode::NOT_FOUND);
    assert_eq!(
        accept(&env, first["invitation_token"].as_str().unwrap(), "Vi").await,
        unknown,
        "a replaced invitation fails like an unknown token"
    );

    let list = pending(&mut env).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], second["id"]);
    assert_eq!(list[0]["email"], "vi@alpha.io");
    assert_eq!(list[0]["role"], "viewer");
    assert!(list[0]["invited_by"].is_string());
    assert!(list[0]["created_at"].is_string() && list[0]["expires_at"].is_string());
    let read = env
        .admin(
            Method::GET,
            "/api/v1/audit/events?action=invitations.listed",
            None,
        )
        .await;
    assert!(!read.json()["events"].as_array().unwrap().is_empty());

    // Resend: a new token; the old one stops working.
    let id = second["id"].as_str().unwrap();
    let resent = env
        .admin(
            Method::POST,
            &format!("/api/v1/users/invitations/{id}/resend"),
            None,
        )
        .await;
    assert_eq!(resent.status, StatusCode::OK, "{}", resent.body);
    let new_token = resent.json()["invitation_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_token, second["invitation_token"].as_str().unwrap());
    assert_eq!(
        accept(&env, second["invitation_token"].as_str().unwrap(), "Vi").await,
        unknown
    );

    // Revoke: the new token fails like an unknown one too, and nothing is pending.
    let revoked = env
        .admin(
            Method::DELETE,
            &format!("/api/v1/users/invitations/{id}"),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    assert_eq!(accept(&env, &new_token, "Vi").await, unknown);
    assert!(pending(&mut env).await.is_empty());

    // Editors may not.
    let third = invite(&mut env, "late@alpha.io").await;
    let editor = env.editor.clone();
    let third_id = third["id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, "/api/v1/users/invitations".to_owned()),
        (
            Method::POST,
            format!("/api/v1/users/invitations/{third_id}/resend"),
        ),
        (
            Method::DELETE,
            format!("/api/v1/users/invitations/{third_id}"),
        ),
    ] {
        let answer = env.call(method.clone(), &path, &editor, None).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    assert_eq!(
        accept(&env, third["invitation_token"].as_str().unwrap(), "Late").await,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn an_administrator_resets_a_members_second_factor_through_the_api() {
    let mut env = env("loopback").await;
    let editor = env.editor.clone();
    let me = env.call(Method::GET, "/api/v1/me", &editor, None).await;
    let editor_id = me.json()["id"].as_str().unwrap().to_owned();
    let started = env
        .call(Method::POST, "/api/v1/me/totp", &editor, None)
        .await;
    assert!(started.status.is_success(), "{}", started.body);

    let denied = env
        .call(
            Method::POST,
            &format!("/api/v1/users/{editor_id}/totp/reset"),
            &editor,
            None,
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
    let reset = env
        .admin(
            Method::POST,
            &format!("/api/v1/users/{editor_id}/totp/reset"),
            None,
        )
        .await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{}", reset.body);
    // Their session ended.
    let after = env.call(Method::GET, "/api/v1/me", &editor, None).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.body);
    let events = env
        .admin(
            Method::GET,
            "/api/v1/audit/events?action=user.totp_reset",
            None,
        )
        .await;
    let list = events.json()["events"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{}", events.body);
    assert_eq!(list[0]["object"]["id"], editor_id.as_str());
}
