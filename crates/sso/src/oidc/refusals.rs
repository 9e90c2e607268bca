//! What a failed exchange or a refused ID token means, as a [`Refused`] with its reason and a
//! message of ours: `openidconnect`'s own messages quote the token's values.

use super::unreachable;
use crate::{RefusalReason, Refused};
use lockstep_connectors::ConnectorError;
use openidconnect::core::CoreErrorResponseType;
use openidconnect::http;
use openidconnect::{ClaimsVerificationError, RequestTokenError, StandardErrorResponse};

/// The reason for a failed code exchange.
pub(super) fn token_refusal(
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
pub(super) fn claims_refusal(err: &ClaimsVerificationError) -> Refused {
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
        ClaimsVerificationError::InvalidSubject(_) => (
            RefusalReason::Malformed,
            "the ID token's subject is not valid",
        ),
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
