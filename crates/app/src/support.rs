//! Support access: the platform's support accounts (the operator adds and removes them), the
//! grants an organization's Administrator gives one of them — a role, for at most
//! [`MAX_GRANT_HOURS`], with a reason — and the support person's way in: sign in with password
//! and TOTP (always both), then enter one organization under an active grant. While it lasts
//! they act with the granted role and nothing else (the policy refuses what only the
//! organization's own members may do); every request is audited with actor kind `support` and
//! the grant's id; when the grant ends or is revoked, their sessions there end at once.

use crate::audit::{Actor, Event, FieldChange};
use crate::identity::{Caller, Credential};
use crate::{AppError, Hub, Operator};
use lockstep_auth::{
    LoginFailures, Password, PasswordHash, SecretToken, TotpSecret, check_password_policy,
};
use lockstep_domain::{EmailAddress, OrganizationId, Role, UserId};
use lockstep_policy::{Action, Member};
use lockstep_storage::support::{self, StoredGrant, StoredSupportSession, StoredSupportUser};
use lockstep_storage::{StoreError, organizations};
use lockstep_vault::Aad;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The longest a grant may last.
pub const MAX_GRANT_HOURS: i64 = 72;
/// How long a new support account's setup link is valid.
pub const SUPPORT_SETUP_VALIDITY: Duration = Duration::days(7);
/// The longest reason a grant keeps.
pub const MAX_REASON_CHARS: usize = 500;
/// How many grants the organization's list shows (newest first).
pub const GRANT_LIST_LIMIT: i64 = 200;

const HUB_KEY_PURPOSE: &str = "support accounts v1";

/// A support account as the operator and Administrators see it.
#[derive(Debug, Clone)]
pub struct SupportAccount {
    pub id: Uuid,
    pub email: String,
    /// Password chosen and TOTP confirmed.
    pub active: bool,
    pub created_at: OffsetDateTime,
}

/// A new support account and its setup link's token (shown once, also mailed).
#[derive(Debug)]
pub struct NewSupportAccount {
    pub account: SupportAccount,
    pub setup_token: SecretToken,
}

/// A grant as the organization's Administrators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportGrantView {
    pub id: Uuid,
    pub support_user_id: Uuid,
    pub support_email: String,
    pub role: Role,
    pub reason: String,
    pub granted_by: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub active: bool,
}

/// An organization a support person may enter now.
#[derive(Debug, Clone)]
pub struct SupportOrganization {
    pub organization_id: OrganizationId,
    pub organization_name: String,
    pub grant_id: Uuid,
    pub role: Role,
    pub expires_at: OffsetDateTime,
}

/// A support person's new session: both tokens shown once.
#[derive(Debug)]
pub struct SupportLogin {
    pub session_token: SecretToken,
    pub csrf_token: SecretToken,
    pub expires_at: OffsetDateTime,
    pub support_user_id: Uuid,
}

/// The support person's TOTP enrolment during setup: shown once.
#[derive(Debug)]
pub struct SupportTotpEnrolment {
    pub otpauth_uri: zeroize::Zeroizing<String>,
}

fn email_aad(id: Uuid) -> (String, &'static str, &'static str) {
    (id.to_string(), "support_user", "email")
}

impl Hub {
    fn seal_hub_field(
        &self,
        kind: &str,
        id: &str,
        field: &str,
        plain: &[u8],
    ) -> Result<Vec<u8>, AppError> {
        let keys = self
            .vault
            .with_keyring(|keyring| keyring.hub_field_keys(HUB_KEY_PURPOSE))??;
        let aad = Aad {
            object_kind: kind,
            object_id: id,
            field,
        };
        Ok(keys.encrypt(&aad, plain, &mut rand::rng())?)
    }

    fn open_hub_field(
        &self,
        kind: &str,
        id: &str,
        field: &str,
        ciphertext: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, AppError> {
        let keys = self
            .vault
            .with_keyring(|keyring| keyring.hub_field_keys(HUB_KEY_PURPOSE))??;
        let aad = Aad {
            object_kind: kind,
            object_id: id,
            field,
        };
        Ok(keys.decrypt(&aad, ciphertext)?)
    }

    fn support_email(&self, user: &StoredSupportUser) -> Result<String, AppError> {
        let (id, kind, field) = email_aad(user.id);
        let bytes = self.open_hub_field(kind, &id, field, &user.email_ciphertext)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| AppError::Vault(lockstep_vault::VaultError::Decrypt))
    }

    fn support_account(&self, user: &StoredSupportUser) -> Result<SupportAccount, AppError> {
        Ok(SupportAccount {
            id: user.id,
            email: self.support_email(user)?,
            active: user.active,
            created_at: user.created_at,
        })
    }

    /// The operator adds a support account: no access to any organization until one grants
    /// it. The person chooses a password and enrols TOTP with the setup link (valid
    /// [`SUPPORT_SETUP_VALIDITY`]), mailed to them and answered here once.
    pub async fn add_support_user(
        &self,
        operator: &Operator,
        email: &str,
    ) -> Result<NewSupportAccount, AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        let email = EmailAddress::parse(email).map_err(|e| AppError::Invalid {
            field: "email",
            reason: e.to_string(),
        })?;
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let token = SecretToken::generate("lsu", &mut rand::rng());
        let (aad_id, kind, field) = email_aad(id);
        let stored = StoredSupportUser {
            id,
            email_index: self.email_index(&email)?,
            email_ciphertext: self.seal_hub_field(
                kind,
                &aad_id,
                field,
                email.as_str().as_bytes(),
            )?,
            password_hash: None,
            totp_secret_ciphertext: None,
            totp_last_step: None,
            active: false,
            setup_token_hash: Some(token.hash().to_vec()),
            setup_expires_at: Some(now + SUPPORT_SETUP_VALIDITY),
            failed_logins: 0,
            locked_until: None,
            created_at: now,
        };
        let mut tx = self.store.write().await?;
        support::insert_user(&mut tx, &stored).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(support_user = %id, operator_token = operator.token_id(), "support account added");
        let message = lockstep_mail::Message {
            to: email.as_str().to_owned(),
            subject: "Your Lockstep support account".to_owned(),
            body: format!(
                "The operator of this Lockstep hub made you a support account. It sees no \
                 organization until one of them grants you access.\n\n\
                 Open {}/support/setup#{} within 7 days to choose your password and enrol an \
                 authenticator app (both are needed to sign in).\n",
                self.options.public_url.trim_end_matches('/'),
                token.expose()
            ),
        };
        self.send_mail(message).await;
        Ok(NewSupportAccount {
            account: self.support_account(&stored)?,
            setup_token: token,
        })
    }

    pub async fn list_support_users(
        &self,
        _operator: &Operator,
    ) -> Result<Vec<SupportAccount>, AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        let mut conn = self.store.read().await?;
        let users = support::list_users(&mut conn).await?;
        users.iter().map(|u| self.support_account(u)).collect()
    }

    /// Removes a support account: its sessions end at once; the grants organizations gave it
    /// stay in their records, inert.
    pub async fn remove_support_user(&self, operator: &Operator, id: Uuid) -> Result<(), AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        let mut tx = self.store.write().await?;
        if !support::delete_user(&mut tx, id).await? {
            return Err(AppError::NotFound("support account"));
        }
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(support_user = %id, operator_token = operator.token_id(), "support account removed");
        Ok(())
    }

    async fn support_user_by_setup_token(
        &self,
        token: &str,
    ) -> Result<StoredSupportUser, AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        let now = self.clock.now();
        let token = SecretToken::from_text(token.trim());
        let mut conn = self.store.read().await?;
        support::find_user_by_setup_token(&mut conn, &token.hash())
            .await?
            .filter(|u| u.setup_expires_at.is_some_and(|at| now < at))
            .ok_or(AppError::NotFound("setup link (or it expired or was used)"))
    }

    /// First step of setup: the password (checked against the policy) and a new TOTP secret,
    /// answered as an `otpauth://` URI. May be repeated until confirmed.
    pub async fn begin_support_setup(
        &self,
        token: &str,
        password: &Password,
    ) -> Result<SupportTotpEnrolment, AppError> {
        let user = self.support_user_by_setup_token(token).await?;
        check_password_policy(password).map_err(|err| AppError::Invalid {
            field: "password",
            reason: err.to_string(),
        })?;
        let hash = self.hasher.hash(password).await?;
        let secret = TotpSecret::generate(&mut rand::rng());
        let email = self.support_email(&user)?;
        let uri = secret.otpauth_uri(&format!("support {email}"))?;
        let ciphertext = self.seal_hub_field(
            "support_user",
            &user.id.to_string(),
            "totp_secret",
            secret.expose_bytes(),
        )?;
        let mut tx = self.store.write().await?;
        support::set_credentials(&mut tx, user.id, hash.as_str(), &ciphertext).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(SupportTotpEnrolment {
            otpauth_uri: zeroize::Zeroizing::new(uri),
        })
    }

    /// Second step: a first code from the authenticator; the account may then sign in and the
    /// setup link is used up.
    pub async fn confirm_support_setup(&self, token: &str, code: &str) -> Result<(), AppError> {
        let user = self.support_user_by_setup_token(token).await?;
        let Some(ciphertext) = user
            .totp_secret_ciphertext
            .as_ref()
            .filter(|_| user.password_hash.is_some())
        else {
            return Err(AppError::NotAllowedYet(
                "choose a password first (POST /api/v1/auth/support/setup)",
            ));
        };
        let secret = self.support_totp_secret(&user, ciphertext)?;
        let Some(step) = secret.verify(code, self.clock.now(), None)? else {
            return Err(AppError::Invalid {
                field: "code",
                reason: "is not the current code of your authenticator".to_owned(),
            });
        };
        let mut tx = self.store.write().await?;
        support::activate(&mut tx, user.id, step).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(support_user = %user.id, "support account set up");
        Ok(())
    }

    fn support_totp_secret(
        &self,
        user: &StoredSupportUser,
        ciphertext: &[u8],
    ) -> Result<TotpSecret, AppError> {
        let bytes = self.open_hub_field(
            "support_user",
            &user.id.to_string(),
            "totp_secret",
            ciphertext,
        )?;
        Ok(TotpSecret::from_bytes(bytes.to_vec()))
    }

    /// A support person signs in: e-mail, password and a TOTP code, always. Unknown addresses,
    /// wrong passwords or codes, unfinished setup and locked accounts answer the same
    /// [`AppError::LoginFailed`] after the same password work.
    pub async fn support_login(
        &self,
        email: &str,
        password: &Password,
        totp: &str,
    ) -> Result<SupportLogin, AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        let now = self.clock.now();
        let user = match EmailAddress::parse(email) {
            Ok(email) => {
                let index = self.email_index(&email)?;
                let mut conn = self.store.read().await?;
                support::find_user_by_email_index(&mut conn, &index).await?
            }
            Err(_) => None,
        };
        let hash = user
            .as_ref()
            .and_then(|u| u.password_hash.clone())
            .map(PasswordHash::from_stored);
        let password_ok = self.hasher.verify(password, hash.as_ref()).await?;
        let Some(user) = user.filter(|u| u.active) else {
            return Err(AppError::LoginFailed);
        };
        let policy = self.options.lockout;
        let failures = LoginFailures {
            count: user.failed_logins,
            locked_until: user.locked_until,
        };
        if policy.is_locked(&failures, now) {
            return Err(AppError::LoginFailed);
        }
        let code_step = match (&user.totp_secret_ciphertext, password_ok) {
            (Some(ciphertext), true) => self.support_totp_secret(&user, ciphertext)?.verify(
                totp,
                now,
                user.totp_last_step,
            )?,
            _ => None,
        };
        let mut tx = self.store.write().await?;
        let fresh = match code_step {
            Some(step) => support::use_totp_step(&mut tx, user.id, step).await?,
            None => false,
        };
        if !fresh {
            let next = policy.after_failure(failures, now);
            support::set_login_failures(&mut tx, user.id, next.count, next.locked_until).await?;
            tx.commit().await.map_err(StoreError::from)?;
            tracing::warn!(support_user = %user.id, "support sign-in failed");
            return Err(AppError::LoginFailed);
        }
        support::set_login_failures(&mut tx, user.id, 0, None).await?;
        let (session_token, csrf_token) = {
            let mut rng = rand::rng();
            (
                SecretToken::generate("lsp", &mut rng),
                SecretToken::generate("lsc", &mut rng),
            )
        };
        support::insert_session(
            &mut tx,
            &StoredSupportSession {
                id: Uuid::now_v7(),
                support_user_id: user.id,
                token_hash: session_token.hash(),
                csrf_hash: csrf_token.hash(),
                organization_id: None,
                grant_id: None,
                created_at: now,
                last_seen_at: now,
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(support_user = %user.id, "support signed in");
        Ok(SupportLogin {
            session_token,
            csrf_token,
            expires_at: self.options.sessions.expires_at(now, now),
            support_user_id: user.id,
        })
    }

    /// The support session of `token`, still valid (expired ones are deleted).
    async fn support_session(&self, token: &SecretToken) -> Result<StoredSupportSession, AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        let now = self.clock.now();
        let mut conn = self.store.read().await?;
        let Some(session) = support::find_session_by_token_hash(&mut conn, &token.hash()).await?
        else {
            return Err(AppError::Unauthenticated);
        };
        let policy = self.options.sessions;
        if !policy.is_valid(session.created_at, session.last_seen_at, now) {
            support::delete_session(&mut conn, session.id).await?;
            return Err(AppError::Unauthenticated);
        }
        if policy.activity_due(session.last_seen_at, now) {
            support::touch_session(&mut conn, session.id, now).await?;
        }
        Ok(session)
    }

    /// Resolves a support session's token (`lsp_…`) to the caller it acts as: the granted role
    /// in the organization it entered, while the grant is in force. A session that has not
    /// entered one sees no organization (404); once the grant expired or was revoked, the session
    /// is ended and refused.
    pub(crate) async fn authenticate_support(
        &self,
        token: &SecretToken,
    ) -> Result<Caller, AppError> {
        let session = self.support_session(token).await?;
        let (Some(org), Some(grant_id)) = (session.organization_id, session.grant_id) else {
            return Err(AppError::NotFound("organization"));
        };
        let now = self.clock.now();
        let mut conn = self.store.read().await?;
        let grant = support::get_grant(&mut conn, org, grant_id).await?;
        let Some(grant) =
            grant.filter(|g| g.is_active(now) && g.support_user_id == session.support_user_id)
        else {
            support::delete_session(&mut conn, session.id).await?;
            tracing::info!(support_user = %session.support_user_id, grant = %grant_id, "a support session ended with its grant");
            return Err(AppError::Unauthenticated);
        };
        Ok(Caller {
            member: Member {
                user: UserId::from_uuid(session.support_user_id),
                organization: org,
                role: grant.role,
                must_enrol_totp: false,
                token_scope: None,
                support: true,
            },
            credential: Credential::Support {
                session: session.id,
                csrf_hash: session.csrf_hash,
                grant: grant.id,
            },
        })
    }

    /// The organizations the support person of `token` may enter now.
    pub async fn support_organizations(
        &self,
        token: &str,
    ) -> Result<Vec<SupportOrganization>, AppError> {
        let session = self.support_session(&SecretToken::from_text(token)).await?;
        let now = self.clock.now();
        let mut conn = self.store.read().await?;
        let grants = support::active_grants_of(&mut conn, session.support_user_id, now).await?;
        let mut out = Vec::with_capacity(grants.len());
        for grant in grants {
            let Some(org) = organizations::get(&mut conn, grant.organization_id).await? else {
                continue;
            };
            out.push(SupportOrganization {
                organization_id: grant.organization_id,
                organization_name: org.name.as_str().to_owned(),
                grant_id: grant.id,
                role: grant.role,
                expires_at: grant.expires_at,
            });
        }
        Ok(out)
    }

    /// The support person of `token` enters `org`, which works only under a grant in force
    /// (otherwise 404, as if the organization did not exist). Audited `support.entered`.
    pub async fn support_enter(
        &self,
        token: &str,
        org: OrganizationId,
    ) -> Result<SupportOrganization, AppError> {
        let session = self.support_session(&SecretToken::from_text(token)).await?;
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        let grant = support::active_grants_of(&mut tx, session.support_user_id, now)
            .await?
            .into_iter()
            .filter(|g| g.organization_id == org)
            .max_by_key(|g| g.expires_at)
            .ok_or(AppError::NotFound("organization"))?;
        let name = organizations::get(&mut tx, org)
            .await?
            .ok_or(AppError::NotFound("organization"))?;
        support::enter(&mut tx, session.id, org, grant.id).await?;
        let event = Event::new(
            Actor::Support { grant: grant.id },
            "support.entered",
            "support_grant",
            grant.id,
        );
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(SupportOrganization {
            organization_id: org,
            organization_name: name.name.as_str().to_owned(),
            grant_id: grant.id,
            role: grant.role,
            expires_at: grant.expires_at,
        })
    }

    /// Ends a support session whatever organization it is in (sign-out before entering one).
    pub async fn support_logout(&self, token: &str) -> Result<(), AppError> {
        let session = self.support_session(&SecretToken::from_text(token)).await?;
        let mut tx = self.store.write().await?;
        support::delete_session(&mut tx, session.id).await?;
        if let (Some(org), Some(grant)) = (session.organization_id, session.grant_id) {
            let event = Event::new(
                Actor::Support { grant },
                "support.signed_out",
                "support_grant",
                grant,
            );
            self.record(&mut tx, org, event).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Records one request a support person made (method and route template, never the path,
    /// query or body) in the organization's audit, under their grant.
    pub async fn record_support_request(
        &self,
        caller: &Caller,
        method: &str,
        route: &str,
    ) -> Result<(), AppError> {
        let Some(grant) = caller.support_grant() else {
            return Ok(());
        };
        let mut tx = self.store.write().await?;
        let event = Event::new(
            Actor::Support { grant },
            "support.request",
            "support_grant",
            grant,
        )
        .change("method", FieldChange::value(None::<String>, Some(method)))
        .change("route", FieldChange::value(None::<String>, Some(route)));
        self.record(&mut tx, caller.organization(), event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// The support accounts an Administrator may grant access to (set up ones only).
    pub async fn support_accounts_to_grant(
        &self,
        caller: &Caller,
    ) -> Result<Vec<SupportAccount>, AppError> {
        self.authorize_in_organization(caller, Action::ManageSupportAccess)?;
        let mut conn = self.store.read().await?;
        let users = support::list_users(&mut conn).await?;
        users
            .iter()
            .filter(|u| u.active)
            .map(|u| self.support_account(u))
            .collect()
    }

    /// An Administrator grants a support account `role` in their organization for `hours`
    /// (1 to [`MAX_GRANT_HOURS`]) with a reason. Audited `support.granted`.
    pub async fn grant_support_access(
        &self,
        caller: &Caller,
        support_user_id: Uuid,
        role: Role,
        hours: i64,
        reason: &str,
    ) -> Result<SupportGrantView, AppError> {
        self.authorize_in_organization(caller, Action::ManageSupportAccess)?;
        if !(1..=MAX_GRANT_HOURS).contains(&hours) {
            return Err(AppError::Invalid {
                field: "hours",
                reason: format!("must be between 1 and {MAX_GRANT_HOURS}"),
            });
        }
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(AppError::Invalid {
                field: "reason",
                reason: format!("must say why, in at most {MAX_REASON_CHARS} characters"),
            });
        }
        let org = caller.organization();
        let now = self.clock.now();
        let mut conn = self.store.read().await?;
        let account = support::get_user(&mut conn, support_user_id)
            .await?
            .filter(|u| u.active)
            .ok_or(AppError::Invalid {
                field: "support_user_id",
                reason: "is not a support account that is set up".to_owned(),
            })?;
        drop(conn);
        let email = self.support_email(&account)?;
        let id = Uuid::now_v7();
        let grant = StoredGrant {
            id,
            organization_id: org,
            support_user_id,
            role,
            reason_ciphertext: self
                .seal_field(
                    org,
                    "support_grant",
                    &id.to_string(),
                    "reason",
                    reason.as_bytes(),
                )
                .await?,
            email_ciphertext: self
                .seal_field(
                    org,
                    "support_grant",
                    &id.to_string(),
                    "email",
                    email.as_bytes(),
                )
                .await?,
            granted_by: Some(caller.user()),
            created_at: now,
            expires_at: now + Duration::hours(hours),
            revoked_at: None,
            revoked_by: None,
        };
        let mut tx = self.store.write().await?;
        support::insert_grant(&mut tx, &grant).await?;
        let event = Event::new(caller.actor(), "support.granted", "support_grant", id)
            .change(
                "support_user_id",
                FieldChange::value(None::<String>, Some(support_user_id)),
            )
            .change("role", FieldChange::value(None::<String>, Some(role)))
            .change(
                "expires_at",
                FieldChange::value(None::<String>, Some(grant.expires_at)),
            )
            .change("reason", FieldChange::value(None::<String>, Some(reason)));
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.grant_view(grant, now).await
    }

    pub(crate) async fn grant_view(
        &self,
        grant: StoredGrant,
        now: OffsetDateTime,
    ) -> Result<SupportGrantView, AppError> {
        let id = grant.id.to_string();
        let org = grant.organization_id;
        let reason = self
            .open_text(
                org,
                "support_grant",
                &id,
                "reason",
                &grant.reason_ciphertext,
            )
            .await?;
        let email = self
            .open_text(org, "support_grant", &id, "email", &grant.email_ciphertext)
            .await?;
        Ok(SupportGrantView {
            active: grant.is_active(now),
            id: grant.id,
            support_user_id: grant.support_user_id,
            support_email: email,
            role: grant.role,
            reason,
            granted_by: grant.granted_by,
            created_at: grant.created_at,
            expires_at: grant.expires_at,
            revoked_at: grant.revoked_at,
        })
    }

    /// The organization's grants, active and past, newest first.
    pub async fn list_support_grants(
        &self,
        caller: &Caller,
    ) -> Result<Vec<SupportGrantView>, AppError> {
        self.authorize_in_organization(caller, Action::ManageSupportAccess)?;
        let now = self.clock.now();
        let mut conn = self.store.read().await?;
        let grants =
            support::list_grants(&mut conn, caller.organization(), GRANT_LIST_LIMIT).await?;
        drop(conn);
        let mut out = Vec::with_capacity(grants.len());
        for grant in grants {
            out.push(self.grant_view(grant, now).await?);
        }
        Ok(out)
    }

    /// Revokes a grant in force: the support person's sessions under it end at once. Audited
    /// `support.revoked`.
    pub async fn revoke_support_access(&self, caller: &Caller, id: Uuid) -> Result<(), AppError> {
        let org = caller.organization();
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        // Another organization's grant is missing, whoever asks; then the role.
        let grant = support::get_grant(&mut tx, org, id)
            .await?
            .ok_or(AppError::NotFound("support access grant"))?;
        self.authorize_in_organization(caller, Action::ManageSupportAccess)?;
        if !grant.is_active(now)
            || !support::revoke_grant(&mut tx, org, id, Some(caller.user()), now).await?
        {
            return Err(AppError::Conflict(
                "support access grant (it already ended)",
            ));
        }
        let ended = support::delete_sessions_of_grant(&mut tx, id).await?;
        let event = Event::new(caller.actor(), "support.revoked", "support_grant", id).change(
            "sessions_ended",
            FieldChange::value(None::<u64>, Some(ended)),
        );
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(grant = %id, organization = %org, "support access revoked");
        Ok(())
    }

    /// Until when support has access to the caller's organization (the latest end of the
    /// grants in force), for the banner every member sees; `None` when nobody has.
    pub async fn support_access_until(
        &self,
        caller: &Caller,
    ) -> Result<Option<OffsetDateTime>, AppError> {
        let now = self.clock.now();
        let mut conn = self.store.read().await?;
        let grants = support::active_grants(&mut conn, caller.organization(), now).await?;
        Ok(grants.iter().map(|g| g.expires_at).max())
    }

    /// The support person behind a support caller, as pages and `GET /me` show them.
    pub(crate) async fn support_identity(
        &self,
        caller: &Caller,
    ) -> Result<Option<String>, AppError> {
        if !caller.member.support {
            return Ok(None);
        }
        let mut conn = self.store.read().await?;
        let user = support::get_user(&mut conn, *caller.user().as_uuid())
            .await?
            .ok_or(AppError::Unauthenticated)?;
        Ok(Some(self.support_email(&user)?))
    }
}
