//! One e-mail address in several organizations, through the API and the pages: both invite it,
//! sign-in offers a choice only to someone who knows the password, no answer reveals another
//! organization, and an invitation token reaches only the invited address where mail does.

use super::call;
use super::web::{Browser, PASSWORD};
use axum::Router;
use axum::http::{Method, StatusCode};
use lockstep_app::{Hub, HubOptions, Password, SystemClock};
use lockstep_domain::OrganizationId;
use lockstep_mail::{MailError, Mailer, MemoryMailer, Message, SendFuture};
use lockstep_storage::testing::TestStore;
use serde_json::{Value, json};
use std::sync::Arc;

struct Two {
    _store: TestStore,
    hub: Arc<Hub>,
    app: Router,
    /// (organization id, the Administrator's session token)
    alpha: (OrganizationId, String),
    beta: (OrganizationId, String),
}

async fn two(store: TestStore, mailer: Option<Arc<dyn Mailer>>) -> Two {
    let (hub, creds) = Hub::initialize(store.store.clone(), Arc::new(SystemClock), 1, 1)
        .await
        .unwrap();
    let hub = Arc::new(hub.with_options(HubOptions {
        mailer,
        password_permits: 2,
        ..HubOptions::default()
    }));
    let op = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    let mut admins = Vec::new();
    for (name, email) in [("Alpha", "admin@alpha.io"), ("Beta", "admin@beta.io")] {
        let org = hub.create_organization(&op, name, email).await.unwrap();
        let pw = Password::new(PASSWORD.to_owned());
        hub.accept_invitation(org.invitation_token.expose(), &pw, "Admin")
            .await
            .unwrap();
        let done = hub.login(email, &pw, None).await.unwrap();
        admins.push((org.id, done.session_token.expose().to_owned()));
    }
    let beta = admins.pop().unwrap();
    let alpha = admins.pop().unwrap();
    let app = lockstep_server::router(Arc::clone(&hub));
    Two {
        _store: store,
        hub,
        app,
        alpha,
        beta,
    }
}

async fn invite(w: &Two, admin: &str, email: &str) -> super::Answer {
    let body = json!({"email": email, "role": "editor"}).to_string();
    call(
        &w.app,
        Method::POST,
        "/api/v1/users/invitations",
        Some(admin),
        Some(&body),
    )
    .await
}

async fn accept(w: &Two, token: &str, password: &str) {
    let body = json!({"token": token, "password": password, "display_name": "Sam"}).to_string();
    let answer = call(
        &w.app,
        Method::POST,
        "/api/v1/auth/invitations/accept",
        None,
        Some(&body),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
}

async fn login(w: &Two, body: Value) -> super::Answer {
    call(
        &w.app,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(&body.to_string()),
    )
    .await
}

/// The organization of a session token.
async fn organization_of(w: &Two, answer: &super::Answer) -> OrganizationId {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let token = answer.json()["session_token"].as_str().unwrap().to_owned();
    w.hub.authenticate(&token).await.unwrap().organization()
}

lockstep_storage::on_both_stores!(two_organizations_share_an_address_and_reveal_nothing);
async fn two_organizations_share_an_address_and_reveal_nothing(store: TestStore) {
    let w = two(store, None).await;
    // Both invite the address, in any letter case; neither learns of the other.
    let a = invite(&w, &w.alpha.1, "Sam@Example.com").await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    accept(&w, a.json()["invitation_token"].as_str().unwrap(), PASSWORD).await;
    let b = invite(&w, &w.beta.1, "sam@example.COM").await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    accept(&w, b.json()["invitation_token"].as_str().unwrap(), PASSWORD).await;
    // Twice in one organization is still a conflict.
    let dup = invite(&w, &w.beta.1, "SAM@example.com").await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);

    // The same password in both: 300 with exactly those two organizations.
    let ambiguous = login(
        &w,
        json!({"email": "sam@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(
        ambiguous.status,
        StatusCode::MULTIPLE_CHOICES,
        "{}",
        ambiguous.body
    );
    let problem = ambiguous.json();
    assert_eq!(problem["type"], "urn:lockstep:problem:choose-organization");
    assert_eq!(
        problem["organizations"],
        json!([
            {"id": w.alpha.0.to_string(), "name": "Alpha"},
            {"id": w.beta.0.to_string(), "name": "Beta"},
        ])
    );
    let chosen = login(
        &w,
        json!({"email": "sam@example.com", "password": PASSWORD, "organization": w.beta.0}),
    )
    .await;
    assert_eq!(organization_of(&w, &chosen).await, w.beta.0);

    // A wrong password answers exactly like an unknown address: no organization in it.
    let wrong = login(
        &w,
        json!({"email": "sam@example.com", "password": "not it at all"}),
    )
    .await;
    let unknown = login(
        &w,
        json!({"email": "nobody@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!((wrong.status, &wrong.body), (unknown.status, &unknown.body));
    for answer in [&wrong, &unknown, &dup] {
        assert!(
            !answer.body.contains("Alpha") && !answer.body.contains("Beta"),
            "{}",
            answer.body
        );
    }
    // A password reset answers the same for both addresses.
    let reset = |email: &str| {
        let body = json!({"email": email}).to_string();
        let app = w.app.clone();
        async move {
            call(
                &app,
                Method::POST,
                "/api/v1/auth/password-reset",
                None,
                Some(&body),
            )
            .await
        }
    };
    let (shared, nobody) = (
        reset("sam@example.com").await,
        reset("nobody@example.com").await,
    );
    assert_eq!((shared.status, &shared.body), (nobody.status, &nobody.body));
    assert_eq!(shared.status, StatusCode::ACCEPTED);
}

lockstep_storage::on_both_stores!(with_different_passwords_each_signs_into_its_own);
async fn with_different_passwords_each_signs_into_its_own(store: TestStore) {
    let w = two(store, None).await;
    let other = "another long passphrase";
    let a = invite(&w, &w.alpha.1, "kim@example.com").await;
    accept(&w, a.json()["invitation_token"].as_str().unwrap(), PASSWORD).await;
    let b = invite(&w, &w.beta.1, "kim@example.com").await;
    accept(&w, b.json()["invitation_token"].as_str().unwrap(), other).await;
    for (password, org) in [(PASSWORD, w.alpha.0), (other, w.beta.0)] {
        let answer = login(
            &w,
            json!({"email": "kim@example.com", "password": password}),
        )
        .await;
        assert_eq!(organization_of(&w, &answer).await, org);
    }
}

#[tokio::test]
async fn the_sign_in_page_offers_a_choice_of_organizations() {
    let store = TestStore::new(lockstep_storage::Backend::Sqlite)
        .await
        .unwrap();
    let w = two(store, None).await;
    for admin in [&w.alpha.1, &w.beta.1] {
        let made = invite(&w, admin, "sam@example.com").await;
        accept(
            &w,
            made.json()["invitation_token"].as_str().unwrap(),
            PASSWORD,
        )
        .await;
    }
    let mut browser = Browser::new(&w.app);
    browser.get("/login").await;
    // A wrong password shows no chooser.
    let wrong = browser
        .post(
            "/login",
            &[("email", "sam@example.com"), ("password", "not it at all")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(!wrong.body.contains("Alpha") && !wrong.body.contains("Beta"));
    let chooser = browser
        .post(
            "/login",
            &[("email", "sam@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(chooser.status, StatusCode::OK, "{}", chooser.body);
    assert!(
        chooser.body.contains("Choose an organization"),
        "{}",
        chooser.body
    );
    assert!(chooser.body.contains("Alpha") && chooser.body.contains("Beta"));
    assert!(
        !chooser.body.contains(PASSWORD),
        "the password came back into the page"
    );
    let beta = w.beta.0.to_string();
    let signed = browser
        .post("/login/organization", &[("organization", beta.as_str())])
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let session = browser
        .cookie("__Host-lockstep_session")
        .unwrap()
        .to_owned();
    let caller = w.hub.authenticate(&session).await.unwrap();
    assert_eq!(caller.organization(), w.beta.0);
}

#[tokio::test]
async fn with_a_mail_server_the_invitation_answer_holds_no_token() {
    let store = TestStore::new(lockstep_storage::Backend::Sqlite)
        .await
        .unwrap();
    let mail = Arc::new(MemoryMailer::new());
    let w = two(store, Some(mail.clone())).await;
    let made = invite(&w, &w.alpha.1, "vi@alpha.io").await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let body = made.json();
    assert_eq!(body["mail"], "sent");
    assert!(body.get("invitation_token").is_none(), "{body}");
    let mailed = mail.messages().pop().unwrap();
    assert_eq!(mailed.to, "vi@alpha.io");
    let token = mailed
        .body
        .split("#")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert!(!made.body.contains(token), "the token reached the inviter");
    // Resending: the same.
    let id = body["id"].as_str().unwrap();
    let resent = call(
        &w.app,
        Method::POST,
        &format!("/api/v1/users/invitations/{id}/resend"),
        Some(&w.alpha.1),
        None,
    )
    .await;
    assert_eq!(resent.status, StatusCode::OK, "{}", resent.body);
    assert_eq!(resent.json()["mail"], "sent");
    assert!(resent.json().get("invitation_token").is_none());
    // The page says the mail went out and shows no link.
    let mut browser = Browser::signed_in(&w.app, "admin@alpha.io").await;
    browser.get("/users").await;
    let page = browser
        .post(
            "/users/invitations",
            &[("email", "ed@alpha.io"), ("role", "editor")],
        )
        .await;
    assert_eq!(page.status, StatusCode::CREATED, "{}", page.body);
    assert!(
        page.body.contains("was mailed to this address"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("/accept-invitation#"), "{}", page.body);
}

/// A mail server that refuses everything.
#[derive(Debug)]
struct RefusingMailer;

impl Mailer for RefusingMailer {
    fn send<'a>(&'a self, _message: Message) -> SendFuture<'a> {
        Box::pin(async { Err(MailError::Send("refused".into())) })
    }
}

#[tokio::test]
async fn a_failed_invitation_mail_shows_in_the_answer_the_list_and_the_page() {
    let store = TestStore::new(lockstep_storage::Backend::Sqlite)
        .await
        .unwrap();
    let w = two(store, Some(Arc::new(RefusingMailer))).await;
    let made = invite(&w, &w.alpha.1, "vi@alpha.io").await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(made.json()["mail"], "failed");
    assert!(made.json().get("invitation_token").is_none());
    let list = call(
        &w.app,
        Method::GET,
        "/api/v1/users/invitations",
        Some(&w.alpha.1),
        None,
    )
    .await;
    let invitations = list.json()["invitations"].as_array().unwrap().clone();
    let listed = invitations
        .iter()
        .find(|i| i["email"] == "vi@alpha.io")
        .unwrap();
    assert_eq!(listed["mail"], "failed");
    let mut browser = Browser::signed_in(&w.app, "admin@alpha.io").await;
    let page = browser.get("/users").await;
    assert!(page.body.contains("Mail failed"), "{}", page.body);
    let page = browser
        .post(
            "/users/invitations",
            &[("email", "ed@alpha.io"), ("role", "editor")],
        )
        .await;
    assert!(page.body.contains("could not be sent"), "{}", page.body);
    assert!(!page.body.contains("/accept-invitation#"), "{}", page.body);
}

#[tokio::test]
async fn without_a_mail_server_the_inviter_gets_the_link_once_and_why() {
    let store = TestStore::new(lockstep_storage::Backend::Sqlite)
        .await
        .unwrap();
    let w = two(store, None).await;
    let made = invite(&w, &w.alpha.1, "vi@alpha.io").await;
    let body = made.json();
    assert_eq!(body["mail"], "no_mail_server");
    assert!(
        body["invitation_token"]
            .as_str()
            .unwrap()
            .starts_with("lsi_")
    );
    assert!(body["note"].as_str().unwrap().contains("no mail server"));
    let mut browser = Browser::signed_in(&w.app, "admin@alpha.io").await;
    browser.get("/users").await;
    let page = browser
        .post(
            "/users/invitations",
            &[("email", "ed@alpha.io"), ("role", "editor")],
        )
        .await;
    assert!(
        page.body.contains("/accept-invitation#lsi_"),
        "{}",
        page.body
    );
    assert!(page.body.contains("no mail server"), "{}", page.body);
}
