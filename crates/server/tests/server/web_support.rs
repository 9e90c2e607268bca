//! Support access in the pages: the support person sets up their account (password, then an
//! authenticator), an Administrator grants access in Settings, every member then sees the banner,
//! the support person signs in, enters the organization and works there with the granted role;
//! revoked, their next page is the sign-in page.

use super::web::{Browser, PASSWORD, shows_as_text, web_env};
use lockstep_app::Clock;
use lockstep_auth::TotpSecret;

fn totp_key(body: &str) -> String {
    let start = body
        .find(r#"id="totp-secret" class="mono">"#)
        .unwrap_or_else(|| panic!("no TOTP key shown: {body}"))
        + r#"id="totp-secret" class="mono">"#.len();
    let end = start + body[start..].find('<').unwrap();
    body[start..end].to_owned()
}

#[tokio::test]
async fn support_access_is_granted_shown_used_and_revoked_in_the_pages() {
    let (env, mut admin, _editor, mut viewer) = web_env("loopback").await;
    let created = env
        .hub
        .add_support_user(&env.operator, "helper@platform.example")
        .await
        .unwrap();
    let token = created.setup_token.expose().to_owned();

    // Setup: the password first (the two must match), then the authenticator.
    let mut support = Browser::new(&env.app);
    let page = support.get("/support/setup").await;
    assert_eq!(page.status, 200);
    let page = support
        .post(
            "/support/setup",
            &[
                ("token", &token),
                ("password", PASSWORD),
                ("password_again", "other"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(shows_as_text(&page, "The two passwords differ."));
    let page = support
        .post(
            "/support/setup",
            &[
                ("token", &token),
                ("password", PASSWORD),
                ("password_again", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("data:image/svg+xml"), "no QR code");
    let secret = TotpSecret::from_base32(&totp_key(&page.body)).unwrap();
    let code = secret.code_at(env.clock.now()).unwrap().to_string();
    let page = support
        .post(
            "/support/setup/confirm",
            &[("token", &token), ("code", &code)],
        )
        .await;
    assert_eq!(page.location(), Some("/support/login?notice=support-ready"));

    // Nobody sees a banner before a grant.
    let page = viewer.get("/dashboard").await;
    assert_eq!(page.status, 200);
    assert!(!shows_as_text(&page, "Support has access"));

    // The Administrator grants it in Settings; a bad duration is refused on its field.
    let page = admin.get("/settings").await;
    assert!(page.body.contains(r#"href="/settings/support-access""#));
    let page = admin.get("/settings/support-access").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(shows_as_text(&page, "helper@platform.example"));
    assert!(shows_as_text(&page, "No support access was ever granted."));
    let id = created.account.id.to_string();
    let page = admin
        .post(
            "/settings/support-access",
            &[
                ("support_user_id", &id),
                ("role", "viewer"),
                ("hours", "100"),
                ("reason", "ticket 9"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.body.contains(r#"id="hours-error""#), "{}", page.body);
    let page = admin
        .post(
            "/settings/support-access",
            &[
                ("support_user_id", &id),
                ("role", "viewer"),
                ("hours", "8"),
                ("reason", "ticket 9"),
            ],
        )
        .await;
    assert_eq!(
        page.location(),
        Some("/settings/support-access?notice=granted")
    );
    let page = admin.get("/settings/support-access?notice=granted").await;
    assert!(shows_as_text(&page, "ticket 9"));
    assert!(shows_as_text(&page, "Active"));

    // Every member sees the banner.
    let page = viewer.get("/dashboard").await;
    assert!(
        shows_as_text(&page, "Support has access to this organization until"),
        "{}",
        page.body
    );

    // The support person signs in, picks the organization and works there as a Viewer.
    env.clock.advance(time::Duration::seconds(31));
    let page = support.get("/support/login").await;
    assert_eq!(page.status, 200);
    let wrong = support
        .post(
            "/support/login",
            &[
                ("email", "helper@platform.example"),
                ("password", PASSWORD),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    let code = secret.code_at(env.clock.now()).unwrap().to_string();
    let page = support
        .post(
            "/support/login",
            &[
                ("email", "helper@platform.example"),
                ("password", PASSWORD),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(page.location(), Some("/support"), "{}", page.body);
    let page = support.get("/support").await;
    assert!(shows_as_text(&page, "alpha"), "{}", page.body);
    let admin_caller = env.hub.authenticate(&env.admin).await.unwrap();
    let org = admin_caller.organization().to_string();
    let page = support
        .post("/support/enter", &[("organization_id", &org)])
        .await;
    assert_eq!(page.location(), Some("/dashboard"), "{}", page.body);
    let page = support.get("/dashboard").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        shows_as_text(&page, "you are working here as support"),
        "{}",
        page.body
    );
    let page = support.get("/users").await;
    assert_eq!(page.status, 403);
    let page = support.get("/account").await;
    assert_eq!(page.status, 403, "no account of their own here");

    // Their page views are in the organization's audit, under the grant.
    let events = env
        .hub
        .search_events(
            &admin_caller,
            lockstep_app::AuditSearch {
                action: Some("support.request".to_owned()),
                limit: 500,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e.actor_kind == "support"
            && matches!(e.changes.get("route"), Some(lockstep_app::FieldChange::Value { after: Some(r), .. }) if r == "/dashboard")),
        "{events:?}"
    );

    // Revoked: the next page is the sign-in page, and the banner is gone.
    let grant = env.hub.list_support_grants(&admin_caller).await.unwrap()[0].id;
    let page = admin.get("/settings/support-access").await;
    assert_eq!(page.status, 200);
    let page = admin
        .post(&format!("/settings/support-access/{grant}/revoke"), &[])
        .await;
    assert_eq!(
        page.location(),
        Some("/settings/support-access?notice=revoked")
    );
    let page = support.get("/dashboard").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = viewer.get("/dashboard").await;
    assert!(!shows_as_text(&page, "Support has access"));
}
