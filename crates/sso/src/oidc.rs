//! OpenID Connect sign-in. (Interface placeholder until the protocol lands.)

use crate::{RefusalReason, Refused, VerifiedIdentity};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;
use zeroize::Zeroizing;

pub struct OidcSettings {
    pub issuer: Url,
    pub client_id: String,
    pub client_secret: Zeroizing<String>,
    pub scopes: Vec<String>,
    pub email_claim: String,
}

#[derive(Debug)]
pub struct Provider;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OidcError(String);

#[derive(Serialize, Deserialize)]
pub struct Pending {
    state: String,
}

impl Pending {
    pub fn state(&self) -> &str {
        &self.state
    }
}

pub async fn discover(
    _settings: &OidcSettings,
    _context: &lockstep_connectors::Context,
) -> Result<Provider, OidcError> {
    Err(OidcError("not yet".into()))
}

pub fn begin(
    _provider: &Provider,
    _settings: &OidcSettings,
    _redirect_uri: &str,
) -> Result<(Url, Pending), OidcError> {
    Err(OidcError("not yet".into()))
}

pub async fn finish(
    _provider: &Provider,
    _settings: &OidcSettings,
    _redirect_uri: &str,
    _pending: &Pending,
    _state: &str,
    _code: &str,
    _now: OffsetDateTime,
) -> Result<VerifiedIdentity, Refused> {
    Err(Refused::new(RefusalReason::Exchange, "not yet"))
}
