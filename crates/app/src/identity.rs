//! Who is calling: sign-in (with lockout and TOTP), sessions and API tokens, sign-out, accepting
//! an invitation, and password reset.

use crate::audit::{Actor, Event, FieldChange};
use crate::jobs::{JobResult, ResetRequest, SignInFailure};
use crate::personal::parse_display_name;
use crate::{AppError, Hub};
use lockstep_auth::{
    LoginFailures, Password, PasswordHash, SecretToken, check_password_policy, hash_recovery_code,
    hashes_equal,
};
use lockstep_domain::{ApiTokenId, EmailAddress, OrganizationId, Role, SessionId, UserId};
use lockstep_mail::Message;
use lockstep_policy::Member;
use lockstep_storage::users::{StoredUser, UserStatus};
use lockstep_storage::{
    StoreError, api_tokens, invitations, password_resets, sessions, settings, users,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// At most this many accounts (one per organization) are considered for one address at sign-in
/// and password reset; each costs one Argon2 check at sign-in.
pub const MAX_ACCOUNTS_PER_ADDRESS: u32 = 8;

/// How long a password reset link is valid.
pub const PASSWORD_RESET_VALIDITY: Duration = Duration::minutes(30);

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Session {
        id: SessionId,
        csrf_hash: [u8; 32],
    },
    ApiToken(ApiTokenId),
    /// A support person's session, working under the organization's grant.
    Support {
        session: Uuid,
        csrf_hash: [u8; 32],
        grant: Uuid,
    },
}

/// An authenticated member of an organization. Only [`Hub::authenticate`] makes one.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub member: Member,
    pub credential: Credential,
}

impl Hub {
    /// Asks the policy whether `caller` may do `action` to `resource`: the one place every use
    /// case gets its authorization answer from.
    /// [`Hub::authorize`] for an action on the caller's own organization's objects.
    pub(crate) fn authorize_in_organization(
        &self,
        caller: &Caller,
        action: lockstep_policy::Action,
    ) -> Result<(), AppError> {
        self.authorize(
            caller,
            action,
            &lockstep_policy::Resource::organization(caller.organization()),
        )
    }

    pub(crate) fn authorize(
        &self,
        caller: &Caller,
        action: lockstep_policy::Action,
        resource: &lockstep_policy::Resource,
    ) -> Result<(), AppError> {
        match lockstep_policy::decide(
            &lockstep_policy::Subject::Member(caller.member),
            action,
            resource,
        ) {
            lockstep_policy::Decision::Allow => Ok(()),
            lockstep_policy::Decision::Deny(denial) => Err(denial.into()),
        }
    }
}

impl Caller {
    pub fn user(&self) -> UserId {
        self.member.user
    }

    pub fn organization(&self) -> OrganizationId {
        self.member.organization
    }

    /// Whether `csrf_token` is this session's CSRF token (cookie-authenticated writes need it).
    pub fn csrf_matches(&self, csrf_token: &str) -> bool {
        match self.credential {
            Credential::Session { csrf_hash, .. } | Credential::Support { csrf_hash, .. } => {
                hashes_equal(&SecretToken::from_text(csrf_token).hash(), &csrf_hash)
            }
            Credential::ApiToken(_) => false,
        }
    }

    /// The member's own session (a support person's is not one: they have no account here).
    pub(crate) fn session_id(&self) -> Option<SessionId> {
        match self.credential {
            Credential::Session { id, .. } => Some(id),
            Credential::ApiToken(_) | Credential::Support { .. } => None,
        }
    }

    /// The support grant this caller works under, when they are a support person.
    pub fn support_grant(&self) -> Option<Uuid> {
        match self.credential {
            Credential::Support { grant, .. } => Some(grant),
            _ => None,
        }
    }

    /// Who the audit names as having acted: the member, or the support grant.
    pub(crate) fn actor(&self) -> Actor {
        match self.credential {
            Credential::Support { grant, .. } => Actor::Support { grant },
            _ => Actor::User(self.member.user),
        }
    }
}

/// A new session: both tokens are shown once.
#[derive(Debug)]
pub struct LoginSuccess {
    pub session_token: SecretToken,
    pub csrf_token: SecretToken,
    pub expires_at: OffsetDateTime,
    pub user: UserId,
}

fn password_invalid(err: lockstep_auth::PasswordRejected) -> AppError {
    AppError::Invalid {
        field: "password",
        reason: err.to_string(),
    }
}

impl Hub {
    /// Resolves a bearer token (session `lss_…` or API token `lst_…`) to the member behind it.
    /// Expired sessions are deleted; expired API tokens, deactivated users and tokens whose role
    /// no longer matches their user's are refused like unknown ones. An API token's caller carries
    /// the token's scope, which the policy holds it to.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        let token = SecretToken::from_text(token);
        if token.expose().starts_with("lsp_") {
            return self.authenticate_support(&token).await;
        }
        let now = self.clock.now();
        let mut conn = self.store.read().await?;
        let (org, user_id, credential, token) = if token.expose().starts_with("lss_") {
            let Some(session) = sessions::find_by_token_hash(&mut conn, &token.hash()).await?
            else {
                return Err(AppError::Unauthenticated);
            };
            let policy = self.options.sessions;
            if !policy.is_valid(session.created_at, session.last_seen_at, now) {
                sessions::delete(
                    &mut conn,
                    session.organization_id,
                    session.user_id,
                    session.id,
                )
                .await?;
                return Err(AppError::Unauthenticated);
            }
            if policy.activity_due(session.last_seen_at, now) {
                sessions::touch(&mut conn, session.id, now).await?;
            }
            let credential = Credential::Session {
                id: session.id,
                csrf_hash: session.csrf_hash,
            };
            (session.organization_id, session.user_id, credential, None)
        } else if token.expose().starts_with("lst_") {
            let Some(api) = api_tokens::find_by_token_hash(&mut conn, &token.hash()).await? else {
                return Err(AppError::Unauthenticated);
            };
            if now >= api.expires_at {
                return Err(AppError::Unauthenticated);
            }
            api_tokens::touch(&mut conn, api.id, now).await?;
            (
                api.organization_id,
                api.user_id,
                Credential::ApiToken(api.id),
                Some((api.role, api.scope)),
            )
        } else {
            return Err(AppError::Unauthenticated);
        };
        let Some(user) = users::get(&mut conn, org, user_id).await? else {
            return Err(AppError::Unauthenticated);
        };
        if user.status != UserStatus::Active || token.is_some_and(|(role, _)| role != user.role) {
            return Err(AppError::Unauthenticated);
        }
        // "A second factor required": TOTP or a passkey satisfies it.
        let must_enrol_totp = settings::get(&mut conn, org).await?.require_totp
            && !user.totp_enabled
            && !self.has_passkey(&mut conn, org, user.id).await?;
        Ok(Caller {
            member: Member {
                user: user.id,
                organization: org,
                role: user.role,
                must_enrol_totp,
                token_scope: token.map(|(_, scope)| scope),
                support: false,
            },
            credential,
        })
    }

    /// Signs in. Unknown e-mail, wrong password, deactivated and locked accounts all answer
    /// [`AppError::LoginFailed`] after the same work. After the password, an account with TOTP
    /// needs a code (or a recovery code) in `totp`. An address with accounts in several
    /// organizations whose password fits more than one answers
    /// [`AppError::ChooseOrganization`]: call [`Hub::login_to`] with one of them.
    pub async fn login(
        &self,
        email: &str,
        password: &Password,
        totp: Option<&str>,
    ) -> Result<LoginSuccess, AppError> {
        self.login_to(email, password, totp, None).await
    }

    /// [`Hub::login`] into the account of `organization` when it is given. The password is
    /// checked against each account of the address (at most [`MAX_ACCOUNTS_PER_ADDRESS`],
    /// concurrently, each costing the same Argon2 work; an unknown address costs one dummy
    /// check); a failure on an existing account is recorded after the answer, so a wrong
    /// password and an unknown address do the same work while the caller waits.
    pub async fn login_to(
        &self,
        email: &str,
        password: &Password,
        totp: Option<&str>,
        organization: Option<OrganizationId>,
    ) -> Result<LoginSuccess, AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        let now = self.clock.now();
        let index = match EmailAddress::parse(email) {
            Ok(email) => Some(self.email_index(&email)?),
            Err(_) => None,
        };
        let mut candidates = self.accounts_of(index.as_deref()).await?;
        if let Some(org) = organization {
            candidates.retain(|user| user.organization_id == org);
        }
        if candidates.is_empty() {
            // Same work as a real check, so timing does not tell which e-mails exist.
            self.hasher.verify(password, None).await?;
            return Err(AppError::LoginFailed);
        }
        let checks = futures_util::future::join_all(candidates.iter().map(|user| async move {
            let hash = PasswordHash::from_stored(user.password_hash.clone());
            self.hasher.verify(password, Some(&hash)).await
        }))
        .await;
        let policy = self.options.lockout;
        // The stored failures and those still queued (read after the account, so a failure
        // recorded in between is never counted twice): lockout counts every earlier failure
        // without this answer waiting for them, which only an existing account would do.
        let failures_of = |user: &StoredUser| {
            let mut failures = LoginFailures {
                count: user.failed_logins,
                locked_until: user.locked_until,
            };
            for at in self.pending_sign_in_failures(user.id) {
                failures = policy.after_failure(failures, at);
            }
            failures
        };
        let usable = |user: &StoredUser| {
            !policy.is_locked(&failures_of(user), now) && user.status == UserStatus::Active
        };
        let mut matched = Vec::new();
        let mut wrong = Vec::new();
        for (user, check) in candidates.into_iter().zip(checks) {
            match (check?, usable(&user)) {
                (true, true) => matched.push(user),
                (false, true) => wrong.push(user),
                // Locked or deactivated: the same answer as a wrong password, nothing counted.
                (_, false) => {}
            }
        }
        if matched.len() > 1 {
            // Only someone who knows the password of each learns these organizations.
            let mut choices = Vec::with_capacity(matched.len());
            for user in &matched {
                choices.push(OrganizationChoice {
                    id: user.organization_id,
                    name: self.organization_name(user.organization_id).await?,
                });
            }
            return Err(AppError::ChooseOrganization(choices));
        }
        let Some(user) = matched.pop() else {
            for user in wrong {
                self.queue_sign_in_failure(SignInFailure {
                    organization: user.organization_id,
                    user: user.id,
                    at: now,
                });
            }
            return Err(AppError::LoginFailed);
        };
        if self.password_refused_by_sso(&user).await? {
            return Err(AppError::SsoRequired);
        }
        let mut conn = self.store.read().await?;
        // After an incident response the old password no longer signs in; nothing is counted.
        if users::must_reset_password(&mut conn, user.organization_id, user.id).await? {
            return Err(AppError::PasswordResetRequired);
        }
        let has_passkey = self
            .has_passkey(&mut conn, user.organization_id, user.id)
            .await?;
        drop(conn);
        if user.totp_enabled || has_passkey {
            // The answer names the factors the account has; with a passkey, the pending
            // sign-in it can finish (held by the hub, never trusted from the client).
            let second_step = || -> Result<AppError, AppError> {
                if !has_passkey {
                    return Ok(AppError::TotpRequired);
                }
                Ok(AppError::SecondFactorRequired(Box::new(
                    crate::SecondFactorPending {
                        totp: user.totp_enabled,
                        passkey: true,
                        pending: Some(self.hold_second_factor(&user)?),
                    },
                )))
            };
            let Some(code) = totp.map(str::trim).filter(|c| !c.is_empty()) else {
                return Err(second_step()?);
            };
            if !self.check_second_factor(&user, code).await? {
                self.record_failure(SignInFailure {
                    organization: user.organization_id,
                    user: user.id,
                    at: now,
                })
                .await?;
                return Err(second_step()?);
            }
        }
        // Failures queued before this success are recorded first, so the success clears them
        // (only someone who knows the password waits for this).
        if !self.pending_sign_in_failures(user.id).is_empty() {
            self.settle_sign_in_failures().await;
        }
        let mut tx = self.store.write().await?;
        let cleared = policy.after_success();
        users::set_login_failures(
            &mut tx,
            user.organization_id,
            user.id,
            cleared.count,
            None,
            now,
        )
        .await?;
        let success = self.new_session(&mut tx, &user, now).await?;
        self.record(
            &mut tx,
            user.organization_id,
            Event::new(Actor::User(user.id), "user.signed_in", "user", user.id),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(user = %user.id, organization = %user.organization_id, "signed in");
        Ok(success)
    }

    /// The accounts with this e-mail index (none for an address that did not parse).
    async fn accounts_of(&self, index: Option<&[u8]>) -> Result<Vec<StoredUser>, AppError> {
        let Some(index) = index else {
            return Ok(Vec::new());
        };
        let mut conn = self.store.read().await?;
        Ok(users::find_by_email_index(&mut conn, index, MAX_ACCOUNTS_PER_ADDRESS).await?)
    }

    /// Counts a failed sign-in on the account, locking it after too many; audited.
    pub(crate) async fn record_failure(&self, failure: SignInFailure) -> JobResult {
        let SignInFailure {
            organization,
            user,
            at: now,
        } = failure;
        let mut tx = self.store.write().await?;
        // Counted on the account as stored now: every failure queued before this one is in it.
        let Some(stored) = users::get(&mut tx, organization, user).await? else {
            return Ok(());
        };
        let failures = LoginFailures {
            count: stored.failed_logins,
            locked_until: stored.locked_until,
        };
        let next = self.options.lockout.after_failure(failures, now);
        users::set_login_failures(
            &mut tx,
            organization,
            user,
            next.count,
            next.locked_until,
            now,
        )
        .await?;
        let locked_now = next.locked_until.is_some() && failures.locked_until != next.locked_until;
        let mut event = Event::new(Actor::Anonymous, "user.sign_in_failed", "user", user).failed();
        if locked_now {
            event = event.change(
                "locked_until",
                FieldChange::value(None::<String>, next.locked_until),
            );
        }
        self.record(&mut tx, organization, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        if locked_now {
            tracing::warn!(user = %user, "account locked after repeated failed sign-ins");
        }
        Ok(())
    }

    /// Checks a TOTP code (refusing a replayed one) or, failing that, uses a recovery code.
    pub(crate) async fn check_second_factor(
        &self,
        user: &StoredUser,
        code: &str,
    ) -> Result<bool, AppError> {
        let now = self.clock.now();
        let Some(ciphertext) = &user.totp_secret_ciphertext else {
            return Ok(false);
        };
        let secret = self.open_totp_secret(user, ciphertext).await?;
        let mut conn = self.store.read().await?;
        if let Some(step) = secret.verify(code, now, user.totp_last_step)? {
            // The conditional update makes a concurrent replay of the same code lose.
            return Ok(
                users::advance_totp_step(&mut conn, user.organization_id, user.id, step).await?,
            );
        }
        let hash = hash_recovery_code(code);
        Ok(users::use_recovery_code(&mut conn, user.organization_id, user.id, &hash, now).await?)
    }

    pub(crate) async fn new_session(
        &self,
        conn: &mut lockstep_storage::Connection,
        user: &StoredUser,
        now: OffsetDateTime,
    ) -> Result<LoginSuccess, AppError> {
        let (session_token, csrf_token) = {
            let mut rng = rand::rng();
            (
                SecretToken::generate("lss", &mut rng),
                SecretToken::generate("lsc", &mut rng),
            )
        };
        let session = sessions::StoredSession {
            id: SessionId::from_uuid(Uuid::now_v7()),
            organization_id: user.organization_id,
            user_id: user.id,
            token_hash: session_token.hash(),
            csrf_hash: csrf_token.hash(),
            created_at: now,
            last_seen_at: now,
        };
        sessions::insert(conn, &session).await?;
        lockstep_storage::users::set_signed_in(conn, user.id, now).await?;
        Ok(LoginSuccess {
            session_token,
            csrf_token,
            expires_at: self.options.sessions.expires_at(now, now),
            user: user.id,
        })
    }

    /// Signs the caller's credential out on the server: a session ends, an API token is revoked
    /// (it no longer works, as after revoking it from the account).
    pub async fn logout(&self, caller: &Caller) -> Result<(), AppError> {
        let (org, user) = (caller.organization(), caller.user());
        let mut tx = self.store.write().await?;
        let event = match caller.credential {
            Credential::Session { id, .. } => {
                sessions::delete(&mut tx, org, user, id).await?;
                Event::new(Actor::User(user), "session.ended", "session", id)
            }
            Credential::ApiToken(id) => {
                if !api_tokens::delete(&mut tx, org, user, id).await? {
                    return Err(AppError::Unauthenticated);
                }
                Event::new(Actor::User(user), "api_token.revoked", "api_token", id)
            }
            Credential::Support { session, grant, .. } => {
                lockstep_storage::support::delete_session(&mut tx, session).await?;
                Event::new(
                    Actor::Support { grant },
                    "support.signed_out",
                    "support_grant",
                    grant,
                )
            }
        };
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Accepts an invitation: creates the user with the invited e-mail and role. The invitation
    /// is single-use and expires.
    pub async fn accept_invitation(
        &self,
        token: &str,
        password: &Password,
        display_name: &str,
    ) -> Result<UserId, AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        let now = self.clock.now();
        let display_name = parse_display_name(display_name)?;
        check_password_policy(password).map_err(password_invalid)?;
        let token = SecretToken::from_text(token.trim());
        let mut conn = self.store.read().await?;
        let invitation = invitations::find_by_token_hash(&mut conn, &token.hash()).await?;
        drop(conn);
        let Some(invitation) = invitation.filter(|i| !i.accepted && now < i.expires_at) else {
            return Err(AppError::NotFound("invitation (or it expired or was used)"));
        };
        let org = invitation.organization_id;
        let email_text = self
            .open_text(
                org,
                "invitation",
                &invitation.id.to_string(),
                "email",
                &invitation.email_ciphertext,
            )
            .await?;
        let email = EmailAddress::parse(&email_text)
            .map_err(|_| AppError::Refused("the invitation holds no valid e-mail address"))?;
        let role: Role = invitation
            .role
            .parse()
            .map_err(|_| AppError::Refused("the invitation holds no valid role"))?;
        let hash = self.hasher.hash(password).await?;
        let id = UserId::from_uuid(Uuid::now_v7());
        let user_id = id.to_string();
        let user = StoredUser {
            id,
            organization_id: org,
            email_index: self.email_index(&email)?,
            email_ciphertext: self
                .seal_field(org, "user", &user_id, "email", email.as_str().as_bytes())
                .await?,
            display_name_ciphertext: self
                .seal_field(
                    org,
                    "user",
                    &user_id,
                    "display_name",
                    display_name.as_bytes(),
                )
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
        };
        let mut tx = self.store.write().await?;
        if !invitations::mark_accepted(&mut tx, invitation.id, now).await? {
            return Err(AppError::NotFound("invitation (or it expired or was used)"));
        }
        users::insert(&mut tx, &user).await?;
        let event = Event::new(Actor::User(id), "user.created", "user", id)
            .change("role", FieldChange::value(None::<String>, Some(role)))
            .change(
                "invitation",
                FieldChange::value(None::<String>, Some(invitation.id)),
            );
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(user = %id, organization = %org, "invitation accepted");
        Ok(id)
    }

    /// Starts a password reset. Always succeeds from the caller's view (no account enumeration):
    /// the request is queued and answered at once, the same way for every address; afterwards
    /// each active account of the address (one per organization) gets its own single-use link,
    /// valid 30 minutes, by mail.
    pub async fn request_password_reset(&self, email: &str) -> Result<(), AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        if let Ok(email) = EmailAddress::parse(email) {
            self.queue_password_reset(ResetRequest {
                email,
                at: self.clock.now(),
            });
        }
        Ok(())
    }

    /// The queued part of [`Hub::request_password_reset`].
    pub(crate) async fn send_password_resets(&self, request: ResetRequest) -> JobResult {
        let ResetRequest { email, at: now } = request;
        let index = self.email_index(&email)?;
        let mut conn = self.store.read().await?;
        let accounts = users::find_by_email_index(&mut conn, &index, MAX_ACCOUNTS_PER_ADDRESS)
            .await?
            .into_iter()
            .filter(|user| user.status == UserStatus::Active);
        drop(conn);
        for user in accounts {
            let organization = self.organization_name(user.organization_id).await?;
            let token = SecretToken::generate("lsr", &mut rand::rng());
            let mut tx = self.store.write().await?;
            password_resets::insert(
                &mut tx,
                &token.hash(),
                user.organization_id,
                user.id,
                now + PASSWORD_RESET_VALIDITY,
            )
            .await?;
            let event = Event::new(
                Actor::Anonymous,
                "user.password_reset_requested",
                "user",
                user.id,
            );
            self.record(&mut tx, user.organization_id, event).await?;
            tx.commit().await.map_err(StoreError::from)?;
            let body = format!(
                "Someone asked to reset the password of your Lockstep account in {organization}.\n\n\
                 To choose a new password, open this link within 30 minutes (it works once):\n\n\
                 {}/reset-password#{}\n\n\
                 If it was not you, ignore this message: your password stays as it is.\n",
                self.options.public_url.trim_end_matches('/'),
                token.expose()
            );
            self.send_mail(Message {
                to: email.as_str().to_owned(),
                subject: format!("Reset your Lockstep password for {organization}"),
                body,
            })
            .await;
            tracing::info!(user = %user.id, "password reset requested");
        }
        Ok(())
    }

    /// Completes a password reset: the token is single-use and expires; an account with TOTP
    /// still needs a code; every session and every API token of the user ends (whoever held
    /// the account before the reset holds nothing that still works), and a reset an incident
    /// response required is done.
    pub async fn complete_password_reset(
        &self,
        token: &str,
        password: &Password,
        totp: Option<&str>,
    ) -> Result<(), AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        let now = self.clock.now();
        let token = SecretToken::from_text(token.trim());
        let invalid = || AppError::NotFound("password reset (or it expired or was used)");
        let mut conn = self.store.read().await?;
        let reset = password_resets::find(&mut conn, &token.hash()).await?;
        let Some(reset) = reset.filter(|r| !r.used && now < r.expires_at) else {
            return Err(invalid());
        };
        let Some(user) = users::get(&mut conn, reset.organization_id, reset.user_id).await? else {
            return Err(invalid());
        };
        drop(conn);
        check_password_policy(password).map_err(password_invalid)?;
        if user.totp_enabled {
            let Some(code) = totp.map(str::trim).filter(|c| !c.is_empty()) else {
                return Err(AppError::TotpRequired);
            };
            if !self.check_second_factor(&user, code).await? {
                return Err(AppError::TotpRequired);
            }
        }
        let hash = self.hasher.hash(password).await?;
        let mut tx = self.store.write().await?;
        if !password_resets::mark_used(&mut tx, &token.hash(), now).await? {
            return Err(invalid());
        }
        users::set_password_hash(&mut tx, user.organization_id, user.id, hash.as_str(), now)
            .await?;
        users::set_login_failures(&mut tx, user.organization_id, user.id, 0, None, now).await?;
        let required = users::must_reset_password(&mut tx, user.organization_id, user.id).await?;
        users::set_must_reset_password(&mut tx, user.organization_id, user.id, false).await?;
        sessions::delete_for_user(&mut tx, user.organization_id, user.id, None).await?;
        let revoked = self
            .revoke_all_api_tokens(&mut tx, user.organization_id, user.id, Actor::Anonymous)
            .await?;
        let mut event = Event::new(Actor::Anonymous, "user.password_reset", "user", user.id)
            .change("password", FieldChange::secret())
            .change(
                "api_tokens_revoked",
                FieldChange::value(None::<u64>, Some(revoked)),
            );
        if required {
            event = event.change(
                "must_reset_password",
                FieldChange::value(Some(true), Some(false)),
            );
        }
        self.record(&mut tx, user.organization_id, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(user = %user.id, "password reset completed; sessions and API tokens ended");
        Ok(())
    }

    /// Sends a mail and says what became of it (errors are logged by kind, never with the
    /// address).
    pub(crate) async fn send_mail(&self, message: Message) -> MailOutcome {
        match &self.options.mailer {
            Some(mailer) => {
                let sent = mailer.send(message).await;
                if let Err(err) = &sent {
                    tracing::error!(error = %err, "mail could not be sent");
                }
                match (mailer.reaches_recipient(), sent) {
                    (false, _) => MailOutcome::NoMailServer,
                    (true, Ok(())) => MailOutcome::Sent,
                    (true, Err(_)) => MailOutcome::Failed,
                }
            }
            None => {
                tracing::warn!("no mailer configured: a mail was dropped");
                MailOutcome::NoMailServer
            }
        }
    }
}

/// What became of a mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailOutcome {
    /// The mail server accepted it.
    Sent,
    /// The mail server refused it or could not be reached.
    Failed,
    /// The hub has no mail server: the mail went to the outbox folder (or nowhere).
    NoMailServer,
}

/// An organization the password fits, offered when a sign-in is ambiguous.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganizationChoice {
    pub id: OrganizationId,
    pub name: String,
}
