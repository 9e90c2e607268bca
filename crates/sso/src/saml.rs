//! SAML 2.0 sign-in for a service provider (the hub): IdP metadata read and checked
//! ([`IdpMetadata::parse`]), the hub's SP metadata ([`sp_metadata_xml`]), an `AuthnRequest`
//! sent by HTTP-Redirect ([`begin`]) and the `SAMLResponse` posted back to the assertion consumer
//! service checked ([`verify_response`]).
//!
//! Hostile input is bounded and read before any XML library with DTD support sees it: a
//! DOCTYPE or entity declaration is refused from the raw text, so no entity is ever expanded.
//! Signatures are verified by xmlsec (through samael) with the certificates of the IdP's
//! metadata only (never a key the answer carries), and only what a verified signature covers is
//! read: the assertion must carry its own signature, and a document holding more than one
//! assertion, or an assertion anywhere but directly in the `Response`, is refused (signature
//! wrapping). The app keeps the pending request ids and the replay memory: it matches
//! [`SamlAssertion::in_response_to`] to a request it sent and remembers
//! [`SamlAssertion::assertion_id`] until [`SamlAssertion::not_on_or_after`].

use std::fmt;

use time::{Duration, OffsetDateTime};
use url::Url;

use crate::VerifiedIdentity;

mod metadata;
mod request;
mod response;
mod xml;

pub use metadata::sp_metadata_xml;
pub use request::begin;
pub use response::verify_response;

/// The largest IdP metadata document read (bytes).
pub const MAX_METADATA_BYTES: usize = 256 * 1024;
/// The largest `SAMLResponse` form value read (bytes of base64, before decoding).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// How far the IdP's clock may be from ours for `NotBefore`, `NotOnOrAfter` and `IssueInstant`.
pub const CLOCK_SKEW: Duration = Duration::minutes(2);
/// How old an assertion (its `IssueInstant`) may be, whatever its `NotOnOrAfter` says: this
/// also bounds how long the app must remember an assertion id.
pub const MAX_ASSERTION_AGE: Duration = Duration::minutes(10);

/// `NameID` format of an e-mail address.
pub const NAME_ID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
/// Attribute names read as the e-mail address when the `NameID` is not one (by `Name` or
/// `FriendlyName`, in this order of preference).
pub const EMAIL_ATTRIBUTES: [&str; 3] = ["urn:oid:0.9.2342.19200300.100.1.3", "mail", "email"];

/// Why IdP metadata (or a request) could not be used. Names what is missing or wrong, never a
/// value from the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamlError {
    #[error("the IdP metadata is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the IdP metadata is not usable XML: {0}")]
    Xml(String),
    #[error("the IdP metadata's root element is not an md:EntityDescriptor")]
    NotEntityDescriptor,
    #[error("the IdP metadata has no entityID")]
    MissingEntityId,
    #[error("the IdP metadata has no md:IDPSSODescriptor for SAML 2.0")]
    MissingIdpDescriptor,
    #[error("the IdP metadata has no SingleSignOnService with the HTTP-Redirect binding")]
    MissingRedirectEndpoint,
    #[error("the IdP metadata's HTTP-Redirect SingleSignOnService Location is not an http(s) URL")]
    InvalidRedirectEndpoint,
    #[error(
        "the IdP metadata has no signing certificate (md:KeyDescriptor with ds:X509Certificate)"
    )]
    MissingCertificate,
    #[error("certificate {index} of the IdP metadata is not a valid X.509 certificate")]
    InvalidCertificate { index: usize },
    #[error(
        "the IdP requires signed authentication requests (WantAuthnRequestsSigned), which the hub does not send"
    )]
    SignedRequestsRequired,
    #[error("the service provider's {field} is not a valid URL")]
    InvalidServiceProvider { field: &'static str },
}

/// An identity provider, from its metadata: what [`begin`] and [`verify_response`] need.
#[derive(Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    entity_id: String,
    sso_redirect_url: Url,
    /// DER of each signing certificate, in metadata order.
    certificates: Vec<Vec<u8>>,
}

impl IdpMetadata {
    /// The IdP's `entityID`: the `Issuer` its answers must name.
    pub fn entity_id(&self) -> &str {
        &self.entity_id
    }

    /// Where [`begin`] sends the browser (the HTTP-Redirect `SingleSignOnService`).
    pub fn sso_redirect_url(&self) -> &Url {
        &self.sso_redirect_url
    }

    /// SHA-256 fingerprints of the signing certificates (`AB:CD:…`), for the settings page.
    pub fn certificate_fingerprints(&self) -> Vec<String> {
        use sha2::Digest;
        self.certificates
            .iter()
            .map(|der| {
                sha2::Sha256::digest(der)
                    .iter()
                    .map(|byte| format!("{byte:02X}"))
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .collect()
    }
}

impl fmt::Debug for IdpMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdpMetadata")
            .field("entity_id", &self.entity_id)
            .field("sso_redirect_url", &self.sso_redirect_url.as_str())
            .field("certificates", &self.certificates.len())
            .finish()
    }
}

/// The hub as a SAML service provider for one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceProvider {
    /// `{public_url}/api/v1/sso/saml/{organization}/metadata`: the audience assertions must name.
    pub entity_id: String,
    /// `{public_url}/api/v1/sso/saml/{organization}/acs`: the recipient assertions must name.
    pub acs_url: String,
    /// Where the SP metadata is served (the same URL as the entity id).
    pub metadata_url: String,
}

impl ServiceProvider {
    /// The service provider of `organization` on the hub reached at `public_url`
    /// (`https://hub.example.com` or with a path prefix).
    pub fn for_organization(
        public_url: &Url,
        organization: impl fmt::Display,
    ) -> Result<ServiceProvider, SamlError> {
        let base = public_url.as_str().trim_end_matches('/');
        let metadata_url = format!("{base}/api/v1/sso/saml/{organization}/metadata");
        let acs_url = format!("{base}/api/v1/sso/saml/{organization}/acs");
        Url::parse(&metadata_url).map_err(|_| SamlError::InvalidServiceProvider {
            field: "metadata_url",
        })?;
        Url::parse(&acs_url).map_err(|_| SamlError::InvalidServiceProvider { field: "acs_url" })?;
        Ok(ServiceProvider {
            entity_id: metadata_url.clone(),
            acs_url,
            metadata_url,
        })
    }
}

/// An `AuthnRequest` ready to send: redirect the browser to `redirect_url` and remember
/// `request_id` (with the organization and the browser) to match the answer's `InResponseTo`.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthnRedirect {
    pub redirect_url: Url,
    pub request_id: String,
}

impl fmt::Debug for AuthnRedirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthnRedirect")
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

/// A verified assertion: who signed in, and what the app needs to refuse a replay or an
/// unsolicited answer.
#[derive(Clone, PartialEq, Eq)]
pub struct SamlAssertion {
    pub identity: VerifiedIdentity,
    /// The assertion's `ID`: remember it until `not_on_or_after` and refuse it when seen again
    /// ([`crate::RefusalReason::Replay`]).
    pub assertion_id: String,
    /// The signed `SubjectConfirmationData`'s `InResponseTo`: must be a request id the app sent
    /// from this browser, else [`crate::RefusalReason::UnknownRequest`]. `None` for an
    /// IdP-initiated (unsolicited) answer.
    pub in_response_to: Option<String>,
    /// The instant from which [`verify_response`] refuses this assertion as expired anyway
    /// (clock skew included): how long its id must be remembered.
    pub not_on_or_after: OffsetDateTime,
}

impl fmt::Debug for SamlAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SamlAssertion")
            .field("identity", &self.identity)
            .field("assertion_id", &self.assertion_id)
            .field("in_response_to", &self.in_response_to)
            .field("not_on_or_after", &self.not_on_or_after)
            .finish()
    }
}
