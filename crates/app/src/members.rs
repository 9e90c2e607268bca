//! Administrators manage their organization: invitations (sent, listed, resent, revoked), users
//! (role, deactivation, second-factor reset, deletion) and settings. Every use case asks the policy first; another organization's objects are 404.

use crate::audit::{Event, FieldChange};
use crate::identity::Caller;
use crate::identity::MailOutcome;
use crate::organizations::INVITATION_VALIDITY;
use crate::{AppError, Hub};
use lockstep_auth::SecretToken;
use lockstep_domain::{EmailAddress, InvitationId, OrganizationId, Role, UserId};
use lockstep_mail::Message;
use lockstep_policy::{Action, Resource};
use lockstep_storage::invitations::{self, MailStatus, NewInvitation};
use lockstep_storage::settings::{self, OrganizationSettings};
use lockstep_storage::users::{StoredUser, UserStatus};
use lockstep_storage::{StoreError, sessions, users};
use time::OffsetDateTime;
use uuid::Uuid;

/// What an Administrator sees of a user.
#[derive(Debug, Clone)]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub active: bool,
    pub totp_enabled: bool,
    pub created_at: OffsetDateTime,
}

/// A change to a user: new role, and/or deactivate (`active: false`) or reactivate.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserUpdate {
    pub role: Option<Role>,
    pub active: Option<bool>,
}

/// A change to the organization's settings; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct SettingsUpdate {
    pub require_totp: Option<bool>,
    pub audit_depth: Option<u32>,
    pub long_term_audit: Option<bool>,
    /// IANA time zone name; schedules are evaluated in it.
    pub time_zone: Option<String>,
    /// Days (1..=90) after which an untouched data set is deleted.
    pub dataset_retention_days: Option<u32>,
    /// Days (0..=30) between a request to delete the organization and the deletion; a pending
    /// deletion keeps the date it was given.
    pub deletion_grace_days: Option<u32>,
}

/// A new (or resent) invitation. Its token belongs to the invited address: show it to the
/// Administrator only when `mail` is [`MailOutcome::NoMailServer`] (see
/// [`InvitationCreated::token_for_inviter`]).
#[derive(Debug)]
pub struct InvitationCreated {
    pub id: InvitationId,
    pub token: SecretToken,
    /// A pending invitation for the same address was replaced (its token stopped working).
    pub replaced: bool,
    /// What became of the invitation mail.
    pub mail: MailOutcome,
}

impl InvitationCreated {
    /// The token, for a hub without a mail server only: there the inviting Administrator
    /// hands the link over; where mail reaches the address, nobody else gets it.
    pub fn token_for_inviter(&self) -> Option<&SecretToken> {
        (self.mail == MailOutcome::NoMailServer).then_some(&self.token)
    }
}

/// A pending (not yet accepted) invitation, as Administrators see it.
#[derive(Debug, Clone)]
pub struct InvitationView {
    pub id: InvitationId,
    pub email: String,
    pub role: Role,
    /// Who sent it; `None` for the operator's invitation of the first Administrator.
    pub invited_by: Option<UserId>,
    /// Their display name, when they are still a member.
    pub invited_by_name: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// What became of its latest mail (`NoMailServer` also for invitations from before this
    /// was recorded).
    pub mail: MailOutcome,
}

/// The invitation mail: it names who invited to which organization (a mail without them reads
/// like phishing), the role, and carries the token in the link's fragment.
fn invitation_mail(
    public_url: &str,
    to: &EmailAddress,
    inviter: &str,
    organization: &str,
    role: Role,
    token: &SecretToken,
) -> Message {
    Message {
        to: to.as_str().to_owned(),
        subject: format!("{inviter} invited you to {organization} on Lockstep"),
        body: format!(
            "{inviter} invited you to join {organization} on Lockstep as {}.\n\n\
             Open {}/accept-invitation#{} within 7 days to choose your password.\n\n\
             If you do not know {inviter} or {organization}, ignore this message.\n",
            match role {
                Role::Administrator => "an Administrator",
                Role::Editor => "an Editor",
                Role::Viewer => "a Viewer",
            },
            public_url.trim_end_matches('/'),
            token.expose()
        ),
    }
}

impl Hub {
    fn authorize_org(
        &self,
        caller: &Caller,
        action: Action,
        org: OrganizationId,
    ) -> Result<(), AppError> {
        self.authorize(caller, action, &Resource::organization(org))
    }

    /// Invites a new member with a role; the invitation (valid 7 days) is mailed and its token
    /// answered once, so an Administrator can also hand it over directly.
    pub async fn invite_user(
        &self,
        caller: &Caller,
        email: &str,
        role: Role,
    ) -> Result<InvitationCreated, AppError> {
        let org = caller.organization();
        self.authorize_org(caller, Action::InviteUser, org)?;
        let email = EmailAddress::parse(email).map_err(|e| AppError::Invalid {
            field: "email",
            reason: e.to_string(),
        })?;
        let mut conn = self.store.read().await?;
        // Addresses are unique per organization: another organization's members (and whether
        // one exists) are nothing to this one.
        if users::find_in_organization_by_email_index(&mut conn, org, &self.email_index(&email)?)
            .await?
            .is_some()
        {
            return Err(AppError::Conflict("user with this e-mail address"));
        }
        let pending = invitations::list_pending(&mut conn, org).await?;
        drop(conn);
        // A second invitation for the same address replaces the first: the old token stops
        // working, so only the newest mail can be used.
        let mut replaced = Vec::new();
        for old in pending {
            let address = self
                .open_text(
                    org,
                    "invitation",
                    &old.id.to_string(),
                    "email",
                    &old.email_ciphertext,
                )
                .await?;
            if address.to_lowercase() == email.as_str().to_lowercase() {
                replaced.push(old.id);
            }
        }
        let now = self.clock.now();
        let id = InvitationId::from_uuid(Uuid::now_v7());
        let token = SecretToken::generate("lsi", &mut rand::rng());
        let email_ciphertext = self
            .seal_field(
                org,
                "invitation",
                &id.to_string(),
                "email",
                email.as_str().as_bytes(),
            )
            .await?;
        // The mail names the organization and who invited (a mail without them reads like
        // phishing); read before the change, so a failure changes nothing.
        let organization = self.organization_name(org).await?;
        let inviter = self.display_name_of(org, caller.user()).await?;
        let mut tx = self.store.write().await?;
        for old in &replaced {
            if invitations::delete_pending(&mut tx, org, *old).await? {
                let event = Event::new(caller.actor(), "invitation.replaced", "invitation", *old)
                    .change("replaced_by", FieldChange::value(None::<String>, Some(id)));
                self.record(&mut tx, org, event).await?;
            }
        }
        invitations::insert(
            &mut tx,
            &NewInvitation {
                id,
                organization_id: org,
                token_hash: token.hash(),
                email_ciphertext,
                role: role.as_str().to_owned(),
                invited_by: Some(caller.user()),
                expires_at: now + INVITATION_VALIDITY,
                created_at: now,
            },
        )
        .await?;
        let event = Event::new(caller.actor(), "invitation.created", "invitation", id)
            .change("role", FieldChange::value(None::<String>, Some(role)));
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let mail = self
            .send_invitation_mail(
                org,
                id,
                invitation_mail(
                    &self.options.public_url,
                    &email,
                    &inviter,
                    &organization,
                    role,
                    &token,
                ),
            )
            .await?;
        tracing::info!(invitation = %id, organization = %org, by = %caller.user(), replaced = replaced.len(), ?mail, "user invited");
        Ok(InvitationCreated {
            id,
            token,
            replaced: !replaced.is_empty(),
            mail,
        })
    }

    /// The organization's pending invitations (Administrators). Their e-mail addresses are
    /// personal data: the read is audited like the user list.
    pub async fn list_invitations(&self, caller: &Caller) -> Result<Vec<InvitationView>, AppError> {
        let org = caller.organization();
        self.authorize_org(caller, Action::ListUsers, org)?;
        let mut conn = self.store.read().await?;
        let pending = invitations::list_pending(&mut conn, org).await?;
        let members = users::list(&mut conn, org).await?;
        drop(conn);
        let mut views = Vec::with_capacity(pending.len());
        for invitation in pending {
            let inviter = members
                .iter()
                .find(|m| Some(m.id) == invitation.invited_by)
                .cloned();
            let invited_by_name = match inviter {
                Some(user) => Some(self.open_profile(&user).await?.1),
                None => None,
            };
            views.push(self.invitation_view(invitation, invited_by_name).await?);
        }
        let event = Event::new(caller.actor(), "invitations.listed", "organization", org);
        self.record_read(caller, event).await?;
        Ok(views)
    }

    async fn invitation_view(
        &self,
        invitation: invitations::PendingInvitation,
        invited_by_name: Option<String>,
    ) -> Result<InvitationView, AppError> {
        let email = self
            .open_text(
                invitation.organization_id,
                "invitation",
                &invitation.id.to_string(),
                "email",
                &invitation.email_ciphertext,
            )
            .await?;
        let role = invitation
            .role
            .parse()
            .map_err(|_| AppError::Refused("the invitation holds no valid role"))?;
        Ok(InvitationView {
            id: invitation.id,
            email,
            role,
            invited_by: invitation.invited_by,
            invited_by_name,
            created_at: invitation.created_at,
            expires_at: invitation.expires_at,
            mail: match invitation.mail {
                Some(MailStatus::Sent) => MailOutcome::Sent,
                Some(MailStatus::Failed) => MailOutcome::Failed,
                None => MailOutcome::NoMailServer,
            },
        })
    }

    /// Sends an invitation's mail and records what became of it, so the invitations list shows
    /// a failed one.
    pub(crate) async fn send_invitation_mail(
        &self,
        org: OrganizationId,
        id: InvitationId,
        message: Message,
    ) -> Result<MailOutcome, AppError> {
        let mail = self.send_mail(message).await;
        let status = match mail {
            MailOutcome::Sent => Some(MailStatus::Sent),
            MailOutcome::Failed => Some(MailStatus::Failed),
            MailOutcome::NoMailServer => None,
        };
        let mut conn = self.store.read().await?;
        invitations::set_mail_status(&mut conn, org, id, status).await?;
        Ok(mail)
    }

    /// A pending invitation of the caller's organization: looked up first (another
    /// organization's is "not found", like an unknown id), then the role decides.
    async fn pending_invitation(
        &self,
        caller: &Caller,
        id: InvitationId,
    ) -> Result<invitations::PendingInvitation, AppError> {
        let mut conn = self.store.read().await?;
        let invitation = invitations::get_pending(&mut conn, caller.organization(), id)
            .await?
            .ok_or(AppError::NotFound("invitation"))?;
        drop(conn);
        self.authorize_org(caller, Action::InviteUser, invitation.organization_id)?;
        Ok(invitation)
    }

    /// Sends a pending invitation again with a new token (the old one stops working) and a new
    /// 7-day validity; the new token is answered once, like a new invitation's.
    pub async fn resend_invitation(
        &self,
        caller: &Caller,
        id: InvitationId,
    ) -> Result<InvitationCreated, AppError> {
        let invitation = self.pending_invitation(caller, id).await?;
        let org = invitation.organization_id;
        let view = self.invitation_view(invitation, None).await?;
        let email = EmailAddress::parse(&view.email)
            .map_err(|_| AppError::Refused("the invitation holds no valid e-mail address"))?;
        let organization = self.organization_name(org).await?;
        let inviter = self.display_name_of(org, caller.user()).await?;
        let token = SecretToken::generate("lsi", &mut rand::rng());
        let mut tx = self.store.write().await?;
        let expires_at = self.clock.now() + INVITATION_VALIDITY;
        if !invitations::renew(&mut tx, org, id, &token.hash(), expires_at).await? {
            return Err(AppError::NotFound("invitation"));
        }
        let event = Event::new(caller.actor(), "invitation.resent", "invitation", id)
            .change("token", FieldChange::secret());
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let mail = self
            .send_invitation_mail(
                org,
                id,
                invitation_mail(
                    &self.options.public_url,
                    &email,
                    &inviter,
                    &organization,
                    view.role,
                    &token,
                ),
            )
            .await?;
        tracing::info!(invitation = %id, by = %caller.user(), ?mail, "invitation resent");
        Ok(InvitationCreated {
            id,
            token,
            replaced: false,
            mail,
        })
    }

    /// Revokes a pending invitation: its token then fails like an unknown one.
    pub async fn revoke_invitation(
        &self,
        caller: &Caller,
        id: InvitationId,
    ) -> Result<(), AppError> {
        let invitation = self.pending_invitation(caller, id).await?;
        let org = invitation.organization_id;
        let mut tx = self.store.write().await?;
        if !invitations::delete_pending(&mut tx, org, id).await? {
            return Err(AppError::NotFound("invitation"));
        }
        let event = Event::new(caller.actor(), "invitation.revoked", "invitation", id);
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(invitation = %id, by = %caller.user(), "invitation revoked");
        Ok(())
    }

    /// Resets a member's second factor (Administrators): removes their TOTP secret, recovery
    /// codes and passkeys (each audited `passkey.removed`) and ends their sessions, so they sign
    /// in again with their password alone (and must enrol again where the organization requires
    /// a second factor).
    pub async fn reset_user_totp(&self, caller: &Caller, id: UserId) -> Result<(), AppError> {
        let user = self.member_user(caller, Action::UpdateUser, id).await?;
        let org = user.organization_id;
        let mut tx = self.store.write().await?;
        users::set_totp_secret(&mut tx, org, id, None, self.clock.now()).await?;
        users::replace_recovery_codes(&mut tx, org, id, &[]).await?;
        sessions::delete_for_user(&mut tx, org, id, None).await?;
        for passkey in lockstep_storage::passkeys::list_for_user(&mut tx, org, id).await? {
            lockstep_storage::passkeys::delete(&mut tx, org, id, passkey.id).await?;
            let event = Event::new(caller.actor(), "passkey.removed", "passkey", passkey.id);
            self.record(&mut tx, org, event).await?;
        }
        let event = Event::new(caller.actor(), "user.totp_reset", "user", id)
            .change("totp_secret", FieldChange::secret())
            .change(
                "totp_enabled",
                FieldChange::value(Some(user.totp_enabled), Some(false)),
            );
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(user = %id, by = %caller.user(), "second factor reset");
        Ok(())
    }

    async fn user_view(&self, user: StoredUser) -> Result<UserView, AppError> {
        let (email, display_name) = self.open_profile(&user).await?;
        Ok(UserView {
            email,
            display_name,
            id: user.id,
            role: user.role,
            active: user.status == UserStatus::Active,
            totp_enabled: user.totp_enabled,
            created_at: user.created_at,
        })
    }

    pub async fn list_users(&self, caller: &Caller) -> Result<Vec<UserView>, AppError> {
        let org = caller.organization();
        self.authorize_org(caller, Action::ListUsers, org)?;
        let mut conn = self.store.read().await?;
        let list = users::list(&mut conn, org).await?;
        drop(conn);
        let mut views = Vec::with_capacity(list.len());
        for user in list {
            views.push(self.user_view(user).await?);
        }
        let event = Event::new(caller.actor(), "users.listed", "organization", org);
        self.record_read(caller, event).await?;
        Ok(views)
    }

    /// A user of the caller's organization. The lookup comes first and is scoped to the caller's
    /// organization, so another organization's user is "not found" for every role — exactly like
    /// an id that does not exist — and only then does the role matter.
    async fn member_user(
        &self,
        caller: &Caller,
        action: Action,
        id: UserId,
    ) -> Result<StoredUser, AppError> {
        let mut conn = self.store.read().await?;
        let user = users::get(&mut conn, caller.organization(), id)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        drop(conn);
        self.authorize(
            caller,
            action,
            &Resource::owned_by(user.organization_id, user.id),
        )?;
        Ok(user)
    }

    pub async fn get_user(&self, caller: &Caller, id: UserId) -> Result<UserView, AppError> {
        let user = self.member_user(caller, Action::ReadUser, id).await?;
        let view = self.user_view(user).await?;
        self.record_read(caller, Event::new(caller.actor(), "user.read", "user", id))
            .await?;
        Ok(view)
    }

    /// Records a read of personal data in its own transaction; the answer is not given when the
    /// event cannot be written.
    pub(crate) async fn record_read(&self, caller: &Caller, event: Event) -> Result<(), AppError> {
        let mut tx = self.store.write().await?;
        self.record(&mut tx, caller.organization(), event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Changes a user's role and/or deactivates or reactivates them. Deactivation ends their
    /// sessions at once; a role change retires their API tokens. The last active Administrator
    /// cannot be demoted or deactivated.
    pub async fn update_user(
        &self,
        caller: &Caller,
        id: UserId,
        update: UserUpdate,
    ) -> Result<UserView, AppError> {
        let user = self.member_user(caller, Action::UpdateUser, id).await?;
        let org = user.organization_id;
        let now = self.clock.now();
        let loses_admin = user.role == Role::Administrator
            && user.status == UserStatus::Active
            && (update.role.is_some_and(|r| r != Role::Administrator)
                || update.active == Some(false));
        let mut tx = self.store.write().await?;
        if loses_admin && users::count_active_administrators(&mut tx, org).await? <= 1 {
            return Err(AppError::Refused(
                "the last active Administrator cannot be demoted or deactivated",
            ));
        }
        if let Some(role) = update.role {
            users::set_role(&mut tx, org, id, role, now).await?;
            if role != user.role {
                lockstep_storage::api_tokens::delete_for_user(&mut tx, org, id).await?;
            }
        }
        if let Some(active) = update.active {
            let status = if active {
                UserStatus::Active
            } else {
                UserStatus::Deactivated
            };
            users::set_status(&mut tx, org, id, status, now).await?;
            if !active {
                sessions::delete_for_user(&mut tx, org, id, None).await?;
            }
        }
        let mut event = Event::new(caller.actor(), "user.updated", "user", id);
        if let Some(role) = update.role.filter(|r| *r != user.role) {
            event = event.change("role", FieldChange::value(Some(user.role), Some(role)));
        }
        let was_active = user.status == UserStatus::Active;
        if let Some(active) = update.active.filter(|a| *a != was_active) {
            event = event.change("active", FieldChange::value(Some(was_active), Some(active)));
        }
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(user = %id, by = %caller.user(), "user updated");
        let mut conn = self.store.read().await?;
        let updated = users::get(&mut conn, org, id)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        drop(conn);
        self.user_view(updated).await
    }

    /// Deletes a user with their sessions, tokens and codes. Not the last active Administrator.
    pub async fn delete_user(&self, caller: &Caller, id: UserId) -> Result<(), AppError> {
        let user = self.member_user(caller, Action::DeleteUser, id).await?;
        let org = user.organization_id;
        let mut tx = self.store.write().await?;
        if user.role == Role::Administrator
            && user.status == UserStatus::Active
            && users::count_active_administrators(&mut tx, org).await? <= 1
        {
            return Err(AppError::Refused(
                "the last active Administrator cannot be deleted",
            ));
        }
        users::delete(&mut tx, org, id).await?;
        let event = Event::new(caller.actor(), "user.deleted", "user", id);
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(user = %id, by = %caller.user(), "user deleted");
        Ok(())
    }

    /// Rotates the organization's data key (Administrators): new data is encrypted with a new
    /// version, wrapped by the current keyring key; older versions stay to decrypt older data.
    pub async fn rotate_organization_key(&self, caller: &Caller) -> Result<u32, AppError> {
        let org = caller.organization();
        self.authorize_org(caller, Action::UpdateSettings, org)?;
        let _wrapping = self.key_wrap_lock.read().await;
        let mut tx = self.store.write().await?;
        let existing = lockstep_storage::organizations::keys(&mut tx, org).await?;
        let version = existing.iter().map(|k| k.version).max().unwrap_or(0) + 1;
        let wrapped = self
            .vault
            .with_keyring(|keyring| keyring.new_org_key(org, version, &mut rand::rng()))??;
        let key = lockstep_storage::organizations::StoredOrgKey {
            version: wrapped.version,
            keyring_version: wrapped.keyring_version,
            wrapped_key: wrapped.wrapped,
        };
        lockstep_storage::organizations::insert_key(&mut tx, org, &key, self.clock.now()).await?;
        let event = Event::new(
            caller.actor(),
            "organization.key_rotated",
            "organization",
            org,
        )
        .change(
            "key_version",
            FieldChange::value(Some(version - 1), Some(version)),
        );
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        // The next use unwraps every version again, the new one included.
        self.vault.forget_org(org);
        tracing::info!(organization = %org, key_version = version, "organization key rotated");
        Ok(version)
    }

    pub async fn organization_settings(
        &self,
        caller: &Caller,
    ) -> Result<OrganizationSettings, AppError> {
        let org = caller.organization();
        self.authorize_org(caller, Action::ReadSettings, org)?;
        let mut conn = self.store.read().await?;
        Ok(settings::get(&mut conn, org).await?)
    }

    /// Changes settings. Requiring TOTP applies at once: members without TOTP may then only
    /// enrol. The audit depth (1..=1000) applies from the next event of each object.
    pub async fn update_organization_settings(
        &self,
        caller: &Caller,
        update: SettingsUpdate,
    ) -> Result<OrganizationSettings, AppError> {
        let org = caller.organization();
        self.authorize_org(caller, Action::UpdateSettings, org)?;
        if update.audit_depth.is_some_and(|d| !(1..=1000).contains(&d)) {
            return Err(AppError::Invalid {
                field: "audit_depth",
                reason: "must be between 1 and 1000".to_owned(),
            });
        }
        if let Some(zone) = &update.time_zone {
            crate::TimeZone::parse(zone)?;
        }
        if update
            .dataset_retention_days
            .is_some_and(|d| !(1..=crate::datasets::MAX_RETENTION_DAYS).contains(&d))
        {
            return Err(AppError::Invalid {
                field: "dataset_retention_days",
                reason: format!(
                    "must be between 1 and {}",
                    crate::datasets::MAX_RETENTION_DAYS
                ),
            });
        }
        if update
            .deletion_grace_days
            .is_some_and(|d| d > crate::deletion::MAX_DELETION_GRACE_DAYS)
        {
            return Err(AppError::Invalid {
                field: "deletion_grace_days",
                reason: format!(
                    "must be between 0 and {}",
                    crate::deletion::MAX_DELETION_GRACE_DAYS
                ),
            });
        }
        let mut tx = self.store.write().await?;
        let before = settings::get(&mut tx, org).await?;
        let after = OrganizationSettings {
            require_totp: update.require_totp.unwrap_or(before.require_totp),
            audit_depth: update.audit_depth.unwrap_or(before.audit_depth),
            long_term_audit: update.long_term_audit.unwrap_or(before.long_term_audit),
            time_zone: update
                .time_zone
                .clone()
                .unwrap_or_else(|| before.time_zone.clone()),
            dataset_retention_days: update
                .dataset_retention_days
                .unwrap_or(before.dataset_retention_days),
            deletion_grace_days: update
                .deletion_grace_days
                .unwrap_or(before.deletion_grace_days),
        };
        settings::put(&mut tx, org, after.clone(), self.clock.now()).await?;
        let mut event = Event::new(
            caller.actor(),
            "organization.settings_changed",
            "organization",
            org,
        );
        if before.require_totp != after.require_totp {
            event = event.change(
                "require_totp",
                FieldChange::value(Some(before.require_totp), Some(after.require_totp)),
            );
        }
        if before.audit_depth != after.audit_depth {
            event = event.change(
                "audit_depth",
                FieldChange::value(Some(before.audit_depth), Some(after.audit_depth)),
            );
        }
        if before.time_zone != after.time_zone {
            event = event.change(
                "time_zone",
                FieldChange::value(Some(&before.time_zone), Some(&after.time_zone)),
            );
        }
        if before.dataset_retention_days != after.dataset_retention_days {
            event = event.change(
                "dataset_retention_days",
                FieldChange::value(
                    Some(before.dataset_retention_days),
                    Some(after.dataset_retention_days),
                ),
            );
        }
        if before.deletion_grace_days != after.deletion_grace_days {
            event = event.change(
                "deletion_grace_days",
                FieldChange::value(
                    Some(before.deletion_grace_days),
                    Some(after.deletion_grace_days),
                ),
            );
        }
        if before.long_term_audit != after.long_term_audit {
            event = event.change(
                "long_term_audit",
                FieldChange::value(Some(before.long_term_audit), Some(after.long_term_audit)),
            );
        }
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(after)
    }

    /// The active members of the caller's organization as (id, display name), sorted by name:
    /// any member may read them, to pick whom to share or hand a data set to and to read an
    /// owner's name. Nothing else about a member (no e-mail, no role) and no audit event: the
    /// names are those every page header already shows to colleagues.
    pub async fn member_names(&self, caller: &Caller) -> Result<Vec<(UserId, String)>, AppError> {
        let org = caller.organization();
        self.authorize_in_organization(caller, Action::ListPipelines)?;
        let mut conn = self.store.read().await?;
        let list = users::list(&mut conn, org).await?;
        drop(conn);
        let mut names = Vec::with_capacity(list.len());
        for user in list {
            if user.status != UserStatus::Active {
                continue;
            }
            let name = self
                .open_text(
                    org,
                    "user",
                    &user.id.to_string(),
                    "display_name",
                    &user.display_name_ciphertext,
                )
                .await?;
            names.push((user.id, name));
        }
        names.sort_by_cached_key(|(id, name)| (name.to_lowercase(), id.to_string()));
        Ok(names)
    }
}
