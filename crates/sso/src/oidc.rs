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
    AccessTokenHash, AdditionalClaims, AdditionalProviderMetadata, AsyncHttpClient, AuthType, AuthorizationCode,
    ClaimsVerificationError, Client, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IdTokenVerifier, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl,
    RequestTokenError, ResponseTypes, Scope, StandardErrorResponse, StandardTokenResponse,
    OAuth2TokenResponse as _,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use subtle::ConstantTimeEq as _;
use time::OffsetDateTime;
use url::Url;

/// The longest issuer URL, client id, claim name and scope list accepted in the settings.
const MAX_ISSUER_CHARS: usize = 2048;
const MAX_CLIENT_ID_CHARS: usize = 255;
const MAX_CLAIM_NAME_CHARS: usize = 128;
const MAX_SCOPES: usize = 32;
const MAX_SCOPE_CHARS: usize = 128;
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

/// An issuer identifier exactly as the provider spells it: `https://idp.example` and
/// `https://idp.example/` are different issuers (OpenID Connect Discovery §4.3 compares them as
/// strings), which a parsed [`Url`] could not tell apart.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Issuer(String);

impl Issuer {
    /// An `https` URL without query, fragment or credentials, at most 2048 characters; `http`
    /// only for a loopback address or `localhost` (a provider on this machine, as in tests).
    pub fn parse(text: &str) -> Result<Issuer, OidcError> {
        let invalid = |problem| OidcError::Setting {
            field: "issuer",
            problem,
        };
        if text.is_empty() || text.len() > MAX_ISSUER_CHARS {
            return Err(invalid("must be a URL of at most 2048 characters"));
        }
        let url = Url::parse(text).map_err(|_| invalid("is not a URL"))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(invalid("must use https")),
            _ => return Err(invalid("must be an https URL")),
        }
        if url.host().is_none() {
            return Err(invalid("has no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("must not have a query or a fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not hold credentials"));
        }
        Ok(Issuer(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Issuer {
    type Error = OidcError;

    fn try_from(text: String) -> Result<Issuer, OidcError> {
        Issuer::parse(&text)
    }
}

impl From<Issuer> for String {
    fn from(issuer: Issuer) -> String {
        issuer.0
    }
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Issuer").field(&self.0).finish()
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An organization's OpenID Connect settings. Serialized without the client secret, which the
/// app seals apart (write-only) and puts back into `client_secret` for a call.
#[derive(Clone, Serialize, Deserialize)]
pub struct OidcSettings {
    pub issuer: Issuer,
    pub client_id: String,
    /// `None` for a public client (PKCE only); the token request then names the client in its
    /// body.
    #[serde(skip)]
    pub client_secret: Option<Secret>,
    /// The scopes asked for; `openid` is always asked whether listed or not.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim that holds the e-mail address (`email`; `upn` or `preferred_username` for some
    /// providers).
    #[serde(default = "default_email_claim")]
    pub email_claim: String,
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(str::to_owned).to_vec()
}

fn default_email_claim() -> String {
    "email".to_owned()
}

impl OidcSettings {
    /// Settings with the default scopes (`openid email profile`) and e-mail claim (`email`).
    pub fn new(issuer: Issuer, client_id: String, client_secret: Option<Secret>) -> OidcSettings {
        OidcSettings {
            issuer,
            client_id,
            client_secret,
            scopes: default_scopes(),
            email_claim: default_email_claim(),
        }
    }

    /// Checks the fields a form or an API body filled (the issuer was checked when parsed).
    pub fn check(&self) -> Result<(), OidcError> {
        let invalid = |field, problem| Err(OidcError::Setting { field, problem });
        if self.client_id.is_empty()
            || self.client_id.len() > MAX_CLIENT_ID_CHARS
            || self.client_id.chars().any(char::is_control)
        {
            return invalid(
                "client_id",
                "must be 1 to 255 characters without control characters",
            );
        }
        if self
            .client_secret
            .as_ref()
            .is_some_and(|s| s.expose().is_empty() || s.expose().len() > 1024)
        {
            return invalid("client_secret", "must be 1 to 1024 characters");
        }
        if self.scopes.len() > MAX_SCOPES {
            return invalid("scopes", "must list at most 32 scopes");
        }
        // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
        let scope_token = |s: &String| {
            !s.is_empty()
                && s.len() <= MAX_SCOPE_CHARS
                && s.bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        };
        if !self.scopes.iter().all(scope_token) {
            return invalid(
                "scopes",
                "must be words of at most 128 printable characters without spaces, quotes or backslashes",
            );
        }
        let claim_name = |s: &str| {
            !s.is_empty()
                && s.len() <= MAX_CLAIM_NAME_CHARS
                && s.chars().all(|c| !c.is_control() && c != ' ')
        };
        if !claim_name(&self.email_claim) {
            return invalid(
                "email_claim",
                "must be a claim name of 1 to 128 characters without spaces",
            );
        }
        Ok(())
    }

    /// The scopes to ask for besides `openid` (which the authorization request always has).
    fn extra_scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        let mut seen = std::collections::BTreeSet::new();
        self.scopes
            .iter()
            .filter(move |s| s.as_str() != "openid" && seen.insert(s.as_str()))
            .map(|s| Scope::new(s.clone()))
    }
}

impl fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[redacted]"))
            .field("scopes", &self.scopes)
            .field("email_claim", &self.email_claim)
            .finish()
    }
}

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
    let issuer = IssuerUrl::new(settings.issuer.as_str().to_owned()).map_err(|_| {
        OidcError::Setting {
            field: "issuer",
            problem: "is not a URL",
        }
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
    if let Some(methods) = &metadata.additional_metadata().code_challenge_methods_supported
        && !methods.iter().any(|m| m == "S256")
    {
        return Err(OidcError::Unsupported("PKCE with S256"));
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
            openidconnect::DiscoveryError::Response(status, ..) if status != http::StatusCode::OK => {
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
        format!("the required field `{field}` is missing (is the issuer URL an OpenID Connect provider?)")
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
        .map_err(|_| Refused::new(RefusalReason::Exchange, "the provider has no token endpoint"))?
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

    let at = chrono::DateTime::<chrono::Utc>::from_timestamp(now.unix_timestamp(), now.nanosecond())
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

/// The reason for a failed code exchange.
fn token_refusal(
    err: RequestTokenError<ConnectorError, StandardErrorResponse<CoreErrorResponseType>>,
    status: Option<http::StatusCode>,
) -> Refused {
    let status = status.unwrap_or(http::StatusCode::OK);
    match err {
        RequestTokenError::ServerResponse(answer) => {
            let code = match answer.error() {
                CoreErrorResponseType::Extension(_) => "an extension error",
                known => known.as_ref(),
            };
            Refused::new(
                RefusalReason::Exchange,
                format!(
                    "the token endpoint refused the code (HTTP {}, {code})",
                    status.as_u16()
                ),
            )
        }
        RequestTokenError::Request(err) => Refused::new(
            RefusalReason::Exchange,
            unreachable("the token endpoint", &err).to_string(),
        ),
        RequestTokenError::Parse(..) | RequestTokenError::Other(_) => {
            if status == http::StatusCode::OK {
                Refused::new(
                    RefusalReason::Malformed,
                    "the token endpoint's answer is not a valid token response with an ID token",
                )
            } else {
                Refused::new(
                    RefusalReason::Exchange,
                    format!(
                        "the token endpoint answered HTTP {} without an OAuth error",
                        status.as_u16()
                    ),
                )
            }
        }
    }
}

/// The reason for an ID token `openidconnect` did not accept. Its messages quote the token's
/// values, so each reason gets a message of ours.
fn claims_refusal(err: &ClaimsVerificationError) -> Refused {
    let (reason, detail) = match err {
        ClaimsVerificationError::Expired(_) => (RefusalReason::Expired, "the ID token has expired"),
        ClaimsVerificationError::InvalidAudience(_) => (
            RefusalReason::Audience,
            "the ID token is not meant for this client (aud)",
        ),
        ClaimsVerificationError::InvalidIssuer(_) => (
            RefusalReason::Issuer,
            "the ID token comes from another issuer (iss)",
        ),
        ClaimsVerificationError::InvalidNonce(_) => (
            RefusalReason::Nonce,
            "the ID token's nonce is not the one this sign-in sent",
        ),
        ClaimsVerificationError::SignatureVerification(_) => (
            RefusalReason::Signature,
            "the ID token's signature does not verify with the provider's keys",
        ),
        ClaimsVerificationError::InvalidSubject(_) => {
            (RefusalReason::Malformed, "the ID token's subject is not valid")
        }
        _ => (
            RefusalReason::Malformed,
            "the ID token uses a form this hub does not accept (encrypted, nested or with critical headers)",
        ),
    };
    Refused::new(reason, detail)
}

/// A refusal for an error the provider sent to the callback instead of a code
/// (`?error=access_denied`): [`RefusalReason::Denied`], naming the standard code only.
pub fn provider_error(error: &str) -> Refused {
    const KNOWN: &[&str] = &[
        "access_denied",
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "invalid_request_uri",
        "invalid_request_object",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
    ];
    let code = KNOWN
        .iter()
        .find(|known| **known == error)
        .copied()
        .unwrap_or("an unknown error");
    Refused::new(
        RefusalReason::Denied,
        format!("the identity provider ended the sign-in ({code})"),
    )
}

#[cfg(test)]
mod tests;
