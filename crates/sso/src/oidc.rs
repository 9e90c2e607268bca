//! OpenID Connect sign-in: the authorization code flow with PKCE (`S256`), `state` and `nonce`,
//! over the `openidconnect` crate, which parses and checks every JOSE object.
//!
//! 1. [`discover`] reads the issuer's discovery document and signing keys (JWKS). The app calls
//!    it when an Administrator saves the settings (a clear [`OidcError`] then) and at each
//!    sign-in, so that rotated keys are picked up.
//! 2. [`begin`] builds the authorization URL and the [`Pending`] request (`state`, `nonce`, the
//!    PKCE verifier) that the app seals and keeps until the browser comes back.
//! 3. [`finish`] checks the returned `state` against the pending one (in constant time),
//!    exchanges the code with the PKCE verifier, verifies the ID token — signature against the
//!    JWKS, issuer, audience and `azp`, expiry at the `now` it is given, nonce, `at_hash` — and
//!    reads the e-mail from the configured claim (asking the userinfo endpoint when the ID token
//!    lacks it). The answer is a [`VerifiedIdentity`] or a [`Refused`] with its reason.
//!
//! Every request goes through the hub's egress policy ([`EgressHttp`]: the policy's resolver,
//! the context's timeout, answers cut at 1 MiB), so an issuer the policy refuses is refused
//! before any connection. Messages name what failed (a document, a claim, a standard error
//! code), never a secret, a token, a code or a claim's value.

mod claims;
mod refusals;
mod settings;

pub use refusals::provider_error;
use refusals::{claims_refusal, token_refusal};
pub use settings::{Issuer, OidcSettings};

use crate::{RefusalReason, Refused, VerifiedIdentity};
use lockstep_connectors::oauth::EgressHttp;
use lockstep_connectors::{ConnectorError, Context, FailureKind, Secret};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreSubjectIdentifierType, CoreTokenIntrospectionResponse,
    CoreTokenType,
};
use openidconnect::http;
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AdditionalProviderMetadata, AsyncHttpClient, AuthType,
    AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IdTokenVerifier, IssuerUrl,
    Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata,
    RedirectUrl, ResponseTypes, StandardErrorResponse, StandardTokenResponse,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use subtle::ConstantTimeEq as _;
use time::OffsetDateTime;
use url::Url;

/// The longest `state` and `code` a callback may carry (ours are 43 characters; providers'
/// codes are rarely over a few hundred).
const MAX_STATE_CHARS: usize = 512;
const MAX_CODE_CHARS: usize = 4096;

/// The signature algorithms accepted for ID tokens: asymmetric ones only, so an ID token can
/// never be "signed" with the client secret (HS256) or not at all (`none`).
const ASYMMETRIC_ALGORITHMS: &[CoreJwsSigningAlgorithm] = &[
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Why the settings or the provider cannot be used. Messages name the field or the document
/// that failed, never a secret or what the provider answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// A setting is not acceptable.
    #[error("{field} {problem}")]
    Setting {
        field: &'static str,
        problem: &'static str,
    },
    /// The egress policy does not allow the provider's address.
    #[error(
        "the egress policy does not allow the identity provider's address (see --egress-allow)"
    )]
    Egress,
    /// The provider could not be reached, or did not answer in time.
    #[error("cannot read {document}: {detail}")]
    Unreachable {
        document: &'static str,
        detail: String,
    },
    /// The provider answered something else than the document asked for.
    #[error("{document} is not valid: {detail}")]
    Invalid {
        document: &'static str,
        detail: String,
    },
    /// The discovery document names another issuer than the settings.
    #[error(
        "the discovery document names another issuer than the issuer URL (they must match exactly, trailing slash included)"
    )]
    IssuerMismatch,
    /// The provider does not offer what the sign-in needs.
    #[error("the identity provider does not support {0}")]
    Unsupported(&'static str),
}

impl OidcError {
    /// The settings field the error belongs next to on a form: the setting's own field, else
    /// `issuer` (everything read from the provider starts from it).
    pub fn field(&self) -> &'static str {
        match self {
            OidcError::Setting { field, .. } => field,
            _ => "issuer",
        }
    }
}

/// What the app keeps between [`begin`] and [`finish`]: sealed, bound to the browser that
/// started the sign-in, used once. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Pending {
    state: Secret,
    nonce: Secret,
    pkce_verifier: Secret,
}

impl Pending {
    /// A pending request read back from the app's store.
    pub fn from_parts(state: String, nonce: String, pkce_verifier: String) -> Pending {
        Pending {
            state: Secret::new(state),
            nonce: Secret::new(nonce),
            pkce_verifier: Secret::new(pkce_verifier),
        }
    }

    /// The `state` sent in the authorization URL (the app may key the pending request by its
    /// hash).
    pub fn state(&self) -> &str {
        self.state.expose()
    }

    pub fn nonce(&self) -> &str {
        self.nonce.expose()
    }

    pub fn pkce_verifier(&self) -> &str {
        self.pkce_verifier.expose()
    }
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pending([redacted])")
    }
}

/// A provider as discovered: its metadata and signing keys, and the egress context its
/// requests go through.
#[derive(Clone)]
pub struct Provider {
    metadata: Metadata,
    /// The ID token algorithms accepted: the provider's, less symmetric ones and `none`.
    algorithms: Vec<CoreJwsSigningAlgorithm>,
    ctx: Context,
}

impl Provider {
    /// The issuer, as the discovery document (and the settings) spell it.
    pub fn issuer(&self) -> &str {
        self.metadata.issuer().as_str()
    }

    /// How many keys the provider's JWKS holds.
    pub fn signing_keys(&self) -> usize {
        self.metadata.jwks().keys().len()
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.issuer())
            .field("signing_keys", &self.signing_keys())
            .finish_non_exhaustive()
    }
}

/// Discovery fields `openidconnect` does not read itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MoreMetadata {
    /// RFC 8414: the PKCE methods the provider allows, when it says.
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}

impl AdditionalProviderMetadata for MoreMetadata {}

type Metadata = ProviderMetadata<
    MoreMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Claims beyond the standard ones, kept as JSON (the configured e-mail claim may be one).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
struct OtherClaims(BTreeMap<String, serde_json::Value>);

impl AdditionalClaims for OtherClaims {}

type IdTokenExtra = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type TokenAnswer = StandardTokenResponse<IdTokenExtra, CoreTokenType>;
type OidcClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenAnswer,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

const DISCOVERY: &str = "the discovery document";
const JWKS: &str = "the signing keys (JWKS)";

/// Reads the issuer's discovery document (`{issuer}/.well-known/openid-configuration`) and its
/// signing keys, through `ctx`'s egress policy. Checks that the document names the configured
/// issuer, offers the authorization code flow with a token endpoint, allows PKCE `S256` (when it
/// says which methods it allows) and publishes at least one key.
pub async fn discover(ctx: &Context, settings: &OidcSettings) -> Result<Provider, OidcError> {
    settings.check()?;
    let issuer =
        IssuerUrl::new(settings.issuer.as_str().to_owned()).map_err(|_| OidcError::Setting {
            field: "issuer",
            problem: "is not a URL",
        })?;
    let discovery_url = issuer
        .join(".well-known/openid-configuration")
        .map_err(|_| OidcError::Setting {
            field: "issuer",
            problem: "is not a URL",
        })?;
    let http = EgressHttp::new(ctx).map_err(|err| unreachable(DISCOVERY, &err))?;
    let request = http::Request::builder()
        .method(http::Method::GET)
        .uri(discovery_url.as_str())
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|_| OidcError::Setting {
            field: "issuer",
            problem: "is not a URL",
        })?;
    let response = http
        .call(request)
        .await
        .map_err(|err| unreachable(DISCOVERY, &err))?;
    if response.status() != http::StatusCode::OK {
        return Err(OidcError::Invalid {
            document: DISCOVERY,
            detail: format!(
                "the issuer answered HTTP {} at /.well-known/openid-configuration (is the issuer URL right?)",
                response.status().as_u16()
            ),
        });
    }
    let metadata: Metadata = serde_path_to_json(response.body(), DISCOVERY)?;
    if metadata.issuer() != &issuer {
        return Err(OidcError::IssuerMismatch);
    }
    let flows = metadata.response_types_supported();
    if !flows.contains(&ResponseTypes::new(vec![CoreResponseType::Code])) {
        return Err(OidcError::Unsupported(
            "the authorization code flow (response type \"code\")",
        ));
    }
    if metadata.token_endpoint().is_none() {
        return Err(OidcError::Unsupported(
            "the authorization code flow (no token endpoint)",
        ));
    }
    if let Some(methods) = &metadata
        .additional_metadata()
        .code_challenge_methods_supported
        && !methods.iter().any(|m| m == "S256")
    {
        return Err(OidcError::Unsupported("PKCE with S256"));
    }
    let endpoints = [
        (
            "authorization_endpoint",
            Some(metadata.authorization_endpoint().url()),
        ),
        ("token_endpoint", metadata.token_endpoint().map(|u| u.url())),
        ("jwks_uri", Some(metadata.jwks_uri().url())),
        (
            "userinfo_endpoint",
            metadata.userinfo_endpoint().map(|u| u.url()),
        ),
    ];
    for (field, url) in endpoints {
        if url.is_some_and(|url| !settings::https_or_loopback(url)) {
            return Err(OidcError::Invalid {
                document: DISCOVERY,
                detail: format!("the field `{field}` is not an https URL"),
            });
        }
    }
    let algorithms: Vec<CoreJwsSigningAlgorithm> = metadata
        .id_token_signing_alg_values_supported()
        .iter()
        .filter(|alg| ASYMMETRIC_ALGORITHMS.contains(alg))
        .cloned()
        .collect();
    if algorithms.is_empty() {
        return Err(OidcError::Unsupported(
            "ID tokens signed with an asymmetric key (RS256, PS256, ES256, EdDSA …)",
        ));
    }
    let jwks = CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &http)
        .await
        .map_err(|err| match err {
            openidconnect::DiscoveryError::Request(err) => unreachable(JWKS, &err),
            openidconnect::DiscoveryError::Response(status, ..)
                if status != http::StatusCode::OK =>
            {
                OidcError::Invalid {
                    document: JWKS,
                    detail: format!("the provider answered HTTP {}", status.as_u16()),
                }
            }
            openidconnect::DiscoveryError::Parse(err) => OidcError::Invalid {
                document: JWKS,
                detail: parse_detail(&err),
            },
            _ => OidcError::Invalid {
                document: JWKS,
                detail: "not a JSON key set".to_owned(),
            },
        })?;
    if jwks.keys().is_empty() {
        return Err(OidcError::Invalid {
            document: JWKS,
            detail: "it holds no key".to_owned(),
        });
    }
    Ok(Provider {
        metadata: metadata.set_jwks(jwks),
        algorithms,
        ctx: ctx.clone(),
    })
}

/// Parses a JSON document, naming the path of what did not fit (never a value).
fn serde_path_to_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    document: &'static str,
) -> Result<T, OidcError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| OidcError::Invalid {
        document,
        detail: parse_detail(&err),
    })
}

/// "not JSON", or which field is missing or of the wrong type (its path, never its value).
fn parse_detail(err: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let inner = err.inner();
    let path = err.path().to_string();
    if inner.is_syntax() || inner.is_eof() {
        "the answer is not JSON (is the issuer URL an OpenID Connect provider?)".to_owned()
    } else if inner.to_string().starts_with("missing field") {
        let field = inner
            .to_string()
            .split('`')
            .nth(1)
            .unwrap_or_default()
            .chars()
            .take(64)
            .collect::<String>();
        format!(
            "the required field `{field}` is missing (is the issuer URL an OpenID Connect provider?)"
        )
    } else if path == "." {
        "the answer is not a JSON object".to_owned()
    } else {
        format!(
            "the field `{}` has an unexpected value",
            path.chars().take(128).collect::<String>()
        )
    }
}

/// What a failed request means for the settings page.
fn unreachable(document: &'static str, err: &ConnectorError) -> OidcError {
    let detail = match err.kind() {
        Some(FailureKind::Policy) => return OidcError::Egress,
        Some(FailureKind::Dns) => "the issuer's host name does not resolve",
        Some(FailureKind::Refused) => "cannot connect to the identity provider",
        Some(FailureKind::Timeout) => "the identity provider did not answer in time",
        Some(FailureKind::Tls) => {
            "TLS with the identity provider failed (untrusted or mismatched certificate?)"
        }
        Some(FailureKind::Protocol) => "the identity provider's answer is too large or cut off",
        _ => "the request to the identity provider failed",
    };
    OidcError::Unreachable {
        document,
        detail: detail.to_owned(),
    }
}

fn client(
    provider: &Provider,
    settings: &OidcSettings,
    redirect_uri: &Url,
) -> Result<OidcClient, OidcError> {
    let client = OidcClient::from_provider_metadata(
        provider.metadata.clone(),
        ClientId::new(settings.client_id.clone()),
        settings
            .client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.expose().to_owned())),
    )
    .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()));
    // client_secret_basic unless the provider says it takes only client_secret_post.
    let methods = provider.metadata.token_endpoint_auth_methods_supported();
    let post_only = methods.is_some_and(|m| {
        !m.contains(&CoreClientAuthMethod::ClientSecretBasic)
            && m.contains(&CoreClientAuthMethod::ClientSecretPost)
    });
    Ok(if post_only {
        client.set_auth_type(AuthType::RequestBody)
    } else {
        client.set_auth_type(AuthType::BasicAuth)
    })
}

/// The URL to send the browser to, and what to keep until it comes back: a random `state`
/// and `nonce` (32 bytes each) and a PKCE verifier whose `S256` challenge is in the URL.
pub fn begin(
    provider: &Provider,
    settings: &OidcSettings,
    redirect_uri: &Url,
) -> Result<(Url, Pending), OidcError> {
    settings.check()?;
    let client = client(provider, settings, redirect_uri)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            || CsrfToken::new_random_len(32),
            || Nonce::new_random_len(32),
        )
        .add_scopes(settings.extra_scopes())
        .set_pkce_challenge(challenge)
        .url();
    let pending = Pending {
        state: Secret::new(state.into_secret()),
        nonce: Secret::new(nonce.secret().clone()),
        pkce_verifier: Secret::new(verifier.into_secret()),
    };
    Ok((url, pending))
}

/// Completes a sign-in from the callback's `state` and `code`, checking the ID token at `now`.
pub async fn finish(
    provider: &Provider,
    settings: &OidcSettings,
    redirect_uri: &Url,
    pending: &Pending,
    returned_state: &str,
    code: &str,
    now: OffsetDateTime,
) -> Result<VerifiedIdentity, Refused> {
    let same_state = returned_state.len() <= MAX_STATE_CHARS
        && bool::from(
            returned_state
                .as_bytes()
                .ct_eq(pending.state.expose().as_bytes()),
        );
    if !same_state {
        return Err(Refused::new(
            RefusalReason::UnknownRequest,
            "the state does not match a sign-in this browser started",
        ));
    }
    if code.is_empty() || code.len() > MAX_CODE_CHARS {
        return Err(Refused::new(
            RefusalReason::Malformed,
            "the authorization code is empty or longer than 4096 characters",
        ));
    }
    settings
        .check()
        .map_err(|err| Refused::new(RefusalReason::Exchange, err.to_string()))?;
    let client = client(provider, settings, redirect_uri)
        .map_err(|err| Refused::new(RefusalReason::Exchange, err.to_string()))?;
    let http = EgressHttp::new(&provider.ctx).map_err(|err| {
        Refused::new(
            RefusalReason::Exchange,
            unreachable("the token endpoint", &err).to_string(),
        )
    })?;
    let answer = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|_| {
            Refused::new(
                RefusalReason::Exchange,
                "the provider has no token endpoint",
            )
        })?
        .set_pkce_verifier(PkceCodeVerifier::new(
            pending.pkce_verifier.expose().to_owned(),
        ))
        .request_async(&http)
        .await
        .map_err(|err| token_refusal(err, http.status()))?;
    let id_token = answer.extra_fields().id_token().ok_or_else(|| {
        Refused::new(
            RefusalReason::Malformed,
            "the token endpoint answered no ID token",
        )
    })?;

    let at =
        chrono::DateTime::<chrono::Utc>::from_timestamp(now.unix_timestamp(), now.nanosecond())
            // A `now` chrono cannot hold: every token counts as expired.
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    let verifier = IdTokenVerifier::new_public_client(
        ClientId::new(settings.client_id.clone()),
        provider.metadata.issuer().clone(),
        provider.metadata.jwks().clone(),
    )
    .set_allowed_algs(provider.algorithms.iter().cloned())
    .set_time_fn(move || at)
    // Every audience but ours is untrusted: an ID token for several clients is refused.
    .set_other_audience_verifier_fn(|_| false);
    let nonce = Nonce::new(pending.nonce.expose().to_owned());
    let claims = id_token
        .claims(&verifier, &nonce)
        .map_err(|err| claims_refusal(&err))?;
    if claims
        .authorized_party()
        .is_some_and(|azp| azp.as_str() != settings.client_id)
    {
        return Err(Refused::new(
            RefusalReason::Audience,
            "the ID token's azp names another client",
        ));
    }
    if let Some(expected) = claims.access_token_hash() {
        let actual = id_token
            .signing_alg()
            .and_then(|alg| {
                let key = id_token.signing_key(&verifier)?;
                AccessTokenHash::from_token(answer.access_token(), alg, key)
                    .map_err(|_| openidconnect::SignatureVerificationError::NoMatchingKey)
            })
            .map_err(|_| {
                Refused::new(
                    RefusalReason::Signature,
                    "the ID token's at_hash cannot be checked",
                )
            })?;
        if actual != *expected {
            return Err(Refused::new(
                RefusalReason::Signature,
                "the ID token's at_hash does not match the access token",
            ));
        }
    }
    claims::identity(&client, &http, claims, answer.access_token(), settings).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
