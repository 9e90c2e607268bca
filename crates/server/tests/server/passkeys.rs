//! Passkeys through the API, with webauthn-authenticator-rs's software authenticator answering:
//! registration, the list, the second step of a password sign-in (`second-factor-required`
//! names the factors and the pending sign-in), a sign-in without a password, removal.

use super::connections::{Env, env};
use super::web::PASSWORD;
use super::{Answer, call};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

const ORIGIN: &str = "https://hub.test:8443";

async fn anonymous(env: &Env, path: &str, body: Value) -> Answer {
    call(&env.app, Method::POST, path, None, Some(&body.to_string())).await
}

fn create(key: &mut SoftPasskey, mut options: Value) -> Value {
    // The software authenticator keeps no discoverable credentials.
    options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = Value::Bool(false);
    let answer = key
        .do_registration(
            Url::parse(ORIGIN).unwrap(),
            serde_json::from_value(options).unwrap(),
        )
        .unwrap();
    serde_json::to_value(answer).unwrap()
}

fn get(key: &mut SoftPasskey, mut options: Value, allow: Option<&Value>) -> Value {
    if let Some(id) = allow {
        options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": id}]);
    }
    let answer = key
        .do_authentication(
            Url::parse(ORIGIN).unwrap(),
            serde_json::from_value(options).unwrap(),
        )
        .unwrap();
    serde_json::to_value(answer).unwrap()
}

#[tokio::test]
async fn passkeys_register_sign_in_and_are_removed_through_the_api() {
    let mut env = env("loopback").await;
    let mut key = SoftPasskey::new(true);

    let begun = env
        .admin(
            Method::POST,
            "/api/v1/me/passkeys/register/begin",
            Some(json!({"name": "Laptop"})),
        )
        .await;
    assert_eq!(begun.status, StatusCode::OK, "{}", begun.body);
    let begun = begun.json();
    assert_eq!(begun["options"]["publicKey"]["rp"]["id"], "hub.test");
    let answer = create(&mut key, begun["options"].clone());
    let credential_id = answer["rawId"].clone();
    let finished = env
        .admin(
            Method::POST,
            "/api/v1/me/passkeys/register/finish",
            Some(json!({"ceremony": begun["ceremony"], "credential": answer})),
        )
        .await;
    assert_eq!(finished.status, StatusCode::CREATED, "{}", finished.body);
    let id = finished.json()["id"].as_str().unwrap().to_owned();
    let list = env.admin(Method::GET, "/api/v1/me/passkeys", None).await;
    assert_eq!(
        list.json()["passkeys"][0]["name"],
        "Laptop",
        "{}",
        list.body
    );
    let renamed = env
        .admin(
            Method::PATCH,
            &format!("/api/v1/me/passkeys/{id}"),
            Some(json!({"name": "Work laptop"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::NO_CONTENT, "{}", renamed.body);

    // The password is right: the answer says which factors, and the pending sign-in.
    let login = anonymous(
        &env,
        "/api/v1/auth/login",
        json!({"email": "admin@alpha.io", "password": PASSWORD}),
    )
    .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED, "{}", login.body);
    assert_eq!(login.content_type(), "application/problem+json");
    let problem = login.json();
    assert_eq!(
        problem["type"],
        "urn:lockstep:problem:second-factor-required"
    );
    assert_eq!(problem["second_factors"], json!(["passkey"]));
    let pending = problem["pending_sign_in"].as_str().unwrap().to_owned();
    let options = anonymous(
        &env,
        "/api/v1/auth/passkey/second-factor/begin",
        json!({"pending_sign_in": pending}),
    )
    .await;
    assert_eq!(options.status, StatusCode::OK, "{}", options.body);
    let answer = get(&mut key, options.json()["options"].clone(), None);
    let done = anonymous(
        &env,
        "/api/v1/auth/passkey/second-factor/finish",
        json!({"pending_sign_in": pending, "credential": answer}),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.json()["session_token"]
            .as_str()
            .unwrap()
            .starts_with("lss_")
    );
    let cookies: Vec<_> = done.headers.get_all("set-cookie").iter().collect();
    assert_eq!(
        cookies.len(),
        2,
        "the session and its CSRF token as cookies"
    );

    // Without a password.
    let begun = anonymous(&env, "/api/v1/auth/passkey/begin", json!({})).await;
    assert_eq!(begun.status, StatusCode::OK, "{}", begun.body);
    let begun = begun.json();
    assert!(begun["options"].get("mediation").is_none(), "{begun}");
    let answer = get(&mut key, begun["options"].clone(), Some(&credential_id));
    let done = anonymous(
        &env,
        "/api/v1/auth/passkey/finish",
        json!({"ceremony": begun["ceremony"], "credential": answer.clone()}),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let session = done.json()["session_token"].as_str().unwrap().to_owned();
    let me = env.call(Method::GET, "/api/v1/me", &session, None).await;
    assert_eq!(me.json()["email"], "admin@alpha.io");
    // The same answer again: refused, as problem+json that names no secret.
    let replay = anonymous(
        &env,
        "/api/v1/auth/passkey/finish",
        json!({"ceremony": begun["ceremony"], "credential": answer}),
    )
    .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.body);
    assert_eq!(
        replay.json()["type"],
        "urn:lockstep:problem:passkey-refused"
    );
    assert!(!replay.body.contains(begun["ceremony"].as_str().unwrap()));

    let removed = env
        .admin(Method::DELETE, &format!("/api/v1/me/passkeys/{id}"), None)
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    let begun = anonymous(&env, "/api/v1/auth/passkey/begin", json!({}))
        .await
        .json();
    let answer = get(&mut key, begun["options"].clone(), Some(&credential_id));
    let refused = anonymous(
        &env,
        "/api/v1/auth/passkey/finish",
        json!({"ceremony": begun["ceremony"], "credential": answer}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    // Without a passkey, the password alone signs in again.
    let login = anonymous(
        &env,
        "/api/v1/auth/login",
        json!({"email": "admin@alpha.io", "password": PASSWORD}),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);

    let events = env
        .admin(
            Method::GET,
            "/api/v1/audit/events?action=passkey.removed",
            None,
        )
        .await;
    assert_eq!(
        events.json()["events"].as_array().unwrap().len(),
        1,
        "{}",
        events.body
    );
}

#[tokio::test]
async fn bad_passkey_input_is_refused_plainly() {
    let mut env = env("loopback").await;
    let bad = env
        .admin(
            Method::POST,
            "/api/v1/me/passkeys/register/finish",
            Some(json!({"ceremony": "lsk_nothing", "credential": {}})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND, "{}", bad.body);
    let unnamed = env
        .admin(
            Method::POST,
            "/api/v1/me/passkeys/register/begin",
            Some(json!({"name": ""})),
        )
        .await;
    assert_eq!(
        unnamed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unnamed.body
    );
    assert_eq!(unnamed.json()["field"], "name");
    let nothing = anonymous(
        &env,
        "/api/v1/auth/passkey/second-factor/begin",
        json!({"pending_sign_in": "lsk_made_up"}),
    )
    .await;
    assert_eq!(nothing.status, StatusCode::UNAUTHORIZED, "{}", nothing.body);
    let junk = anonymous(
        &env,
        "/api/v1/auth/passkey/finish",
        json!({"ceremony": "lsk_made_up", "credential": {"id": 1}}),
    )
    .await;
    assert_eq!(junk.status, StatusCode::UNAUTHORIZED, "{}", junk.body);
}
