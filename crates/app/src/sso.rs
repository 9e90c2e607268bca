//! Single sign-on per organization: an Administrator configures the organization's identity
//! provider (OpenID Connect or SAML 2.0), tries it with a test sign-in, switches it on, and may
//! refuse password sign-in for everyone but one break-glass Administrator. Members then sign in
//! at the provider; the answer is checked by `lockstep_sso` and matched to a member by verified
//! e-mail address, or provisions one just in time when the Administrator allowed it.
//!
//! What the hub keeps: the settings sealed under the organization's key (the OIDC client secret
//! apart, write-only), the e-mail domains that lead to the provider as a keyed index, each sign-in
//! sent to the provider until its answer (by a hash of its `state` or request id, bound to the
//! starting browser by a cookie, the OIDC nonce and PKCE verifier sealed), and the SAML assertion
//! ids already used until they expire. Nothing of what the provider sends is logged or stored:
//! the test sign-in shows it once.

use crate::audit::{Actor, Event, FieldChange};
use crate::identity::{Caller, LoginSuccess};
use crate::{AppError, Hub};
use lockstep_auth::{Password, SecretToken, hashes_equal};
use lockstep_domain::{EmailAddress, OrganizationId, Role, UserId};
use lockstep_policy::Action;
use lockstep_sso::{RefusalReason, Refused, VerifiedIdentity};
use lockstep_storage::StoreError;
use lockstep_storage::sso::{self, PendingSignIn, StoredSsoConfig};
use lockstep_storage::users::{self, StoredUser, UserStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use zeroize::Zeroizing;

pub use lockstep_storage::sso::SsoKind;

/// How long a sign-in sent to the identity provider waits for its answer.
pub const SSO_REQUEST_VALIDITY: Duration = Duration::minutes(10);
/// At most this many e-mail domains lead to one organization's identity provider.
pub const MAX_SSO_DOMAINS: usize = 20;
/// The largest IdP metadata document accepted.
pub const MAX_IDP_METADATA: usize = 256 * 1024;

/// Just-in-time provisioning: whether an unknown but verified address becomes a member, and with
/// which role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SsoJit {
    pub enabled: bool,
    pub role: Role,
}

/// What an Administrator sends to configure single sign-on.
pub struct SsoConfigInput {
    pub kind: SsoKind,
    pub enabled: bool,
    pub jit: SsoJit,
    pub sso_only: bool,
    pub break_glass_user_id: Option<UserId>,
    pub domains: Vec<String>,
    pub oidc: Option<OidcConfigInput>,
    pub saml: Option<SamlConfigInput>,
}

impl std::fmt::Debug for SsoConfigInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoConfigInput")
            .field("kind", &self.kind)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// An OpenID Connect provider. The client secret is write-only: `None` keeps the stored one.
pub struct OidcConfigInput {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<Zeroizing<String>>,
    pub scopes: Vec<String>,
    pub email_claim: Option<String>,
}

/// A SAML 2.0 identity provider, described by its metadata.
pub struct SamlConfigInput {
    pub idp_metadata_xml: String,
}

macro_rules! opaque_debug {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($t), "(..)"))
            }
        }
    )*};
}
opaque_debug!(OidcConfigInput, SamlConfigInput, OidcCallback, SamlPost);

/// The sealed part of a configuration.
#[derive(Serialize, Deserialize, Clone, Default)]
struct SealedSettings {
    domains: Vec<String>,
    oidc: Option<SealedOidc>,
    saml: Option<SealedSaml>,
}

#[derive(Serialize, Deserialize, Clone)]
struct SealedOidc {
    issuer: String,
    client_id: String,
    scopes: Vec<String>,
    email_claim: String,
}

#[derive(Serialize, Deserialize, Clone)]
struct SealedSaml {
    idp_metadata_xml: String,
}

/// An organization's single sign-on as an Administrator reads it (never the client secret).
#[derive(Debug, Clone)]
pub struct SsoConfigView {
    pub kind: SsoKind,
    pub enabled: bool,
    pub jit: SsoJit,
    pub sso_only: bool,
    pub break_glass_user_id: Option<UserId>,
    pub domains: Vec<String>,
    pub oidc: Option<OidcConfigView>,
    pub saml: Option<SamlConfigView>,
    /// The organization's sign-in link.
    pub sign_in_url: String,
    /// When the last test sign-in ran and how it ended (`ok` or a refusal code).
    pub last_test: Option<(OffsetDateTime, String)>,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct OidcConfigView {
    pub issuer: String,
    pub client_id: String,
    pub client_secret_set: bool,
    pub scopes: Vec<String>,
    pub email_claim: String,
    /// Where the provider sends members back (register it at the provider).
    pub redirect_uri: String,
}

#[derive(Debug, Clone)]
pub struct SamlConfigView {
    pub idp_entity_id: String,
    pub idp_sso_url: String,
    /// The hub as a service provider: register these at the IdP (or give it the metadata URL).
    pub sp_entity_id: String,
    pub acs_url: String,
    pub metadata_url: String,
}

/// A sign-in sent to the identity provider: send the browser to `redirect_url`, holding
/// `binding` in the SSO cookie.
#[derive(Debug)]
pub struct SsoStarted {
    pub redirect_url: String,
    pub binding: SecretToken,
}

/// The provider's answer at the OIDC callback.
#[derive(Default)]
pub struct OidcCallback {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub binding: Option<SecretToken>,
}

/// The provider's answer posted to the SAML assertion consumer service.
pub struct SamlPost {
    pub saml_response: String,
    pub binding: Option<SecretToken>,
}

/// How an answer ended.
#[derive(Debug)]
pub enum SsoOutcome {
    /// A member signed in: a session like a password sign-in's.
    SignedIn(LoginSuccess),
    /// An Administrator's test sign-in: what the provider sent, nothing signed in.
    Tested(SsoTestResult),
}

/// What a test sign-in saw. Shown once to the Administrator who started it; never stored.
#[derive(Clone)]
pub struct SsoTestResult {
    pub organization: OrganizationId,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub attributes: BTreeMap<String, Vec<String>>,
    /// What a real sign-in would do: `sign_in` (a member has the address), `provision` (just in
    /// time), or the refusal code.
    pub outcome: String,
}

impl std::fmt::Debug for SsoTestResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoTestResult")
            .field("organization", &self.organization)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

/// The pending part of a sign-in, sealed while it waits: the OIDC state, nonce and PKCE
/// verifier, or the SAML request id.
#[derive(Serialize, Deserialize)]
struct PendingSecrets {
    oidc: Option<[String; 3]>,
    saml_request_id: Option<String>,
}

impl Drop for PendingSecrets {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        if let Some(parts) = &mut self.oidc {
            parts.iter_mut().for_each(Zeroize::zeroize);
        }
    }
}

fn sha256(text: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).into()
}

fn invalid(field: &'static str, reason: impl Into<String>) -> AppError {
    AppError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A lower-cased domain name, checked for shape.
fn parse_domain(text: &str) -> Result<String, AppError> {
    let domain = text.trim().trim_start_matches('@').to_ascii_lowercase();
    let labels_ok = domain.split('.').count() >= 2
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if domain.len() > 253 || !labels_ok {
        return Err(invalid(
            "domains",
            "each domain is a DNS name such as example.com (letters, digits, hyphens, dots)",
        ));
    }
    Ok(domain)
}

impl Hub {
    /// HMAC-SHA256 of a lower-cased domain under a hub-wide key derived from the keyring.
    fn domain_index(&self, domain: &str) -> Result<Vec<u8>, AppError> {
        use hmac::{KeyInit, Mac};
        let key = self
            .vault
            .with_keyring(|keyring| keyring.derive_subkey("sso-domain-index v1"))?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_ref())
            .map_err(|_| AppError::Refused("cannot key the domain index"))?;
        mac.update(domain.to_ascii_lowercase().as_bytes());
        Ok(mac.finalize().into_bytes().to_vec())
    }

    /// The organization's sign-in link (it leads to its identity provider).
    pub fn sso_sign_in_url(&self, org: OrganizationId) -> String {
        format!("{}/sso/{org}", self.public_url())
    }

    /// Where an OpenID Connect provider sends members back.
    pub fn sso_oidc_redirect_uri(&self) -> String {
        format!("{}/api/v1/sso/oidc/callback", self.public_url())
    }

    /// The hub as a SAML service provider for this organization.
    pub fn saml_service_provider(
        &self,
        org: OrganizationId,
    ) -> lockstep_sso::saml::ServiceProvider {
        let base = format!("{}/api/v1/sso/saml/{org}", self.public_url());
        lockstep_sso::saml::ServiceProvider {
            entity_id: format!("{base}/metadata"),
            acs_url: format!("{base}/acs"),
            metadata_url: format!("{base}/metadata"),
        }
    }

    /// The SAML service provider metadata of an organization with SAML single sign-on (public:
    /// the IdP reads it).
    pub async fn saml_sp_metadata(&self, org: OrganizationId) -> Result<String, AppError> {
        let mut conn = self.store.read().await?;
        let stored = sso::get(&mut conn, org).await?;
        drop(conn);
        match stored {
            Some(config) if config.kind == SsoKind::Saml => Ok(
                lockstep_sso::saml::sp_metadata_xml(&self.saml_service_provider(org)),
            ),
            _ => Err(AppError::NotFound("single sign-on")),
        }
    }

    async fn open_sso_settings(
        &self,
        config: &StoredSsoConfig,
    ) -> Result<SealedSettings, AppError> {
        let org = config.organization_id;
        let text = self
            .open_field(org, "sso", &org.to_string(), "settings", &config.settings)
            .await?;
        serde_json::from_slice(&text)
            .map_err(|_| AppError::Vault(lockstep_vault::VaultError::Decrypt))
    }

    async fn open_client_secret(
        &self,
        config: &StoredSsoConfig,
    ) -> Result<Option<Zeroizing<String>>, AppError> {
        let Some(ciphertext) = &config.client_secret else {
            return Ok(None);
        };
        let org = config.organization_id;
        let text = self
            .open_text(org, "sso", &org.to_string(), "client_secret", ciphertext)
            .await?;
        Ok(Some(Zeroizing::new(text)))
    }

    fn view_of(&self, config: &StoredSsoConfig, sealed: &SealedSettings) -> SsoConfigView {
        let org = config.organization_id;
        let saml = sealed.saml.as_ref().map(|saml| {
            let sp = self.saml_service_provider(org);
            let idp = lockstep_sso::saml::IdpMetadata::parse(&saml.idp_metadata_xml).ok();
            SamlConfigView {
                idp_entity_id: idp
                    .as_ref()
                    .map(|m| m.entity_id().to_owned())
                    .unwrap_or_default(),
                idp_sso_url: idp
                    .as_ref()
                    .map(|m| m.sso_redirect_url().to_string())
                    .unwrap_or_default(),
                sp_entity_id: sp.entity_id,
                acs_url: sp.acs_url,
                metadata_url: sp.metadata_url,
            }
        });
        SsoConfigView {
            kind: config.kind,
            enabled: config.enabled,
            jit: SsoJit {
                enabled: config.jit_enabled,
                role: config.jit_role,
            },
            sso_only: config.sso_only,
            break_glass_user_id: config.break_glass_user_id,
            domains: sealed.domains.clone(),
            oidc: sealed.oidc.as_ref().map(|oidc| OidcConfigView {
                issuer: oidc.issuer.clone(),
                client_id: oidc.client_id.clone(),
                client_secret_set: config.client_secret.is_some(),
                scopes: oidc.scopes.clone(),
                email_claim: oidc.email_claim.clone(),
                redirect_uri: self.sso_oidc_redirect_uri(),
            }),
            saml,
            sign_in_url: self.sso_sign_in_url(org),
            last_test: config.last_test_at.zip(config.last_test_result.clone()),
            updated_at: config.updated_at,
        }
    }

    /// The organization's single sign-on configuration (Administrators), if it has one.
    pub async fn sso_config(&self, caller: &Caller) -> Result<Option<SsoConfigView>, AppError> {
        self.authorize_in_organization(caller, Action::ReadSettings)?;
        let org = caller.organization();
        let mut conn = self.store.read().await?;
        let stored = sso::get(&mut conn, org).await?;
        drop(conn);
        let Some(config) = stored else {
            return Ok(None);
        };
        let sealed = self.open_sso_settings(&config).await?;
        Ok(Some(self.view_of(&config, &sealed)))
    }

    /// Configures single sign-on (Administrators). The provider is checked first — OIDC
    /// discovery through the egress policy, SAML metadata parsed —, so nothing is saved that
    /// cannot work; SSO only needs it enabled and an active Administrator with TOTP as the
    /// break-glass account. Audited `sso.configured` (the secret only as "changed").
    pub async fn put_sso_config(
        &self,
        caller: &Caller,
        input: SsoConfigInput,
    ) -> Result<SsoConfigView, AppError> {
        self.authorize_in_organization(caller, Action::UpdateSettings)?;
        let org = caller.organization();
        let now = self.clock.now();
        let mut conn = self.store.read().await?;
        let before = sso::get(&mut conn, org).await?;
        drop(conn);
        let before_sealed = match &before {
            Some(config) => Some(self.open_sso_settings(config).await?),
            None => None,
        };

        let mut domains = Vec::new();
        for domain in &input.domains {
            let domain = parse_domain(domain)?;
            if !domains.contains(&domain) {
                domains.push(domain);
            }
        }
        if domains.len() > MAX_SSO_DOMAINS {
            return Err(invalid(
                "domains",
                format!("at most {MAX_SSO_DOMAINS} domains"),
            ));
        }
        let mut sealed = SealedSettings {
            domains,
            oidc: None,
            saml: None,
        };
        let mut client_secret = None;
        // A secret sent counts as changed (the audit never learns whether it was the same).
        let mut secret_sent = false;
        match input.kind {
            SsoKind::Oidc => {
                let oidc = input.oidc.ok_or_else(|| {
                    invalid("oidc", "an OpenID Connect provider needs its settings")
                })?;
                let settings = self.check_oidc_input(&oidc)?;
                let secret = match oidc.client_secret {
                    Some(secret) if !secret.trim().is_empty() => {
                        if secret.len() > 1024 {
                            return Err(invalid("oidc.client_secret", "at most 1024 characters"));
                        }
                        secret_sent = true;
                        Zeroizing::new(secret.trim().to_owned())
                    }
                    _ => match &before {
                        Some(config) if config.kind == SsoKind::Oidc => self
                            .open_client_secret(config)
                            .await?
                            .ok_or_else(|| invalid("oidc.client_secret", "required"))?,
                        _ => return Err(invalid("oidc.client_secret", "required")),
                    },
                };
                self.discover_oidc(&settings, &secret).await?;
                client_secret = Some(secret);
                sealed.oidc = Some(settings);
            }
            SsoKind::Saml => {
                let saml = input.saml.ok_or_else(|| {
                    invalid("saml", "a SAML identity provider needs its metadata")
                })?;
                if saml.idp_metadata_xml.len() > MAX_IDP_METADATA {
                    return Err(invalid(
                        "saml.idp_metadata_xml",
                        format!("at most {} KiB", MAX_IDP_METADATA / 1024),
                    ));
                }
                lockstep_sso::saml::IdpMetadata::parse(&saml.idp_metadata_xml)
                    .map_err(|err| invalid("saml.idp_metadata_xml", err.to_string()))?;
                sealed.saml = Some(SealedSaml {
                    idp_metadata_xml: saml.idp_metadata_xml,
                });
            }
        }
        if input.sso_only && !input.enabled {
            return Err(invalid(
                "sso_only",
                "refusing password sign-in needs single sign-on enabled",
            ));
        }
        let mut conn = self.store.read().await?;
        if let Some(user) = input.break_glass_user_id {
            let stored = users::get(&mut conn, org, user).await?;
            let fit = stored.is_some_and(|u| {
                u.status == UserStatus::Active && u.role == Role::Administrator && u.totp_enabled
            });
            if !fit {
                return Err(invalid(
                    "break_glass_user_id",
                    "the break-glass account must be an active Administrator of this organization with TOTP",
                ));
            }
        } else if input.sso_only {
            return Err(invalid(
                "break_glass_user_id",
                "SSO only keeps one Administrator with password and TOTP: name them",
            ));
        }
        drop(conn);

        let org_text = org.to_string();
        let settings_json = serde_json::to_vec(&sealed)
            .map_err(|_| AppError::Refused("cannot store the settings"))?;
        let stored = StoredSsoConfig {
            organization_id: org,
            kind: input.kind,
            enabled: input.enabled,
            sso_only: input.sso_only,
            jit_enabled: input.jit.enabled,
            jit_role: input.jit.role,
            break_glass_user_id: input.break_glass_user_id,
            settings: self
                .seal_field(org, "sso", &org_text, "settings", &settings_json)
                .await?,
            client_secret: match &client_secret {
                Some(secret) => Some(
                    self.seal_field(org, "sso", &org_text, "client_secret", secret.as_bytes())
                        .await?,
                ),
                None => None,
            },
            // A changed provider has not been tried yet.
            last_test_at: before
                .as_ref()
                .filter(|_| same_provider(before_sealed.as_ref(), &sealed))
                .and_then(|b| b.last_test_at),
            last_test_result: before
                .as_ref()
                .filter(|_| same_provider(before_sealed.as_ref(), &sealed))
                .and_then(|b| b.last_test_result.clone()),
            created_at: before.as_ref().map_or(now, |b| b.created_at),
            updated_at: now,
        };
        let domain_indexes = sealed
            .domains
            .iter()
            .map(|d| self.domain_index(d))
            .collect::<Result<Vec<_>, _>>()?;
        let event = configured_event(
            caller,
            org,
            before.as_ref().zip(before_sealed.as_ref()),
            Some((&stored, &sealed)),
            secret_sent,
        );
        let mut tx = self.store.write().await?;
        sso::put(&mut tx, &stored).await?;
        sso::set_domains(&mut tx, org, &domain_indexes).await?;
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(organization = %org, kind = stored.kind.as_str(), "single sign-on configured");
        Ok(self.view_of(&stored, &sealed))
    }

    /// Removes single sign-on (Administrators): password sign-in works again for everyone.
    pub async fn delete_sso_config(&self, caller: &Caller) -> Result<(), AppError> {
        self.authorize_in_organization(caller, Action::UpdateSettings)?;
        let org = caller.organization();
        let mut conn = self.store.read().await?;
        let before = sso::get(&mut conn, org).await?;
        drop(conn);
        let Some(before) = before else {
            return Err(AppError::NotFound("single sign-on"));
        };
        let sealed = self.open_sso_settings(&before).await?;
        let event = configured_event(caller, org, Some((&before, &sealed)), None, false);
        let mut tx = self.store.write().await?;
        sso::delete(&mut tx, org).await?;
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    fn check_oidc_input(&self, oidc: &OidcConfigInput) -> Result<SealedOidc, AppError> {
        let issuer = oidc.issuer.trim();
        if issuer.is_empty() || issuer.len() > 2048 {
            return Err(invalid(
                "oidc.issuer",
                "an https URL of at most 2048 characters",
            ));
        }
        lockstep_sso::oidc::Issuer::parse(issuer).map_err(oidc_invalid)?;
        let client_id = oidc.client_id.trim();
        if client_id.is_empty() || client_id.len() > 512 {
            return Err(invalid("oidc.client_id", "1 to 512 characters"));
        }
        let mut scopes: Vec<String> = vec!["openid".to_owned()];
        for scope in &oidc.scopes {
            let scope = scope.trim();
            if scope.is_empty() {
                continue;
            }
            if scope.len() > 128
                || !scope
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
            {
                return Err(invalid(
                    "oidc.scopes",
                    "each scope is printable ASCII without spaces",
                ));
            }
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
        if scopes.len() == 1 {
            scopes.push("email".to_owned());
            scopes.push("profile".to_owned());
        }
        let email_claim = oidc
            .email_claim
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .unwrap_or("email");
        if email_claim.len() > 128 {
            return Err(invalid("oidc.email_claim", "at most 128 characters"));
        }
        Ok(SealedOidc {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            scopes,
            email_claim: email_claim.to_owned(),
        })
    }

    /// Starts a member's sign-in at the organization's identity provider (public: the
    /// organization's sign-in link). An organization without enabled single sign-on is 404.
    pub async fn sso_start(&self, org: OrganizationId) -> Result<SsoStarted, AppError> {
        self.start_sign_in(org, None).await
    }

    /// Starts an Administrator's test sign-in: it works before single sign-on is enabled and
    /// signs nobody in; the answer shows what the provider sent.
    pub async fn sso_test_start(&self, caller: &Caller) -> Result<SsoStarted, AppError> {
        self.authorize_in_organization(caller, Action::UpdateSettings)?;
        self.start_sign_in(caller.organization(), Some(caller.user()))
            .await
    }

    /// The organization whose identity provider an address's domain leads to, if any has
    /// enabled single sign-on for it.
    pub async fn sso_organization_for_email(
        &self,
        email: &str,
    ) -> Result<Option<OrganizationId>, AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        let Ok(email) = EmailAddress::parse(email.trim()) else {
            return Ok(None);
        };
        let Some((_, domain)) = email.as_str().rsplit_once('@') else {
            return Ok(None);
        };
        let index = self.domain_index(domain)?;
        let mut conn = self.store.read().await?;
        let Some(org) = sso::organization_of_domain(&mut conn, &index).await? else {
            return Ok(None);
        };
        let enabled = sso::get(&mut conn, org).await?.is_some_and(|c| c.enabled);
        Ok(enabled.then_some(org))
    }

    async fn start_sign_in(
        &self,
        org: OrganizationId,
        tested_by: Option<UserId>,
    ) -> Result<SsoStarted, AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        let now = self.clock.now();
        let mut conn = self.store.read().await?;
        let config = sso::get(&mut conn, org).await?;
        drop(conn);
        let Some(config) = config.filter(|c| c.enabled || tested_by.is_some()) else {
            return Err(AppError::NotFound("single sign-on"));
        };
        let sealed = self.open_sso_settings(&config).await?;
        let (redirect_url, lookup, secrets) = match (config.kind, &sealed.oidc, &sealed.saml) {
            (SsoKind::Oidc, Some(oidc), _) => {
                let secret = self
                    .open_client_secret(&config)
                    .await?
                    .ok_or(AppError::Refused(
                        "the OpenID Connect client secret is missing",
                    ))?;
                let (provider, settings) =
                    self.discover_oidc(oidc, &secret)
                        .await
                        .map_err(|_| AppError::Connector {
                            kind: lockstep_connectors::FailureKind::Other,
                            message: "the identity provider could not be reached".to_owned(),
                        })?;
                let (url, pending) =
                    lockstep_sso::oidc::begin(&provider, &settings, &self.oidc_redirect_url()?)
                        .map_err(|_| AppError::Refused("cannot build the sign-in request"))?;
                let lookup = sha256(pending.state());
                (
                    url.to_string(),
                    lookup,
                    PendingSecrets {
                        oidc: Some([
                            pending.state().to_owned(),
                            pending.nonce().to_owned(),
                            pending.pkce_verifier().to_owned(),
                        ]),
                        saml_request_id: None,
                    },
                )
            }
            (SsoKind::Saml, _, Some(saml)) => {
                let idp = lockstep_sso::saml::IdpMetadata::parse(&saml.idp_metadata_xml)
                    .map_err(|_| AppError::Refused("the stored IdP metadata no longer reads"))?;
                let sp = self.saml_service_provider(org);
                let lockstep_sso::saml::AuthnRedirect {
                    redirect_url,
                    request_id,
                } = lockstep_sso::saml::begin(&idp, &sp, None, now, &mut rand::rng());
                let lookup = sha256(&request_id);
                (
                    redirect_url.to_string(),
                    lookup,
                    PendingSecrets {
                        oidc: None,
                        saml_request_id: Some(request_id),
                    },
                )
            }
            _ => {
                return Err(AppError::Refused(
                    "the single sign-on settings are incomplete",
                ));
            }
        };
        let secrets_json = Zeroizing::new(
            serde_json::to_vec(&secrets)
                .map_err(|_| AppError::Refused("cannot keep the request"))?,
        );
        let pending = self
            .seal_field(
                org,
                "sso_request",
                &hex::encode(lookup),
                "pending",
                &secrets_json,
            )
            .await?;
        let binding = SecretToken::generate("lsb", &mut rand::rng());
        let row = PendingSignIn {
            lookup_hash: lookup,
            organization_id: org,
            kind: config.kind,
            binding_hash: binding.hash(),
            pending,
            tested_by,
            created_at: now,
            expires_at: now + SSO_REQUEST_VALIDITY,
        };
        let mut tx = self.store.write().await?;
        sso::delete_expired(&mut tx, now).await?;
        sso::insert_request(&mut tx, &row).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(SsoStarted {
            redirect_url,
            binding,
        })
    }

    /// The OpenID Connect provider's answer (`GET /api/v1/sso/oidc/callback`).
    pub async fn sso_oidc_callback(&self, callback: OidcCallback) -> Result<SsoOutcome, AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        let now = self.clock.now();
        let Some(state) = callback
            .state
            .as_deref()
            .filter(|s| !s.is_empty() && s.len() <= 512)
        else {
            return Err(AppError::SsoRefused(RefusalReason::UnknownRequest));
        };
        let mut tx = self.store.write().await?;
        let pending = sso::take_request(&mut tx, &sha256(state)).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let Some(pending) = pending.filter(|p| p.kind == SsoKind::Oidc) else {
            tracing::warn!("OIDC answer with an unknown or used state refused");
            return Err(AppError::SsoRefused(RefusalReason::UnknownRequest));
        };
        let org = pending.organization_id;
        if let Err(reason) = check_pending(&pending, callback.binding.as_ref(), now) {
            return self
                .refuse(
                    org,
                    pending.tested_by,
                    Refused::new(reason, "binding or age"),
                )
                .await;
        }
        if callback.error.is_some() {
            return self
                .refuse(
                    org,
                    pending.tested_by,
                    Refused::new(RefusalReason::Denied, "the provider answered an error"),
                )
                .await;
        }
        let Some(code) = callback.code.filter(|c| !c.is_empty() && c.len() <= 4096) else {
            return self
                .refuse(
                    org,
                    pending.tested_by,
                    Refused::new(RefusalReason::Malformed, "no code"),
                )
                .await;
        };
        let secrets = self.open_pending(&pending).await?;
        let config = self.sso_config_for_answer(&pending).await?;
        let sealed = self.open_sso_settings(&config).await?;
        let (Some(oidc), Some([p_state, p_nonce, p_verifier])) = (&sealed.oidc, &secrets.oidc)
        else {
            return self
                .refuse(
                    org,
                    pending.tested_by,
                    Refused::new(RefusalReason::UnknownRequest, "provider changed"),
                )
                .await;
        };
        let secret = self
            .open_client_secret(&config)
            .await?
            .ok_or(AppError::Refused(
                "the OpenID Connect client secret is missing",
            ))?;
        let (provider, settings) = match self.discover_oidc(oidc, &secret).await {
            Ok(found) => found,
            Err(_) => {
                return self
                    .refuse(
                        org,
                        pending.tested_by,
                        Refused::new(RefusalReason::Exchange, "discovery failed"),
                    )
                    .await;
            }
        };
        let pending_oidc = lockstep_sso::oidc::Pending::from_parts(
            p_state.clone(),
            p_nonce.clone(),
            p_verifier.clone(),
        );
        let identity = lockstep_sso::oidc::finish(
            &provider,
            &settings,
            &self.oidc_redirect_url()?,
            &pending_oidc,
            state,
            &code,
            now,
        )
        .await;
        match identity {
            Ok(identity) => {
                self.complete_sign_in(&config, identity, pending.tested_by)
                    .await
            }
            Err(refused) => self.refuse(org, pending.tested_by, refused).await,
        }
    }

    /// A SAML response posted to the organization's assertion consumer service. The assertion
    /// is checked first (signature, issuer, audience, recipient, time); then its id must be
    /// new, and it must answer a request this hub sent from this browser.
    pub async fn sso_saml_acs(
        &self,
        org: OrganizationId,
        post: SamlPost,
    ) -> Result<SsoOutcome, AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        let now = self.clock.now();
        let mut conn = self.store.read().await?;
        let config = sso::get(&mut conn, org).await?;
        drop(conn);
        let Some(config) = config.filter(|c| c.kind == SsoKind::Saml) else {
            return Err(AppError::NotFound("single sign-on"));
        };
        let sealed = self.open_sso_settings(&config).await?;
        let Some(saml) = &sealed.saml else {
            return Err(AppError::NotFound("single sign-on"));
        };
        let idp = lockstep_sso::saml::IdpMetadata::parse(&saml.idp_metadata_xml)
            .map_err(|_| AppError::Refused("the stored IdP metadata no longer reads"))?;
        let sp = self.saml_service_provider(org);
        let response = post.saml_response;
        let verified = tokio::task::spawn_blocking(move || {
            lockstep_sso::saml::verify_response(&idp, &sp, &response, now)
        })
        .await
        .map_err(|_| AppError::Refused("the SAML response could not be checked"))?;
        let assertion = match verified {
            Ok(assertion) => assertion,
            Err(refused) => return self.refuse(org, None, refused).await,
        };
        let mut tx = self.store.write().await?;
        let fresh = sso::remember_assertion(
            &mut tx,
            org,
            &sha256(&assertion.assertion_id),
            assertion.not_on_or_after.max(now + Duration::minutes(5)),
        )
        .await?;
        let pending = match &assertion.in_response_to {
            Some(id) if fresh => sso::take_request(&mut tx, &sha256(id)).await?,
            _ => None,
        };
        tx.commit().await.map_err(StoreError::from)?;
        if !fresh {
            return self
                .refuse(
                    org,
                    None,
                    Refused::new(RefusalReason::Replay, "assertion id seen before"),
                )
                .await;
        }
        let Some(pending) = pending.filter(|p| p.organization_id == org && p.kind == SsoKind::Saml)
        else {
            return self
                .refuse(
                    org,
                    None,
                    Refused::new(RefusalReason::UnknownRequest, "InResponseTo"),
                )
                .await;
        };
        if let Err(reason) = check_pending(&pending, post.binding.as_ref(), now) {
            return self
                .refuse(
                    org,
                    pending.tested_by,
                    Refused::new(reason, "binding or age"),
                )
                .await;
        }
        if !config.enabled && pending.tested_by.is_none() {
            return Err(AppError::NotFound("single sign-on"));
        }
        self.complete_sign_in(&config, assertion.identity, pending.tested_by)
            .await
    }

    async fn open_pending(&self, pending: &PendingSignIn) -> Result<PendingSecrets, AppError> {
        let org = pending.organization_id;
        let bytes = self
            .open_field(
                org,
                "sso_request",
                &hex::encode(pending.lookup_hash),
                "pending",
                &pending.pending,
            )
            .await?;
        serde_json::from_slice(&bytes)
            .map_err(|_| AppError::Vault(lockstep_vault::VaultError::Decrypt))
    }

    /// The configuration an answer is checked against: it must still be there (and enabled,
    /// unless this is a test sign-in).
    async fn sso_config_for_answer(
        &self,
        pending: &PendingSignIn,
    ) -> Result<StoredSsoConfig, AppError> {
        let mut conn = self.store.read().await?;
        let config = sso::get(&mut conn, pending.organization_id).await?;
        config
            .filter(|c| c.kind == pending.kind && (c.enabled || pending.tested_by.is_some()))
            .ok_or(AppError::NotFound("single sign-on"))
    }

    /// Records a refusal in the organization's audit (`sso.refused` with its reason code; a
    /// test sign-in also keeps it as the last test's result) and answers it.
    async fn refuse(
        &self,
        org: OrganizationId,
        tested_by: Option<UserId>,
        refused: Refused,
    ) -> Result<SsoOutcome, AppError> {
        let reason = refused.reason;
        tracing::warn!(organization = %org, reason = reason.code(), detail = %refused.detail,
            "single sign-on refused");
        let actor = tested_by.map_or(Actor::Anonymous, Actor::User);
        let event = Event::new(actor, "sso.refused", "organization", org)
            .change(
                "reason",
                FieldChange::value(None::<String>, Some(reason.code())),
            )
            .change(
                "test",
                FieldChange::value(None::<String>, Some(tested_by.is_some())),
            )
            .failed();
        let mut tx = self.store.write().await?;
        if tested_by.is_some() {
            sso::set_test_result(&mut tx, org, reason.code(), self.clock.now()).await?;
        }
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Err(AppError::SsoRefused(reason))
    }

    /// After every check of the provider's answer: the member with that verified address signs
    /// in (or is provisioned just in time); a test sign-in only says what would happen.
    async fn complete_sign_in(
        &self,
        config: &StoredSsoConfig,
        identity: VerifiedIdentity,
        tested_by: Option<UserId>,
    ) -> Result<SsoOutcome, AppError> {
        let org = config.organization_id;
        let now = self.clock.now();
        let email = identity
            .email
            .as_deref()
            .filter(|_| identity.email_verified)
            .and_then(|e| EmailAddress::parse(e.trim()).ok());
        let existing = match &email {
            Some(email) => {
                let index = self.email_index(email)?;
                let mut conn = self.store.read().await?;
                users::find_in_organization_by_email_index(&mut conn, org, &index).await?
            }
            None => None,
        };
        let verdict = match (&email, &existing) {
            (None, _) => Err(RefusalReason::Email),
            (Some(_), Some(user)) if user.status == UserStatus::Active => Ok(false),
            (Some(_), Some(_)) => Err(RefusalReason::UnknownUser),
            (Some(_), None) if config.jit_enabled => Ok(true),
            (Some(_), None) => Err(RefusalReason::UnknownUser),
        };
        if let Some(admin) = tested_by {
            let outcome = match verdict {
                Ok(false) => "sign_in".to_owned(),
                Ok(true) => "provision".to_owned(),
                Err(reason) => reason.code().to_owned(),
            };
            let result = if verdict.is_ok() {
                "ok"
            } else {
                outcome.as_str()
            };
            let event = Event::new(Actor::User(admin), "sso.tested", "organization", org).change(
                "outcome",
                FieldChange::value(None::<String>, Some(&outcome)),
            );
            let mut tx = self.store.write().await?;
            sso::set_test_result(&mut tx, org, result, now).await?;
            self.record(&mut tx, org, event).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(SsoOutcome::Tested(SsoTestResult {
                organization: org,
                subject: identity.subject,
                email: identity.email,
                email_verified: identity.email_verified,
                attributes: identity.attributes,
                outcome,
            }));
        }
        let provision = match verdict {
            Ok(provision) => provision,
            Err(reason) => {
                return self
                    .refuse(org, None, Refused::new(reason, "no member matches"))
                    .await;
            }
        };
        let mut tx = self.store.write().await?;
        let user = match (existing, email) {
            (Some(user), _) if !provision => user,
            (_, Some(email)) => {
                let user = self
                    .provisioned_user(org, &email, &identity, config.jit_role, now)
                    .await?;
                users::insert(&mut tx, &user).await?;
                let event = Event::new(Actor::User(user.id), "user.created", "user", user.id)
                    .change("role", FieldChange::value(None::<String>, Some(user.role)))
                    .change(
                        "provisioned_by",
                        FieldChange::value(None::<String>, Some("sso")),
                    );
                self.record(&mut tx, org, event).await?;
                user
            }
            _ => return Err(AppError::SsoRefused(RefusalReason::Email)),
        };
        let success = self.new_session(&mut tx, &user, now).await?;
        let event = Event::new(Actor::User(user.id), "sso.signed_in", "user", user.id).change(
            "method",
            FieldChange::value(None::<String>, Some(config.kind.as_str())),
        );
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(user = %user.id, organization = %org, "signed in with single sign-on");
        Ok(SsoOutcome::SignedIn(success))
    }

    /// A member created just in time: the address and name the provider vouched for, and a
    /// password nobody knows (a password reset gives them one where passwords are allowed).
    async fn provisioned_user(
        &self,
        org: OrganizationId,
        email: &EmailAddress,
        identity: &VerifiedIdentity,
        role: Role,
        now: OffsetDateTime,
    ) -> Result<StoredUser, AppError> {
        let name = ["name", "displayName", "cn", "given_name"]
            .iter()
            .find_map(|key| identity.attributes.get(*key).and_then(|v| v.first()))
            .and_then(|name| crate::personal::parse_display_name(name).ok())
            .or_else(|| {
                email
                    .as_str()
                    .split('@')
                    .next()
                    .and_then(|local| crate::personal::parse_display_name(local).ok())
            })
            .unwrap_or_else(|| "Member".to_owned());
        let unknown = {
            let token = SecretToken::generate("lsp", &mut rand::rng());
            Password::new(token.expose().to_owned())
        };
        let hash = self.hasher.hash(&unknown).await?;
        let id = UserId::from_uuid(Uuid::now_v7());
        let user_id = id.to_string();
        Ok(StoredUser {
            id,
            organization_id: org,
            email_index: self.email_index(email)?,
            email_ciphertext: self
                .seal_field(org, "user", &user_id, "email", email.as_str().as_bytes())
                .await?,
            display_name_ciphertext: self
                .seal_field(org, "user", &user_id, "display_name", name.as_bytes())
                .await?,
            role,
            status: UserStatus::Active,
            password_hash: hash.as_str().to_owned(),
            failed_logins: 0,
            locked_until: None,
            totp_secret_ciphertext: None,
            totp_enabled: false,
            totp_last_step: None,
            created_at: now,
        })
    }

    /// Whether the organization refuses this account's password sign-in (SSO only, and it is
    /// not the break-glass Administrator with TOTP).
    pub(crate) async fn password_refused_by_sso(
        &self,
        user: &StoredUser,
    ) -> Result<bool, AppError> {
        let mut conn = self.store.read().await?;
        let config = sso::get(&mut conn, user.organization_id).await?;
        Ok(config.is_some_and(|c| {
            c.enabled
                && c.sso_only
                && !(c.break_glass_user_id == Some(user.id) && user.totp_enabled)
        }))
    }

    fn oidc_redirect_url(&self) -> Result<url::Url, AppError> {
        url::Url::parse(&self.sso_oidc_redirect_uri())
            .map_err(|_| AppError::Refused("the hub's public URL is not a URL"))
    }

    /// Runs discovery for these settings through the egress policy.
    async fn discover_oidc(
        &self,
        oidc: &SealedOidc,
        secret: &Zeroizing<String>,
    ) -> Result<
        (
            lockstep_sso::oidc::Provider,
            lockstep_sso::oidc::OidcSettings,
        ),
        AppError,
    > {
        let issuer = lockstep_sso::oidc::Issuer::parse(&oidc.issuer).map_err(oidc_invalid)?;
        let mut settings = lockstep_sso::oidc::OidcSettings::new(
            issuer,
            oidc.client_id.clone(),
            Some(lockstep_connectors::Secret::new(secret.to_string())),
        );
        settings.scopes = oidc.scopes.clone();
        settings.email_claim = oidc.email_claim.clone();
        settings.check().map_err(oidc_invalid)?;
        let provider = lockstep_sso::oidc::discover(&self.options.connectors, &settings)
            .await
            .map_err(oidc_invalid)?;
        Ok((provider, settings))
    }
}

/// An OpenID Connect problem as the field of the settings it concerns.
fn oidc_invalid(err: lockstep_sso::oidc::OidcError) -> AppError {
    let field = match err.field() {
        "client_id" => "oidc.client_id",
        "client_secret" => "oidc.client_secret",
        "scopes" => "oidc.scopes",
        "email_claim" => "oidc.email_claim",
        _ => "oidc.issuer",
    };
    invalid(field, err.to_string())
}

fn check_pending(
    pending: &PendingSignIn,
    binding: Option<&SecretToken>,
    now: OffsetDateTime,
) -> Result<(), RefusalReason> {
    let bound = binding.is_some_and(|b| hashes_equal(&b.hash(), &pending.binding_hash));
    if !bound {
        return Err(RefusalReason::UnknownRequest);
    }
    if pending.expires_at < now {
        return Err(RefusalReason::Expired);
    }
    Ok(())
}

fn same_provider(before: Option<&SealedSettings>, after: &SealedSettings) -> bool {
    let Some(before) = before else {
        return false;
    };
    let oidc = |s: &SealedSettings| {
        s.oidc
            .as_ref()
            .map(|o| (o.issuer.clone(), o.client_id.clone()))
    };
    let saml = |s: &SealedSettings| s.saml.as_ref().map(|x| x.idp_metadata_xml.clone());
    oidc(before) == oidc(after) && saml(before) == saml(after)
}

/// `sso.configured`: the settings before and after, never the secret (only that it changed).
fn configured_event(
    caller: &Caller,
    org: OrganizationId,
    before: Option<(&StoredSsoConfig, &SealedSettings)>,
    after: Option<(&StoredSsoConfig, &SealedSettings)>,
    secret_changed: bool,
) -> Event {
    type Pick = fn(&StoredSsoConfig, &SealedSettings) -> Option<String>;
    let fields: [(&'static str, Pick); 10] = [
        ("kind", |c, _| Some(c.kind.as_str().to_owned())),
        ("enabled", |c, _| Some(c.enabled.to_string())),
        ("sso_only", |c, _| Some(c.sso_only.to_string())),
        ("jit_enabled", |c, _| Some(c.jit_enabled.to_string())),
        ("jit_role", |c, _| Some(c.jit_role.to_string())),
        ("break_glass_user_id", |c, _| {
            c.break_glass_user_id.map(|id| id.to_string())
        }),
        ("domains", |_, s| Some(s.domains.join(","))),
        ("oidc_issuer", |_, s| {
            s.oidc.as_ref().map(|o| o.issuer.clone())
        }),
        ("oidc_client_id", |_, s| {
            s.oidc.as_ref().map(|o| o.client_id.clone())
        }),
        ("saml_metadata_sha256", |_, s| {
            s.saml
                .as_ref()
                .map(|x| hex::encode(sha256(&x.idp_metadata_xml)))
        }),
    ];
    let mut event = Event::new(caller.actor(), "sso.configured", "organization", org);
    for (field, pick) in fields {
        let old = before.and_then(|(c, s)| pick(c, s));
        let new = after.and_then(|(c, s)| pick(c, s));
        if old != new {
            event = event.change(field, FieldChange::value(old, new));
        }
    }
    if secret_changed {
        event = event.change("oidc_client_secret", FieldChange::secret());
    }
    event
}
