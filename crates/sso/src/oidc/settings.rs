//! An organization's OpenID Connect settings: the issuer exactly as the provider spells it, the
//! client, the scopes and the e-mail claim, checked field by field.

use super::OidcError;
use lockstep_connectors::Secret;
use openidconnect::Scope;
use serde::{Deserialize, Serialize};
use std::fmt;
use url::Url;

/// The longest issuer URL, client id, claim name and scope list accepted in the settings.
const MAX_ISSUER_CHARS: usize = 2048;
const MAX_CLIENT_ID_CHARS: usize = 255;
const MAX_CLAIM_NAME_CHARS: usize = 128;
const MAX_SCOPES: usize = 32;
const MAX_SCOPE_CHARS: usize = 128;

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
        if url.host().is_none() {
            return Err(invalid("has no host"));
        }
        match url.scheme() {
            "http" | "https" if https_or_loopback(&url) => {}
            "http" => return Err(invalid("must use https")),
            _ => return Err(invalid("must be an https URL")),
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

/// `https`, or `http` to a loopback address or `localhost` (a provider on this machine): the
/// only URLs the sign-in talks to, so that no one on the path can change what the provider says.
pub(super) fn https_or_loopback(url: &Url) -> bool {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => loopback,
        _ => false,
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
    pub(super) fn extra_scopes(&self) -> impl Iterator<Item = Scope> + '_ {
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
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("scopes", &self.scopes)
            .field("email_claim", &self.email_claim)
            .finish()
    }
}
