//! The `SAMLResponse` posted to the assertion consumer service: bounded, refused before any
//! entity could be expanded, its shape checked against signature wrapping, its signatures
//! verified by xmlsec with the IdP's certificates, and only the signed assertion read.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, CryptoProvider, ReduceMode, XmlSec,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::xml::{self, Element, NS_DS, NS_SAML, NS_SAMLP, NS_XENC};
use super::{
    CLOCK_SKEW, EMAIL_ATTRIBUTES, IdpMetadata, MAX_ASSERTION_AGE, MAX_RESPONSE_BYTES,
    NAME_ID_EMAIL, SamlAssertion, ServiceProvider,
};
use crate::{RefusalReason, Refused, VerifiedIdentity};

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Signature algorithms accepted (no SHA-1, no HMAC).
const ALLOWED_ALGORITHMS: [AllowedSignatureAlgorithm; 6] = [
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

/// Transforms and canonicalization methods a signature may name: enveloped signature and the
/// canonicalizations. No XPath, XSLT or base64 transform ever reaches xmlsec.
const ALLOWED_TRANSFORMS: [&str; 6] = [
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
    "http://www.w3.org/2006/12/xml-c14n11",
];

fn refused(reason: RefusalReason, detail: impl Into<String>) -> Refused {
    Refused::new(reason, detail)
}

/// Checks the `SAMLResponse` form value posted to `sp`'s assertion consumer service and answers
/// the signed assertion's identity, or why it was refused:
///
/// - [`RefusalReason::Malformed`]: over [`MAX_RESPONSE_BYTES`], not base64, not UTF-8, a
///   DOCTYPE or entity declaration (refused before any XML parser with DTD support runs), not
///   well-formed, not a `samlp:Response`, no assertion, an encrypted assertion, missing parts;
/// - [`RefusalReason::Denied`]: the status is not `Success`;
/// - [`RefusalReason::Signature`]: the assertion has no signature of its own, a signature does
///   not verify with the metadata's certificates (or uses SHA-1, or an unusual transform or
///   reference), or the document holds more than one assertion or an assertion anywhere but
///   directly in the `Response` (signature wrapping);
/// - [`RefusalReason::Issuer`], [`RefusalReason::Audience`], [`RefusalReason::Recipient`],
///   [`RefusalReason::Expired`] (`NotBefore`, `NotOnOrAfter`, `IssueInstant` older than
///   [`MAX_ASSERTION_AGE`], each with [`CLOCK_SKEW`]);
/// - [`RefusalReason::UnknownRequest`]: the response's `InResponseTo` differs from the signed
///   one in the assertion.
///
/// `InResponseTo` and the assertion id are returned, not judged: the app matches them with its
/// pending requests and replay memory. CPU-bound (xmlsec): call it off the async threads.
pub fn verify_response(
    idp: &IdpMetadata,
    sp: &ServiceProvider,
    saml_response: &str,
    now: OffsetDateTime,
) -> Result<SamlAssertion, Refused> {
    use RefusalReason::{Denied, Malformed, Signature};
    if saml_response.len() > MAX_RESPONSE_BYTES {
        return Err(refused(
            Malformed,
            format!("SAMLResponse is larger than {MAX_RESPONSE_BYTES} bytes"),
        ));
    }
    let compact: String = saml_response
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = STANDARD
        .decode(compact)
        .map_err(|_| refused(Malformed, "SAMLResponse is not base64"))?;
    let document = String::from_utf8(bytes)
        .map_err(|_| refused(Malformed, "SAMLResponse is not UTF-8 text"))?;
    let root = xml::parse(&document)
        .map_err(|err| refused(Malformed, format!("SAMLResponse: {}", err.describe())))?;
    if !root.is(NS_SAMLP, "Response") {
        return Err(refused(
            Malformed,
            "the root element is not a samlp:Response",
        ));
    }
    let status = root
        .child(NS_SAMLP, "Status")
        .and_then(|s| s.child(NS_SAMLP, "StatusCode"))
        .and_then(|c| c.attr("Value"))
        .ok_or_else(|| refused(Malformed, "the response has no samlp:StatusCode"))?;
    if status.trim() != STATUS_SUCCESS {
        return Err(refused(
            Denied,
            "the identity provider's status is not Success",
        ));
    }

    // Shape, before any signature is verified: one assertion, directly in the response, signed
    // by a signature of its own; every signature references its parent element only.
    if root
        .descendants()
        .iter()
        .any(|e| e.is(NS_SAML, "EncryptedAssertion") || e.ns == NS_XENC)
    {
        return Err(refused(
            Malformed,
            "encrypted assertions are not accepted (the hub publishes no encryption key)",
        ));
    }
    let assertions = root
        .descendants()
        .into_iter()
        .filter(|e| e.is(NS_SAML, "Assertion"))
        .count();
    if assertions == 0 {
        return Err(refused(Malformed, "the response holds no saml:Assertion"));
    }
    if assertions > 1 {
        return Err(refused(
            Signature,
            "the response holds more than one saml:Assertion (signature wrapping)",
        ));
    }
    let assertion = root.child(NS_SAML, "Assertion").ok_or_else(|| {
        refused(
            Signature,
            "the saml:Assertion is not a child of the samlp:Response (signature wrapping)",
        )
    })?;
    let assertion_id = assertion
        .attr("ID")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| refused(Malformed, "the saml:Assertion has no ID"))?
        .to_owned();
    check_signature_placement(&root)?;
    if assertion.child(NS_DS, "Signature").is_none() {
        return Err(refused(Signature, "the saml:Assertion is not signed"));
    }

    // Every signature in the document verified with the metadata's certificates; what no
    // signature covers is removed.
    let certificates: Vec<CertificateDer> = idp
        .certificates_der()
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect();
    let reduced = XmlSec::reduce_xml_to_signed_with_allowed_algorithms(
        &document,
        &certificates,
        ReduceMode::ValidateAndMarkNoAncestors,
        Some(&ALLOWED_ALGORITHMS),
    )
    .map_err(|_| {
        refused(
            Signature,
            "a signature does not verify with the identity provider's certificate",
        )
    })?;
    let reduced = xml::parse(&reduced)
        .map_err(|_| refused(Signature, "the signed content could not be read back"))?;
    let signed = if reduced.is(NS_SAML, "Assertion") {
        &reduced
    } else if reduced.is(NS_SAMLP, "Response") {
        reduced
            .child(NS_SAML, "Assertion")
            .ok_or_else(|| refused(Signature, "the signed content holds no saml:Assertion"))?
    } else {
        return Err(refused(
            Signature,
            "the signed content is not the assertion",
        ));
    };
    if signed.attr("ID") != Some(assertion_id.as_str()) {
        return Err(refused(
            Signature,
            "the signed assertion is not the one read",
        ));
    }
    // The envelope is not covered by the assertion's signature: it may only make things fail.
    if let Some(issuer) = root.child(NS_SAML, "Issuer")
        && issuer.trimmed_text() != idp.entity_id()
    {
        return Err(refused(
            RefusalReason::Issuer,
            "the response's Issuer is not the identity provider's entity id",
        ));
    }
    if let Some(destination) = root.attr("Destination")
        && destination.trim() != sp.acs_url
    {
        return Err(refused(
            RefusalReason::Recipient,
            "the response's Destination is not this assertion consumer service",
        ));
    }
    let mut checked = check_assertion(idp, sp, signed, now)?;
    if let (Some(outer), Some(inner)) = (root.attr("InResponseTo"), &checked.in_response_to)
        && outer != inner
    {
        return Err(refused(
            RefusalReason::UnknownRequest,
            "the response's InResponseTo differs from the assertion's",
        ));
    }
    checked.assertion_id = assertion_id;
    Ok(checked)
}

/// Each `ds:Signature` must sit directly in the response or the assertion, with one
/// `Reference` to its parent's `ID` and only the usual transforms: no reference xmlsec would
/// resolve elsewhere (another element, a file, a URL).
fn check_signature_placement(root: &Element) -> Result<(), Refused> {
    fn walk(parent: &Element, top: bool) -> Result<(), Refused> {
        for child in &parent.children {
            if child.is(NS_DS, "Signature") {
                let allowed_parent = top || parent.is(NS_SAML, "Assertion");
                if !allowed_parent {
                    return Err(refused(
                        RefusalReason::Signature,
                        "a ds:Signature is neither in the response nor in the assertion",
                    ));
                }
                check_signature(child, parent)?;
            } else {
                walk(child, false)?;
            }
        }
        Ok(())
    }
    walk(root, true)
}

fn check_signature(signature: &Element, parent: &Element) -> Result<(), Refused> {
    let bad = |detail: &str| refused(RefusalReason::Signature, detail.to_owned());
    let parent_id = parent
        .attr("ID")
        .ok_or_else(|| bad("a signed element has no ID"))?;
    let signed_info = signature
        .child(NS_DS, "SignedInfo")
        .ok_or_else(|| bad("a ds:Signature has no ds:SignedInfo"))?;
    let c14n = signed_info
        .child(NS_DS, "CanonicalizationMethod")
        .and_then(|m| m.attr("Algorithm"))
        .ok_or_else(|| bad("a ds:SignedInfo has no ds:CanonicalizationMethod"))?;
    if !ALLOWED_TRANSFORMS.contains(&c14n) {
        return Err(bad("a ds:CanonicalizationMethod is not accepted"));
    }
    let mut references = signed_info.children_named(NS_DS, "Reference");
    let reference = references
        .next()
        .ok_or_else(|| bad("a ds:SignedInfo has no ds:Reference"))?;
    if references.next().is_some() {
        return Err(bad("a ds:SignedInfo has more than one ds:Reference"));
    }
    if reference.attr("URI").and_then(|u| u.strip_prefix('#')) != Some(parent_id) {
        return Err(bad(
            "a ds:Reference does not point to the element holding its signature",
        ));
    }
    let transforms = reference
        .children_named(NS_DS, "Transforms")
        .flat_map(|t| t.children_named(NS_DS, "Transform"));
    for transform in transforms {
        if !transform
            .attr("Algorithm")
            .is_some_and(|a| ALLOWED_TRANSFORMS.contains(&a))
        {
            return Err(bad("a ds:Transform is not accepted"));
        }
    }
    Ok(())
}

fn instant(element: &Element, attribute: &str) -> Result<Option<OffsetDateTime>, Refused> {
    element
        .attr(attribute)
        .map(|text| {
            OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| {
                refused(
                    RefusalReason::Malformed,
                    format!("{attribute} of {} is not a date-time", element.name),
                )
            })
        })
        .transpose()
}

/// The checks on the signed assertion; `assertion_id` is filled in by the caller.
fn check_assertion(
    idp: &IdpMetadata,
    sp: &ServiceProvider,
    assertion: &Element,
    now: OffsetDateTime,
) -> Result<SamlAssertion, Refused> {
    use RefusalReason::{Audience, Expired, Issuer, Malformed, Recipient};
    let issuer = assertion
        .child(NS_SAML, "Issuer")
        .ok_or_else(|| refused(Malformed, "the assertion has no saml:Issuer"))?;
    if issuer.trimmed_text() != idp.entity_id() {
        return Err(refused(
            Issuer,
            "the assertion's Issuer is not the identity provider's entity id",
        ));
    }

    let issued = instant(assertion, "IssueInstant")?
        .ok_or_else(|| refused(Malformed, "the assertion has no IssueInstant"))?;
    if issued > now + CLOCK_SKEW {
        return Err(refused(
            Expired,
            "the assertion's IssueInstant is in the future",
        ));
    }
    let mut not_on_or_after = issued + MAX_ASSERTION_AGE;
    if now >= not_on_or_after + CLOCK_SKEW {
        return Err(refused(Expired, "the assertion was issued too long ago"));
    }

    let conditions = assertion
        .child(NS_SAML, "Conditions")
        .ok_or_else(|| refused(Audience, "the assertion has no saml:Conditions"))?;
    if let Some(not_before) = instant(conditions, "NotBefore")?
        && now + CLOCK_SKEW < not_before
    {
        return Err(refused(
            Expired,
            "the assertion is not valid yet (Conditions NotBefore)",
        ));
    }
    if let Some(end) = instant(conditions, "NotOnOrAfter")? {
        if now >= end + CLOCK_SKEW {
            return Err(refused(
                Expired,
                "the assertion has expired (Conditions NotOnOrAfter)",
            ));
        }
        not_on_or_after = not_on_or_after.min(end);
    }
    let mut restrictions = conditions
        .children_named(NS_SAML, "AudienceRestriction")
        .peekable();
    if restrictions.peek().is_none() {
        return Err(refused(
            Audience,
            "the assertion has no saml:AudienceRestriction",
        ));
    }
    for restriction in restrictions {
        if !restriction
            .children_named(NS_SAML, "Audience")
            .any(|a| a.trimmed_text() == sp.entity_id)
        {
            return Err(refused(
                Audience,
                "the assertion's Audience is not this service provider",
            ));
        }
    }

    let subject = assertion
        .child(NS_SAML, "Subject")
        .ok_or_else(|| refused(Malformed, "the assertion has no saml:Subject"))?;
    let name_id = subject
        .child(NS_SAML, "NameID")
        .filter(|n| !n.trimmed_text().is_empty())
        .ok_or_else(|| refused(Malformed, "the assertion's Subject has no NameID"))?;
    let mut first_refusal = None;
    let mut confirmed = None;
    for confirmation in subject
        .children_named(NS_SAML, "SubjectConfirmation")
        .filter(|c| c.attr("Method").map(str::trim) == Some(BEARER))
    {
        let Some(data) = confirmation.child(NS_SAML, "SubjectConfirmationData") else {
            first_refusal.get_or_insert(refused(
                Malformed,
                "a bearer SubjectConfirmation has no SubjectConfirmationData",
            ));
            continue;
        };
        if data.attr("Recipient").map(str::trim) != Some(sp.acs_url.as_str()) {
            first_refusal.get_or_insert(refused(
                Recipient,
                "the SubjectConfirmationData Recipient is not this assertion consumer service",
            ));
            continue;
        }
        let Some(end) = instant(data, "NotOnOrAfter")? else {
            first_refusal.get_or_insert(refused(
                Malformed,
                "the SubjectConfirmationData has no NotOnOrAfter",
            ));
            continue;
        };
        if now >= end + CLOCK_SKEW {
            first_refusal.get_or_insert(refused(
                Expired,
                "the assertion has expired (SubjectConfirmationData NotOnOrAfter)",
            ));
            continue;
        }
        if let Some(not_before) = instant(data, "NotBefore")?
            && now + CLOCK_SKEW < not_before
        {
            first_refusal.get_or_insert(refused(
                Expired,
                "the assertion is not valid yet (SubjectConfirmationData NotBefore)",
            ));
            continue;
        }
        confirmed = Some((data, end));
        break;
    }
    let Some((data, end)) = confirmed else {
        return Err(first_refusal.unwrap_or_else(|| {
            refused(
                Malformed,
                "the assertion's Subject has no bearer SubjectConfirmation",
            )
        }));
    };
    not_on_or_after = not_on_or_after.min(end) + CLOCK_SKEW;
    let in_response_to = data
        .attr("InResponseTo")
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned);

    let attributes = attributes(assertion);
    let email = if name_id.attr("Format").map(str::trim) == Some(NAME_ID_EMAIL) {
        Some(name_id.trimmed_text().to_owned())
    } else {
        EMAIL_ATTRIBUTES
            .iter()
            .find_map(|name| attributes.get(*name).and_then(|values| values.first()))
            .cloned()
    }
    .filter(|email| plausible_email(email));
    Ok(SamlAssertion {
        identity: VerifiedIdentity {
            subject: name_id.trimmed_text().to_owned(),
            email_verified: email.is_some(),
            email,
            attributes,
        },
        assertion_id: String::new(),
        in_response_to,
        not_on_or_after,
    })
}

/// The attribute statements as text: each attribute by its `Name`, and also by its
/// `FriendlyName` when it has one that is not already a name; nil values left out.
fn attributes(assertion: &Element) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut friendly = Vec::new();
    for attribute in assertion
        .children_named(NS_SAML, "AttributeStatement")
        .flat_map(|s| s.children_named(NS_SAML, "Attribute"))
    {
        let Some(name) = attribute
            .attr("Name")
            .map(str::trim)
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        let values: Vec<String> = attribute
            .children_named(NS_SAML, "AttributeValue")
            .filter(|v| {
                !v.attributes.iter().any(|a| {
                    a.ns == XSI && a.name == "nil" && matches!(a.value.trim(), "true" | "1")
                })
            })
            .map(|v| v.trimmed_text().to_owned())
            .collect();
        if let Some(friendly_name) = attribute.attr("FriendlyName").map(str::trim)
            && !friendly_name.is_empty()
            && friendly_name != name
        {
            friendly.push((friendly_name.to_owned(), values.clone()));
        }
        out.entry(name.to_owned()).or_default().extend(values);
    }
    for (name, values) in friendly {
        out.entry(name).or_insert(values);
    }
    out
}

/// Something shaped like an address (the app matches it with its members' addresses; it is
/// not a validation).
fn plausible_email(email: &str) -> bool {
    email.len() <= 320
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
}
