//! IdP metadata in ([`IdpMetadata::parse`]) and the hub's SP metadata out ([`sp_metadata_xml`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use quick_xml::escape::escape;
use url::Url;

use super::xml::{self, Element, NS_DS, NS_MD};
use super::{IdpMetadata, MAX_METADATA_BYTES, NAME_ID_EMAIL, SamlError, ServiceProvider};

pub(crate) const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub(crate) const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";

impl IdpMetadata {
    /// Reads an IdP's metadata (one `md:EntityDescriptor`, as pasted or uploaded by an
    /// Administrator): its entity id, its HTTP-Redirect single sign-on URL and its signing
    /// certificates. Refuses documents over [`MAX_METADATA_BYTES`], any DOCTYPE or entity
    /// declaration (before parsing), and says what is missing.
    pub fn parse(xml: &str) -> Result<IdpMetadata, SamlError> {
        if xml.len() > MAX_METADATA_BYTES {
            return Err(SamlError::TooLarge {
                limit: MAX_METADATA_BYTES,
            });
        }
        let root = xml::parse(xml).map_err(|err| SamlError::Xml(err.describe()))?;
        if !root.is(NS_MD, "EntityDescriptor") {
            return Err(SamlError::NotEntityDescriptor);
        }
        let entity_id = root
            .attr("entityID")
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or(SamlError::MissingEntityId)?
            .to_owned();
        let descriptor = root
            .children_named(NS_MD, "IDPSSODescriptor")
            .find(|d| {
                d.attr("protocolSupportEnumeration")
                    .is_some_and(|p| p.split_whitespace().any(|p| p == PROTOCOL))
            })
            .ok_or(SamlError::MissingIdpDescriptor)?;
        if descriptor
            .attr("WantAuthnRequestsSigned")
            .is_some_and(|v| matches!(v.trim(), "true" | "1"))
        {
            return Err(SamlError::SignedRequestsRequired);
        }
        let location = descriptor
            .children_named(NS_MD, "SingleSignOnService")
            .find(|s| s.attr("Binding").map(str::trim) == Some(BINDING_REDIRECT))
            .ok_or(SamlError::MissingRedirectEndpoint)?
            .attr("Location")
            .ok_or(SamlError::InvalidRedirectEndpoint)?;
        let sso_redirect_url = Url::parse(location.trim())
            .ok()
            .filter(|url| matches!(url.scheme(), "https" | "http") && url.host().is_some())
            .ok_or(SamlError::InvalidRedirectEndpoint)?;

        let mut certificates = Vec::new();
        for key in descriptor.children_named(NS_MD, "KeyDescriptor") {
            if !matches!(key.attr("use").map(str::trim), None | Some("signing" | "")) {
                continue;
            }
            for text in certificate_texts(key) {
                let index = certificates.len() + 1;
                let der =
                    decode_certificate(text).ok_or(SamlError::InvalidCertificate { index })?;
                certificates.push(der);
            }
        }
        if certificates.is_empty() {
            return Err(SamlError::MissingCertificate);
        }
        Ok(IdpMetadata {
            entity_id,
            sso_redirect_url,
            certificates,
        })
    }

    pub(crate) fn certificates_der(&self) -> &[Vec<u8>] {
        &self.certificates
    }
}

fn certificate_texts(key: &Element) -> impl Iterator<Item = &str> {
    key.children_named(NS_DS, "KeyInfo")
        .flat_map(|info| info.children_named(NS_DS, "X509Data"))
        .flat_map(|data| data.children_named(NS_DS, "X509Certificate"))
        .map(|cert| cert.text.as_str())
}

/// The DER of a base64 certificate (white space allowed), when it is a valid X.509 certificate.
fn decode_certificate(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(compact).ok()?;
    openssl::x509::X509::from_der(&der).ok()?;
    Some(der)
}

/// The hub's SP metadata for one organization: its entity id, an HTTP-POST assertion consumer
/// service, `WantAssertionsSigned="true"`, unsigned requests (the hub has no SP key).
pub fn sp_metadata_xml(sp: &ServiceProvider) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="{NS_MD}" entityID="{entity_id}">
  <md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" protocolSupportEnumeration="{PROTOCOL}">
    <md:NameIDFormat>{NAME_ID_EMAIL}</md:NameIDFormat>
    <md:AssertionConsumerService Binding="{BINDING_POST}" Location="{acs}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"#,
        entity_id = escape(sp.entity_id.as_str()),
        acs = escape(sp.acs_url.as_str()),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn sp_metadata_reads_back() {
        let sp = ServiceProvider::for_organization(
            &Url::parse("https://hub.example.com/").unwrap(),
            "org&1",
        )
        .unwrap();
        let text = sp_metadata_xml(&sp);
        let root = xml::parse(&text).unwrap();
        assert!(root.is(NS_MD, "EntityDescriptor"));
        assert_eq!(
            root.attr("entityID"),
            Some("https://hub.example.com/api/v1/sso/saml/org&1/metadata")
        );
        let descriptor = root.child(NS_MD, "SPSSODescriptor").unwrap();
        assert_eq!(descriptor.attr("WantAssertionsSigned"), Some("true"));
        let acs = descriptor.child(NS_MD, "AssertionConsumerService").unwrap();
        assert_eq!(acs.attr("Binding"), Some(BINDING_POST));
        assert_eq!(acs.attr("Location"), Some(sp.acs_url.as_str()));
    }

    #[test]
    fn metadata_errors_name_what_is_missing() {
        let md = |inner: &str| {
            format!(
                r#"<md:EntityDescriptor xmlns:md="{NS_MD}" entityID="https://idp"><md:IDPSSODescriptor protocolSupportEnumeration="{PROTOCOL}">{inner}</md:IDPSSODescriptor></md:EntityDescriptor>"#
            )
        };
        assert_eq!(
            IdpMetadata::parse(&md("")),
            Err(SamlError::MissingRedirectEndpoint)
        );
        let redirect = format!(
            r#"<md:SingleSignOnService Binding="{BINDING_REDIRECT}" Location="https://idp/sso"/>"#
        );
        assert_eq!(
            IdpMetadata::parse(&md(&redirect)),
            Err(SamlError::MissingCertificate)
        );
        let bad_cert = format!(
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="{NS_DS}"><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>{redirect}"#
        );
        assert_eq!(
            IdpMetadata::parse(&md(&bad_cert)),
            Err(SamlError::InvalidCertificate { index: 1 })
        );
        assert_eq!(
            IdpMetadata::parse(&format!(r#"<md:EntityDescriptor xmlns:md="{NS_MD}"/>"#)),
            Err(SamlError::MissingEntityId)
        );
        assert_eq!(
            IdpMetadata::parse("<x/>"),
            Err(SamlError::NotEntityDescriptor)
        );
        assert!(matches!(
            IdpMetadata::parse("<!DOCTYPE x><x/>"),
            Err(SamlError::Xml(_))
        ));
        assert_eq!(
            IdpMetadata::parse(&" ".repeat(MAX_METADATA_BYTES + 1)),
            Err(SamlError::TooLarge {
                limit: MAX_METADATA_BYTES
            })
        );
    }
}
