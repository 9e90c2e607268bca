//! The member's own credentials through the API: what ends API tokens (signing out with one,
//! a password change, "sign out everywhere"; the password reset is in lockstep-app's tests).

use super::connections::{Env, env};
use super::web::PASSWORD;
use axum::http::{Method, StatusCode};
use serde_json::json;

/// A new API token of the admin, made with the admin's session.
async fn new_token(env: &mut Env, name: &str) -> String {
    let made = env
        .admin(
            Method::POST,
            "/api/v1/me/tokens",
            Some(json!({"name": name, "expires_in_days": 30})),
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
