//! The incident button: an Administrator ends every session and revokes every API token of one
//! member, or of every member of the organization (themselves included), and requires a new
//! password at their next sign-in. A sign-in with the old password, or with a passkey, is then
//! refused with [`AppError::PasswordResetRequired`] until a password reset (which clears it);
//! single sign-on still signs in (the identity provider verified the person afresh), and leaves
//! the requirement for passwords in place. Audited `user.incident_response` per member (and
//! `organization.incident_response` for the whole organization); each member is mailed.

use crate::audit::{Actor, Event, FieldChange};
use crate::identity::Caller;
use crate::{AppError, Hub};
use lockstep_domain::UserId;
use lockstep_policy::Action;
use lockstep_storage::users::{StoredUser, UserStatus};
use lockstep_storage::{StoreError, sessions, users};

/// What an incident response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IncidentOutcome {
    pub sessions_ended: u64,
    pub tokens_revoked: u64,
    /// The members whose credentials ended (and who must reset their password).
    pub members: u64,
}

impl Hub {
    /// Ends every session and API token of `user`, or with `None` of every member of the
    /// caller's organization (the caller included: their own session ends too), and requires a
    /// password reset before their next sign-in. Administrators only; one transaction.
    pub async fn respond_to_incident(
        &self,
        caller: &Caller,
        user: Option<UserId>,
    ) -> Result<IncidentOutcome, AppError> {
        let org = caller.organization();
        self.authorize_in_organization(caller, Action::RespondToIncident)?;
        let mut tx = self.store.write().await?;
        let targets: Vec<StoredUser> = match user {
            Some(id) => vec![
                users::get(&mut tx, org, id)
                    .await?
                    .ok_or(AppError::NotFound("user"))?,
            ],
            None => users::list(&mut tx, org).await?,
        };
        let actor = Actor::User(caller.user());
        let mut outcome = IncidentOutcome::default();
        for target in &targets {
            let ended = sessions::delete_for_user(&mut tx, org, target.id, None).await?;
            let revoked = self
                .revoke_all_api_tokens(&mut tx, org, target.id, actor.clone())
                .await?;
            let before = users::must_reset_password(&mut tx, org, target.id).await?;
            users::set_must_reset_password(&mut tx, org, target.id, true).await?;
            let event = Event::new(actor.clone(), "user.incident_response", "user", target.id)
                .change(
                    "sessions_ended",
                    FieldChange::value(None::<u64>, Some(ended)),
                )
                .change(
                    "api_tokens_revoked",
                    FieldChange::value(None::<u64>, Some(revoked)),
                )
                .change(
                    "must_reset_password",
                    FieldChange::value(Some(before), Some(true)),
                );
            self.record(&mut tx, org, event).await?;
            outcome.sessions_ended += ended;
            outcome.tokens_revoked += revoked;
            outcome.members += 1;
        }
        if user.is_none() {
            // Support access ends too: every grant in force revoked, every support session ended.
            let (grants, support_sessions) = lockstep_storage::support::revoke_all(
                &mut tx,
                org,
                Some(caller.user()),
                self.clock.now(),
            )
            .await?;
            outcome.sessions_ended += support_sessions;
            let event = Event::new(actor, "organization.incident_response", "organization", org)
                .change(
                    "support_grants_revoked",
                    FieldChange::value(None::<u64>, Some(grants)),
                )
                .change(
                    "members",
                    FieldChange::value(None::<u64>, Some(outcome.members)),
                )
                .change(
                    "sessions_ended",
                    FieldChange::value(None::<u64>, Some(outcome.sessions_ended)),
                )
                .change(
                    "api_tokens_revoked",
                    FieldChange::value(None::<u64>, Some(outcome.tokens_revoked)),
                );
            self.record(&mut tx, org, event).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        tracing::warn!(
            organization = %org,
            by = %caller.user(),
            members = outcome.members,
            sessions_ended = outcome.sessions_ended,
            tokens_revoked = outcome.tokens_revoked,
            "incident response: sessions and API tokens ended, password resets required"
        );
        let organization = self.organization_name(org).await?;
        for target in targets {
            if target.status != UserStatus::Active {
                continue;
            }
            let to = self
                .open_text(
                    org,
                    "user",
                    &target.id.to_string(),
                    "email",
                    &target.email_ciphertext,
                )
                .await?;
            self.send_mail(lockstep_mail::Message {
                to,
                subject: format!("Your Lockstep sessions in {organization} were ended"),
                body: format!(
                    "An Administrator of {organization} responded to a security incident: every \
                     session and every API token of your Lockstep account was ended.\n\n\
                     Before you sign in with a password again, choose a new one: open {}/forgot-password \
                     and follow the link you are mailed. Create new API tokens afterwards where \
                     you need them.\n",
                    self.public_url()
                ),
            })
            .await;
        }
        Ok(outcome)
    }
}
