//! The hub confines its own file-system access with Landlock: before any other thread exists,
//! `lockstep serve` and `lockstep worker` restrict themselves to the data directory, the
//! `--files-root`, the TLS files given, a temporary directory and the few system files that TLS
//! and name resolution read. Everything else — another user's home, `/etc/shadow`, a file a
//! connection is tricked into naming — cannot be opened, whatever a bug in the hub would try.
//!
//! Landlock is best-effort: on a kernel without it (or with an older version) the hub still
//! starts, and says so in one line. Threads inherit the restriction only when they are created
//! after it, which is why [`confine`] runs in `main` before the async runtime is built.

use landlock::{
    ABI, Access, AccessFs, LandlockStatus, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
    path_beneath_rules,
};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The newest Landlock ABI whose file-system rights the hub handles. Later ones (from ABI 9, which
/// adds the right to connect to UNIX sockets by path) would refuse PostgreSQL's socket without
/// a rule for it; they are left to a deliberate change.
const TARGET_ABI: ABI = ABI::V8;

/// System paths read for TLS (trust anchors), name resolution (NSS modules, resolver
/// configuration), time zones and the runtime (CPU quota). Missing ones are skipped.
const SYSTEM_READ: &[&str] = &[
    "/etc/ssl",
    "/etc/pki",
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/nsswitch.conf",
    "/etc/services",
    "/etc/localtime",
    "/usr/share/zoneinfo",
    "/etc/ld.so.cache",
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/proc/self",
    "/sys/fs/cgroup",
];

/// Devices read and written (`/dev/null` as a sink, the random devices as a fallback).
const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"];

/// What the process may reach once confined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    /// Read, write, create and delete beneath these (the data directory, a temporary directory).
    pub read_write: Vec<PathBuf>,
    /// Read, and write regular files, beneath these (`--files-root`): SQLite creates its `-wal`
    /// and `-shm` files next to a WAL database even to read it. No directories, links or
    /// devices can be made there.
    pub files: Vec<PathBuf>,
    /// Read beneath these (the TLS certificate and key, database client files).
    pub read: Vec<PathBuf>,
}

impl Allowed {
    /// What `lockstep serve` needs: its data directory (store, TLS material, logs, outbox,
    /// `--dev` keys), `--files-root`, the TLS files given and the store's client files.
    pub fn serve(args: &crate::args::ServeArgs) -> Allowed {
        let mut allowed = Allowed::runner(&args.runner);
        allowed.read_write.insert(0, args.data.clone());
        allowed.read.extend(args.tls_cert.iter().cloned());
        allowed.read.extend(args.tls_key.iter().cloned());
        if let Some(url) = &args.database {
            allowed.read.extend(database_files(url));
        }
        allowed
    }

    /// What `lockstep worker` needs: `--files-root` and the store's client files.
    pub fn worker(args: &crate::args::WorkerArgs) -> Allowed {
        let mut allowed = Allowed::runner(&args.runner);
        allowed.read.extend(database_files(&args.database));
        allowed
    }

    fn runner(args: &crate::args::RunnerArgs) -> Allowed {
        Allowed {
            read_write: temp_dirs(),
            files: args.files_root.iter().cloned().collect(),
            read: Vec::new(),
        }
    }
}

/// Where SQLite (the embedded store, and `sqlite` connections) writes its temporary files: the
/// first of `SQLITE_TMPDIR`, `TMPDIR` that is set, else `/var/tmp` and `/tmp`.
fn temp_dirs() -> Vec<PathBuf> {
    for name in ["SQLITE_TMPDIR", "TMPDIR"] {
        if let Some(dir) = std::env::var_os(name).filter(|d| !d.is_empty()) {
            return vec![PathBuf::from(dir)];
        }
    }
    vec![PathBuf::from("/var/tmp"), PathBuf::from("/tmp")]
}

/// Files a PostgreSQL URL names for TLS (`sslrootcert`, `sslcert`, `sslkey`), read when a
/// connection is made.
fn database_files(url: &str) -> Vec<PathBuf> {
    let Ok(url) = url::Url::parse(url) else {
        return Vec::new();
    };
    url.query_pairs()
        .filter(|(name, _)| matches!(name.as_ref(), "sslrootcert" | "sslcert" | "sslkey"))
        .map(|(_, value)| PathBuf::from(value.as_ref()))
        .collect()
}

/// The line that says how the process is confined, set once by [`confine`].
static OUTCOME: OnceLock<String> = OnceLock::new();

/// The line [`confine`] left (nothing when it did not run).
pub fn outcome() -> Option<&'static str> {
    OUTCOME.get().map(String::as_str)
}

/// Restricts this thread, and every thread it creates from now on, to `allowed` and the system
/// paths (those missing are left out: create the data directory first); with `disabled`
/// (`--no-confine`) does nothing. Answers one line that says what happened, also kept for
/// [`outcome`]. A kernel without Landlock leaves the process unconfined, and the line says why.
pub fn confine(allowed: &Allowed, disabled: bool) -> String {
    let line = if disabled {
        "Not confined: --no-confine was given; the hub can open any file its user can.".to_owned()
    } else {
        match restrict(allowed) {
            Ok(line) => line,
            Err(err) => format!(
                "Not confined: Landlock could not be set up ({err}); the hub can open any file \
                 its user can."
            ),
        }
    };
    let _ = OUTCOME.set(line.clone());
    line
}

fn restrict(allowed: &Allowed) -> Result<String, landlock::RulesetError> {
    let read = AccessFs::from_read(TARGET_ABI);
    let all = AccessFs::from_all(TARGET_ABI);
    let files =
        read | AccessFs::WriteFile | AccessFs::MakeReg | AccessFs::RemoveFile | AccessFs::Truncate;
    let status = Ruleset::default()
        .handle_access(all)?
        .create()?
        .add_rules(path_beneath_rules(&allowed.read_write, all))?
        .add_rules(path_beneath_rules(DEVICES, all))?
        .add_rules(path_beneath_rules(&allowed.files, files))?
        .add_rules(path_beneath_rules(&allowed.read, read))?
        .add_rules(path_beneath_rules(SYSTEM_READ, read))?
        .restrict_self()?;
    let abi = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => format!("{effective_abi:?}"),
        LandlockStatus::NotEnabled => {
            return Ok(
                "Not confined: Landlock is built into this kernel but not enabled \
                       (add it to the lsm= boot parameter); the hub can open any file its \
                       user can."
                    .to_owned(),
            );
        }
        LandlockStatus::NotImplemented => {
            return Ok(
                "Not confined: this kernel has no Landlock (Linux 5.13 or later \
                       with CONFIG_SECURITY_LANDLOCK); the hub can open any file its user can."
                    .to_owned(),
            );
        }
    };
    let how = match status.ruleset {
        RulesetStatus::FullyEnforced => "Confined",
        RulesetStatus::PartiallyEnforced => "Partly confined (an older Landlock)",
        RulesetStatus::NotEnforced => {
            return Ok(format!(
                "Not confined: Landlock ({abi}) refused the rules; the hub can open any file \
                 its user can."
            ));
        }
    };
    Ok(format!(
        "{how} by Landlock ({abi}): read-write {}; files {}; read-only {}the system files TLS \
         and name resolution read.",
        list(&allowed.read_write),
        if allowed.files.iter().any(|p| p.exists()) {
            list(&allowed.files)
        } else {
            "none".to_owned()
        },
        if allowed.read.iter().any(|p| p.exists()) {
            format!("{} and ", list(&allowed.read))
        } else {
            String::new()
        }
    ))
}

/// The paths that exist (the others got no rule), absolute, comma-separated.
fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .filter(|p| p.exists())
        .map(|p| absolute(p).display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;

    /// Landlock restricts the calling thread only (and the threads it creates later), so a
    /// thread of its own tries the files and reports what it could do.
    #[test]
    fn a_confined_thread_opens_its_paths_and_nothing_else() {
        use lockstep_app::connectors::{Connector as _, Context, EgressPolicy, FilesRoot};
        let root = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let data = root.path().join("data");
        let files = root.path().join("files");
        let tmp = root.path().join("tmp");
        for dir in [&data, &files, &tmp] {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| unreachable!("{e}"));
        }
        // A WAL database in the files directory, closed (no -wal or -shm file left): SQLite
        // must create them to read it.
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| unreachable!("{e}"))
        };
        runtime().block_on(async {
            let store = lockstep_storage::Store::open_sqlite(&files.join("hub.db"))
                .await
                .unwrap_or_else(|e| unreachable!("{e}"));
            store.close().await;
        });
        let outside = root.path().join("outside.txt");
        std::fs::write(&outside, "secret").unwrap_or_else(|e| unreachable!("{e}"));
        let allowed = Allowed {
            read_write: vec![data.clone(), tmp],
            files: vec![files.clone()],
            read: Vec::new(),
        };
        let report = std::thread::spawn(move || {
            let line = confine(&allowed, false);
            let kind = |r: std::io::Result<()>| r.err().map(|e| e.kind());
            let root = FilesRoot::new(&files).unwrap_or_else(|e| unreachable!("{e}"));
            let sqlite = lockstep_app::connectors::sqlite::SqliteConnector::new(
                serde_json::from_value(serde_json::json!({"path": "hub.db"}))
                    .unwrap_or_else(|e| unreachable!("{e}")),
                Context::new(EgressPolicy::default(), Some(root)),
            );
            let tables = runtime().block_on(sqlite.discover()).map(|t| t.len());
            (
                line,
                kind(std::fs::write(data.join("lockstep.db"), "store")),
                kind(std::fs::read(data.join("lockstep.db")).map(drop)),
                tables,
                kind(std::fs::create_dir(files.join("new"))),
                kind(std::fs::read(&outside).map(drop)),
                kind(std::fs::write(root_of(&outside).join("new.txt"), "x")),
                kind(std::fs::read("/etc/hostname").map(drop)),
                kind(std::fs::read("/etc/resolv.conf").map(drop)),
            )
        })
        .join()
        .unwrap_or_else(|_| unreachable!("the confined thread panicked"));
        let (line, write_data, read_data, tables, mkdir, outside, write_outside, hostname, resolv) =
            report;
        if line.starts_with("Not confined") {
            // A kernel without Landlock: the line says so, and nothing more can be checked.
            assert!(line.contains("Landlock"), "{line}");
            return;
        }
        assert!(line.starts_with("Confined by Landlock (V"), "{line}");
        assert_eq!(write_data, None, "{line}");
        assert_eq!(read_data, None);
        assert!(
            tables.as_ref().is_ok_and(|n| *n > 0),
            "a sqlite connection reads a WAL database in --files-root: {tables:?}"
        );
        assert_eq!(mkdir, Some(ErrorKind::PermissionDenied));
        assert_eq!(outside, Some(ErrorKind::PermissionDenied));
        assert_eq!(write_outside, Some(ErrorKind::PermissionDenied));
        if Path::new("/etc/hostname").exists() {
            assert_eq!(hostname, Some(ErrorKind::PermissionDenied));
        }
        if Path::new("/etc/resolv.conf").exists() {
            assert_eq!(
                resolv, None,
                "name resolution must still read its configuration"
            );
        }
        // The test's other threads are not confined.
        assert!(std::fs::read(root.path().join("outside.txt")).is_ok());
    }

    fn root_of(path: &Path) -> &Path {
        path.parent().unwrap_or(path)
    }

    #[test]
    fn no_confine_says_so() {
        let line = confine(&Allowed::default(), true);
        assert!(line.starts_with("Not confined: --no-confine"), "{line}");
    }

    #[test]
    fn a_postgres_url_names_its_tls_files_and_nothing_else() {
        let files = database_files(
            "postgres://u:p@db/x?sslmode=verify-full&sslrootcert=/etc/lockstep/ca.pem&application_name=x",
        );
        assert_eq!(files, [PathBuf::from("/etc/lockstep/ca.pem")]);
        assert!(database_files("not a url").is_empty());
    }
}
