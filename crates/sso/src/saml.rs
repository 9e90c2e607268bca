//! SAML 2.0 sign-in. (Interface placeholder until the protocol lands.)

use crate::{RefusalReason, Refused, VerifiedIdentity};
use time::OffsetDateTime;
use url::Url;

pub struct ServiceProvider {
    pub entity_id: String,
    pub acs_url: String,
    pub metadata_url: String,
}

#[derive(Debug)]
pub struct IdpMetadata {
    entity_id: String,
    sso_url: Url,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SamlError(String);

impl IdpMetadata {
    pub fn parse(_xml: &str) -> Result<IdpMetadata, SamlError> {
        Err(SamlError("not yet".into()))
    }
    pub fn entity_id(&self) -> &str {
        &self.entity_id
    }
    pub fn sso_url(&self) -> &Url {
        &self.sso_url
    }
}

pub fn sp_metadata_xml(_sp: &ServiceProvider) -> String {
    String::new()
}

pub fn begin(
    _idp: &IdpMetadata,
    _sp: &ServiceProvider,
    _now: OffsetDateTime,
) -> Result<(Url, String), SamlError> {
    Err(SamlError("not yet".into()))
}

pub struct SamlAssertion {
    pub identity: VerifiedIdentity,
    pub assertion_id: String,
    pub in_response_to: Option<String>,
    pub not_on_or_after: OffsetDateTime,
}

pub fn verify_response(
    _idp: &IdpMetadata,
    _sp: &ServiceProvider,
    _response: &str,
    _now: OffsetDateTime,
) -> Result<SamlAssertion, Refused> {
    Err(Refused::new(RefusalReason::Malformed, "not yet"))
}
