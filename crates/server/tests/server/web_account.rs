//! Pages: account (in process, see `web.rs`).

use super::web::{Browser, PASSWORD, Page, web_env};
use axum::http::Method;
use base64::Engine as _;
use lockstep_app::{Clock, SettingsUpdate};
use lockstep_auth::TotpSecret;
use time::Duration;

const NEW_PASSWORD: &str = "a much longer passphrase of mine 2026";

/// The text between `start` (exclusive) and the next `end` after it.
fn between<'a>(body: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let at = body.find(start)? + start.len();
    let rest = &body[at..];
    Some(&rest[..rest.find(end)?])
}

/// Every page body seen, to check no password was ever sent back.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn keep(&mut self, page: Page) -> Page {
        self.0.push(page.body.clone());
        page
    }

    fn assert_never_shown(&self, secrets: &[&str]) {
        for body in &self.0 {
            for secret in secrets {
                assert!(!body.contains(secret), "a page carried a password: {body}");
            }
        }
    }
}

async fn login(app: &axum::Router, email: &str, password: &str) -> Page {
    let mut browser = Browser::new(app);
    browser.get("/login").await;
    browser
        .post("/login", &[("email", email), ("password", password)])
        .await
}

#[tokio::test]
async fn the_account_page_shows_the_profile_and_the_required_totp_notice() {
    let (mut env, mut admin, _, mut viewer) = web_env("loopback").await;
    let page = admin.get("/account").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let me = env.admin(Method::GET, "/api/v1/me", None).await.json();
    assert_eq!(me["organization_name"], "alpha");
    // The organization's name: in the header of every page and in the profile.
    assert!(
        page.body
            .contains("<span class=\"org\" title=\"Your organization\">alpha</span>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<dt>Organization</dt><dd>alpha "),
        "{}",
        page.body
    );
    let other = admin.get("/connections").await;
    assert!(
        other
            .body
            .contains("title=\"Your organization\">alpha</span>")
    );
    for shown in [
        "Ada",
        "admin@alpha.io",
        "Administrator",
        me["organization_id"].as_str().unwrap(),
        "Turn on two-factor sign-in",
        "id=\"current-session\"",
    ] {
        assert!(page.body.contains(shown), "{shown} is missing");
    }
    assert!(!page.body.contains("must-enrol-totp"));
    let page = viewer.get("/account").await;
    assert!(page.body.contains("viewer@alpha.io") && page.body.contains("Viewer"));

    let admin_caller = env.hub.authenticate(&env.admin).await.unwrap();
    env.hub
        .update_organization_settings(
            &admin_caller,
            SettingsUpdate {
                require_totp: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let page = viewer.get("/account").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("id=\"must-enrol-totp\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("requires two-factor sign-in"));
    // Every other page sends the member to the enrolment, not to a 403 naming an API call;
    // the start page too (it led back to the 403).
    for path in ["/connections", "/pipelines", "/users", "/"] {
        let mut page = viewer.get(path).await;
        for _ in 0..3 {
            if page.status != 303 || page.location() == Some("/account#must-enrol-totp") {
                break;
            }
            let next = page.location().unwrap().to_owned();
            page = viewer.get(&next).await;
        }
        assert_eq!(
            (page.status.as_u16(), page.location()),
            (303, Some("/account#must-enrol-totp")),
            "{path}: {}",
            page.body
        );
    }
    let page = viewer.get("/account").await;
    assert!(!page.body.contains("POST /api/v1/me/totp"), "{}", page.body);
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_ends_the_other_sessions() {
    let (mut env, mut admin, _, _) = web_env("loopback").await;
    let mut seen = Seen::default();
    seen.keep(admin.get("/account").await);

    let page = seen.keep(
        admin
            .post(
                "/account/password",
                &[
                    ("current_password", "not my password at all"),
                    ("password", NEW_PASSWORD),
                    ("password_again", NEW_PASSWORD),
                ],
            )
            .await,
    );
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.body
            .contains("aria-describedby=\"current_password-error\"")
    );
    assert!(
        between(&page.body, "id=\"current_password-error\">", "</p>")
            .unwrap()
            .contains("not your current password"),
        "{}",
        page.body
    );

    let page = seen.keep(
        admin
            .post(
                "/account/password",
                &[
                    ("current_password", PASSWORD),
                    ("password", NEW_PASSWORD),
                    ("password_again", "something else entirely 123"),
                ],
            )
            .await,
    );
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"password_again-error\""));

    let page = seen.keep(
        admin
            .post(
                "/account/password",
                &[
                    ("current_password", PASSWORD),
                    ("password", "short"),
                    ("password_again", "short"),
                ],
            )
            .await,
    );
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"password-error\""), "{}", page.body);

    // Nothing changed so far.
    assert_eq!(
        login(&env.app, "admin@alpha.io", PASSWORD).await.status,
        303
    );

    let page = seen.keep(
        admin
            .post(
                "/account/password",
                &[
                    ("current_password", PASSWORD),
                    ("password", NEW_PASSWORD),
                    ("password_again", NEW_PASSWORD),
                ],
            )
            .await,
    );
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), Some("/account?notice=password"));
    let page = seen.keep(admin.get("/account?notice=password").await);
    assert_eq!(page.status, 200, "this session stays signed in");
    assert!(page.body.contains("Your password was changed."));

    // The other session (the API's) was ended.
    let me = env.admin(Method::GET, "/api/v1/me", None).await;
    assert_eq!(me.status, 401);
    let page = seen.keep(login(&env.app, "admin@alpha.io", PASSWORD).await);
    assert_eq!(page.status, 401, "the old password still works");
    let page = seen.keep(login(&env.app, "admin@alpha.io", NEW_PASSWORD).await);
    assert_eq!(page.status, 303, "the new password does not work");
    seen.assert_never_shown(&[PASSWORD, NEW_PASSWORD]);
}

#[tokio::test]
async fn account_forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let (mut env, mut admin, _, _) = web_env("loopback").await;
    admin.get("/account").await;
    let page = admin
        .post_raw(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("password", NEW_PASSWORD),
                ("password_again", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    let page = admin
        .post_raw(
            "/account/tokens",
            &[("name", "sneaky"), ("expires_in_days", "30")],
        )
        .await;
    assert_eq!(page.status, 403);
    let page = admin
        .post_raw("/account/sessions/end-all", &[("csrf", "lsc_wrong")])
        .await;
    assert_eq!(page.status, 403);

    assert_eq!(
        login(&env.app, "admin@alpha.io", PASSWORD).await.status,
        303
    );
    let tokens = env.admin(Method::GET, "/api/v1/me/tokens", None).await;
    assert_eq!(tokens.status, 200, "the other sessions were ended");
    assert!(tokens.json()["tokens"].as_array().unwrap().is_empty());
    assert_eq!(admin.get("/account").await.status, 200);
}

#[tokio::test]
async fn totp_enrolment_shows_a_qr_code_then_the_recovery_codes_once_and_guards_sign_in() {
    let (mut env, _, mut editor, _) = web_env("loopback").await;
    let now = env.clock.now();
    let mut seen = Seen::default();
    seen.keep(editor.get("/account").await);

    let page = seen.keep(editor.post("/account/totp/start", &[]).await);
    assert_eq!(page.status, 200, "{}", page.body);
    let src = between(
        &page.body,
        "<img class=\"qr\" alt=\"QR code for your authenticator app\" src=\"",
        "\"",
    )
    .expect("the QR code image");
    let svg = base64::engine::general_purpose::STANDARD
        .decode(src.strip_prefix("data:image/svg+xml;base64,").unwrap())
        .unwrap();
    let svg = String::from_utf8(svg).unwrap();
    assert!(svg.starts_with("<?xml") && svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.contains("<path") && svg.trim_end().ends_with("</svg>"));
    let secret = between(&page.body, "id=\"totp-secret\" class=\"mono\">", "<")
        .unwrap()
        .to_owned();
    let totp = TotpSecret::from_base32(&secret).unwrap();

    // A wrong code: the error is next to the field, and the same QR code and secret are back.
    let right: Vec<String> = [-30, 0, 30]
        .iter()
        .map(|s| {
            totp.code_at(now + Duration::seconds(*s))
                .unwrap()
                .to_string()
        })
        .collect();
    let wrong = ["000000", "111111", "222222", "333333"]
        .into_iter()
        .find(|c| !right.iter().any(|r| r == c))
        .unwrap();
    let page = seen.keep(
        editor
            .post("/account/totp/confirm", &[("code", wrong)])
            .await,
    );
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.body.contains("id=\"code-error\""), "{}", page.body);
    assert!(page.body.contains("aria-invalid=\"true\""));
    assert!(page.body.contains("src=\"data:image/svg+xml;base64,"));
    assert!(
        page.body
            .contains(&format!("id=\"totp-secret\" class=\"mono\">{secret}<"))
    );
    let me = env
        .call(Method::GET, "/api/v1/me", &env.editor.clone(), None)
        .await;
    assert_eq!(me.json()["totp_enabled"], false);

    let code = totp.code_at(now).unwrap();
    let page = seen.keep(
        editor
            .post("/account/totp/confirm", &[("code", &code)])
            .await,
    );
    assert_eq!(page.status, 200, "{}", page.body);
    let codes = between(
        &page.body,
        "<ul class=\"codes\" id=\"recovery-codes\">",
        "</ul>",
    )
    .unwrap();
    let codes: Vec<String> = codes
        .split("<li>")
        .skip(1)
        .map(|c| c.split("</li>").next().unwrap().trim().to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{}", page.body);
    assert!(page.body.contains("shown only this once"));
    let me = env
        .call(Method::GET, "/api/v1/me", &env.editor.clone(), None)
        .await;
    assert_eq!(me.json()["totp_enabled"], true);
    let page = seen.keep(editor.get("/account").await);
    assert!(
        !page.body.contains(codes[0].as_str()),
        "recovery codes shown again"
    );
    assert!(page.body.contains("Turn off two-factor sign-in"));

    // Signing in now takes the TOTP step; a code of the next time step signs in (the first
    // code's step is used up).
    let mut other = Browser::new(&env.app);
    other.get("/login").await;
    let page = seen.keep(
        other
            .post(
                "/login",
                &[("email", "editor@alpha.io"), ("password", PASSWORD)],
            )
            .await,
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("action=\"/login/totp\""));
    let next = totp.code_at(now + Duration::seconds(30)).unwrap();
    let page = seen.keep(other.post("/login/totp", &[("totp", &next)]).await);
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(other.get("/account").await.status, 200);

    // Turning it off needs a code: a wrong one is refused next to the field, a recovery code works.
    let page = seen.keep(
        editor
            .post("/account/totp/remove", &[("code", "nope")])
            .await,
    );
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.body.contains("id=\"totp-remove-code-error\""));
    let page = seen.keep(
        editor
            .post("/account/totp/remove", &[("code", &codes[0])])
            .await,
    );
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), Some("/account?notice=totp-off"));
    let me = env
        .call(Method::GET, "/api/v1/me", &env.editor.clone(), None)
        .await;
    assert_eq!(me.json()["totp_enabled"], false);
    seen.assert_never_shown(&[PASSWORD]);
}

#[tokio::test]
async fn an_api_token_is_shown_once_works_as_bearer_and_stops_when_revoked() {
    let (mut env, mut admin, _, _) = web_env("loopback").await;
    admin.get("/account").await;
    for (scope, days, field) in [
        ("read", "0", "token-days-error"),
        ("read", "many", "token-days-error"),
        ("admin", "30", "token-scope-error"),
    ] {
        let page = admin
            .post(
                "/account/tokens",
                &[
                    ("name", "nightly"),
                    ("scope", scope),
                    ("expires_in_days", days),
                ],
            )
            .await;
        assert_eq!(page.status, 422, "{}", page.body);
        assert!(
            page.body.contains(&format!("id=\"{field}\"")),
            "{}",
            page.body
        );
    }
    let page = admin
        .post(
            "/account/tokens",
            &[("name", " "), ("scope", "read"), ("expires_in_days", "30")],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"token-name-error\""));

    let page = admin
        .post(
            "/account/tokens",
            &[
                ("name", "nightly export"),
                ("scope", "run"),
                ("expires_in_days", "30"),
            ],
        )
        .await;
    assert_eq!(page.status, 201, "{}", page.body);
    let token = between(&page.body, "id=\"new-api-token\" class=\"mono\">", "<")
        .unwrap()
        .to_owned();
    assert!(token.starts_with("lst"), "{token}");
    assert!(page.body.contains("data-copy=\"new-api-token\""));

    let me = env.call(Method::GET, "/api/v1/me", &token, None).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["email"], "admin@alpha.io");
    // Made with the run scope: it cannot change anything else, whatever the admin's role.
    let create = env
        .call(
            Method::POST,
            "/api/v1/connections",
            &token,
            Some(serde_json::json!({"name": "x", "kind": "files"})),
        )
        .await;
    assert_eq!(create.status, 403, "{}", create.body);
    assert_eq!(
        create.json()["type"],
        "urn:lockstep:problem:token-scope-too-narrow"
    );

    let page = admin.get("/account").await;
    assert!(!page.body.contains(&token), "the token was shown again");
    assert!(page.body.contains("<td>nightly export</td>"));
    assert!(
        page.body.contains("<td>Run pipelines</td>"),
        "{}",
        page.body
    );
    let id = between(&page.body, "action=\"/account/tokens/", "/revoke\"")
        .unwrap()
        .to_owned();
    assert!(page.body.contains("data-confirm=\"Revoke the token"));
    let page = admin
        .post(&format!("/account/tokens/{id}/revoke"), &[])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), Some("/account?notice=revoked"));
    let me = env.call(Method::GET, "/api/v1/me", &token, None).await;
    assert_eq!(me.status, 401);
    assert!(
        !admin
            .get("/account")
            .await
            .body
            .contains("<td>nightly export</td>")
    );
}

#[tokio::test]
async fn sessions_can_be_signed_out_one_by_one_or_all_at_once() {
    let (env, mut admin, _, mut viewer) = web_env("loopback").await;
    let mut second = Browser::signed_in(&env.app, "admin@alpha.io").await;
    let mut third = Browser::signed_in(&env.app, "admin@alpha.io").await;

    // One session: the third browser's, from the first one's page.
    let page = third.get("/account").await;
    let current = between(&page.body, "<tr id=\"current-session\">", "</tr>").unwrap();
    let third_id = between(current, "action=\"/account/sessions/", "/end\"")
        .unwrap()
        .to_owned();
    let page = admin.get("/account").await;
    assert!(page.body.contains(&third_id));
    assert!(page.body.contains("Sign out everywhere (this browser too)"));

    // Another member cannot end it.
    viewer.get("/account").await;
    let page = viewer
        .post(&format!("/account/sessions/{third_id}/end"), &[])
        .await;
    assert_eq!(page.status, 404, "{}", page.body);
    assert_eq!(third.get("/account").await.status, 200);

    let page = admin
        .post(&format!("/account/sessions/{third_id}/end"), &[])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), Some("/account?notice=session-ended"));
    let page = third.get("/account").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), Some("/login"));

    // Its own row signs this browser out.
    let mut fourth = Browser::signed_in(&env.app, "admin@alpha.io").await;
    let page = fourth.get("/account").await;
    let current = between(&page.body, "<tr id=\"current-session\">", "</tr>").unwrap();
    assert!(current.contains("Sign out this browser"));
    let fourth_id = between(current, "action=\"/account/sessions/", "/end\"")
        .unwrap()
        .to_owned();
    let page = fourth
        .post(&format!("/account/sessions/{fourth_id}/end"), &[])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), Some("/login?notice=signed-out"));
    assert!(fourth.cookie("__Host-lockstep_session").is_none());
    assert_eq!(fourth.get("/account").await.location(), Some("/login"));

    // Everywhere: this browser too.
    assert_eq!(second.get("/account").await.status, 200);
    admin.get("/account").await;
    let page = admin.post("/account/sessions/end-all", &[]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(page.location().unwrap().starts_with("/login"));
    let page = second.get("/account").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), Some("/login"));
    assert_eq!(admin.get("/account").await.location(), Some("/login"));
    assert_eq!(
        viewer.get("/account").await.status,
        200,
        "another member's session ended"
    );
}

#[tokio::test]
async fn a_wrong_code_shows_the_pending_key_again_from_the_store_not_from_the_form() {
    let (env, _, _, mut viewer) = web_env("loopback").await;
    let now = env.clock.now();
    viewer.get("/account").await;
    let page = viewer.post("/account/totp/start", &[]).await;
    let first = between(&page.body, "id=\"totp-secret\" class=\"mono\">", "<")
        .unwrap()
        .to_owned();
    assert!(
        !page.body.contains(&format!("value=\"{first}\"")),
        "the secret is not put into a form field"
    );
    let page = viewer
        .post("/account/totp/confirm", &[("code", "12 34 5x")])
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.body.contains("src=\"data:image/svg+xml;base64,"));
    let second = between(&page.body, "id=\"totp-secret\" class=\"mono\">", "<")
        .unwrap()
        .to_owned();
    assert_eq!(first, second, "the same pending key, no re-scan needed");
    let code = TotpSecret::from_base32(&second)
        .unwrap()
        .code_at(now)
        .unwrap();
    let page = viewer
        .post("/account/totp/confirm", &[("code", &code)])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"recovery-codes\""));
}

#[tokio::test]
async fn the_account_page_offers_to_revoke_api_tokens_checked_by_default() {
    let (env, mut admin, _, _) = web_env("loopback").await;
    let kept = api_token(&env.hub).await;
    let page = admin.get("/account").await;
    for checkbox in ["password-revoke-tokens", "everywhere-revoke-tokens"] {
        let input = between(&page.body, &format!("id=\"{checkbox}\""), ">").unwrap();
        assert!(
            input.contains("name=\"revoke_api_tokens\"") && input.contains("checked"),
            "{checkbox}: {input}"
        );
    }

    // Unchecked: the token stays; checked (as the page comes): it is revoked.
    let page = admin
        .post(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("password", NEW_PASSWORD),
                ("password_again", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(env.hub.authenticate(&kept).await.is_ok());
    admin.get("/account").await;
    let page = admin
        .post(
            "/account/password",
            &[
                ("current_password", NEW_PASSWORD),
                ("password", PASSWORD),
                ("password_again", PASSWORD),
                ("revoke_api_tokens", "on"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(
        env.hub.authenticate(&kept).await.is_err(),
        "a password change with the box checked kept an API token"
    );

    let kept = api_token(&env.hub).await;
    admin.get("/account").await;
    let page = admin.post("/account/sessions/end-all", &[]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(env.hub.authenticate(&kept).await.is_ok());
    let mut admin = Browser::signed_in(&env.app, "admin@alpha.io").await;
    admin.get("/account").await;
    let page = admin
        .post("/account/sessions/end-all", &[("revoke_api_tokens", "on")])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(
        env.hub.authenticate(&kept).await.is_err(),
        "signing out everywhere with the box checked kept an API token"
    );
}

/// A new API token of admin@alpha.io (signed in with [`PASSWORD`] for it).
async fn api_token(hub: &lockstep_app::Hub) -> String {
    let pw = lockstep_app::Password::new(PASSWORD.to_owned());
    let session = hub.login("admin@alpha.io", &pw, None).await.unwrap();
    let caller = hub
        .authenticate(session.session_token.expose())
        .await
        .unwrap();
    hub.create_api_token(
        &caller,
        "kept",
        lockstep_domain::TokenScope::Manage,
        lockstep_app::TokenExpiry::Days(30),
    )
    .await
    .unwrap()
    .token
    .expose()
    .to_owned()
}
