//! Pages: single sign-on (in process, see `web.rs`): the settings form saved against a real
//! OpenID Connect provider, its errors next to their fields with nothing saved, the test
//! sign-in button, the sign-in page's "single sign-on" form that follows the address's domain,
//! and other roles refused.

use super::web::{Browser, shows_as_text, web_env};
use lockstep_app::connectors::testing::OidcPeer;

const PUBLIC_URL: &str = "https://hub.test:8443";

#[tokio::test]
async fn administrators_set_up_single_sign_on_and_members_find_it_by_domain() {
    let redirect = format!("{PUBLIC_URL}/api/v1/sso/oidc/callback");
    let peer = OidcPeer::start(&[&redirect], 120).await.unwrap();
    let (e, mut admin, mut editor, _) = web_env("loopback").await;

    let page = admin.get("/settings/sso").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(shows_as_text(&page, "Save a provider first."));
    assert!(
        page.body.contains(&redirect),
        "the redirect URI to register is shown"
    );
    assert_eq!(editor.get("/settings/sso").await.status, 403);

    // A provider that does not answer: the error sits on the issuer field, nothing saved.
    let bad = admin
        .post(
            "/settings/sso",
            &[
                ("kind", "oidc"),
                ("issuer", "http://127.0.0.1:9"),
                ("client_id", "x"),
                ("client_secret", "y"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body.contains(r#"id="oidc.issuer-error""#),
        "{}",
        bad.body
    );
    assert!(shows_as_text(
        &admin.get("/settings/sso").await,
        "Save a provider first."
    ));

    let saved = admin
        .post(
            "/settings/sso",
            &[
                ("kind", "oidc"),
                ("issuer", &peer.issuer),
                ("client_id", &peer.client_id),
                ("client_secret", &peer.client_secret),
                ("scopes", "openid email profile"),
                ("email_claim", "email"),
                ("domains", "alpha.io"),
                ("enabled", "on"),
                ("jit_role", "viewer"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location(), Some("/settings/sso?notice=saved"));
    let page = admin.get("/settings/sso").await;
    assert!(shows_as_text(
        &page,
        "A secret is stored; leave empty to keep it."
    ));
    assert!(
        !page.body.contains(&peer.client_secret),
        "the secret came back"
    );
    assert!(shows_as_text(&page, "Not tried yet."));

    // The test button sends the Administrator to the provider.
    let test = admin.post("/settings/sso/test", &[]).await;
    assert_eq!(test.status, 303, "{}", test.body);
    assert!(
        test.location().unwrap().starts_with(&peer.issuer),
        "{:?}",
        test.location()
    );

    // On the sign-in page, an address of the domain leads to the organization's provider;
    // another one is told so.
    let mut anonymous = Browser::new(&e.app);
    let login = anonymous.get("/login").await;
    assert!(shows_as_text(&login, "Continue with single sign-on"));
    let found = anonymous
        .post("/login/sso", &[("email", "someone@ALPHA.io")])
        .await;
    assert_eq!(found.status, 303, "{}", found.body);
    let org = e
        .hub
        .authenticate(&e.admin)
        .await
        .unwrap()
        .organization()
        .to_string();
    assert_eq!(found.location(), Some(format!("/sso/{org}").as_str()));
    let to_provider = anonymous.get(&format!("/sso/{org}")).await;
    assert_eq!(to_provider.status, 303);
    assert!(to_provider.location().unwrap().starts_with(&peer.issuer));
    let unknown = anonymous
        .post("/login/sso", &[("email", "someone@elsewhere.example")])
        .await;
    assert_eq!(unknown.status, 422, "{}", unknown.body);
    assert!(
        unknown.body.contains(r#"id="sso_email-error""#),
        "{}",
        unknown.body
    );

    // Removing it from the page.
    let removed = admin.post("/settings/sso/delete", &[]).await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    assert!(shows_as_text(
        &admin.get("/settings/sso").await,
        "Save a provider first."
    ));
}
