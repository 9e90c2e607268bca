//! The operator's organization use cases: create (with its data key and the first
//! administrator's invitation), list, delete (crypto-shredding its keys) — the deletion shared
//! with the one its Administrators ask for (`deletion.rs`).

use crate::audit::Actor;
use crate::{AppError, Hub, Operator};
use lockstep_auth::SecretToken;
use lockstep_domain::{EmailAddress, InvitationId, OrganizationId, OrganizationName, UserId};
use lockstep_storage::StoreError;
use lockstep_storage::invitations::{self, NewInvitation};
use lockstep_storage::organization_deletions;
use lockstep_storage::organizations::{self, Organization, StoredOrgKey};
use lockstep_vault::Aad;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// How long the first administrator's invitation stays valid.
pub const INVITATION_VALIDITY: Duration = Duration::days(7);

/// What the operator sees of an organization: id and name only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationSummary {
    pub id: OrganizationId,
    pub name: OrganizationName,
}

/// A new organization and the invitation for its first administrator (shown once).
#[derive(Debug)]
pub struct CreatedOrganization {
    pub id: OrganizationId,
    pub invitation_token: SecretToken,
}

impl Hub {
    /// Creates an organization with its own data key (version 1, wrapped by the keyring) and an
    /// invitation for its first administrator, whose e-mail is stored encrypted under that key.
    pub async fn create_organization(
        &self,
        operator: &Operator,
        name: &str,
        admin_email: &str,
    ) -> Result<CreatedOrganization, AppError> {
        let name = OrganizationName::parse(name).map_err(|e| AppError::Invalid {
            field: "name",
            reason: e.to_string(),
        })?;
        let email = EmailAddress::parse(admin_email).map_err(|e| AppError::Invalid {
            field: "admin_email",
            reason: e.to_string(),
        })?;
        let now = self.clock.now();
        let org_id = OrganizationId::from_uuid(Uuid::now_v7());
        let invitation_id = InvitationId::from_uuid(Uuid::now_v7());

        // Shared with other key wrapping; a keyring rotation waits until this one is stored.
        let _wrapping = self.key_wrap_lock.read().await;
        let (wrapped, email_ciphertext, token) = self.vault.with_keyring(|keyring| {
            let mut rng = rand::rng();
            let wrapped = keyring.new_org_key(org_id, 1, &mut rng)?;
            let keys = keyring.unwrap_org_keys(org_id, std::slice::from_ref(&wrapped))?;
            let aad = Aad {
                object_kind: "invitation",
                object_id: &invitation_id.to_string(),
                field: "email",
            };
            let email_ciphertext = keys.encrypt(&aad, email.as_str().as_bytes(), &mut rng)?;
            let token = SecretToken::generate("lsi", &mut rng);
            Ok::<_, lockstep_vault::VaultError>((wrapped, email_ciphertext, token))
        })??;

        let name_text = name.as_str().to_owned();
        let mut tx = self.store.write().await?;
        organizations::insert(
            &mut tx,
            &Organization {
                id: org_id,
                name,
                created_at: now,
            },
        )
        .await?;
        let key = StoredOrgKey {
            version: wrapped.version,
            keyring_version: wrapped.keyring_version,
            wrapped_key: wrapped.wrapped,
        };
        organizations::insert_key(&mut tx, org_id, &key, now).await?;
        invitations::insert(
            &mut tx,
            &NewInvitation {
                id: invitation_id,
                organization_id: org_id,
                token_hash: token.hash(),
                email_ciphertext,
                role: "administrator".to_owned(),
                invited_by: None,
                expires_at: now + INVITATION_VALIDITY,
                created_at: now,
            },
        )
        .await?;
        let event = crate::audit::Event::new(
            crate::audit::Actor::Operator(operator.token_id().to_owned()),
            "organization.created",
            "organization",
            org_id,
        );
        self.record(&mut tx, org_id, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let message = lockstep_mail::Message {
            to: email.as_str().to_owned(),
            subject: format!("{name_text} on Lockstep is ready"),
            body: format!(
                "The operator of this Lockstep hub created the organization {name_text} and \
                 made you its first Administrator.\n\n\
                 Open {}/accept-invitation#{} within 7 days to choose your password.\n",
                self.options.public_url.trim_end_matches('/'),
                token.expose()
            ),
        };
        // The operator is shown the token once whatever became of the mail; the invitations
        // list shows a failed one.
        if let Err(err) = self
            .send_invitation_mail(org_id, invitation_id, message)
            .await
        {
            tracing::error!(organization = %org_id, error = %err, "the invitation mail's outcome could not be recorded");
        }
        tracing::info!(organization = %org_id, operator_token = operator.token_id(), "organization created");
        Ok(CreatedOrganization {
            id: org_id,
            invitation_token: token,
        })
    }

    /// All organizations, ids and names only.
    pub async fn list_organizations(
        &self,
        _operator: &Operator,
    ) -> Result<Vec<OrganizationSummary>, AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        let mut conn = self.store.read().await?;
        let orgs = organizations::list(&mut conn).await?;
        Ok(orgs
            .into_iter()
            .map(|o| OrganizationSummary {
                id: o.id,
                name: o.name,
            })
            .collect())
    }

    /// The organization's name, as pages and mails show it (a name is no secret of the
    /// organization: the operator sees it too).
    pub(crate) async fn organization_name(&self, org: OrganizationId) -> Result<String, AppError> {
        let mut conn = self.store.read().await?;
        organizations::get(&mut conn, org)
            .await?
            .map(|o| o.name.as_str().to_owned())
            .ok_or(AppError::NotFound("organization"))
    }

    /// Deletes an organization with everything it owns, its wrapped data keys included, then
    /// drops its keys from memory: its ciphertexts can never be decrypted again.
    pub async fn delete_organization(
        &self,
        operator: &Operator,
        id: OrganizationId,
    ) -> Result<(), AppError> {
        if self.vault.is_sealed() {
            return Err(AppError::Sealed);
        }
        self.shred_organization(id, DeletedBy::Operator(operator.token_id().to_owned()))
            .await?;
        tracing::info!(organization = %id, operator_token = operator.token_id(), "organization deleted");
        Ok(())
    }

    /// The one way an organization is deleted, by the operator or at its Administrators' request
    /// once due: `organization.deleted` is recorded (the long-term ledger keeps it as its last
    /// event), every row goes (the wrapped keys too: foreign keys cascade), the keys leave
    /// memory and the retained ledger gets a last checkpoint. `false` when `by` is a request that
    /// is no longer pending or not yet due (cancelled meanwhile): nothing was deleted.
    pub(crate) async fn shred_organization(
        &self,
        id: OrganizationId,
        by: DeletedBy,
    ) -> Result<bool, AppError> {
        let mut tx = self.store.write().await?;
        if organizations::get(&mut tx, id).await?.is_none() {
            return Err(AppError::NotFound("organization"));
        }
        let actor = match by {
            DeletedBy::Operator(token) => Actor::Operator(token),
            DeletedBy::Request { requested_by, now } => {
                // Checked on the deletion's own transaction: a cancel that committed first wins.
                let pending = organization_deletions::get(&mut tx, id).await?;
                if !pending.is_some_and(|p| p.due_at <= now && p.requested_by == requested_by) {
                    return Ok(false);
                }
                Actor::User(requested_by)
            }
        };
        // The long-term ledger keeps this last event; the short-term one goes with the rest.
        let event = crate::audit::Event::new(actor, "organization.deleted", "organization", id);
        self.record(&mut tx, id, event).await?;
        let existed = organizations::delete(&mut tx, id).await?;
        if !existed {
            return Err(AppError::NotFound("organization"));
        }
        tx.commit().await.map_err(StoreError::from)?;
        self.vault.forget_org(id);
        // The retained ledger gets a last signed checkpoint, so it verifies with signatures up to
        // its deletion event. The deletion stands even if signing fails; the ledger then still
        // verifies for structure.
        if let Err(error) = self.checkpoint_ledger(id).await {
            tracing::warn!(organization = %id, error = %error, "the deleted organization's ledger could not be checkpointed");
        }
        Ok(true)
    }
}

/// Who deletes an organization.
#[derive(Debug, Clone)]
pub(crate) enum DeletedBy {
    /// The operator (by the token's id).
    Operator(String),
    /// Its Administrators' pending request, due at `now`.
    Request {
        requested_by: UserId,
        now: OffsetDateTime,
    },
}
