//! The `AuthnRequest`, sent by the HTTP-Redirect binding (raw DEFLATE, base64, `SAMLRequest`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use quick_xml::escape::escape;
use time::{OffsetDateTime, UtcOffset};

use super::metadata::BINDING_POST;
use super::xml::{NS_SAML, NS_SAMLP};
use super::{AuthnRedirect, IdpMetadata, ServiceProvider};

const NAME_ID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

/// Starts a sign-in: an `AuthnRequest` with a new random id from `rng`, issued `now`, asking
/// `idp` to answer by HTTP-POST at `sp`'s assertion consumer service. `relay_state`, when
/// given, comes back with the answer unchanged (at most 80 bytes by the SAML bindings; the app
/// should pass an opaque reference, never personal data).
pub fn begin(
    idp: &IdpMetadata,
    sp: &ServiceProvider,
    relay_state: Option<&str>,
    now: OffsetDateTime,
    rng: &mut impl rand::CryptoRng,
) -> AuthnRedirect {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    // An NCName: it must not start with a digit.
    let request_id: String = std::iter::once("_".to_owned())
        .chain(bytes.iter().map(|byte| format!("{byte:02x}")))
        .collect();
    let xml = authn_request_xml(idp, sp, &request_id, now);
    let deflated = miniz_oxide::deflate::compress_to_vec(xml.as_bytes(), 6);
    let mut redirect_url = idp.sso_redirect_url().clone();
    {
        let mut query = redirect_url.query_pairs_mut();
        query.append_pair("SAMLRequest", &STANDARD.encode(deflated));
        if let Some(relay_state) = relay_state {
            query.append_pair("RelayState", relay_state);
        }
    }
    AuthnRedirect {
        redirect_url,
        request_id,
    }
}

fn authn_request_xml(
    idp: &IdpMetadata,
    sp: &ServiceProvider,
    request_id: &str,
    now: OffsetDateTime,
) -> String {
    format!(
        r#"<samlp:AuthnRequest xmlns:samlp="{NS_SAMLP}" xmlns:saml="{NS_SAML}" ID="{request_id}" Version="2.0" IssueInstant="{instant}" Destination="{destination}" AssertionConsumerServiceURL="{acs}" ProtocolBinding="{BINDING_POST}"><saml:Issuer>{issuer}</saml:Issuer><samlp:NameIDPolicy Format="{NAME_ID_UNSPECIFIED}" AllowCreate="true"/></samlp:AuthnRequest>"#,
        instant = xs_date_time(now),
        destination = escape(idp.sso_redirect_url().as_str()),
        acs = escape(sp.acs_url.as_str()),
        issuer = escape(sp.entity_id.as_str()),
    )
}

/// `YYYY-MM-DDThh:mm:ssZ` in UTC (SAML's `xs:dateTime` without fractions).
pub(crate) fn xs_date_time(instant: OffsetDateTime) -> String {
    let utc = instant.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::saml::xml;
    use url::Url;

    #[test]
    fn the_request_inflates_to_an_authn_request_for_our_acs() {
        let idp = IdpMetadata {
            entity_id: "https://idp".to_owned(),
            sso_redirect_url: Url::parse("https://idp.example/sso?tenant=a").unwrap(),
            certificates: Vec::new(),
        };
        let sp =
            ServiceProvider::for_organization(&Url::parse("https://hub").unwrap(), "o1").unwrap();
        let now = time::macros::datetime!(2026-12-07 11:30:05 UTC);
        let request = begin(&idp, &sp, Some("rs"), now, &mut rand::rng());
        let pairs: Vec<(String, String)> = request
            .redirect_url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(pairs[0], ("tenant".to_owned(), "a".to_owned()));
        assert_eq!(pairs[1].0, "SAMLRequest");
        assert_eq!(pairs[2], ("RelayState".to_owned(), "rs".to_owned()));
        let deflated = STANDARD.decode(&pairs[1].1).unwrap();
        let inflated = miniz_oxide::inflate::decompress_to_vec(&deflated).unwrap();
        let root = xml::parse(std::str::from_utf8(&inflated).unwrap()).unwrap();
        assert!(root.is(NS_SAMLP, "AuthnRequest"));
        assert_eq!(root.attr("ID"), Some(request.request_id.as_str()));
        assert_eq!(root.attr("IssueInstant"), Some("2026-12-07T11:30:05Z"));
        assert_eq!(
            root.attr("AssertionConsumerServiceURL"),
            Some(sp.acs_url.as_str())
        );
        assert_eq!(root.child(NS_SAML, "Issuer").unwrap().text, sp.entity_id);
        let other = begin(&idp, &sp, None, now, &mut rand::rng());
        assert_ne!(other.request_id, request.request_id);
        assert_eq!(request.request_id.len(), 33);
    }
}
