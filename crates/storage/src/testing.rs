//! Fresh stores for tests: an SQLite file in a temporary directory, or a new PostgreSQL database.
//!
//! PostgreSQL comes from `LOCKSTEP_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, which `scripts/test` makes sure exists). Each
//! test gets its own database, dropped when the [`TestStore`] is dropped.

use crate::{Backend, Store, StoreError};
use sqlx::{Connection, Executor};

/// Runs `async fn $check(t: TestStore)` on a fresh store of each backend, as two tests
/// `$check::sqlite` and `$check::postgres`.
#[macro_export]
macro_rules! on_both_stores {
    ($check:ident) => {
        mod $check {
            #[tokio::test]
            async fn sqlite() {
                let store = $crate::testing::TestStore::new($crate::Backend::Sqlite).await;
                super::$check(store.expect("a fresh SQLite store")).await;
            }
            #[tokio::test]
            async fn postgres() {
                let store = $crate::testing::TestStore::new($crate::Backend::Postgres).await;
                super::$check(store.expect(
                    "a fresh PostgreSQL database (is LOCKSTEP_TEST_POSTGRES_URL reachable?)",
                ))
                .await;
            }
        }
    };
}

/// The server URL tests use for PostgreSQL.
pub fn postgres_admin_url() -> String {
    std::env::var("LOCKSTEP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A store that cleans up after itself.
#[derive(Debug)]
pub struct TestStore {
    pub store: Store,
    /// The URL the store was opened with (pass it to a spawned `lockstep serve --database`).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres_db: Option<String>,
}

impl TestStore {
    /// Creates an empty database (or file) for `backend` without opening it.
    pub async fn empty_url(
        backend: Backend,
    ) -> Result<(String, Option<tempfile::TempDir>, Option<String>), StoreError> {
        match backend {
            Backend::Sqlite => {
                let dir =
                    tempfile::tempdir().map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
                let path = dir.path().join("lockstep.db");
                let url = format!("sqlite://{}?mode=rwc", path.display());
                Ok((url, Some(dir), None))
            }
            Backend::Postgres => {
                sqlx::any::install_default_drivers();
                let admin = postgres_admin_url();
                let name = format!("lockstep_test_{}", uuid::Uuid::now_v7().simple());
                let mut conn = sqlx::AnyConnection::connect(&admin).await?;
                conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await?;
                conn.close().await?;
                let base = admin
                    .rsplit_once('/')
                    .map_or(admin.as_str(), |(base, _)| base);
                Ok((format!("{base}/{name}"), None, Some(name)))
            }
        }
    }

    /// A fresh, migrated store on `backend`.
    pub async fn new(backend: Backend) -> Result<TestStore, StoreError> {
        let (url, dir, postgres_db) = TestStore::empty_url(backend).await?;
        let store = Store::connect(&url).await?;
        Ok(TestStore {
            store,
            url,
            _dir: dir,
            postgres_db,
        })
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let Some(name) = self.postgres_db.take() else {
            return;
        };
        // Drop the database from a plain thread with its own runtime: Drop cannot await, and the
        // pool's connections belong to the test's runtime, which is blocked here. `FORCE` ends
        // those connections. Failures leave a stray test database, never a failed test.
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio_runtime() else { return };
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::AnyConnection::connect(&postgres_admin_url()).await {
                    let _ = conn
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await;
                }
            });
        });
        let _ = handle.join();
    }
}

fn tokio_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Every row of every table as text, sorted: two snapshots are equal when nothing was written.
/// Columns that merely record use (`last_seen_at`, `last_used_at`) are left out.
pub async fn snapshot(store: &Store) -> Result<Vec<String>, StoreError> {
    use sqlx::Row;
    let backend = store.backend();
    let mut conn = store.read().await?;
    let tables_sql = match backend {
        Backend::Sqlite => {
            "SELECT name AS t FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name <> '_sqlx_migrations' ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT table_name::text AS t FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations' ORDER BY 1"
        }
    };
    let tables: Vec<String> = sqlx::query(tables_sql)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("t"))
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for table in tables {
        let columns_sql = match backend {
            Backend::Sqlite => {
                format!("SELECT name AS c FROM pragma_table_info('{table}') ORDER BY cid")
            }
            Backend::Postgres => format!(
                "SELECT column_name::text AS c FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"
            ),
        };
        let columns: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(columns_sql))
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("c"))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|c| c != "last_seen_at" && c != "last_used_at")
            .collect();
        let parts: Vec<String> = columns
            .iter()
            .map(|c| match backend {
                Backend::Sqlite => format!("quote(\"{c}\")"),
                Backend::Postgres => format!("coalesce(\"{c}\"::text, 'NULL')"),
            })
            .collect();
        let sql = format!("SELECT {} AS r FROM \"{table}\"", parts.join(" || '|' || "));
        for row in sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await?
        {
            rows.push(format!("{table}: {}", row.try_get::<String, _>("r")?));
        }
    }
    rows.sort();
    Ok(rows)
}

/// Runs a statement as is (tests that break the store on purpose, e.g. to check fail-closed).
pub async fn execute(store: &Store, sql: &'static str) -> Result<(), StoreError> {
    use sqlx::Executor;
    let mut conn = store.read().await?;
    conn.execute(sql).await?;
    Ok(())
}
