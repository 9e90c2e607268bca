//! Application logs: JSON lines to standard error and to daily files in `DATA/logs/`
//! (`lockstep.YYYY-MM-DD.log`, rotated by tracing-appender), and the retention that deletes
//! files older than the limit.
//!
//! What goes into a log line is decided where it is written: ids, routes, status codes and
//! timings only (see ARCHITECTURE.md); this module only decides where lines go and how long they
//! stay.

use anyhow::Context;
use std::path::{Path, PathBuf};
use time::{Date, OffsetDateTime};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

const PREFIX: &str = "lockstep";
const SUFFIX: &str = "log";

/// Starts logging to standard error and to daily files in `dir`. Keep the guard alive: dropping
/// it flushes and stops the file writer.
pub fn init(dir: &Path) -> anyhow::Result<WorkerGuard> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the log directory {}", dir.display()))?;
    let appender = Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix(PREFIX)
        .filename_suffix(SUFFIX)
        .build(dir)
        .with_context(|| format!("cannot write logs to {}", dir.display()))?;
    let (file_writer, guard) = tracing_appender::non_blocking(appender);
    let filter =
        || EnvFilter::try_from_env("LOCKSTEP_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(std::io::stderr)
        .with_filter(filter());
    let file = tracing_subscriber::fmt::layer()
        .json()
        .with_ansi(false)
        .with_writer(file_writer)
        .with_filter(filter());
    // A second init (tests in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    Ok(guard)
}

/// Starts logging to standard error only (a `lockstep worker` has no data directory).
pub fn init_stderr() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("LOCKSTEP_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let _ = tracing_subscriber::registry().with(stderr).try_init();
    Ok(())
}

/// The day a log file is for, from its name; `None` for any other file.
fn file_day(path: &Path) -> Option<Date> {
    let name = path.file_name()?.to_str()?;
    let day = name
        .strip_prefix(PREFIX)?
        .strip_prefix('.')?
        .strip_suffix(SUFFIX)?
        .strip_suffix('.')?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(day, &format).ok()
}

/// Deletes the log files in `dir` whose day is more than `retention_days` days before `now`'s
/// day. Other files are never touched. Returns what was deleted.
pub fn prune(
    dir: &Path,
    now: OffsetDateTime,
    retention_days: u32,
) -> std::io::Result<Vec<PathBuf>> {
    let oldest_kept = now.date() - time::Duration::days(i64::from(retention_days));
    let mut deleted = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if file_day(&path).is_some_and(|day| day < oldest_kept) {
            std::fs::remove_file(&path)?;
            deleted.push(path);
        }
    }
    deleted.sort();
    Ok(deleted)
}

/// Prunes now and then every hour, for as long as the hub runs.
pub async fn retention_task(dir: PathBuf, retention_days: u32) {
    let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        match prune(&dir, OffsetDateTime::now_utc(), retention_days) {
            Ok(deleted) if !deleted.is_empty() => {
                tracing::info!(files = deleted.len(), "old log files deleted");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "log retention failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn touch(dir: &Path, name: &str) {
        std::fs::write(dir.join(name), b"{}\n").unwrap_or_else(|e| unreachable!("{e}"));
    }

    #[test]
    fn retention_deletes_only_log_files_older_than_the_limit() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        for name in [
            "lockstep.2026-11-10.log",
            "lockstep.2026-11-14.log",
            "lockstep.2026-11-15.log",
            "lockstep.2026-11-22.log",
            "notes.2026-01-01.log",
            "lockstep.garbage.log",
            "lockstep.2026-01-01.txt",
        ] {
            touch(dir.path(), name);
        }
        let now = datetime!(2026-11-22 03:00 UTC);
        let deleted = prune(dir.path(), now, 7).unwrap_or_default();
        let names: Vec<_> = deleted
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect();
        assert_eq!(
            names,
            ["lockstep.2026-11-10.log", "lockstep.2026-11-14.log"]
        );
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "lockstep.2026-01-01.txt",
                "lockstep.2026-11-15.log",
                "lockstep.2026-11-22.log",
                "lockstep.garbage.log",
                "notes.2026-01-01.log"
            ]
        );
        // A day later the 15th goes too.
        let deleted = prune(dir.path(), now + time::Duration::days(1), 7).unwrap_or_default();
        assert_eq!(deleted.len(), 1);
    }
}
