//! Single sign-on protocols, without storage or keys: [`oidc`] (OpenID Connect, authorization
//! code with PKCE, `state` and `nonce`) and [`saml`] (SAML 2.0, HTTP-Redirect request, HTTP-POST
//! response, signed assertions). The app keeps the pending requests, the replay memory and the
//! settings; this crate builds requests and checks answers.
//!
//! An answer is either a [`VerifiedIdentity`] or a [`Refused`] with a [`RefusalReason`], the code
//! the audit records (`sso.refused`). Neither carries the raw assertion or token, and neither's
//! `Debug` prints personal data.

use std::collections::BTreeMap;
use std::fmt;

pub mod oidc;
pub mod saml;
#[cfg(feature = "testing")]
pub mod testing;

/// Why an identity provider's answer was refused. [`RefusalReason::code`] is what the audit and
/// the API name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    /// Not a well-formed answer (bad base64, XML, JSON, JWT; too large; a DOCTYPE).
    Malformed,
    /// A signature missing, invalid, or not covering what is read (signature wrapping).
    Signature,
    /// The answer comes from another issuer than the one configured.
    Issuer,
    /// The answer is meant for another client or service provider.
    Audience,
    /// A SAML response addressed to another URL than our assertion consumer service.
    Recipient,
    /// Outside its validity (expired, or not yet valid).
    Expired,
    /// Seen before (a replayed SAML assertion).
    Replay,
    /// An answer to a request we never sent, or sent from another browser (`state`,
    /// `InResponseTo`).
    UnknownRequest,
    /// The ID token's `nonce` is not the one we sent.
    Nonce,
    /// The identity provider refused the code exchange, or could not be reached.
    Exchange,
    /// The answer names no e-mail address, or one the provider does not call verified.
    Email,
    /// No member with that address, and just-in-time provisioning is off.
    UnknownUser,
    /// The identity provider's status says the sign-in failed (cancelled, denied).
    Denied,
}

impl RefusalReason {
    /// The stable code: `signature`, `audience`, `expired`, `replay`, `unknown_user`, …
    pub fn code(self) -> &'static str {
        match self {
            RefusalReason::Malformed => "malformed",
            RefusalReason::Signature => "signature",
            RefusalReason::Issuer => "issuer",
            RefusalReason::Audience => "audience",
            RefusalReason::Recipient => "recipient",
            RefusalReason::Expired => "expired",
            RefusalReason::Replay => "replay",
            RefusalReason::UnknownRequest => "unknown_request",
            RefusalReason::Nonce => "nonce",
            RefusalReason::Exchange => "exchange",
            RefusalReason::Email => "email",
            RefusalReason::UnknownUser => "unknown_user",
            RefusalReason::Denied => "denied",
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A refused answer. `detail` is for the operator's log and the "test sign-in" page: it names
/// what failed (a claim, an element, a limit), never a value from the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sign-in refused ({reason}): {detail}")]
pub struct Refused {
    pub reason: RefusalReason,
    pub detail: String,
}

impl Refused {
    pub fn new(reason: RefusalReason, detail: impl Into<String>) -> Refused {
        Refused {
            reason,
            detail: detail.into(),
        }
    }
}

/// Who the identity provider says signed in, after every check passed.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// The provider's stable id of the person (`sub`, SAML `NameID`).
    pub subject: String,
    /// The e-mail address from the configured claim or attribute, when there is one.
    pub email: Option<String>,
    /// Whether the provider vouches for the address (OIDC `email_verified`; a SAML assertion
    /// signed by the configured IdP counts as verified).
    pub email_verified: bool,
    /// The other claims or attributes as text, for the "test sign-in" page (never logged).
    pub attributes: BTreeMap<String, Vec<String>>,
}

impl fmt::Debug for VerifiedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedIdentity")
            .field("email_verified", &self.email_verified)
            .field("attributes", &self.attributes.len())
            .finish_non_exhaustive()
    }
}
