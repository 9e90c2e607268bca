//! Passkeys (WebAuthn through webauthn-rs): a member registers, lists, renames and removes them;
//! a passkey is a second factor after the password (instead of a TOTP code) or signs in on its
//! own. The relying party is the host of the hub's public URL. Ceremonies in progress (the
//! challenge and webauthn-rs's state) are kept in [`Ceremonies`], in this process's memory, for
//! five minutes, taken out by their first use; the credentials are stored sealed under the
//! organization's key.

use crate::audit::{Actor, Event, FieldChange};
use crate::identity::{Caller, LoginSuccess};
use crate::{AppError, Hub};
use lockstep_auth::{LoginFailures, SecretToken};
use lockstep_domain::{OrganizationId, PasskeyId, UserId};
use lockstep_policy::Action;
use lockstep_storage::passkeys::{self, StoredPasskey};
use lockstep_storage::users::{self, StoredUser, UserStatus};
use lockstep_storage::{Connection, StoreError};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};

/// How long a ceremony (a registration, a sign-in, the second step of a password sign-in) may
/// take from its start.
pub const CEREMONY_VALIDITY: Duration = Duration::minutes(5);
/// At most this many ceremonies are pending at once in one process; more are refused until
/// some end or expire (anonymous sign-ins start them, so they are bounded).
pub const MAX_CEREMONIES: usize = 10_000;
/// A member may register at most this many passkeys.
pub const MAX_PASSKEYS_PER_MEMBER: usize = 20;
/// Wrong passkey answers a pending password sign-in takes before it must start again.
const MAX_SECOND_FACTOR_ATTEMPTS: u8 = 3;

/// What a member sees of one of their passkeys.
#[derive(Debug, Clone)]
pub struct PasskeyView {
    pub id: PasskeyId,
    pub name: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

/// A ceremony started: its handle (sent back with the authenticator's answer) and the options
/// for the browser's `navigator.credentials.create` / `get` (`{"publicKey": …}`).
#[derive(Debug)]
pub struct PasskeyChallenge {
    pub ceremony: SecretToken,
    pub options: serde_json::Value,
}

/// A password sign-in that needs its second step: which factors the account has, and (when it
/// has a passkey) the handle of the pending sign-in, for [`Hub::start_passkey_second_factor`].
#[derive(Debug)]
pub struct SecondFactorPending {
    pub totp: bool,
    pub passkey: bool,
    /// The pending sign-in, held by the hub for [`CEREMONY_VALIDITY`]; `None` without a passkey.
    pub pending: Option<SecretToken>,
}

enum Ceremony {
    Registration {
        org: OrganizationId,
        user: UserId,
        name: String,
        state: Box<PasskeyRegistration>,
    },
    /// The password was right; a passkey must follow (`state` once its challenge was asked for).
    SecondFactor {
        org: OrganizationId,
        user: UserId,
        failures: u8,
        state: Option<Box<PasskeyAuthentication>>,
    },
    SignIn {
        state: Box<DiscoverableAuthentication>,
    },
}

struct Pending {
    ceremony: Ceremony,
    expires_at: OffsetDateTime,
}

/// Ceremonies in progress, by the SHA-256 of their handle. Emptied when the hub seals.
#[derive(Default)]
pub(crate) struct Ceremonies(Mutex<HashMap<[u8; 32], Pending>>);

impl std::fmt::Debug for Ceremonies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ceremonies")
            .field("pending", &self.lock().len())
            .finish()
    }
}

impl Ceremonies {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Pending>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn start(&self, ceremony: Ceremony, now: OffsetDateTime) -> Result<SecretToken, AppError> {
        let token = SecretToken::generate("lsk", &mut rand::rng());
        let mut pending = self.lock();
        if pending.len() >= MAX_CEREMONIES {
            pending.retain(|_, p| p.expires_at > now);
            if pending.len() >= MAX_CEREMONIES {
                return Err(AppError::Refused(
                    "too many passkey ceremonies are in progress: try again in a few minutes",
                ));
            }
        }
        pending.insert(
            token.hash(),
            Pending {
                ceremony,
                expires_at: now + CEREMONY_VALIDITY,
            },
        );
        Ok(token)
    }

    /// Takes the ceremony out (a handle works once); `None` when unknown or expired.
    fn take(&self, handle: &str, now: OffsetDateTime) -> Option<(Ceremony, OffsetDateTime)> {
        let hash = SecretToken::from_text(handle.trim()).hash();
        let pending = self.lock().remove(&hash)?;
        (pending.expires_at > now).then_some((pending.ceremony, pending.expires_at))
    }

    fn put_back(&self, handle: &str, ceremony: Ceremony, expires_at: OffsetDateTime) {
        let hash = SecretToken::from_text(handle.trim()).hash();
        self.lock().insert(
            hash,
            Pending {
                ceremony,
                expires_at,
            },
        );
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

/// The relying party for a public URL: its host is the relying party id, its origin the only
/// origin accepted. `None` for an address that names no host (an IP address: WebAuthn binds
/// credentials to a domain, and browsers and webauthn-rs refuse IP addresses).
pub(crate) fn relying_party(public_url: &str) -> Option<Webauthn> {
    let url = Url::parse(public_url).ok()?;
    let host = url.domain()?.to_owned();
    let origin = Url::parse(&url.origin().ascii_serialization()).ok()?;
    WebauthnBuilder::new(&host, &origin)
        .ok()?
        .rp_name("Lockstep")
        .build()
        .ok()
}

fn credential_hash(credential_id: &[u8]) -> [u8; 32] {
    Sha256::digest(credential_id).into()
}

fn passkey_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::Invalid {
            field: "name",
            reason: "must be 1 to 100 characters without control characters".to_owned(),
        });
    }
    Ok(name.to_owned())
}

fn refused() -> AppError {
    AppError::PasskeyRefused
}

impl Hub {
    /// Whether passkeys can be used on this hub (its public URL names a host).
    pub fn passkeys_available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn relying_party(&self) -> Result<&Webauthn, AppError> {
        self.webauthn.as_deref().ok_or(AppError::Refused(
            "passkeys need the hub's public URL to name a host (--public-url https://hub.example.com), not an IP address",
        ))
    }

    /// Starts registering a passkey named `name` for the caller (a signed-in member).
    pub async fn start_passkey_registration(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<PasskeyChallenge, AppError> {
        self.authorize_own(caller, Action::ManageOwnCredentials)?;
        let name = passkey_name(name)?;
        let rp = self.relying_party()?;
        let existing = self
            .member_passkeys(caller.organization(), caller.user())
            .await?;
        if existing.len() >= MAX_PASSKEYS_PER_MEMBER {
            return Err(AppError::Refused(
                "you have as many passkeys as a member may have: remove one first",
            ));
        }
        let exclude = existing
            .iter()
            .map(|(_, passkey)| passkey.cred_id().clone())
            .collect();
        let user = self.own_stored_user(caller).await?;
        let (email, display_name) = self.open_profile(&user).await?;
        let (options, state) = rp
            .start_passkey_registration(
                *caller.user().as_uuid(),
                &email,
                &display_name,
                Some(exclude),
            )
            .map_err(|err| {
                tracing::warn!(error = %err, "passkey registration could not start");
                AppError::Refused("the passkey registration could not start")
            })?;
        let mut options = serde_json::to_value(options).map_err(|_| refused())?;
        // A passkey is discoverable: it can sign in without a password.
        if let Some(selection) = options
            .get_mut("publicKey")
            .and_then(|o| o.get_mut("authenticatorSelection"))
            .and_then(serde_json::Value::as_object_mut)
        {
            selection.insert("residentKey".into(), "required".into());
            selection.insert("requireResidentKey".into(), true.into());
        }
        let ceremony = self.passkey_ceremonies.start(
            Ceremony::Registration {
                org: caller.organization(),
                user: caller.user(),
                name,
                state: Box::new(state),
            },
            self.clock.now(),
        )?;
        Ok(PasskeyChallenge { ceremony, options })
    }

    /// Finishes a registration with the authenticator's answer (the browser's
    /// `PublicKeyCredential` as JSON); stores the passkey and audits `passkey.registered`.
    pub async fn finish_passkey_registration(
        &self,
        caller: &Caller,
        ceremony: &str,
        credential: serde_json::Value,
    ) -> Result<PasskeyView, AppError> {
        self.authorize_own(caller, Action::ManageOwnCredentials)?;
        let rp = self.relying_party()?;
        let now = self.clock.now();
        let gone = || AppError::NotFound("passkey registration (or it expired or was used)");
        let Some((
            Ceremony::Registration {
                org,
                user,
                name,
                state,
            },
            _,
        )) = self.passkey_ceremonies.take(ceremony, now)
        else {
            return Err(gone());
        };
        if org != caller.organization() || user != caller.user() {
            return Err(gone());
        }
        let answer: RegisterPublicKeyCredential =
            serde_json::from_value(credential).map_err(|_| AppError::Invalid {
                field: "credential",
                reason: "is not a WebAuthn registration answer".to_owned(),
            })?;
        let passkey = rp
            .finish_passkey_registration(&answer, &state)
            .map_err(|err| {
                tracing::info!(error = %err, user = %user, "passkey registration refused");
                AppError::Invalid {
                    field: "credential",
                    reason:
                        "was refused: the authenticator's answer does not fit this registration"
                            .to_owned(),
                }
            })?;
        let id = PasskeyId::from_uuid(Uuid::now_v7());
        let stored = StoredPasskey {
            id,
            organization_id: org,
            user_id: user,
            credential_hash: credential_hash(passkey.cred_id().as_slice()),
            name_ciphertext: self
                .seal_passkey_field(org, id, "name", name.as_bytes())
                .await?,
            credential_ciphertext: self.seal_credential(org, id, &passkey).await?,
            created_at: now,
            last_used_at: None,
        };
        let mut tx = self.store.write().await?;
        passkeys::insert(&mut tx, &stored).await?;
        let event = Event::new(Actor::User(user), "passkey.registered", "passkey", id)
            .change("name", FieldChange::value(None::<String>, Some(&name)))
            .change("credential", FieldChange::secret());
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(user = %user, passkey = %id, "passkey registered");
        Ok(PasskeyView {
            id,
            name,
            created_at: now,
            last_used_at: None,
        })
    }

    /// The caller's passkeys, oldest first.
    pub async fn list_passkeys(&self, caller: &Caller) -> Result<Vec<PasskeyView>, AppError> {
        self.authorize_own(caller, Action::ReadOwnAccount)?;
        let mut conn = self.store.read().await?;
        let stored =
            passkeys::list_for_user(&mut conn, caller.organization(), caller.user()).await?;
        drop(conn);
        let mut views = Vec::with_capacity(stored.len());
        for p in stored {
            let name = self.open_passkey_name(&p).await?;
            views.push(PasskeyView {
                id: p.id,
                name,
                created_at: p.created_at,
                last_used_at: p.last_used_at,
            });
        }
        Ok(views)
    }

    /// Renames one of the caller's passkeys.
    pub async fn rename_passkey(
        &self,
        caller: &Caller,
        id: PasskeyId,
        name: &str,
    ) -> Result<(), AppError> {
        self.authorize_own(caller, Action::ManageOwnCredentials)?;
        let name = passkey_name(name)?;
        let (org, user) = (caller.organization(), caller.user());
        let sealed = self
            .seal_passkey_field(org, id, "name", name.as_bytes())
            .await?;
        let mut tx = self.store.write().await?;
        if !passkeys::rename(&mut tx, org, user, id, &sealed).await? {
            return Err(AppError::NotFound("passkey"));
        }
        let event = Event::new(Actor::User(user), "passkey.renamed", "passkey", id)
            .change("name", FieldChange::value(None::<String>, Some(&name)));
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Removes one of the caller's passkeys: it stops working at once (every sign-in reads the
    /// stored passkeys when it finishes).
    pub async fn remove_passkey(&self, caller: &Caller, id: PasskeyId) -> Result<(), AppError> {
        self.authorize_own(caller, Action::ManageOwnCredentials)?;
        let (org, user) = (caller.organization(), caller.user());
        let mut tx = self.store.write().await?;
        if !passkeys::delete(&mut tx, org, user, id).await? {
            return Err(AppError::NotFound("passkey"));
        }
        let event = Event::new(Actor::User(user), "passkey.removed", "passkey", id);
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(user = %user, passkey = %id, "passkey removed");
        Ok(())
    }

    /// Whether a member has a passkey (0 on a hub where passkeys cannot be used).
    pub(crate) async fn has_passkey(
        &self,
        conn: &mut Connection,
        org: OrganizationId,
        user: UserId,
    ) -> Result<bool, AppError> {
        if self.webauthn.is_none() {
            return Ok(false);
        }
        Ok(passkeys::count_for_user(conn, org, user).await? > 0)
    }

    /// Holds a password sign-in whose password was right until its passkey step (called by
    /// [`Hub::login_to`]).
    pub(crate) fn hold_second_factor(&self, user: &StoredUser) -> Result<SecretToken, AppError> {
        self.passkey_ceremonies.start(
            Ceremony::SecondFactor {
                org: user.organization_id,
                user: user.id,
                failures: 0,
                state: None,
            },
            self.clock.now(),
        )
    }

    /// The passkey challenge for a pending password sign-in (`pending` from
    /// [`SecondFactorPending`]); the same handle then finishes it.
    pub async fn start_passkey_second_factor(
        &self,
        pending: &str,
    ) -> Result<serde_json::Value, AppError> {
        self.ensure_unsealed()?;
        let rp = self.relying_party()?;
        let now = self.clock.now();
        let Some((
            Ceremony::SecondFactor {
                org,
                user,
                failures,
                state: _,
            },
            expires_at,
        )) = self.passkey_ceremonies.take(pending, now)
        else {
            return Err(refused());
        };
        let keys: Vec<Passkey> = self
            .member_passkeys(org, user)
            .await?
            .into_iter()
            .map(|(_, passkey)| passkey)
            .collect();
        if keys.is_empty() {
            return Err(refused());
        }
        let (options, state) = rp.start_passkey_authentication(&keys).map_err(|err| {
            tracing::warn!(error = %err, "passkey challenge could not start");
            refused()
        })?;
        let options = serde_json::to_value(options).map_err(|_| refused())?;
        self.passkey_ceremonies.put_back(
            pending,
            Ceremony::SecondFactor {
                org,
                user,
                failures,
                state: Some(Box::new(state)),
            },
            expires_at,
        );
        Ok(options)
    }

    /// Finishes a pending password sign-in with the passkey's answer: a session, as after a
    /// TOTP code. A wrong answer counts as a failed sign-in; after three the sign-in must start
    /// again.
    pub async fn finish_passkey_second_factor(
        &self,
        pending: &str,
        credential: serde_json::Value,
    ) -> Result<LoginSuccess, AppError> {
        self.ensure_unsealed()?;
        let rp = self.relying_party()?;
        let now = self.clock.now();
        let Some((
            Ceremony::SecondFactor {
                org,
                user,
                failures,
                state: Some(state),
            },
            expires_at,
        )) = self.passkey_ceremonies.take(pending, now)
        else {
            return Err(refused());
        };
        let answer: Option<PublicKeyCredential> = serde_json::from_value(credential).ok();
        let keys = self.member_passkeys(org, user).await?;
        let verified = answer.as_ref().and_then(|answer| {
            let result = rp.finish_passkey_authentication(answer, &state);
            if let Err(err) = &result {
                tracing::info!(error = %err, user = %user, "passkey answer refused");
            }
            let result = result.ok()?;
            keys.into_iter()
                .find(|(_, key)| key.cred_id() == result.cred_id())
                .map(|(id, key)| (id, key, result))
        });
        let Some((id, mut key, result)) = verified else {
            self.record_failure(crate::jobs::SignInFailure {
                organization: org,
                user,
                at: now,
            })
            .await?;
            if failures + 1 < MAX_SECOND_FACTOR_ATTEMPTS {
                self.passkey_ceremonies.put_back(
                    pending,
                    Ceremony::SecondFactor {
                        org,
                        user,
                        failures: failures + 1,
                        state: None,
                    },
                    expires_at,
                );
            }
            return Err(refused());
        };
        let updated = key.update_credential(&result) == Some(true);
        self.passkey_session(org, user, id, updated.then_some(&key), "password_passkey")
            .await
    }

    /// Starts a sign-in without a password: a challenge any passkey of this hub may answer.
    pub async fn start_passkey_sign_in(&self) -> Result<PasskeyChallenge, AppError> {
        self.ensure_unsealed()?;
        let rp = self.relying_party()?;
        let (options, state) = rp.start_discoverable_authentication().map_err(|err| {
            tracing::warn!(error = %err, "passkey sign-in could not start");
            refused()
        })?;
        let mut options = serde_json::to_value(options).map_err(|_| refused())?;
        // A button asks for it: the browser shows its own dialog (webauthn-rs proposes
        // conditional mediation, the autofill form of it).
        if let Some(options) = options.as_object_mut() {
            options.remove("mediation");
        }
        let ceremony = self.passkey_ceremonies.start(
            Ceremony::SignIn {
                state: Box::new(state),
            },
            self.clock.now(),
        )?;
        Ok(PasskeyChallenge { ceremony, options })
    }

    /// Finishes a sign-in without a password: the passkey is found by its credential id (and
    /// must belong to the user the authenticator names, when it names one); its member must be
    /// active and not locked. A session, audited as `user.signed_in` with `method: passkey`.
    pub async fn finish_passkey_sign_in(
        &self,
        ceremony: &str,
        credential: serde_json::Value,
    ) -> Result<LoginSuccess, AppError> {
        self.ensure_unsealed()?;
        let rp = self.relying_party()?;
        let now = self.clock.now();
        let Some((Ceremony::SignIn { state }, _)) = self.passkey_ceremonies.take(ceremony, now)
        else {
            return Err(refused());
        };
        let answer: PublicKeyCredential =
            serde_json::from_value(credential).map_err(|_| refused())?;
        let mut conn = self.store.read().await?;
        let stored = passkeys::find_by_credential_hash(
            &mut conn,
            &credential_hash(answer.get_credential_id()),
        )
        .await?;
        drop(conn);
        let Some(stored) = stored else {
            return Err(refused());
        };
        if let Some(handle) = answer.get_user_unique_id()
            && handle != stored.user_id.as_bytes()
        {
            return Err(refused());
        }
        let mut key = self.open_credential(&stored).await?;
        let result = rp
            .finish_discoverable_authentication_v2(&answer, *state, &key)
            .map_err(|err| {
                tracing::info!(error = %err, user = %stored.user_id, "passkey sign-in refused");
                refused()
            })?;
        let updated = key.update_credential(&result) == Some(true);
        self.passkey_session(
            stored.organization_id,
            stored.user_id,
            stored.id,
            updated.then_some(&key),
            "passkey",
        )
        .await
    }

    /// The session of a sign-in whose passkey answered: the member must still be active and not
    /// locked, and the passkey still stored; its counter is saved; `user.signed_in` audited.
    async fn passkey_session(
        &self,
        org: OrganizationId,
        user_id: UserId,
        passkey: PasskeyId,
        updated: Option<&Passkey>,
        method: &str,
    ) -> Result<LoginSuccess, AppError> {
        let now = self.clock.now();
        let credential = match updated {
            Some(key) => Some(self.seal_credential(org, passkey, key).await?),
            None => None,
        };
        // An organization that signs in with single sign-on only refuses passkeys too (but for
        // its break-glass Administrator).
        let mut conn = self.store.read().await?;
        let member = users::get(&mut conn, org, user_id).await?;
        drop(conn);
        if let Some(member) = &member
            && self.password_refused_by_sso(member).await?
        {
            return Err(AppError::SsoRequired);
        }
        let mut tx = self.store.write().await?;
        let Some(user) = users::get(&mut tx, org, user_id).await? else {
            return Err(refused());
        };
        let policy = self.options.lockout;
        let failures = LoginFailures {
            count: user.failed_logins,
            locked_until: user.locked_until,
        };
        if user.status != UserStatus::Active || policy.is_locked(&failures, now) {
            return Err(refused());
        }
        // After an incident response a passkey does not sign in either until the password is
        // reset.
        if users::must_reset_password(&mut tx, org, user_id).await? {
            return Err(AppError::PasswordResetRequired);
        }
        if !passkeys::record_use(&mut tx, org, user_id, passkey, credential.as_deref(), now).await?
        {
            return Err(refused());
        }
        let cleared = policy.after_success();
        users::set_login_failures(&mut tx, org, user_id, cleared.count, None, now).await?;
        let success = self.new_session(&mut tx, &user, now).await?;
        let event = Event::new(Actor::User(user_id), "user.signed_in", "user", user_id)
            .change("method", FieldChange::value(None::<String>, Some(method)))
            .change("passkey", FieldChange::value(None::<String>, Some(passkey)));
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(user = %user_id, organization = %org, method, "signed in");
        Ok(success)
    }

    fn ensure_unsealed(&self) -> Result<(), AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        Ok(())
    }

    async fn own_stored_user(&self, caller: &Caller) -> Result<StoredUser, AppError> {
        let mut conn = self.store.read().await?;
        users::get(&mut conn, caller.organization(), caller.user())
            .await?
            .ok_or(AppError::Unauthenticated)
    }

    /// A member's passkeys, opened.
    async fn member_passkeys(
        &self,
        org: OrganizationId,
        user: UserId,
    ) -> Result<Vec<(PasskeyId, Passkey)>, AppError> {
        let mut conn = self.store.read().await?;
        let stored = passkeys::list_for_user(&mut conn, org, user).await?;
        drop(conn);
        let mut keys = Vec::with_capacity(stored.len());
        for p in stored {
            keys.push((p.id, self.open_credential(&p).await?));
        }
        Ok(keys)
    }

    async fn seal_passkey_field(
        &self,
        org: OrganizationId,
        id: PasskeyId,
        field: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, AppError> {
        self.seal_field(org, "passkey", &id.to_string(), field, plaintext)
            .await
    }

    async fn seal_credential(
        &self,
        org: OrganizationId,
        id: PasskeyId,
        passkey: &Passkey,
    ) -> Result<Vec<u8>, AppError> {
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(passkey)
                .map_err(|_| AppError::Refused("the passkey could not be stored"))?,
        );
        self.seal_passkey_field(org, id, "credential", &json).await
    }

    async fn open_credential(&self, stored: &StoredPasskey) -> Result<Passkey, AppError> {
        let json = self
            .open_field(
                stored.organization_id,
                "passkey",
                &stored.id.to_string(),
                "credential",
                &stored.credential_ciphertext,
            )
            .await?;
        serde_json::from_slice(&json)
            .map_err(|_| AppError::Store(StoreError::Corrupt("passkey credential")))
    }

    async fn open_passkey_name(&self, stored: &StoredPasskey) -> Result<String, AppError> {
        self.open_text(
            stored.organization_id,
            "passkey",
            &stored.id.to_string(),
            "name",
            &stored.name_ciphertext,
        )
        .await
    }
}
