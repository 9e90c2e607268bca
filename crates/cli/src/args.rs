//! The command line as typed: flags and `LOCKSTEP_*` environment variables. Validation into a
//! usable configuration happens once, in [`crate::config`].

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "lockstep",
    version,
    about = "Lockstep: the self-hosted data synchronization hub that cannot leak"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub over HTTPS (first start of an empty data directory initializes the vault).
    Serve(ServeArgs),
    /// Initialize, inspect, unseal and seal the vault.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Manage organizations (operator).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage the platform's support accounts (operator): they see no organization until its
    /// Administrator grants access.
    #[command(subcommand, name = "support-user")]
    SupportUser(SupportUserCommand),
    /// Export and verify the organization's long-term audit ledger.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// List pipelines and run them (a member's session or API token).
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Pull records through a pipeline into a data set of your own, list data sets and submit
    /// their ticked records (a member's session or API token).
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Execute runs from a PostgreSQL store shared with `lockstep serve` (scale-out). Unseal key
    /// shares are read from standard input, one per line, until the worker is unsealed.
    Worker(WorkerArgs),
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// The organization's pipelines with their last run.
    List {
        #[command(flatten)]
        auth: TokenClientArgs,
    },
    /// Start a run of the pipeline NAME and show its progress until it ends; the exit status is
    /// non-zero when it failed or was cancelled.
    Run {
        #[command(flatten)]
        auth: TokenClientArgs,
        /// The pipeline's name.
        name: String,
        /// Start the run and return at once, printing its id.
        #[arg(long)]
        no_wait: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Pull a pipeline's records into a new data set and wait until it is ready.
    ///
    /// The records are compared with what the destination holds; the counts of each status are
    /// printed at the end. Review, edit and tick them in the web UI, then `lockstep dataset
    /// submit ID`.
    Pull {
        #[command(flatten)]
        auth: TokenClientArgs,
        /// The pipeline's name or id.
        pipeline: String,
        /// The data set's name (default: the pipeline's name and the time).
        #[arg(long)]
        name: Option<String>,
        /// Only the source records for which this CEL expression over the source's fields is
        /// true (joined to the pipeline's own filter), e.g. `region == "north"`.
        #[arg(long)]
        filter: Option<String>,
        /// Start the pull and return at once, printing the data set's id.
        #[arg(long)]
        no_wait: bool,
    },
    /// Your data sets and those shared with you: id, name, owner, state, records, expiry.
    List {
        #[command(flatten)]
        auth: TokenClientArgs,
        /// Every data set of the organization (Administrators).
        #[arg(long)]
        all: bool,
    },
    /// One data set: its state, its counts per status and when it expires.
    Show {
        #[command(flatten)]
        auth: TokenClientArgs,
        /// The data set's id (or its name, when only one data set you see has it).
        dataset: String,
    },
    /// Write a data set's ticked records to the destination, with a progress bar.
    ///
    /// Refused, naming the records, while a ticked record has an error; the exit status is
    /// non-zero when the submit was refused or failed (then nothing was written).
    Submit {
        #[command(flatten)]
        auth: TokenClientArgs,
        /// The data set's id (or its name, when only one data set you see has it).
        dataset: String,
        /// Start the submit and return at once.
        #[arg(long)]
        no_wait: bool,
    },
    /// Delete a data set at once (its owner or an Administrator).
    Delete {
        #[command(flatten)]
        auth: TokenClientArgs,
        /// The data set's id (or its name, when only one data set you see has it).
        dataset: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Download your organization's ledger (entries, checkpoints, public key) into one file
    /// (an Administrator's session or API token).
    Export {
        #[command(flatten)]
        auth: TokenClientArgs,
        /// Where to write the export.
        #[arg(long)]
        output: PathBuf,
    },
    /// Verify an exported ledger offline: recompute the tree, check every checkpoint's signature,
    /// root and consistency; exit status 0 only when it holds.
    Verify {
        /// The file `lockstep audit export` wrote.
        #[arg(long, conflicts_with_all = ["data", "database"])]
        export: Option<PathBuf>,
        /// Or verify the ledgers stored in this data directory's embedded store…
        #[arg(long, env = "LOCKSTEP_DATA")]
        data: Option<PathBuf>,
        /// …or in this PostgreSQL database.
        #[arg(long, env = "LOCKSTEP_DATABASE_URL", hide_env_values = true)]
        database: Option<String>,
        /// Only this organization's ledger (default: every stored ledger).
        #[arg(long)]
        organization: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory: embedded store, TLS material, logs.
    #[arg(long, env = "LOCKSTEP_DATA", default_value = "./lockstep-data")]
    pub data: PathBuf,
    /// Address to listen on (HTTPS only).
    #[arg(long, env = "LOCKSTEP_LISTEN", default_value = "127.0.0.1:8443")]
    pub listen: String,
    /// Keep all state in PostgreSQL (postgres://…) instead of the embedded SQLite store.
    #[arg(long, env = "LOCKSTEP_DATABASE_URL", hide_env_values = true)]
    pub database: Option<String>,
    /// PEM certificate chain to serve instead of the self-signed one (needs --tls-key).
    #[arg(long, env = "LOCKSTEP_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "LOCKSTEP_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// For trying things out only: keep the unseal keys in the data directory and unseal by itself.
    #[arg(long, env = "LOCKSTEP_DEV")]
    pub dev: bool,
    /// Send mail over SMTP (smtp://user:pass@host:587, smtps://…); without it, mails are written
    /// as .eml files to DATA/outbox/.
    #[arg(long, env = "LOCKSTEP_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender address of the hub's mails.
    #[arg(long, env = "LOCKSTEP_MAIL_FROM", default_value = "lockstep@localhost")]
    pub mail_from: String,
    /// The hub's address as users reach it, for links in mails (default: https://LISTEN).
    #[arg(long, env = "LOCKSTEP_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A session ends after this many seconds without a request (at least 60: activity is
    /// recorded every 30 seconds).
    #[arg(long, env = "LOCKSTEP_SESSION_IDLE_TIMEOUT", default_value_t = 1800)]
    pub session_idle_timeout: u32,
    /// A session ends this many seconds after sign-in, whatever happens.
    #[arg(long, env = "LOCKSTEP_SESSION_MAX_LIFETIME", default_value_t = 43200)]
    pub session_max_lifetime: u32,
    /// Consecutive failed sign-ins that lock an account.
    #[arg(long, env = "LOCKSTEP_LOCKOUT_THRESHOLD", default_value_t = 5)]
    pub lockout_threshold: u32,
    /// How long (seconds) a locked account stays locked.
    #[arg(long, env = "LOCKSTEP_LOCKOUT_DURATION", default_value_t = 900)]
    pub lockout_duration: u32,
    /// Log files in DATA/logs older than this many days are deleted.
    #[arg(long, env = "LOCKSTEP_LOG_RETENTION_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub log_retention_days: u32,
    /// Requests per minute one address may make to the sign-in routes.
    #[arg(long, env = "LOCKSTEP_AUTH_RATE_LIMIT", default_value_t = 30)]
    pub auth_rate_limit: u32,
    #[command(flatten)]
    pub runner: RunnerArgs,
    /// Rejected records of runs are deleted after this many days.
    #[arg(long, env = "LOCKSTEP_RUN_ERROR_RETENTION_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub run_error_retention_days: u32,
    /// Seconds between two clean-ups of data sets: pulls and submits whose hub died are ended
    /// (a pull's records are removed; a submit wrote nothing), stale data sets are deleted.
    #[arg(long, env = "LOCKSTEP_DATASET_SWEEP_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=86400))]
    pub dataset_sweep_seconds: u32,
    /// Seconds a data set's pull or submit keeps its lease without a heartbeat (one every 2
    /// seconds); one whose hub died is ended by the next clean-up after this.
    #[arg(long, env = "LOCKSTEP_DATASET_LEASE", default_value_t = 30, value_parser = clap::value_parser!(u32).range(5..=3600))]
    pub dataset_lease: u32,
}

/// What runs may reach and how they are executed (`serve` and `worker`).
#[derive(Debug, Args, Clone)]
pub struct RunnerArgs {
    /// What connections may reach: comma-separated networks (10.0.0.0/8), addresses, host names
    /// (db.internal), domain wildcards (*.corp.example) and the words loopback, private and
    /// public. Default: public addresses only. Link-local and cloud metadata addresses are
    /// always refused.
    #[arg(long, env = "LOCKSTEP_EGRESS_ALLOW")]
    pub egress_allow: Option<String>,
    /// The one directory sqlite and files connections may read (default: none; then only
    /// uploaded files can be used).
    #[arg(long, env = "LOCKSTEP_FILES_ROOT")]
    pub files_root: Option<PathBuf>,
    /// Seconds a connector waits to connect and for each answer.
    #[arg(long, env = "LOCKSTEP_CONNECTOR_TIMEOUT", default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub connector_timeout: u32,
    /// Runs this process executes at once (0 in `serve`: leave them to `lockstep worker`s).
    #[arg(long, env = "LOCKSTEP_WORKERS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=64))]
    pub workers: u32,
    /// Seconds a worker's lease on a run lasts without a heartbeat; a run whose worker died is
    /// taken over after this.
    #[arg(long, env = "LOCKSTEP_RUN_LEASE", default_value_t = 30, value_parser = clap::value_parser!(u32).range(3..=3600))]
    pub run_lease: u32,
    /// Do not confine the process's file-system access with Landlock (for debugging only).
    #[arg(long, env = "LOCKSTEP_NO_CONFINE")]
    pub no_confine: bool,
}

/// `lockstep worker`: executes runs leased from a PostgreSQL store shared with `lockstep serve`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The PostgreSQL store the hub uses (postgres://…).
    #[arg(long, env = "LOCKSTEP_DATABASE_URL", hide_env_values = true)]
    pub database: String,
    #[command(flatten)]
    pub runner: RunnerArgs,
}

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Initialize a data directory (or database) without serving; prints the key shares once.
    Init(InitArgs),
    /// Show whether a running hub is sealed.
    Status(ClientArgs),
    /// Enter an unseal key share (read from a prompt), or every share piped in on standard input,
    /// one per line.
    Unseal(ClientArgs),
    /// Seal a running hub (operator token).
    Seal(TokenClientArgs),
    /// Rotate the keyring of a running hub (operator token): new organization keys get a new
    /// key-encryption key; nothing needs re-encrypting.
    Rotate(TokenClientArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[arg(long, env = "LOCKSTEP_DATA", default_value = "./lockstep-data")]
    pub data: PathBuf,
    #[arg(long, env = "LOCKSTEP_DATABASE_URL", hide_env_values = true)]
    pub database: Option<String>,
    /// How many unseal key shares to make (1..=255).
    #[arg(long, default_value_t = 3)]
    pub key_shares: u8,
    /// How many shares unseal (2..=key-shares; 1 only with a single share).
    #[arg(long, default_value_t = 3)]
    pub key_threshold: u8,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// The hub's address.
    #[arg(long, env = "LOCKSTEP_ADDR", default_value = "https://127.0.0.1:8443")]
    pub addr: String,
    /// CA certificate to trust (default: DATA/tls/ca.pem when it exists).
    #[arg(long, env = "LOCKSTEP_CA_CERT", conflicts_with = "insecure")]
    pub ca_cert: Option<PathBuf>,
    /// The hub's data directory, where its self-signed CA is (default: ./lockstep-data).
    #[arg(long, env = "LOCKSTEP_DATA")]
    pub data: Option<PathBuf>,
    /// Do not verify the hub's certificate (testing only).
    #[arg(long)]
    pub insecure: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args, Clone)]
pub struct TokenClientArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Operator token — or, for `audit export`, `pipeline` and `dataset`, a member's session or
    /// API token (prefer the environment variable: arguments are visible to other users).
    #[arg(long, env = "LOCKSTEP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SupportUserCommand {
    /// Add a support account and print its setup link's token (also mailed to the address).
    Add {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        auth: TokenClientArgs,
    },
    /// List the support accounts.
    List {
        #[command(flatten)]
        auth: TokenClientArgs,
    },
    /// Remove a support account: its sessions end at once.
    Remove {
        /// Support account id.
        id: String,
        #[command(flatten)]
        auth: TokenClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization and print the invitation for its first Administrator.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        #[command(flatten)]
        auth: TokenClientArgs,
    },
    /// List organizations (ids and names).
    List {
        #[command(flatten)]
        auth: TokenClientArgs,
    },
    /// Delete an organization with everything it owns (its keys are destroyed).
    Delete {
        /// Organization id.
        id: String,
        #[command(flatten)]
        auth: TokenClientArgs,
    },
}
