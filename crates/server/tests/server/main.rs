//! The HTTP layer in process: the sealed gate over every route, problem+json errors, security
//! headers, operator authentication. (The real binary over HTTPS is tested in lockstep-cli.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use lockstep_app::{Credentials, Hub, SystemClock};
use lockstep_storage::Backend;
use lockstep_storage::testing::TestStore;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

mod account;
mod addresses;
mod boms;
mod connections;
mod control;
mod datasets;
mod footprint;
mod http2;
mod matrix;
mod passkeys;
mod pipelines;
mod policies;
mod sso;
mod support;
mod users;
mod web;
mod web_account;
mod web_audit;
mod web_auth;
mod web_boms;
mod web_connections;
mod web_dashboard;
mod web_datasets;
mod web_footprint;
mod web_forms;
mod web_pipelines;
mod web_policies;
mod web_sso;
mod web_support;
mod web_users;

struct Fixture {
    _store: TestStore,
    hub: Arc<Hub>,
    app: Router,
    creds: Credentials,
}

/// An initialized hub, restarted: sealed, as after every restart.
async fn sealed_hub() -> Fixture {
    let store = TestStore::new(Backend::Sqlite).await.unwrap();
    let (_, creds) = Hub::initialize(store.store.clone(), Arc::new(SystemClock), 3, 2)
        .await
        .unwrap();
    let hub = Arc::new(
        Hub::open(store.store.clone(), Arc::new(SystemClock))
            .await
            .unwrap()
            .unwrap(),
    );
    let app = lockstep_server::router(Arc::clone(&hub));
    Fixture {
        _store: store,
        hub,
        app,
        creds,
    }
}

async fn unsealed_hub() -> Fixture {
    let f = sealed_hub().await;
    for key in &f.creds.unseal_keys[..2] {
        f.hub.submit_unseal_key(key).unwrap();
    }
    assert!(!f.hub.is_sealed());
    f
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn call(
    app: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned())),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Every (method, path) the API documents — taken from the router's own OpenAPI document, so a
/// route added later is walked without editing this test.
fn documented_routes() -> Vec<(Method, String)> {
    let doc = serde_json::to_value(lockstep_server::openapi()).unwrap();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let path = path.replace("{id}", "01900000-0000-7000-8000-000000000001");
            routes.push((method, path));
        }
    }
    routes.push((Method::GET, "/api/v1/openapi.json".to_owned()));
    routes.push((Method::GET, "/".to_owned()));
    routes.push((Method::GET, "/no/such/route".to_owned()));
    routes
}

#[tokio::test]
async fn while_sealed_every_route_but_health_and_unseal_answers_503() {
    let f = sealed_hub().await;
    let routes = documented_routes();
    assert!(
        routes.len() >= 8,
        "the walk found too few routes: {routes:?}"
    );
    let token = f.creds.operator_token.expose();
    for (method, path) in routes {
        let answer = call(&f.app, method.clone(), &path, Some(token), Some("{}")).await;
        if lockstep_server::SEALED_ALLOWED_PATHS.contains(&path.as_str()) {
            assert_ne!(
                answer.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{method} {path}"
            );
        } else if path == "/" {
            // The unseal page.
            assert_eq!(answer.status, StatusCode::OK, "{method} {path}");
            assert!(answer.content_type().starts_with("text/html"));
            assert!(answer.body.contains("action=\"/unseal\""));
        } else if !path.starts_with("/api/") && path != "/healthz" {
            // Every other page leads to the unseal page.
            assert_eq!(answer.status, StatusCode::SEE_OTHER, "{method} {path}");
            assert_eq!(answer.headers[header::LOCATION], "/", "{method} {path}");
        } else {
            assert_eq!(
                answer.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{method} {path} while sealed"
            );
            assert_eq!(
                answer.content_type(),
                "application/problem+json",
                "{method} {path}"
            );
            assert_eq!(answer.json()["type"], "urn:lockstep:problem:sealed");
        }
    }
    assert!(
        f.hub.is_sealed(),
        "walking the routes unsealed or changed the hub"
    );
}

#[tokio::test]
async fn health_and_seal_status_answer_without_authentication() {
    let f = sealed_hub().await;
    let health = call(&f.app, Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json(), json!({"status": "ok", "sealed": true}));
    let status = call(&f.app, Method::GET, "/api/v1/sys/seal-status", None, None).await;
    assert_eq!(
        status.json(),
        json!({"sealed": true, "progress": 0, "threshold": 2, "shares": 3})
    );
}

#[tokio::test]
async fn unseal_counts_good_shares_refuses_bad_ones_and_resets() {
    let f = sealed_hub().await;
    let key = |i: usize| json!({"key": f.creds.unseal_keys[i].expose()}).to_string();

    let first = call(
        &f.app,
        Method::POST,
        "/api/v1/sys/unseal",
        None,
        Some(&key(0)),
    )
    .await;
    assert_eq!(
        first.json(),
        json!({"sealed": true, "progress": 1, "threshold": 2, "shares": 3})
    );

    let mut corrupted = f.creds.unseal_keys[1].expose().to_owned();
    corrupted.replace_range(10..11, if &corrupted[10..11] == "A" { "B" } else { "A" });
    let refused = call(
        &f.app,
        Method::POST,
        "/api/v1/sys/unseal",
        None,
        Some(&json!({"key": corrupted}).to_string()),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.content_type(), "application/problem+json");
    assert_eq!(
        refused.json()["type"],
        "urn:lockstep:problem:unseal-key-refused"
    );
    assert!(
        !refused.body.contains(&corrupted),
        "the refused share is echoed back"
    );

    let duplicate = call(
        &f.app,
        Method::POST,
        "/api/v1/sys/unseal",
        None,
        Some(&key(0)),
    )
    .await;
    assert_eq!(duplicate.status, StatusCode::BAD_REQUEST);
    assert_eq!(f.hub.seal_status().progress, 1, "a refused share counted");

    let reset = call(
        &f.app,
        Method::POST,
        "/api/v1/sys/unseal",
        None,
        Some(r#"{"reset": true}"#),
    )
    .await;
    assert_eq!(
        reset.json(),
        json!({"sealed": true, "progress": 0, "threshold": 2, "shares": 3})
    );

    call(
        &f.app,
        Method::POST,
        "/api/v1/sys/unseal",
        None,
        Some(&key(2)),
    )
    .await;
    let done = call(
        &f.app,
        Method::POST,
        "/api/v1/sys/unseal",
        None,
        Some(&key(1)),
    )
    .await;
    assert_eq!(
        done.json(),
        json!({"sealed": false, "progress": 0, "threshold": 2, "shares": 3})
    );
    assert!(!f.hub.is_sealed());
}

#[tokio::test]
async fn bad_request_bodies_get_problem_json_and_echo_nothing() {
    let f = sealed_hub().await;
    let cases = [
        ("not json at all", StatusCode::BAD_REQUEST),
        (r#"{"key": 42}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (
            r#"{"kee": "lks1-hunter2hunter2"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("{}", StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (body, expected) in cases {
        let answer = call(&f.app, Method::POST, "/api/v1/sys/unseal", None, Some(body)).await;
        assert_eq!(answer.status, expected, "{body}");
        assert_eq!(answer.content_type(), "application/problem+json", "{body}");
        assert!(
            answer.json()["title"].is_string(),
            "{body}: {}",
            answer.body
        );
        assert!(!answer.body.contains("hunter2"), "{body}: {}", answer.body);
    }
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/sys/unseal")
        .body(Body::from("{}"))
        .unwrap();
    let response = f.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(f.hub.seal_status().progress, 0);
}

#[tokio::test]
async fn operator_routes_need_the_operator_token() {
    let f = unsealed_hub().await;
    for token in [None, Some("lso_wrong"), Some("")] {
        for (method, path) in [
            (Method::GET, "/api/v1/sys/organizations"),
            (Method::POST, "/api/v1/sys/seal"),
            (
                Method::DELETE,
                "/api/v1/sys/organizations/01900000-0000-7000-8000-000000000001",
            ),
        ] {
            let answer = call(&f.app, method.clone(), path, token, None).await;
            assert_eq!(
                answer.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
            assert_eq!(answer.content_type(), "application/problem+json");
        }
    }
    assert!(!f.hub.is_sealed());
}

#[tokio::test]
async fn the_operator_manages_organizations_and_seals() {
    let f = unsealed_hub().await;
    let token = f.creds.operator_token.expose();
    let created = call(
        &f.app,
        Method::POST,
        "/api/v1/sys/organizations",
        Some(token),
        Some(r#"{"name": "Acme", "admin_email": "ada@acme.io"}"#),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert!(
        created.json()["invitation_token"]
            .as_str()
            .unwrap()
            .starts_with("lsi_")
    );

    let list = call(
        &f.app,
        Method::GET,
        "/api/v1/sys/organizations",
        Some(token),
        None,
    )
    .await;
    assert_eq!(
        list.json(),
        json!({"organizations": [{"id": id, "name": "Acme"}]})
    );
    assert!(
        !list.body.contains("ada@acme.io"),
        "the operator sees an administrator's e-mail"
    );

    let conflict = call(
        &f.app,
        Method::POST,
        "/api/v1/sys/organizations",
        Some(token),
        Some(r#"{"name": "ACME", "admin_email": "x@acme.io"}"#),
    )
    .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    let invalid = call(
        &f.app,
        Method::POST,
        "/api/v1/sys/organizations",
        Some(token),
        Some(r#"{"name": "Globex", "admin_email": "secret-person"}"#),
    )
    .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.json()["field"], "admin_email");
    assert!(!invalid.body.contains("secret-person"));
    let bad_id = call(
        &f.app,
        Method::DELETE,
        "/api/v1/sys/organizations/nope",
        Some(token),
        None,
    )
    .await;
    assert_eq!(bad_id.status, StatusCode::UNPROCESSABLE_ENTITY);

    let deleted = call(
        &f.app,
        Method::DELETE,
        &format!("/api/v1/sys/organizations/{id}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let again = call(
        &f.app,
        Method::DELETE,
        &format!("/api/v1/sys/organizations/{id}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    let rotated = call(
        &f.app,
        Method::POST,
        "/api/v1/sys/rotate",
        Some(token),
        None,
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert_eq!(rotated.json()["keyring_version"], 2);

    let sealed = call(&f.app, Method::POST, "/api/v1/sys/seal", Some(token), None).await;
    assert_eq!(sealed.status, StatusCode::OK);
    assert_eq!(sealed.json()["sealed"], true);
    assert!(f.hub.is_sealed());
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let f = unsealed_hub().await;
    for (method, path) in [
        (Method::GET, "/healthz"),
        (Method::GET, "/nowhere"),
        (Method::GET, "/api/v1/sys/organizations"),
        (Method::GET, "/api/v1/openapi.json"),
    ] {
        let answer = call(&f.app, method, path, None, None).await;
        let h = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let hsts = h("strict-transport-security");
        let max_age: u64 = hsts
            .trim_start_matches("max-age=")
            .split(';')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(max_age >= 31_536_000, "{path}: {hsts}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        assert!(
            h("content-security-policy").contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert!(
            h("content-security-policy").contains("default-src 'self'"),
            "{path}"
        );
        if path.starts_with("/api/") {
            assert_eq!(h("cache-control"), "no-store", "{path}");
        }
    }
}

#[tokio::test]
async fn the_openapi_document_describes_the_routes() {
    let f = unsealed_hub().await;
    let doc = call(&f.app, Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/healthz",
        "/api/v1/sys/unseal",
        "/api/v1/sys/seal",
        "/api/v1/sys/organizations",
        "/api/v1/sys/organizations/{id}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
}

/// The document says what each operation takes and answers: a parameter is in the path exactly
/// when the path names it; every operation that needs a token documents 401, members' operations
/// outside their own account 403, JSON bodies 400/413/415/422, everything but health and unseal
/// 503; every problem answer is the shared `Problem` response; pipelines and connections have real
/// request schemas; audit objects list every kind events are written for.
#[test]
fn the_openapi_document_is_exact() {
    let doc = serde_json::to_value(lockstep_server::openapi()).unwrap();
    let problem = json!({"$ref": "#/components/responses/Problem"});
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let at = format!("{method} {path}");
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                let place = if path.contains(&format!("{{{name}}}")) {
                    "path"
                } else {
                    "query"
                };
                assert_eq!(p["in"], place, "{at}: parameter {name}");
            }
            let responses = op["responses"].as_object().unwrap();
            let has = |status: &str| responses.contains_key(status);
            let public = op["security"] == json!([{}]);
            let operator = op["security"] == json!([{"operator_token": []}]);
            assert!(public || has("401"), "{at}: 401");
            if !public
                && !operator
                && !path.starts_with("/api/v1/me")
                && !path.starts_with("/api/v1/auth/")
            {
                assert!(has("403"), "{at}: 403");
            }
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                for status in ["400", "413", "415", "422"] {
                    assert!(has(status), "{at}: {status}");
                }
            }
            let sealed_allowed = ["/healthz", "/api/v1/sys/seal-status", "/api/v1/sys/unseal"];
            assert_eq!(
                !sealed_allowed.contains(&path.as_str()),
                has("503"),
                "{at}: 503"
            );
            for (status, response) in responses {
                if response
                    .get("content")
                    .is_some_and(|c| c.get("application/problem+json").is_some())
                {
                    panic!("{at}: {status} is not the shared Problem response");
                }
                if status.starts_with('4') && response.get("$ref").is_some() {
                    assert_eq!(response["$ref"], problem["$ref"], "{at}: {status}");
                }
            }
        }
    }
    assert!(operations >= 60, "only {operations} operations");
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["AuditedKind"]["enum"],
        json!([
            "user",
            "session",
            "api_token",
            "invitation",
            "organization",
            "connection",
            "pipeline",
            "run",
            "dataset",
            "passkey"
        ])
    );
    let body = |path: &str, method: &str| {
        let schema =
            &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"];
        match schema["$ref"].as_str() {
            Some(name) => schemas[name.trim_start_matches("#/components/schemas/")].clone(),
            None => schema.clone(),
        }
    };
    let pipeline = body("/api/v1/pipelines", "post");
    for field in ["name", "source", "destination", "mode"] {
        assert!(
            pipeline["required"]
                .as_array()
                .unwrap()
                .contains(&json!(field)),
            "{field}"
        );
    }
    assert!(pipeline["properties"]["rules"].is_object());
    let connection = body("/api/v1/connections", "post");
    let kinds: Vec<&Value> = connection["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["properties"]["kind"]["enum"][0])
        .collect();
    assert_eq!(
        kinds,
        [
            &json!("postgres"),
            &json!("mysql"),
            &json!("sqlite"),
            &json!("files"),
            &json!("rest"),
            &json!("tryton")
        ]
    );
    assert_eq!(
        connection["oneOf"][0]["properties"]["config"]["$ref"],
        "#/components/schemas/PostgresConfig"
    );
    assert!(schemas["PostgresConfig"]["properties"]["host"].is_object());
    assert!(schemas["PipelineSpec"]["properties"]["source"].is_object());
}
