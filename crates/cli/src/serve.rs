//! `lockstep serve` and `lockstep vault init`: open the store, initialize or open the vault,
//! and serve HTTPS until SIGINT/SIGTERM.

use crate::args::{Format, InitArgs, ServeArgs};
use crate::config::{MailConfig, ServeConfig, StoreConfig, TlsConfig, store_config};
use crate::credentials;
use anyhow::{Context, bail};
use lockstep_app::{Hub, SystemClock};
use lockstep_storage::Store;
use std::path::Path;
use std::sync::Arc;

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig::from_args(&args)?;
    create_private_dir(&config.data)?;
    let _log_guard = crate::logs::init(&config.log_dir)?;
    log_confinement();
    tokio::spawn(crate::logs::retention_task(
        config.log_dir.clone(),
        config.log_retention_days,
    ));
    let store = open_store(&config.store).await?;

    let hub = match Hub::open(store.clone(), Arc::new(SystemClock)).await? {
        Some(hub) => {
            if config.dev {
                dev_warning();
                for key in credentials::load_dev_keys(&config.data)? {
                    hub.submit_unseal_key(&key)
                        .context("the saved --dev unseal keys were refused")?;
                }
            }
            hub
        }
        None => {
            let (hub, creds) = Hub::initialize(store, Arc::new(SystemClock), 3, 3).await?;
            credentials::print(&creds, Format::Text)?;
            if config.dev {
                dev_warning();
                credentials::save_dev(&config.data, &creds)?;
            }
            hub
        }
    };
    let mailer: Arc<dyn lockstep_mail::Mailer> = match &config.mail {
        MailConfig::Outbox(dir) => Arc::new(
            lockstep_mail::OutboxMailer::new(dir.clone(), &config.mail_from)
                .context("cannot set up the mail outbox")?,
        ),
        MailConfig::Smtp(url) => Arc::new(
            lockstep_mail::SmtpMailer::from_url(&url.0, &config.mail_from)
                .context("--smtp-url is not usable")?,
        ),
    };
    let hub = Arc::new(hub.with_options(lockstep_app::HubOptions {
        lockout: config.lockout,
        sessions: config.sessions,
        mailer: Some(mailer),
        public_url: config.public_url.clone(),
        password_permits: 4,
        connectors: config.connectors.clone(),
        run_lease: config.run_lease,
        dataset_lease: config.dataset_lease,
        run_error_retention: time::Duration::days(i64::from(config.run_error_retention_days)),
    }));

    tokio::spawn(checkpoint_task(Arc::clone(&hub)));
    tokio::spawn(run_error_retention_task(
        Arc::clone(&hub),
        config.run_error_retention_days,
    ));
    let stop_workers = Arc::new(std::sync::atomic::AtomicBool::new(false));
    start_runners(&hub, config.workers, "serve", &stop_workers);
    // Failed sign-ins and password reset mails are done after the answer (see `Hub::run_jobs`).
    tokio::spawn(Arc::clone(&hub).run_jobs(Arc::clone(&stop_workers)));
    // Data sets: pulls and submits of a hub that died are ended, stale data sets deleted.
    tokio::spawn(
        Arc::clone(&hub).sweep_datasets_every(config.dataset_sweep, Arc::clone(&stop_workers)),
    );

    let tls_files = match &config.tls {
        TlsConfig::SelfSigned(dir) => lockstep_server::tls::ensure_self_signed(dir)?,
        TlsConfig::Files { cert, key } => lockstep_server::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            ca: None,
        },
    };
    let tls = lockstep_server::tls::server_config(&tls_files)?;

    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    tokio::spawn(shutdown_on_signal(handle.clone()));

    let app = lockstep_server::router_with(
        Arc::clone(&hub),
        lockstep_server::RouterOptions {
            auth_requests_per_minute: config.auth_rate_limit,
        },
    );
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )?
    .handle(handle);

    if let Some(ca) = &tls_files.ca {
        say(&format!(
            "Self-signed certificate: clients trust {}",
            ca.display()
        ));
    }
    say(&egress_line(&config.connectors.egress));
    if hub.is_sealed() {
        say(&format!(
            "The hub is sealed: unseal it in a browser at https://{local}/ or with \
             `{}`.",
            unseal_hint(local, &config.data, tls_files.ca.is_some())
        ));
    }
    say(&format!("Lockstep is listening on https://{local}"));
    tracing::info!(address = %local, sealed = hub.is_sealed(), "listening");
    server
        .serve(app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
        .context("the HTTPS server stopped")?;
    stop_workers.store(true, std::sync::atomic::Ordering::Relaxed);
    store_close(&hub).await;
    Ok(())
}

/// Says, on the terminal and in the log, how `main` confined the process.
fn log_confinement() {
    if let Some(line) = crate::confine::outcome() {
        say(line);
        tracing::info!(confinement = line, "file-system access");
    }
}

/// The egress policy in force, in one line, with how to reach this machine when it may not.
fn egress_line(policy: &lockstep_app::connectors::EgressPolicy) -> String {
    use std::net::{IpAddr, Ipv4Addr};
    let local = [
        Ipv4Addr::LOCALHOST,
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(192, 168, 0, 1),
    ]
    .into_iter()
    .any(|ip| policy.allows_ip(IpAddr::V4(ip)));
    let hint = if local {
        ""
    } else {
        " (use --egress-allow loopback,private to reach this machine or your network)"
    };
    format!("Connections may reach: {}{hint}", policy.describe())
}

/// The `lockstep vault unseal` command line that works as printed: it names the data directory
/// (where the client finds the self-signed CA) unless that is the default.
fn unseal_hint(local: std::net::SocketAddr, data: &Path, self_signed: bool) -> String {
    let mut hint = format!("lockstep vault unseal --addr https://{local}");
    if self_signed && data != Path::new(crate::client::DEFAULT_DATA) {
        let data = std::path::absolute(data).unwrap_or_else(|_| data.to_path_buf());
        let text = data.to_string_lossy();
        let quoted = shlex::try_quote(&text).unwrap_or(std::borrow::Cow::Borrowed(&text));
        hint.push_str(&format!(" --data {quoted}"));
    }
    hint
}

/// Starts the scheduler and `workers` run executors on this hub.
fn start_runners(
    hub: &Arc<Hub>,
    workers: u32,
    name: &str,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) {
    tokio::spawn(Arc::clone(hub).schedule(std::time::Duration::from_secs(5), Arc::clone(stop)));
    let process = uuid::Uuid::now_v7().simple().to_string();
    for n in 0..workers {
        let owner = format!("{name}-{process}-{n}");
        tokio::spawn(Arc::clone(hub).work(owner, Arc::clone(stop)));
    }
}

/// `lockstep worker`: a hub without HTTP that executes runs from a PostgreSQL store shared with
/// `lockstep serve`. It starts sealed and reads unseal key shares from standard input, one per
/// line, until it is unsealed; SIGTERM or Ctrl-C stop it (a run in progress is taken over by
/// another worker when its lease ends).
pub async fn worker(args: crate::args::WorkerArgs) -> anyhow::Result<()> {
    crate::logs::init_stderr()?;
    log_confinement();
    let store_config = store_config(Path::new("."), Some(&args.database))?;
    if !matches!(store_config, StoreConfig::Postgres(_)) {
        bail!("--database must be a postgres:// URL: workers share runs through PostgreSQL");
    }
    if args.runner.workers == 0 {
        bail!("--workers must be at least 1 for a worker process");
    }
    let connectors = crate::config::connectors_context(&args.runner)?;
    let store = open_store(&store_config).await?;
    let Some(hub) = Hub::open(store, Arc::new(SystemClock)).await? else {
        bail!("this store is not initialized: start `lockstep serve --database …` first");
    };
    let hub = Arc::new(hub.with_options(lockstep_app::HubOptions {
        connectors: connectors.clone(),
        run_lease: time::Duration::seconds(i64::from(args.runner.run_lease)),
        ..lockstep_app::HubOptions::default()
    }));
    say(&egress_line(&connectors.egress));
    say("The worker is sealed: enter unseal key shares, one per line.");
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut lines = tokio::io::AsyncBufReadExt::lines(stdin);
    while hub.is_sealed() {
        let Some(line) = lines.next_line().await? else {
            bail!("standard input ended before the worker was unsealed");
        };
        let line = zeroize::Zeroizing::new(line);
        if line.trim().is_empty() {
            continue;
        }
        match hub.submit_unseal_key(&lockstep_app::UnsealKey::from_text(line.trim())) {
            Ok(status) if status.sealed => say(&format!(
                "Share accepted ({} of {}).",
                status.progress, status.threshold
            )),
            Ok(_) => {}
            Err(err) => say(&format!("Share refused: {err}")),
        }
    }
    say(&format!(
        "Lockstep worker unsealed; executing runs with {} {}.",
        args.runner.workers,
        crate::plural(u64::from(args.runner.workers), "worker", "workers")
    ));
    tracing::info!(workers = args.runner.workers, "worker started");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    start_runners(&hub, args.runner.workers, "worker", &stop);
    wait_for_signal().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!("worker stopping");
    store_close(&hub).await;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}

/// Deletes runs' rejected records older than the retention period, every hour.
async fn run_error_retention_task(hub: Arc<Hub>, days: u32) {
    let retention = time::Duration::days(i64::from(days));
    loop {
        if !hub.is_sealed() {
            match hub.purge_run_errors(retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "rejected records past retention deleted"),
                Err(err) => tracing::warn!(error = %err, "rejected records could not be purged"),
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
}

pub async fn init(args: InitArgs) -> anyhow::Result<()> {
    // Refuse bad settings before anything is created on disk.
    Hub::check_share_config(args.key_shares, args.key_threshold)
        .map_err(|err| anyhow::anyhow!("--key-shares/--key-threshold: {err}"))?;
    let store_config = store_config(&args.data, args.database.as_deref())?;
    create_private_dir(&args.data)?;
    let store = open_store(&store_config).await?;
    if Hub::open(store.clone(), Arc::new(SystemClock))
        .await?
        .is_some()
    {
        bail!("this store is already initialized; its key shares were shown when it was");
    }
    let (_hub, creds) = Hub::initialize(
        store.clone(),
        Arc::new(SystemClock),
        args.key_shares,
        args.key_threshold,
    )
    .await?;
    credentials::print(&creds, args.format)?;
    store.close().await;
    Ok(())
}

async fn open_store(config: &StoreConfig) -> anyhow::Result<Store> {
    let store = match config {
        StoreConfig::Embedded(path) => Store::open_sqlite(path)
            .await
            .with_context(|| format!("cannot open the embedded store {}", path.display()))?,
        // The URL may hold a password: the message names the kind of store only.
        StoreConfig::Postgres(url) => Store::connect(&url.0)
            .await
            .context("cannot open the PostgreSQL store given by --database")?,
    };
    Ok(store)
}

async fn store_close(hub: &Hub) {
    hub.store().close().await;
}

pub(crate) fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {} to its owner", dir.display()))?;
    }
    Ok(())
}

/// One line to the terminal. A closed standard output (a service manager that drops it) must not
/// stop the hub, so write errors are ignored here.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn dev_warning() {
    eprintln!(
        "\n!!! WARNING: --dev keeps the unseal keys and the operator token in the data directory\n\
         !!! and unseals by itself. Anyone who can read that directory can read everything.\n\
         !!! Use it for trying Lockstep out only, never for real data.\n"
    );
}

/// Signs a checkpoint of every audit ledger that grew, and seals the names a store written
/// before names were sealed still holds in clear, every minute (nothing while sealed).
async fn checkpoint_task(hub: Arc<Hub>) {
    let mut every_minute = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        every_minute.tick().await;
        if let Err(err) = hub.checkpoint_ledgers().await {
            tracing::warn!(error = %err, "ledger checkpoints failed");
        }
        if let Err(err) = hub.seal_clear_names().await {
            tracing::warn!(error = %err, "names stored in clear could not be sealed");
        }
    }
}

async fn shutdown_on_signal(handle: axum_server::Handle<std::net::SocketAddr>) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    handle.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    handle.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
}
