//! SAML 2.0 against a real identity provider (pysaml2 with xmlsec1, `tests/peers/saml`): a full
//! sign-in, and every answer an attacker or a broken IdP could post refused with its reason.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lockstep_sso::saml::{
    self, AuthnRedirect, IdpMetadata, MAX_RESPONSE_BYTES, SamlAssertion, SamlError, ServiceProvider,
};
use lockstep_sso::testing::{PostedForm, SamlFault, SamlPeer, TestSignIn};
use lockstep_sso::{RefusalReason, Refused};
use time::{Duration, OffsetDateTime};
use url::Url;

const EMAIL: &str = "ada.lovelace@example.com";

struct Setup {
    peer: SamlPeer,
    idp: IdpMetadata,
    sp: ServiceProvider,
}

async fn setup() -> Setup {
    let peer = SamlPeer::start().await.unwrap();
    let idp = IdpMetadata::parse(&peer.metadata_xml().await.unwrap()).unwrap();
    let sp = ServiceProvider::for_organization(
        &Url::parse("https://hub.example.test/").unwrap(),
        "0193a0b4-0000-7000-8000-000000000001",
    )
    .unwrap();
    peer.register_sp(&saml::sp_metadata_xml(&sp)).await.unwrap();
    Setup { peer, idp, sp }
}

fn user() -> TestSignIn {
    TestSignIn {
        email: EMAIL.to_owned(),
        attributes: vec![
            ("mail".to_owned(), vec![EMAIL.to_owned()]),
            ("displayName".to_owned(), vec!["Ada Lovelace".to_owned()]),
            (
                "eduPersonAffiliation".to_owned(),
                vec!["staff".to_owned(), "member".to_owned()],
            ),
        ],
        ..TestSignIn::default()
    }
}

impl Setup {
    fn begin(&self) -> AuthnRedirect {
        saml::begin(
            &self.idp,
            &self.sp,
            Some("relay-1"),
            OffsetDateTime::now_utc(),
            &mut rand::rng(),
        )
    }

    async fn sign_in(&self, sign_in: TestSignIn) -> (AuthnRedirect, PostedForm) {
        let request = self.begin();
        let form = self
            .peer
            .sign_in(&request.redirect_url, &sign_in)
            .await
            .unwrap();
        (request, form)
    }

    fn verify(&self, saml_response: &str) -> Result<SamlAssertion, Refused> {
        saml::verify_response(
            &self.idp,
            &self.sp,
            saml_response,
            OffsetDateTime::now_utc(),
        )
    }

    async fn refused_with(&self, fault: SamlFault) -> Refused {
        let (_, form) = self.sign_in(TestSignIn { fault, ..user() }).await;
        self.verify(&form.saml_response).unwrap_err()
    }
}

fn encode(xml: &str) -> String {
    STANDARD.encode(xml)
}

#[tokio::test]
async fn a_full_sign_in_returns_the_signed_email_and_attributes() {
    let setup = setup().await;
    let (request, form) = setup.sign_in(user()).await;
    assert_eq!(form.acs_url, setup.sp.acs_url, "the IdP posts to our ACS");
    assert_eq!(form.relay_state.as_deref(), Some("relay-1"));
    let before = OffsetDateTime::now_utc();
    let assertion = setup.verify(&form.saml_response).unwrap();
    assert_eq!(assertion.identity.email.as_deref(), Some(EMAIL));
    assert!(assertion.identity.email_verified);
    assert_eq!(assertion.identity.subject, EMAIL);
    assert_eq!(
        assertion.identity.attributes.get("displayName"),
        Some(&vec!["Ada Lovelace".to_owned()])
    );
    assert_eq!(
        assertion.identity.attributes.get("eduPersonAffiliation"),
        Some(&vec!["staff".to_owned(), "member".to_owned()])
    );
    assert_eq!(
        assertion.in_response_to.as_deref(),
        Some(request.request_id.as_str())
    );
    assert!(!assertion.assertion_id.is_empty());
    assert!(assertion.not_on_or_after > before);
    assert!(assertion.not_on_or_after <= before + saml::MAX_ASSERTION_AGE + saml::CLOCK_SKEW);
    // Debug never shows the address.
    assert!(!format!("{assertion:?}").contains(EMAIL));

    // The same response posted again verifies the same way: the app refuses it by its
    // assertion id (replay memory), which stays the same.
    let again = setup.verify(&form.saml_response).unwrap();
    assert_eq!(again.assertion_id, assertion.assertion_id);
    // After its validity the same response is expired.
    let later = saml::verify_response(
        &setup.idp,
        &setup.sp,
        &form.saml_response,
        assertion.not_on_or_after + Duration::seconds(1),
    )
    .unwrap_err();
    assert_eq!(later.reason, RefusalReason::Expired);
}

#[tokio::test]
async fn a_signed_response_around_a_signed_assertion_is_accepted_too() {
    let setup = setup().await;
    let (_, form) = setup
        .sign_in(TestSignIn {
            sign_response: true,
            ..user()
        })
        .await;
    let assertion = setup.verify(&form.saml_response).unwrap();
    assert_eq!(assertion.identity.email.as_deref(), Some(EMAIL));
}

#[tokio::test]
async fn the_email_comes_from_the_mail_attribute_when_the_name_id_is_not_one() {
    let setup = setup().await;
    let (_, form) = setup
        .sign_in(TestSignIn {
            persistent_name_id: Some("u-4711".to_owned()),
            ..user()
        })
        .await;
    let assertion = setup.verify(&form.saml_response).unwrap();
    assert_eq!(assertion.identity.subject, "u-4711");
    assert_eq!(assertion.identity.email.as_deref(), Some(EMAIL));
    assert!(assertion.identity.email_verified);

    let (_, form) = setup
        .sign_in(TestSignIn {
            persistent_name_id: Some("u-4712".to_owned()),
            attributes: vec![("displayName".to_owned(), vec!["No Mail".to_owned()])],
            ..user()
        })
        .await;
    let assertion = setup.verify(&form.saml_response).unwrap();
    assert_eq!(
        assertion.identity.email, None,
        "no address: the app refuses (email)"
    );
    assert!(!assertion.identity.email_verified);
}

#[tokio::test]
async fn an_unsigned_assertion_is_refused_even_in_a_signed_response() {
    let setup = setup().await;
    let refused = setup.refused_with(SamlFault::Unsigned).await;
    assert_eq!(refused.reason, RefusalReason::Signature, "{refused}");
    let refused = setup.refused_with(SamlFault::ResponseSignedOnly).await;
    assert_eq!(refused.reason, RefusalReason::Signature, "{refused}");
}

#[tokio::test]
async fn a_signed_assertion_wrapped_in_an_unsigned_one_is_refused() {
    let setup = setup().await;
    let (_, form) = setup
        .sign_in(TestSignIn {
            fault: SamlFault::Wrapping,
            ..user()
        })
        .await;
    assert!(
        form.response_xml()
            .unwrap()
            .contains("attacker@evil.example")
    );
    let refused = setup.verify(&form.saml_response).unwrap_err();
    assert_eq!(refused.reason, RefusalReason::Signature, "{refused}");
    assert!(refused.detail.contains("wrapping"), "{refused}");
}

#[tokio::test]
async fn an_attribute_changed_after_signing_is_refused() {
    let setup = setup().await;
    let refused = setup.refused_with(SamlFault::AlteredAttribute).await;
    assert_eq!(refused.reason, RefusalReason::Signature, "{refused}");
}

#[tokio::test]
async fn an_assertion_for_another_service_provider_is_refused() {
    let setup = setup().await;
    let refused = setup.refused_with(SamlFault::WrongAudience).await;
    assert_eq!(refused.reason, RefusalReason::Audience, "{refused}");
}

#[tokio::test]
async fn an_expired_assertion_is_refused() {
    let setup = setup().await;
    let refused = setup.refused_with(SamlFault::Expired).await;
    assert_eq!(refused.reason, RefusalReason::Expired, "{refused}");
}

#[tokio::test]
async fn an_assertion_for_another_recipient_is_refused() {
    let setup = setup().await;
    let other = "https://hub.example.test/api/v1/sso/saml/another-org/acs".to_owned();
    let refused = setup.refused_with(SamlFault::Recipient(other)).await;
    assert_eq!(refused.reason, RefusalReason::Recipient, "{refused}");
}

#[tokio::test]
async fn a_denied_sign_in_is_refused_as_denied() {
    let setup = setup().await;
    let refused = setup.refused_with(SamlFault::Denied).await;
    assert_eq!(refused.reason, RefusalReason::Denied, "{refused}");
}

#[tokio::test]
async fn unsolicited_answers_carry_what_the_app_needs_to_refuse_them() {
    let setup = setup().await;
    let (request, form) = setup
        .sign_in(TestSignIn {
            fault: SamlFault::InResponseTo(None),
            ..user()
        })
        .await;
    let assertion = setup.verify(&form.saml_response).unwrap();
    assert_eq!(
        assertion.in_response_to, None,
        "IdP-initiated: no InResponseTo"
    );

    let (_, form) = setup
        .sign_in(TestSignIn {
            fault: SamlFault::InResponseTo(Some("_a-request-we-never-sent".to_owned())),
            ..user()
        })
        .await;
    let assertion = setup.verify(&form.saml_response).unwrap();
    assert_eq!(
        assertion.in_response_to.as_deref(),
        Some("_a-request-we-never-sent")
    );
    assert_ne!(assertion.in_response_to, Some(request.request_id));
}

#[tokio::test]
async fn another_idp_cannot_sign_for_this_one() {
    let setup = setup().await;
    let other = setup_with_sp(setup.sp.clone()).await;
    let (_, form) = other.sign_in(user()).await;
    // Verified with this organization's IdP: the other IdP's key is not trusted.
    let refused = setup.verify(&form.saml_response).unwrap_err();
    assert_eq!(refused.reason, RefusalReason::Signature, "{refused}");

    // The right key but another entity id configured: the issuer does not match.
    let metadata = setup.peer.metadata_xml().await.unwrap();
    let renamed = metadata.replace(
        &format!("entityID=\"{}\"", setup.peer.entity_id),
        "entityID=\"https://idp.other.example/\"",
    );
    let idp = IdpMetadata::parse(&renamed).unwrap();
    let (_, form) = setup.sign_in(user()).await;
    let refused = saml::verify_response(
        &idp,
        &setup.sp,
        &form.saml_response,
        OffsetDateTime::now_utc(),
    )
    .unwrap_err();
    assert_eq!(refused.reason, RefusalReason::Issuer, "{refused}");
}

async fn setup_with_sp(sp: ServiceProvider) -> Setup {
    let peer = SamlPeer::start().await.unwrap();
    let idp = IdpMetadata::parse(&peer.metadata_xml().await.unwrap()).unwrap();
    peer.register_sp(&saml::sp_metadata_xml(&sp)).await.unwrap();
    Setup { peer, idp, sp }
}

#[tokio::test]
async fn doctype_and_entities_are_refused_before_parsing() {
    let setup = setup().await;
    let (_, form) = setup.sign_in(user()).await;
    let xml = form.response_xml().unwrap();
    let body = xml
        .trim_start_matches("<?xml version=\"1.0\"?>")
        .trim_start();
    for prologue in [
        "<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>",
        "<!DOCTYPE r SYSTEM \"file:///etc/passwd\">",
        "<!doctype r>",
    ] {
        let hostile = format!("<?xml version=\"1.0\"?>\n{prologue}\n{body}");
        let refused = setup.verify(&encode(&hostile)).unwrap_err();
        assert_eq!(refused.reason, RefusalReason::Malformed, "{refused}");
        assert!(refused.detail.contains("DOCTYPE"), "{refused}");
    }
    // An entity reference smuggled into a value, without a declaration.
    let hostile = xml.replacen(EMAIL, "&xxe;", 1);
    let refused = setup.verify(&encode(&hostile)).unwrap_err();
    assert_eq!(refused.reason, RefusalReason::Malformed, "{refused}");
}

#[tokio::test]
async fn oversized_and_malformed_responses_are_refused() {
    let setup = setup().await;
    let huge = "A".repeat(MAX_RESPONSE_BYTES + 4);
    let refused = setup.verify(&huge).unwrap_err();
    assert_eq!(refused.reason, RefusalReason::Malformed);
    assert!(refused.detail.contains("larger"), "{refused}");

    for (value, what) in [
        ("%%%not base64%%%".to_owned(), "base64"),
        (STANDARD.encode([0xff, 0xfe, 0x00]), "UTF-8"),
        (encode("not xml at all"), "XML"),
        (
            encode("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">"),
            "XML",
        ),
        (encode("<x/>"), "samlp:Response"),
        (
            encode(&format!("{}<a/>{}", "<a>".repeat(100), "</a>".repeat(100))),
            "nested",
        ),
    ] {
        let refused = setup.verify(&value).unwrap_err();
        assert_eq!(
            refused.reason,
            RefusalReason::Malformed,
            "{what}: {refused}"
        );
        assert!(refused.detail.contains(what), "{what}: {refused}");
    }

    // A real response cut short.
    let (_, form) = setup.sign_in(user()).await;
    let xml = form.response_xml().unwrap();
    let cut = xml.get(..xml.len() / 2).unwrap();
    let refused = setup.verify(&encode(cut)).unwrap_err();
    assert_eq!(refused.reason, RefusalReason::Malformed, "{refused}");
}

#[tokio::test]
async fn idp_metadata_is_read_and_checked() {
    let setup = setup().await;
    assert_eq!(setup.idp.entity_id(), setup.peer.entity_id);
    assert_eq!(setup.idp.sso_redirect_url().as_str(), setup.peer.sso_url);
    let fingerprints = setup.idp.certificate_fingerprints();
    assert_eq!(fingerprints.len(), 1);
    assert_eq!(fingerprints[0].len(), 32 * 3 - 1);

    let metadata = setup.peer.metadata_xml().await.unwrap();
    // Without its KeyDescriptor (the signing certificate).
    let start = metadata.find("<ns0:KeyDescriptor").unwrap();
    let end = metadata.find("</ns0:KeyDescriptor>").unwrap() + "</ns0:KeyDescriptor>".len();
    let without_certificate = format!("{}{}", &metadata[..start], &metadata[end..]);
    assert_eq!(
        IdpMetadata::parse(&without_certificate),
        Err(SamlError::MissingCertificate)
    );
    // Cut short, or with a DOCTYPE.
    assert!(matches!(
        IdpMetadata::parse(&metadata[..metadata.len() / 2]),
        Err(SamlError::Xml(_))
    ));
    let with_doctype =
        format!("<!DOCTYPE m [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{metadata}");
    let err = IdpMetadata::parse(&with_doctype).unwrap_err();
    assert!(matches!(err, SamlError::Xml(_)), "{err}");
    assert!(err.to_string().contains("DOCTYPE"), "{err}");
    // Not metadata at all, or an SP's.
    assert_eq!(
        IdpMetadata::parse(&saml::sp_metadata_xml(&setup.sp)),
        Err(SamlError::MissingIdpDescriptor)
    );
}
