//! Pages: unseal, the operator's pages, sign-in with the TOTP step, sign-out, invitations, the
//! strict Content-Security-Policy and the CSRF checks (in process, see `web.rs`).

use super::connections::env;
use super::web::{Browser, PASSWORD};
use super::{sealed_hub, unsealed_hub};
use std::path::Path;

#[tokio::test]
async fn the_sealed_hub_shows_the_unseal_page_and_counts_good_shares_only() {
    let f = sealed_hub().await;
    let mut browser = Browser::new(&f.app);
    let page = browser.get("/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("0 of 2 shares entered"), "{}", page.body);
    // Every other page leads to the unseal page; the API still answers 503.
    let page = browser.get("/connections").await;
    assert_eq!((page.status.as_u16(), page.location()), (303, Some("/")));
    assert_eq!(browser.get("/api/v1/me").await.status, 503);
    assert_eq!(browser.get("/static/app.css").await.status, 200);

    let share = f.creds.unseal_keys[0].expose().to_owned();
    // Without the form's token nothing counts.
    let page = browser
        .post_raw("/unseal", &[("key", share.as_str())])
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(f.hub.seal_status().progress, 0);
    let page = browser.post("/unseal", &[("key", "not-a-share")]).await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"key-error\""), "{}", page.body);
    assert!(
        page.body
            .contains("The unseal key share was refused. The unseal key is malformed"),
        "a sentence starts with a capital: {}",
        page.body
    );
    assert!(!page.body.contains("not-a-share"));
    assert_eq!(f.hub.seal_status().progress, 0);

    let page = browser.post("/unseal", &[("key", share.as_str())]).await;
    assert_eq!(page.location(), Some("/"));
    let page = browser.get("/").await;
    assert!(page.body.contains("1 of 2 shares entered"), "{}", page.body);
    assert!(!page.body.contains(&share), "a share was rendered back");
    // Start over discards the share entered.
    browser.post("/unseal", &[("reset", "1")]).await;
    assert_eq!(f.hub.seal_status().progress, 0);
    for key in &f.creds.unseal_keys[1..3] {
        browser.get("/").await;
        browser.post("/unseal", &[("key", key.expose())]).await;
    }
    assert!(!f.hub.is_sealed());
    assert_eq!(browser.get("/").await.location(), Some("/login"));
}

#[tokio::test]
async fn the_operator_signs_in_with_the_token_creates_and_deletes_organizations_and_seals() {
    let f = unsealed_hub().await;
    let mut browser = Browser::new(&f.app);
    let page = browser.get("/operator/organizations").await;
    assert_eq!(page.location(), Some("/operator"));
    let page = browser.get("/operator").await;
    // `serve` prints the token at first start; `vault init` when initializing apart.
    assert!(
        page.body.contains(
            "Printed once at first start by <code>lockstep serve</code>, or by <code>lockstep vault init</code>."
        ),
        "{}",
        page.body
    );
    let page = browser.post("/operator", &[("token", "lso_wrong")]).await;
    assert_eq!(page.status, 401);
    assert!(page.body.contains("id=\"token-error\""));
    let token = f.creds.operator_token.expose().to_owned();
    let page = browser
        .post("/operator", &[("token", token.as_str())])
        .await;
    assert_eq!(page.location(), Some("/operator/organizations"));
    assert!(browser.cookie("__Host-lockstep_operator").is_some());
    assert!(
        !browser
            .cookie("__Host-lockstep_operator")
            .unwrap()
            .contains(&token),
        "the operator token is not the page session"
    );

    browser.get("/operator/organizations").await;
    let page = browser
        .post(
            "/operator/organizations",
            &[("name", "Acme"), ("admin_email", "not an address")],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("admin_email-error"), "{}", page.body);
    let page = browser
        .post(
            "/operator/organizations",
            &[("name", "Acme"), ("admin_email", "ada@acme.io")],
        )
        .await;
    assert_eq!(page.status, 201, "{}", page.body);
    let at = page.body.find("/accept-invitation#").unwrap();
    let link = &page.body[at..];
    let link = &link[..link.find('"').unwrap()];
    let token_part = link.trim_start_matches("/accept-invitation#").to_owned();

    // The invitation is accepted in another browser, then that person signs in.
    let mut ada = Browser::new(&f.app);
    let page = ada.get("/accept-invitation").await;
    assert_eq!(page.status, 200);
    let page = ada
        .post(
            "/accept-invitation",
            &[
                ("token", token_part.as_str()),
                ("display_name", "Ada"),
                ("password", PASSWORD),
                ("password_again", "something else entirely"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("password_again-error"));
    assert!(!page.body.contains(PASSWORD));
    // The code survives a mismatch and a refused password: the answer to the POST carries it
    // back in a hidden field (the page never puts it into a URL), and the name typed stays.
    assert!(
        page.body.contains("data-same-as=\"password\""),
        "checked in the page too"
    );
    let carried = hidden_token(&page.body).expect("the invitation code was not kept");
    assert_eq!(carried, token_part);
    assert!(page.body.contains("value=\"Ada\""));
    let page = ada
        .post(
            "/accept-invitation",
            &[
                ("token", carried.as_str()),
                ("display_name", "Ada"),
                ("password", "password1"),
                ("password_again", "password1"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("too common"), "{}", page.body);
    let carried = hidden_token(&page.body).expect("the invitation code was not kept");
    // A wrong code is not carried back: it is asked for again.
    let page = ada
        .post(
            "/accept-invitation",
            &[
                ("token", "lsi_not-an-invitation"),
                ("display_name", "Ada"),
                ("password", PASSWORD),
                ("password_again", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(hidden_token(&page.body).is_none() && page.body.contains("id=\"token-error\""));
    let page = ada
        .post(
            "/accept-invitation",
            &[
                ("token", carried.as_str()),
                ("display_name", "Ada"),
                ("password", PASSWORD),
                ("password_again", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.location(), Some("/login?notice=accepted"));
    let ada = Browser::signed_in(&f.app, "ada@acme.io").await;
    assert!(ada.cookie("__Host-lockstep_session").is_some());

    // Deleting needs the name typed exactly.
    let orgs = f
        .hub
        .list_organizations(
            &f.hub
                .authenticate_operator(&f.creds.operator_token)
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    let id = orgs[0].id.to_string();
    let page = browser
        .get(&format!("/operator/organizations/{id}/delete"))
        .await;
    assert_eq!(page.status, 200);
    // The page says what is kept: the ledger, ids and keyed hashes only.
    assert!(
        page.body.contains("ids and keyed hashes only")
            && page.body.contains("lockstep audit verify"),
        "{}",
        page.body
    );
    let page = browser
        .post(
            &format!("/operator/organizations/{id}/delete"),
            &[("confirm_name", "acme")],
        )
        .await;
    assert_eq!(page.status, 422);
    let page = browser.get("/operator/organizations").await;
    assert!(page.body.contains("Acme"));
    let page = browser
        .post(
            &format!("/operator/organizations/{id}/delete"),
            &[("confirm_name", "Acme")],
        )
        .await;
    assert_eq!(
        page.location(),
        Some("/operator/organizations?notice=deleted")
    );
    let page = browser.get("/operator/organizations").await;
    assert!(page.body.contains("No organization yet"));

    // Sealing ends the page session and clears the site.
    let page = browser.post("/operator/seal", &[]).await;
    assert!(f.hub.is_sealed());
    assert!(page.headers.contains_key("clear-site-data"));
    assert!(browser.cookie("__Host-lockstep_operator").is_none());
}

#[tokio::test]
async fn sign_in_asks_for_the_totp_code_and_sign_out_clears_the_site() {
    let env = env("loopback").await;
    // Ada enrols TOTP.
    let caller = env.hub.authenticate(&env.admin).await.unwrap();
    let enrolment = env.hub.start_totp(&caller).await.unwrap();
    let secret =
        lockstep_auth::TotpSecret::from_otpauth_uri(enrolment.otpauth_uri.as_str()).unwrap();
    let now = time::OffsetDateTime::now_utc();
    env.hub
        .confirm_totp(&caller, &secret.code_at(now).unwrap())
        .await
        .unwrap();

    let mut browser = Browser::new(&env.app);
    browser.get("/login").await;
    let page = browser
        .post(
            "/login",
            &[("email", "admin@alpha.io"), ("password", "wrong password")],
        )
        .await;
    assert_eq!(page.status, 401);
    assert!(page.body.contains("admin@alpha.io"), "the e-mail is kept");
    assert!(!page.body.contains("wrong password"));
    let page = browser
        .post(
            "/login",
            &[("email", "admin@alpha.io"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("action=\"/login/totp\""));
    assert!(
        !page.body.contains(PASSWORD),
        "the password is not in the page"
    );
    assert!(browser.cookie("__Host-lockstep_session").is_none());
    let page = browser.post("/login/totp", &[("totp", "000000")]).await;
    assert_eq!(page.status, 401);
    assert!(page.body.contains("id=\"totp-error\""));
    let code = secret
        .code_at(now + time::Duration::seconds(30))
        .unwrap()
        .to_string();
    let page = browser
        .post("/login/totp", &[("totp", code.as_str())])
        .await;
    assert_eq!(page.location(), Some("/"), "{}", page.body);
    assert!(browser.cookie("__Host-lockstep_session").is_some());
    assert!(browser.cookie("__Host-lockstep_totp").is_none());
    let page = browser.get("/").await;
    assert_eq!(page.location(), Some("/dashboard"));
    let page = browser.get("/pipelines").await;
    assert_eq!(page.status, 200);
    let session = browser
        .cookie("__Host-lockstep_session")
        .unwrap()
        .to_owned();

    // Sign-out without the token is refused; with it, the session ends on the server.
    assert_eq!(browser.post_raw("/logout", &[]).await.status, 403);
    let page = browser.post("/logout", &[]).await;
    assert_eq!(page.location(), Some("/login?notice=signed-out"));
    let clear = page.headers["clear-site-data"].to_str().unwrap();
    assert!(clear.contains("\"cookies\"") && clear.contains("\"storage\""));
    assert!(browser.cookie("__Host-lockstep_session").is_none());
    assert!(env.hub.authenticate(&session).await.is_err());
    assert_eq!(
        browser.get("/pipelines").await.location(),
        Some("/login"),
        "signed out"
    );
}

#[tokio::test]
async fn password_feedback_needs_the_form_token_and_names_common_passwords() {
    let env = env("loopback").await;
    let mut browser = Browser::new(&env.app);
    browser.get("/accept-invitation").await;
    let page = browser
        .hx_post("/password-strength", &[("password", "password1")])
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("too common"), "{}", page.body);
    assert!(!page.body.contains("password1"));
    let page = browser
        .hx_post(
            "/password-strength",
            &[("password", "correct horse battery staple violet")],
        )
        .await;
    assert!(page.body.contains("value=\"4\""), "{}", page.body);
    let mut stranger = Browser::new(&env.app);
    let page = stranger
        .post_raw("/password-strength", &[("password", "x")])
        .await;
    assert_eq!(page.status, 403);
}

#[tokio::test]
async fn every_page_is_strict_csp_clean_and_unknown_pages_are_html() {
    // No template has inline script, inline style or an event handler attribute: the policy
    // would block them, so a page relying on one would be broken.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut checked = 0;
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let lower = text.to_lowercase();
            for (at, _) in lower.match_indices("<script") {
                let tag = &lower[at..at + lower[at..].find('>').unwrap()];
                assert!(tag.contains(" src="), "inline script in {}", path.display());
            }
            assert!(!lower.contains("<style"), "<style> in {}", path.display());
            assert!(!lower.contains(" style="), "style= in {}", path.display());
            let handler = regex_lite_on(&lower);
            assert!(handler.is_none(), "{handler:?} in {}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} templates found");

    let env = env("loopback").await;
    let mut browser = Browser::signed_in(&env.app, "admin@alpha.io").await;
    for path in ["/login", "/pipelines", "/no/such/page"] {
        let page = browser.get(path).await;
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"));
        assert!(
            page.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    assert_eq!(browser.get("/no/such/page").await.status, 404);
}

/// The first ` on<letters>=` attribute in `html`, if any.
fn regex_lite_on(html: &str) -> Option<String> {
    let bytes = html.as_bytes();
    for (at, _) in html.match_indices(" on") {
        let name: String = html[at + 3..]
            .chars()
            .take_while(char::is_ascii_lowercase)
            .collect();
        if !name.is_empty() && bytes.get(at + 3 + name.len()) == Some(&b'=') {
            return Some(format!("on{name}="));
        }
    }
    None
}

#[tokio::test]
async fn sign_in_forms_are_rate_limited_per_address_with_a_readable_page() {
    let f = unsealed_hub().await;
    let app = lockstep_server::router_with(
        std::sync::Arc::clone(&f.hub),
        lockstep_server::RouterOptions {
            auth_requests_per_minute: 2,
        },
    );
    let mut browser = Browser::new(&app);
    browser.get("/login").await;
    for _ in 0..2 {
        let page = browser
            .post(
                "/login",
                &[("email", "x@y.io"), ("password", "wrong password")],
            )
            .await;
        assert_eq!(page.status, 401);
    }
    let page = browser
        .post(
            "/login",
            &[("email", "x@y.io"), ("password", "wrong password")],
        )
        .await;
    assert_eq!(page.status, 429);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.contains("Too many sign-in requests"));
    // Pages that only show something are not limited.
    assert_eq!(browser.get("/login").await.status, 200);
}

#[tokio::test]
async fn a_password_is_reset_from_the_mailed_link_once() {
    use lockstep_app::{Hub, HubOptions, SystemClock};
    use std::sync::Arc;
    let store = lockstep_storage::testing::TestStore::new(lockstep_storage::Backend::Sqlite)
        .await
        .unwrap();
    let mail = Arc::new(lockstep_mail::MemoryMailer::new());
    let (hub, creds) = Hub::initialize(store.store.clone(), Arc::new(SystemClock), 1, 1)
        .await
        .unwrap();
    let hub = Arc::new(hub.with_options(HubOptions {
        mailer: Some(mail.clone()),
        password_permits: 2,
        ..HubOptions::default()
    }));
    let operator = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    let created = hub
        .create_organization(&operator, "Acme", "ada@acme.io")
        .await
        .unwrap();
    hub.accept_invitation(
        created.invitation_token.expose(),
        &lockstep_app::Password::new(PASSWORD.to_owned()),
        "Ada",
    )
    .await
    .unwrap();
    let app = lockstep_server::router(Arc::clone(&hub));

    let mut browser = Browser::new(&app);
    browser.get("/forgot-password").await;
    let before = mail.messages().len();
    // The same answer for an address without an account: nothing tells them apart.
    for email in ["nobody@acme.io", "ada@acme.io"] {
        let page = browser.post("/forgot-password", &[("email", email)]).await;
        assert_eq!(page.location(), Some("/login?notice=reset-sent"));
    }
    // Mailed after the answer.
    hub.run_queued_jobs().await;
    let messages = mail.messages();
    assert_eq!(messages.len(), before + 1, "one mail, to the account");
    let body = &messages.last().unwrap().body;
    let at = body.find("/reset-password#").unwrap() + "/reset-password#".len();
    let token: String = body[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();

    let new_password = "a brand new sentence for ada";
    browser.get("/reset-password").await;
    let page = browser
        .post(
            "/reset-password",
            &[
                ("token", token.as_str()),
                ("password", new_password),
                ("password_again", "not the same"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("password_again-error"));
    assert!(!page.body.contains(new_password));
    // The code is kept for the next try, in a hidden field of this answer (never in a URL).
    let carried = hidden_token(&page.body).expect("the reset code was not kept");
    assert_eq!(carried, token);
    assert!(
        !page.body.contains("id=\"token\""),
        "the code field is asked again"
    );
    let page = browser
        .post(
            "/reset-password",
            &[
                ("token", carried.as_str()),
                ("password", new_password),
                ("password_again", new_password),
            ],
        )
        .await;
    assert_eq!(page.location(), Some("/login?notice=reset-done"));
    // The link works once.
    browser.get("/reset-password").await;
    let page = browser
        .post(
            "/reset-password",
            &[
                ("token", token.as_str()),
                ("password", new_password),
                ("password_again", new_password),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"token-error\""));
    // The new password signs in; the old one does not.
    browser.get("/login").await;
    let page = browser
        .post(
            "/login",
            &[("email", "ada@acme.io"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 401);
    let page = browser
        .post(
            "/login",
            &[("email", "ada@acme.io"), ("password", new_password)],
        )
        .await;
    assert_eq!(page.location(), Some("/"));
}

#[tokio::test]
async fn password_feedback_for_an_overlong_password_names_the_limit() {
    let env = env("loopback").await;
    let mut browser = Browser::new(&env.app);
    browser.get("/accept-invitation").await;
    let long = "x".repeat(60_000);
    let page = browser
        .hx_post("/password-strength", &[("password", long.as_str())])
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("at most 128 characters"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("value=\"0\""),
        "scored 0 without estimating"
    );
}

/// The value of a re-rendered form's hidden `token` field.
fn hidden_token(body: &str) -> Option<String> {
    let marker = "<input type=\"hidden\" name=\"token\" value=\"";
    let at = body.find(marker)? + marker.len();
    let rest = &body[at..];
    Some(rest[..rest.find('"')?].to_owned())
}
