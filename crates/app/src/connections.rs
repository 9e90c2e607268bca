//! Connections: Administrators configure the organization's systems; everybody sees their names.
//!
//! A connection is a kind, a configuration and secrets. The configuration is sealed under the
//! organization's key (only Administrators see it); each secret is sealed apart, bound to the
//! connection and its field, and no use case ever answers one — not to Administrators either.
//! Secrets exist in clear only inside a connector call, in zeroizing types. Every change is
//! audited, secret fields as "changed" only; reading records (samples) is audited too.

use crate::audit::{Actor, Event, FieldChange};
use crate::identity::Caller;
use crate::policies::PolicyObjectKind;
use crate::{AppError, Hub};
use lockstep_auth::{SecretToken, hashes_equal};
use lockstep_connectors::rest::RestAuth;
use lockstep_connectors::{
    AnyConnector, ConnectionConfig, ConnectionKind, Connector, FailureKind, ObjectMeta, Record,
    Secret, Secrets, UploadedFile,
};
use lockstep_domain::{ConnectionId, OrganizationId, UploadId};
use lockstep_policy::Action;
use lockstep_storage::connections::{self, StoredConnection, StoredUpload};
use lockstep_storage::names::NamedTable;
use lockstep_storage::{Connection, StoreError};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The largest file an Administrator may upload to a `files` connection.
pub const MAX_UPLOAD_BYTES: usize = MAX_UPLOAD_MIB * 1024 * 1024;
/// [`MAX_UPLOAD_BYTES`] in MiB, as pages and messages say it.
pub const MAX_UPLOAD_MIB: usize = 32;

/// Internal secrets holding OAuth tokens: set only by the authorization flow.
const ACCESS_TOKEN: &str = "oauth_access_token";
const REFRESH_TOKEN: &str = "oauth_refresh_token";
/// Tokens are refreshed when they expire within this margin.
const REFRESH_MARGIN: Duration = Duration::seconds(60);
/// How long an Administrator has to approve at the provider.
const AUTHORIZATION_VALIDITY: Duration = Duration::minutes(10);

/// A new connection as an Administrator submits it.
#[derive(Debug)]
pub struct NewConnection {
    pub name: String,
    pub kind: String,
    pub config: serde_json::Value,
    pub secrets: BTreeMap<String, Secret>,
}

/// A change: `None` keeps a part as it is. In `secrets`, a value sets a secret and `None`
/// removes it; secrets not named are kept.
#[derive(Debug, Default)]
pub struct ConnectionUpdate {
    pub name: Option<String>,
    pub config: Option<serde_json::Value>,
    pub secrets: Option<BTreeMap<String, Option<Secret>>>,
}

/// A connection as the caller may see it: everybody sees id, name and kind; Administrators also
/// see the details (never the secrets' values).
#[derive(Debug, Clone)]
pub struct ConnectionView {
    pub id: ConnectionId,
    pub name: String,
    pub kind: ConnectionKind,
    pub details: Option<ConnectionDetails>,
}

#[derive(Debug, Clone)]
pub struct ConnectionDetails {
    pub config: serde_json::Value,
    /// The secret fields that are set (names only).
    pub secrets_set: Vec<String>,
    /// For OAuth authorization-code connections: whether tokens are held, and until when the
    /// access token is valid.
    pub oauth: Option<OAuthStatus>,
    pub uploads: Vec<UploadView>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub discovered_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Copy)]
pub struct OAuthStatus {
    pub connected: bool,
    pub expires_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct UploadView {
    pub id: UploadId,
    pub name: String,
    pub size: u64,
    pub created_at: OffsetDateTime,
}

/// The result of "test connection": the request worked even when the connection did not.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub ok: bool,
    pub failure: Option<FailureKind>,
    pub message: String,
}

/// Discovered metadata.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub objects: Vec<ObjectMeta>,
    pub discovered_at: Option<OffsetDateTime>,
}

/// Where an Administrator's browser goes to approve an OAuth connection.
#[derive(Debug)]
pub struct OAuthStart {
    pub authorize_url: String,
    pub expires_at: OffsetDateTime,
    /// A random value for the starting browser only (a `__Host-` cookie): the callback must
    /// bring it back, so a state alone — leaked, or a victim lured to an attacker's code — does
    /// not complete the authorization. Only its hash is stored.
    pub binding: SecretToken,
}

/// The end of the provider's round trip.
#[derive(Debug, Clone, Copy)]
pub struct OAuthConnected {
    pub organization: OrganizationId,
    pub connection: ConnectionId,
}

/// The callback's query as the provider sent it, and the binding value from the browser's
/// cookie ([`OAuthStart::binding`]).
#[derive(Default)]
pub struct OAuthCallback {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub binding: Option<SecretToken>,
}

impl std::fmt::Debug for OAuthCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OAuthCallback(..)")
    }
}

/// A connection's or pipeline's name: 1 to 100 characters, no control characters.
pub(crate) fn check_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::Invalid {
            field: "name",
            reason: "must be 1 to 100 characters, without control characters".to_owned(),
        });
    }
    Ok(name.to_owned())
}

fn parse_kind(kind: &str) -> Result<ConnectionKind, AppError> {
    ConnectionKind::parse(kind).ok_or_else(|| AppError::Invalid {
        field: "kind",
        reason: "must be one of postgres, mysql, sqlite, files, rest".to_owned(),
    })
}

/// The `'static` name of a secret field the kind accepts (audit change sets need one).
fn secret_field(kind: ConnectionKind, field: &str) -> Result<&'static str, AppError> {
    kind.secret_fields()
        .iter()
        .find(|f| **f == field)
        .copied()
        .ok_or_else(|| AppError::InvalidConfig {
            field: format!("secrets.{field}"),
            reason: format!("a {kind} connection has no such secret"),
        })
}

fn secret_aad_field(field: &str) -> String {
    format!("secret.{field}")
}

fn check_secret_value(field: &str, value: &Secret) -> Result<(), AppError> {
    if value.expose().is_empty() || value.expose().len() > 64 * 1024 {
        return Err(AppError::InvalidConfig {
            field: format!("secrets.{field}"),
            reason: "must be 1 byte to 64 KiB".to_owned(),
        });
    }
    Ok(())
}

/// The secrets a configuration uses: a `rest` connection keeps only its authentication kind's.
fn used_secret(config: &ConnectionConfig, field: &str) -> bool {
    match config {
        ConnectionConfig::Rest(rest) => {
            rest.auth.secret_fields().contains(&field)
                || (field.starts_with("oauth_")
                    && matches!(rest.auth, RestAuth::Oauth2AuthorizationCode { .. }))
        }
        other => other.kind().secret_fields().contains(&field),
    }
}

fn upload_name(name: &str) -> Result<String, AppError> {
    lockstep_connectors::files::check_file_name(name).map_err(|reason| AppError::Invalid {
        field: "name",
        reason,
    })?;
    Ok(name.to_owned())
}

impl Hub {
    /// Loads a connection of the caller's organization (404 for another organization's, for
    /// every role), then asks the policy.
    async fn visible_connection(
        &self,
        caller: &Caller,
        action: Action,
        id: ConnectionId,
    ) -> Result<StoredConnection, AppError> {
        let mut conn = self.store.read().await?;
        let stored = connections::get(&mut conn, caller.organization(), id)
            .await?
            .ok_or(AppError::NotFound("connection"))?;
        drop(conn);
        if !self
            .access(caller)
            .await?
            .sees(PolicyObjectKind::Connection, &id.to_string())
        {
            return Err(AppError::NotFound("connection"));
        }
        self.authorize_in_organization(caller, action)?;
        Ok(stored)
    }

    async fn open_config(&self, stored: &StoredConnection) -> Result<ConnectionConfig, AppError> {
        let json = self
            .open_field(
                stored.organization_id,
                "connection",
                &stored.id.to_string(),
                "config",
                &stored.config_ciphertext,
            )
            .await?;
        let value: serde_json::Value = serde_json::from_slice(&json)
            .map_err(|_| AppError::Store(StoreError::Corrupt("connection config")))?;
        let kind = ConnectionKind::parse(&stored.kind)
            .ok_or(AppError::Store(StoreError::Corrupt("connection kind")))?;
        ConnectionConfig::parse(kind, value)
            .map_err(|_| AppError::Store(StoreError::Corrupt("connection config")))
    }

    async fn open_secrets(
        &self,
        conn: &mut Connection,
        stored: &StoredConnection,
    ) -> Result<Secrets, AppError> {
        let mut secrets = Secrets::new();
        let id = stored.id.to_string();
        for (field, ciphertext) in
            connections::secrets(conn, stored.organization_id, stored.id).await?
        {
            let value = self
                .open_text(
                    stored.organization_id,
                    "connection",
                    &id,
                    &secret_aad_field(&field),
                    &ciphertext,
                )
                .await?;
            secrets.insert(field, Secret::new(value));
        }
        Ok(secrets)
    }

    async fn seal_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        field: &str,
        value: &Secret,
    ) -> Result<Vec<u8>, AppError> {
        self.seal_field(
            org,
            "connection",
            &id.to_string(),
            &secret_aad_field(field),
            value.expose().as_bytes(),
        )
        .await
    }

    /// A connection's name, in clear.
    async fn connection_name(&self, stored: &StoredConnection) -> Result<String, AppError> {
        self.open_name(
            stored.organization_id,
            NamedTable::Connections,
            &stored.id.to_string(),
            &stored.name,
            stored.name_ciphertext.as_deref(),
        )
        .await
    }

    /// Seals `name` for connection `id`, refusing a name another connection holds in clear.
    async fn seal_connection_name(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        name: &str,
    ) -> Result<crate::names::StoredName, AppError> {
        self.seal_unique_name(
            org,
            NamedTable::Connections,
            &id.to_string(),
            name,
            "connection with this name",
        )
        .await
    }

    async fn view(
        &self,
        caller: &Caller,
        stored: StoredConnection,
    ) -> Result<ConnectionView, AppError> {
        let name = self.connection_name(&stored).await?;
        let kind = ConnectionKind::parse(&stored.kind)
            .ok_or(AppError::Store(StoreError::Corrupt("connection kind")))?;
        let sees_config = self
            .authorize_in_organization(caller, Action::ReadConnectionConfig)
            .is_ok();
        let details = if sees_config {
            let config = self.open_config(&stored).await?;
            let mut conn = self.store.read().await?;
            let secrets_set: Vec<String> =
                connections::secrets(&mut conn, stored.organization_id, stored.id)
                    .await?
                    .into_iter()
                    .map(|(field, _)| field)
                    .filter(|field| !field.starts_with("oauth_"))
                    .collect();
            let uploads = connections::uploads(&mut conn, stored.organization_id, stored.id)
                .await?
                .into_iter()
                .map(upload_view)
                .collect();
            let discovered_at = connections::metadata(&mut conn, stored.organization_id, stored.id)
                .await?
                .map(|(_, at)| at);
            let oauth = matches!(
                &config,
                ConnectionConfig::Rest(rest)
                    if matches!(rest.auth, RestAuth::Oauth2AuthorizationCode { .. })
            )
            .then_some(OAuthStatus {
                connected: stored.oauth_connected,
                expires_at: stored.oauth_expires_at,
            });
            Some(ConnectionDetails {
                config: config.to_json(),
                secrets_set,
                oauth,
                uploads,
                created_at: stored.created_at,
                updated_at: stored.updated_at,
                discovered_at,
            })
        } else {
            None
        };
        Ok(ConnectionView {
            id: stored.id,
            name,
            kind,
            details,
        })
    }

    /// Creates a connection (Administrators). Nothing is stored unless the configuration and
    /// the secrets are valid together.
    pub async fn create_connection(
        &self,
        caller: &Caller,
        new: NewConnection,
    ) -> Result<ConnectionView, AppError> {
        let org = caller.organization();
        self.authorize_in_organization(caller, Action::ManageConnections)?;
        let name = check_name(&new.name)?;
        let kind = parse_kind(&new.kind)?;
        let config = ConnectionConfig::parse(kind, new.config)?;
        let mut secrets = Secrets::new();
        let mut secret_fields = Vec::new();
        for (field, value) in new.secrets {
            let field = secret_field(kind, &field)?;
            check_secret_value(field, &value)?;
            secrets.insert(field, value);
            secret_fields.push(field);
        }
        config.validate(&secrets)?;

        let id = ConnectionId::from_uuid(Uuid::now_v7());
        let now = self.clock.now();
        let config_json = config.to_json().to_string();
        let config_ciphertext = self
            .seal_field(
                org,
                "connection",
                &id.to_string(),
                "config",
                config_json.as_bytes(),
            )
            .await?;
        let mut sealed = Vec::new();
        for field in &secret_fields {
            if let Some(value) = secrets.get(field) {
                sealed.push((*field, self.seal_secret(org, id, field, value).await?));
            }
        }
        let sealed_name = self.seal_connection_name(org, id, &name).await?;
        let stored = StoredConnection {
            id,
            organization_id: org,
            name: sealed_name.column,
            name_ciphertext: Some(sealed_name.ciphertext),
            kind: kind.as_str().to_owned(),
            config_ciphertext,
            oauth_connected: false,
            oauth_expires_at: None,
            created_by: Some(caller.user()),
            created_at: now,
            updated_at: now,
        };
        let mut event = Event::new(caller.actor(), "connection.created", "connection", id)
            .change("name", FieldChange::value(None::<String>, Some(&name)))
            .change("kind", FieldChange::value(None::<String>, Some(kind)))
            .change(
                "config",
                FieldChange::value(None::<String>, Some(&config_json)),
            );
        for (field, _) in &sealed {
            event = event.change(field, FieldChange::secret());
        }
        let mut tx = self.store.write().await?;
        connections::insert(&mut tx, &stored).await?;
        for (field, ciphertext) in &sealed {
            connections::put_secret(&mut tx, org, id, field, ciphertext, now).await?;
        }
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(connection = %id, organization = %org, by = %caller.user(), kind = %kind, "connection created");
        self.view(caller, stored).await
    }

    /// The organization's connections: names and kinds for everybody, details for Administrators.
    pub async fn list_connections(&self, caller: &Caller) -> Result<Vec<ConnectionView>, AppError> {
        self.authorize_in_organization(caller, Action::ListConnections)?;
        let mut conn = self.store.read().await?;
        let list = connections::list(&mut conn, caller.organization()).await?;
        drop(conn);
        let access = self.access(caller).await?;
        let mut views = Vec::with_capacity(list.len());
        for stored in list {
            if !access.sees(PolicyObjectKind::Connection, &stored.id.to_string()) {
                continue;
            }
            views.push(self.view(caller, stored).await?);
        }
        views.sort_by(|a, b| {
            (a.name.as_str(), a.id.to_string()).cmp(&(b.name.as_str(), b.id.to_string()))
        });
        Ok(views)
    }

    pub async fn get_connection(
        &self,
        caller: &Caller,
        id: ConnectionId,
    ) -> Result<ConnectionView, AppError> {
        let stored = self
            .visible_connection(caller, Action::ListConnections, id)
            .await?;
        self.view(caller, stored).await
    }

    /// Changes the name, the configuration and/or secrets (Administrators). The kind cannot
    /// change. Secrets the new configuration no longer uses are removed; a changed OAuth
    /// setup drops the tokens (connect again).
    pub async fn update_connection(
        &self,
        caller: &Caller,
        id: ConnectionId,
        update: ConnectionUpdate,
    ) -> Result<ConnectionView, AppError> {
        let stored = self
            .visible_connection(caller, Action::ManageConnections, id)
            .await?;
        let org = stored.organization_id;
        let kind = parse_kind(&stored.kind)?;
        let old_config = self.open_config(&stored).await?;
        let new_config = match update.config {
            Some(value) => ConnectionConfig::parse(kind, value)?,
            None => old_config.clone(),
        };
        let old_name = self.connection_name(&stored).await?;
        let name = match &update.name {
            Some(name) => check_name(name)?,
            None => old_name.clone(),
        };
        let mut conn = self.store.read().await?;
        let mut secrets = self.open_secrets(&mut conn, &stored).await?;
        drop(conn);

        let mut changed: BTreeMap<String, Option<Secret>> = BTreeMap::new();
        for (field, value) in update.secrets.unwrap_or_default() {
            let field = secret_field(kind, &field)?;
            match value {
                Some(value) => {
                    check_secret_value(field, &value)?;
                    secrets.insert(field, value.clone());
                    changed.insert(field.to_owned(), Some(value));
                }
                None => {
                    if secrets.remove(field).is_some() {
                        changed.insert(field.to_owned(), None);
                    }
                }
            }
        }
        let auth_changed = match (&old_config, &new_config) {
            (ConnectionConfig::Rest(old), ConnectionConfig::Rest(new)) => old.auth != new.auth,
            _ => false,
        };
        let unused: Vec<String> = secrets
            .fields()
            .filter(|field| {
                !used_secret(&new_config, field) || (auth_changed && field.starts_with("oauth_"))
            })
            .map(str::to_owned)
            .collect();
        for field in unused {
            secrets.remove(&field);
            changed.insert(field, None);
        }
        new_config.validate(&secrets)?;

        let now = self.clock.now();
        let old_json = old_config.to_json().to_string();
        let new_json = new_config.to_json().to_string();
        let mut updated = stored.clone();
        let sealed_name = self.seal_connection_name(org, id, &name).await?;
        updated.name = sealed_name.column;
        updated.name_ciphertext = Some(sealed_name.ciphertext);
        updated.updated_at = now;
        if new_json != old_json {
            updated.config_ciphertext = self
                .seal_field(
                    org,
                    "connection",
                    &id.to_string(),
                    "config",
                    new_json.as_bytes(),
                )
                .await?;
        }
        let mut sealed = Vec::new();
        for (field, value) in &changed {
            let ciphertext = match value {
                Some(value) => Some(self.seal_secret(org, id, field, value).await?),
                None => None,
            };
            sealed.push((field.clone(), ciphertext));
        }
        let mut event = Event::new(caller.actor(), "connection.updated", "connection", id);
        if name != old_name {
            event = event.change("name", FieldChange::value(Some(&old_name), Some(&name)));
        }
        if new_json != old_json {
            event = event.change(
                "config",
                FieldChange::value(Some(&old_json), Some(&new_json)),
            );
        }
        let mut tokens_dropped = false;
        for (field, _) in &sealed {
            match field.as_str() {
                ACCESS_TOKEN => {
                    tokens_dropped = true;
                    event = event.change(ACCESS_TOKEN, FieldChange::secret());
                }
                REFRESH_TOKEN => event = event.change(REFRESH_TOKEN, FieldChange::secret()),
                other => event = event.change(secret_field(kind, other)?, FieldChange::secret()),
            }
        }
        let mut tx = self.store.write().await?;
        connections::update(&mut tx, &updated).await?;
        for (field, ciphertext) in &sealed {
            match ciphertext {
                Some(ciphertext) => {
                    connections::put_secret(&mut tx, org, id, field, ciphertext, now).await?;
                }
                None => connections::delete_secret(&mut tx, org, id, field).await?,
            }
        }
        if tokens_dropped {
            connections::set_oauth(&mut tx, org, id, false, None, now).await?;
            updated.oauth_connected = false;
            updated.oauth_expires_at = None;
        }
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(connection = %id, organization = %org, by = %caller.user(), "connection updated");
        self.view(caller, updated).await
    }

    /// Deletes a connection with its secrets, metadata and files. OAuth tokens are revoked at the
    /// provider first where it offers revocation (a failed revocation does not stop the delete).
    pub async fn delete_connection(
        &self,
        caller: &Caller,
        id: ConnectionId,
    ) -> Result<(), AppError> {
        let stored = self
            .visible_connection(caller, Action::ManageConnections, id)
            .await?;
        let org = stored.organization_id;
        let mut conn = self.store.read().await?;
        let used = lockstep_storage::pipelines::count_using_connection(&mut conn, org, id).await?;
        drop(conn);
        if used > 0 {
            return Err(AppError::Refused(
                "pipelines read from or write to this connection: delete or change them first",
            ));
        }
        if stored.oauth_connected {
            let revoked = self.revoke_tokens(&stored).await;
            tracing::info!(connection = %id, revoked, "OAuth tokens revoked before delete");
        }
        let event = Event::new(caller.actor(), "connection.deleted", "connection", id).change(
            "name",
            FieldChange::value(Some(self.connection_name(&stored).await?), None::<String>),
        );
        let mut tx = self.store.write().await?;
        if !connections::delete(&mut tx, org, id).await? {
            return Err(AppError::NotFound("connection"));
        }
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(connection = %id, organization = %org, by = %caller.user(), "connection deleted");
        Ok(())
    }

    /// Makes the connector with the secrets in clear for the time of one call; refreshes OAuth
    /// tokens that expire soon (and stores the new ones).
    pub(crate) async fn connector(
        &self,
        actor: Actor,
        stored: &StoredConnection,
    ) -> Result<AnyConnector, AppError> {
        let config = self.open_config(stored).await?;
        let mut conn = self.store.read().await?;
        let mut secrets = self.open_secrets(&mut conn, stored).await?;
        let mut uploads = Vec::new();
        if matches!(config, ConnectionConfig::Files(_)) {
            for (upload, ciphertext) in
                connections::upload_contents(&mut conn, stored.organization_id, stored.id).await?
            {
                let contents = self
                    .open_field(
                        stored.organization_id,
                        "connection_upload",
                        &upload.id.to_string(),
                        "contents",
                        &ciphertext,
                    )
                    .await?;
                uploads.push(UploadedFile {
                    name: upload.name,
                    contents,
                });
            }
        }
        drop(conn);
        if let ConnectionConfig::Rest(rest) = &config
            && let RestAuth::Oauth2AuthorizationCode {
                token_url,
                client_id,
                ..
            } = &rest.auth
        {
            self.refresh_if_needed(actor, stored, token_url, client_id, &mut secrets)
                .await?;
        }
        Ok(lockstep_connectors::open(
            &config,
            secrets,
            uploads,
            &self.options.connectors,
        ))
    }

    /// "Test connection" (Administrators): connects and checks the credentials. A failure is an
    /// answer, not an error; both are audited.
    pub async fn test_connection(
        &self,
        caller: &Caller,
        id: ConnectionId,
    ) -> Result<TestOutcome, AppError> {
        let stored = self
            .visible_connection(caller, Action::ManageConnections, id)
            .await?;
        let result = match self.connector(caller.actor(), &stored).await {
            Ok(connector) => connector.test().await.map_err(AppError::from),
            Err(err) => Err(err),
        };
        let outcome = match result {
            Ok(()) => TestOutcome {
                ok: true,
                failure: None,
                message: "connected".to_owned(),
            },
            Err(AppError::Connector { kind, message }) => TestOutcome {
                ok: false,
                failure: Some(kind),
                message,
            },
            Err(AppError::InvalidConfig { field, reason }) => TestOutcome {
                ok: false,
                failure: Some(FailureKind::Other),
                message: format!("{field}: {reason}"),
            },
            Err(other) => return Err(other),
        };
        let mut event = Event::new(caller.actor(), "connection.tested", "connection", id);
        if !outcome.ok {
            event = event.failed();
        }
        self.record_read(caller, event).await?;
        tracing::info!(connection = %id, ok = outcome.ok, failure = ?outcome.failure, "connection tested");
        Ok(outcome)
    }

    /// Discovers the objects and fields (Administrators) and stores them as the connection's
    /// metadata, sealed under the organization's key.
    pub async fn discover_connection(
        &self,
        caller: &Caller,
        id: ConnectionId,
    ) -> Result<Discovery, AppError> {
        let stored = self
            .visible_connection(caller, Action::ManageConnections, id)
            .await?;
        let org = stored.organization_id;
        let connector = self.connector(caller.actor(), &stored).await?;
        let objects = connector.discover().await?;
        let json = serde_json::to_vec(&objects)
            .map_err(|_| AppError::Refused("the discovered metadata could not be encoded"))?;
        let ciphertext = self
            .seal_field(org, "connection", &id.to_string(), "metadata", &json)
            .await?;
        let now = self.clock.now();
        let event = Event::new(caller.actor(), "connection.discovered", "connection", id).change(
            "objects",
            FieldChange::value(None::<String>, Some(objects.len())),
        );
        let mut tx = self.store.write().await?;
        connections::put_metadata(&mut tx, org, id, &ciphertext, now).await?;
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(connection = %id, objects = objects.len(), "connection discovered");
        Ok(Discovery {
            objects,
            discovered_at: Some(now),
        })
    }

    /// The discovered objects and fields (every role).
    pub async fn connection_objects(
        &self,
        caller: &Caller,
        id: ConnectionId,
    ) -> Result<Discovery, AppError> {
        let stored = self
            .visible_connection(caller, Action::ReadConnectionObjects, id)
            .await?;
        self.stored_objects(&stored).await
    }

    pub(crate) async fn stored_objects(
        &self,
        stored: &StoredConnection,
    ) -> Result<Discovery, AppError> {
        let mut conn = self.store.read().await?;
        let found = connections::metadata(&mut conn, stored.organization_id, stored.id).await?;
        drop(conn);
        let Some((ciphertext, discovered_at)) = found else {
            return Ok(Discovery {
                objects: Vec::new(),
                discovered_at: None,
            });
        };
        let json = self
            .open_field(
                stored.organization_id,
                "connection",
                &stored.id.to_string(),
                "metadata",
                &ciphertext,
            )
            .await?;
        let objects = serde_json::from_slice(&json)
            .map_err(|_| AppError::Store(StoreError::Corrupt("connection metadata")))?;
        Ok(Discovery {
            objects,
            discovered_at: Some(discovered_at),
        })
    }

    /// Up to `limit` records of a discovered object (Administrators and Editors). The read is
    /// audited before the records are answered; if the event cannot be written, they are not.
    pub async fn sample_records(
        &self,
        caller: &Caller,
        id: ConnectionId,
        object: &str,
        limit: usize,
    ) -> Result<Vec<Record>, AppError> {
        self.sample_records_as(caller, id, object, limit, None)
            .await
    }

    /// [`Hub::sample_records`] under the data policies: the records the viewer's row filters
    /// withhold are left out, redacted values shown redacted; with `view_as` (Administrators),
    /// as that member or team would see them.
    pub async fn sample_records_as(
        &self,
        caller: &Caller,
        id: ConnectionId,
        object: &str,
        limit: usize,
        view_as: Option<crate::ViewAs>,
    ) -> Result<Vec<Record>, AppError> {
        let stored = self
            .visible_connection(caller, Action::SampleRecords, id)
            .await?;
        let viewer = self.viewer(caller, view_as).await?;
        if viewer.preview
            && !self
                .access_for(caller.organization(), &viewer)
                .await?
                .sees(PolicyObjectKind::Connection, &id.to_string())
        {
            return Err(AppError::NotFound("connection"));
        }
        viewer.may_read_records(lockstep_domain::Role::Editor)?;
        if limit == 0 || limit > lockstep_connectors::MAX_SAMPLE {
            return Err(AppError::Invalid {
                field: "limit",
                reason: format!("must be 1 to {}", lockstep_connectors::MAX_SAMPLE),
            });
        }
        let known = self.stored_objects(&stored).await?;
        let object = known
            .objects
            .iter()
            .find(|o| o.name == object)
            .map(|o| o.name.clone())
            .ok_or(AppError::NotFound("object (discover the connection first)"))?;
        let connector = self.connector(caller.actor(), &stored).await?;
        let mut records = connector.sample(&object, limit).await?;
        let org = caller.organization();
        let policies = self.policies(org).await?;
        let policy = self
            .record_policy(org, &policies, &viewer, id, &object)
            .await?;
        if !policy.is_open() {
            records = crate::policies::off_request_threads(move || {
                records.retain(|r| policy.passes(r));
                for record in &mut records {
                    policy.redact_record(record, &|_| None);
                }
                records
            })
            .await?;
        }
        let event = Event::new(caller.actor(), "records.sampled", "connection", id)
            .change("object", FieldChange::value(None::<String>, Some(&object)))
            .change(
                "records",
                FieldChange::value(None::<String>, Some(records.len())),
            );
        self.record_read(caller, event).await?;
        tracing::info!(connection = %id, records = records.len(), by = %caller.user(), "records sampled");
        Ok(records)
    }

    /// Uploads a file to a `files` connection (Administrators); a file of the same name is
    /// replaced. The contents are sealed under the organization's key.
    pub async fn upload_file(
        &self,
        caller: &Caller,
        id: ConnectionId,
        name: &str,
        contents: &[u8],
    ) -> Result<UploadView, AppError> {
        let stored = self
            .visible_connection(caller, Action::ManageConnections, id)
            .await?;
        if stored.kind != ConnectionKind::Files.as_str() {
            return Err(AppError::Refused(
                "only files connections take uploaded files",
            ));
        }
        let name = upload_name(name)?;
        if contents.len() > MAX_UPLOAD_BYTES {
            return Err(AppError::Invalid {
                field: "body",
                reason: format!("files are limited to {MAX_UPLOAD_MIB} MiB"),
            });
        }
        // A file that cannot be read is refused with what is wrong, and nothing is stored.
        if let ConnectionConfig::Files(config) = self.open_config(&stored).await? {
            let (name, contents) = (name.clone(), contents.to_vec());
            tokio::task::spawn_blocking(move || {
                lockstep_connectors::files::check_upload(&config, &name, &contents)
            })
            .await
            .map_err(|_| AppError::Refused("the file could not be checked"))?
            .map_err(|err| AppError::Invalid {
                field: "file",
                reason: match err {
                    lockstep_connectors::ConnectorError::Config { field, reason } => {
                        format!("{field} {reason}")
                    }
                    lockstep_connectors::ConnectorError::Failed { message, .. } => message,
                },
            })?;
        }
        let org = stored.organization_id;
        let now = self.clock.now();
        let upload = StoredUpload {
            id: UploadId::from_uuid(Uuid::now_v7()),
            name: name.clone(),
            size: u64::try_from(contents.len()).unwrap_or(u64::MAX),
            created_at: now,
        };
        let ciphertext = self
            .seal_field(
                org,
                "connection_upload",
                &upload.id.to_string(),
                "contents",
                contents,
            )
            .await?;
        let event = Event::new(caller.actor(), "connection.file_uploaded", "connection", id)
            .change("file", FieldChange::value(None::<String>, Some(&name)))
            .change(
                "size",
                FieldChange::value(None::<String>, Some(upload.size)),
            );
        let mut tx = self.store.write().await?;
        connections::put_upload(&mut tx, org, id, &upload, &ciphertext).await?;
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(upload_view(upload))
    }

    pub async fn delete_upload(
        &self,
        caller: &Caller,
        id: ConnectionId,
        name: &str,
    ) -> Result<(), AppError> {
        let stored = self
            .visible_connection(caller, Action::ManageConnections, id)
            .await?;
        let org = stored.organization_id;
        let event = Event::new(caller.actor(), "connection.file_deleted", "connection", id)
            .change("file", FieldChange::value(Some(name), None::<String>));
        let mut tx = self.store.write().await?;
        if !connections::delete_upload(&mut tx, org, id, name).await? {
            return Err(AppError::NotFound("file"));
        }
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Where the provider sends the browser back.
    pub fn oauth_redirect_uri(&self) -> String {
        format!(
            "{}/api/v1/oauth/callback",
            self.options.public_url.trim_end_matches('/')
        )
    }

    /// Starts the OAuth authorization code flow (Administrators): answers the provider's
    /// authorization URL, with a single-use state and a PKCE challenge, valid 10 minutes, and
    /// the binding value the starting browser must bring back to the callback.
    pub async fn oauth_start(
        &self,
        caller: &Caller,
        id: ConnectionId,
    ) -> Result<OAuthStart, AppError> {
        let stored = self
            .visible_connection(caller, Action::ManageConnections, id)
            .await?;
        let org = stored.organization_id;
        let config = self.open_config(&stored).await?;
        let ConnectionConfig::Rest(rest) = &config else {
            return Err(AppError::Refused(
                "only rest connections with auth kind oauth2_authorization_code connect with OAuth",
            ));
        };
        let RestAuth::Oauth2AuthorizationCode {
            authorize_url,
            client_id,
            scopes,
            ..
        } = &rest.auth
        else {
            return Err(AppError::Refused(
                "this connection does not use the OAuth authorization code (auth.kind)",
            ));
        };
        let state = lockstep_connectors::oauth::new_state();
        let pkce = lockstep_connectors::oauth::new_pkce();
        let url = lockstep_connectors::oauth::authorize_url(
            authorize_url,
            client_id,
            &self.oauth_redirect_uri(),
            scopes,
            &state,
            &pkce,
        )?;
        let state_hash = state_hash(&state);
        let verifier_ciphertext = self
            .seal_field(
                org,
                "oauth_authorization",
                &hex::encode(state_hash),
                "verifier",
                pkce.verifier.expose().as_bytes(),
            )
            .await?;
        let binding = SecretToken::generate("lsb", &mut rand::rng());
        let now = self.clock.now();
        let pending = connections::PendingAuthorization {
            state_hash,
            organization_id: org,
            connection_id: id,
            user_id: caller.user(),
            verifier_ciphertext,
            binding_hash: binding.hash(),
            expires_at: now + AUTHORIZATION_VALIDITY,
            created_at: now,
        };
        let event = Event::new(caller.actor(), "connection.oauth_started", "connection", id);
        let mut tx = self.store.write().await?;
        connections::delete_expired_authorizations(&mut tx, now).await?;
        connections::insert_authorization(&mut tx, &pending).await?;
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(OAuthStart {
            authorize_url: url.to_string(),
            expires_at: pending.expires_at,
            binding,
        })
    }

    /// The provider's redirect back: the state (single use, 10 minutes) identifies the
    /// authorization, which completes only in the browser that started it (the binding value,
    /// compared in constant time); the code is exchanged with the PKCE verifier, the tokens are
    /// sealed. A callback without the right binding uses the state up and stores nothing.
    pub async fn oauth_callback(
        &self,
        callback: OAuthCallback,
    ) -> Result<OAuthConnected, AppError> {
        let state = callback
            .state
            .filter(|s| !s.is_empty() && s.len() <= 512)
            .ok_or(AppError::Refused("the authorization has no state"))?;
        let hash = state_hash(&Secret::new(state));
        let mut tx = self.store.write().await?;
        let pending = connections::take_authorization(&mut tx, &hash).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let pending = pending.ok_or(AppError::Refused(
            "unknown or already used authorization: start again from the connection",
        ))?;
        let now = self.clock.now();
        let org = pending.organization_id;
        let id = pending.connection_id;
        let actor = Actor::User(pending.user_id);
        let failed = |event: Event| event.failed();
        let event = Event::new(actor, "connection.oauth_connected", "connection", id);
        let bound = callback
            .binding
            .as_ref()
            .is_some_and(|b| hashes_equal(&b.hash(), &pending.binding_hash));
        if !bound {
            self.record_in_own_tx(org, failed(event)).await?;
            tracing::warn!(connection = %id, organization = %org,
                "OAuth callback without the starting browser's binding refused");
            return Err(AppError::Refused(
                "this browser did not start the authorization: start again from the connection, \
                 and finish in the same browser",
            ));
        }
        if pending.expires_at < now {
            self.record_in_own_tx(org, failed(event)).await?;
            return Err(AppError::Refused(
                "the authorization expired: start again from the connection",
            ));
        }
        if let Some(error) = callback.error {
            self.record_in_own_tx(org, failed(event)).await?;
            let _ = error;
            return Err(AppError::Refused(
                "the provider did not grant access (the authorization was denied or failed)",
            ));
        }
        let code = callback
            .code
            .filter(|c| !c.is_empty() && c.len() <= 4096)
            .ok_or(AppError::Refused("the provider sent no authorization code"))?;
        let mut conn = self.store.read().await?;
        let stored = connections::get(&mut conn, org, id)
            .await?
            .ok_or(AppError::NotFound("connection"))?;
        let secrets = self.open_secrets(&mut conn, &stored).await?;
        drop(conn);
        let verifier = Secret::new(
            self.open_text(
                org,
                "oauth_authorization",
                &hex::encode(hash),
                "verifier",
                &pending.verifier_ciphertext,
            )
            .await?,
        );
        let config = self.open_config(&stored).await?;
        let ConnectionConfig::Rest(rest) = &config else {
            return Err(AppError::Refused("the connection no longer uses OAuth"));
        };
        let RestAuth::Oauth2AuthorizationCode {
            token_url,
            client_id,
            ..
        } = &rest.auth
        else {
            return Err(AppError::Refused("the connection no longer uses OAuth"));
        };
        let tokens = match lockstep_connectors::oauth::exchange_code(
            &self.options.connectors,
            token_url,
            client_id,
            secrets.get("client_secret"),
            &code,
            &verifier,
            &self.oauth_redirect_uri(),
            now,
        )
        .await
        {
            Ok(tokens) => tokens,
            Err(err) => {
                self.record_in_own_tx(org, failed(event)).await?;
                return Err(err.into());
            }
        };
        self.store_tokens(&stored, &tokens, event, now).await?;
        tracing::info!(connection = %id, organization = %org, "OAuth connection authorized");
        Ok(OAuthConnected {
            organization: org,
            connection: id,
        })
    }

    async fn store_tokens(
        &self,
        stored: &StoredConnection,
        tokens: &lockstep_connectors::oauth::TokenSet,
        mut event: Event,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let org = stored.organization_id;
        let id = stored.id;
        let access = self
            .seal_secret(org, id, ACCESS_TOKEN, &tokens.access_token)
            .await?;
        let refresh = match &tokens.refresh_token {
            Some(token) => Some(self.seal_secret(org, id, REFRESH_TOKEN, token).await?),
            None => None,
        };
        event = event.change(ACCESS_TOKEN, FieldChange::secret());
        if refresh.is_some() {
            event = event.change(REFRESH_TOKEN, FieldChange::secret());
        }
        let mut tx = self.store.write().await?;
        connections::put_secret(&mut tx, org, id, ACCESS_TOKEN, &access, now).await?;
        if let Some(refresh) = &refresh {
            connections::put_secret(&mut tx, org, id, REFRESH_TOKEN, refresh, now).await?;
        }
        connections::set_oauth(&mut tx, org, id, true, tokens.expires_at, now).await?;
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    async fn record_in_own_tx(&self, org: OrganizationId, event: Event) -> Result<(), AppError> {
        let mut tx = self.store.write().await?;
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Refreshes the access token when it expires within a minute and a refresh token is held.
    async fn refresh_if_needed(
        &self,
        actor: Actor,
        stored: &StoredConnection,
        token_url: &str,
        client_id: &str,
        secrets: &mut Secrets,
    ) -> Result<(), AppError> {
        let now = self.clock.now();
        let due = stored
            .oauth_expires_at
            .is_some_and(|at| at <= now + REFRESH_MARGIN);
        if !stored.oauth_connected || !due {
            return Ok(());
        }
        let Some(refresh_token) = secrets.get(REFRESH_TOKEN).cloned() else {
            return Ok(());
        };
        let tokens = lockstep_connectors::oauth::refresh(
            &self.options.connectors,
            token_url,
            client_id,
            secrets.get("client_secret"),
            &refresh_token,
            now,
        )
        .await?;
        let event = Event::new(actor, "connection.oauth_refreshed", "connection", stored.id);
        self.store_tokens(stored, &tokens, event, now).await?;
        secrets.insert(ACCESS_TOKEN, tokens.access_token.clone());
        if let Some(token) = &tokens.refresh_token {
            secrets.insert(REFRESH_TOKEN, token.clone());
        }
        tracing::info!(connection = %stored.id, "OAuth access token refreshed");
        Ok(())
    }

    /// Revokes the held tokens at the provider (when it has a revocation endpoint); true when
    /// the provider confirmed.
    async fn revoke_tokens(&self, stored: &StoredConnection) -> bool {
        let result = async {
            let config = self.open_config(stored).await?;
            let ConnectionConfig::Rest(rest) = &config else {
                return Ok(false);
            };
            let RestAuth::Oauth2AuthorizationCode {
                revocation_url: Some(revocation_url),
                client_id,
                ..
            } = &rest.auth
            else {
                return Ok(false);
            };
            let mut conn = self.store.read().await?;
            let secrets = self.open_secrets(&mut conn, stored).await?;
            drop(conn);
            let ctx = &self.options.connectors;
            let secret = secrets.get("client_secret");
            use lockstep_connectors::oauth::{TokenKind, revoke};
            if let Some(token) = secrets.get(REFRESH_TOKEN) {
                revoke(
                    ctx,
                    revocation_url,
                    client_id,
                    secret,
                    token,
                    TokenKind::RefreshToken,
                )
                .await?;
            }
            if let Some(token) = secrets.get(ACCESS_TOKEN) {
                revoke(
                    ctx,
                    revocation_url,
                    client_id,
                    secret,
                    token,
                    TokenKind::AccessToken,
                )
                .await?;
            }
            Ok::<bool, AppError>(true)
        }
        .await;
        match result {
            Ok(revoked) => revoked,
            Err(err) => {
                tracing::warn!(connection = %stored.id, error = %err, "OAuth revocation failed");
                false
            }
        }
    }

    /// "Disconnect" (Administrators): revokes the tokens at the provider where it offers
    /// revocation, and deletes them here. Answers whether the provider confirmed the revocation.
    pub async fn oauth_disconnect(
        &self,
        caller: &Caller,
        id: ConnectionId,
    ) -> Result<bool, AppError> {
        let stored = self
            .visible_connection(caller, Action::ManageConnections, id)
            .await?;
        let org = stored.organization_id;
        if !stored.oauth_connected {
            return Err(AppError::Refused("the connection holds no OAuth tokens"));
        }
        let revoked = self.revoke_tokens(&stored).await;
        let now = self.clock.now();
        let event = Event::new(
            caller.actor(),
            "connection.oauth_disconnected",
            "connection",
            id,
        )
        .change(ACCESS_TOKEN, FieldChange::secret())
        .change(REFRESH_TOKEN, FieldChange::secret())
        .change("revoked", FieldChange::value(None::<String>, Some(revoked)));
        let mut tx = self.store.write().await?;
        connections::delete_secret(&mut tx, org, id, ACCESS_TOKEN).await?;
        connections::delete_secret(&mut tx, org, id, REFRESH_TOKEN).await?;
        connections::set_oauth(&mut tx, org, id, false, None, now).await?;
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(connection = %id, revoked, "OAuth connection disconnected");
        Ok(revoked)
    }
}

fn state_hash(state: &Secret) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(state.expose().as_bytes()).into()
}

fn upload_view(upload: StoredUpload) -> UploadView {
    UploadView {
        id: upload.id,
        name: upload.name,
        size: upload.size,
        created_at: upload.created_at,
    }
}
