//! A member's own account: profile, password, sessions, TOTP and API tokens.

use crate::audit::{Actor, Event, FieldChange};
use crate::identity::Caller;
use crate::{AppError, Hub};
use lockstep_auth::{
    Password, PasswordHash, RecoveryCodes, SecretToken, TotpSecret, check_password_policy,
    generate_recovery_codes,
};
use lockstep_domain::{ApiTokenId, OrganizationId, Role, SessionId, TokenScope, UserId};
use lockstep_policy::{Action, Resource};
use lockstep_storage::names::NamedTable;
use lockstep_storage::users::StoredUser;
use lockstep_storage::{StoreError, api_tokens, sessions, users};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// What a member sees of their own account.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub id: UserId,
    pub organization_id: OrganizationId,
    /// The organization's name, shown in the page header and on the account page.
    pub organization_name: String,
    /// The organization's time zone (pages show times in it).
    pub time_zone: crate::TimeZone,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub totp_enabled: bool,
    pub must_enrol_totp: bool,
}

#[derive(Debug, Clone)]
pub struct SessionView {
    pub id: SessionId,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub current: bool,
}

/// A TOTP enrolment in progress: shown once, confirmed with a first code.
#[derive(Debug)]
pub struct TotpEnrolment {
    pub otpauth_uri: zeroize::Zeroizing<String>,
}

#[derive(Debug, Clone)]
pub struct ApiTokenView {
    pub id: ApiTokenId,
    pub name: String,
    pub scope: TokenScope,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

/// How long a new API token lives when its maker does not say.
pub const DEFAULT_API_TOKEN_DAYS: i64 = 90;
/// The longest an API token may live.
pub const MAX_API_TOKEN_DAYS: i64 = 365;

/// When a new API token expires, chosen by its maker: a number of days from now, or a moment
/// (at most [`MAX_API_TOKEN_DAYS`] ahead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenExpiry {
    Days(i64),
    At(OffsetDateTime),
}

impl Default for TokenExpiry {
    fn default() -> Self {
        TokenExpiry::Days(DEFAULT_API_TOKEN_DAYS)
    }
}

impl TokenExpiry {
    fn resolve(self, now: OffsetDateTime) -> Result<OffsetDateTime, AppError> {
        match self {
            TokenExpiry::Days(days) if (1..=MAX_API_TOKEN_DAYS).contains(&days) => {
                Ok(now + Duration::days(days))
            }
            TokenExpiry::Days(_) => Err(AppError::Invalid {
                field: "expires_in_days",
                reason: format!("must be between 1 and {MAX_API_TOKEN_DAYS}"),
            }),
            TokenExpiry::At(at) if at > now && at <= now + Duration::days(MAX_API_TOKEN_DAYS) => {
                Ok(at)
            }
            TokenExpiry::At(_) => Err(AppError::Invalid {
                field: "expires_at",
                reason: format!(
                    "must be in the future and at most {MAX_API_TOKEN_DAYS} days ahead"
                ),
            }),
        }
    }
}

/// A new API token: the token is shown once.
#[derive(Debug)]
pub struct NewApiToken {
    pub view: ApiTokenView,
    pub token: SecretToken,
}

impl Hub {
    /// Asks the policy about the caller's own account; credential changes also need a session
    /// (an API token cannot mint tokens or change the password).
    pub(crate) fn authorize_own(&self, caller: &Caller, action: Action) -> Result<(), AppError> {
        if caller.member.support {
            return Err(AppError::CustomerOnly);
        }
        // Said before the scope check: no API token changes credentials, whatever its scope.
        if action == Action::ManageOwnCredentials && caller.session_id().is_none() {
            return Err(AppError::NotAllowedYet(
                "API tokens cannot change credentials: sign in with a password",
            ));
        }
        self.authorize(
            caller,
            action,
            &Resource::owned_by(caller.organization(), caller.user()),
        )
    }

    async fn own_user(&self, caller: &Caller) -> Result<StoredUser, AppError> {
        let mut conn = self.store.read().await?;
        users::get(&mut conn, caller.organization(), caller.user())
            .await?
            .ok_or(AppError::Unauthenticated)
    }

    pub async fn me(&self, caller: &Caller) -> Result<AccountView, AppError> {
        if let Some(email) = self.support_identity(caller).await? {
            // A support person: who they are and the role their grant gives, no account here.
            let org = caller.organization();
            return Ok(AccountView {
                id: caller.user(),
                organization_id: org,
                organization_name: self.organization_name(org).await?,
                time_zone: self.organization_time_zone(org).await?,
                display_name: format!("Support ({email})"),
                email,
                role: caller.member.role,
                totp_enabled: true,
                must_enrol_totp: false,
            });
        }
        self.authorize_own(caller, Action::ReadOwnAccount)?;
        let user = self.own_user(caller).await?;
        let (email, display_name) = self.open_profile(&user).await?;
        Ok(AccountView {
            id: user.id,
            organization_id: user.organization_id,
            organization_name: self.organization_name(user.organization_id).await?,
            time_zone: self.organization_time_zone(user.organization_id).await?,
            email,
            display_name,
            role: user.role,
            totp_enabled: user.totp_enabled,
            must_enrol_totp: caller.member.must_enrol_totp,
        })
    }

    /// Changes the password (the current one is needed) and ends the caller's other sessions;
    /// with `revoke_api_tokens` (what the API and the pages offer by default) every API token of
    /// the caller is revoked too.
    pub async fn change_password(
        &self,
        caller: &Caller,
        current: &Password,
        new: &Password,
        revoke_api_tokens: bool,
    ) -> Result<(), AppError> {
        self.authorize_own(caller, Action::ManageOwnCredentials)?;
        let user = self.own_user(caller).await?;
        let hash = PasswordHash::from_stored(user.password_hash.clone());
        if !self.hasher.verify(current, Some(&hash)).await? {
            return Err(AppError::Invalid {
                field: "current_password",
                reason: "is not your current password".to_owned(),
            });
        }
        check_password_policy(new).map_err(|e| AppError::Invalid {
            field: "new_password",
            reason: e.to_string(),
        })?;
        let new_hash = self.hasher.hash(new).await?;
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        users::set_password_hash(
            &mut tx,
            user.organization_id,
            user.id,
            new_hash.as_str(),
            now,
        )
        .await?;
        // A new password chosen by the signed-in member (after single sign-on) answers an
        // incident response's requirement as a reset does.
        users::set_must_reset_password(&mut tx, user.organization_id, user.id, false).await?;
        sessions::delete_for_user(&mut tx, user.organization_id, user.id, caller.session_id())
            .await?;
        let mut event = Event::new(
            Actor::User(user.id),
            "user.password_changed",
            "user",
            user.id,
        )
        .change("password", FieldChange::secret());
        if revoke_api_tokens {
            let revoked = self
                .revoke_all_api_tokens(&mut tx, user.organization_id, user.id, Actor::User(user.id))
                .await?;
            event = event.change(
                "api_tokens_revoked",
                FieldChange::value(None::<u64>, Some(revoked)),
            );
        }
        self.record(&mut tx, user.organization_id, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(user = %user.id, revoke_api_tokens, "password changed; other sessions ended");
        Ok(())
    }

    pub async fn list_sessions(&self, caller: &Caller) -> Result<Vec<SessionView>, AppError> {
        self.authorize_own(caller, Action::ManageOwnCredentials)?;
        let mut conn = self.store.read().await?;
        let list = sessions::list_for_user(&mut conn, caller.organization(), caller.user()).await?;
        let policy = self.options.sessions;
        Ok(list
            .into_iter()
            .map(|s| SessionView {
                id: s.id,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: policy.expires_at(s.created_at, s.last_seen_at),
                current: caller.session_id() == Some(s.id),
            })
            .collect())
    }

    /// Ends one of the caller's sessions.
    pub async fn end_session(&self, caller: &Caller, id: SessionId) -> Result<(), AppError> {
        self.authorize_own(caller, Action::ManageOwnCredentials)?;
        let mut tx = self.store.write().await?;
        if !sessions::delete(&mut tx, caller.organization(), caller.user(), id).await? {
            return Err(AppError::NotFound("session"));
        }
        let event = Event::new(caller.actor(), "session.ended", "session", id);
        self.record(&mut tx, caller.organization(), event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// "Sign out everywhere": ends every session of the caller, this one included, and with
    /// `revoke_api_tokens` (the default the API and the pages offer) every API token too.
    pub async fn end_all_sessions(
        &self,
        caller: &Caller,
        revoke_api_tokens: bool,
    ) -> Result<u64, AppError> {
        self.authorize_own(caller, Action::ManageOwnCredentials)?;
        let mut tx = self.store.write().await?;
        let ended =
            sessions::delete_for_user(&mut tx, caller.organization(), caller.user(), None).await?;
        let mut event = Event::new(
            caller.actor(),
            "user.signed_out_everywhere",
            "user",
            caller.user(),
        );
        if revoke_api_tokens {
            let revoked = self
                .revoke_all_api_tokens(
                    &mut tx,
                    caller.organization(),
                    caller.user(),
                    caller.actor(),
                )
                .await?;
            event = event.change(
                "api_tokens_revoked",
                FieldChange::value(None::<u64>, Some(revoked)),
            );
        }
        self.record(&mut tx, caller.organization(), event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(ended)
    }

    /// Starts TOTP enrolment: a new secret, stored encrypted and pending until confirmed.
    pub async fn start_totp(&self, caller: &Caller) -> Result<TotpEnrolment, AppError> {
        self.authorize_own(caller, Action::ManageOwnCredentials)?;
        let user = self.own_user(caller).await?;
        if user.totp_enabled {
            return Err(AppError::Conflict("TOTP enrolment"));
        }
        let secret = TotpSecret::generate(&mut rand::rng());
        let account = self.me(caller).await?.email;
        let uri = zeroize::Zeroizing::new(secret.otpauth_uri(&account)?);
        let ciphertext = self
            .seal_field(
                user.organization_id,
                "user",
                &user.id.to_string(),
                "totp_secret",
                secret.expose_bytes(),
            )
            .await?;
        let mut tx = self.store.write().await?;
        users::set_totp_secret(
            &mut tx,
            user.organization_id,
            user.id,
            Some(ciphertext),
            self.clock.now(),
        )
        .await?;
        let event = Event::new(
            Actor::User(user.id),
            "user.totp_enrolment_started",
            "user",
            user.id,
        )
        .change("totp_secret", FieldChange::secret());
        self.record(&mut tx, user.organization_id, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(TotpEnrolment { otpauth_uri: uri })
    }

    /// A user's TOTP secret, opened from its sealed field.
    pub(crate) async fn open_totp_secret(
        &self,
        user: &StoredUser,
        ciphertext: &[u8],
    ) -> Result<TotpSecret, AppError> {
        let bytes = self
            .open_field(
                user.organization_id,
                "user",
                &user.id.to_string(),
                "totp_secret",
                ciphertext,
            )
            .await?;
        Ok(TotpSecret::from_bytes(bytes.to_vec()))
    }

    /// The enrolment started and not yet confirmed, to show its QR code again (after a wrong
    /// code); `None` when none is pending or TOTP is already on.
    pub async fn pending_totp(&self, caller: &Caller) -> Result<Option<TotpEnrolment>, AppError> {
        self.authorize_own(caller, Action::ManageOwnCredentials)?;
        let user = self.own_user(caller).await?;
        let Some(ciphertext) = user
            .totp_secret_ciphertext
            .as_ref()
            .filter(|_| !user.totp_enabled)
        else {
            return Ok(None);
        };
        let secret = self.open_totp_secret(&user, ciphertext).await?;
        let account = self.me(caller).await?.email;
        Ok(Some(TotpEnrolment {
            otpauth_uri: zeroize::Zeroizing::new(secret.otpauth_uri(&account)?),
        }))
    }

    /// Confirms enrolment with a first code; answers the ten recovery codes (shown once).
    pub async fn confirm_totp(
        &self,
        caller: &Caller,
        code: &str,
    ) -> Result<RecoveryCodes, AppError> {
        self.authorize_own(caller, Action::ManageOwnCredentials)?;
        let user = self.own_user(caller).await?;
        if user.totp_enabled {
            return Err(AppError::Conflict("TOTP enrolment"));
        }
        let Some(ciphertext) = &user.totp_secret_ciphertext else {
            return Err(AppError::NotAllowedYet(
                "start TOTP enrolment first (POST /api/v1/me/totp)",
            ));
        };
        let secret = self.open_totp_secret(&user, ciphertext).await?;
        let now = self.clock.now();
        let Some(step) = secret.verify(code, now, None)? else {
            return Err(AppError::Invalid {
                field: "code",
                reason: "is not the current code of your authenticator".to_owned(),
            });
        };
        let codes = generate_recovery_codes(&mut rand::rng());
        let mut tx = self.store.write().await?;
        users::enable_totp(&mut tx, user.organization_id, user.id, step, now).await?;
        users::replace_recovery_codes(&mut tx, user.organization_id, user.id, &codes.hashes)
            .await?;
        let event = Event::new(Actor::User(user.id), "user.totp_enabled", "user", user.id)
            .change("recovery_codes", FieldChange::secret());
        self.record(&mut tx, user.organization_id, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(user = %user.id, "TOTP enrolled");
        Ok(codes)
    }

    /// Removes TOTP; needs a fresh code or an unused recovery code.
    pub async fn remove_totp(&self, caller: &Caller, code: &str) -> Result<(), AppError> {
        self.authorize_own(caller, Action::ManageOwnCredentials)?;
        let user = self.own_user(caller).await?;
        if !user.totp_enabled {
            return Err(AppError::NotFound("TOTP enrolment"));
        }
        if !self.check_second_factor(&user, code).await? {
            return Err(AppError::Invalid {
                field: "code",
                reason: "is neither a current TOTP code nor an unused recovery code".to_owned(),
            });
        }
        let mut tx = self.store.write().await?;
        users::set_totp_secret(
            &mut tx,
            user.organization_id,
            user.id,
            None,
            self.clock.now(),
        )
        .await?;
        users::replace_recovery_codes(&mut tx, user.organization_id, user.id, &[]).await?;
        let event = Event::new(Actor::User(user.id), "user.totp_removed", "user", user.id)
            .change("totp_secret", FieldChange::secret());
        self.record(&mut tx, user.organization_id, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(user = %user.id, "TOTP removed");
        Ok(())
    }

    /// Makes an API token for automation, limited to `scope` and to the user's current role (it
    /// stops working if that role changes), valid until `expiry` (at most a year).
    pub async fn create_api_token(
        &self,
        caller: &Caller,
        name: &str,
        scope: TokenScope,
        expiry: TokenExpiry,
    ) -> Result<NewApiToken, AppError> {
        self.authorize_own(caller, Action::ManageOwnCredentials)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(AppError::Invalid {
                field: "name",
                reason: "must be 1 to 100 characters without control characters".to_owned(),
            });
        }
        let now = self.clock.now();
        let expires_at = expiry.resolve(now)?;
        let token = SecretToken::generate("lst", &mut rand::rng());
        let id = ApiTokenId::from_uuid(Uuid::now_v7());
        let sealed_name = self
            .seal_name(
                caller.organization(),
                NamedTable::ApiTokens,
                &id.to_string(),
                name,
            )
            .await?;
        let stored = api_tokens::StoredApiToken {
            id,
            organization_id: caller.organization(),
            user_id: caller.user(),
            name: sealed_name.column,
            name_ciphertext: Some(sealed_name.ciphertext),
            token_hash: token.hash(),
            role: caller.member.role,
            scope,
            created_at: now,
            expires_at,
            last_used_at: None,
        };
        let mut tx = self.store.write().await?;
        api_tokens::insert(&mut tx, &stored).await?;
        let event = Event::new(caller.actor(), "api_token.created", "api_token", stored.id)
            .change("name", FieldChange::value(None::<String>, Some(name)))
            .change(
                "scope",
                FieldChange::value(None::<String>, Some(stored.scope.as_str())),
            )
            .change(
                "expires_at",
                FieldChange::value(None::<String>, Some(stored.expires_at)),
            );
        self.record(&mut tx, caller.organization(), event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(NewApiToken {
            view: self.token_view(stored).await?,
            token,
        })
    }

    pub async fn list_api_tokens(&self, caller: &Caller) -> Result<Vec<ApiTokenView>, AppError> {
        self.authorize_own(caller, Action::ReadOwnAccount)?;
        let mut conn = self.store.read().await?;
        let list =
            api_tokens::list_for_user(&mut conn, caller.organization(), caller.user()).await?;
        drop(conn);
        let mut views = Vec::with_capacity(list.len());
        for token in list {
            views.push(self.token_view(token).await?);
        }
        Ok(views)
    }

    pub async fn revoke_api_token(&self, caller: &Caller, id: ApiTokenId) -> Result<(), AppError> {
        self.authorize_own(caller, Action::ManageOwnCredentials)?;
        let mut tx = self.store.write().await?;
        if !api_tokens::delete(&mut tx, caller.organization(), caller.user(), id).await? {
            return Err(AppError::NotFound("API token"));
        }
        let event = Event::new(caller.actor(), "api_token.revoked", "api_token", id);
        self.record(&mut tx, caller.organization(), event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}

impl Hub {
    /// Revokes every API token of `user` on the caller's transaction, recording
    /// `api_token.revoked` for each, as revoking one by one does. Answers how many.
    pub(crate) async fn revoke_all_api_tokens(
        &self,
        tx: &mut lockstep_storage::Connection,
        org: OrganizationId,
        user: UserId,
        actor: Actor,
    ) -> Result<u64, AppError> {
        let tokens = api_tokens::list_for_user(tx, org, user).await?;
        let mut revoked = 0;
        for token in tokens {
            if api_tokens::delete(tx, org, user, token.id).await? {
                revoked += 1;
                let event = Event::new(actor.clone(), "api_token.revoked", "api_token", token.id);
                self.record(tx, org, event).await?;
            }
        }
        Ok(revoked)
    }
}

impl Hub {
    async fn token_view(&self, t: api_tokens::StoredApiToken) -> Result<ApiTokenView, AppError> {
        let name = self
            .open_name(
                t.organization_id,
                NamedTable::ApiTokens,
                &t.id.to_string(),
                &t.name,
                t.name_ciphertext.as_deref(),
            )
            .await?;
        Ok(ApiTokenView {
            id: t.id,
            name,
            scope: t.scope,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
        })
    }
}
