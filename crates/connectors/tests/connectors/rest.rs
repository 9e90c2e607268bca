//! The `rest` connector's tests, against a JSON API served by the test on a loopback port.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lockstep_connectors::rest::{
    ApiKeyLocation, Pagination, RestAuth, RestConfig, RestConnector, RestObject,
};
use lockstep_connectors::{
    Connector, ConnectorError, Context, EgressPolicy, FailureKind, FieldType, ObjectKind, Record,
    Secret, Secrets,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const ITEMS: usize = 53;
const API_KEY: &str = "k-3c1d7e0b9a";
const WRONG_KEY: &str = "wrong-5b8e2f41";

type Params = Query<HashMap<String, String>>;

#[derive(Default)]
struct Hits {
    target: AtomicUsize,
    token: AtomicUsize,
}

/// The API's 53 items, `id` 1 to 53.
fn item(id: usize) -> Value {
    json!({
        "id": id,
        "name": format!("item {id}"),
        "price": id as f64 + 0.25,
        "active": id.is_multiple_of(2),
        "tags": ["a", "b"],
        "owner": {"id": id % 5},
        "note": if id.is_multiple_of(3) { Value::Null } else { json!("n") },
    })
}

/// Items `from`, `from + 1`, … (`count` of them at most, none past the last).
fn items(from: usize, count: usize) -> Vec<Value> {
    (from..from.saturating_add(count))
        .filter(|id| (1..=ITEMS).contains(id))
        .map(item)
        .collect()
}

fn all_items() -> Vec<Value> {
    items(1, ITEMS)
}

fn number(params: &HashMap<String, String>, name: &str, default: usize) -> usize {
    params
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn plain() -> Response {
    axum::Json(json!({"data": all_items()})).into_response()
}

async fn paged(Query(q): Params) -> Response {
    let page = number(&q, "page", 1);
    let size = number(&q, "per_page", 100);
    axum::Json(json!(items(page.saturating_sub(1) * size + 1, size))).into_response()
}

async fn offset(Query(q): Params) -> Response {
    let offset = number(&q, "offset", 0);
    let limit = number(&q, "limit", 100);
    axum::Json(json!({"items": items(offset + 1, limit)})).into_response()
}

async fn cursor(Query(q): Params) -> Response {
    // The cursor is the last id seen, disguised.
    let after = q
        .get("cursor")
        .and_then(|c| c.strip_prefix("after-"))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0usize);
    let page = items(after + 1, 10);
    let next = if after + 10 >= ITEMS {
        Value::Null
    } else {
        json!(format!("after-{}", after + 10))
    };
    axum::Json(json!({"results": page, "meta": {"next": next}})).into_response()
}

async fn linked(Query(q): Params) -> Response {
    let page = number(&q, "p", 1);
    let body = axum::Json(json!(items(page.saturating_sub(1) * 10 + 1, 10)));
    if page * 10 >= ITEMS {
        return body.into_response();
    }
    // Relative targets, several links and parameters: as GitHub-like APIs send them.
    let link = format!(
        r#"</v1/linked?p=1>; rel="first", </v1/linked?p={}>; title="next, please"; rel="next", </v1/linked?p=6>; rel="last""#,
        page + 1
    );
    ([(header::LINK, link)], body).into_response()
}

async fn loop_cursor() -> Response {
    axum::Json(json!({"results": [item(1)], "next": "same"})).into_response()
}

async fn evil_link() -> Response {
    (
        [(header::LINK, r#"<http://localhost:1/steal>; rel="next""#)],
        axum::Json(json!([item(1)])),
    )
        .into_response()
}

async fn keyed(headers: HeaderMap, Query(q): Params) -> Response {
    let by_header = headers.get("x-api-key").and_then(|v| v.to_str().ok()) == Some(API_KEY);
    let by_query = q.get("api_key").map(String::as_str) == Some(API_KEY);
    if by_header || by_query {
        axum::Json(json!([item(1), item(2)])).into_response()
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

async fn basic(headers: HeaderMap) -> Response {
    // "ada:lovelace"
    let expected = "Basic YWRhOmxvdmVsYWNl";
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected)
    {
        axum::Json(json!([item(1)])).into_response()
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

async fn bearer(headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if matches!(token, Some("user-token" | "machine-token")) {
        axum::Json(json!({"data": [item(7)]})).into_response()
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

async fn token(State(hits): State<Arc<Hits>>) -> Response {
    hits.token.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({"access_token": "machine-token", "token_type": "Bearer", "expires_in": 3600}))
        .into_response()
}

async fn target(State(hits): State<Arc<Hits>>) -> Response {
    hits.target.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!([item(1), item(2), item(3)])).into_response()
}

/// Starts the API; answers its address and hit counters.
async fn api() -> (SocketAddr, Arc<Hits>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let hits = Arc::new(Hits::default());
    let app = Router::new()
        .route("/v1/plain", get(plain))
        .route("/v1/paged", get(paged))
        .route("/v1/offset", get(offset))
        .route("/v1/cursor", get(cursor))
        .route("/v1/linked", get(linked))
        .route("/v1/loop", get(loop_cursor))
        .route("/v1/evil-link", get(evil_link))
        .route("/v1/keyed", get(keyed))
        .route("/v1/basic", get(basic))
        .route("/v1/bearer", get(bearer))
        .route("/v1/denied", get(|| async { StatusCode::UNAUTHORIZED }))
        .route("/v1/forbidden", get(|| async { StatusCode::FORBIDDEN }))
        .route(
            "/v1/broken",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route("/v1/html", get(|| async { "<html>not json</html>" }))
        .route(
            "/v1/metadata",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "http://169.254.169.254/latest/meta-data/")],
                )
            }),
        )
        .route(
            "/v1/hop",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/v1/target")]) }),
        )
        .route("/v1/target", get(target))
        .route("/oauth/token", post(token))
        .with_state(Arc::clone(&hits));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, hits)
}

fn loopback() -> Context {
    Context::new(EgressPolicy::parse("loopback").unwrap(), None)
}

fn object(name: &str, path: &str, records: &str, pagination: Pagination) -> RestObject {
    RestObject {
        name: name.to_owned(),
        path: path.to_owned(),
        records: records.to_owned(),
        pagination,
        primary_key: Vec::new(),
    }
}

fn rest(
    addr: SocketAddr,
    objects: Vec<RestObject>,
    auth: RestAuth,
    secrets: Secrets,
) -> RestConnector {
    rest_in(loopback(), addr, objects, auth, secrets)
}

fn rest_in(
    ctx: Context,
    addr: SocketAddr,
    objects: Vec<RestObject>,
    auth: RestAuth,
    secrets: Secrets,
) -> RestConnector {
    let config = RestConfig {
        // No trailing slash: object paths are still relative to /v1/.
        base_url: format!("http://{addr}/v1"),
        objects,
        auth,
    };
    config.validate(&secrets).unwrap();
    RestConnector::new(config, secrets, ctx)
}

fn one(addr: SocketAddr, path: &str) -> RestConnector {
    rest(
        addr,
        vec![object("it", path, "", Pagination::None)],
        RestAuth::None,
        Secrets::new(),
    )
}

fn secrets(pairs: &[(&str, &str)]) -> Secrets {
    let mut secrets = Secrets::new();
    for (name, value) in pairs {
        secrets.insert(*name, Secret::new((*value).to_owned()));
    }
    secrets
}

fn ids(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r["id"].as_u64().unwrap()).collect()
}

fn failure<T: std::fmt::Debug>(result: Result<T, ConnectorError>) -> (FailureKind, String) {
    let err = result.expect_err("the call must fail");
    (
        err.kind().expect("a failure, not a configuration error"),
        err.to_string(),
    )
}

fn styles() -> Vec<RestObject> {
    vec![
        object("plain", "plain", "/data", Pagination::None),
        object(
            "paged",
            "paged",
            "",
            Pagination::Page {
                page_param: "page".to_owned(),
                size_param: "per_page".to_owned(),
                size: 10,
                first_page: 1,
            },
        ),
        object(
            "offset",
            "offset?unrelated=kept",
            "/items",
            Pagination::Offset {
                offset_param: "offset".to_owned(),
                limit_param: "limit".to_owned(),
                limit: 7,
            },
        ),
        object(
            "cursor",
            "cursor",
            "/results",
            Pagination::Cursor {
                cursor_param: "cursor".to_owned(),
                next_cursor: "/meta/next".to_owned(),
            },
        ),
        object("linked", "linked", "", Pagination::LinkHeader),
    ]
}

#[tokio::test]
async fn reads_every_pagination_style_in_order() {
    let (addr, _) = api().await;
    let connector = rest(addr, styles(), RestAuth::None, Secrets::new());
    connector.test().await.unwrap();
    let expected: Vec<u64> = (1..=ITEMS as u64).collect();
    for style in ["plain", "paged", "offset", "cursor", "linked"] {
        let records = connector.sample(style, 100).await.unwrap();
        assert_eq!(ids(&records), expected, "{style}");
        assert_eq!(Value::Object(records[52].clone()), item(53), "{style}");
        // A smaller sample stops early, across a page boundary.
        let records = connector.sample(style, 12).await.unwrap();
        assert_eq!(ids(&records), (1..=12).collect::<Vec<u64>>(), "{style}");
    }
}

#[tokio::test]
async fn discovers_fields_from_json_types() {
    let (addr, _) = api().await;
    let mut objects = styles();
    objects[1].primary_key = vec!["id".to_owned()];
    let connector = rest(addr, objects, RestAuth::None, Secrets::new());
    let discovered = connector.discover().await.unwrap();
    assert_eq!(discovered.len(), 5);
    for object in &discovered {
        assert_eq!(object.kind, ObjectKind::Endpoint);
        let fields: Vec<_> = object
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.field_type, f.nullable))
            .collect();
        assert_eq!(
            fields,
            [
                ("active", FieldType::Boolean, false),
                ("id", FieldType::Integer, false),
                ("name", FieldType::String, false),
                ("note", FieldType::String, true),
                ("owner", FieldType::Json, false),
                ("price", FieldType::Float, false),
                ("tags", FieldType::Json, false),
            ],
            "{}",
            object.name
        );
        assert!(object.fields.iter().all(|f| f.native == "json"));
        let keys: Vec<_> = object
            .fields
            .iter()
            .filter(|f| f.primary_key)
            .map(|f| f.name.as_str())
            .collect();
        let expected: &[&str] = if object.name == "paged" { &["id"] } else { &[] };
        assert_eq!(keys, expected);
    }
}

#[tokio::test]
async fn stops_on_repeated_cursors() {
    let (addr, _) = api().await;
    let connector = rest(
        addr,
        vec![object(
            "loop",
            "loop",
            "/results",
            Pagination::Cursor {
                cursor_param: "cursor".to_owned(),
                next_cursor: "/next".to_owned(),
            },
        )],
        RestAuth::None,
        Secrets::new(),
    );
    // The first page, and the second (with cursor "same"), then the cursor repeats.
    assert_eq!(ids(&connector.sample("loop", 100).await.unwrap()), [1, 1]);
}

#[tokio::test]
async fn api_keys_in_a_header_or_the_query() {
    let (addr, _) = api().await;
    let keyed = vec![object("keyed", "keyed", "", Pagination::None)];
    for location in [ApiKeyLocation::Header, ApiKeyLocation::Query] {
        let name = match location {
            ApiKeyLocation::Header => "X-Api-Key",
            ApiKeyLocation::Query => "api_key",
        };
        let auth = RestAuth::ApiKey {
            location,
            name: name.to_owned(),
        };
        let good = rest(
            addr,
            keyed.clone(),
            auth.clone(),
            secrets(&[("api_key", API_KEY)]),
        );
        good.test().await.unwrap();
        assert_eq!(ids(&good.sample("keyed", 10).await.unwrap()), [1, 2]);

        let bad = rest(
            addr,
            keyed.clone(),
            auth,
            secrets(&[("api_key", WRONG_KEY)]),
        );
        for result in [bad.test().await, bad.sample("keyed", 10).await.map(|_| ())] {
            let (kind, message) = failure(result);
            assert_eq!(kind, FailureKind::Authentication, "{message}");
            assert!(message.contains("HTTP 401"), "{message}");
            assert!(
                !message.contains(WRONG_KEY) && !message.contains(name),
                "{message}"
            );
        }
    }
}

#[test]
fn api_keys_are_refused_in_headers_that_frame_route_or_proxy_the_request() {
    let config = |name: &str| RestConfig {
        base_url: "https://api.example.com/v1/".to_owned(),
        objects: vec![object("it", "it", "", Pagination::None)],
        auth: RestAuth::ApiKey {
            location: ApiKeyLocation::Header,
            name: name.to_owned(),
        },
    };
    let with_key = secrets(&[("api_key", API_KEY)]);
    for refused in [
        "Host",
        "host",
        "HOST",
        "Content-Length",
        "transfer-encoding",
        "Connection",
        "Keep-Alive",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Upgrade",
        "Forwarded",
        "X-Forwarded-Host",
        "x-forwarded-for",
        "X-Real-IP",
        // Not tokens: a space, a colon (HTTP/2 pseudo-headers), a line break, non-ASCII.
        "X Api Key",
        ":authority",
        "X-Api-Key\r\nHost: internal",
        "X-Schlüssel",
    ] {
        let err = config(refused)
            .validate(&with_key)
            .expect_err(&format!("{refused:?} was accepted"));
        match &err {
            ConnectorError::Config { field, reason } => {
                assert_eq!(field, "config.auth.name", "{refused:?}");
                assert!(!reason.contains(refused), "the reason echoes the name");
            }
            other => panic!("{refused:?}: {other:?}"),
        }
    }
    for allowed in [
        "X-Api-Key",
        "Authorization",
        "authorization",
        "Cookie",
        "Api-Key",
    ] {
        config(allowed)
            .validate(&with_key)
            .unwrap_or_else(|e| panic!("{allowed:?} was refused: {e:?}"));
    }
    // A query parameter may be called anything.
    let mut query = config("host");
    query.auth = RestAuth::ApiKey {
        location: ApiKeyLocation::Query,
        name: "host".to_owned(),
    };
    query.validate(&with_key).unwrap();
}

#[tokio::test]
async fn a_stored_configuration_with_a_host_header_key_sends_nothing() {
    let (addr, hits) = api().await;
    // As if stored before the check existed: built without `validate`.
    let config = RestConfig {
        base_url: format!("http://{addr}/v1"),
        objects: vec![object("target", "target", "", Pagination::None)],
        auth: RestAuth::ApiKey {
            location: ApiKeyLocation::Header,
            name: "Host".to_owned(),
        },
    };
    let connector = RestConnector::new(config, secrets(&[("api_key", API_KEY)]), loopback());
    let err = connector.sample("target", 10).await.expect_err("sent");
    assert!(
        matches!(&err, ConnectorError::Config { field, .. } if field == "config.auth.name"),
        "{err:?}"
    );
    assert_eq!(hits.target.load(Ordering::SeqCst), 0, "a request was sent");
}

#[tokio::test]
async fn no_key_in_messages_when_the_request_fails() {
    // Nothing listens there: the error that reqwest reports carries the URL with the key.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let connector = rest(
        addr,
        vec![object("keyed", "keyed", "", Pagination::None)],
        RestAuth::ApiKey {
            location: ApiKeyLocation::Query,
            name: "api_key".to_owned(),
        },
        secrets(&[("api_key", API_KEY)]),
    );
    let (kind, message) = failure(connector.test().await);
    assert_eq!(kind, FailureKind::Refused, "{message}");
    assert!(
        !message.contains(API_KEY) && !message.contains("127.0.0.1"),
        "{message}"
    );
}

#[tokio::test]
async fn basic_authentication() {
    let (addr, _) = api().await;
    let objects = vec![object("basic", "basic", "", Pagination::None)];
    let auth = RestAuth::Basic {
        username: "ada".to_owned(),
    };
    let good = rest(
        addr,
        objects.clone(),
        auth.clone(),
        secrets(&[("password", "lovelace")]),
    );
    assert_eq!(ids(&good.sample("basic", 10).await.unwrap()), [1]);
    let bad = rest(addr, objects, auth, secrets(&[("password", "babbage")]));
    let (kind, message) = failure(bad.test().await);
    assert_eq!(kind, FailureKind::Authentication);
    assert!(!message.contains("babbage"));
}

#[tokio::test]
async fn oauth_bearer_tokens() {
    let (addr, hits) = api().await;
    let objects = vec![
        object("one", "bearer", "/data", Pagination::None),
        object("two", "bearer", "/data", Pagination::None),
    ];
    let code = RestAuth::Oauth2AuthorizationCode {
        authorize_url: format!("http://{addr}/oauth/authorize"),
        token_url: format!("http://{addr}/oauth/token"),
        revocation_url: None,
        client_id: "hub".to_owned(),
        scopes: Vec::new(),
    };
    let not_connected = rest(addr, objects.clone(), code.clone(), Secrets::new());
    let (kind, message) = failure(not_connected.test().await);
    assert_eq!(kind, FailureKind::Authentication);
    assert!(message.contains("not connected"), "{message}");
    let connected = rest(
        addr,
        objects.clone(),
        code,
        secrets(&[("oauth_access_token", "user-token")]),
    );
    assert_eq!(ids(&connected.sample("one", 10).await.unwrap()), [7]);

    let machine = rest(
        addr,
        objects,
        RestAuth::Oauth2ClientCredentials {
            token_url: format!("http://{addr}/oauth/token"),
            client_id: "hub".to_owned(),
            scopes: vec!["items:read".to_owned()],
        },
        secrets(&[("client_secret", "s3cret")]),
    );
    let discovered = machine.discover().await.unwrap();
    assert_eq!(discovered.len(), 2);
    assert_eq!(
        hits.token.load(Ordering::SeqCst),
        1,
        "one token for the whole call"
    );
    assert_eq!(ids(&machine.sample("two", 10).await.unwrap()), [7]);
    assert_eq!(hits.token.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn http_statuses_and_bodies() {
    let (addr, _) = api().await;
    for (path, expected, words) in [
        ("denied", FailureKind::Authentication, "HTTP 401"),
        ("forbidden", FailureKind::Authentication, "HTTP 403"),
        ("missing", FailureKind::NotFound, "404"),
        ("broken", FailureKind::Protocol, "HTTP 500"),
        ("html", FailureKind::Protocol, "not JSON"),
    ] {
        let (kind, message) = failure(one(addr, path).sample("it", 10).await);
        assert_eq!(kind, expected, "{path}: {message}");
        assert!(
            message.contains(words) && message.starts_with("it: "),
            "{path}: {message}"
        );
    }
    // The records pointer must reach an array.
    let connector = rest(
        addr,
        vec![object("it", "plain", "/nothing", Pagination::None)],
        RestAuth::None,
        Secrets::new(),
    );
    let (kind, message) = failure(connector.sample("it", 10).await);
    assert_eq!(kind, FailureKind::Protocol, "{message}");

    let (kind, _) = failure(one(addr, "plain").sample("other", 10).await);
    assert_eq!(kind, FailureKind::NotFound);
}

#[tokio::test]
async fn redirects_obey_the_egress_policy() {
    let (addr, hits) = api().await;
    let (kind, message) = failure(one(addr, "metadata").sample("it", 10).await);
    assert_eq!(kind, FailureKind::Policy, "{message}");
    assert!(!message.contains("169.254"), "{message}");

    let records = one(addr, "hop").sample("it", 10).await.unwrap();
    assert_eq!(ids(&records), [1, 2, 3]);
    assert_eq!(
        hits.target.load(Ordering::SeqCst),
        1,
        "the allowed redirect is followed"
    );
}

#[tokio::test]
async fn next_links_stay_on_the_api_s_origin() {
    let (addr, _) = api().await;
    let connector = rest(
        addr,
        vec![object("evil", "evil-link", "", Pagination::LinkHeader)],
        RestAuth::None,
        Secrets::new(),
    );
    let (kind, message) = failure(connector.sample("evil", 100).await);
    assert_eq!(kind, FailureKind::Policy, "{message}");
    // One record is enough: the link is not needed.
    assert_eq!(ids(&connector.sample("evil", 1).await.unwrap()), [1]);
}

#[tokio::test]
async fn object_paths_stay_on_the_api_s_origin() {
    let (addr, _) = api().await;
    let config = RestConfig {
        base_url: format!("http://{addr}/v1/"),
        objects: vec![object(
            "it",
            "https:elsewhere.example/x",
            "",
            Pagination::None,
        )],
        auth: RestAuth::None,
    };
    let connector = RestConnector::new(config, Secrets::new(), loopback());
    let err = connector.sample("it", 10).await.unwrap_err();
    assert_eq!(err.kind(), None, "a configuration error: {err}");
    // `/v1/plain` from the root of the same origin is fine.
    let connector = rest(
        addr,
        vec![object("it", "/v1/plain", "/data", Pagination::None)],
        RestAuth::None,
        Secrets::new(),
    );
    assert_eq!(connector.sample("it", 100).await.unwrap().len(), ITEMS);
}

#[tokio::test]
async fn the_default_policy_refuses_loopback() {
    let (addr, _) = api().await;
    let objects = vec![object("plain", "plain", "/data", Pagination::None)];
    let refused = rest_in(
        Context::new(EgressPolicy::default(), None),
        addr,
        objects.clone(),
        RestAuth::None,
        Secrets::new(),
    );
    let (kind, message) = failure(refused.test().await);
    assert_eq!(kind, FailureKind::Policy, "{message}");

    // By name: resolved through the policy, refused there.
    let config = RestConfig {
        base_url: format!("http://localhost:{}/v1/", addr.port()),
        objects: objects.clone(),
        auth: RestAuth::None,
    };
    let by_name = RestConnector::new(
        config,
        Secrets::new(),
        Context::new(EgressPolicy::default(), None),
    );
    let (kind, message) = failure(by_name.sample("plain", 10).await);
    assert_eq!(kind, FailureKind::Policy, "{message}");

    let allowed = rest_in(loopback(), addr, objects, RestAuth::None, Secrets::new());
    allowed.test().await.unwrap();
}
