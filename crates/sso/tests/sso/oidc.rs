//! OpenID Connect against a real provider: `oidc-provider` (tests/peers/oidc), started per test
//! on a free loopback port. Faults are made by the peer itself: it re-signs the ID token it
//! answers with its own key after changing a claim (or with another key), so every refusal
//! below comes from the same checks a real provider's answer meets.

use lockstep_connectors::testing::OidcPeer;
use lockstep_connectors::{Context, EgressPolicy, Secret};
use lockstep_sso::oidc::{self, Issuer, OidcError, OidcSettings, Pending, Provider};
use lockstep_sso::{RefusalReason, VerifiedIdentity};
use serde_json::json;
use std::time::Duration;
use time::OffsetDateTime;
use url::Url;

const REDIRECT: &str = "https://127.0.0.1:8443/api/v1/sso/oidc/callback";

fn loopback() -> Context {
    Context::new(EgressPolicy::parse("loopback").unwrap(), None)
}

fn redirect() -> Url {
    Url::parse(REDIRECT).unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A peer, settings for its first web client, and the provider as discovered.
struct Idp {
    peer: OidcPeer,
    settings: OidcSettings,
    provider: Provider,
}

async fn idp() -> Idp {
    let peer = OidcPeer::start(&[REDIRECT], 60)
        .await
        .unwrap_or_else(|err| panic!("the OIDC test peer: {err}"));
    let settings = settings_for(&peer, &peer.client_id, &peer.client_secret);
    let provider = oidc::discover(&loopback(), &settings).await.unwrap();
    Idp {
        peer,
        settings,
        provider,
    }
}

fn settings_for(peer: &OidcPeer, client_id: &str, client_secret: &str) -> OidcSettings {
    OidcSettings::new(
        Issuer::parse(&peer.issuer).unwrap(),
        client_id.to_owned(),
        Some(Secret::new(client_secret.to_owned())),
    )
}

/// The browser's part: the authorization URL followed through the peer's login and consent.
/// Answers what the app keeps, and the callback's code and state.
async fn authorize(idp: &Idp, settings: &OidcSettings) -> (Pending, String, String) {
    let (url, pending) = oidc::begin(&idp.provider, settings, &redirect()).unwrap();
    let (code, state) = idp.peer.approve_code(url.as_str(), REDIRECT).await.unwrap();
    (pending, code, state)
}

async fn sign_in(idp: &Idp) -> Result<VerifiedIdentity, lockstep_sso::Refused> {
    let (pending, code, state) = authorize(idp, &idp.settings).await;
    oidc::finish(
        &idp.provider,
        &idp.settings,
        &redirect(),
        &pending,
        &state,
        &code,
        now(),
    )
    .await
}

/// Signs in with the next ID token changed as `change` says; answers the refusal's reason.
async fn refused_with(change: serde_json::Value) -> RefusalReason {
    let idp = idp().await;
    idp.peer.inject_next_id_token(change).await.unwrap();
    let refused = sign_in(&idp)
        .await
        .expect_err("the sign-in must be refused");
    assert!(
        !refused.detail.contains("test-user"),
        "no claim value in the detail: {}",
        refused.detail
    );
    refused.reason
}

#[tokio::test]
async fn a_full_sign_in_answers_the_subject_the_email_and_whether_it_is_verified() {
    let idp = idp().await;
    idp.peer
        .set_account(json!({
            "email": "ann@example.com",
            "email_verified": true,
            "name": "Ann Example",
        }))
        .await
        .unwrap();
    let (url, pending) = oidc::begin(&idp.provider, &idp.settings, &redirect()).unwrap();
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(param("response_type").as_deref(), Some("code"));
    assert_eq!(param("client_id"), Some(idp.peer.client_id.clone()));
    assert_eq!(param("redirect_uri").as_deref(), Some(REDIRECT));
    assert_eq!(param("scope").as_deref(), Some("openid email profile"));
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(param("state").as_deref(), Some(pending.state()));
    assert_eq!(param("nonce").as_deref(), Some(pending.nonce()));
    assert!(param("code_challenge").is_some_and(|c| c.len() == 43 && c != pending.pkce_verifier()));
    assert!(pending.state().len() >= 43 && pending.nonce().len() >= 43);
    assert!(!format!("{pending:?}").contains(pending.state()));

    let (code, state) = idp.peer.approve_code(url.as_str(), REDIRECT).await.unwrap();
    let identity = oidc::finish(
        &idp.provider,
        &idp.settings,
        &redirect(),
        &pending,
        &state,
        &code,
        now(),
    )
    .await
    .unwrap();
    assert_eq!(identity.subject, "test-user");
    assert_eq!(identity.email.as_deref(), Some("ann@example.com"));
    assert!(identity.email_verified);
    assert_eq!(identity.attributes["name"], ["Ann Example"]);
    assert_eq!(identity.attributes["email"], ["ann@example.com"]);
    assert_eq!(identity.attributes["email_verified"], ["true"]);
    for token_claim in ["iss", "aud", "exp", "iat", "nonce", "sub", "at_hash"] {
        assert!(
            !identity.attributes.contains_key(token_claim),
            "{token_claim} is not an attribute"
        );
    }
    assert!(!format!("{identity:?}").contains("ann@example.com"));

    // The code is single-use: presenting it again is refused by the provider.
    let again = oidc::finish(
        &idp.provider,
        &idp.settings,
        &redirect(),
        &pending,
        &state,
        &code,
        now(),
    )
    .await
    .unwrap_err();
    assert_eq!(again.reason, RefusalReason::Exchange);
}

#[tokio::test]
async fn an_unverified_or_unflagged_email_is_not_verified() {
    let idp = idp().await;
    idp.peer
        .set_account(json!({"email": "bob@example.com", "email_verified": false}))
        .await
        .unwrap();
    let identity = sign_in(&idp).await.unwrap();
    assert_eq!(identity.email.as_deref(), Some("bob@example.com"));
    assert!(!identity.email_verified);

    idp.peer
        .set_account(json!({"email": "bob@example.com"}))
        .await
        .unwrap();
    let identity = sign_in(&idp).await.unwrap();
    assert_eq!(identity.email.as_deref(), Some("bob@example.com"));
    assert!(!identity.email_verified, "a missing flag means unverified");

    idp.peer
        .set_account(json!({"name": "No Mail"}))
        .await
        .unwrap();
    let identity = sign_in(&idp).await.unwrap();
    assert_eq!(identity.email, None);
    assert!(!identity.email_verified);
}

#[tokio::test]
async fn the_email_comes_from_userinfo_when_the_id_token_lacks_it() {
    let idp = idp().await;
    idp.peer
        .set_account(json!({"email": "cy@example.com", "email_verified": true, "name": "Cy"}))
        .await
        .unwrap();
    // The ID token says "unverified" but has no address: the address and its flag are read
    // together from userinfo, which says verified.
    idp.peer
        .inject_next_id_token(
            json!({"remove": ["email", "name"], "set": {"email_verified": false}}),
        )
        .await
        .unwrap();
    let identity = sign_in(&idp).await.unwrap();
    assert_eq!(identity.email.as_deref(), Some("cy@example.com"));
    assert!(identity.email_verified, "the flag comes with the address");
    assert_eq!(identity.attributes["name"], ["Cy"]);
    assert_eq!(identity.attributes["email_verified"], ["true"]);
}

#[tokio::test]
async fn the_email_claim_is_configurable() {
    let mut idp = idp().await;
    idp.settings.email_claim = "upn".to_owned();
    idp.peer
        .inject_next_id_token(json!({"set": {"upn": "dee@corp.example", "groups": ["eng", "ops"]}}))
        .await
        .unwrap();
    let identity = sign_in(&idp).await.unwrap();
    assert_eq!(identity.email.as_deref(), Some("dee@corp.example"));
    assert_eq!(identity.attributes["groups"], ["eng", "ops"]);
    assert_eq!(identity.attributes["upn"], ["dee@corp.example"]);

    idp.peer
        .inject_next_id_token(json!({"set": {"upn": {"not": "a text"}}}))
        .await
        .unwrap();
    assert_eq!(
        sign_in(&idp).await.unwrap_err().reason,
        RefusalReason::Email
    );
}

#[tokio::test]
async fn a_wrong_state_is_an_unknown_request() {
    let idp = idp().await;
    let (pending, code, state) = authorize(&idp, &idp.settings).await;
    let mut other = state.clone();
    other.replace_range(0..1, if state.starts_with('A') { "B" } else { "A" });
    for returned in [other.as_str(), "", &"x".repeat(10_000)] {
        let refused = oidc::finish(
            &idp.provider,
            &idp.settings,
            &redirect(),
            &pending,
            returned,
            &code,
            now(),
        )
        .await
        .unwrap_err();
        assert_eq!(refused.reason, RefusalReason::UnknownRequest);
    }
    // The code was not spent: the right state still signs in.
    oidc::finish(
        &idp.provider,
        &idp.settings,
        &redirect(),
        &pending,
        &state,
        &code,
        now(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_wrong_nonce_is_refused() {
    assert_eq!(
        refused_with(json!({"nonce": "another-sign-in"})).await,
        RefusalReason::Nonce
    );
    assert_eq!(
        refused_with(json!({"remove": ["nonce"]})).await,
        RefusalReason::Nonce
    );
}

#[tokio::test]
async fn a_pending_request_of_another_sign_in_fails_on_the_nonce() {
    let idp = idp().await;
    let (pending, code, state) = authorize(&idp, &idp.settings).await;
    // Same state and verifier, but another sign-in's nonce (as if two were mixed up).
    let (_, other) = oidc::begin(&idp.provider, &idp.settings, &redirect()).unwrap();
    let mixed = Pending::from_parts(
        pending.state().to_owned(),
        other.nonce().to_owned(),
        pending.pkce_verifier().to_owned(),
    );
    let refused = oidc::finish(
        &idp.provider,
        &idp.settings,
        &redirect(),
        &mixed,
        &state,
        &code,
        now(),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.reason, RefusalReason::Nonce);
}

#[tokio::test]
async fn an_id_token_for_another_client_is_refused() {
    let idp = idp().await;
    let (other_client, _) = idp.peer.second_client();
    for change in [
        json!({"aud": other_client}),
        json!({"aud": [other_client], "azp": other_client}),
    ] {
        idp.peer.inject_next_id_token(change).await.unwrap();
        let refused = sign_in(&idp).await.unwrap_err();
        assert_eq!(refused.reason, RefusalReason::Audience);
        assert!(!refused.detail.contains(&other_client));
    }
}

#[tokio::test]
async fn an_id_token_shared_with_another_client_or_authorized_for_it_is_refused() {
    let idp = idp().await;
    let ours = idp.peer.client_id.clone();
    let (theirs, _) = idp.peer.second_client();
    idp.peer
        .inject_next_id_token(json!({"aud": [ours, theirs]}))
        .await
        .unwrap();
    assert_eq!(
        sign_in(&idp).await.unwrap_err().reason,
        RefusalReason::Audience
    );
    idp.peer
        .inject_next_id_token(json!({"azp": theirs}))
        .await
        .unwrap();
    assert_eq!(
        sign_in(&idp).await.unwrap_err().reason,
        RefusalReason::Audience
    );
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    assert_eq!(
        refused_with(json!({"exp_offset_secs": -3600})).await,
        RefusalReason::Expired
    );
    // The check uses the `now` it is given: two hours on, the peer's one-hour token is expired.
    let idp = idp().await;
    let (pending, code, state) = authorize(&idp, &idp.settings).await;
    let later = now() + time::Duration::hours(2);
    let refused = oidc::finish(
        &idp.provider,
        &idp.settings,
        &redirect(),
        &pending,
        &state,
        &code,
        later,
    )
    .await
    .unwrap_err();
    assert_eq!(refused.reason, RefusalReason::Expired);
}

#[tokio::test]
async fn a_broken_signature_is_refused() {
    assert_eq!(
        refused_with(json!({"break_signature": true})).await,
        RefusalReason::Signature
    );
    // Validly signed, but bound to another access token.
    assert_eq!(
        refused_with(json!({"set": {"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}})).await,
        RefusalReason::Signature
    );
}

#[tokio::test]
async fn an_id_token_from_another_issuer_is_refused() {
    assert_eq!(
        refused_with(json!({"iss": "https://idp.example"})).await,
        RefusalReason::Issuer
    );
}

#[tokio::test]
async fn the_token_endpoint_refuses_a_code_issued_to_another_client() {
    let idp = idp().await;
    let (client2, secret2) = idp.peer.second_client();
    let other_org = settings_for(&idp.peer, &client2, &secret2);
    // A sign-in at the other organization's client, its code brought to this one.
    let (pending, code, state) = authorize(&idp, &other_org).await;
    let refused = oidc::finish(
        &idp.provider,
        &idp.settings,
        &redirect(),
        &pending,
        &state,
        &code,
        now(),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.reason, RefusalReason::Exchange);
    assert!(
        refused.detail.contains("invalid_grant"),
        "{}",
        refused.detail
    );

    // The other client itself signs in fine, and its identity is its own.
    let (pending, code, state) = authorize(&idp, &other_org).await;
    let identity = oidc::finish(
        &idp.provider,
        &other_org,
        &redirect(),
        &pending,
        &state,
        &code,
        now(),
    )
    .await
    .unwrap();
    assert_eq!(identity.subject, "test-user");

    // A wrong client secret is refused too.
    let mut wrong_secret = idp.settings.clone();
    wrong_secret.client_secret = Some(Secret::new("not-the-secret".to_owned()));
    let (pending, code, state) = authorize(&idp, &idp.settings).await;
    let refused = oidc::finish(
        &idp.provider,
        &wrong_secret,
        &redirect(),
        &pending,
        &state,
        &code,
        now(),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.reason, RefusalReason::Exchange);
    assert!(!refused.detail.contains("not-the-secret"));
}

#[tokio::test]
async fn discovery_names_the_issuer_mismatch() {
    let idp = idp().await;
    let mut slash = idp.settings.clone();
    slash.issuer = Issuer::parse(&format!("{}/", idp.peer.issuer)).unwrap();
    let err = oidc::discover(&loopback(), &slash).await.unwrap_err();
    assert_eq!(err, OidcError::IssuerMismatch);
    assert_eq!(err.field(), "issuer");
}

#[tokio::test]
async fn discovery_of_a_url_that_is_not_a_provider_says_so() {
    let idp = idp().await;
    // The peer's API: answers 401 JSON at any path under /api.
    let mut api = idp.settings.clone();
    api.issuer = Issuer::parse(&idp.peer.api).unwrap();
    let err = oidc::discover(&loopback(), &api).await.unwrap_err();
    assert!(
        matches!(&err, OidcError::Invalid { detail, .. } if detail.contains("HTTP 401")),
        "{err}"
    );

    // A web server that answers 200 with something else than a discovery document.
    for (content_type, body, expected) in [
        ("text/html", "<html>hello</html>", "not JSON"),
        ("application/json", "{\"hello\": 1}", "`issuer` is missing"),
        ("application/json", "[1, 2]", "not a JSON object"),
    ] {
        let issuer = serve_one_answer(content_type, move |_| body.to_owned()).await;
        let mut other = idp.settings.clone();
        other.issuer = Issuer::parse(&issuer).unwrap();
        let err = oidc::discover(&loopback(), &other).await.unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, OidcError::Invalid { .. }) && message.contains(expected),
            "{content_type} {body}: {message}"
        );
        assert!(!message.contains("hello"));
    }

    // Discovery documents of providers this hub cannot use safely.
    let document = |base: &str, endpoint: &str, algorithm: &str| {
        json!({
            "issuer": base,
            "authorization_endpoint": endpoint,
            "token_endpoint": format!("{base}/token"),
            "jwks_uri": format!("{base}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [algorithm],
        })
        .to_string()
    };
    let plain_http = serve_one_answer("application/json", move |base| {
        document(base, "http://idp.example/auth", "RS256")
    })
    .await;
    let mut other = idp.settings.clone();
    other.issuer = Issuer::parse(&plain_http).unwrap();
    let err = oidc::discover(&loopback(), &other).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("`authorization_endpoint` is not an https URL"),
        "{err}"
    );
    let symmetric = serve_one_answer("application/json", move |base| {
        document(base, &format!("{base}/auth"), "HS256")
    })
    .await;
    other.issuer = Issuer::parse(&symmetric).unwrap();
    let err = oidc::discover(&loopback(), &other).await.unwrap_err();
    assert!(matches!(err, OidcError::Unsupported(_)), "{err}");
}

#[tokio::test]
async fn discovery_of_an_unreachable_issuer_says_so() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let settings = OidcSettings::new(
        Issuer::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        "client".to_owned(),
        None,
    );
    let err = oidc::discover(&loopback(), &settings).await.unwrap_err();
    assert!(
        matches!(&err, OidcError::Unreachable { detail, .. } if detail.contains("cannot connect")),
        "{err}"
    );
}

#[tokio::test]
async fn an_issuer_outside_the_egress_policy_is_refused_before_any_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    for issuer in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ] {
        let settings = OidcSettings::new(Issuer::parse(&issuer).unwrap(), "c".to_owned(), None);
        // The default policy: public addresses only.
        let public_only = Context::new(EgressPolicy::default(), None);
        let err = oidc::discover(&public_only, &settings).await.unwrap_err();
        assert_eq!(err, OidcError::Egress, "{issuer}");
        assert!(err.to_string().contains("egress policy"));
    }
    let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
    assert!(accepted.is_err(), "no connection was made");
}

#[tokio::test]
async fn settings_are_checked_and_keep_their_secret_to_themselves() {
    for (text, ok) in [
        ("https://idp.example", true),
        ("https://idp.example/", true),
        ("https://idp.example/realms/x", true),
        ("http://127.0.0.1:8080", true),
        ("http://localhost:8080", true),
        ("http://idp.example", false),
        ("ftp://idp.example", false),
        ("https://idp.example?x=1", false),
        ("https://idp.example#x", false),
        ("https://user:pw@idp.example", false),
        ("idp.example", false),
        ("", false),
    ] {
        assert_eq!(Issuer::parse(text).is_ok(), ok, "{text}");
    }
    let mut settings = OidcSettings::new(
        Issuer::parse("https://idp.example/").unwrap(),
        "client-1".to_owned(),
        Some(Secret::new("s3cret-value".to_owned())),
    );
    assert!(settings.check().is_ok());
    assert!(!format!("{settings:?}").contains("s3cret-value"));
    let stored = serde_json::to_value(&settings).unwrap();
    assert_eq!(
        stored,
        json!({
            "issuer": "https://idp.example/",
            "client_id": "client-1",
            "scopes": ["openid", "email", "profile"],
            "email_claim": "email",
        })
    );
    let back: OidcSettings = serde_json::from_value(json!({
        "issuer": "https://idp.example",
        "client_id": "client-1",
    }))
    .unwrap();
    assert_eq!(back.issuer.as_str(), "https://idp.example");
    assert_eq!(back.email_claim, "email");
    assert!(back.client_secret.is_none());
    assert!(
        serde_json::from_value::<OidcSettings>(
            json!({"issuer": "http://idp.example", "client_id": "c"})
        )
        .is_err()
    );

    settings.scopes = vec!["openid".to_owned(), "bad scope".to_owned()];
    assert_eq!(settings.check().unwrap_err().field(), "scopes");
    settings.scopes = vec!["email".to_owned()];
    settings.email_claim = String::new();
    assert_eq!(settings.check().unwrap_err().field(), "email_claim");
    settings.email_claim = "email".to_owned();
    settings.client_id = String::new();
    assert_eq!(settings.check().unwrap_err().field(), "client_id");
}

#[tokio::test]
async fn an_error_at_the_callback_is_denied_naming_standard_codes_only() {
    let refused = oidc::provider_error("access_denied");
    assert_eq!(refused.reason, RefusalReason::Denied);
    assert!(refused.detail.contains("access_denied"));
    let refused = oidc::provider_error("<script>ann@example.com");
    assert_eq!(refused.reason, RefusalReason::Denied);
    assert!(!refused.detail.contains("ann@example.com"));
}

/// A loopback HTTP server that answers every request with `200`, `content_type` and the body
/// `body(base URL)`: a web server that is not (quite) an OpenID provider. Answers its base URL.
async fn serve_one_answer(
    content_type: &'static str,
    body: impl Fn(&str) -> String + Send + 'static,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let body = body(&base);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    format!("http://127.0.0.1:{port}")
}
