//! An organization deleted at its Administrators' request: an Administrator asks with their
//! password (and their TOTP code where they have TOTP) and the organization's exact name; every
//! active Administrator is mailed; after the organization's grace period
//! (`deletion_grace_days`, 0 to 30, 7 by default) [`Hub::delete_due_organizations`], run by the
//! hub's periodic sweep, deletes it exactly as the operator's deletion does
//! ([`Hub::shred_organization`]). Until then any Administrator may cancel, and every member's
//! pages say when it will happen.
//!
//! A passkey-only account confirms with its password: a passkey ceremony is not asked here.

use crate::audit::{Actor, Event, FieldChange};
use crate::identity::Caller;
use crate::jobs::SignInFailure;
use crate::organizations::DeletedBy;
use crate::{AppError, Hub, TimeZone};
use lockstep_auth::{LoginFailures, Password, PasswordHash};
use lockstep_domain::{OrganizationId, Role, UserId};
use lockstep_policy::Action;
use lockstep_storage::organization_deletions::{self, PendingDeletion};
use lockstep_storage::users::{StoredUser, UserStatus};
use lockstep_storage::{StoreError, organizations, settings, users};
use time::{Duration, OffsetDateTime};

/// Days between the request and the deletion unless the organization says otherwise.
pub const DEFAULT_DELETION_GRACE_DAYS: u32 = 7;
/// The longest grace period an organization may set.
pub const MAX_DELETION_GRACE_DAYS: u32 = 30;

/// A pending deletion of the caller's organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionView {
    pub due_at: OffsetDateTime,
    pub requested_by: UserId,
    pub requested_at: OffsetDateTime,
}

impl From<PendingDeletion> for DeletionView {
    fn from(d: PendingDeletion) -> Self {
        DeletionView {
            due_at: d.due_at,
            requested_by: d.requested_by,
            requested_at: d.requested_at,
        }
    }
}

/// What the Administrator confirms a deletion with.
pub struct DeletionConfirmation<'a> {
    pub password: &'a Password,
    /// A current TOTP code or an unused recovery code; needed when the account has TOTP.
    pub totp: Option<&'a str>,
    /// The organization's name, typed exactly.
    pub confirm_name: &'a str,
}

impl std::fmt::Debug for DeletionConfirmation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeletionConfirmation(..)")
    }
}

impl Hub {
    /// Asks for the whole organization to be deleted after its grace period (at once with 0).
    /// Needs a session (not an API token), the caller's password, their TOTP code where they
    /// have TOTP, and the organization's exact name; a wrong one changes nothing but counts,
    /// for a password or code, as a failed sign-in towards the lockout.
    pub async fn request_organization_deletion(
        &self,
        caller: &Caller,
        confirmation: DeletionConfirmation<'_>,
    ) -> Result<DeletionView, AppError> {
        let org = caller.organization();
        self.authorize_in_organization(caller, Action::DeleteOrganization)?;
        if caller.session_id().is_none() {
            return Err(AppError::NotAllowedYet(
                "API tokens cannot delete the organization: sign in with a password",
            ));
        }
        let mut conn = self.store.read().await?;
        if organization_deletions::get(&mut conn, org).await?.is_some() {
            return Err(AppError::Conflict("organization deletion"));
        }
        let name = organizations::get(&mut conn, org)
            .await?
            .ok_or(AppError::NotFound("organization"))?
            .name;
        let user = users::get(&mut conn, org, caller.user())
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let grace = settings::get(&mut conn, org).await?.deletion_grace_days;
        drop(conn);
        if confirmation.confirm_name.trim() != name.as_str() {
            return Err(AppError::Invalid {
                field: "confirm_name",
                reason: "is not the organization's name (type it exactly as shown)".to_owned(),
            });
        }
        self.reauthenticate(&user, confirmation.password, confirmation.totp)
            .await?;

        // As stored (milliseconds), so the answer and later reads agree.
        let now = self.clock.now();
        let now = now.replace_millisecond(now.millisecond()).unwrap_or(now);
        let pending = PendingDeletion {
            organization_id: org,
            requested_by: caller.user(),
            requested_at: now,
            due_at: now + Duration::days(i64::from(grace)),
        };
        let mut tx = self.store.write().await?;
        organization_deletions::insert(&mut tx, &pending).await?;
        let event = Event::new(
            Actor::User(caller.user()),
            "organization.deletion_requested",
            "organization",
            org,
        )
        .change(
            "deletion_due_at",
            FieldChange::value(None::<String>, Some(rfc3339(pending.due_at))),
        );
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(organization = %org, by = %caller.user(), grace_days = grace, "organization deletion requested");

        let zone = self.organization_time_zone(org).await?;
        let who = self.display_name_of(org, caller.user()).await?;
        let due = if grace == 0 {
            "now, at once".to_owned()
        } else {
            format!("on {}", mail_time(zone, pending.due_at))
        };
        let cancel = if grace == 0 {
            "With no grace period set, it cannot be cancelled.".to_owned()
        } else {
            format!(
                "Until then any Administrator can cancel it: sign in and open Settings, \
                 \"Delete organization\", Cancel the deletion ({}/settings#deletion).",
                self.public_url()
            )
        };
        let body = |organization: &str| {
            format!(
                "{who} asked on {} to delete the organization {organization} on Lockstep with \
                 everything it holds: members, connections and their credentials, pipelines, \
                 runs, data sets, settings and audit. Its keys are destroyed: nothing of it can \
                 be read again.\n\nIt will be deleted {due}.\n\n{cancel}\n",
                mail_time(zone, now)
            )
        };
        self.mail_administrators(org, |organization| {
            (
                format!("{organization} will be deleted from Lockstep"),
                body(organization),
            )
        })
        .await?;
        if grace == 0 {
            self.delete_if_due(&pending, now).await?;
        }
        Ok(pending.into())
    }

    /// The organization's pending deletion, if one was asked for (Administrators).
    pub async fn organization_deletion(
        &self,
        caller: &Caller,
    ) -> Result<Option<DeletionView>, AppError> {
        self.authorize_in_organization(caller, Action::DeleteOrganization)?;
        let mut conn = self.store.read().await?;
        Ok(
            organization_deletions::get(&mut conn, caller.organization())
                .await?
                .map(DeletionView::from),
        )
    }

    /// When the caller's organization will be deleted, if that is pending: every member's pages
    /// say so (a date only, nothing else).
    pub async fn organization_deletion_due(
        &self,
        caller: &Caller,
    ) -> Result<Option<OffsetDateTime>, AppError> {
        let mut conn = self.store.read().await?;
        Ok(
            organization_deletions::get(&mut conn, caller.organization())
                .await?
                .map(|d| d.due_at),
        )
    }

    /// Cancels the pending deletion (any Administrator); every active Administrator is mailed.
    pub async fn cancel_organization_deletion(&self, caller: &Caller) -> Result<(), AppError> {
        let org = caller.organization();
        self.authorize_in_organization(caller, Action::DeleteOrganization)?;
        let mut tx = self.store.write().await?;
        let Some(pending) = organization_deletions::get(&mut tx, org).await? else {
            return Err(AppError::NotFound("pending organization deletion"));
        };
        organization_deletions::delete(&mut tx, org).await?;
        let event = Event::new(
            Actor::User(caller.user()),
            "organization.deletion_cancelled",
            "organization",
            org,
        )
        .change(
            "deletion_due_at",
            FieldChange::value(Some(rfc3339(pending.due_at)), None::<String>),
        );
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(organization = %org, by = %caller.user(), "organization deletion cancelled");
        let who = self.display_name_of(org, caller.user()).await?;
        self.mail_administrators(org, |organization| {
            (
                format!("The deletion of {organization} was cancelled"),
                format!(
                    "{who} cancelled the deletion of the organization {organization} on \
                     Lockstep. Nothing will be deleted.\n"
                ),
            )
        })
        .await?;
        Ok(())
    }

    /// Deletes every organization whose requested deletion is due, as the operator's deletion
    /// does, the requesting member recorded as the actor. Run by the hub's periodic sweep; the
    /// operator's log says only that it happened (ids). Answers how many were deleted.
    pub async fn delete_due_organizations(&self) -> Result<u64, AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        let now = self.clock.now();
        let mut conn = self.store.read().await?;
        let due = organization_deletions::due(&mut conn, now).await?;
        drop(conn);
        let mut deleted = 0;
        for pending in due {
            match self.delete_if_due(&pending, now).await {
                Ok(true) => deleted += 1,
                Ok(false) | Err(AppError::NotFound(_)) => {}
                Err(err) => {
                    tracing::warn!(organization = %pending.organization_id, error = %err, "a due organization deletion failed");
                }
            }
        }
        Ok(deleted)
    }

    async fn delete_if_due(
        &self,
        pending: &PendingDeletion,
        now: OffsetDateTime,
    ) -> Result<bool, AppError> {
        let org = pending.organization_id;
        let done = self
            .shred_organization(
                org,
                DeletedBy::Request {
                    requested_by: pending.requested_by,
                    now,
                },
            )
            .await?;
        if done {
            tracing::info!(organization = %org, requested_by = %pending.requested_by, "organization deleted at its Administrators' request");
        }
        Ok(done)
    }

    /// Checks the signed-in member's password and, where they have TOTP, a code, before a grave
    /// change. A wrong one counts as a failed sign-in (the lockout applies); a locked account is
    /// refused whatever it sends.
    pub(crate) async fn reauthenticate(
        &self,
        user: &StoredUser,
        password: &Password,
        totp: Option<&str>,
    ) -> Result<(), AppError> {
        let now = self.clock.now();
        let policy = self.options.lockout;
        let mut failures = LoginFailures {
            count: user.failed_logins,
            locked_until: user.locked_until,
        };
        for at in self.pending_sign_in_failures(user.id) {
            failures = policy.after_failure(failures, at);
        }
        let hash = PasswordHash::from_stored(user.password_hash.clone());
        let right = self.hasher.verify(password, Some(&hash)).await?;
        if policy.is_locked(&failures, now) {
            return Err(AppError::Invalid {
                field: "password",
                reason: "too many wrong attempts: your account is locked for a while".to_owned(),
            });
        }
        let failed = || SignInFailure {
            organization: user.organization_id,
            user: user.id,
            at: now,
        };
        if !right {
            self.record_failure(failed()).await?;
            return Err(AppError::Invalid {
                field: "password",
                reason: "is not your password".to_owned(),
            });
        }
        if user.totp_enabled {
            let Some(code) = totp.map(str::trim).filter(|c| !c.is_empty()) else {
                return Err(AppError::Invalid {
                    field: "totp",
                    reason: "enter the current code of your authenticator (or a recovery code)"
                        .to_owned(),
                });
            };
            if !self.check_second_factor(user, code).await? {
                self.record_failure(failed()).await?;
                return Err(AppError::Invalid {
                    field: "totp",
                    reason: "is neither a current TOTP code nor an unused recovery code".to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Mails every active Administrator of `org`; `message` makes the subject and body from the
    /// organization's name. A mail that fails is logged, never answered.
    async fn mail_administrators(
        &self,
        org: OrganizationId,
        message: impl Fn(&str) -> (String, String),
    ) -> Result<(), AppError> {
        let organization = self.organization_name(org).await?;
        let mut conn = self.store.read().await?;
        let admins: Vec<StoredUser> = users::list(&mut conn, org)
            .await?
            .into_iter()
            .filter(|u| u.role == Role::Administrator && u.status == UserStatus::Active)
            .collect();
        drop(conn);
        let (subject, body) = message(&organization);
        for admin in admins {
            let to = self
                .open_text(
                    org,
                    "user",
                    &admin.id.to_string(),
                    "email",
                    &admin.email_ciphertext,
                )
                .await?;
            self.send_mail(lockstep_mail::Message {
                to,
                subject: subject.clone(),
                body: body.clone(),
            })
            .await;
        }
        Ok(())
    }
}

/// A time in an audit change: RFC 3339 in UTC.
fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A time for a mail, in the organization's time zone and naming it.
pub(crate) fn mail_time(zone: TimeZone, t: OffsetDateTime) -> String {
    let t = zone.local(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} {}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        zone.name()
    )
}
