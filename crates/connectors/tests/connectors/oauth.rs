//! OAuth 2.0 against a real authorization server: `oidc-provider` (tests/peers/oidc), started per
//! test on a free loopback port, with a JSON API that accepts its access tokens.

use lockstep_connectors::oauth::{self, TokenKind};
use lockstep_connectors::testing::OidcPeer;
use lockstep_connectors::{ConnectorError, Context, EgressPolicy, FailureKind, Secret};
use time::OffsetDateTime;

const REDIRECT: &str = "https://127.0.0.1:8443/api/v1/oauth/callback";

async fn peer() -> OidcPeer {
    OidcPeer::start(&[REDIRECT], 60)
        .await
        .unwrap_or_else(|err| panic!("the OIDC test peer: {err}"))
}

fn loopback() -> Context {
    Context::new(EgressPolicy::parse("loopback").unwrap(), None)
}

fn secret(s: &str) -> Secret {
    Secret::new(s.to_owned())
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn failure(result: Result<impl std::fmt::Debug, ConnectorError>) -> (FailureKind, String) {
    let err = result.expect_err("the call must fail");
    (
        err.kind().expect("a failure, not a configuration error"),
        err.to_string(),
    )
}

/// Runs the authorization code flow up to the token response, as the hub and the browser do.
async fn authorize(peer: &OidcPeer, ctx: &Context) -> oauth::TokenSet {
    let state = oauth::new_state();
    let pkce = oauth::new_pkce();
    let scopes = ["openid".to_owned(), "items:read".to_owned()];
    let url = oauth::authorize_url(
        &peer.authorization_endpoint(),
        &peer.client_id,
        REDIRECT,
        &scopes,
        &state,
        &pkce,
    )
    .unwrap();
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    for (key, value) in [
        ("response_type", "code"),
        ("client_id", peer.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid items:read"),
        ("code_challenge_method", "S256"),
        ("code_challenge", pkce.challenge.as_str()),
        ("state", state.expose()),
    ] {
        assert!(
            query.contains(&(key.to_owned(), value.to_owned())),
            "{key}={value} in the authorization URL"
        );
    }

    let back = peer.approve(url.as_str(), REDIRECT).await.unwrap();
    let param = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(
        param("error"),
        None,
        "the authorization server refused: {back}"
    );
    assert_eq!(
        param("state").as_deref(),
        Some(state.expose()),
        "state comes back"
    );
    let code = param("code").expect("a code");

    let before = now();
    let tokens = oauth::exchange_code(
        ctx,
        &peer.token_endpoint(),
        &peer.client_id,
        Some(&secret(&peer.client_secret)),
        &code,
        &pkce.verifier,
        REDIRECT,
        before,
    )
    .await
    .unwrap();
    assert_eq!(
        tokens.expires_at,
        Some(before + time::Duration::seconds(60))
    );
    assert!(tokens.refresh_token.is_some(), "a refresh token");
    assert_eq!(tokens.scope.as_deref(), Some("openid items:read"));
    tokens
}

async fn api_status(peer: &OidcPeer, token: &Secret) -> u16 {
    peer.api_get("/items", token.expose()).await.unwrap().0
}

#[tokio::test]
async fn client_credentials_token_opens_the_api() {
    let peer = peer().await;
    let before = now();
    let tokens = oauth::client_credentials(
        &loopback(),
        &peer.token_endpoint(),
        &peer.cc_client_id,
        Some(&secret(&peer.cc_client_secret)),
        &["items:read".to_owned()],
        before,
    )
    .await
    .unwrap();
    assert_eq!(
        tokens.expires_at,
        Some(before + time::Duration::seconds(60))
    );
    assert_eq!(tokens.scope.as_deref(), Some("items:read"));
    assert!(tokens.refresh_token.is_none());
    assert!(!format!("{tokens:?}").contains(tokens.access_token.expose()));

    let (status, body) = peer
        .api_get("/items", tokens.access_token.expose())
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["data"].as_array().map(Vec::len), Some(45));
    let (status, body) = peer
        .api_get("/cursor/items", tokens.access_token.expose())
        .await
        .unwrap();
    assert_eq!(
        (status, body["items"].as_array().map(Vec::len)),
        (200, Some(10))
    );

    let (status, body) = peer.api_get("/items", "not-a-token").await.unwrap();
    assert_eq!(status, 401);
    assert_eq!(body, serde_json::json!({"error": "invalid_token"}));
}

#[tokio::test]
async fn expired_access_token_is_refused_by_the_api() {
    let peer = OidcPeer::start(&[REDIRECT], 1).await.unwrap();
    let tokens = oauth::client_credentials(
        &loopback(),
        &peer.token_endpoint(),
        &peer.cc_client_id,
        Some(&secret(&peer.cc_client_secret)),
        &[],
        now(),
    )
    .await
    .unwrap();
    assert!(
        tokens
            .expires_at
            .is_some_and(|at| at <= now() + time::Duration::seconds(1))
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(api_status(&peer, &tokens.access_token).await, 401);
}

#[tokio::test]
async fn wrong_client_secret_is_an_authentication_failure() {
    let peer = peer().await;
    let wrong = "wrong-secret-0123456789";
    let (kind, message) = failure(
        oauth::client_credentials(
            &loopback(),
            &peer.token_endpoint(),
            &peer.cc_client_id,
            Some(&secret(wrong)),
            &[],
            now(),
        )
        .await,
    );
    assert_eq!(kind, FailureKind::Authentication);
    assert!(message.contains("invalid_client"), "{message}");
    assert!(!message.contains(wrong) && !message.contains(&peer.cc_client_secret));
    assert!(
        !message.contains("127.0.0.1"),
        "no URL in messages: {message}"
    );

    // A confidential client that sends no secret at all.
    let (kind, _) = failure(
        oauth::client_credentials(
            &loopback(),
            &peer.token_endpoint(),
            &peer.cc_client_id,
            None,
            &[],
            now(),
        )
        .await,
    );
    assert_eq!(kind, FailureKind::Authentication);
}

#[tokio::test]
async fn authorization_code_with_pkce_refresh_and_revocation() {
    let peer = peer().await;
    let ctx = loopback();
    let client_secret = secret(&peer.client_secret);
    let tokens = authorize(&peer, &ctx).await;
    assert_eq!(api_status(&peer, &tokens.access_token).await, 200);
    let first_refresh = tokens.refresh_token.clone().unwrap();

    // Refresh: a new access token that works, and (the peer rotates them) a new refresh token.
    let refreshed = oauth::refresh(
        &ctx,
        &peer.token_endpoint(),
        &peer.client_id,
        Some(&client_secret),
        &first_refresh,
        now(),
    )
    .await
    .unwrap();
    assert_ne!(refreshed.access_token, tokens.access_token);
    assert!(refreshed.expires_at.is_some());
    assert_eq!(api_status(&peer, &refreshed.access_token).await, 200);
    let refresh_token = refreshed.refresh_token.clone().unwrap();
    assert_ne!(
        refresh_token, first_refresh,
        "the peer rotates refresh tokens"
    );

    // Revoking the refresh token: refresh with it fails. (oidc-provider also drops the grant's
    // access tokens.)
    oauth::revoke(
        &ctx,
        &peer.revocation_endpoint(),
        &peer.client_id,
        Some(&client_secret),
        &refresh_token,
        TokenKind::RefreshToken,
    )
    .await
    .unwrap();
    let (kind, message) = failure(
        oauth::refresh(
            &ctx,
            &peer.token_endpoint(),
            &peer.client_id,
            Some(&client_secret),
            &refresh_token,
            now(),
        )
        .await,
    );
    assert_eq!(kind, FailureKind::Authentication, "{message}");
    assert_eq!(
        message,
        "the authorization server refused the request (invalid_grant)"
    );
    assert!(!message.contains(refresh_token.expose()));
    assert_eq!(api_status(&peer, &refreshed.access_token).await, 401);

    // Revoking an access token (of a second authorization, so that nothing else explains the
    // 401): the API refuses it at once. (oidc-provider also drops the grant's refresh tokens.)
    let second = authorize(&peer, &ctx).await;
    assert_eq!(api_status(&peer, &second.access_token).await, 200);
    oauth::revoke(
        &ctx,
        &peer.revocation_endpoint(),
        &peer.client_id,
        Some(&client_secret),
        &second.access_token,
        TokenKind::AccessToken,
    )
    .await
    .unwrap();
    assert_eq!(api_status(&peer, &second.access_token).await, 401);

    // Revoking a token the server no longer knows still succeeds (RFC 7009 §2.2).
    oauth::revoke(
        &ctx,
        &peer.revocation_endpoint(),
        &peer.client_id,
        Some(&client_secret),
        &refresh_token,
        TokenKind::RefreshToken,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn wrong_pkce_verifier_is_an_authentication_failure() {
    let peer = peer().await;
    let state = oauth::new_state();
    let pkce = oauth::new_pkce();
    let url = oauth::authorize_url(
        &peer.authorization_endpoint(),
        &peer.client_id,
        REDIRECT,
        &["openid".to_owned()],
        &state,
        &pkce,
    )
    .unwrap();
    let back = peer.approve(url.as_str(), REDIRECT).await.unwrap();
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let other = oauth::new_pkce();
    let (kind, message) = failure(
        oauth::exchange_code(
            &loopback(),
            &peer.token_endpoint(),
            &peer.client_id,
            Some(&secret(&peer.client_secret)),
            &code,
            &other.verifier,
            REDIRECT,
            now(),
        )
        .await,
    );
    assert_eq!(kind, FailureKind::Authentication, "{message}");
    assert!(message.contains("invalid_grant"), "{message}");
    for leaked in [
        code.as_str(),
        other.verifier.expose(),
        pkce.verifier.expose(),
        &peer.client_secret,
    ] {
        assert!(!message.contains(leaked), "{message}");
    }
}

#[tokio::test]
async fn default_egress_policy_refuses_the_loopback_token_endpoint() {
    let peer = peer().await;
    let public_only = Context::new(EgressPolicy::default(), None);
    let cc_secret = secret(&peer.cc_client_secret);
    // An IP literal (checked before the request) and a name (checked when it resolves).
    let by_name = peer.token_endpoint().replace("127.0.0.1", "localhost");
    for token_url in [peer.token_endpoint(), by_name] {
        let (kind, message) = failure(
            oauth::client_credentials(
                &public_only,
                &token_url,
                &peer.cc_client_id,
                Some(&cc_secret),
                &[],
                now(),
            )
            .await,
        );
        assert_eq!(kind, FailureKind::Policy, "{token_url}: {message}");
    }
    let (kind, _) = failure(
        oauth::revoke(
            &public_only,
            &peer.revocation_endpoint(),
            &peer.cc_client_id,
            Some(&cc_secret),
            &secret("token"),
            TokenKind::AccessToken,
        )
        .await,
    );
    assert_eq!(kind, FailureKind::Policy);
}

#[tokio::test]
async fn nothing_listening_is_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let (kind, message) = failure(
        oauth::client_credentials(
            &loopback(),
            &format!("http://127.0.0.1:{port}/token"),
            "client",
            Some(&secret("s3cret")),
            &[],
            now(),
        )
        .await,
    );
    assert_eq!(kind, FailureKind::Refused, "{message}");
    assert!(
        !message.contains(&port.to_string()),
        "no URL in messages: {message}"
    );
}

#[test]
fn bad_urls_are_configuration_errors() {
    let pkce = oauth::new_pkce();
    let state = oauth::new_state();
    let err = oauth::authorize_url("not a url", "c", REDIRECT, &[], &state, &pkce).unwrap_err();
    assert!(
        matches!(&err, ConnectorError::Config { field, .. } if field == "config.auth.authorize_url")
    );
    let err = oauth::authorize_url(
        "https://a.example/auth",
        "c",
        "ftp://x/cb",
        &[],
        &state,
        &pkce,
    )
    .unwrap_err();
    assert!(matches!(&err, ConnectorError::Config { field, .. } if field == "redirect_uri"));
}

/// A stand-in authorization server answering every POST with `status`, `content_type` and
/// `body`; answers its base URL.
async fn fixed_answer(status: u16, content_type: &'static str, body: &'static str) -> String {
    let app = axum::Router::new().fallback(move || async move {
        (
            axum::http::StatusCode::from_u16(status).unwrap(),
            [(axum::http::header::CONTENT_TYPE, content_type)],
            body,
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn revocation_answers_by_status() {
    let ctx = loopback();
    let token = secret("tok");
    let ok = fixed_answer(200, "text/html", "<html>whatever</html>").await;
    oauth::revoke(
        &ctx,
        &format!("{ok}/revoke"),
        "c",
        None,
        &token,
        TokenKind::RefreshToken,
    )
    .await
    .unwrap();
    let down = fixed_answer(503, "text/plain", "busy").await;
    let (kind, message) = failure(
        oauth::revoke(
            &ctx,
            &format!("{down}/revoke"),
            "c",
            Some(&secret("s")),
            &token,
            TokenKind::AccessToken,
        )
        .await,
    );
    assert_eq!(kind, FailureKind::Other, "{message}");
    let refused = fixed_answer(401, "application/json", r#"{"error":"invalid_client"}"#).await;
    let (kind, message) = failure(
        oauth::revoke(
            &ctx,
            &format!("{refused}/revoke"),
            "c",
            Some(&secret("s")),
            &token,
            TokenKind::AccessToken,
        )
        .await,
    );
    assert_eq!(
        (kind, message.contains("invalid_client")),
        (FailureKind::Authentication, true)
    );
}

#[tokio::test]
async fn malformed_token_answers_are_protocol_failures() {
    let ctx = loopback();
    for (status, content_type, body) in [
        (200, "text/html", "<html>login</html>"),
        (200, "application/json", r#"{"token_type":"Bearer"}"#),
        (
            200,
            "application/json",
            r#"{"access_token":"a","token_type":"mac"}"#,
        ),
        (400, "text/html", "<html>oops</html>"),
    ] {
        let server = fixed_answer(status, content_type, body).await;
        let (kind, message) = failure(
            oauth::client_credentials(
                &ctx,
                &format!("{server}/token"),
                "c",
                Some(&secret("s")),
                &[],
                now(),
            )
            .await,
        );
        assert_eq!(kind, FailureKind::Protocol, "{status} {body}: {message}");
    }
    let server = fixed_answer(500, "text/html", "down").await;
    let (kind, _) = failure(
        oauth::client_credentials(&ctx, &format!("{server}/token"), "c", None, &[], now()).await,
    );
    assert_eq!(kind, FailureKind::Other);
    // A bare 401 without an OAuth body still means the credentials were refused.
    let server = fixed_answer(401, "text/plain", "").await;
    let (kind, _) = failure(
        oauth::client_credentials(
            &ctx,
            &format!("{server}/token"),
            "c",
            Some(&secret("s")),
            &[],
            now(),
        )
        .await,
    );
    assert_eq!(kind, FailureKind::Authentication);
}
