//! The customer stays in control, through the API and the pages: an Administrator deletes the
//! whole organization (confirmed by password, code and name; mailed; cancellable during the
//! grace period; then deleted as the operator's deletion does, the ledger kept and verifying),
//! and the incident button ends a member's or everyone's sessions and API tokens and requires a
//! password reset.

use super::call;
use super::web::{Browser, PASSWORD};
use axum::Router;
use axum::http::{Method, StatusCode};
use lockstep_app::{AppError, Clock, Hub, HubOptions, ManualClock, Password, TokenExpiry};
use lockstep_domain::{OrganizationId, Role, TokenScope};
use lockstep_mail::MemoryMailer;
use lockstep_storage::footprint;
use lockstep_storage::on_both_stores;
use lockstep_storage::testing::TestStore;
use serde_json::{Value, json};
use std::sync::Arc;
use time::Duration;

struct World {
    t: TestStore,
    hub: Arc<Hub>,
    app: Router,
    clock: Arc<ManualClock>,
    mail: Arc<MemoryMailer>,
    org: OrganizationId,
    /// Another organization, which nothing here may touch.
    other: OrganizationId,
    other_admin: String,
    admin: String,
    admin_id: String,
    /// A second Administrator.
    second: String,
    editor: String,
    editor_id: String,
    /// An API token of the editor.
    editor_token: String,
}

async fn session(hub: &Hub, email: &str) -> String {
    let pw = Password::new(PASSWORD.to_owned());
    hub.login(email, &pw, None)
        .await
        .unwrap()
        .session_token
        .expose()
        .to_owned()
}

async fn world(t: TestStore) -> World {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let (hub, creds) = Hub::initialize(t.store.clone(), clock.clone(), 1, 1)
        .await
        .unwrap();
    let mail = Arc::new(MemoryMailer::new());
    let hub = Arc::new(hub.with_options(HubOptions {
        mailer: Some(mail.clone()),
        password_permits: 2,
        public_url: "https://hub.test".to_owned(),
        // Sessions outlive the grace periods the tests pass.
        sessions: lockstep_app::SessionPolicy {
            idle_timeout: Duration::days(400),
            max_lifetime: Duration::days(400),
        },
        ..HubOptions::default()
    }));
    let op = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    let pw = Password::new(PASSWORD.to_owned());
    let mut orgs = Vec::new();
    for (name, email) in [("Alpha Works", "admin@alpha.io"), ("Beta", "admin@beta.io")] {
        let made = hub.create_organization(&op, name, email).await.unwrap();
        hub.accept_invitation(made.invitation_token.expose(), &pw, "Ada")
            .await
            .unwrap();
        orgs.push(made.id);
    }
    let admin = session(&hub, "admin@alpha.io").await;
    let admin_caller = hub.authenticate(&admin).await.unwrap();
    for (email, role, name) in [
        ("second@alpha.io", Role::Administrator, "Sam"),
        ("editor@alpha.io", Role::Editor, "Eve"),
    ] {
        let invitation = hub.invite_user(&admin_caller, email, role).await.unwrap();
        hub.accept_invitation(invitation.token.expose(), &pw, name)
            .await
            .unwrap();
    }
    let editor = session(&hub, "editor@alpha.io").await;
    let editor_caller = hub.authenticate(&editor).await.unwrap();
    let editor_token = hub
        .create_api_token(
            &editor_caller,
            "ci",
            TokenScope::Read,
            TokenExpiry::default(),
        )
        .await
        .unwrap()
        .token
        .expose()
        .to_owned();
    let app = lockstep_server::router(Arc::clone(&hub));
    World {
        second: session(&hub, "second@alpha.io").await,
        other_admin: session(&hub, "admin@beta.io").await,
        admin_id: admin_caller.user().to_string(),
        editor_id: editor_caller.user().to_string(),
        hub,
        app,
        clock,
        mail,
        org: orgs[0],
        other: orgs[1],
        admin,
        editor,
        editor_token,
        t,
    }
}

impl World {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> super::Answer {
        let body = body.map(|b| b.to_string());
        call(&self.app, method, path, Some(token), body.as_deref()).await
    }

    async fn request(&self, token: &str, body: Value) -> super::Answer {
        self.call(
            Method::POST,
            "/api/v1/organization/deletion",
            token,
            Some(body),
        )
        .await
    }

    async fn footprint(&self, org: OrganizationId) -> Vec<(String, i64)> {
        let mut conn = self.t.store.read().await.unwrap();
        footprint::organization_footprint(&mut conn, self.t.store.backend(), org)
            .await
            .unwrap()
    }

    async fn pending(&self) -> super::Answer {
        self.call(
            Method::GET,
            "/api/v1/organization/deletion",
            &self.admin,
            None,
        )
        .await
    }

    fn mails_to(&self, to: &str) -> Vec<lockstep_mail::Message> {
        self.mail
            .messages()
            .into_iter()
            .filter(|m| m.to == to)
            .collect()
    }
}

fn right() -> Value {
    json!({"password": PASSWORD, "confirm_name": "Alpha Works"})
}

on_both_stores!(a_deletion_needs_the_password_and_the_exact_name_and_otherwise_changes_nothing);
async fn a_deletion_needs_the_password_and_the_exact_name_and_otherwise_changes_nothing(
    t: TestStore,
) {
    let w = world(t).await;
    let before = w.footprint(w.org).await;
    let mails = w.mail.messages().len();

    let wrong_password = w
        .request(
            &w.admin,
            json!({"password": "not my password", "confirm_name": "Alpha Works"}),
        )
        .await;
    assert_eq!(
        wrong_password.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong_password.body
    );
    assert_eq!(wrong_password.json()["field"], "password");
    assert!(!wrong_password.body.contains("not my password"));
    let wrong_name = w
        .request(
            &w.admin,
            json!({"password": PASSWORD, "confirm_name": "alpha works"}),
        )
        .await;
    assert_eq!(wrong_name.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong_name.json()["field"], "confirm_name");
    // Not an Administrator; an API token; another organization's name.
    assert_eq!(
        w.request(&w.editor, right()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        w.request(&w.editor_token, right()).await.status,
        StatusCode::FORBIDDEN
    );
    let beta = w.request(&w.other_admin, right()).await;
    assert_eq!(beta.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(beta.json()["field"], "confirm_name");

    // Nothing pending, no mail, nothing deleted even long after.
    assert_eq!(w.pending().await.status, StatusCode::NOT_FOUND);
    assert_eq!(w.mail.messages().len(), mails, "a refused request mailed");
    w.clock.advance(Duration::days(60));
    assert_eq!(w.hub.delete_due_organizations().await.unwrap(), 0);
    let after = w.footprint(w.org).await;
    let table =
        |f: &[(String, i64)], name: &str| f.iter().find(|(t, _)| t == name).map(|(_, n)| *n);
    assert_eq!(table(&after, "users"), table(&before, "users"));
    assert_eq!(table(&after, "organization_deletions"), None);
    // The wrong password counted as a failed sign-in.
    let failed = w
        .call(
            Method::GET,
            "/api/v1/audit/events?action=user.sign_in_failed",
            &w.second,
            None,
        )
        .await;
    assert_eq!(
        failed.json()["events"].as_array().map(Vec::len),
        Some(1),
        "{}",
        failed.body
    );
}

on_both_stores!(a_deletion_cancelled_during_the_grace_period_leaves_everything);
async fn a_deletion_cancelled_during_the_grace_period_leaves_everything(t: TestStore) {
    let w = world(t).await;
    let before = w.footprint(w.org).await;
    let requested = w.request(&w.admin, right()).await;
    assert_eq!(requested.status, StatusCode::ACCEPTED, "{}", requested.body);
    let body = requested.json();
    assert_eq!(body["requested_by"], w.admin_id.as_str());
    let due = time::OffsetDateTime::parse(
        body["deletion_due_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    // Stored to the millisecond.
    let grace = due - w.clock.now();
    assert!(
        grace <= Duration::days(7) && grace > Duration::days(7) - Duration::seconds(1),
        "the default grace: {grace}"
    );
    assert_eq!(w.pending().await.json(), body);
    assert_eq!(
        w.request(&w.second, right()).await.status,
        StatusCode::CONFLICT,
        "a second request"
    );

    // Both Administrators were told, with who asked and how to cancel; the editor was not.
    for to in ["admin@alpha.io", "second@alpha.io"] {
        let mails = w.mails_to(to);
        let mail = mails.last().unwrap();
        assert!(
            mail.subject.contains("Alpha Works will be deleted"),
            "{}",
            mail.subject
        );
        assert!(mail.body.contains("Ada asked"), "{}", mail.body);
        assert!(mail.body.contains("cancel"), "{}", mail.body);
        assert!(!mail.body.contains(PASSWORD));
    }
    assert!(
        !w.mails_to("editor@alpha.io")
            .iter()
            .any(|m| m.subject.contains("deleted")),
        "only Administrators are told"
    );

    // Every member's pages say so.
    let mut browser = Browser::signed_in(&w.app, "editor@alpha.io").await;
    let page = browser.get("/dashboard").await;
    assert!(
        page.body.contains("This organization will be deleted on"),
        "{}",
        page.body
    );

    // Six days on, the second Administrator cancels; days later nothing happens.
    w.clock.advance(Duration::days(6));
    assert_eq!(w.hub.delete_due_organizations().await.unwrap(), 0);
    let cancelled = w
        .call(
            Method::DELETE,
            "/api/v1/organization/deletion",
            &w.second,
            None,
        )
        .await;
    assert_eq!(
        cancelled.status,
        StatusCode::NO_CONTENT,
        "{}",
        cancelled.body
    );
    assert!(
        w.mails_to("admin@alpha.io")
            .last()
            .unwrap()
            .subject
            .contains("was cancelled")
    );
    assert_eq!(w.pending().await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        w.call(
            Method::DELETE,
            "/api/v1/organization/deletion",
            &w.second,
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    w.clock.advance(Duration::days(30));
    assert_eq!(w.hub.delete_due_organizations().await.unwrap(), 0);
    let after = w.footprint(w.org).await;
    assert_eq!(after.len(), before.len(), "{after:?}");
    assert!(w.hub.org_keys(w.org).await.is_ok());
    let page = browser.get("/dashboard").await;
    assert!(!page.body.contains("will be deleted"));
    // Audited.
    for action in [
        "organization.deletion_requested",
        "organization.deletion_cancelled",
    ] {
        let events = w
            .call(
                Method::GET,
                &format!("/api/v1/audit/events?action={action}"),
                &w.admin,
                None,
            )
            .await;
        assert_eq!(
            events.json()["events"].as_array().map(Vec::len),
            Some(1),
            "{action}"
        );
    }
}

on_both_stores!(after_the_grace_period_everything_is_deleted_and_the_ledger_still_verifies);
async fn after_the_grace_period_everything_is_deleted_and_the_ledger_still_verifies(t: TestStore) {
    let w = world(t).await;
    assert!(w.hub.checkpoint_ledgers().await.unwrap() >= 2);
    let other_before = w.footprint(w.other).await;
    let patched = w
        .call(
            Method::PATCH,
            "/api/v1/organization/settings",
            &w.admin,
            Some(json!({"deletion_grace_days": 3})),
        )
        .await;
    assert_eq!(patched.json()["deletion_grace_days"], 3, "{}", patched.body);
    let requested = w.request(&w.admin, right()).await;
    assert_eq!(requested.status, StatusCode::ACCEPTED, "{}", requested.body);

    w.clock.advance(Duration::days(3) - Duration::minutes(1));
    assert_eq!(w.hub.delete_due_organizations().await.unwrap(), 0);
    assert_eq!(w.pending().await.status, StatusCode::OK);
    w.clock.advance(Duration::minutes(2));
    assert_eq!(w.hub.delete_due_organizations().await.unwrap(), 1);

    // Only the ledger stays; it verifies, and its last entry is the deletion by the member.
    let (kept, left): (Vec<_>, Vec<_>) =
        w.footprint(w.org)
            .await
            .into_iter()
            .partition(|(table, _)| {
                lockstep_storage::ledger::RETAINED_AFTER_DELETION.contains(&table.as_str())
            });
    assert_eq!(left, vec![], "rows left after deletion");
    assert!(
        kept.iter().any(|(table, _)| table == "ledger_entries"),
        "{kept:?}"
    );
    let ledger = lockstep_app::stored_ledger(&w.t.store, w.org)
        .await
        .unwrap();
    let verified = lockstep_ledger::verify_export(&ledger).unwrap_or_else(|f| panic!("{f:?}"));
    assert_eq!(verified.size, ledger.entries.len() as u64);
    let last = String::from_utf8(ledger.entries.last().unwrap().clone()).unwrap();
    assert!(last.contains("organization.deleted"), "{last}");
    assert!(
        last.contains(&w.admin_id),
        "the member is the actor: {last}"
    );
    assert!(
        !last.contains("Alpha Works") && !last.contains("admin@alpha.io"),
        "{last}"
    );
    // The keys are gone, every credential with them; the other organization keeps everything.
    assert!(matches!(
        w.hub.org_keys(w.org).await,
        Err(AppError::NotFound(_))
    ));
    for token in [&w.admin, &w.editor, &w.editor_token] {
        let me = w.call(Method::GET, "/api/v1/me", token, None).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    }
    let other_after = w.footprint(w.other).await;
    assert_eq!(
        other_after.iter().map(|(t, _)| t).collect::<Vec<_>>(),
        other_before.iter().map(|(t, _)| t).collect::<Vec<_>>()
    );
    let beta = w
        .call(Method::GET, "/api/v1/me", &w.other_admin, None)
        .await;
    assert_eq!(beta.status, StatusCode::OK);
    assert_eq!(w.hub.delete_due_organizations().await.unwrap(), 0);
}

on_both_stores!(with_no_grace_period_the_organization_is_deleted_at_once);
async fn with_no_grace_period_the_organization_is_deleted_at_once(t: TestStore) {
    let w = world(t).await;
    let too_long = w
        .call(
            Method::PATCH,
            "/api/v1/organization/settings",
            &w.admin,
            Some(json!({"deletion_grace_days": 31})),
        )
        .await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(too_long.json()["field"], "deletion_grace_days");
    let zero = w
        .call(
            Method::PATCH,
            "/api/v1/organization/settings",
            &w.admin,
            Some(json!({"deletion_grace_days": 0})),
        )
        .await;
    assert_eq!(zero.status, StatusCode::OK, "{}", zero.body);
    let requested = w.request(&w.admin, right()).await;
    assert_eq!(requested.status, StatusCode::ACCEPTED, "{}", requested.body);
    let (_, left): (Vec<_>, Vec<_>) =
        w.footprint(w.org)
            .await
            .into_iter()
            .partition(|(table, _)| {
                lockstep_storage::ledger::RETAINED_AFTER_DELETION.contains(&table.as_str())
            });
    assert_eq!(left, vec![]);
    assert!(
        w.mails_to("second@alpha.io")
            .last()
            .unwrap()
            .body
            .contains("now, at once")
    );
}

#[tokio::test]
async fn the_settings_page_asks_for_and_cancels_the_deletion() {
    let w = world(
        TestStore::new(lockstep_storage::Backend::Sqlite)
            .await
            .unwrap(),
    )
    .await;
    let mut admin = Browser::signed_in(&w.app, "admin@alpha.io").await;
    let page = admin.get("/settings").await;
    assert!(page.body.contains("id=\"deletion\""), "{}", page.body);
    assert!(
        page.body
            .contains("name=\"deletion_grace_days\" value=\"7\"")
    );
    let wrong = admin
        .post(
            "/settings/deletion",
            &[
                ("password", PASSWORD),
                ("totp", ""),
                ("confirm_name", "Alpha"),
            ],
        )
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.body
    );
    assert!(
        wrong.body.contains("id=\"deletion-name-error\""),
        "{}",
        wrong.body
    );
    assert!(!wrong.body.contains(PASSWORD));
    assert_eq!(w.pending().await.status, StatusCode::NOT_FOUND);
    let done = admin
        .post(
            "/settings/deletion",
            &[
                ("password", PASSWORD),
                ("totp", ""),
                ("confirm_name", "Alpha Works"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let page = admin.get("/settings?notice=deletion-requested").await;
    assert!(page.body.contains("This organization will be deleted on"));
    assert!(
        page.body.contains("action=\"/settings/deletion/cancel\""),
        "{}",
        page.body
    );
    // An Editor sees the banner, not the settings.
    let mut editor = Browser::signed_in(&w.app, "editor@alpha.io").await;
    let page = editor.get("/datasets").await;
    assert!(
        page.body.contains("an Administrator can cancel it"),
        "{}",
        page.body
    );
    assert_eq!(
        editor.post("/settings/deletion/cancel", &[]).await.status,
        StatusCode::FORBIDDEN
    );
    let cancelled = admin.post("/settings/deletion/cancel", &[]).await;
    assert_eq!(
        cancelled.location(),
        Some("/settings?notice=deletion-cancelled")
    );
    assert_eq!(w.pending().await.status, StatusCode::NOT_FOUND);
}

on_both_stores!(the_incident_button_ends_one_members_credentials_until_a_password_reset);
async fn the_incident_button_ends_one_members_credentials_until_a_password_reset(t: TestStore) {
    let w = world(t).await;
    let answer = w
        .call(
            Method::POST,
            "/api/v1/organization/incident",
            &w.admin,
            Some(json!({"user_id": w.editor_id})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.json(),
        json!({"sessions_ended": 1, "tokens_revoked": 1, "members": 1})
    );
    // The editor's session and token stop at once; nobody else is touched.
    for token in [&w.editor, &w.editor_token] {
        let me = w.call(Method::GET, "/api/v1/me", token, None).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    }
    for token in [&w.admin, &w.second, &w.other_admin] {
        let me = w.call(Method::GET, "/api/v1/me", token, None).await;
        assert_eq!(me.status, StatusCode::OK);
    }
    // Another organization's member is not found; an Editor may not.
    let foreign = w
        .call(
            Method::POST,
            "/api/v1/organization/incident",
            &w.other_admin,
            Some(json!({"user_id": w.editor_id})),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    // The right password no longer signs in; a wrong one fails as ever.
    let login =
        |password: &str| json!({"email": "editor@alpha.io", "password": password}).to_string();
    let refused = call(
        &w.app,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(login(PASSWORD).as_str()),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(
        refused.json()["type"],
        "urn:lockstep:problem:password-reset-required"
    );
    assert!(refused.json()["session_token"].is_null());
    let wrong = call(
        &w.app,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(login("nope nope nope").as_str()),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    // The member was told, without a secret.
    let mail = w.mails_to("editor@alpha.io").pop().unwrap();
    assert!(mail.body.contains("/forgot-password"), "{}", mail.body);
    assert!(!mail.body.contains("lss_") && !mail.body.contains("lst_"));
    // Audited per member.
    let events = w
        .call(
            Method::GET,
            "/api/v1/audit/events?action=user.incident_response",
            &w.admin,
            None,
        )
        .await;
    assert_eq!(events.json()["events"].as_array().map(Vec::len), Some(1));

    // A password reset clears it.
    w.hub
        .request_password_reset("editor@alpha.io")
        .await
        .unwrap();
    w.hub.run_queued_jobs().await;
    let mail = w.mails_to("editor@alpha.io").pop().unwrap();
    let token = mail
        .body
        .split("reset-password#")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let new_password = "a brand new passphrase";
    w.hub
        .complete_password_reset(&token, &Password::new(new_password.to_owned()), None)
        .await
        .unwrap();
    let signed = call(
        &w.app,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(login(new_password).as_str()),
    )
    .await;
    assert_eq!(signed.status, StatusCode::OK, "{}", signed.body);
}

on_both_stores!(the_incident_button_for_everyone_includes_the_administrator);
async fn the_incident_button_for_everyone_includes_the_administrator(t: TestStore) {
    let w = world(t).await;
    let answer = w
        .call(
            Method::POST,
            "/api/v1/organization/incident",
            &w.admin,
            Some(json!({})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.json(),
        json!({"sessions_ended": 3, "tokens_revoked": 1, "members": 3})
    );
    for token in [&w.admin, &w.second, &w.editor, &w.editor_token] {
        let me = w.call(Method::GET, "/api/v1/me", token, None).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    }
    let beta = w
        .call(Method::GET, "/api/v1/me", &w.other_admin, None)
        .await;
    assert_eq!(
        beta.status,
        StatusCode::OK,
        "another organization is untouched"
    );
    let pw = Password::new(PASSWORD.to_owned());
    assert!(matches!(
        w.hub.login("admin@alpha.io", &pw, None).await,
        Err(AppError::PasswordResetRequired)
    ));
    for to in ["admin@alpha.io", "second@alpha.io", "editor@alpha.io"] {
        assert!(
            w.mails_to(to)
                .iter()
                .any(|m| m.subject.contains("sessions in Alpha Works were ended")),
            "{to}"
        );
    }
}

#[tokio::test]
async fn the_incident_buttons_on_the_pages() {
    let w = world(
        TestStore::new(lockstep_storage::Backend::Sqlite)
            .await
            .unwrap(),
    )
    .await;
    let mut admin = Browser::signed_in(&w.app, "admin@alpha.io").await;
    let page = admin.get(&format!("/users/{}", w.editor_id)).await;
    assert!(
        page.body.contains("End all sessions and tokens (incident)"),
        "{}",
        page.body
    );
    let done = admin
        .post(&format!("/users/{}/incident", w.editor_id), &[])
        .await;
    assert_eq!(
        done.location(),
        Some(format!("/users/{}?notice=incident", w.editor_id).as_str())
    );
    let me = w.call(Method::GET, "/api/v1/me", &w.editor, None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    // The sign-in page says what to do.
    let mut editor = Browser::new(&w.app);
    editor.get("/login").await;
    let page = editor
        .post(
            "/login",
            &[("email", "editor@alpha.io"), ("password", PASSWORD)],
        )
        .await;
    assert!(
        page.body.contains("A new password is required"),
        "{}",
        page.body
    );
    // The whole organization, from the settings: the Administrator is signed out too.
    let page = admin.get("/settings").await;
    assert!(page.body.contains("yours included"), "{}", page.body);
    let done = admin.post("/settings/incident", &[]).await;
    assert_eq!(done.location(), Some("/login?notice=incident-all"));
    let page = admin.get("/settings").await;
    assert_eq!(page.location(), Some("/login"));
}
