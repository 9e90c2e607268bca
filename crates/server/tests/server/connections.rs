//! Connections through the API against real systems: PostgreSQL and MariaDB on this machine (or
//! the throwaway ones `scripts/test` starts), and a real OAuth 2.0 authorization server
//! (`oidc-provider` from npm) that also serves a JSON API protected by its tokens.
//!
//! Every test also checks the write-only rule with a canary: the secret's value appears in no
//! response body, no audit event, no log line and nowhere in the store in clear.

use super::{Answer, call};
use axum::Router;
use axum::http::Method;
use lockstep_app::connectors::testing::OidcPeer;
use lockstep_app::connectors::{Context, EgressPolicy};
use lockstep_app::{Hub, HubOptions, ManualClock, Password};
use lockstep_domain::Role;
use lockstep_storage::Backend;
use lockstep_storage::testing::{TestStore, snapshot};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};

const PASSWORD: &str = "correct horse battery staple";

/// Log lines written while a test runs (the hub's tracing output, as the log files get it).
#[derive(Clone, Default)]
pub(super) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

pub(super) struct Env {
    pub(super) store: TestStore,
    pub(super) hub: Arc<Hub>,
    pub(super) app: Router,
    pub(super) clock: Arc<ManualClock>,
    /// The operator, to make further organizations.
    pub(super) operator: lockstep_app::Operator,
    pub(super) admin: String,
    pub(super) editor: String,
    pub(super) viewer: String,
    pub(super) logs: Logs,
    _log_guard: tracing::subscriber::DefaultGuard,
    /// Every response body, for the canary check.
    seen: Vec<String>,
}

const PUBLIC_URL: &str = "https://hub.test:8443";

pub(super) async fn env(egress: &str) -> Env {
    env_with_files(egress, None).await
}

/// [`env`] with the operator's files directory (`--files-root`) at `files_root`.
pub(super) async fn env_with_files(
    egress: &str,
    files_root: Option<lockstep_app::connectors::FilesRoot>,
) -> Env {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let store = TestStore::new(Backend::Sqlite).await.unwrap();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let (hub, creds) = Hub::initialize(store.store.clone(), clock.clone(), 1, 1)
        .await
        .unwrap();
    let mut connectors = Context::new(EgressPolicy::parse(egress).unwrap(), files_root);
    connectors.timeout = std::time::Duration::from_secs(10);
    let hub = Arc::new(hub.with_options(HubOptions {
        password_permits: 2,
        public_url: PUBLIC_URL.to_owned(),
        connectors,
        ..HubOptions::default()
    }));
    let op = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    let created = hub
        .create_organization(&op, "alpha", "admin@alpha.io")
        .await
        .unwrap();
    let pw = Password::new(PASSWORD.to_owned());
    hub.accept_invitation(created.invitation_token.expose(), &pw, "Ada")
        .await
        .unwrap();
    let session = |email: &'static str| {
        let hub = Arc::clone(&hub);
        async move {
            let pw = Password::new(PASSWORD.to_owned());
            hub.login(email, &pw, None)
                .await
                .unwrap()
                .session_token
                .expose()
                .to_owned()
        }
    };
    let admin = session("admin@alpha.io").await;
    let admin_caller = hub.authenticate(&admin).await.unwrap();
    for (email, role) in [
        ("editor@alpha.io", Role::Editor),
        ("viewer@alpha.io", Role::Viewer),
    ] {
        let invitation = hub.invite_user(&admin_caller, email, role).await.unwrap();
        hub.accept_invitation(invitation.token.expose(), &pw, "Someone")
            .await
            .unwrap();
    }
    let editor = session("editor@alpha.io").await;
    let viewer = session("viewer@alpha.io").await;
    let app = lockstep_server::router(Arc::clone(&hub));
    Env {
        store,
        hub,
        app,
        clock,
        operator: op,
        admin,
        editor,
        viewer,
        logs,
        _log_guard: guard,
        seen: Vec::new(),
    }
}

impl Env {
    pub(super) async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Answer {
        let body = body.map(|b| b.to_string());
        let answer = call(&self.app, method, path, Some(token), body.as_deref()).await;
        self.seen.push(answer.body.clone());
        answer
    }

    pub(super) async fn admin(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let token = self.admin.clone();
        self.call(method, path, &token, body).await
    }

    /// The canary is nowhere: responses, audit events (as Administrators read them), log lines,
    /// the store (as text and as hex).
    pub(super) async fn assert_never_shown(&mut self, canary: &str) {
        let events = self
            .admin(Method::GET, "/api/v1/audit/events?limit=500", None)
            .await;
        assert_eq!(events.status, 200);
        assert!(events.json()["events"].as_array().unwrap().len() > 3);
        for body in &self.seen {
            assert!(
                !body.contains(canary),
                "a response carried the secret: {body}"
            );
        }
        let logs = self.logs.text();
        assert!(
            logs.contains("connection"),
            "the test captured no hub log lines"
        );
        assert!(!logs.contains(canary), "a log line carried the secret");
        let rows = snapshot(&self.store.store).await.unwrap().join("\n");
        let hex = canary
            .bytes()
            .map(|b| format!("{b:02X}"))
            .collect::<String>();
        assert!(
            !rows.contains(canary) && !rows.to_uppercase().contains(&hex),
            "the store holds the secret in clear"
        );
    }
}

pub(super) fn pg_parts() -> (String, u16, String, String) {
    let url = url::Url::parse(&lockstep_storage::testing::postgres_admin_url()).unwrap();
    (
        url.host_str().unwrap().to_owned(),
        url.port().unwrap_or(5432),
        url.path().trim_start_matches('/').to_owned(),
        url.username().to_owned(),
    )
}

pub(super) fn mysql_parts() -> (String, u16, String, String, String) {
    let raw = std::env::var("LOCKSTEP_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    let url = url::Url::parse(&raw).unwrap();
    (
        url.host_str().unwrap().to_owned(),
        url.port().unwrap_or(3306),
        url.path().trim_start_matches('/').to_owned(),
        url.username().to_owned(),
        url.password().unwrap_or("").to_owned(),
    )
}

/// A table of our own in the test database.
async fn pg_table(name: &str) {
    let (client, connection) = tokio_postgres::connect(
        &lockstep_storage::testing::postgres_admin_url(),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS public.{name}; \
             CREATE TABLE public.{name} (id bigint PRIMARY KEY, label text NOT NULL, \
               price numeric(12,2), seen timestamptz); \
             INSERT INTO public.{name} VALUES (1, 'Grüße', 12.50, '2026-11-22T10:00:00Z'), \
               (2, 'two', NULL, NULL);"
        ))
        .await
        .unwrap();
}

async fn pg_drop(name: &str) {
    let (client, connection) = tokio_postgres::connect(
        &lockstep_storage::testing::postgres_admin_url(),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS public.{name}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn postgres_create_test_discover_sample_with_write_only_secrets() {
    const CANARY: &str = "CANARY-pg-5e1d7a93";
    let table = format!("conn_api_{}", uuid::Uuid::now_v7().simple());
    pg_table(&table).await;
    let mut e = env("loopback").await;
    let (host, port, database, user) = pg_parts();
    let config =
        json!({"host": host, "port": port, "database": database, "user": user, "tls": "disable"});

    // Bad input: named field, nothing stored, the secret not echoed.
    let before = snapshot(&e.store.store).await.unwrap();
    let bad = e
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "pg", "kind": "postgres", "config": {"host": host, "port": 0, "database": database, "user": user}, "secrets": {"password": CANARY}})),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.json()["field"], "config.port");
    let unknown = e
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "pg", "kind": "postgres", "config": config, "secrets": {"token": CANARY}})),
        )
        .await;
    assert_eq!(unknown.status, 422);
    assert_eq!(unknown.json()["field"], "secrets.token");
    let kind = e
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "pg", "kind": "oracle", "config": {}})),
        )
        .await;
    assert_eq!(kind.status, 422);
    assert_eq!(kind.json()["field"], "kind");
    assert_eq!(snapshot(&e.store.store).await.unwrap(), before);

    // Editors and Viewers cannot create.
    let editor = e.editor.clone();
    let denied = e
        .call(
            Method::POST,
            "/api/v1/connections",
            &editor,
            Some(json!({"name": "pg", "kind": "postgres", "config": config, "secrets": {"password": CANARY}})),
        )
        .await;
    assert_eq!(denied.status, 403);

    let created = e
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "Warehouse", "kind": "postgres", "config": config, "secrets": {"password": CANARY}})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let body = created.json();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(body["config"]["host"], host.as_str());
    assert_eq!(body["secrets_set"], json!(["password"]));
    assert!(body.get("secrets").is_none());

    // Everybody sees name and kind; only Administrators the config.
    for token in [e.editor.clone(), e.viewer.clone()] {
        let one = e
            .call(
                Method::GET,
                &format!("/api/v1/connections/{id}"),
                &token,
                None,
            )
            .await;
        assert_eq!(one.status, 200);
        let mut keys: Vec<String> = one.json().as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["id", "kind", "name"], "{}", one.body);
        let list = e
            .call(Method::GET, "/api/v1/connections", &token, None)
            .await;
        assert_eq!(
            list.json()["connections"][0],
            json!({"id": id, "name": "Warehouse", "kind": "postgres"})
        );
    }

    let tested = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/test"),
            None,
        )
        .await;
    assert_eq!(tested.status, 200);
    assert_eq!(tested.json()["ok"], true, "{}", tested.body);

    let found = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/discover"),
            None,
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    let object_name = format!("public.{table}");
    let viewer = e.viewer.clone();
    let objects = e
        .call(
            Method::GET,
            &format!("/api/v1/connections/{id}/objects"),
            &viewer,
            None,
        )
        .await;
    assert_eq!(objects.status, 200);
    let object = objects.json()["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == object_name.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{object_name} not discovered: {}", objects.body));
    assert_eq!(
        object["fields"],
        json!([
            {"name": "id", "type": "integer", "native": "bigint", "nullable": false, "primary_key": true},
            {"name": "label", "type": "string", "native": "text", "nullable": false, "primary_key": false},
            {"name": "price", "type": "decimal", "native": "numeric(12,2)", "nullable": true, "primary_key": false},
            {"name": "seen", "type": "timestamp_tz", "native": "timestamp with time zone", "nullable": true, "primary_key": false},
        ])
    );

    // Samples: Editors yes, Viewers no.
    let sample_path = format!("/api/v1/connections/{id}/objects/{object_name}/sample?limit=5");
    let no = e.call(Method::GET, &sample_path, &viewer, None).await;
    assert_eq!(no.status, 403);
    let sample = e.call(Method::GET, &sample_path, &editor, None).await;
    assert_eq!(sample.status, 200, "{}", sample.body);
    let records = sample.json()["records"].clone();
    assert_eq!(records[0]["label"], "Grüße");
    assert_eq!(records[0]["price"], "12.50");
    assert_eq!(records[1]["price"], Value::Null);
    let unknown = e
        .call(
            Method::GET,
            &format!("/api/v1/connections/{id}/objects/public.nope/sample"),
            &editor,
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);

    // A PATCH without secrets keeps them; with null, one is removed.
    let renamed = e
        .admin(
            Method::PATCH,
            &format!("/api/v1/connections/{id}"),
            Some(json!({"name": "Warehouse EU"})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.json()["secrets_set"], json!(["password"]));
    let kind_change = e
        .admin(
            Method::PATCH,
            &format!("/api/v1/connections/{id}"),
            Some(json!({"kind": "mysql"})),
        )
        .await;
    assert_eq!(kind_change.status, 422);

    // The audit trail: each change, the secret only as "changed".
    let events = e
        .admin(
            Method::GET,
            &format!("/api/v1/audit/events?object_kind=connection&object_id={id}&limit=50"),
            None,
        )
        .await;
    let events = events.json()["events"].as_array().unwrap().clone();
    let actions: Vec<&str> = events
        .iter()
        .map(|ev| ev["action"].as_str().unwrap())
        .collect();
    for action in [
        "connection.created",
        "connection.tested",
        "connection.discovered",
        "records.sampled",
        "connection.updated",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    let created_event = events
        .iter()
        .find(|ev| ev["action"] == "connection.created")
        .unwrap();
    assert_eq!(
        created_event["changes"]["password"],
        json!({"changed": true})
    );

    e.assert_never_shown(CANARY).await;

    let deleted = e
        .admin(Method::DELETE, &format!("/api/v1/connections/{id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    let gone = e
        .admin(Method::GET, &format!("/api/v1/connections/{id}"), None)
        .await;
    assert_eq!(gone.status, 404);
    let rows = snapshot(&e.store.store).await.unwrap();
    assert!(
        !rows.iter().any(|r| r.starts_with("connection_secrets:")),
        "secrets outlived their connection"
    );
    pg_drop(&table).await;
}

#[tokio::test]
async fn mariadb_create_test_discover_sample_and_a_refused_password() {
    const CANARY: &str = "CANARY-my-0b6c2f4e";
    let mut e = env("loopback").await;
    let (host, port, database, user, password) = mysql_parts();
    let table = format!(
        "conn_api_{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    );
    let pool = mysql_async::Pool::new(
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(host.clone())
            .tcp_port(port)
            .user(Some(user.clone()))
            .pass((!password.is_empty()).then(|| password.clone()))
            .db_name(Some(database.clone())),
    );
    {
        use mysql_async::prelude::Queryable;
        let mut conn = pool.get_conn().await.unwrap();
        conn.query_drop(format!(
            "CREATE TABLE `{table}` (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, amount DECIMAL(10,3))"
        ))
        .await
        .unwrap();
        conn.query_drop(format!(
            "INSERT INTO `{table}` VALUES (1, 'Zoë', 1.250), (2, 'Bob', NULL)"
        ))
        .await
        .unwrap();
    }
    let mut config =
        json!({"host": host, "port": port, "database": database, "user": user, "tls": "disable"});
    let secrets = if password.is_empty() {
        json!({})
    } else {
        json!({"password": password})
    };
    let created = e
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "Shop", "kind": "mysql", "config": config, "secrets": secrets})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let tested = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/test"),
            None,
        )
        .await;
    assert_eq!(tested.json()["ok"], true, "{}", tested.body);
    let found = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/discover"),
            None,
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    let object = found.json()["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == table.as_str())
        .cloned()
        .unwrap();
    assert_eq!(object["fields"][0]["primary_key"], true);
    assert_eq!(object["fields"][2]["type"], "decimal");
    let sample = e
        .admin(
            Method::GET,
            &format!("/api/v1/connections/{id}/objects/{table}/sample"),
            None,
        )
        .await;
    assert_eq!(sample.status, 200, "{}", sample.body);
    assert_eq!(sample.json()["records"][0]["name"], "Zoë");
    assert_eq!(sample.json()["records"][0]["amount"], "1.250");

    // A wrong password: a readable failure, the password nowhere.
    config["user"] = json!("lockstep_nobody");
    let wrong = e
        .admin(
            Method::PATCH,
            &format!("/api/v1/connections/{id}"),
            Some(json!({"config": config, "secrets": {"password": CANARY}})),
        )
        .await;
    assert_eq!(wrong.status, 200, "{}", wrong.body);
    let tested = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/test"),
            None,
        )
        .await;
    assert_eq!(tested.json()["ok"], false);
    assert_eq!(
        tested.json()["failure"],
        "authentication",
        "{}",
        tested.body
    );
    let discover = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/discover"),
            None,
        )
        .await;
    assert_eq!(discover.status, 502);
    assert_eq!(discover.json()["failure"], "authentication");
    e.assert_never_shown(CANARY).await;

    use mysql_async::prelude::Queryable;
    let mut conn = pool.get_conn().await.unwrap();
    conn.query_drop(format!("DROP TABLE `{table}`"))
        .await
        .unwrap();
    drop(conn);
    pool.disconnect().await.unwrap();
}

#[tokio::test]
async fn the_egress_policy_and_the_files_directory_refuse_what_they_must() {
    // The default policy: public addresses only.
    let mut e = env("public").await;
    let (host, port, database, user) = pg_parts();
    for target in [host.as_str(), "169.254.169.254", "localhost"] {
        let created = e
            .admin(
                Method::POST,
                "/api/v1/connections",
                Some(json!({"name": format!("pg {target}"), "kind": "postgres", "config": {"host": target, "port": port, "database": database, "user": user, "tls": "disable"}})),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        let id = created.json()["id"].as_str().unwrap().to_owned();
        let tested = e
            .admin(
                Method::POST,
                &format!("/api/v1/connections/{id}/test"),
                None,
            )
            .await;
        assert_eq!(tested.json()["ok"], false, "{target}");
        assert_eq!(
            tested.json()["failure"],
            "policy",
            "{target}: {}",
            tested.body
        );
    }
    // A rest connection to the metadata address is refused too.
    let created = e
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "metadata", "kind": "rest", "config": {"base_url": "http://169.254.169.254/latest/", "objects": [{"name": "meta", "path": "meta-data"}]}})),
        )
        .await;
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let tested = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/test"),
            None,
        )
        .await;
    assert_eq!(tested.json()["failure"], "policy", "{}", tested.body);

    // Paths that leave the files directory are refused when saved.
    for (kind, config, field) in [
        ("sqlite", json!({"path": "../etc/db.sqlite"}), "config.path"),
        ("sqlite", json!({"path": "/etc/passwd"}), "config.path"),
        (
            "files",
            json!({"directory": "a/../../b"}),
            "config.directory",
        ),
    ] {
        let refused = e
            .admin(
                Method::POST,
                "/api/v1/connections",
                Some(json!({"name": "f", "kind": kind, "config": config})),
            )
            .await;
        assert_eq!(refused.status, 422, "{config}");
        assert_eq!(refused.json()["field"], field);
    }
    // An API key sent as `Host` (or another header that routes or frames the request) could
    // reach another virtual host behind an allowed address: refused when saved, changing nothing.
    let before = snapshot(&e.store.store).await.unwrap();
    for header in ["Host", "x-forwarded-host", "Transfer-Encoding"] {
        let refused = e
            .admin(
                Method::POST,
                "/api/v1/connections",
                Some(json!({"name": "api", "kind": "rest",
                    "config": {"base_url": "https://api.example.com/", "objects": [{"name": "items", "path": "items"}],
                        "auth": {"kind": "api_key", "in": "header", "name": header}},
                    "secrets": {"api_key": "k-canary-7f3a"}})),
            )
            .await;
        assert_eq!(refused.status, 422, "{header}: {}", refused.body);
        assert_eq!(refused.json()["field"], "config.auth.name");
        assert!(!refused.body.contains("k-canary-7f3a"));
    }
    assert_eq!(snapshot(&e.store.store).await.unwrap(), before);

    // Without --files-root, a sqlite connection says so when tested.
    let created = e
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "local db", "kind": "sqlite", "config": {"path": "x.db"}})),
        )
        .await;
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let tested = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/test"),
            None,
        )
        .await;
    assert_eq!(tested.json()["ok"], false);
    assert!(
        tested.json()["message"]
            .as_str()
            .unwrap()
            .contains("--files-root"),
        "{}",
        tested.body
    );
}

#[tokio::test]
async fn uploaded_files_are_discovered_and_sampled_and_kept_encrypted() {
    const CANARY: &str = "CANARY-row-77d0";
    let mut e = env("loopback").await;
    let created = e
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "Uploads", "kind": "files"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let csv = format!("part_no,qty\nA-1,3\n{CANARY},4\n");
    let request = axum::http::Request::builder()
        .method(Method::PUT)
        .uri(format!("/api/v1/connections/{id}/files/bom.csv"))
        .header("authorization", format!("Bearer {}", e.admin))
        .body(axum::body::Body::from(csv))
        .unwrap();
    let response = tower::ServiceExt::oneshot(e.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let bad = axum::http::Request::builder()
        .method(Method::PUT)
        .uri(format!("/api/v1/connections/{id}/files/..%2Fx.csv"))
        .header("authorization", format!("Bearer {}", e.admin))
        .body(axum::body::Body::from("a\n1\n"))
        .unwrap();
    let response = tower::ServiceExt::oneshot(e.app.clone(), bad)
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let found = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/discover"),
            None,
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.json()["objects"][0]["name"], "uploads/bom.csv");
    let sample = e
        .admin(
            Method::GET,
            &format!("/api/v1/connections/{id}/objects/uploads%2Fbom.csv/sample"),
            None,
        )
        .await;
    assert_eq!(sample.status, 200, "{}", sample.body);
    assert_eq!(sample.json()["records"][1]["qty"], 4);
    // The file's contents are not in the store in clear.
    let rows = snapshot(&e.store.store).await.unwrap().join("\n");
    let hex: String = CANARY.bytes().map(|b| format!("{b:02X}")).collect();
    assert!(!rows.contains(CANARY) && !rows.to_uppercase().contains(&hex));
    assert!(!e.logs.text().contains(CANARY));
}

/// Starts the OAuth flow through the API; answers the authorization URL and the binding
/// cookie's `name=value` (checked: `__Host-`, Secure, HttpOnly, SameSite=Lax, Path=/).
async fn oauth_start(e: &mut Env, id: &str) -> (String, String) {
    let started = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/oauth/start"),
            None,
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    let set = started
        .headers
        .get_all(axum::http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-lockstep_oauth="))
        .expect("no binding cookie")
        .to_owned();
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(set.contains(attribute), "{set}");
    }
    let pair = set.split(';').next().unwrap().to_owned();
    assert!(pair.len() > "__Host-lockstep_oauth=".len() + 30, "{set}");
    (
        started.json()["authorize_url"].as_str().unwrap().to_owned(),
        pair,
    )
}

/// The provider's redirect back, from a browser holding `cookie` (`name=value`) or none.
async fn oauth_callback(app: &Router, path: &str, cookie: Option<&str>) -> Answer {
    use tower::ServiceExt;
    let mut request = axum::http::Request::builder().uri(path);
    if let Some(cookie) = cookie {
        let cookie = if cookie.contains('=') {
            cookie.to_owned()
        } else {
            format!("__Host-lockstep_oauth={cookie}")
        };
        request = request.header(axum::http::header::COOKIE, cookie);
    }
    let response = app
        .clone()
        .oneshot(request.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
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

/// The authorization code flow with PKCE against a real authorization server, bound to the
/// browser that started it, then its API paged with the tokens; refresh before expiry;
/// disconnect revokes at the provider.
#[tokio::test]
async fn oauth_authorization_code_with_refresh_and_revocation() {
    let redirect = format!("{PUBLIC_URL}/api/v1/oauth/callback");
    let peer = OidcPeer::start(&[&redirect], 120).await.unwrap();
    let mut e = env("loopback").await;
    let created = e
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({
                "name": "Catalog API",
                "kind": "rest",
                "config": {
                    "base_url": format!("{}/", peer.api),
                    "objects": [{"name": "items", "path": "items", "records": "/data",
                        "pagination": {"style": "page", "page_param": "page", "size_param": "per_page", "size": 10},
                        "primary_key": ["id"]}],
                    "auth": {"kind": "oauth2_authorization_code",
                        "authorize_url": peer.authorization_endpoint(),
                        "token_url": peer.token_endpoint(),
                        "revocation_url": peer.revocation_endpoint(),
                        "client_id": peer.client_id,
                        "scopes": ["openid"]}
                },
                "secrets": {"client_secret": peer.client_secret}
            })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(created.json()["oauth"]["connected"], false);

    // Not connected yet: the test says so.
    let tested = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/test"),
            None,
        )
        .await;
    assert_eq!(
        tested.json()["failure"],
        "authentication",
        "{}",
        tested.body
    );

    // A state alone connects nothing: without the starting browser's cookie, or with another
    // one, the callback is refused, the state is used up and nothing is stored.
    let (authorize_url, _) = oauth_start(&mut e, &id).await;
    assert!(authorize_url.contains("code_challenge_method=S256"));
    let back = peer.approve(&authorize_url, &redirect).await.unwrap();
    let callback = format!("/api/v1/oauth/callback?{}", back.query().unwrap());
    let before = snapshot(&e.store.store).await.unwrap();
    let cookieless = oauth_callback(&e.app, &callback, None).await;
    assert_eq!(cookieless.status, 409, "{}", cookieless.body);
    assert!(
        cookieless.body.contains("did not start the authorization"),
        "{}",
        cookieless.body
    );
    let (other_url, other_cookie) = oauth_start(&mut e, &id).await;
    let later = oauth_callback(&e.app, &callback, Some(&other_cookie)).await;
    assert_eq!(later.status, 409, "a refused state was usable again");
    let not_connected = e
        .admin(Method::GET, &format!("/api/v1/connections/{id}"), None)
        .await;
    assert_eq!(not_connected.json()["oauth"]["connected"], false);
    let back = peer.approve(&other_url, &redirect).await.unwrap();
    let other_callback = format!("/api/v1/oauth/callback?{}", back.query().unwrap());
    let wrong = oauth_callback(&e.app, &other_callback, Some("lsb_not-the-right-one")).await;
    assert_eq!(wrong.status, 409, "{}", wrong.body);
    let rows = snapshot(&e.store.store).await.unwrap();
    let secret_rows = |rows: &[String]| {
        rows.iter()
            .filter(|r| r.contains("oauth_access_token") || r.contains("oauth_refresh_token"))
            .count()
    };
    assert_eq!(secret_rows(&rows), 0, "tokens were stored");
    assert_eq!(secret_rows(&before), 0);
    let refused = e
        .admin(
            Method::GET,
            &format!("/api/v1/audit/events?object_id={id}&action=connection.oauth_connected"),
            None,
        )
        .await;
    let refused = refused.json()["events"].as_array().unwrap().clone();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused.iter().all(|ev| ev["outcome"] == "failure"),
        "{refused:?}"
    );

    // The browser that started it, with its cookie, completes it.
    let (authorize_url, cookie) = oauth_start(&mut e, &id).await;
    let back = peer.approve(&authorize_url, &redirect).await.unwrap();
    let callback = format!("/api/v1/oauth/callback?{}", back.query().unwrap());

    // A forged state does nothing.
    let forged = oauth_callback(
        &e.app,
        "/api/v1/oauth/callback?state=forged&code=abc",
        Some(&cookie),
    )
    .await;
    assert_eq!(forged.status, 409);

    let done = oauth_callback(&e.app, &callback, Some(&cookie)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.content_type().starts_with("text/html"));
    let cleared = done
        .headers
        .get_all(axum::http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with("__Host-lockstep_oauth=;") && v.contains("Max-Age=0"));
    assert!(cleared, "the binding cookie is not deleted");
    // The state is single-use.
    let replay = oauth_callback(&e.app, &callback, Some(&cookie)).await;
    assert_eq!(replay.status, 409);

    let one = e
        .admin(Method::GET, &format!("/api/v1/connections/{id}"), None)
        .await;
    assert_eq!(one.json()["oauth"]["connected"], true, "{}", one.body);
    assert_eq!(one.json()["secrets_set"], json!(["client_secret"]));

    let found = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/discover"),
            None,
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    let sample = e
        .admin(
            Method::GET,
            &format!("/api/v1/connections/{id}/objects/items/sample?limit=25"),
            None,
        )
        .await;
    assert_eq!(sample.status, 200, "{}", sample.body);
    let records = sample.json()["records"].as_array().unwrap().clone();
    assert_eq!(records.len(), 25, "three pages of 10");
    assert_eq!(records[24]["id"], 25);

    // Close to expiry, the next use refreshes first (and the API accepts the new token).
    e.clock.advance(time::Duration::seconds(100));
    let sample = e
        .admin(
            Method::GET,
            &format!("/api/v1/connections/{id}/objects/items/sample?limit=3"),
            None,
        )
        .await;
    assert_eq!(sample.status, 200, "{}", sample.body);
    let refreshed = e
        .admin(
            Method::GET,
            &format!("/api/v1/audit/events?object_id={id}&action=connection.oauth_refreshed"),
            None,
        )
        .await;
    assert_eq!(
        refreshed.json()["events"].as_array().unwrap().len(),
        1,
        "{}",
        refreshed.body
    );

    // Disconnect: revoked at the provider, deleted here; the connection says so.
    let editor = e.editor.clone();
    let denied = e
        .call(
            Method::POST,
            &format!("/api/v1/connections/{id}/oauth/disconnect"),
            &editor,
            None,
        )
        .await;
    assert_eq!(denied.status, 403);
    let disconnected = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/oauth/disconnect"),
            None,
        )
        .await;
    assert_eq!(disconnected.status, 200, "{}", disconnected.body);
    assert_eq!(disconnected.json()["revoked"], true);
    let tested = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/test"),
            None,
        )
        .await;
    assert_eq!(tested.json()["failure"], "authentication");
    let rows = snapshot(&e.store.store).await.unwrap();
    assert!(!rows.iter().any(|r| r.contains("oauth_access_token")));
    e.assert_never_shown(&peer.client_secret).await;
}

#[tokio::test]
async fn oauth_client_credentials_reach_a_protected_api() {
    let peer = OidcPeer::start(&[], 60).await.unwrap();
    let mut e = env("loopback").await;
    let created = e
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({
                "name": "Machine API",
                "kind": "rest",
                "config": {
                    "base_url": format!("{}/", peer.api),
                    "objects": [{"name": "items", "path": "cursor/items", "records": "/items",
                        "pagination": {"style": "cursor", "cursor_param": "cursor", "next_cursor": "/next"}}],
                    "auth": {"kind": "oauth2_client_credentials", "token_url": peer.token_endpoint(),
                        "client_id": peer.cc_client_id}
                },
                "secrets": {"client_secret": peer.cc_client_secret}
            })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let tested = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/test"),
            None,
        )
        .await;
    assert_eq!(tested.json()["ok"], true, "{}", tested.body);
    let found = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/discover"),
            None,
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    let sample = e
        .admin(
            Method::GET,
            &format!("/api/v1/connections/{id}/objects/items/sample?limit=100"),
            None,
        )
        .await;
    assert_eq!(
        sample.json()["records"].as_array().unwrap().len(),
        45,
        "{}",
        sample.body
    );
    // A wrong client secret: authentication, and the secret is not shown.
    let wrong = e
        .admin(
            Method::PATCH,
            &format!("/api/v1/connections/{id}"),
            Some(json!({"secrets": {"client_secret": "CANARY-cc-91aa"}})),
        )
        .await;
    assert_eq!(wrong.status, 200);
    let tested = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/test"),
            None,
        )
        .await;
    assert_eq!(
        tested.json()["failure"],
        "authentication",
        "{}",
        tested.body
    );
    e.assert_never_shown("CANARY-cc-91aa").await;
    e.assert_never_shown(&peer.cc_client_secret).await;
    let _ = &e.hub;
}

/// PUTs `contents` as the file `name` (percent-encoded) of connection `id`: the status, the
/// content type and the JSON body.
async fn put_file(e: &Env, id: &str, name: &str, contents: &[u8]) -> (u16, String, Value) {
    let request = axum::http::Request::builder()
        .method(Method::PUT)
        .uri(format!("/api/v1/connections/{id}/files/{name}"))
        .header("authorization", format!("Bearer {}", e.admin))
        .body(axum::body::Body::from(contents.to_vec()))
        .unwrap();
    let response = tower::ServiceExt::oneshot(e.app.clone(), request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        content_type,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn uploads_are_checked_and_may_be_named_in_any_script() {
    const CANARY: &str = "CANARY-upload-3b9e";
    let mut e = env("loopback").await;
    let created = e
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "Uploads", "kind": "files"})),
        )
        .await;
    let id = created.json()["id"].as_str().unwrap().to_owned();

    // A `;`-separated Windows-1252 export under a name with an umlaut and a space.
    let export = b"Teil;Menge;Bezeichnung\r\nA-1;2;Rohr 90\xB0 St\xFCck\r\n";
    let (status, _, body) = put_file(&e, &id, "St%C3%BCckliste%20Montage.csv", export).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "Stückliste Montage.csv");

    // Files that cannot be read: refused with what is wrong, never their content; nothing
    // stored.
    for (name, contents, problem) in [
        (
            "broken.csv",
            format!("a,b\n1,\"{CANARY}\n2,3\n").into_bytes(),
            "broken.csv: line 2: unclosed quote",
        ),
        (
            "workbook.csv",
            b"PK\x03\x04\x14\x00\x06\x00\x08\x00".to_vec(),
            "workbook.csv: not a text file",
        ),
        (
            "ragged.csv",
            format!("a,b\n1,2\n3,{CANARY},4\n").into_bytes(),
            "ragged.csv: line 3: 3 fields where the first line has 2",
        ),
        (
            "broken.json",
            format!("[{{\"a\": {CANARY}}}]").into_bytes(),
            "broken.json: malformed JSON at line 1",
        ),
        ("empty.csv", Vec::new(), "empty.csv: the file is empty"),
    ] {
        let (status, content_type, body) = put_file(&e, &id, name, &contents).await;
        assert_eq!(status, 422, "{name}: {body}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["field"], "file", "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(problem), "{name}: {detail}");
        assert!(!detail.contains(CANARY), "{detail}");
    }
    // Names that are paths or hide characters.
    for name in [
        "..%2Fx.csv",
        "a%5Cb.csv",
        "line%0Abreak.csv",
        ".hidden.csv",
        "rtl%E2%80%AEvsc.csv",
        "notes.txt",
    ] {
        let (status, _, body) = put_file(&e, &id, name, b"a\n1\n").await;
        assert_eq!(status, 422, "{name}: {body}");
        assert_eq!(body["field"], "name", "{name}: {body}");
    }
    let view = e
        .admin(Method::GET, &format!("/api/v1/connections/{id}"), None)
        .await;
    let stored: Vec<_> = view.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored, ["Stückliste Montage.csv"]);
    assert!(!e.logs.text().contains(CANARY));

    let found = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/discover"),
            None,
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    let object = &found.json()["objects"][0];
    assert_eq!(object["name"], "uploads/Stückliste Montage.csv");
    assert_eq!(
        object["layout"],
        json!({"encoding": "windows-1252", "delimiter": ";"})
    );
    assert!(object.get("error").is_none(), "{object}");
    let fields: Vec<_> = object["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["Teil", "Menge", "Bezeichnung"]);
}
