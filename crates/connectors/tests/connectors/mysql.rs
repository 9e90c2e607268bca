//! The `mysql` connector's tests, against the MariaDB or MySQL in `LOCKSTEP_TEST_MYSQL_URL`
//! (default `mysql://root@127.0.0.1:3306/test`). Each test works in its own database, dropped at
//! the end.

use futures_util::FutureExt;
use lockstep_connectors::mysql::{MysqlConfig, MysqlConnector};
use lockstep_connectors::{
    Connector, ConnectorError, Context, EgressPolicy, FailureKind, FieldType, ObjectKind, Secret,
    Secrets, TlsMode,
};
use mysql_async::prelude::Queryable;
use serde_json::json;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The test server, from `LOCKSTEP_TEST_MYSQL_URL`.
struct Server {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
}

fn server() -> Server {
    let url = std::env::var("LOCKSTEP_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    let url = url::Url::parse(&url).unwrap();
    Server {
        host: url
            .host_str()
            .unwrap_or("127.0.0.1")
            .trim_matches(['[', ']'])
            .to_owned(),
        port: url.port().unwrap_or(3306),
        user: if url.username().is_empty() {
            "root".to_owned()
        } else {
            percent_decode(url.username())
        },
        password: url.password().map(percent_decode),
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl Server {
    /// An administrative connection (no TLS, no Unix socket), to `database` when given.
    async fn admin(&self, database: Option<&str>) -> mysql_async::Conn {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(self.password.clone())
            .db_name(database.map(str::to_owned))
            .prefer_socket(false);
        mysql_async::Conn::new(opts).await.unwrap()
    }

    fn config(&self, database: &str) -> MysqlConfig {
        MysqlConfig {
            host: self.host.clone(),
            port: self.port,
            database: database.to_owned(),
            user: self.user.clone(),
            tls: TlsMode::Disable,
            ca_certificate: None,
        }
    }

    fn secrets(&self) -> Secrets {
        let mut secrets = Secrets::new();
        if let Some(password) = &self.password {
            secrets.insert("password", Secret::new(password.clone()));
        }
        secrets
    }

    fn connector(&self, config: MysqlConfig) -> MysqlConnector {
        MysqlConnector::new(config, self.secrets(), ctx())
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
    let mut admin = server.admin(None).await;
    let name = unique("lockstep_conn");
    admin
        .query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        .await
        .unwrap();
    let outcome = AssertUnwindSafe(body(name.clone())).catch_unwind().await;
    admin
        .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
        .await
        .unwrap();
    admin.disconnect().await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

const FIXTURE: &[&str] = &[
    r"CREATE TABLE items (
        id INT NOT NULL,
        region VARCHAR(8) NOT NULL,
        name VARCHAR(40),
        price DECIMAL(20,6),
        ratio DOUBLE,
        real4 FLOAT,
        small SMALLINT,
        big BIGINT,
        ubig BIGINT UNSIGNED,
        flag TINYINT(1),
        created DATETIME(6),
        seen TIMESTAMP(6) NULL,
        day DATE,
        at TIME(6),
        doc JSON,
        data BLOB,
        bin VARBINARY(8),
        kind ENUM('a','b'),
        `odd ``name``` TEXT,
        PRIMARY KEY (id, region)
    ) DEFAULT CHARSET = utf8mb4",
    // Timestamps are written at +02:00 and read back as UTC instants.
    "SET time_zone = '+02:00'",
    r#"INSERT INTO items VALUES
        (1, 'eu', 'Grüße 😀', 12345678901234.123456, 0.25, 0.1, -32768, 9007199254740993,
         18446744073709551615, 1, '2024-03-01 12:34:56.789', '2024-03-01 14:34:56.789',
         '2024-02-29', '-838:59:59.5', '{"a": [1, 2], "b": null}', x'00ff10', x'0102', 'b',
         'q`uote'),
        (2, 'us', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL)"#,
    "CREATE VIEW named AS SELECT id, name, price FROM items WHERE name IS NOT NULL",
    "CREATE TABLE `we``ird; DROP TABLE items; --` (v INT)",
    "INSERT INTO `we``ird; DROP TABLE items; --` VALUES (7)",
];

#[tokio::test]
async fn discovers_and_samples_exact_values() {
    with_database(|database| async move {
        let server = server();
        let mut admin = server.admin(Some(&database)).await;
        for statement in FIXTURE {
            admin.query_drop(*statement).await.unwrap();
        }
        let version: String = admin
            .query_first("SELECT VERSION()")
            .await
            .unwrap()
            .unwrap();
        admin.disconnect().await.unwrap();
        let mariadb = version.contains("MariaDB");

        let c = server.connector(server.config(&database));
        c.test().await.unwrap();

        let objects = c.discover().await.unwrap();
        let names: Vec<_> = objects.iter().map(|o| (o.name.as_str(), o.kind)).collect();
        assert_eq!(
            names,
            [
                ("items", ObjectKind::Table),
                ("named", ObjectKind::View),
                ("we`ird; DROP TABLE items; --", ObjectKind::Table),
            ]
        );
        use FieldType as T;
        let items: Vec<_> = objects[0]
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.field_type, f.nullable, f.primary_key))
            .collect();
        assert_eq!(
            items,
            [
                ("id", T::Integer, false, true),
                ("region", T::String, false, true),
                ("name", T::String, true, false),
                ("price", T::Decimal, true, false),
                ("ratio", T::Float, true, false),
                ("real4", T::Float, true, false),
                ("small", T::Integer, true, false),
                ("big", T::Integer, true, false),
                ("ubig", T::Integer, true, false),
                ("flag", T::Boolean, true, false),
                ("created", T::Timestamp, true, false),
                ("seen", T::TimestampTz, true, false),
                ("day", T::Date, true, false),
                ("at", T::Time, true, false),
                ("doc", T::Json, true, false),
                ("data", T::Binary, true, false),
                ("bin", T::Binary, true, false),
                ("kind", T::String, true, false),
                ("odd `name`", T::String, true, false),
            ]
        );
        let native = |name: &str| {
            objects[0]
                .fields
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.native.clone())
                .unwrap()
        };
        assert_eq!(native("price"), "decimal(20,6)");
        assert_eq!(native("name"), "varchar(40)");
        assert_eq!(native("flag"), "tinyint(1)");
        assert_eq!(native("seen"), "timestamp(6)");
        assert_eq!(native("kind"), "enum('a','b')");
        assert_eq!(native("doc"), if mariadb { "longtext" } else { "json" });
        let view: Vec<_> = objects[1]
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.field_type))
            .collect();
        assert_eq!(
            view,
            [
                ("id", T::Integer),
                ("name", T::String),
                ("price", T::Decimal)
            ]
        );

        let rows = c.sample("items", 10).await.unwrap();
        let rows = serde_json::Value::Array(rows.into_iter().map(Into::into).collect());
        assert_eq!(
            rows,
            json!([
                {
                    "id": 1, "region": "eu", "name": "Grüße 😀",
                    "price": "12345678901234.123456", "ratio": 0.25, "real4": 0.1,
                    "small": -32768, "big": "9007199254740993", "ubig": "18446744073709551615",
                    "flag": true, "created": "2024-03-01T12:34:56.789",
                    "seen": "2024-03-01T12:34:56.789Z", "day": "2024-02-29",
                    "at": "-838:59:59.5", "doc": {"a": [1, 2], "b": null}, "data": "AP8Q",
                    "bin": "AQI=", "kind": "b", "odd `name`": "q`uote"
                },
                {
                    "id": 2, "region": "us", "name": null, "price": null, "ratio": null,
                    "real4": null, "small": null, "big": null, "ubig": null, "flag": null,
                    "created": null, "seen": null, "day": null, "at": null, "doc": null,
                    "data": null, "bin": null, "kind": null, "odd `name`": null
                }
            ])
        );
        assert_eq!(c.sample("items", 1).await.unwrap().len(), 1);
        let view = c.sample("named", 10).await.unwrap();
        assert_eq!(
            serde_json::Value::Array(view.into_iter().map(Into::into).collect()),
            json!([{"id": 1, "name": "Grüße 😀", "price": "12345678901234.123456"}])
        );
        let weird = c.sample("we`ird; DROP TABLE items; --", 10).await.unwrap();
        assert_eq!(weird, [json!({"v": 7}).as_object().unwrap().clone()]);

        // Only discovered names are read; anything else is refused before any SQL uses it.
        for bad in [
            "x`; DROP TABLE items; --",
            "items`; DROP TABLE items; --",
            "ITEMS",
            "missing",
            "mysql.user",
            "information_schema.TABLES",
        ] {
            assert_eq!(
                kind(c.sample(bad, 10).await),
                Some(FailureKind::NotFound),
                "{bad}"
            );
        }
        assert_eq!(c.sample("items", 10).await.unwrap().len(), 2, "still there");
    })
    .await;
}

#[tokio::test]
async fn wrong_password_is_authentication_without_the_password() {
    let server = server();
    let password = unique("s3cret-pw");
    let mut secrets = Secrets::new();
    secrets.insert("password", Secret::new(password.clone()));
    let c = MysqlConnector::new(server.config("mysql"), secrets, ctx());
    assert!(
        !format!("{c:?}").contains(&password),
        "Debug shows no secret"
    );
    let err = c.test().await.unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Authentication), "{err}");
    assert!(err.to_string().contains("1045"), "{err}");
    assert!(!err.to_string().contains(&password), "{err}");
    assert!(!format!("{err:?}").contains(&password), "{err:?}");
}

#[tokio::test]
async fn unknown_database_is_not_found() {
    let server = server();
    let c = server.connector(server.config(&unique("lockstep_missing")));
    let err = c.test().await.unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::NotFound), "{err}");
    assert!(err.to_string().contains("1049"), "{err}");
}

#[tokio::test]
async fn closed_port_is_refused() {
    let server = server();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = server.config("mysql");
    config.host = "127.0.0.1".to_owned();
    config.port = port;
    let err = server.connector(config).test().await.unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Refused), "{err}");
}

#[tokio::test]
async fn egress_policy_refuses_before_connecting() {
    let server = server();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = server.config("mysql");
    config.host = "127.0.0.1".to_owned();
    config.port = listener.local_addr().unwrap().port();
    let public_only = Context {
        egress: Arc::new(EgressPolicy::default()),
        ..ctx()
    };
    let c = MysqlConnector::new(config, server.secrets(), public_only);
    assert_eq!(kind(c.test().await), Some(FailureKind::Policy));
    assert_eq!(kind(c.discover().await), Some(FailureKind::Policy));
    assert_eq!(kind(c.sample("t", 1).await), Some(FailureKind::Policy));
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "no connection may reach the address");
}

#[tokio::test]
async fn tls_modes_follow_the_server() {
    let server = server();
    let mut admin = server.admin(None).await;
    let have_ssl: Option<(String, String)> = admin
        .query_first("SHOW VARIABLES LIKE 'have_ssl'")
        .await
        .unwrap();
    admin.disconnect().await.unwrap();
    // MySQL 8.4 has no `have_ssl` and always offers TLS.
    let offers_tls = have_ssl.is_none_or(|(_, value)| value == "YES");
    let with_tls = |tls: TlsMode| {
        let mut config = server.config("mysql");
        config.tls = tls;
        server.connector(config)
    };

    // prefer: TLS when offered, else plain; either way it connects.
    with_tls(TlsMode::Prefer).test().await.unwrap();
    // verify-full cannot succeed here: the server has no TLS, or a certificate no trusted
    // authority signed (self-signed or generated by the server).
    let err = with_tls(TlsMode::VerifyFull).test().await.unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Tls), "{err}");
    if offers_tls {
        with_tls(TlsMode::Require).test().await.unwrap();
    } else {
        let err = with_tls(TlsMode::Require).test().await.unwrap_err();
        assert_eq!(err.kind(), Some(FailureKind::Tls), "{err}");
        assert!(err.to_string().contains("does not offer TLS"), "{err}");
    }
}
