//! Pages: connections (in process, see `web.rs`).

use super::connections::pg_parts;
use super::web::{Browser, Page, web_env};
use axum::body::Body;
use axum::http::{Method, Request, header};
use lockstep_app::connectors::testing::OidcPeer;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A table of the test's own in the test database (two rows, one with markup in it).
async fn pg_table(name: &str) {
    pg_exec(&format!(
        "DROP TABLE IF EXISTS public.{name}; \
         CREATE TABLE public.{name} (id bigint PRIMARY KEY, label text NOT NULL, \
           price numeric(12,2), seen timestamptz); \
         INSERT INTO public.{name} VALUES (1, 'Grüße', 12.50, '2026-11-22T10:00:00Z'), \
           (2, '<b>bold</b>', NULL, NULL);"
    ))
    .await;
}

async fn pg_exec(sql: &str) {
    super::pipelines::pg()
        .await
        .batch_execute(sql)
        .await
        .unwrap();
}

/// Drops the table when the test ends, passed or failed.
struct DropTable(String);

impl Drop for DropTable {
    fn drop(&mut self) {
        let sql = format!("DROP TABLE IF EXISTS public.{}", self.0);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(pg_exec(&sql));
        })
        .join()
        .ok();
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// The form fields of a PostgreSQL connection to the test database, with `port` and
/// `password` as given (and another kind's fields filled in too, as a browser without script
/// sends every group).
fn pg_form<'a>(
    name: &'a str,
    parts: &'a (String, u16, String, String),
    port: &'a str,
    password: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("kind", "postgres"),
        ("postgres.config.host", parts.0.as_str()),
        ("postgres.config.port", port),
        ("postgres.config.database", parts.2.as_str()),
        ("postgres.config.user", parts.3.as_str()),
        ("postgres.secrets.password", password),
        ("postgres.config.tls", "disable"),
        ("postgres.config.ca_certificate", ""),
        ("postgres.config.client_certificate", ""),
        ("postgres.secrets.client_key", ""),
        ("postgres.config.schema", ""),
        ("mysql.config.host", "mysql.invalid"),
        ("mysql.config.port", "not a number"),
        ("mysql.config.tls", "prefer"),
        ("sqlite.config.path", ""),
        ("rest.config.auth.kind", "none"),
    ]
}

/// The error paragraph of control `id` follows its input, with no other input between them.
fn error_next_to(page: &Page, id: &str) -> String {
    let input = page
        .body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no control {id}: {}", page.body));
    let error = page
        .body
        .find(&format!("<p class=\"field-error\" id=\"{id}-error\">"))
        .unwrap_or_else(|| panic!("no error at {id}: {}", page.body));
    assert!(input < error, "the error of {id} is before its control");
    let between = &page.body[input..error];
    assert!(
        !between.contains("<input") && !between.contains("<select"),
        "another control between {id} and its error"
    );
    assert!(
        page.body
            .contains(&format!("aria-describedby=\"{id}-error\"")),
        "{id} does not point at its error"
    );
    let rest = &page.body[error..];
    let text = &rest[rest.find('>').unwrap() + 1..rest.find("</p>").unwrap()];
    text.to_owned()
}

/// The text of HTML-escaped markup (the entities askama writes).
fn unescape(html: &str) -> String {
    html.replace("&#60;", "<")
        .replace("&lt;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

async fn api_connections(env: &mut super::connections::Env) -> Vec<Value> {
    let token = env.admin.clone();
    let list = env
        .call(Method::GET, "/api/v1/connections", &token, None)
        .await;
    assert_eq!(list.status, 200);
    list.json()["connections"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_administrator_creates_tests_discovers_and_edits_without_seeing_the_secret() {
    let canary = unique("CANARY-web-pg");
    let table = unique("conn_web");
    pg_table(&table).await;
    let _drop = DropTable(table.clone());
    let (mut env, mut admin, _, _) = web_env("loopback").await;
    let parts = pg_parts();
    let port = parts.1.to_string();
    let mut bodies: Vec<String> = Vec::new();

    let list = admin.get("/connections").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("href=\"/connections/new\""));
    let new = admin.get("/connections/new").await;
    assert_eq!(new.status, 200, "{}", new.body);
    assert!(new.body.contains("name=\"kind\" data-show-group"));
    for kind in ["postgres", "mysql", "sqlite", "files", "rest"] {
        assert!(
            new.body
                .contains(&format!("data-group-of=\"kind\" data-group=\"{kind}\"")),
            "{kind}"
        );
    }
    assert!(new.body.contains("<label for=\"postgres-config-port\">"));

    // A port that is no port: 422, the error next to the port, nothing created.
    for bad in ["abc", "70000"] {
        let page = admin
            .post("/connections", &pg_form("Warehouse", &parts, bad, &canary))
            .await;
        assert_eq!(page.status, 422, "{bad}: {}", page.body);
        let message = error_next_to(&page, "postgres-config-port");
        assert!(message.contains("65535"), "{message}");
        assert!(page.body.contains("value=\"Warehouse\""));
        assert!(page.body.contains(&format!("value=\"{}\"", parts.0)));
        assert!(page.body.contains(&format!("value=\"{bad}\"")));
        bodies.push(page.body);
    }
    // An error of the use case lands next to its field too.
    let mut bad_host = pg_form("Warehouse", &parts, &port, &canary);
    bad_host[2].1 = "no host!";
    let page = admin.post("/connections", &bad_host).await;
    assert_eq!(page.status, 422, "{}", page.body);
    let message = error_next_to(&page, "postgres-config-host");
    assert!(message.contains("host name"), "{message}");
    bodies.push(page.body);
    assert!(
        api_connections(&mut env).await.is_empty(),
        "a bad form created a connection"
    );

    // Created: the details show the settings and that the password is set.
    let created = admin
        .post(
            "/connections",
            &pg_form("Warehouse", &parts, &port, &canary),
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let location = created.location().unwrap().to_owned();
    let id = location
        .strip_prefix("/connections/")
        .and_then(|rest| rest.strip_suffix("?notice=created"))
        .unwrap_or_else(|| panic!("{location}"))
        .to_owned();
    let stored = api_connections(&mut env).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["config"]["host"], parts.0.as_str());
    assert_eq!(stored[0]["config"]["port"], parts.1);
    assert_eq!(stored[0]["secrets_set"], json!(["password"]));
    let details = admin.get(&location).await;
    assert_eq!(details.status, 200);
    assert!(details.body.contains("Created."));
    for shown in [&parts.0, &port, &parts.2, &parts.3] {
        assert!(
            details.body.contains(&format!(">{shown}<")),
            "{shown} not shown: {}",
            details.body
        );
    }
    assert!(
        details
            .body
            .contains("<dt>Password</dt><dd><span class=\"badge ok\">set</span>")
    );
    bodies.push(details.body);

    // Test: plain form post (the page with the result) and htmx (the fragment).
    let tested = admin.post(&format!("/connections/{id}/test"), &[]).await;
    assert_eq!(tested.status, 200, "{}", tested.body);
    assert!(tested.body.contains("<strong>Connected</strong>"));
    assert!(tested.body.contains("<h1>"));
    assert!(
        !tested.body.contains("Created."),
        "the banner stays after Test"
    );
    bodies.push(tested.body);
    let fragment = admin.hx_post(&format!("/connections/{id}/test"), &[]).await;
    assert_eq!(fragment.status, 200, "{}", fragment.body);
    assert!(fragment.body.contains("<strong>Connected</strong>"));
    assert!(!fragment.body.contains("<html"), "{}", fragment.body);
    // The page's "Created." banner is cleared by the answer (an out-of-band swap of the
    // notice area every page has).
    assert!(
        fragment
            .body
            .contains("<div id=\"page-notice\" hx-swap-oob=\"true\"></div>"),
        "{}",
        fragment.body
    );
    assert!(details_has_notice_area(&mut admin, &format!("/connections/{id}")).await);
    bodies.push(fragment.body);

    // Discover, then the details list the table's fields.
    let discovered = admin
        .post(&format!("/connections/{id}/discover"), &[])
        .await;
    assert_eq!(discovered.status, 303, "{}", discovered.body);
    assert_eq!(
        discovered.location(),
        Some(format!("/connections/{id}?notice=discovered").as_str())
    );
    let details = admin.get(discovered.location().unwrap()).await;
    assert!(details.body.contains(&format!("public.{table}")));
    for field in [
        ">label<",
        ">numeric(12,2)<",
        ">timestamp with time zone<",
        ">decimal<",
    ] {
        assert!(details.body.contains(field), "{field}: {}", details.body);
    }
    assert!(
        details
            .body
            .contains(&format!("/connections/{id}/objects/public.{table}/sample"))
    );
    bodies.push(details.body);

    // Edit: settings prefilled, the secret input empty with its hint.
    let edit = admin.get(&format!("/connections/{id}/edit")).await;
    assert_eq!(edit.status, 200, "{}", edit.body);
    assert!(edit.body.contains(&format!(
        "id=\"postgres-config-host\" name=\"postgres.config.host\" value=\"{}\"",
        parts.0
    )));
    assert!(
        edit.body.contains(
            "<input type=\"password\" id=\"postgres-secrets-password\" name=\"postgres.secrets.password\" value=\"\""
        ),
        "{}",
        edit.body
    );
    assert!(edit.body.contains("Set — leave empty to keep"));
    assert!(
        edit.body
            .contains("name=\"postgres.secrets.password.remove\"")
    );
    assert!(!edit.body.contains("name=\"kind\""), "the kind can change");
    bodies.push(edit.body);

    // A bad edit changes nothing.
    let bad = admin
        .post(
            &format!("/connections/{id}/edit"),
            &pg_form("Renamed", &parts, "0", ""),
        )
        .await;
    assert_eq!(bad.status, 422);
    error_next_to(&bad, "postgres-config-port");
    assert!(bad.body.contains("Set — leave empty to keep"));
    bodies.push(bad.body);
    assert_eq!(api_connections(&mut env).await[0]["name"], "Warehouse");

    // An empty secret keeps the stored one (PATCH semantics).
    let saved = admin
        .post(
            &format!("/connections/{id}/edit"),
            &pg_form("Warehouse EU", &parts, "", ""),
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(
        saved.location(),
        Some(format!("/connections/{id}?notice=saved").as_str())
    );
    let stored = api_connections(&mut env).await;
    assert_eq!(stored[0]["name"], "Warehouse EU");
    assert_eq!(stored[0]["config"]["port"], 5432);
    assert_eq!(stored[0]["secrets_set"], json!(["password"]));

    // "Remove" removes it.
    let mut remove = pg_form("Warehouse EU", &parts, &port, "");
    remove.push(("postgres.secrets.password.remove", "on"));
    let saved = admin
        .post(&format!("/connections/{id}/edit"), &remove)
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(api_connections(&mut env).await[0]["secrets_set"], json!([]));
    let edit = admin.get(&format!("/connections/{id}/edit")).await;
    assert!(!edit.body.contains("Set — leave empty to keep"));
    bodies.push(edit.body);

    for body in &bodies {
        assert!(!body.contains(&canary), "a page showed the secret: {body}");
    }
    env.assert_never_shown(&canary).await;
}

#[tokio::test]
async fn roles_see_and_do_what_the_policy_allows() {
    let table = unique("conn_web");
    pg_table(&table).await;
    let _drop = DropTable(table.clone());
    let (mut env, mut admin, mut editor, mut viewer) = web_env("loopback").await;
    let (host, port, database, user) = pg_parts();
    let token = env.admin.clone();
    let created = env
        .call(
            Method::POST,
            "/api/v1/connections",
            &token,
            Some(json!({"name": "Warehouse", "kind": "postgres",
                "config": {"host": host, "port": port, "database": database, "user": user, "tls": "disable"}})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let found = env
        .call(
            Method::POST,
            &format!("/api/v1/connections/{id}/discover"),
            &token,
            None,
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    let object = format!("public.{table}");
    let details_path = format!("/connections/{id}");
    let sample_path = format!("/connections/{id}/objects/{object}/sample");

    // The Administrator sees the configuration; an Editor the list and the objects only.
    let page = admin.get(&details_path).await;
    assert!(page.body.contains(&format!(">{user}<")));
    let list = editor.get("/connections").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("Warehouse"));
    assert!(!list.body.contains("New connection"));
    let page = editor.get(&details_path).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&object));
    assert!(page.body.contains(">label<"));
    assert!(!page.body.contains(&host), "an Editor sees the host");
    assert!(
        !page.body.contains(&format!(">{user}<")),
        "an Editor sees the user"
    );
    assert!(!page.body.contains("Configuration"));
    assert!(!page.body.contains("/edit\""));
    assert!(
        page.body.contains(&sample_path),
        "no sample link for an Editor"
    );

    // An Editor reads a sample, as text.
    let sample = editor.get(&sample_path).await;
    assert_eq!(sample.status, 200, "{}", sample.body);
    assert!(sample.body.contains(">Grüße<"));
    assert!(sample.body.contains(">12.50<"));
    assert!(
        !sample.body.contains("<b>bold</b>"),
        "a value was not escaped"
    );
    assert!(unescape(&sample.body).contains(">bold<"));

    // An Editor can neither create nor change nor delete.
    assert_eq!(editor.get("/connections/new").await.status, 403);
    assert_eq!(
        editor.get(&format!("{details_path}/edit")).await.status,
        403
    );
    let (h, p, d, u) = (
        host.clone(),
        port.to_string(),
        database.clone(),
        user.clone(),
    );
    let fields = [
        ("name", "Sneaky"),
        ("kind", "postgres"),
        ("postgres.config.host", h.as_str()),
        ("postgres.config.port", p.as_str()),
        ("postgres.config.database", d.as_str()),
        ("postgres.config.user", u.as_str()),
    ];
    assert_eq!(editor.post("/connections", &fields).await.status, 403);
    let denied = editor.post(&format!("{details_path}/edit"), &fields).await;
    assert_eq!(denied.status, 403);
    for action in ["delete", "test", "discover", "oauth/connect"] {
        let denied = editor.post(&format!("{details_path}/{action}"), &[]).await;
        assert_eq!(denied.status, 403, "{action}");
    }
    let stored = api_connections(&mut env).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["name"], "Warehouse");

    // A Viewer sees no sample link and gets no sample.
    let page = viewer.get(&details_path).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&object));
    assert!(!page.body.contains("/sample"), "a Viewer has a sample link");
    assert_eq!(viewer.get(&sample_path).await.status, 403);

    // A form without the CSRF token does nothing.
    let forged = admin.post_raw(&format!("{details_path}/delete"), &[]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(api_connections(&mut env).await.len(), 1);

    // A pipeline uses it: the delete is refused with words.
    let editor_token = env.editor.clone();
    let pipeline = env
        .call(
            Method::POST,
            "/api/v1/pipelines",
            &editor_token,
            Some(
                json!({"name": "copy", "source": {"connection_id": id, "object": object},
                "destination": {"connection_id": id, "object": object},
                "mappings": [{"source": "id", "destination": "id"}],
                "mode": "full_refresh"}),
            ),
        )
        .await;
    assert_eq!(pipeline.status, 201, "{}", pipeline.body);
    let pipeline = pipeline.json()["id"].as_str().unwrap().to_owned();
    admin.get(&details_path).await;
    let refused = admin.post(&format!("{details_path}/delete"), &[]).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("The change was refused. Pipelines read from or write to this connection"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("<h1>Warehouse"));
    let gone = env
        .call(
            Method::DELETE,
            &format!("/api/v1/pipelines/{pipeline}"),
            &editor_token,
            None,
        )
        .await;
    assert_eq!(gone.status, 204, "{}", gone.body);

    // Deleted: the list no longer shows it.
    let deleted = admin.post(&format!("{details_path}/delete"), &[]).await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert_eq!(deleted.location(), Some("/connections?notice=deleted"));
    let list = admin.get(deleted.location().unwrap()).await;
    assert!(list.body.contains("Deleted."));
    assert!(!list.body.contains("Warehouse"));
    assert!(api_connections(&mut env).await.is_empty());
}

#[tokio::test]
async fn a_failing_connection_says_what_failed() {
    let (mut env, mut admin, _, _) = web_env("loopback").await;
    let token = env.admin.clone();
    // Nothing listens on port 1.
    let created = env
        .call(
            Method::POST,
            "/api/v1/connections",
            &token,
            Some(json!({"name": "Nowhere", "kind": "postgres",
                "config": {"host": "127.0.0.1", "port": 1, "database": "x", "user": "x", "tls": "disable"}})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    admin.get(&format!("/connections/{id}")).await;
    let fragment = admin.hx_post(&format!("/connections/{id}/test"), &[]).await;
    assert_eq!(fragment.status, 200);
    assert!(
        fragment.body.contains("The connection was refused"),
        "{}",
        fragment.body
    );
    let discovered = admin
        .post(&format!("/connections/{id}/discover"), &[])
        .await;
    assert_eq!(discovered.status, 502, "{}", discovered.body);
    assert!(discovered.body.contains("class=\"alert\""));
    assert!(discovered.body.contains("The connection was refused"));
}

/// An OAuth authorization-code connection made through the form and connected in the browser
/// against a real authorization server.
#[tokio::test]
async fn oauth_connect_and_disconnect_through_the_pages() {
    let (mut env, mut admin, _, _) = web_env("loopback").await;
    let redirect = env.hub.oauth_redirect_uri();
    let peer = OidcPeer::start(&[&redirect], 120).await.unwrap();
    let mut bodies = Vec::new();

    admin.get("/connections/new").await;
    let base_url = format!("{}/", peer.api);
    let (authorize, token, revoke) = (
        peer.authorization_endpoint(),
        peer.token_endpoint(),
        peer.revocation_endpoint(),
    );
    let created = admin
        .post(
            "/connections",
            &[
                ("name", "Catalog API"),
                ("kind", "rest"),
                ("rest.config.base_url", &base_url),
                ("rest.config.objects[0].name", "items"),
                ("rest.config.objects[0].path", "items"),
                ("rest.config.objects[0].records", "/data"),
                ("rest.config.objects[0].primary_key", "id"),
                ("rest.config.objects[0].pagination.style", "page"),
                ("rest.config.objects[0].pagination.size", "10"),
                ("rest.config.objects[0].pagination.limit", ""),
                ("rest.config.objects[1].name", ""),
                ("rest.config.objects[1].path", ""),
                ("rest.config.objects[1].pagination.style", "none"),
                ("rest.config.auth.kind", "oauth2_authorization_code"),
                ("rest.config.auth.in", "header"),
                ("rest.config.auth.name", ""),
                ("rest.secrets.api_key", ""),
                ("rest.config.auth.authorize_url", &authorize),
                ("rest.config.auth.token_url", &token),
                ("rest.config.auth.revocation_url", &revoke),
                ("rest.config.auth.client_id", &peer.client_id),
                ("rest.config.auth.scopes", "openid"),
                ("rest.secrets.client_secret", &peer.client_secret),
                ("postgres.config.port", ""),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let details_path = created
        .location()
        .unwrap()
        .trim_end_matches("?notice=created")
        .to_owned();
    let stored = api_connections(&mut env).await;
    assert_eq!(
        stored[0]["config"]["objects"],
        json!([{"name": "items", "path": "items", "records": "/data", "primary_key": ["id"],
            "pagination": {"style": "page", "page_param": "page", "size_param": "per_page", "size": 10, "first_page": 1}}])
    );
    assert_eq!(stored[0]["secrets_set"], json!(["client_secret"]));

    let page = admin.get(&details_path).await;
    assert!(
        page.body
            .contains("<span class=\"badge\">Not connected</span>")
    );
    assert!(
        page.body
            .contains(&format!("action=\"{details_path}/oauth/connect\""))
    );
    bodies.push(page.body);

    // Connect: a page that sends the browser on to the provider (no redirect).
    let connect = admin
        .post(&format!("{details_path}/oauth/connect"), &[])
        .await;
    assert_eq!(connect.status, 200, "{}", connect.body);
    let at = connect.body.find("<a data-follow href=\"").unwrap() + "<a data-follow href=\"".len();
    let href = &connect.body[at..];
    let authorize_url = href[..href.find('"').unwrap()].to_owned();
    let authorize_url = unescape(&authorize_url);
    assert!(authorize_url.starts_with(&authorize), "{authorize_url}");
    bodies.push(connect.body.clone());

    // The provider sends the browser back; a browser asking for HTML goes to the page.
    // The page gave this browser the cookie that binds the authorization to it.
    let binding = admin
        .cookie("__Host-lockstep_oauth")
        .expect("no OAuth binding cookie")
        .to_owned();
    let back = peer.approve(&authorize_url, &redirect).await.unwrap();
    let callback = |query: &str| {
        Request::builder()
            .uri(format!("/api/v1/oauth/callback?{query}"))
            .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
            .header(header::COOKIE, format!("__Host-lockstep_oauth={binding}"))
            .body(Body::empty())
            .unwrap()
    };
    let done = env
        .app
        .clone()
        .oneshot(callback(back.query().unwrap()))
        .await
        .unwrap();
    // A page that links on (followed by app.js), not a 303: the redirect chain from the
    // provider would leave the SameSite=Strict session cookie out.
    assert_eq!(done.status(), 200);
    let html = String::from_utf8(
        axum::body::to_bytes(done.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    let at = html.find("data-follow href=\"").unwrap() + "data-follow href=\"".len();
    let location = html[at..at + html[at..].find('"').unwrap()].to_owned();
    assert_eq!(location, format!("{details_path}?notice=connected"));
    let page = admin.get(&location).await;
    assert!(
        page.body
            .contains("Connected: the provider granted access.")
    );
    assert!(
        page.body
            .contains("<span class=\"badge ok\">Connected</span>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("action=\"{details_path}/oauth/disconnect\""))
    );
    bodies.push(page.body);
    // A replayed (or forged) state: an HTML page that says why, not a redirect.
    let replay = env
        .app
        .clone()
        .oneshot(callback(back.query().unwrap()))
        .await
        .unwrap();
    assert_eq!(replay.status(), 409);
    let body = axum::body::to_bytes(replay.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&body).into_owned();
    assert!(
        body.contains("Not connected") && body.contains("href=\"/connections\""),
        "{body}"
    );

    // Test and discover reach the protected API with the tokens.
    let tested = admin.hx_post(&format!("{details_path}/test"), &[]).await;
    assert!(
        tested.body.contains("<strong>Connected</strong>"),
        "{}",
        tested.body
    );
    let discovered = admin.post(&format!("{details_path}/discover"), &[]).await;
    assert_eq!(discovered.status, 303, "{}", discovered.body);
    let sample = admin
        .get(&format!("{details_path}/objects/items/sample"))
        .await;
    assert_eq!(sample.status, 200, "{}", sample.body);
    assert_eq!(
        sample.body.matches("<tr>").count(),
        21,
        "a header and 20 records"
    );

    // Disconnect.
    let disconnected = admin
        .post(&format!("{details_path}/oauth/disconnect"), &[])
        .await;
    assert_eq!(disconnected.status, 303, "{}", disconnected.body);
    assert_eq!(
        disconnected.location(),
        Some(format!("{details_path}?notice=disconnected").as_str())
    );
    let page = admin.get(disconnected.location().unwrap()).await;
    assert!(
        page.body
            .contains("<span class=\"badge\">Not connected</span>")
    );
    assert_eq!(
        api_connections(&mut env).await[0]["oauth"]["connected"],
        false
    );
    bodies.push(page.body);

    // The edit form shows the settings again, never the client secret.
    let edit = admin.get(&format!("{details_path}/edit")).await;
    assert!(edit.body.contains(&format!("value=\"{}\"", peer.client_id)));
    assert!(edit.body.contains("Set — leave empty to keep"));
    bodies.push(edit.body);
    for body in &bodies {
        assert!(
            !body.contains(&peer.client_secret),
            "a page showed the client secret"
        );
    }
}

/// One part of a multipart form: its name, its file name (a file field) and its contents.
pub(super) type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

/// Posts `parts` as `multipart/form-data`, in that order, with `browser`'s session cookies
/// (as a browser sends a form with a file input).
pub(super) async fn post_multipart(
    env: &super::connections::Env,
    browser: &Browser,
    path: &str,
    parts: &[Part<'_>],
) -> Page {
    const BOUNDARY: &str = "----lockstep-test-boundary-7d0c";
    let mut body = Vec::new();
    for (name, file_name, contents) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match file_name {
            Some(file_name) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n\
                     Content-Type: text/csv\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(contents);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    let jar = ["__Host-lockstep_session", "__Host-lockstep_csrf"]
        .iter()
        .filter_map(|name| browser.cookie(name).map(|value| format!("{name}={value}")))
        .collect::<Vec<_>>()
        .join("; ");
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::COOKIE, jar)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .unwrap();
    let response = env.app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 8 << 20)
        .await
        .unwrap();
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The names of the files uploaded to connection `id`, as the API lists them.
async fn uploaded(env: &mut super::connections::Env, id: &str) -> Vec<String> {
    let view = env
        .admin(Method::GET, &format!("/api/v1/connections/{id}"), None)
        .await;
    assert_eq!(view.status, 200, "{}", view.body);
    view.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_administrator_uploads_discovers_and_deletes_a_file() {
    let (mut env, mut admin, mut editor, _) = web_env("loopback").await;
    let created = env
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "Uploads", "kind": "files"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let details = format!("/connections/{id}");
    let files = format!("/connections/{id}/files");
    let csv: &[u8] = b"part_no,qty\nA-1,3\nB-2,4\n";

    let page = admin.get(&details).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&format!(
        "<form method=\"post\" action=\"{files}\" enctype=\"multipart/form-data\">"
    )));
    assert!(page.body.contains("<label for=\"upload-file\">"));
    let page = editor.get(&details).await;
    assert!(!page.body.contains("upload-file"), "{}", page.body);

    // Without the CSRF token, with a wrong one, or from an Editor: refused, nothing stored.
    let file: Part<'_> = ("file", Some("parts.csv"), csv);
    let refused = post_multipart(&env, &admin, &files, &[file]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let wrong = ("csrf", None, b"lsc_wrong".as_slice());
    let refused = post_multipart(&env, &admin, &files, &[wrong, file]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let token = editor.csrf.clone();
    let as_editor = ("csrf", None, token.as_bytes());
    let refused = post_multipart(&env, &editor, &files, &[as_editor, file]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(uploaded(&mut env, &id).await.is_empty());

    // Wrong names, no file, too large: the page again with the error at the file input.
    let token = admin.csrf.clone();
    let csrf = ("csrf", None, token.as_bytes());
    let page = post_multipart(
        &env,
        &admin,
        &files,
        &[csrf, ("file", Some("notes.txt"), csv)],
    )
    .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(error_next_to(&page, "upload-file").starts_with("The file name must be"));
    let page = post_multipart(&env, &admin, &files, &[csrf, ("file", Some(""), b"")]).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert_eq!(
        error_next_to(&page, "upload-file"),
        "Choose a file to upload."
    );
    let big = vec![b'a'; lockstep_app::MAX_UPLOAD_BYTES + 1];
    let page = post_multipart(
        &env,
        &admin,
        &files,
        &[csrf, ("file", Some("big.csv"), &big)],
    )
    .await;
    assert_eq!(page.status, 422);
    assert_eq!(
        error_next_to(&page, "upload-file"),
        "Files are limited to 32 MiB."
    );
    drop(big);
    // A file that cannot be read: what is wrong, at the file input.
    let page = post_multipart(
        &env,
        &admin,
        &files,
        &[csrf, ("file", Some("broken.csv"), b"a,b\n1,\"open\n2,3\n")],
    )
    .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert_eq!(
        error_next_to(&page, "upload-file"),
        "This file cannot be read: broken.csv: line 2: unclosed quote (the quoted field that \
         starts there never ends)."
    );
    assert!(uploaded(&mut env, &id).await.is_empty());

    // Any letters and spaces in a name.
    let done = post_multipart(
        &env,
        &admin,
        &files,
        &[
            csrf,
            (
                "file",
                Some("Stückliste Montage.csv"),
                b"Teil;Menge\nA-1;2\n",
            ),
        ],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(uploaded(&mut env, &id).await, ["Stückliste Montage.csv"]);
    let delete = format!("{files}/St%C3%BCckliste%20Montage.csv/delete");
    let deleted = admin.post(&delete, &[]).await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert!(uploaded(&mut env, &id).await.is_empty());

    // The upload (a path in the file name is dropped), then discovery reads its fields.
    let done = post_multipart(
        &env,
        &admin,
        &files,
        &[csrf, ("file", Some("C:\\fakepath\\parts.csv"), csv)],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location(),
        Some(format!("{details}?notice=saved").as_str())
    );
    assert_eq!(uploaded(&mut env, &id).await, ["parts.csv"]);
    let page = admin.get(&format!("{details}?notice=saved")).await;
    assert!(
        page.body.contains("<td class=\"mono\">parts.csv</td>"),
        "{}",
        page.body
    );
    let discovered = admin.post(&format!("{details}/discover"), &[]).await;
    assert_eq!(discovered.status, 303, "{}", discovered.body);
    let page = admin.get(&details).await;
    for shown in ["uploads/parts.csv", "part_no", "qty"] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }

    // Delete: not by an Editor, then by the Administrator.
    let delete = format!("{files}/parts.csv/delete");
    assert!(page.body.contains(&format!("action=\"{delete}\"")));
    editor.get(&details).await;
    let refused = editor.post(&delete, &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(uploaded(&mut env, &id).await, ["parts.csv"]);
    let deleted = admin.post(&delete, &[]).await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert!(uploaded(&mut env, &id).await.is_empty());
    let page = admin.get(&details).await;
    assert!(page.body.contains("No file uploaded."));
}

/// Whether the page has the notice area that htmx answers clear.
async fn details_has_notice_area(browser: &mut Browser, path: &str) -> bool {
    browser
        .get(path)
        .await
        .body
        .contains("<div id=\"page-notice\">")
}

/// A connection whose discovery found nothing says so once, not "Nothing discovered yet" as well;
/// an upload too large for the hub gets a page that says the same limit as the form.
#[tokio::test]
async fn discovery_of_nothing_says_so_once_and_the_size_limit_reads_the_same() {
    let (mut env, mut admin, _, _) = web_env("loopback").await;
    let created = env
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "Empty drop", "kind": "files"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let page = admin.get(&format!("/connections/{id}")).await;
    assert!(
        page.body.contains("Nothing discovered yet."),
        "{}",
        page.body
    );
    assert!(page.body.contains("up to 32 MiB"), "{}", page.body);
    let discovered = admin
        .post(&format!("/connections/{id}/discover"), &[])
        .await;
    assert_eq!(discovered.status, 303, "{}", discovered.body);
    let page = admin.get(discovered.location().unwrap()).await;
    assert!(page.body.contains("no objects were found"), "{}", page.body);
    assert!(
        !page.body.contains("Nothing discovered yet"),
        "{}",
        page.body
    );

    // A declared body over the limit is refused before it is read, in the form's words.
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri(format!("/connections/{id}/files"))
        .header("content-type", "multipart/form-data; boundary=x")
        .header(
            "content-length",
            (lockstep_app::MAX_UPLOAD_BYTES + (1 << 20)).to_string(),
        )
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(env.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("Files are limited to 32 MiB."), "{body}");
    assert!(!body.contains("KiB"), "{body}");
}

/// Real CAD exports (`shared/testdata/bom`, read where they are) as the files directory.
fn bom_exports() -> lockstep_app::connectors::FilesRoot {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/bom");
    lockstep_app::connectors::FilesRoot::new(&dir).unwrap()
}

#[tokio::test]
async fn a_file_that_cannot_be_read_is_shown_with_its_error_beside_the_others() {
    let mut env = super::connections::env_with_files("loopback", Some(bom_exports())).await;
    let mut admin = Browser::signed_in(&env.app, "admin@alpha.io").await;
    let created = env
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "CAD exports", "kind": "files", "config": {
                "directory": "solidworks",
                "csv": {"files": {"ACV0158450_sw.csv": {"encoding": "windows-1252"}}}
            }})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let details = format!("/connections/{id}");

    // Discovery answers every file; the one with ragged lines carries its error.
    admin.get(&details).await;
    let discovered = admin.post(&format!("{details}/discover"), &[]).await;
    assert_eq!(discovered.status, 303, "{}", discovered.body);
    let page = admin.get(&details).await;
    assert!(
        page.body.contains(
            "<p class=\"alert\">This file could not be read: ACV0121010_sw.csv: line 170: 8 \
             fields where the first line has 7</p>"
        ),
        "{}",
        page.body
    );
    for name in [
        "3180-UNV2-000_sw.csv",
        "6890-DVT0161720-02_sw.csv",
        "ACV0158450_sw.csv",
    ] {
        assert!(page.body.contains(name), "{name}");
    }
    assert_eq!(
        page.body
            .matches("Read as windows-1252, delimiter ,.")
            .count(),
        3,
        "{}",
        page.body
    );
    assert!(page.body.contains("PART NUMBER") || page.body.contains("column_7"));

    // The edit form keeps the settings of single files.
    let edit = admin.get(&format!("{details}/edit")).await;
    assert_eq!(edit.status, 200, "{}", edit.body);
    assert!(edit.body.contains("ACV0158450_sw.csv"), "{}", edit.body);
    let saved = admin
        .post(
            &format!("{details}/edit"),
            &[
                ("name", "CAD exports"),
                ("kind", "files"),
                ("files.config.directory", "solidworks"),
                ("files.config.csv.delimiter", ""),
                ("files.config.csv.header", "on"),
                ("files.config.csv.encoding", ""),
                (
                    "files.config.csv.files",
                    r#"{"ACV0121010_sw.csv": {"delimiter": ";"}}"#,
                ),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let stored = api_connections(&mut env).await;
    assert_eq!(
        stored[0]["config"]["csv"]["files"],
        json!({"ACV0121010_sw.csv": {"delimiter": ";"}})
    );
    let refused = admin
        .post(
            &format!("{details}/edit"),
            &[
                ("name", "CAD exports"),
                ("kind", "files"),
                ("files.config.directory", "solidworks"),
                (
                    "files.config.csv.files",
                    r#"{"a.csv": {"encoding": "klingon"}}"#,
                ),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
}
