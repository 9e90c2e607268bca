//! From verified claims to a [`VerifiedIdentity`]: the subject, the e-mail from the configured
//! claim (the userinfo endpoint asked when the ID token lacks it) with `email_verified`, and the
//! other claims as bounded text attributes.

use super::{OidcClient, OidcSettings, OtherClaims};
use crate::{RefusalReason, Refused, VerifiedIdentity};
use lockstep_connectors::oauth::EgressHttp;
use openidconnect::core::CoreGenderClaim;
use openidconnect::{AccessToken, IdTokenClaims, UserInfoClaims, UserInfoError};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// OpenID Connect Core §3.1.3.6 / RFC 7519: `sub` is at most 255 ASCII characters.
const MAX_SUBJECT_CHARS: usize = 255;
/// RFC 5321's longest path; longer is not an address.
const MAX_EMAIL_CHARS: usize = 320;
/// Bounds of the attributes shown on the "test sign-in" page.
const MAX_ATTRIBUTES: usize = 64;
const MAX_ATTRIBUTE_NAME_CHARS: usize = 128;
const MAX_VALUES: usize = 32;
const MAX_VALUE_CHARS: usize = 1024;

/// Claims about the token rather than the person: not attributes.
const TOKEN_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "nonce",
    "azp",
    "at_hash",
    "c_hash",
    "auth_time",
    "sid",
];

/// The identity in verified ID token `claims`, completed from the userinfo endpoint when the
/// configured e-mail claim is not among them.
pub(super) async fn identity(
    client: &OidcClient,
    http: &EgressHttp<'_>,
    claims: &IdTokenClaims<OtherClaims, CoreGenderClaim>,
    access_token: &AccessToken,
    settings: &OidcSettings,
) -> Result<VerifiedIdentity, Refused> {
    let subject = claims.subject().as_str();
    if subject.is_empty()
        || subject.len() > MAX_SUBJECT_CHARS
        || subject.chars().any(char::is_control)
    {
        return Err(Refused::new(
            RefusalReason::Malformed,
            "the ID token's subject (sub) is empty, too long or holds control characters",
        ));
    }
    let mut all = as_map(claims)?;
    let email_source = if all.contains_key(&settings.email_claim) {
        None
    } else {
        match client.user_info(access_token.clone(), Some(claims.subject().clone())) {
            // No userinfo endpoint: the ID token is all there is.
            Err(_) => None,
            Ok(request) => {
                let info: UserInfoClaims<OtherClaims, CoreGenderClaim> = request
                    .request_async(http)
                    .await
                    .map_err(|err| userinfo_refusal(&err))?;
                Some(as_map(&info)?)
            }
        }
    };
    let (email, email_verified) = {
        let source = email_source.as_ref().unwrap_or(&all);
        (
            email(source.get(&settings.email_claim))?,
            source.get("email_verified") == Some(&Value::Bool(true)),
        )
    };
    if let Some(info) = email_source {
        // The ID token's claims win, except the address and its flag, which were read from
        // userinfo together.
        for (name, value) in info {
            if name == settings.email_claim || name == "email_verified" {
                all.insert(name, value);
            } else {
                all.entry(name).or_insert(value);
            }
        }
    }
    Ok(VerifiedIdentity {
        subject: subject.to_owned(),
        email,
        email_verified,
        attributes: attributes(&all),
    })
}

fn as_map<T: serde::Serialize>(claims: &T) -> Result<Map<String, Value>, Refused> {
    match serde_json::to_value(claims) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Refused::new(
            RefusalReason::Malformed,
            "the claims are not a JSON object",
        )),
    }
}

/// The e-mail claim's value: absent, or a text of at most 320 characters.
fn email(value: Option<&Value>) -> Result<Option<String>, Refused> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if !text.is_empty() && text.len() <= MAX_EMAIL_CHARS => {
            Ok(Some(text.clone()))
        }
        Some(_) => Err(Refused::new(
            RefusalReason::Email,
            "the e-mail claim is not a text of 1 to 320 characters",
        )),
    }
}

/// The person's claims as text: strings, numbers and booleans, and arrays of them; objects
/// (such as `address`) and over-long values left out; at most 64 claims of 32 values each.
pub(super) fn attributes(claims: &Map<String, Value>) -> BTreeMap<String, Vec<String>> {
    let scalar = |value: &Value| match value {
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    };
    let mut out = BTreeMap::new();
    for (name, value) in claims {
        if out.len() >= MAX_ATTRIBUTES {
            break;
        }
        if TOKEN_CLAIMS.contains(&name.as_str())
            || name.is_empty()
            || name.len() > MAX_ATTRIBUTE_NAME_CHARS
        {
            continue;
        }
        let values: Vec<String> = match value {
            Value::Array(items) => items.iter().filter_map(scalar).collect(),
            other => scalar(other).into_iter().collect(),
        };
        let values: Vec<String> = values
            .into_iter()
            .filter(|v| v.len() <= MAX_VALUE_CHARS)
            .take(MAX_VALUES)
            .collect();
        if !values.is_empty() {
            out.insert(name.clone(), values);
        }
    }
    out
}

fn userinfo_refusal(err: &UserInfoError<lockstep_connectors::ConnectorError>) -> Refused {
    match err {
        UserInfoError::ClaimsVerification(
            openidconnect::ClaimsVerificationError::InvalidSubject(_),
        ) => Refused::new(
            RefusalReason::Malformed,
            "the userinfo endpoint answered for another subject than the ID token",
        ),
        UserInfoError::ClaimsVerification(_) => Refused::new(
            RefusalReason::Signature,
            "the userinfo endpoint's signed answer does not verify",
        ),
        UserInfoError::Request(err) => Refused::new(
            RefusalReason::Exchange,
            super::unreachable("the userinfo endpoint", err).to_string(),
        ),
        UserInfoError::Response(status, ..) => Refused::new(
            RefusalReason::Exchange,
            format!("the userinfo endpoint answered HTTP {}", status.as_u16()),
        ),
        _ => Refused::new(
            RefusalReason::Malformed,
            "the userinfo endpoint's answer is not valid",
        ),
    }
}
