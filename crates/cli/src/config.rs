//! Parse, then validate once: [`ServeArgs`] as typed become a [`ServeConfig`] that cannot hold a
//! contradiction (a certificate without its key, a listen address that is not one, an unknown
//! database URL).

use crate::args::ServeArgs;
use anyhow::{Context, bail};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// Where the metadata lives.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// The embedded SQLite file in the data directory.
    Embedded(PathBuf),
    /// A PostgreSQL URL (kept out of `Debug`: it may hold a password).
    Postgres(Secret),
}

/// A string that must not be printed.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Debug, Clone)]
pub enum TlsConfig {
    /// The self-signed certificate in `DATA/tls`, made on first start.
    SelfSigned(PathBuf),
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
}

/// Where mail goes.
#[derive(Debug, Clone)]
pub enum MailConfig {
    /// `.eml` files in this directory.
    Outbox(PathBuf),
    /// An SMTP URL (may hold a password).
    Smtp(Secret),
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data: PathBuf,
    pub listen: SocketAddr,
    pub store: StoreConfig,
    pub tls: TlsConfig,
    pub dev: bool,
    pub mail: MailConfig,
    pub mail_from: String,
    pub public_url: String,
    pub sessions: lockstep_app::SessionPolicy,
    pub lockout: lockstep_app::LockoutPolicy,
    pub auth_rate_limit: u32,
    pub log_dir: PathBuf,
    pub log_retention_days: u32,
    /// Egress policy, files directory and time limits of connectors.
    pub connectors: lockstep_app::connectors::Context,
    pub run_error_retention_days: u32,
    pub workers: u32,
    pub run_lease: time::Duration,
    /// How often data sets are swept (`Hub::sweep_datasets`).
    pub dataset_sweep: std::time::Duration,
    pub dataset_lease: time::Duration,
}

impl ServeConfig {
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<ServeConfig> {
        Ok(ServeConfig {
            data: args.data.clone(),
            listen: parse_listen(&args.listen)?,
            store: store_config(&args.data, args.database.as_deref())?,
            tls: match (&args.tls_cert, &args.tls_key) {
                (Some(cert), Some(key)) => TlsConfig::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                },
                (None, None) => TlsConfig::SelfSigned(args.data.join("tls")),
                _ => bail!(
                    "--tls-cert and --tls-key go together: give both, or neither for the self-signed certificate"
                ),
            },
            dev: args.dev,
            mail: match &args.smtp_url {
                Some(url) => MailConfig::Smtp(Secret(url.clone())),
                None => MailConfig::Outbox(args.data.join("outbox")),
            },
            mail_from: args.mail_from.clone(),
            public_url: match &args.public_url {
                Some(url) if url.starts_with("https://") => url.trim_end_matches('/').to_owned(),
                Some(_) => bail!("--public-url must be an https:// URL"),
                None => format!("https://{}", args.listen),
            },
            sessions: {
                let min_idle = lockstep_app::SessionPolicy::MIN_IDLE_TIMEOUT;
                if i64::from(args.session_idle_timeout) < min_idle.whole_seconds() {
                    bail!(
                        "--session-idle-timeout must be at least {} seconds: a session's activity \
                         is recorded every {} seconds, so a shorter timeout would sign out members \
                         who are using the hub",
                        min_idle.whole_seconds(),
                        lockstep_app::SessionPolicy::ACTIVITY_INTERVAL.whole_seconds()
                    );
                }
                if args.session_max_lifetime == 0 {
                    bail!("--session-max-lifetime must be at least 1 second");
                }
                lockstep_app::SessionPolicy {
                    idle_timeout: time::Duration::seconds(i64::from(args.session_idle_timeout)),
                    max_lifetime: time::Duration::seconds(i64::from(args.session_max_lifetime)),
                }
            },
            lockout: {
                if args.lockout_threshold == 0 {
                    bail!("--lockout-threshold must be at least 1");
                }
                lockstep_app::LockoutPolicy {
                    max_failures: args.lockout_threshold,
                    lock_for: time::Duration::seconds(i64::from(args.lockout_duration)),
                }
            },
            log_dir: args.data.join("logs"),
            log_retention_days: args.log_retention_days,
            connectors: connectors_context(&args.runner)?,
            run_error_retention_days: args.run_error_retention_days,
            workers: args.runner.workers,
            run_lease: time::Duration::seconds(i64::from(args.runner.run_lease)),
            dataset_sweep: std::time::Duration::from_secs(u64::from(args.dataset_sweep_seconds)),
            dataset_lease: time::Duration::seconds(i64::from(args.dataset_lease)),
            auth_rate_limit: if args.auth_rate_limit == 0 {
                bail!("--auth-rate-limit must be at least 1")
            } else {
                args.auth_rate_limit
            },
        })
    }
}

/// `--egress-allow`, `--files-root` and `--connector-timeout`.
pub fn connectors_context(
    args: &crate::args::RunnerArgs,
) -> anyhow::Result<lockstep_app::connectors::Context> {
    use lockstep_app::connectors::{Context, EgressPolicy, FilesRoot};
    let egress = match &args.egress_allow {
        Some(list) => {
            EgressPolicy::parse(list).map_err(|e| anyhow::anyhow!("--egress-allow: {e}"))?
        }
        None => EgressPolicy::default(),
    };
    let files_root = args
        .files_root
        .as_deref()
        .map(FilesRoot::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--files-root: {e}"))?;
    let mut context = Context::new(egress, files_root);
    context.timeout = std::time::Duration::from_secs(u64::from(args.connector_timeout));
    Ok(context)
}

/// The store named by `--database`, or the embedded one in the data directory.
pub fn store_config(data: &std::path::Path, database: Option<&str>) -> anyhow::Result<StoreConfig> {
    match database {
        None => Ok(StoreConfig::Embedded(data.join("lockstep.db"))),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(StoreConfig::Postgres(Secret(url.to_owned())))
        }
        Some(_) => bail!(
            "--database must be a postgres:// URL (leave it out for the embedded SQLite store)"
        ),
    }
}

fn parse_listen(listen: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        return Ok(addr);
    }
    listen
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .with_context(|| format!("--listen {listen:?} is not an address like 127.0.0.1:8443"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(extra: &[&str]) -> anyhow::Result<ServeConfig> {
        let mut argv = vec!["lockstep", "serve"];
        argv.extend_from_slice(extra);
        let cli = crate::args::Cli::try_parse_from(argv)?;
        match cli.command {
            crate::args::Command::Serve(args) => ServeConfig::from_args(&args),
            _ => bail!("not serve"),
        }
    }

    #[test]
    fn defaults_are_the_embedded_store_on_8443_with_self_signed_tls() {
        let config = parse(&[]).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(config.listen.to_string(), "127.0.0.1:8443");
        assert!(
            matches!(config.store, StoreConfig::Embedded(ref p) if p.ends_with("lockstep-data/lockstep.db"))
        );
        assert!(matches!(config.tls, TlsConfig::SelfSigned(_)));
        assert!(!config.dev);
    }

    #[test]
    fn contradictions_are_refused_with_a_readable_message() {
        let err = parse(&["--tls-cert", "c.pem"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("--tls-cert and --tls-key go together"),
            "{err}"
        );
        let err = parse(&["--listen", "nowhere"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("--listen"), "{err}");
        let err = parse(&["--database", "mysql://root:hunter2@db/x"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("postgres://"), "{err}");
        assert!(
            !err.contains("hunter2"),
            "the message echoes a password: {err}"
        );
    }

    #[test]
    fn an_idle_timeout_shorter_than_twice_the_activity_interval_is_refused() {
        for short in ["0", "30", "59"] {
            let err = parse(&["--session-idle-timeout", short])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.contains("--session-idle-timeout must be at least 60 seconds"),
                "{short}: {err}"
            );
        }
        let config =
            parse(&["--session-idle-timeout", "60"]).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(config.sessions.idle_timeout, time::Duration::seconds(60));
    }

    #[test]
    fn a_postgres_url_is_kept_out_of_debug_output() {
        let config = parse(&["--database", "postgres://u:hunter2@db/x"])
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
