//! Bills of materials through the API: a file that cannot be read is refused as problem+json
//! naming `file` and keeps nothing; against the Tryton test peer (`LOCKSTEP_TEST_TRYTON_URL`,
//! started by scripts/test; skipped with `LOCKSTEP_TEST_SKIP_TRYTON=1`) a BOM is uploaded, read
//! as a tree and as part totals, and a part's thumbnail is served never cached and never
//! sniffed, to nobody who may not see the data set.

use super::connections::env;
use axum::body::Body;
use axum::http::{Method, Request, header};
use lockstep_app::Password;
use lockstep_domain::Role;
use serde_json::{Value, json};
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";
/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// An answer with its raw bytes.
struct Raw {
    status: u16,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn send(
    app: &axum::Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> Raw {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from(body))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap()
        .to_vec();
    Raw {
        status,
        headers,
        body,
    }
}

/// The Tryton test peer's connection settings, or `None` (after saying so) to skip.
#[allow(clippy::print_stderr)]
fn tryton() -> Option<Value> {
    let Ok(url) = std::env::var("LOCKSTEP_TEST_TRYTON_URL") else {
        if std::env::var("LOCKSTEP_TEST_SKIP_TRYTON").as_deref() == Ok("1") {
            eprintln!("skipped: this test needs Tryton (LOCKSTEP_TEST_SKIP_TRYTON=1)");
            return None;
        }
        panic!(
            "LOCKSTEP_TEST_TRYTON_URL is not set: run via scripts/test (it starts Tryton), or \
             set LOCKSTEP_TEST_SKIP_TRYTON=1"
        );
    };
    let var = |n: &str| std::env::var(n).unwrap();
    Some(json!({
        "name": "erp",
        "kind": "tryton",
        "config": {
            "url": url,
            "database": var("LOCKSTEP_TEST_TRYTON_DATABASE"),
            "user": var("LOCKSTEP_TEST_TRYTON_USER"),
        },
        "secrets": {"password": var("LOCKSTEP_TEST_TRYTON_PASSWORD")},
    }))
}

#[tokio::test]
async fn a_bom_is_uploaded_read_as_a_tree_and_its_thumbnail_is_served_to_those_who_may_see_it() {
    let Some(connection) = tryton() else {
        return;
    };
    let mut e = env("loopback").await;
    let created = e
        .admin(Method::POST, "/api/v1/connections", Some(connection))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let c = created.json()["id"].as_str().unwrap().to_owned();
    let pipeline = e
        .admin(
            Method::POST,
            "/api/v1/pipelines",
            Some(json!({
                "name": "boms",
                "source": {"connection_id": c, "object": "bom"},
                "destination": {"connection_id": c, "object": "bom"},
                "mode": "append",
            })),
        )
        .await;
    assert_eq!(pipeline.status, 201, "{}", pipeline.body);
    let p = pipeline.json()["id"].as_str().unwrap().to_owned();
    // A pipeline into Tryton does not run: it takes uploads.
    let run = e
        .admin(Method::POST, &format!("/api/v1/pipelines/{p}/runs"), None)
        .await;
    assert_eq!(run.status, 409, "{}", run.body);
    let editor = e.editor.clone();

    // A file that is no BOM: 422 naming `file`, nothing kept.
    let bad = send(
        &e.app,
        Method::POST,
        &format!("/api/v1/datasets/upload?pipeline_id={p}&name=notes.csv"),
        Some(&editor),
        b"just,some,words\nno,bom,here\n".to_vec(),
    )
    .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.header(header::CONTENT_TYPE), "application/problem+json");
    assert_eq!(bad.json()["field"], "file");
    let listed = e.call(Method::GET, "/api/v1/datasets", &editor, None).await;
    assert_eq!(listed.json()["datasets"], json!([]));

    // A BOM: accepted at once, ready once compared with Tryton.
    let prefix = format!("S{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let csv = format!(
        "ITEM NO.,PART NUMBER,DESCRIPTION,QTY.\n1,{prefix}-A,Frame,1\n1.1,{prefix}-B,Bolt,4\n2,{prefix}-C,Plate,2\n"
    );
    let up = send(
        &e.app,
        Method::POST,
        &format!("/api/v1/datasets/upload?pipeline_id={p}&name=frame.csv&root_part={prefix}-TOP"),
        Some(&editor),
        csv.into_bytes(),
    )
    .await;
    assert_eq!(up.status, 202, "{}", String::from_utf8_lossy(&up.body));
    let id = up.json()["id"].as_str().unwrap().to_owned();
    let mut body = Value::Null;
    for _ in 0..600 {
        body = e
            .call(
                Method::GET,
                &format!("/api/v1/datasets/{id}"),
                &editor,
                None,
            )
            .await
            .json();
        if body["state"] != "pulling" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(body["state"], "ready", "{body}");
    assert_eq!(body["bom"]["file_name"], "frame.csv");
    assert_eq!(body["bom"]["root"], format!("{prefix}-TOP"));
    assert_eq!(body["counts"]["create"], 3, "{body}");

    let tree = e
        .call(
            Method::GET,
            &format!("/api/v1/datasets/{id}/tree?depth=1"),
            &editor,
            None,
        )
        .await;
    assert_eq!(tree.status, 200, "{}", tree.body);
    let tree = tree.json();
    assert_eq!(tree["total"], 2);
    assert_eq!(tree["nodes"][0]["record"]["values"]["path"], "1");
    assert_eq!(tree["nodes"][0]["child_count"], 1);
    assert_eq!(
        tree["nodes"][0]["children"][0]["record"]["values"]["part_number"],
        format!("{prefix}-B")
    );
    let parts = e
        .call(
            Method::GET,
            &format!("/api/v1/datasets/{id}/parts"),
            &editor,
            None,
        )
        .await;
    assert_eq!(parts.status, 200, "{}", parts.body);
    assert_eq!(parts.json()["parts"].as_array().unwrap().len(), 3);
    let depth = e
        .call(
            Method::GET,
            &format!("/api/v1/datasets/{id}/tree?depth=65"),
            &editor,
            None,
        )
        .await;
    assert_eq!(depth.status, 422, "{}", depth.body);

    // The frame's thumbnail.
    let added = send(
        &e.app,
        Method::POST,
        &format!("/api/v1/datasets/{id}/files?name={prefix}-A.png"),
        Some(&editor),
        PNG.to_vec(),
    )
    .await;
    assert_eq!(
        added.status,
        201,
        "{}",
        String::from_utf8_lossy(&added.body)
    );
    let file_id = added.json()["files"][0]["id"].as_str().unwrap().to_owned();
    assert!(!file_id.contains(&prefix), "the id names the part");
    let path = format!("/api/v1/datasets/{id}/files/{file_id}");
    let got = send(&e.app, Method::GET, &path, Some(&editor), Vec::new()).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, PNG);
    assert_eq!(got.header(header::CONTENT_TYPE), "image/png");
    assert_eq!(got.header(header::CACHE_CONTROL), "no-store");
    assert_eq!(got.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    // A file that is not what its name says is refused.
    let fake = send(
        &e.app,
        Method::POST,
        &format!("/api/v1/datasets/{id}/files?name={prefix}-B.png"),
        Some(&editor),
        b"<script>alert(1)</script>".to_vec(),
    )
    .await;
    assert_eq!(fake.status, 422);

    // Another member, a Viewer it is not shared with, another organization: 404; nobody: 401.
    let other = e.hub.authenticate(&e.admin).await.unwrap();
    let pw = Password::new(PASSWORD.to_owned());
    let invitation = e
        .hub
        .invite_user(&other, "eve@alpha.io", Role::Editor)
        .await
        .unwrap();
    e.hub
        .accept_invitation(invitation.token.expose(), &pw, "Eve")
        .await
        .unwrap();
    let eve = e
        .hub
        .login("eve@alpha.io", &pw, None)
        .await
        .unwrap()
        .session_token
        .expose()
        .to_owned();
    let foreign = e
        .hub
        .create_organization(&e.operator, "beta", "admin@beta.io")
        .await
        .unwrap();
    e.hub
        .accept_invitation(foreign.invitation_token.expose(), &pw, "Bea")
        .await
        .unwrap();
    let bea = e
        .hub
        .login("admin@beta.io", &pw, None)
        .await
        .unwrap()
        .session_token
        .expose()
        .to_owned();
    for who in [&eve, &e.viewer.clone(), &bea] {
        for p in [
            path.clone(),
            format!("/api/v1/datasets/{id}/tree"),
            format!("/api/v1/datasets/{id}/parts"),
        ] {
            let seen = send(&e.app, Method::GET, &p, Some(who), Vec::new()).await;
            assert_eq!(seen.status, 404, "{p}");
            assert_eq!(
                seen.header(header::CONTENT_TYPE),
                "application/problem+json"
            );
        }
    }
    let anonymous = send(&e.app, Method::GET, &path, None, Vec::new()).await;
    assert_eq!(anonymous.status, 401);
}
