//! Single sign-on through the API against real identity providers: the `oidc-provider` peer
//! (npm) for OpenID Connect. Members are matched by verified e-mail, created just in time only
//! when allowed, every refusal is audited with its reason and creates nothing, SSO only keeps
//! the break-glass Administrator's password, and another organization's provider signs nobody
//! into this one.

use super::Answer;
use super::connections::{Env, env};
use axum::body::Body;
use axum::http::{Method, Request, header};
use lockstep_app::Clock;
use lockstep_app::connectors::testing::OidcPeer;
use lockstep_storage::testing::snapshot;
use serde_json::{Value, json};
use tower::ServiceExt;

const PUBLIC_URL: &str = "https://hub.test:8443";
const PASSWORD: &str = "correct horse battery staple";

fn redirect() -> String {
    format!("{PUBLIC_URL}/api/v1/sso/oidc/callback")
}

/// A browser request: the SSO binding cookie (when given) and HTML accepted.
async fn browse(e: &Env, method: Method, path: &str, cookie: Option<&str>) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::ACCEPT, "text/html");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, format!("__Host-lockstep_sso={cookie}"));
    }
    let response = e
        .app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The value of cookie `name` set by an answer, if any (and not a deletion).
fn set_cookie(answer: &Answer, name: &str) -> Option<String> {
    answer
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")).map(str::to_owned))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .filter(|v| !v.is_empty())
}

async fn organization_id(e: &Env) -> String {
    e.hub
        .authenticate(&e.admin)
        .await
        .unwrap()
        .organization()
        .to_string()
}

async fn configure(e: &mut Env, peer: &OidcPeer, extra: Value) -> Answer {
    let mut body = json!({
        "kind": "oidc",
        "enabled": true,
        "oidc": {
            "issuer": peer.issuer,
            "client_id": peer.client_id,
            "client_secret": peer.client_secret,
        },
    });
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    e.admin(Method::PUT, "/api/v1/organization/sso", Some(body))
        .await
}

/// Starts a sign-in at the organization's link: the provider's URL and the binding cookie.
async fn start(e: &Env, org: &str) -> (String, String) {
    let started = browse(
        e,
        Method::GET,
        &format!("/api/v1/sso/oidc/{org}/start"),
        None,
    )
    .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let location = started.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let cookie = set_cookie(&started, "__Host-lockstep_sso").expect("a binding cookie");
    (location, cookie)
}

/// The provider's redirect back as a path of the hub.
fn callback_path(url: &url::Url) -> String {
    format!("/api/v1/sso/oidc/callback?{}", url.query().unwrap())
}

/// A whole sign-in in one browser: start, the provider approves, the callback.
async fn sign_in(e: &Env, peer: &OidcPeer, org: &str) -> Answer {
    let (location, cookie) = start(e, org).await;
    let back = peer.approve(&location, &redirect()).await.unwrap();
    browse(e, Method::GET, &callback_path(&back), Some(&cookie)).await
}

async fn refusals(e: &mut Env) -> Vec<String> {
    let events = e
        .admin(
            Method::GET,
            "/api/v1/audit/events?action=sso.refused&limit=100",
            None,
        )
        .await;
    assert_eq!(events.status, 200, "{}", events.body);
    events.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ev| {
            ev["changes"]["reason"]["after"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

async fn user_rows(e: &Env) -> usize {
    snapshot(&e.store.store)
        .await
        .unwrap()
        .iter()
        .filter(|row| row.starts_with("users"))
        .count()
}

#[tokio::test]
async fn oidc_signs_in_members_by_verified_email_and_refuses_every_bad_answer() {
    let peer = OidcPeer::start(&[&redirect()], 120).await.unwrap();
    let mut e = env("loopback").await;
    keep_audit(&mut e).await;
    let org = organization_id(&e).await;

    // Nothing configured: the sign-in link is 404.
    let none = browse(
        &e,
        Method::GET,
        &format!("/api/v1/sso/oidc/{org}/start"),
        None,
    )
    .await;
    assert_eq!(none.status, 404);

    // A discovery URL that does not answer: a clear error on the issuer, nothing saved.
    let unreachable = e
        .admin(
            Method::PUT,
            "/api/v1/organization/sso",
            Some(json!({"kind": "oidc", "oidc": {"issuer": "http://127.0.0.1:9/", "client_id": "x", "client_secret": "y"}})),
        )
        .await;
    assert_eq!(unreachable.status, 422, "{}", unreachable.body);
    assert_eq!(unreachable.json()["field"], "oidc.issuer");
    let missing = e.admin(Method::GET, "/api/v1/organization/sso", None).await;
    assert_eq!(missing.status, 404);

    let saved = configure(&mut e, &peer, json!({})).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert_eq!(saved.json()["oidc"]["client_secret_set"], true);
    assert!(
        !saved.body.contains(&peer.client_secret),
        "the secret came back"
    );
    assert_eq!(saved.json()["oidc"]["redirect_uri"], redirect());

    // A member with a verified address signs in; the session works like a password's.
    peer.set_account(json!({"email": "editor@alpha.io", "email_verified": true, "name": "Ed"}))
        .await
        .unwrap();
    let done = sign_in(&e, &peer, &org).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let session = set_cookie(&done, "__Host-lockstep_session").expect("a session cookie");
    let me = e.call(Method::GET, "/api/v1/me", &session, None).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["email"], "editor@alpha.io");
    let signed_in = e
        .admin(
            Method::GET,
            "/api/v1/audit/events?action=sso.signed_in",
            None,
        )
        .await;
    assert_eq!(signed_in.json()["events"].as_array().unwrap().len(), 1);

    let users_before = user_rows(&e).await;
    // An address the provider does not vouch for.
    peer.set_account(json!({"email": "editor@alpha.io", "email_verified": false}))
        .await
        .unwrap();
    let unverified = sign_in(&e, &peer, &org).await;
    assert_eq!(unverified.status, 403, "{}", unverified.body);
    assert!(set_cookie(&unverified, "__Host-lockstep_session").is_none());

    // An address without a member, just-in-time provisioning off.
    peer.set_account(json!({"email": "stranger@alpha.io", "email_verified": true}))
        .await
        .unwrap();
    let stranger = sign_in(&e, &peer, &org).await;
    assert_eq!(stranger.status, 403, "{}", stranger.body);

    // The ID token tampered with by the provider's own key: another nonce, another client,
    // expired; and one whose signature is broken.
    peer.set_account(json!({"email": "editor@alpha.io", "email_verified": true}))
        .await
        .unwrap();
    for change in [
        json!({"nonce": "not-ours"}),
        json!({"aud": "another-client"}),
        json!({"exp_offset_secs": -3600}),
        json!({"break_signature": true}),
    ] {
        peer.inject_next_id_token(change.clone()).await.unwrap();
        let refused = sign_in(&e, &peer, &org).await;
        assert_eq!(refused.status, 403, "{change}: {}", refused.body);
        assert!(set_cookie(&refused, "__Host-lockstep_session").is_none());
    }

    // A wrong state; and the right one from another browser (without its cookie).
    let (location, cookie) = start(&e, &org).await;
    let back = peer.approve(&location, &redirect()).await.unwrap();
    let forged = callback_path(&back).replace("state=", "state=x");
    let wrong_state = browse(&e, Method::GET, &forged, Some(&cookie)).await;
    assert_eq!(wrong_state.status, 403, "{}", wrong_state.body);
    let (location, _) = start(&e, &org).await;
    let back = peer.approve(&location, &redirect()).await.unwrap();
    let elsewhere = browse(&e, Method::GET, &callback_path(&back), None).await;
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.body);

    assert_eq!(
        user_rows(&e).await,
        users_before,
        "a refusal created a member"
    );
    let reasons = refusals(&mut e).await;
    for reason in [
        "email",
        "unknown_user",
        "nonce",
        "audience",
        "expired",
        "signature",
        "unknown_request",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no sso.refused with reason {reason}: {reasons:?}"
        );
    }

    // A deactivated member is refused whatever the provider says.
    let viewer = e
        .hub
        .authenticate(&e.viewer)
        .await
        .unwrap()
        .user()
        .to_string();
    let deactivated = e
        .admin(
            Method::PATCH,
            &format!("/api/v1/users/{viewer}"),
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.body);
    peer.set_account(json!({"email": "viewer@alpha.io", "email_verified": true}))
        .await
        .unwrap();
    let gone = sign_in(&e, &peer, &org).await;
    assert_eq!(gone.status, 403, "{}", gone.body);
    assert!(set_cookie(&gone, "__Host-lockstep_session").is_none());

    // Just in time: a new member with the chosen role.
    let jit = configure(
        &mut e,
        &peer,
        json!({"jit": {"enabled": true, "role": "editor"}}),
    )
    .await;
    assert_eq!(jit.status, 200, "{}", jit.body);
    peer.set_account(json!({"email": "new@alpha.io", "email_verified": true, "name": "Nia New"}))
        .await
        .unwrap();
    let created = sign_in(&e, &peer, &org).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let session = set_cookie(&created, "__Host-lockstep_session").unwrap();
    let me = e.call(Method::GET, "/api/v1/me", &session, None).await;
    assert_eq!(me.json()["email"], "new@alpha.io");
    assert_eq!(me.json()["role"], "editor");
    assert_eq!(me.json()["display_name"], "Nia New");
    assert_eq!(user_rows(&e).await, users_before + 1);
}

#[tokio::test]
async fn an_identity_provider_outside_the_egress_policy_is_refused_like_any_connection() {
    let peer = OidcPeer::start(&[&redirect()], 120).await.unwrap();
    // Public addresses only: the provider on loopback is out of reach.
    let mut e = env("public").await;
    let refused = configure(&mut e, &peer, json!({})).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.json()["field"], "oidc.issuer");
    assert!(!refused.body.contains(&peer.client_secret));
    let missing = e.admin(Method::GET, "/api/v1/organization/sso", None).await;
    assert_eq!(missing.status, 404, "nothing was saved");
}

#[tokio::test]
async fn a_test_sign_in_shows_what_the_provider_sent_and_signs_nobody_in() {
    let peer = OidcPeer::start(&[&redirect()], 120).await.unwrap();
    let mut e = env("loopback").await;
    let saved = configure(&mut e, &peer, json!({"enabled": false})).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let org = organization_id(&e).await;
    // Not enabled: members cannot use it yet.
    let closed = browse(
        &e,
        Method::GET,
        &format!("/api/v1/sso/oidc/{org}/start"),
        None,
    )
    .await;
    assert_eq!(closed.status, 404);

    peer.set_account(json!({"email": "admin@alpha.io", "email_verified": true, "name": "Ada"}))
        .await
        .unwrap();
    let test = e
        .admin(Method::POST, "/api/v1/organization/sso/test", None)
        .await;
    assert_eq!(test.status, 200, "{}", test.body);
    let cookie = set_cookie(&test, "__Host-lockstep_sso").unwrap();
    let location = test.json()["redirect_url"].as_str().unwrap().to_owned();
    let back = peer.approve(&location, &redirect()).await.unwrap();
    let shown = browse(&e, Method::GET, &callback_path(&back), Some(&cookie)).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(shown.body.contains("Test sign-in"), "{}", shown.body);
    assert!(shown.body.contains("admin@alpha.io"), "{}", shown.body);
    assert!(shown.body.contains("would be signed in"), "{}", shown.body);
    assert!(set_cookie(&shown, "__Host-lockstep_session").is_none());
    let config = e.admin(Method::GET, "/api/v1/organization/sso", None).await;
    assert_eq!(
        config.json()["last_test"]["result"],
        "ok",
        "{}",
        config.body
    );
    // What the provider sent reaches no log line.
    assert!(!e.logs.text().contains("admin@alpha.io"));
}

#[tokio::test]
async fn sso_only_refuses_passwords_except_the_break_glass_administrator() {
    let peer = OidcPeer::start(&[&redirect()], 120).await.unwrap();
    let mut e = env("loopback").await;
    let admin = e.hub.authenticate(&e.admin).await.unwrap();

    // SSO only without a break-glass account, or with one without TOTP: refused.
    let lonely = configure(&mut e, &peer, json!({"sso_only": true})).await;
    assert_eq!(lonely.status, 422, "{}", lonely.body);
    assert_eq!(lonely.json()["field"], "break_glass_user_id");
    let no_totp = configure(
        &mut e,
        &peer,
        json!({"sso_only": true, "break_glass_user_id": admin.user().to_string()}),
    )
    .await;
    assert_eq!(no_totp.status, 422, "{}", no_totp.body);

    let enrolment = e.hub.start_totp(&admin).await.unwrap();
    let secret = lockstep_auth::TotpSecret::from_otpauth_uri(&enrolment.otpauth_uri).unwrap();
    let code = secret.code_at(e.clock.now()).unwrap();
    e.hub.confirm_totp(&admin, &code).await.unwrap();
    let only = configure(
        &mut e,
        &peer,
        json!({"sso_only": true, "break_glass_user_id": admin.user().to_string()}),
    )
    .await;
    assert_eq!(only.status, 200, "{}", only.body);

    let login = |email: &str, totp: Option<String>| {
        let mut body = json!({"email": email, "password": PASSWORD});
        if let Some(code) = totp {
            body["totp"] = json!(code);
        }
        body
    };
    let editor = super::call(
        &e.app,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(&login("editor@alpha.io", None).to_string()),
    )
    .await;
    assert_eq!(editor.status, 403, "{}", editor.body);
    assert!(editor.body.contains("sso-required"), "{}", editor.body);

    e.clock.advance(time::Duration::seconds(30));
    let code = secret.code_at(e.clock.now()).unwrap();
    let break_glass = super::call(
        &e.app,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(&login("admin@alpha.io", Some(code.to_string())).to_string()),
    )
    .await;
    assert_eq!(break_glass.status, 200, "{}", break_glass.body);

    // Members still get in through the provider.
    peer.set_account(json!({"email": "viewer@alpha.io", "email_verified": true}))
        .await
        .unwrap();
    let org = organization_id(&e).await;
    let via_sso = sign_in(&e, &peer, &org).await;
    assert_eq!(via_sso.status, 200, "{}", via_sso.body);

    // Without single sign-on, passwords work again.
    let removed = e
        .admin(Method::DELETE, "/api/v1/organization/sso", None)
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    let editor = super::call(
        &e.app,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(&login("editor@alpha.io", None).to_string()),
    )
    .await;
    assert_eq!(editor.status, 200, "{}", editor.body);
}

/// A second organization, beta: its Administrator's session token and its id.
async fn beta(e: &Env) -> (String, String) {
    let created = e
        .hub
        .create_organization(&e.operator, "beta", "admin@beta.io")
        .await
        .unwrap();
    let pw = lockstep_app::Password::new(PASSWORD.to_owned());
    e.hub
        .accept_invitation(created.invitation_token.expose(), &pw, "Bea")
        .await
        .unwrap();
    let token = e
        .hub
        .login("admin@beta.io", &pw, None)
        .await
        .unwrap()
        .session_token
        .expose()
        .to_owned();
    let org = e
        .hub
        .authenticate(&token)
        .await
        .unwrap()
        .organization()
        .to_string();
    (token, org)
}

/// Audit events of every refusal kept (the organization's audit depth raised).
async fn keep_audit(e: &mut Env) {
    let raised = e
        .admin(
            Method::PATCH,
            "/api/v1/organization/settings",
            Some(json!({"audit_depth": 1000})),
        )
        .await;
    assert_eq!(raised.status, 200, "{}", raised.body);
}

#[tokio::test]
async fn another_organizations_provider_signs_nobody_into_this_one() {
    let peer = OidcPeer::start(&[&redirect()], 120).await.unwrap();
    let mut e = env("loopback").await;
    let org = organization_id(&e).await;
    assert_eq!(configure(&mut e, &peer, json!({})).await.status, 200);

    // Organization beta uses the provider's second client.
    let (beta_admin, beta_org) = beta(&e).await;
    let (client2, secret2) = peer.second_client();
    let beta = e
        .call(
            Method::PUT,
            "/api/v1/organization/sso",
            &beta_admin,
            Some(json!({"kind": "oidc", "enabled": true,
                "oidc": {"issuer": peer.issuer, "client_id": client2, "client_secret": secret2}})),
        )
        .await;
    assert_eq!(beta.status, 200, "{}", beta.body);

    // alpha's member at beta's provider: the code is beta's, presented with alpha's state.
    peer.set_account(json!({"email": "editor@alpha.io", "email_verified": true}))
        .await
        .unwrap();
    let (alpha_location, alpha_cookie) = start(&e, &org).await;
    let (beta_location, _) = start(&e, &beta_org).await;
    let (_, alpha_state) = peer
        .approve_code(&alpha_location, &redirect())
        .await
        .unwrap();
    let (beta_code, _) = peer
        .approve_code(&beta_location, &redirect())
        .await
        .unwrap();
    let mixed = format!("/api/v1/sso/oidc/callback?code={beta_code}&state={alpha_state}");
    let refused = browse(&e, Method::GET, &mixed, Some(&alpha_cookie)).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(set_cookie(&refused, "__Host-lockstep_session").is_none());
    assert!(refusals(&mut e).await.iter().any(|r| r == "exchange"));

    // beta's own sign-in does not know alpha's member.
    let beta_sign_in = sign_in(&e, &peer, &beta_org).await;
    assert_eq!(beta_sign_in.status, 403, "{}", beta_sign_in.body);
}

mod saml {
    //! SAML 2.0 against a real identity provider (pysaml2 with xmlsec1).

    use super::{
        Answer, PUBLIC_URL, browse, keep_audit, organization_id, refusals, set_cookie, user_rows,
    };
    use crate::connections::{Env, env};
    use axum::body::Body;
    use axum::http::{Method, Request, header};
    use lockstep_sso::testing::{PostedForm, SamlFault, SamlPeer, TestSignIn};
    use serde_json::json;
    use tower::ServiceExt;

    async fn configure(e: &mut Env, peer: &SamlPeer, org: &str) {
        let metadata = peer.metadata_xml().await.unwrap();
        let saved = e
            .admin(
                Method::PUT,
                "/api/v1/organization/sso",
                Some(json!({"kind": "saml", "enabled": true, "saml": {"idp_metadata_xml": metadata}})),
            )
            .await;
        assert_eq!(saved.status, 200, "{}", saved.body);
        assert_eq!(saved.json()["saml"]["idp_entity_id"], peer.entity_id);
        // The IdP is given the hub's SP metadata, as an Administrator would.
        let sp = browse(
            e,
            Method::GET,
            &format!("/api/v1/sso/saml/{org}/metadata"),
            None,
        )
        .await;
        assert_eq!(sp.status, 200);
        assert!(sp.content_type().contains("samlmetadata+xml"));
        peer.register_sp(&sp.body).await.unwrap();
    }

    /// The browser's start: the IdP's URL (with the AuthnRequest) and the binding cookie.
    async fn start(e: &Env, org: &str) -> (url::Url, String) {
        let started = browse(
            e,
            Method::GET,
            &format!("/api/v1/sso/saml/{org}/start"),
            None,
        )
        .await;
        assert_eq!(started.status, 303, "{}", started.body);
        let location = started.headers[header::LOCATION].to_str().unwrap();
        let cookie = set_cookie(&started, "__Host-lockstep_sso").unwrap();
        (url::Url::parse(location).unwrap(), cookie)
    }

    async fn post_acs(e: &Env, org: &str, response: &str, cookie: Option<&str>) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("SAMLResponse", response)
            .finish();
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("/api/v1/sso/saml/{org}/acs"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("__Host-lockstep_sso={cookie}"));
        }
        let response = e
            .app
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    fn who(email: &str, fault: SamlFault) -> TestSignIn {
        TestSignIn {
            email: email.to_owned(),
            attributes: vec![("displayName".to_owned(), vec!["Someone".to_owned()])],
            fault,
            ..TestSignIn::default()
        }
    }

    /// A whole sign-in with `fault`: the form the IdP answered, and the ACS's answer.
    async fn sign_in(
        e: &Env,
        peer: &SamlPeer,
        org: &str,
        fault: SamlFault,
    ) -> (PostedForm, Answer) {
        let (url, cookie) = start(e, org).await;
        let form = peer
            .sign_in(&url, &who("editor@alpha.io", fault))
            .await
            .unwrap();
        assert_eq!(
            form.acs_url,
            format!("{PUBLIC_URL}/api/v1/sso/saml/{org}/acs")
        );
        let answer = post_acs(e, org, &form.saml_response, Some(&cookie)).await;
        (form, answer)
    }

    #[tokio::test]
    async fn saml_signs_in_and_refuses_forged_replayed_and_unsolicited_answers() {
        let peer = SamlPeer::start().await.unwrap();
        let mut e = env("loopback").await;
        keep_audit(&mut e).await;
        let org = organization_id(&e).await;

        // Metadata that is not metadata: a clear error, nothing saved.
        let bad = e
            .admin(
                Method::PUT,
                "/api/v1/organization/sso",
                Some(json!({"kind": "saml", "saml": {"idp_metadata_xml": "<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>"}})),
            )
            .await;
        assert_eq!(bad.status, 422, "{}", bad.body);
        assert_eq!(bad.json()["field"], "saml.idp_metadata_xml");
        configure(&mut e, &peer, &org).await;

        let (form, done) = sign_in(&e, &peer, &org, SamlFault::None).await;
        assert_eq!(done.status, 200, "{}", done.body);
        let session = set_cookie(&done, "__Host-lockstep_session").expect("a session");
        let me = e.call(Method::GET, "/api/v1/me", &session, None).await;
        assert_eq!(me.json()["email"], "editor@alpha.io");

        let users_before = user_rows(&e).await;
        // The same response again (even from the same browser): a replay.
        let replayed = post_acs(&e, &org, &form.saml_response, None).await;
        assert_eq!(replayed.status, 403, "{}", replayed.body);

        for fault in [
            SamlFault::Unsigned,
            SamlFault::ResponseSignedOnly,
            SamlFault::Wrapping,
            SamlFault::AlteredAttribute,
            SamlFault::WrongAudience,
            SamlFault::Expired,
            SamlFault::InResponseTo(Some("_a-request-we-never-sent".to_owned())),
            SamlFault::InResponseTo(None),
        ] {
            let (_, refused) = sign_in(&e, &peer, &org, fault.clone()).await;
            assert_eq!(refused.status, 403, "{fault:?}: {}", refused.body);
            assert!(set_cookie(&refused, "__Host-lockstep_session").is_none());
        }
        // Oversized and entity-laden answers are refused before any XML is parsed.
        use base64::Engine as _;
        let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        let entity = b64("<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>");
        let (_, cookie) = start(&e, &org).await;
        let doctype = post_acs(&e, &org, &entity, Some(&cookie)).await;
        assert_eq!(doctype.status, 403, "{}", doctype.body);
        let huge = "A".repeat(400 * 1024);
        let oversized = post_acs(&e, &org, &huge, Some(&cookie)).await;
        assert!(
            oversized.status == 403 || oversized.status == 413,
            "{}",
            oversized.status
        );

        assert_eq!(
            user_rows(&e).await,
            users_before,
            "a refusal created a member"
        );
        let reasons = refusals(&mut e).await;
        for reason in [
            "replay",
            "signature",
            "audience",
            "expired",
            "unknown_request",
            "malformed",
        ] {
            assert!(
                reasons.iter().any(|r| r == reason),
                "no sso.refused with reason {reason}: {reasons:?}"
            );
        }
        assert!(!e.logs.text().contains("editor@alpha.io"));
    }

    #[tokio::test]
    async fn another_organizations_identity_provider_cannot_sign_into_this_one() {
        let ours = SamlPeer::start().await.unwrap();
        let theirs = SamlPeer::start().await.unwrap();
        let mut e = env("loopback").await;
        let org = organization_id(&e).await;
        configure(&mut e, &ours, &org).await;
        // Organization beta signs in at the other IdP.
        let (beta_admin, beta_org) = super::beta(&e).await;
        let metadata = theirs.metadata_xml().await.unwrap();
        let saved = e
            .call(
                Method::PUT,
                "/api/v1/organization/sso",
                &beta_admin,
                Some(json!({"kind": "saml", "enabled": true, "saml": {"idp_metadata_xml": metadata}})),
            )
            .await;
        assert_eq!(saved.status, 200, "{}", saved.body);
        let sp = browse(
            &e,
            Method::GET,
            &format!("/api/v1/sso/saml/{beta_org}/metadata"),
            None,
        )
        .await;
        theirs.register_sp(&sp.body).await.unwrap();

        // alpha's member signs in at beta's IdP; its answer is posted to alpha's ACS from the
        // browser that started alpha's sign-in.
        let (_, alpha_cookie) = start(&e, &org).await;
        let (beta_url, _) = start(&e, &beta_org).await;
        let form = theirs
            .sign_in(&beta_url, &who("editor@alpha.io", SamlFault::None))
            .await
            .unwrap();
        let refused = post_acs(&e, &org, &form.saml_response, Some(&alpha_cookie)).await;
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert!(set_cookie(&refused, "__Host-lockstep_session").is_none());
        let reasons = refusals(&mut e).await;
        assert!(
            reasons.iter().any(|r| r == "signature" || r == "issuer"),
            "{reasons:?}"
        );
    }
}
