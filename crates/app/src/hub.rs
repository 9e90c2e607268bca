//! The hub: store + vault + clock. Initialization, unsealing, sealing and operator sign-in.

use crate::{AppError, Clock};
use lockstep_auth::SecretToken;
use lockstep_auth::{LockoutPolicy, PasswordHasher, SessionPolicy};
use lockstep_domain::OrganizationId;
use lockstep_mail::Mailer;
use lockstep_storage::{Store, StoreError, operator, organizations, vault as stored_vault};
use lockstep_vault::{
    OrgKeys, SealConfig, SealStatus, UnsealKey, Vault, VaultError, WrappedOrgKey,
};
use std::sync::Arc;

/// Everything the first initialization hands out, once: the unseal key shares and the operator
/// token. Nothing here is stored in clear anywhere.
#[derive(Debug)]
pub struct Credentials {
    pub unseal_keys: Vec<UnsealKey>,
    pub key_threshold: u8,
    pub operator_token: SecretToken,
}

/// Proof that the caller presented a valid operator token. Only [`Hub::authenticate_operator`]
/// makes one, so a use case that takes `&Operator` cannot be called unauthenticated.
#[derive(Debug, Clone)]
pub struct Operator {
    token_id: String,
}

impl Operator {
    /// The internal id of the token used (for logs and audit; not the token).
    pub fn token_id(&self) -> &str {
        &self.token_id
    }
}

/// How the hub treats sign-ins, sessions and outgoing mail.
#[derive(Debug, Clone)]
pub struct HubOptions {
    pub lockout: LockoutPolicy,
    pub sessions: SessionPolicy,
    /// Where outgoing mail goes; `None` sends nothing (password reset mails are dropped).
    pub mailer: Option<Arc<dyn Mailer>>,
    /// The hub's address as users reach it, for links in mails.
    pub public_url: String,
    /// At most this many Argon2 computations at once.
    pub password_permits: usize,
    /// What connectors may reach (egress policy, files directory) and their time limits.
    pub connectors: lockstep_connectors::Context,
    /// How long a worker's lease on a run lasts without a heartbeat.
    pub run_lease: time::Duration,
    /// How long a data set's pull or submit keeps its lease without a heartbeat (one whose
    /// process died is ended by [`Hub::sweep_datasets`] after this).
    pub dataset_lease: time::Duration,
    /// How long runs' per-record errors are kept (the hub's `--run-error-retention-days`; the
    /// footprint page states it).
    pub run_error_retention: time::Duration,
}

impl Default for HubOptions {
    fn default() -> Self {
        HubOptions {
            lockout: LockoutPolicy::default(),
            sessions: SessionPolicy::default(),
            mailer: None,
            public_url: "https://127.0.0.1:8443".to_owned(),
            password_permits: 4,
            connectors: lockstep_connectors::Context::new(
                lockstep_connectors::EgressPolicy::default(),
                None,
            ),
            run_lease: crate::pipelines::LEASE,
            dataset_lease: crate::datasets::LEASE,
            run_error_retention: time::Duration::days(7),
        }
    }
}

/// The running hub.
#[derive(Debug)]
pub struct Hub {
    pub(crate) store: Store,
    pub(crate) vault: Vault,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) options: HubOptions,
    pub(crate) hasher: PasswordHasher,
    /// Held shared by anything that wraps a new key with the keyring, exclusively by a keyring
    /// rotation: no key is ever wrapped with a keyring version the store does not hold yet.
    pub(crate) key_wrap_lock: tokio::sync::RwLock<()>,
    /// Wakes idle workers of this process when a run is queued.
    pub(crate) work_available: tokio::sync::Notify,
    /// Work done after the answer (failed sign-ins, password reset mails).
    pub(crate) jobs: crate::jobs::Jobs,
    /// Data sets read in each session (or by each API token): the first read is audited.
    pub(crate) dataset_reads:
        std::sync::Mutex<std::collections::HashSet<(lockstep_domain::DatasetId, String)>>,
    /// The WebAuthn relying party for the public URL (`None` when it names no host).
    pub(crate) webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    /// Passkey ceremonies in progress (in memory only: see `passkeys`).
    pub(crate) passkey_ceremonies: crate::passkeys::Ceremonies,
}

impl Hub {
    /// Opens an initialized store: the hub starts sealed. `Ok(None)` when the store was never
    /// initialized (call [`Hub::initialize`]).
    pub async fn open(store: Store, clock: Arc<dyn Clock>) -> Result<Option<Hub>, AppError> {
        let mut conn = store.read().await?;
        let Some(stored) = stored_vault::load(&mut conn).await? else {
            return Ok(None);
        };
        drop(conn);
        let config = seal_config(stored)?;
        Ok(Some(Hub::assemble(store, Vault::sealed(config), clock)))
    }

    /// Checks a share configuration before anything is created (bad input changes nothing).
    pub fn check_share_config(key_shares: u8, key_threshold: u8) -> Result<(), AppError> {
        lockstep_vault::check_share_config(key_shares, key_threshold).map_err(|err| match err {
            VaultError::InvalidShareConfig { reason } => AppError::Invalid {
                field: "key_shares",
                reason: reason.to_owned(),
            },
            other => AppError::Vault(other),
        })
    }

    /// Initializes an empty store: makes the root key, splits it into `key_shares` shares of which
    /// `key_threshold` unseal, makes the operator token, stores the sealed configuration and the
    /// token's hash in one transaction. The returned hub is unsealed.
    pub async fn initialize(
        store: Store,
        clock: Arc<dyn Clock>,
        key_shares: u8,
        key_threshold: u8,
    ) -> Result<(Hub, Credentials), AppError> {
        Hub::check_share_config(key_shares, key_threshold)?;
        let (init, token) = {
            let mut rng = rand::rng();
            let init = lockstep_vault::initialize(key_shares, key_threshold, &mut rng)
                .map_err(AppError::Vault)?;
            (init, SecretToken::generate("lso", &mut rng))
        };
        let now = clock.now();
        let stored = stored_vault::StoredVault {
            vault_id: init.config.vault_id.to_vec(),
            key_shares: init.config.key_shares,
            key_threshold: init.config.key_threshold,
            share_verifiers: init.config.share_verifiers.concat(),
            encrypted_keyring: init.config.encrypted_keyring.clone(),
            created_at: now,
        };
        let mut tx = store.write().await?;
        stored_vault::insert(&mut tx, &stored).await?;
        let token_id = uuid::Uuid::now_v7().to_string();
        operator::insert_token(&mut tx, &token_id, &token.hash(), now).await?;
        tx.commit().await.map_err(StoreError::from)?;

        let credentials = Credentials {
            unseal_keys: init.unseal_keys,
            key_threshold: init.config.key_threshold,
            operator_token: token,
        };
        let hub = Hub::assemble(
            store,
            Vault::unsealed(init.config, init.root, init.keyring),
            clock,
        );
        tracing::info!(key_shares, key_threshold, "vault initialized");
        Ok((hub, credentials))
    }

    fn assemble(store: Store, vault: Vault, clock: Arc<dyn Clock>) -> Hub {
        let options = HubOptions::default();
        let webauthn = crate::passkeys::relying_party(&options.public_url).map(Arc::new);
        Hub {
            store,
            vault,
            clock,
            hasher: PasswordHasher::new(options.password_permits),
            options,
            key_wrap_lock: tokio::sync::RwLock::new(()),
            work_available: tokio::sync::Notify::new(),
            jobs: crate::jobs::Jobs::default(),
            dataset_reads: std::sync::Mutex::new(std::collections::HashSet::new()),
            webauthn,
            passkey_ceremonies: crate::passkeys::Ceremonies::default(),
        }
    }

    /// Sets the sign-in, session and mail options (at start-up).
    pub fn with_options(mut self, options: HubOptions) -> Hub {
        self.hasher = PasswordHasher::new(options.password_permits.max(1));
        self.webauthn = crate::passkeys::relying_party(&options.public_url).map(Arc::new);
        self.passkey_ceremonies.clear();
        self.options = options;
        self
    }

    pub fn seal_status(&self) -> SealStatus {
        self.vault.status()
    }

    /// Enters one unseal key share. A refused share (malformed, foreign, unknown, duplicate) does
    /// not count; earlier progress stays.
    pub fn submit_unseal_key(&self, key: &UnsealKey) -> Result<SealStatus, AppError> {
        let status = self
            .vault
            .submit_share(key)
            .map_err(AppError::UnsealRefused)?;
        if !status.sealed {
            tracing::info!("vault unsealed");
        }
        Ok(status)
    }

    /// Discards the shares entered so far.
    pub fn reset_unseal(&self) -> SealStatus {
        self.vault.reset_progress()
    }

    /// Checks an operator token. Works sealed or unsealed: the token hash is not customer data.
    pub async fn authenticate_operator(&self, token: &SecretToken) -> Result<Operator, AppError> {
        let mut conn = self.store.read().await?;
        match operator::find_token(&mut conn, &token.hash()).await? {
            Some(token_id) => Ok(Operator { token_id }),
            None => Err(AppError::Unauthenticated),
        }
    }

    /// Seals the hub: every key leaves memory; only health and unseal are served until enough
    /// shares are entered again.
    pub fn seal(&self, operator: &Operator) {
        self.vault.seal();
        self.passkey_ceremonies.clear();
        tracing::info!(operator_token = operator.token_id(), "vault sealed");
    }

    /// How long sessions live (the server sets the cookie's lifetime from it).
    pub fn session_policy(&self) -> lockstep_auth::SessionPolicy {
        self.options.sessions
    }

    /// Rotates the keyring: new organization keys are wrapped with a new keyring key; the old
    /// versions stay to unwrap existing ones, so nothing needs re-encrypting. The re-encrypted
    /// keyring is stored before anything uses the new version; if storing fails, the hub seals
    /// itself rather than run with a keyring the store does not have.
    pub async fn rotate_keyring(&self, operator: &Operator) -> Result<u32, AppError> {
        let _exclusive = self.key_wrap_lock.write().await;
        let (version, encrypted) = self.vault.rotate_keyring(&mut rand::rng())?;
        let stored = async {
            let mut tx = self.store.write().await?;
            stored_vault::update_keyring(&mut tx, &encrypted, self.clock.now()).await?;
            tx.commit().await.map_err(StoreError::from)?;
            Ok::<_, StoreError>(())
        }
        .await;
        if let Err(err) = stored {
            self.vault.seal();
            tracing::error!(error = %err, "keyring rotation could not be stored; the hub sealed itself");
            return Err(err.into());
        }
        tracing::info!(
            keyring_version = version,
            operator_token = operator.token_id(),
            "keyring rotated"
        );
        Ok(version)
    }

    /// The hub's address as users reach it (`--public-url`), without a trailing slash.
    pub fn public_url(&self) -> &str {
        self.options.public_url.trim_end_matches('/')
    }

    pub fn is_sealed(&self) -> bool {
        self.vault.is_sealed()
    }

    /// An organization's data keys, unwrapped by the keyring (cached until sealed or deleted).
    pub async fn org_keys(&self, org: OrganizationId) -> Result<Arc<OrgKeys>, AppError> {
        if let Some(keys) = self.cached_org_keys(org)? {
            return Ok(keys);
        }
        let mut conn = self.store.read().await?;
        self.org_keys_on(&mut conn, org).await
    }

    fn cached_org_keys(&self, org: OrganizationId) -> Result<Option<Arc<OrgKeys>>, AppError> {
        match self.vault.org_keys(org, || Err(VaultError::NoKeyVersion)) {
            Ok(keys) => Ok(Some(keys)),
            Err(VaultError::NoKeyVersion) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Like [`Hub::org_keys`], loading the wrapped keys on `conn` when they are not cached, so a
    /// use case inside a transaction never needs a second connection.
    pub(crate) async fn org_keys_on(
        &self,
        conn: &mut lockstep_storage::Connection,
        org: OrganizationId,
    ) -> Result<Arc<OrgKeys>, AppError> {
        if let Some(keys) = self.cached_org_keys(org)? {
            return Ok(keys);
        }
        let stored = organizations::keys(conn, org).await?;
        if stored.is_empty() {
            return Err(AppError::NotFound("organization"));
        }
        let wrapped: Vec<WrappedOrgKey> = stored
            .into_iter()
            .map(|k| WrappedOrgKey {
                version: k.version,
                keyring_version: k.keyring_version,
                wrapped: k.wrapped_key,
            })
            .collect();
        Ok(self.vault.org_keys(org, || Ok(wrapped))?)
    }

    /// The store (for the server's readiness checks and for tests).
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }
}

fn seal_config(stored: stored_vault::StoredVault) -> Result<SealConfig, AppError> {
    let corrupt = |what| AppError::Store(StoreError::Corrupt(what));
    let vault_id: [u8; 16] = stored
        .vault_id
        .as_slice()
        .try_into()
        .map_err(|_| corrupt("vault id"))?;
    let (chunks, rest) = stored.share_verifiers.as_chunks::<32>();
    if !rest.is_empty() || chunks.len() != usize::from(stored.key_shares) {
        return Err(corrupt("share verifiers"));
    }
    Ok(SealConfig {
        vault_id,
        key_shares: stored.key_shares,
        key_threshold: stored.key_threshold,
        share_verifiers: chunks.to_vec(),
        encrypted_keyring: stored.encrypted_keyring,
    })
}
