//! The `postgres` connector's tests, against the PostgreSQL in `LOCKSTEP_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`). Each test works in its own database,
//! dropped at the end.

use futures_util::FutureExt;
use lockstep_connectors::postgres::{PostgresConfig, PostgresConnector};
use lockstep_connectors::{
    Connector, ConnectorError, Context, EgressPolicy, FailureKind, FieldMeta, FieldType,
    ObjectKind, Secret, Secrets, TlsMode,
};
use serde_json::json;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_postgres::NoTls;

/// The test server, from `LOCKSTEP_TEST_POSTGRES_URL`.
struct Server {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
}

fn server() -> Server {
    let url = std::env::var("LOCKSTEP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let url = url::Url::parse(&url).unwrap();
    let decode = |s: &str| percent_decode(s);
    Server {
        host: url
            .host_str()
            .unwrap_or("127.0.0.1")
            .trim_matches(['[', ']'])
            .to_owned(),
        port: url.port().unwrap_or(5432),
        user: if url.username().is_empty() {
            "postgres".to_owned()
        } else {
            decode(url.username())
        },
        password: url.password().map(decode),
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl Server {
    async fn admin(&self, database: &str) -> tokio_postgres::Client {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(database);
        if let Some(password) = &self.password {
            config.password(password);
        }
        let (client, connection) = config.connect(NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    fn config(&self, database: &str) -> PostgresConfig {
        PostgresConfig {
            host: self.host.clone(),
            port: self.port,
            database: database.to_owned(),
            user: self.user.clone(),
            tls: TlsMode::Disable,
            ca_certificate: None,
            client_certificate: None,
            schema: None,
        }
    }

    fn secrets(&self) -> Secrets {
        let mut secrets = Secrets::new();
        if let Some(password) = &self.password {
            secrets.insert("password", Secret::new(password.clone()));
        }
        secrets
    }

    fn connector(&self, config: PostgresConfig) -> PostgresConnector {
        PostgresConnector::new(config, self.secrets(), ctx())
    }
}

fn ctx() -> Context {
    Context {
        egress: Arc::new(EgressPolicy::parse("loopback").unwrap()),
        files_root: None,
        timeout: Duration::from_secs(10),
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

fn kind<T: std::fmt::Debug>(result: Result<T, ConnectorError>) -> Option<FailureKind> {
    result.expect_err("the call must fail").kind()
}

/// Runs `body` with a fresh database (its name), dropped afterwards even when `body` panics.
async fn with_database<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let server = server();
    let admin = server.admin("postgres").await;
    let name = unique("lockstep_conn");
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let outcome = AssertUnwindSafe(body(name.clone())).catch_unwind().await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

const FIXTURE: &str = r#"
CREATE SCHEMA shop;
CREATE TABLE shop.items (
    id integer NOT NULL,
    region text NOT NULL,
    name varchar(40),
    price numeric(20,6),
    ratio double precision,
    special float8,
    small smallint,
    big bigint,
    flag boolean,
    created timestamp,
    seen timestamptz,
    far timestamptz,
    day date,
    at time,
    uid uuid,
    doc jsonb,
    raw json,
    data bytea,
    tags text[],
    real4 real,
    "odd ""name""" text,
    PRIMARY KEY (id, region)
);
INSERT INTO shop.items VALUES
    (1, 'eu', 'Grüße 😀', 12345678901234.123456, 0.25, 'NaN', -32768, 9007199254740993, true,
     '2024-03-01 12:34:56.789', '2024-03-01 14:34:56.789+02', 'infinity', '2024-02-29',
     '23:59:59.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2], "b": null}',
     '{"x":1}', '\x00ff10', '{a,b}', 0.1, 'q"uote'),
    (2, 'us', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL);
CREATE VIEW shop.named AS SELECT id, name, price FROM shop.items WHERE name IS NOT NULL;
CREATE TABLE public.plain (k text PRIMARY KEY, n int8 NOT NULL);
INSERT INTO public.plain VALUES ('a', 1);
CREATE TABLE shop."we""ird; DROP TABLE shop.items; --" (v int);
INSERT INTO shop."we""ird; DROP TABLE shop.items; --" VALUES (7);
"#;

fn field(name: &str, field_type: FieldType, native: &str, nullable: bool, pk: bool) -> FieldMeta {
    FieldMeta {
        name: name.to_owned(),
        field_type,
        native: native.to_owned(),
        nullable,
        primary_key: pk,
    }
}

#[tokio::test]
async fn discovers_and_samples_exact_values() {
    with_database(|database| async move {
        let server = server();
        server
            .admin(&database)
            .await
            .batch_execute(FIXTURE)
            .await
            .unwrap();
        let c = server.connector(server.config(&database));
        c.test().await.unwrap();

        let objects = c.discover().await.unwrap();
        let names: Vec<_> = objects.iter().map(|o| (o.name.as_str(), o.kind)).collect();
        assert_eq!(
            names,
            [
                ("public.plain", ObjectKind::Table),
                ("shop.items", ObjectKind::Table),
                ("shop.named", ObjectKind::View),
                // A name holding a dot is quoted, so that it reads back as one table.
                (
                    "shop.\"we\"\"ird; DROP TABLE shop.items; --\"",
                    ObjectKind::Table
                ),
            ]
        );
        use FieldType as T;
        assert_eq!(
            objects[1].fields,
            [
                field("id", T::Integer, "integer", false, true),
                field("region", T::String, "text", false, true),
                field("name", T::String, "character varying(40)", true, false),
                field("price", T::Decimal, "numeric(20,6)", true, false),
                field("ratio", T::Float, "double precision", true, false),
                field("special", T::Float, "double precision", true, false),
                field("small", T::Integer, "smallint", true, false),
                field("big", T::Integer, "bigint", true, false),
                field("flag", T::Boolean, "boolean", true, false),
                field(
                    "created",
                    T::Timestamp,
                    "timestamp without time zone",
                    true,
                    false
                ),
                field(
                    "seen",
                    T::TimestampTz,
                    "timestamp with time zone",
                    true,
                    false
                ),
                field(
                    "far",
                    T::TimestampTz,
                    "timestamp with time zone",
                    true,
                    false
                ),
                field("day", T::Date, "date", true, false),
                field("at", T::Time, "time without time zone", true, false),
                field("uid", T::Uuid, "uuid", true, false),
                field("doc", T::Json, "jsonb", true, false),
                field("raw", T::Json, "json", true, false),
                field("data", T::Binary, "bytea", true, false),
                field("tags", T::Other, "text[]", true, false),
                field("real4", T::Float, "real", true, false),
                field("odd \"name\"", T::String, "text", true, false),
            ]
        );
        assert_eq!(
            objects[2].fields,
            [
                field("id", T::Integer, "integer", true, false),
                field("name", T::String, "character varying(40)", true, false),
                field("price", T::Decimal, "numeric(20,6)", true, false),
            ]
        );
        assert_eq!(
            objects[0].fields,
            [
                field("k", T::String, "text", false, true),
                field("n", T::Integer, "bigint", false, false),
            ]
        );

        let rows = c.sample("shop.items", 10).await.unwrap();
        let rows = serde_json::Value::Array(rows.into_iter().map(Into::into).collect());
        assert_eq!(
            rows,
            json!([
                {
                    "id": 1, "region": "eu", "name": "Grüße 😀",
                    "price": "12345678901234.123456", "ratio": 0.25, "special": "NaN",
                    "small": -32768, "big": "9007199254740993", "flag": true,
                    "created": "2024-03-01T12:34:56.789", "seen": "2024-03-01T12:34:56.789Z",
                    "far": "infinity", "day": "2024-02-29", "at": "23:59:59.5",
                    "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                    "doc": {"a": [1, 2], "b": null}, "raw": {"x": 1}, "data": "AP8Q",
                    "tags": "{a,b}", "real4": 0.1, "odd \"name\"": "q\"uote"
                },
                {
                    "id": 2, "region": "us", "name": null, "price": null, "ratio": null,
                    "special": null, "small": null, "big": null, "flag": null, "created": null,
                    "seen": null, "far": null, "day": null, "at": null, "uid": null, "doc": null,
                    "raw": null, "data": null, "tags": null, "real4": null, "odd \"name\"": null
                }
            ])
        );
        assert_eq!(c.sample("shop.items", 1).await.unwrap().len(), 1);
        let view = c.sample("shop.named", 10).await.unwrap();
        assert_eq!(
            serde_json::Value::Array(view.into_iter().map(Into::into).collect()),
            json!([{"id": 1, "name": "Grüße 😀", "price": "12345678901234.123456"}])
        );
        let weird = c
            .sample("shop.\"we\"\"ird; DROP TABLE shop.items; --\"", 10)
            .await
            .unwrap();
        assert_eq!(weird, [json!({"v": 7}).as_object().unwrap().clone()]);

        // Only discovered names are read; anything else is refused before any SQL uses it.
        for bad in [
            "x\"; DROP TABLE t; --",
            "shop.\"items\"\"; DROP TABLE shop.items; --\"",
            "items",
            "shop.missing",
            "pg_catalog.pg_authid",
            "information_schema.tables",
        ] {
            assert_eq!(
                kind(c.sample(bad, 10).await),
                Some(FailureKind::NotFound),
                "{bad}"
            );
        }
        // A name that is not schema.table (three parts here) is refused as such.
        let err = c
            .sample("shop.items\"; DROP TABLE shop.items; --", 10)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Config { field, .. } if field == "object"),
            "{err}"
        );
        assert_eq!(
            c.sample("shop.items", 10).await.unwrap().len(),
            2,
            "still there"
        );

        // One schema only.
        let mut config = server.config(&database);
        config.schema = Some("shop".to_owned());
        let c = server.connector(config);
        let names: Vec<_> = c
            .discover()
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(
            names,
            [
                "shop.items",
                "shop.named",
                "shop.\"we\"\"ird; DROP TABLE shop.items; --\""
            ]
        );
        assert_eq!(
            kind(c.sample("public.plain", 10).await),
            Some(FailureKind::NotFound)
        );
    })
    .await;
}

#[tokio::test]
async fn unknown_database_is_not_found() {
    let server = server();
    let c = server.connector(server.config(&unique("lockstep_missing")));
    let err = c.test().await.unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::NotFound), "{err}");
    assert!(err.to_string().contains("3D000"), "{err}");
}

#[tokio::test]
async fn closed_port_is_refused() {
    let server = server();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = server.config("postgres");
    config.host = "127.0.0.1".to_owned();
    config.port = port;
    let err = server.connector(config).test().await.unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Refused), "{err}");
}

#[tokio::test]
async fn egress_policy_refuses_before_connecting() {
    let server = server();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = server.config("postgres");
    config.host = "127.0.0.1".to_owned();
    config.port = listener.local_addr().unwrap().port();
    let public_only = Context {
        egress: Arc::new(EgressPolicy::default()),
        ..ctx()
    };
    let c = PostgresConnector::new(config, server.secrets(), public_only);
    assert_eq!(kind(c.test().await), Some(FailureKind::Policy));
    assert_eq!(kind(c.discover().await), Some(FailureKind::Policy));
    assert_eq!(
        kind(c.sample("public.t", 1).await),
        Some(FailureKind::Policy)
    );
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "no connection may reach the address");
}

/// A PostgreSQL stand-in that asks for a cleartext password, then refuses it with SQLSTATE 28P01
/// and a message that echoes it (as a hostile or careless server could). Answers the password
/// it received.
async fn password_echoing_server() -> (u16, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let length = stream.read_u32().await.unwrap();
        let mut startup = vec![0; length as usize - 4];
        stream.read_exact(&mut startup).await.unwrap();
        // AuthenticationCleartextPassword.
        stream
            .write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3])
            .await
            .unwrap();
        assert_eq!(stream.read_u8().await.unwrap(), b'p');
        let length = stream.read_u32().await.unwrap();
        let mut password = vec![0; length as usize - 4];
        stream.read_exact(&mut password).await.unwrap();
        password.pop();
        let password = String::from_utf8(password).unwrap();
        let message = format!("password authentication failed: \"{password}\" is wrong");
        let mut fields = Vec::new();
        for (code, value) in [
            (b'S', "FATAL"),
            (b'V', "FATAL"),
            (b'C', "28P01"),
            (b'M', message.as_str()),
        ] {
            fields.push(code);
            fields.extend_from_slice(value.as_bytes());
            fields.push(0);
        }
        fields.push(0);
        let mut response = vec![b'E'];
        response.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
        response.extend_from_slice(&fields);
        stream.write_all(&response).await.unwrap();
        stream.flush().await.unwrap();
        password
    });
    (port, task)
}

#[tokio::test]
async fn wrong_password_is_authentication_without_the_password() {
    let password = unique("s3cret-pw");
    let mut secrets = Secrets::new();
    secrets.insert("password", Secret::new(password.clone()));

    // Deterministic: a stand-in server refusing the password and echoing it in its message.
    let (port, fake) = password_echoing_server().await;
    let mut config = server().config("postgres");
    config.host = "127.0.0.1".to_owned();
    config.port = port;
    let c = PostgresConnector::new(config, secrets.clone(), ctx());
    assert!(
        !format!("{c:?}").contains(&password),
        "Debug shows no secret"
    );
    let err = c.test().await.unwrap_err();
    assert_eq!(fake.await.unwrap(), password, "the password was sent");
    assert_eq!(err.kind(), Some(FailureKind::Authentication), "{err}");
    assert!(err.to_string().contains("28P01"), "{err}");
    assert!(!err.to_string().contains(&password), "{err}");
    assert!(!format!("{err:?}").contains(&password), "{err:?}");

    // The real server, with a role that has a password. A server that trusts local connections
    // (pg_hba `trust`, as the throwaway test servers do) lets any password in; then only the
    // stand-in above shows the refusal.
    let server = server();
    let admin = server.admin("postgres").await;
    let role = unique("lockstep_pw");
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" LOGIN PASSWORD 'right-{}'",
            uuid::Uuid::now_v7().simple()
        ))
        .await
        .unwrap();
    let mut config = server.config("postgres");
    config.user = role.clone();
    let outcome = PostgresConnector::new(config, secrets, ctx()).test().await;
    admin
        .batch_execute(&format!("DROP ROLE \"{role}\""))
        .await
        .unwrap();
    if let Err(err) = outcome {
        assert_eq!(err.kind(), Some(FailureKind::Authentication), "{err}");
        assert!(!err.to_string().contains(&password), "{err}");
    }
}

#[tokio::test]
async fn tls_modes_follow_the_server() {
    let server = server();
    let admin = server.admin("postgres").await;
    let ssl: String = admin.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    let with_tls = |tls: TlsMode| {
        let mut config = server.config("postgres");
        config.tls = tls;
        server.connector(config)
    };

    // prefer: TLS when offered, else plain; either way it connects.
    with_tls(TlsMode::Prefer).test().await.unwrap();
    // verify-full cannot succeed here: the local server has no TLS, or a self-signed
    // ("snakeoil") certificate that no trusted authority signed and that does not name 127.0.0.1.
    let err = with_tls(TlsMode::VerifyFull).test().await.unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Tls), "{err}");
    if ssl == "on" {
        // require: encrypted, certificate unchecked.
        with_tls(TlsMode::Require).test().await.unwrap();
        // An unrelated CA: the server's certificate is not trusted.
        let mut config = server.config("postgres");
        config.tls = TlsMode::VerifyFull;
        config.ca_certificate = Some(UNRELATED_CA.to_owned());
        let err = server.connector(config).test().await.unwrap_err();
        assert_eq!(err.kind(), Some(FailureKind::Tls), "{err}");
    } else {
        let err = with_tls(TlsMode::Require).test().await.unwrap_err();
        assert_eq!(err.kind(), Some(FailureKind::Tls), "{err}");
        assert!(err.to_string().contains("does not offer TLS"), "{err}");
    }
}

/// A self-signed CA certificate (P-256, valid until 2126) that signed nothing the server has.
const UNRELATED_CA: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBoTCCAUegAwIBAgIUExQbUX/Hn7hYV7VqWLGQxUDNsQkwCgYIKoZIzj0EAwIw\n\
JTEjMCEGA1UEAwwaTG9ja3N0ZXAgdGVzdCB1bnJlbGF0ZWQgQ0EwIBcNMjYxMTIy\n\
MTgxODIzWhgPMjEyNjEwMjkxODE4MjNaMCUxIzAhBgNVBAMMGkxvY2tzdGVwIHRl\n\
c3QgdW5yZWxhdGVkIENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAElqgNw0nB\n\
srBD0K3LCtqlbMXEtq2oHsHyC0IJx0TEkagXU9VeW3uFK8f9ar5KHWzm5F4XBx6P\n\
KZ6LkiGRCkmFNKNTMFEwHQYDVR0OBBYEFJ7GXum3aDgV2I2tMUgBQAVyoBRAMB8G\n\
A1UdIwQYMBaAFJ7GXum3aDgV2I2tMUgBQAVyoBRAMA8GA1UdEwEB/wQFMAMBAf8w\n\
CgYIKoZIzj0EAwIDSAAwRQIhAMugPWOdjVkQBlu8ROYP+VQuuIBxBUx/BoMJhLA1\n\
wHfBAiAL5UKlrZ1haxZelSZorBpV4XgxJtteQdVcBJHoHjCxXg==\n\
-----END CERTIFICATE-----\n\
";

/// A PostgreSQL stand-in whose TLS is broken: it accepts the TLS request, then sends bytes that
/// are no TLS. A later connection without TLS is refused with SQLSTATE 28P01. Answers how many
/// connections it saw.
async fn broken_tls_server() -> (u16, tokio::task::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut seen = 0;
        while let Ok(Ok((mut stream, _))) =
            tokio::time::timeout(Duration::from_secs(2), listener.accept()).await
        {
            seen += 1;
            let length = stream.read_u32().await.unwrap();
            let code = stream.read_u32().await.unwrap();
            let mut rest = vec![0; length as usize - 8];
            stream.read_exact(&mut rest).await.unwrap();
            if code == 80_877_103 {
                // SSLRequest: "yes", then garbage instead of a ServerHello.
                stream.write_all(b"S").await.unwrap();
                let _ = stream.read(&mut [0; 1024]).await;
                let _ = stream.write_all(&[0x15, 0x99, 0x99, 0, 2, 2, 40]).await;
            } else {
                let fields = b"SFATAL\0VFATAL\0C28P01\0Mno\0\0";
                let mut response = vec![b'E'];
                response.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
                response.extend_from_slice(fields);
                stream.write_all(&response).await.unwrap();
            }
        }
        seen
    });
    (port, task)
}

#[tokio::test]
async fn prefer_falls_back_to_plain_when_the_tls_handshake_fails() {
    for (tls, expected, connections) in [
        (TlsMode::Prefer, FailureKind::Authentication, 2),
        (TlsMode::Require, FailureKind::Tls, 1),
    ] {
        let (port, fake) = broken_tls_server().await;
        let mut config = server().config("postgres");
        config.host = "127.0.0.1".to_owned();
        config.port = port;
        config.tls = tls;
        let err = PostgresConnector::new(config, Secrets::new(), ctx())
            .test()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), Some(expected), "{tls:?}: {err}");
        assert_eq!(fake.await.unwrap(), connections, "{tls:?}");
    }
}
