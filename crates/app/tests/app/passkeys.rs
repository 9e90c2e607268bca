//! Passkeys end to end with webauthn-authenticator-rs's software authenticator (a real
//! authenticator implementation: its own keys, signatures and counter): registration, second
//! factor after the password, sign-in without a password, removal, another organization,
//! replayed answers, and the organization's second-factor requirement.

use lockstep_app::{AppError, Caller, Hub, HubOptions, Password, SettingsUpdate, UserUpdate};
use lockstep_domain::Role;
use lockstep_storage::testing::TestStore;
use serde_json::Value;
use std::sync::Arc;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

const PASSWORD: &str = "correct horse battery staple";
const ORIGIN: &str = "https://localhost:8443";

fn pw() -> Password {
    Password::new(PASSWORD.to_owned())
}

struct World {
    _t: TestStore,
    hub: Hub,
    /// Acme's Administrator, and Globex's.
    ada: Caller,
    gus: Caller,
}

async fn world(t: TestStore) -> World {
    let (hub, creds) = Hub::initialize(t.store.clone(), Arc::new(lockstep_app::SystemClock), 1, 1)
        .await
        .unwrap();
    let hub = hub.with_options(HubOptions {
        public_url: format!("{ORIGIN}/"),
        password_permits: 2,
        ..HubOptions::default()
    });
    assert!(hub.passkeys_available(), "localhost is a host name");
    let op = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    let mut callers = Vec::new();
    for (org, email) in [("Acme", "ada@acme.io"), ("Globex", "gus@globex.io")] {
        let created = hub.create_organization(&op, org, email).await.unwrap();
        hub.accept_invitation(created.invitation_token.expose(), &pw(), "Someone")
            .await
            .unwrap();
        callers.push(sign_in(&hub, email).await);
    }
    let gus = callers.pop().unwrap();
    let ada = callers.pop().unwrap();
    World {
        _t: t,
        hub,
        ada,
        gus,
    }
}

async fn sign_in(hub: &Hub, email: &str) -> Caller {
    let done = hub.login(email, &pw(), None).await.unwrap();
    hub.authenticate(done.session_token.expose()).await.unwrap()
}

/// What a browser does with the registration options: the soft authenticator keeps no
/// discoverable credentials, so the browser's part asks it for an ordinary one.
fn create(authenticator: &mut SoftPasskey, mut options: Value) -> Value {
    let selection = &mut options["publicKey"]["authenticatorSelection"];
    assert_eq!(
        selection["residentKey"], "required",
        "a passkey is discoverable"
    );
    selection["requireResidentKey"] = Value::Bool(false);
    let options = serde_json::from_value(options).unwrap();
    let answer = authenticator
        .do_registration(Url::parse(ORIGIN).unwrap(), options)
        .unwrap();
    serde_json::to_value(answer).unwrap()
}

/// What a browser does with sign-in options; `allow` names the credential for a discoverable
/// challenge (the soft authenticator finds credentials only by id).
fn get(authenticator: &mut SoftPasskey, mut options: Value, allow: Option<&Value>) -> Value {
    if let Some(id) = allow {
        options["publicKey"]["allowCredentials"] =
            serde_json::json!([{"type": "public-key", "id": id}]);
    }
    let options = serde_json::from_value(options).unwrap();
    let answer = authenticator
        .do_authentication(Url::parse(ORIGIN).unwrap(), options)
        .unwrap();
    serde_json::to_value(answer).unwrap()
}

/// Registers a passkey for `caller`; answers its id and the credential id (as the browser's
/// base64url text).
async fn register(
    hub: &Hub,
    caller: &Caller,
    authenticator: &mut SoftPasskey,
    name: &str,
) -> (lockstep_domain::PasskeyId, Value) {
    let challenge = hub.start_passkey_registration(caller, name).await.unwrap();
    let answer = create(authenticator, challenge.options);
    let credential_id = answer["rawId"].clone();
    let view = hub
        .finish_passkey_registration(caller, challenge.ceremony.expose(), answer)
        .await
        .unwrap();
    assert_eq!(view.name, name);
    (view.id, credential_id)
}

/// A sign-in without a password, start to finish.
async fn passwordless(
    hub: &Hub,
    authenticator: &mut SoftPasskey,
    credential_id: &Value,
) -> Result<lockstep_app::LoginSuccess, AppError> {
    let challenge = hub.start_passkey_sign_in().await?;
    let answer = get(authenticator, challenge.options, Some(credential_id));
    hub.finish_passkey_sign_in(challenge.ceremony.expose(), answer)
        .await
}

/// The pending sign-in of a password sign-in that needs its second factor.
async fn pending_after_password(hub: &Hub, email: &str) -> lockstep_app::SecondFactorPending {
    match hub.login(email, &pw(), None).await {
        Err(AppError::SecondFactorRequired(pending)) => *pending,
        other => panic!("a second factor should be asked for: {other:?}"),
    }
}

lockstep_storage::on_both_stores!(a_registered_passkey_is_listed_renamed_and_removed);
async fn a_registered_passkey_is_listed_renamed_and_removed(t: TestStore) {
    let w = world(t).await;
    let mut key = SoftPasskey::new(true);
    let (id, _) = register(&w.hub, &w.ada, &mut key, "Laptop").await;
    let list = w.hub.list_passkeys(&w.ada).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].id, list[0].name.as_str()), (id, "Laptop"));
    assert!(list[0].last_used_at.is_none());

    w.hub
        .rename_passkey(&w.ada, id, "Work laptop")
        .await
        .unwrap();
    assert_eq!(
        w.hub.list_passkeys(&w.ada).await.unwrap()[0].name,
        "Work laptop"
    );
    let bad = w.hub.rename_passkey(&w.ada, id, " ").await;
    assert!(
        matches!(bad, Err(AppError::Invalid { field: "name", .. })),
        "{bad:?}"
    );

    // Another organization's member sees none of it and cannot remove it.
    assert!(w.hub.list_passkeys(&w.gus).await.unwrap().is_empty());
    let foreign = w.hub.remove_passkey(&w.gus, id).await;
    assert!(matches!(foreign, Err(AppError::NotFound(_))), "{foreign:?}");

    // A registration answered twice, or by someone else, is refused.
    let challenge = w
        .hub
        .start_passkey_registration(&w.ada, "Phone")
        .await
        .unwrap();
    let answer = create(&mut SoftPasskey::new(true), challenge.options);
    let stolen = w
        .hub
        .finish_passkey_registration(&w.gus, challenge.ceremony.expose(), answer.clone())
        .await;
    assert!(matches!(stolen, Err(AppError::NotFound(_))), "{stolen:?}");
    let again = w
        .hub
        .finish_passkey_registration(&w.ada, challenge.ceremony.expose(), answer)
        .await;
    assert!(
        matches!(again, Err(AppError::NotFound(_))),
        "single use: {again:?}"
    );

    // A name is required, and so is a real answer.
    let unnamed = w.hub.start_passkey_registration(&w.ada, "").await;
    assert!(
        matches!(unnamed, Err(AppError::Invalid { field: "name", .. })),
        "{unnamed:?}"
    );
    let challenge = w
        .hub
        .start_passkey_registration(&w.ada, "Phone")
        .await
        .unwrap();
    let garbage = w
        .hub
        .finish_passkey_registration(
            &w.ada,
            challenge.ceremony.expose(),
            serde_json::json!({"id": "x"}),
        )
        .await;
    assert!(
        matches!(
            garbage,
            Err(AppError::Invalid {
                field: "credential",
                ..
            })
        ),
        "{garbage:?}"
    );

    w.hub.remove_passkey(&w.ada, id).await.unwrap();
    assert!(w.hub.list_passkeys(&w.ada).await.unwrap().is_empty());
    let events = w
        .hub
        .object_events(&w.ada, "passkey", &id.to_string())
        .await
        .unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    for action in ["passkey.registered", "passkey.renamed", "passkey.removed"] {
        assert!(actions.contains(&action), "{actions:?}");
    }
}

lockstep_storage::on_both_stores!(a_passkey_is_the_second_factor_after_the_password);
async fn a_passkey_is_the_second_factor_after_the_password(t: TestStore) {
    let w = world(t).await;
    let mut key = SoftPasskey::new(true);
    let (_, ada_credential) = register(&w.hub, &w.ada, &mut key, "Laptop").await;

    let pending = pending_after_password(&w.hub, "ada@acme.io").await;
    assert!(pending.passkey && !pending.totp);
    let handle = pending.pending.unwrap();
    let options = w
        .hub
        .start_passkey_second_factor(handle.expose())
        .await
        .unwrap();
    let answer = get(&mut key, options, None);
    let done = w
        .hub
        .finish_passkey_second_factor(handle.expose(), answer.clone())
        .await
        .unwrap();
    let me = w
        .hub
        .authenticate(done.session_token.expose())
        .await
        .unwrap();
    assert_eq!(me.user(), w.ada.user());
    assert!(
        w.hub.list_passkeys(&w.ada).await.unwrap()[0]
            .last_used_at
            .is_some()
    );

    // The pending sign-in worked once; the same answer again is refused.
    let replay = w
        .hub
        .finish_passkey_second_factor(handle.expose(), answer.clone())
        .await;
    assert!(
        matches!(replay, Err(AppError::PasskeyRefused)),
        "{replay:?}"
    );
    // ... and so is that answer for a new pending sign-in (another challenge).
    let pending = pending_after_password(&w.hub, "ada@acme.io")
        .await
        .pending
        .unwrap();
    w.hub
        .start_passkey_second_factor(pending.expose())
        .await
        .unwrap();
    let replay = w
        .hub
        .finish_passkey_second_factor(pending.expose(), answer)
        .await;
    assert!(
        matches!(replay, Err(AppError::PasskeyRefused)),
        "{replay:?}"
    );

    // A made-up pending sign-in is nothing.
    let made_up = w.hub.start_passkey_second_factor("lsk_made_up").await;
    assert!(
        matches!(made_up, Err(AppError::PasskeyRefused)),
        "{made_up:?}"
    );

    // Another organization's member cannot answer with Ada's passkey.
    let mut gus_key = SoftPasskey::new(true);
    register(&w.hub, &w.gus, &mut gus_key, "Gus's key").await;
    let pending = pending_after_password(&w.hub, "gus@globex.io")
        .await
        .pending
        .unwrap();
    let options = w
        .hub
        .start_passkey_second_factor(pending.expose())
        .await
        .unwrap();
    // Ada's authenticator answers Gus's challenge with her own credential (the browser's part
    // is the client's to change): a valid signature, by a passkey that is not Gus's.
    let foreign = get(&mut key, options, Some(&ada_credential));
    let refused = w
        .hub
        .finish_passkey_second_factor(pending.expose(), foreign)
        .await;
    assert!(
        matches!(refused, Err(AppError::PasskeyRefused)),
        "{refused:?}"
    );
    // Gus's own passkey still works for him (the wrong answer cost one of three tries).
    let pending = pending_after_password(&w.hub, "gus@globex.io")
        .await
        .pending
        .unwrap();
    let options = w
        .hub
        .start_passkey_second_factor(pending.expose())
        .await
        .unwrap();
    let answer = get(&mut gus_key, options, None);
    let done = w
        .hub
        .finish_passkey_second_factor(pending.expose(), answer)
        .await
        .unwrap();
    assert_eq!(
        w.hub
            .authenticate(done.session_token.expose())
            .await
            .unwrap()
            .user(),
        w.gus.user()
    );
}

lockstep_storage::on_both_stores!(a_passkey_signs_in_without_a_password_until_removed);
async fn a_passkey_signs_in_without_a_password_until_removed(t: TestStore) {
    let w = world(t).await;
    let mut key = SoftPasskey::new(true);
    let (id, credential_id) = register(&w.hub, &w.ada, &mut key, "Laptop").await;

    let done = passwordless(&w.hub, &mut key, &credential_id)
        .await
        .unwrap();
    let caller = w
        .hub
        .authenticate(done.session_token.expose())
        .await
        .unwrap();
    assert_eq!(caller.user(), w.ada.user());
    assert_eq!(caller.organization(), w.ada.organization());
    // The counter was stored: a second sign-in works (and the first answer never again).
    let challenge = w.hub.start_passkey_sign_in().await.unwrap();
    let answer = get(&mut key, challenge.options, Some(&credential_id));
    w.hub
        .finish_passkey_sign_in(challenge.ceremony.expose(), answer.clone())
        .await
        .unwrap();
    let replay = w
        .hub
        .finish_passkey_sign_in(challenge.ceremony.expose(), answer.clone())
        .await;
    assert!(
        matches!(replay, Err(AppError::PasskeyRefused)),
        "{replay:?}"
    );
    let fresh = w.hub.start_passkey_sign_in().await.unwrap();
    let replay = w
        .hub
        .finish_passkey_sign_in(fresh.ceremony.expose(), answer)
        .await;
    assert!(
        matches!(replay, Err(AppError::PasskeyRefused)),
        "an answer to another challenge: {replay:?}"
    );

    let events = w
        .hub
        .object_events(&w.ada, "user", &w.ada.user().to_string())
        .await
        .unwrap();
    let signed_in = events
        .iter()
        .find(|e| e.action == "user.signed_in" && e.changes.contains_key("method"))
        .expect("a passkey sign-in is audited with its method");
    assert_eq!(
        signed_in.changes["method"],
        lockstep_app::FieldChange::value(None::<String>, Some("passkey"))
    );

    // Removed: refused at once.
    w.hub.remove_passkey(&w.ada, id).await.unwrap();
    let removed = passwordless(&w.hub, &mut key, &credential_id).await;
    assert!(
        matches!(removed, Err(AppError::PasskeyRefused)),
        "{removed:?}"
    );
    // Without a passkey the password alone signs in again.
    w.hub.login("ada@acme.io", &pw(), None).await.unwrap();
}

lockstep_storage::on_both_stores!(a_deactivated_member_s_passkey_stops_working_at_once);
async fn a_deactivated_member_s_passkey_stops_working_at_once(t: TestStore) {
    let w = world(t).await;
    let inv = w
        .hub
        .invite_user(&w.ada, "ed@acme.io", Role::Editor)
        .await
        .unwrap();
    w.hub
        .accept_invitation(inv.token.expose(), &pw(), "Ed")
        .await
        .unwrap();
    let ed = sign_in(&w.hub, "ed@acme.io").await;
    let mut key = SoftPasskey::new(true);
    let (_, credential_id) = register(&w.hub, &ed, &mut key, "Ed's key").await;
    // A challenge started before the deactivation is refused after it.
    let challenge = w.hub.start_passkey_sign_in().await.unwrap();
    let pending = pending_after_password(&w.hub, "ed@acme.io")
        .await
        .pending
        .unwrap();
    let second = w
        .hub
        .start_passkey_second_factor(pending.expose())
        .await
        .unwrap();
    w.hub
        .update_user(
            &w.ada,
            ed.user(),
            UserUpdate {
                active: Some(false),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    let answer = get(&mut key, challenge.options, Some(&credential_id));
    let refused = w
        .hub
        .finish_passkey_sign_in(challenge.ceremony.expose(), answer)
        .await;
    assert!(
        matches!(refused, Err(AppError::PasskeyRefused)),
        "{refused:?}"
    );
    let answer = get(&mut key, second, None);
    let refused = w
        .hub
        .finish_passkey_second_factor(pending.expose(), answer)
        .await;
    assert!(
        matches!(refused, Err(AppError::PasskeyRefused)),
        "{refused:?}"
    );
}

lockstep_storage::on_both_stores!(a_passkey_satisfies_the_organization_s_second_factor_rule);
async fn a_passkey_satisfies_the_organization_s_second_factor_rule(t: TestStore) {
    let w = world(t).await;
    w.hub
        .update_organization_settings(
            &w.ada,
            SettingsUpdate {
                require_totp: Some(true),
                ..SettingsUpdate::default()
            },
        )
        .await
        .unwrap();
    let ada = sign_in(&w.hub, "ada@acme.io").await;
    assert!(ada.member.must_enrol_totp, "no second factor yet");
    // The only thing allowed is one's own account: registering a passkey is.
    let mut key = SoftPasskey::new(true);
    register(&w.hub, &ada, &mut key, "Laptop").await;
    let again = w
        .hub
        .authenticate(&session_of(&w.hub, &mut key).await)
        .await
        .unwrap();
    assert!(
        !again.member.must_enrol_totp,
        "a passkey is a second factor"
    );
    w.hub.list_users(&again).await.unwrap();
}

/// A session signed in with the password and then the passkey.
async fn session_of(hub: &Hub, key: &mut SoftPasskey) -> String {
    let pending = pending_after_password(hub, "ada@acme.io")
        .await
        .pending
        .unwrap();
    let options = hub
        .start_passkey_second_factor(pending.expose())
        .await
        .unwrap();
    let answer = get(key, options, None);
    hub.finish_passkey_second_factor(pending.expose(), answer)
        .await
        .unwrap()
        .session_token
        .expose()
        .to_owned()
}

lockstep_storage::on_both_stores!(a_hub_addressed_by_ip_has_no_passkeys);
async fn a_hub_addressed_by_ip_has_no_passkeys(t: TestStore) {
    let (hub, _) = Hub::initialize(t.store.clone(), Arc::new(lockstep_app::SystemClock), 1, 1)
        .await
        .unwrap();
    let hub = hub.with_options(HubOptions {
        public_url: "https://127.0.0.1:8443".into(),
        ..HubOptions::default()
    });
    // WebAuthn binds credentials to a domain: webauthn-rs (and browsers) refuse IP addresses.
    assert!(!hub.passkeys_available());
    let refused = hub.start_passkey_sign_in().await;
    assert!(matches!(refused, Err(AppError::Refused(_))), "{refused:?}");
}

lockstep_storage::on_both_stores!(an_administrator_s_second_factor_reset_removes_passkeys);
async fn an_administrator_s_second_factor_reset_removes_passkeys(t: TestStore) {
    let w = world(t).await;
    let inv = w
        .hub
        .invite_user(&w.ada, "ed@acme.io", Role::Editor)
        .await
        .unwrap();
    w.hub
        .accept_invitation(inv.token.expose(), &pw(), "Ed")
        .await
        .unwrap();
    let ed = sign_in(&w.hub, "ed@acme.io").await;
    let mut key = SoftPasskey::new(true);
    let (_, credential_id) = register(&w.hub, &ed, &mut key, "Lost phone").await;
    w.hub.reset_user_totp(&w.ada, ed.user()).await.unwrap();
    // Ed signs in with the password alone; the lost passkey no longer works.
    let ed = sign_in(&w.hub, "ed@acme.io").await;
    assert!(w.hub.list_passkeys(&ed).await.unwrap().is_empty());
    let refused = passwordless(&w.hub, &mut key, &credential_id).await;
    assert!(
        matches!(refused, Err(AppError::PasskeyRefused)),
        "{refused:?}"
    );
}
