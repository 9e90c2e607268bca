//! OAuth 2.0 for `rest` connections: authorization code with PKCE, refresh, client credentials
//! and revocation, over the egress-checked HTTP client.
//!
//! Requests and responses are built and parsed by the `oauth2` crate, which talks HTTP through a
//! small adapter around [`EgressPolicy::http_client`](crate::EgressPolicy::http_client): every
//! request's URL is checked against the policy first, names resolve through it, and redirects
//! are checked before they are followed. Revocation (RFC 7009) is written here by hand because
//! the crate insists on an `https` revocation endpoint (the connection's configuration decides
//! which schemes are acceptable, not this module).
//!
//! Clients authenticate with `client_secret_basic` when they have a secret and send only their
//! `client_id` in the body when they have none (public clients, PKCE).
//!
//! Error messages name the standard OAuth error code the server answered, or the HTTP status —
//! never the code, the verifier, a secret, a token or a URL.

use crate::config::check_http_url;
use crate::{ConnectorError, Context, FailureKind, Secret};
use base64::Engine as _;
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenType};
use oauth2::{
    AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointNotSet, EndpointSet, HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};
use time::OffsetDateTime;

/// The most bytes read from a token or revocation endpoint's answer.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// What a token endpoint answered. `Debug` shows no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: Secret,
    /// After [`refresh`], the new refresh token, or the one that was used when the server did
    /// not answer a new one (RFC 6749 §6: the client keeps using it).
    pub refresh_token: Option<Secret>,
    /// `now + expires_in` when the server said `expires_in`.
    pub expires_at: Option<OffsetDateTime>,
    /// The granted scopes (space-separated) when the server said them.
    pub scope: Option<String>,
}

/// A PKCE pair (RFC 7636, `S256`): the verifier stays with the hub until the code is exchanged,
/// the challenge goes into the authorization URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkce {
    pub verifier: Secret,
    pub challenge: String,
}

/// A new PKCE pair: a verifier of 32 random bytes (43 URL-safe characters) and its `S256`
/// challenge.
pub fn new_pkce() -> Pkce {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    Pkce {
        verifier: Secret::new(verifier.into_secret()),
        challenge: challenge.as_str().to_owned(),
    }
}

/// A new `state` value: 32 random bytes, base64url without padding.
pub fn new_state() -> Secret {
    Secret::new(CsrfToken::new_random_len(32).into_secret())
}

/// The URL to send the user's browser to: `response_type=code`, the client, the redirect URI,
/// the scopes, `state` and the PKCE challenge (`S256`, computed from `pkce.verifier`). Query
/// parameters already in `authorize_url` are kept.
pub fn authorize_url(
    authorize_url: &str,
    client_id: &str,
    redirect_uri: &str,
    scopes: &[String],
    state: &Secret,
    pkce: &Pkce,
) -> Result<url::Url, ConnectorError> {
    let auth_url = AuthUrl::from_url(check_http_url("config.auth.authorize_url", authorize_url)?);
    let redirect = RedirectUrl::from_url(check_http_url("redirect_uri", redirect_uri)?);
    let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
        pkce.verifier.expose().to_owned(),
    ));
    let client = BasicClient::new(ClientId::new(client_id.to_owned()))
        .set_auth_uri(auth_url)
        .set_redirect_uri(redirect);
    let (url, _) = client
        .authorize_url(|| CsrfToken::new(state.expose().to_owned()))
        .add_scopes(scopes.iter().map(|s| Scope::new(s.clone())))
        .set_pkce_challenge(challenge)
        .url();
    Ok(url)
}

/// Exchanges an authorization code (RFC 6749 §4.1.3) with its PKCE verifier.
#[allow(clippy::too_many_arguments)]
pub async fn exchange_code(
    ctx: &Context,
    token_url: &str,
    client_id: &str,
    client_secret: Option<&Secret>,
    code: &str,
    verifier: &Secret,
    redirect_uri: &str,
    now: OffsetDateTime,
) -> Result<TokenSet, ConnectorError> {
    let client = token_client(token_url, client_id, client_secret)?;
    let redirect = RedirectUrl::from_url(check_http_url("redirect_uri", redirect_uri)?);
    let http = EgressHttp::new(ctx)?;
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().to_owned()))
        .set_redirect_uri(std::borrow::Cow::Owned(redirect))
        .request_async(&http)
        .await
        .map_err(|err| token_error(err, http.status()))?;
    token_set(&response, now, None)
}

/// Gets a new access token with a refresh token (RFC 6749 §6).
pub async fn refresh(
    ctx: &Context,
    token_url: &str,
    client_id: &str,
    client_secret: Option<&Secret>,
    refresh_token: &Secret,
    now: OffsetDateTime,
) -> Result<TokenSet, ConnectorError> {
    let client = token_client(token_url, client_id, client_secret)?;
    let http = EgressHttp::new(ctx)?;
    let token = RefreshToken::new(refresh_token.expose().to_owned());
    let response = client
        .exchange_refresh_token(&token)
        .request_async(&http)
        .await
        .map_err(|err| token_error(err, http.status()))?;
    token_set(&response, now, Some(refresh_token))
}

/// Gets an access token for the client itself (RFC 6749 §4.4).
pub async fn client_credentials(
    ctx: &Context,
    token_url: &str,
    client_id: &str,
    client_secret: Option<&Secret>,
    scopes: &[String],
    now: OffsetDateTime,
) -> Result<TokenSet, ConnectorError> {
    let client = token_client(token_url, client_id, client_secret)?;
    let http = EgressHttp::new(ctx)?;
    let response = client
        .exchange_client_credentials()
        .add_scopes(scopes.iter().map(|s| Scope::new(s.clone())))
        .request_async(&http)
        .await
        .map_err(|err| token_error(err, http.status()))?;
    token_set(&response, now, None)
}

/// Which token [`revoke`] revokes (sent as `token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    AccessToken,
    RefreshToken,
}

impl TokenKind {
    fn hint(self) -> &'static str {
        match self {
            TokenKind::AccessToken => "access_token",
            TokenKind::RefreshToken => "refresh_token",
        }
    }
}

/// Revokes a token (RFC 7009). The server answers 200 whether or not it knew the token.
pub async fn revoke(
    ctx: &Context,
    revocation_url: &str,
    client_id: &str,
    client_secret: Option<&Secret>,
    token: &Secret,
    kind: TokenKind,
) -> Result<(), ConnectorError> {
    let request = revocation_request(revocation_url, client_id, client_secret, token, kind)?;
    let response = EgressHttp::new(ctx)?.send(request).await?;
    let status = response.status();
    if status == http::StatusCode::OK {
        return Ok(());
    }
    let code = serde_json::from_slice::<BasicErrorResponse>(response.body())
        .ok()
        .map(|e| e.error().as_ref().to_owned());
    Err(server_refusal(
        "the revocation endpoint",
        status,
        code.as_deref(),
    ))
}

/// The RFC 7009 request: `token` and `token_type_hint` in a form body, the client authenticated
/// with Basic (or named in the body when it has no secret).
fn revocation_request(
    revocation_url: &str,
    client_id: &str,
    client_secret: Option<&Secret>,
    token: &Secret,
    kind: TokenKind,
) -> Result<HttpRequest, ConnectorError> {
    let url = check_http_url("config.auth.revocation_url", revocation_url)?;
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("token", token.expose())
        .append_pair("token_type_hint", kind.hint());
    let mut request = http::Request::builder()
        .method(http::Method::POST)
        .uri(url.as_str())
        .header(http::header::ACCEPT, "application/json")
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
    match client_secret {
        Some(secret) => {
            // RFC 6749 §2.3.1: each part form-encoded before Basic encoding.
            let id: String = url::form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
            let secret: String =
                url::form_urlencoded::byte_serialize(secret.expose().as_bytes()).collect();
            let value = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
            );
            let mut header = http::HeaderValue::from_str(&value).map_err(|_| {
                ConnectorError::config("config.auth.client_id", "contains invalid characters")
            })?;
            header.set_sensitive(true);
            request = request.header(http::header::AUTHORIZATION, header);
        }
        None => {
            form.append_pair("client_id", client_id);
        }
    }
    request
        .body(form.finish().into_bytes())
        .map_err(|_| ConnectorError::config("config.auth.revocation_url", "is not a valid URL"))
}

type Oauth2Client =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn token_client(
    token_url: &str,
    client_id: &str,
    client_secret: Option<&Secret>,
) -> Result<Oauth2Client, ConnectorError> {
    let token_url = TokenUrl::from_url(check_http_url("config.auth.token_url", token_url)?);
    let client = BasicClient::new(ClientId::new(client_id.to_owned()))
        .set_token_uri(token_url)
        .set_auth_type(AuthType::BasicAuth);
    Ok(match client_secret {
        Some(secret) => client.set_client_secret(ClientSecret::new(secret.expose().to_owned())),
        None => client,
    })
}

fn token_set<R>(
    response: &R,
    now: OffsetDateTime,
    used_refresh_token: Option<&Secret>,
) -> Result<TokenSet, ConnectorError>
where
    R: TokenResponse<TokenType = BasicTokenType>,
{
    if *response.token_type() != BasicTokenType::Bearer {
        return Err(ConnectorError::failed(
            FailureKind::Protocol,
            "the authorization server answered a token that is not a Bearer token",
        ));
    }
    if response.access_token().secret().is_empty() {
        return Err(ConnectorError::failed(
            FailureKind::Protocol,
            "the authorization server answered an empty access token",
        ));
    }
    let expires_at = match response.expires_in() {
        None => None,
        Some(lifetime) => Some(
            time::Duration::try_from(lifetime)
                .ok()
                .and_then(|lifetime| now.checked_add(lifetime))
                .ok_or_else(|| {
                    ConnectorError::failed(
                        FailureKind::Protocol,
                        "the authorization server answered an impossible token lifetime",
                    )
                })?,
        ),
    };
    let refresh_token = response
        .refresh_token()
        .map(|t| Secret::new(t.secret().clone()))
        .or_else(|| used_refresh_token.cloned());
    let scope = response.scopes().map(|scopes| {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    });
    Ok(TokenSet {
        access_token: Secret::new(response.access_token().secret().clone()),
        refresh_token,
        expires_at,
        scope,
    })
}

/// Maps what `oauth2` reports for a token request.
fn token_error(
    err: RequestTokenError<ConnectorError, BasicErrorResponse>,
    status: Option<http::StatusCode>,
) -> ConnectorError {
    let status = status.unwrap_or(http::StatusCode::OK);
    match err {
        RequestTokenError::Request(err) => err,
        RequestTokenError::ServerResponse(response) => server_refusal(
            "the authorization server",
            status,
            Some(response.error().as_ref()),
        ),
        RequestTokenError::Parse(..) | RequestTokenError::Other(_) => {
            if status == http::StatusCode::OK {
                ConnectorError::failed(
                    FailureKind::Protocol,
                    "the authorization server's answer is not a valid token response",
                )
            } else {
                server_refusal("the authorization server", status, None)
            }
        }
    }
}

/// The standard error codes (RFC 6749, 6750, 7009, 8628, 8707, 9449): only these are named in
/// messages, as the server chooses the string.
const KNOWN_CODES: &[&str] = &[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "unsupported_response_type",
    "invalid_scope",
    "access_denied",
    "server_error",
    "temporarily_unavailable",
    "unsupported_token_type",
    "invalid_token",
    "insufficient_scope",
    "invalid_target",
    "authorization_pending",
    "slow_down",
    "expired_token",
    "invalid_dpop_proof",
    "use_dpop_nonce",
];

/// An error answer from `who`, by OAuth error code and HTTP status.
fn server_refusal(who: &str, status: http::StatusCode, code: Option<&str>) -> ConnectorError {
    let code = code.and_then(|c| KNOWN_CODES.iter().find(|known| **known == c).copied());
    let kind = match code {
        Some("invalid_grant" | "invalid_client" | "unauthorized_client" | "access_denied") => {
            FailureKind::Authentication
        }
        _ if status == http::StatusCode::UNAUTHORIZED || status == http::StatusCode::FORBIDDEN => {
            FailureKind::Authentication
        }
        Some("temporarily_unavailable" | "server_error") => FailureKind::Other,
        _ if status.is_server_error() => FailureKind::Other,
        _ => FailureKind::Protocol,
    };
    let message = match (kind, code) {
        (FailureKind::Authentication, Some(code)) => {
            format!("{who} refused the request ({code})")
        }
        (FailureKind::Authentication, None) => {
            format!("{who} refused the request (HTTP {})", status.as_u16())
        }
        (FailureKind::Other, Some(code)) => {
            format!("{who} is unavailable (HTTP {}, {code})", status.as_u16())
        }
        (FailureKind::Other, None) => format!("{who} is unavailable (HTTP {})", status.as_u16()),
        (_, Some(code)) => format!("{who} rejected the request ({code})"),
        (_, None) => format!(
            "{who} answered HTTP {} without an OAuth error",
            status.as_u16()
        ),
    };
    ConnectorError::failed(kind, message)
}

/// `oauth2`'s (and `openidconnect`'s) HTTP client: the egress-checked reqwest client, with
/// the context's timeout and answers cut at 1 MiB. Remembers the last answer's status so that
/// errors without an OAuth body can still say what happened.
#[derive(Debug)]
pub struct EgressHttp<'a> {
    ctx: &'a Context,
    client: reqwest::Client,
    status: AtomicU16,
}

impl<'a> EgressHttp<'a> {
    /// A client that obeys `ctx.egress` and `ctx.timeout`.
    pub fn new(ctx: &'a Context) -> Result<Self, ConnectorError> {
        // reqwest is built without a default crypto provider; ring is the workspace's.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(EgressHttp {
            ctx,
            client: ctx.egress.http_client(ctx.timeout)?,
            status: AtomicU16::new(0),
        })
    }

    /// The HTTP status of the last answer, if there was one.
    pub fn status(&self) -> Option<http::StatusCode> {
        http::StatusCode::from_u16(self.status.load(Ordering::Relaxed)).ok()
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, ConnectorError> {
        let request = reqwest::Request::try_from(request).map_err(|_| {
            ConnectorError::failed(FailureKind::Other, "cannot build the HTTP request")
        })?;
        if !matches!(request.url().scheme(), "http" | "https") {
            return Err(ConnectorError::failed(
                FailureKind::Policy,
                "only http and https URLs can be used",
            ));
        }
        self.ctx.egress.check_url(request.url())?;
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|err| http_failure(&err))?;
        let status = response.status();
        self.status.store(status.as_u16(), Ordering::Relaxed);
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| http_failure(&err))? {
            if body.len().saturating_add(chunk.len()) > MAX_RESPONSE_BYTES {
                return Err(ConnectorError::failed(
                    FailureKind::Protocol,
                    "the authorization server's answer is too large",
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = http::Response::new(body);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

impl<'c> AsyncHttpClient<'c> for EgressHttp<'_> {
    type Error = ConnectorError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, ConnectorError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// What a token request makes of the authorization server's answer `status` and `body`,
/// without HTTP (for the fuzz targets): the same parsing and checks as [`client_credentials`].
#[cfg(feature = "fuzzing")]
pub fn token_response(
    status: u16,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<TokenSet, ConnectorError> {
    use futures_util::FutureExt as _;

    /// Answers every request with the same response.
    struct Canned(HttpResponse);

    impl<'c> AsyncHttpClient<'c> for Canned {
        type Error = ConnectorError;
        type Future =
            Pin<Box<dyn Future<Output = Result<HttpResponse, ConnectorError>> + Send + 'c>>;

        fn call(&'c self, _request: HttpRequest) -> Self::Future {
            Box::pin(std::future::ready(Ok(self.0.clone())))
        }
    }

    let status = http::StatusCode::from_u16(status)
        .map_err(|_| ConnectorError::failed(FailureKind::Protocol, "not an HTTP status"))?;
    let mut response = http::Response::new(body.to_vec());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    let http = Canned(response);
    let client = token_client("https://as.invalid/token", "fuzz", None)?;
    let answer = client
        .exchange_client_credentials()
        .request_async(&http)
        .now_or_never()
        .ok_or_else(|| ConnectorError::failed(FailureKind::Other, "the parse did not finish"))?
        .map_err(|err| token_error(err, Some(status)))?;
    token_set(&answer, now, None)
}

/// What a failed HTTP exchange means, from the error's kind and its sources (never its
/// `Display`, which holds the URL).
fn http_failure(err: &reqwest::Error) -> ConnectorError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(found) = known_failure(current) {
            return found;
        }
        if let Some(inner) = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(found) = known_failure(inner)
        {
            return found;
        }
        source = current.source();
    }
    if err.is_timeout() {
        ConnectorError::failed(
            FailureKind::Timeout,
            "the authorization server did not answer in time",
        )
    } else if err.is_redirect() {
        let policy = std::iter::successors(err.source(), |e| (*e).source())
            .any(|e| e.to_string().contains("egress policy"));
        if policy {
            ConnectorError::failed(
                FailureKind::Policy,
                "the authorization server redirected to an address the egress policy does not allow",
            )
        } else {
            ConnectorError::failed(
                FailureKind::Protocol,
                "the authorization server redirected too many times",
            )
        }
    } else if err.is_connect() {
        ConnectorError::failed(
            FailureKind::Refused,
            "cannot connect to the authorization server",
        )
    } else if err.is_body() || err.is_decode() {
        ConnectorError::failed(
            FailureKind::Protocol,
            "the authorization server's answer was cut off or malformed",
        )
    } else {
        ConnectorError::failed(
            FailureKind::Other,
            "the request to the authorization server failed",
        )
    }
}

/// A failure recognised by its type: the policy's own errors (from the resolver), TLS, and I/O.
fn known_failure(err: &(dyn StdError + 'static)) -> Option<ConnectorError> {
    if let Some(ConnectorError::Failed { kind, message }) = err.downcast_ref::<ConnectorError>() {
        return Some(ConnectorError::failed(*kind, message.clone()));
    }
    if err.downcast_ref::<rustls::Error>().is_some() {
        return Some(ConnectorError::failed(
            FailureKind::Tls,
            "TLS with the authorization server failed (untrusted or mismatched certificate?)",
        ));
    }
    let io = err.downcast_ref::<std::io::Error>()?;
    match io.kind() {
        std::io::ErrorKind::ConnectionRefused => Some(ConnectorError::failed(
            FailureKind::Refused,
            "the authorization server refused the connection",
        )),
        std::io::ErrorKind::TimedOut => Some(ConnectorError::failed(
            FailureKind::Timeout,
            "the authorization server did not answer in time",
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>(_: &T) {}

    /// The server calls these from request handlers, which need `Send` futures.
    #[test]
    fn futures_are_send() {
        let ctx = Context::new(crate::EgressPolicy::default(), None);
        let secret = Secret::new("s".to_owned());
        let now = OffsetDateTime::UNIX_EPOCH;
        is_send(&client_credentials(
            &ctx,
            "https://a.example/t",
            "c",
            Some(&secret),
            &[],
            now,
        ));
        is_send(&refresh(
            &ctx,
            "https://a.example/t",
            "c",
            None,
            &secret,
            now,
        ));
        is_send(&exchange_code(
            &ctx,
            "https://a.example/t",
            "c",
            None,
            "code",
            &secret,
            "https://h.example/cb",
            now,
        ));
        is_send(&revoke(
            &ctx,
            "https://a.example/r",
            "c",
            None,
            &secret,
            TokenKind::AccessToken,
        ));
    }

    #[test]
    fn refusals_name_known_codes_only() {
        let err = server_refusal(
            "the authorization server",
            http::StatusCode::BAD_REQUEST,
            Some("invalid_grant"),
        );
        assert_eq!(err.kind(), Some(FailureKind::Authentication));
        assert_eq!(
            err.to_string(),
            "the authorization server refused the request (invalid_grant)"
        );
        let err = server_refusal(
            "the authorization server",
            http::StatusCode::BAD_REQUEST,
            Some("my-secret-echoed"),
        );
        assert_eq!(err.kind(), Some(FailureKind::Protocol));
        assert!(!err.to_string().contains("my-secret"));
        let err = server_refusal(
            "the revocation endpoint",
            http::StatusCode::SERVICE_UNAVAILABLE,
            None,
        );
        assert_eq!(err.kind(), Some(FailureKind::Other));
        let err = server_refusal("x", http::StatusCode::UNAUTHORIZED, None);
        assert_eq!(err.kind(), Some(FailureKind::Authentication));
    }

    #[test]
    fn pkce_and_state_are_long_and_url_safe() {
        let pkce = new_pkce();
        let state = new_state();
        let url_safe = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        assert!(pkce.verifier.expose().len() >= 43 && url_safe(pkce.verifier.expose()));
        assert!(url_safe(&pkce.challenge) && pkce.challenge != pkce.verifier.expose());
        assert!(state.expose().len() >= 43 && url_safe(state.expose()));
        assert_ne!(new_state(), state);
        assert!(!format!("{pkce:?}{state:?}").contains(state.expose()));
    }
}
