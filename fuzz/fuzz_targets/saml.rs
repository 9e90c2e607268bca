//! SAML: IdP metadata as an Administrator pastes it, and a `SAMLResponse` as a browser posts it.
//! The first byte picks which: 0 metadata; 1 the rest is the response XML (base64-encoded here,
//! as the form carries it); 2 the rest is the form value as posted. Responses are checked
//! against a fixed IdP (`saml_idp_metadata.xml`, the test IdP whose signed answers seed the
//! corpus) and hub, at a fixed instant shortly after the seeds were issued.
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use lockstep_sso::saml::{self, IdpMetadata, ServiceProvider};

const IDP_METADATA: &str = include_str!("saml_idp_metadata.xml");

fn fixed() -> &'static (IdpMetadata, ServiceProvider) {
    static FIXED: OnceLock<(IdpMetadata, ServiceProvider)> = OnceLock::new();
    FIXED.get_or_init(|| {
        let idp = IdpMetadata::parse(IDP_METADATA).expect("the fixed IdP metadata parses");
        let hub = url::Url::parse("https://hub.example.test/").expect("a URL");
        let sp = ServiceProvider::for_organization(&hub, "fuzz").expect("a service provider");
        (idp, sp)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (idp, sp) = fixed();
    let now = time::macros::datetime!(2026-12-07 12:04:00 UTC);
    match pick % 3 {
        0 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = IdpMetadata::parse(text);
            }
        }
        1 => {
            let form = base64::engine::general_purpose::STANDARD.encode(rest);
            let _ = saml::verify_response(idp, sp, &form, now);
        }
        _ => {
            if let Ok(form) = std::str::from_utf8(rest) {
                let _ = saml::verify_response(idp, sp, form, now);
            }
        }
    }
});
