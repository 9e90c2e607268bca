use super::claims::attributes;
use super::*;
use serde_json::json;

fn map(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

#[test]
fn attributes_are_text_bounded_and_leave_token_claims_out() {
    let long = "x".repeat(MAX_CODE_CHARS);
    let many: Vec<String> = (0..100).map(|i| format!("g{i}")).collect();
    let attrs = attributes(&map(json!({
        "iss": "https://idp.example",
        "nonce": "n",
        "sub": "s",
        "name": "Ann",
        "email_verified": true,
        "age": 42,
        "groups": many,
        "address": {"formatted": "somewhere"},
        "long": long,
        "empty": [],
        "nothing": null,
    })));
    assert_eq!(
        attrs.keys().map(String::as_str).collect::<Vec<_>>(),
        ["age", "email_verified", "groups", "name"]
    );
    assert_eq!(
        attrs.get("age").map(Vec::as_slice),
        Some(&["42".to_owned()][..])
    );
    assert_eq!(attrs.get("groups").map(Vec::len), Some(32));

    let mut wide = serde_json::Map::new();
    for i in 0..200 {
        wide.insert(format!("claim{i:03}"), json!("v"));
    }
    assert_eq!(attributes(&wide).len(), 64);
}

#[test]
fn parse_errors_name_fields_never_values() {
    let detail = |body: &str| match serde_path_to_json::<Metadata>(body.as_bytes(), DISCOVERY) {
        Err(OidcError::Invalid { detail, .. }) => detail,
        other => format!("unexpected {other:?}"),
    };
    assert!(detail("<html>secret-value</html>").contains("not JSON"));
    assert!(detail("{\"issuer\": \"https://a.example\"}").contains("`authorization_endpoint`"));
    let wrong = detail("{\"issuer\": \"secret-value\"}");
    assert!(
        wrong.contains("`issuer`") && !wrong.contains("secret-value"),
        "{wrong}"
    );
}

#[test]
fn debug_output_holds_no_secret() {
    let pending = Pending::from_parts("st".repeat(20), "no".repeat(20), "ve".repeat(20));
    let shown = format!("{pending:?}");
    assert!(!shown.contains("stst") && !shown.contains("nono") && !shown.contains("veve"));
}

fn is_send<T: Send>(_: &T) {}

/// The server calls these from request handlers, which need `Send` futures.
#[test]
fn futures_are_send() {
    let ctx = Context::new(lockstep_connectors::EgressPolicy::default(), None);
    let issuer = Issuer::parse("https://idp.example").unwrap();
    let settings = OidcSettings::new(issuer, "client".to_owned(), None);
    is_send(&discover(&ctx, &settings));
    let metadata: Metadata = serde_json::from_value(json!({
        "issuer": "https://idp.example",
        "authorization_endpoint": "https://idp.example/auth",
        "jwks_uri": "https://idp.example/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .unwrap();
    let provider = Provider {
        metadata,
        algorithms: vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256],
        ctx,
    };
    let pending = Pending::from_parts("s".into(), "n".into(), "v".into());
    let redirect = Url::parse("https://hub.example/cb").unwrap();
    is_send(&finish(
        &provider,
        &settings,
        &redirect,
        &pending,
        "s",
        "code",
        OffsetDateTime::UNIX_EPOCH,
    ));
}
