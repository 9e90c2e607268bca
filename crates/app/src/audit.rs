//! Audit events: who did what to which object, when, and what changed. Written in the same
//! transaction as the change (if the event cannot be written, the change is not committed), kept
//! per object to the organization's depth, read by Administrators only. The change set is sealed
//! under the organization's key; secret fields are recorded as "changed" without values.

use crate::identity::Caller;
use crate::{AppError, Hub};
use lockstep_domain::{OrganizationId, UserId};
use lockstep_policy::{Action, Resource};
use lockstep_storage::audit::{self, Search, StoredEvent};
use lockstep_storage::{Connection, settings};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// Who acted.
#[derive(Debug, Clone)]
pub enum Actor {
    User(UserId),
    Operator(String),
    /// Someone not signed in (a failed sign-in, a password reset request).
    Anonymous,
    /// The hub itself (the scheduler starting a run).
    Scheduler,
    /// A support person of the platform, working under the organization's grant (its id).
    Support {
        grant: Uuid,
    },
}

/// One changed field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum FieldChange {
    /// A secret: only the fact that it changed. (First, so that `{"changed": true}` is read
    /// back as this and not as a value with neither side.)
    Secret { changed: bool },
    /// A value that may be shown to Administrators (it is stored encrypted).
    Value {
        before: Option<String>,
        after: Option<String>,
    },
}

impl FieldChange {
    pub fn value(before: Option<impl ToString>, after: Option<impl ToString>) -> FieldChange {
        FieldChange::Value {
            before: before.map(|v| v.to_string()),
            after: after.map(|v| v.to_string()),
        }
    }

    pub fn secret() -> FieldChange {
        FieldChange::Secret { changed: true }
    }
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct Event {
    pub actor: Actor,
    pub action: &'static str,
    pub object_kind: &'static str,
    pub object_id: String,
    pub success: bool,
    pub changes: BTreeMap<&'static str, FieldChange>,
}

impl Event {
    pub(crate) fn new(
        actor: Actor,
        action: &'static str,
        object_kind: &'static str,
        object_id: impl ToString,
    ) -> Event {
        Event {
            actor,
            action,
            object_kind,
            object_id: object_id.to_string(),
            success: true,
            changes: BTreeMap::new(),
        }
    }

    pub(crate) fn change(mut self, field: &'static str, change: FieldChange) -> Event {
        self.changes.insert(field, change);
        self
    }

    pub(crate) fn failed(mut self) -> Event {
        self.success = false;
        self
    }
}

/// An event as an Administrator reads it.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: String,
    pub at: OffsetDateTime,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub object_kind: String,
    pub object_id: String,
    pub outcome: String,
    pub changes: BTreeMap<String, FieldChange>,
}

impl Hub {
    /// Writes `event` on `conn` (the caller's transaction). Any failure fails the caller's change.
    pub(crate) async fn record(
        &self,
        conn: &mut Connection,
        org: OrganizationId,
        event: Event,
    ) -> Result<(), AppError> {
        let id = Uuid::now_v7().to_string();
        let settings = settings::get(conn, org).await?;
        let at = self.clock.now();
        let changes_json = if event.changes.is_empty() {
            None
        } else {
            Some(
                serde_json::to_vec(&event.changes)
                    .map_err(|_| AppError::Refused("the audit change set could not be encoded"))?,
            )
        };
        let (changes_ciphertext, changes_hash) = match &changes_json {
            Some(json) => {
                // Keys loaded on this transaction's connection: no second connection needed.
                let keys = self.org_keys_on(conn, org).await?;
                let aad = lockstep_vault::Aad {
                    object_kind: "audit_event",
                    object_id: &id,
                    field: "changes",
                };
                let ciphertext = keys.encrypt(&aad, json, &mut rand::rng())?;
                (
                    Some(ciphertext),
                    Some(hex::encode(keys.keyed_hash("audit changes", json)?)),
                )
            }
            None => (None, None),
        };
        if settings.long_term_audit {
            let entry = crate::ledger::LedgerEvent {
                actor: &event.actor,
                action: event.action,
                object_kind: event.object_kind,
                object_id: &event.object_id,
                success: event.success,
                changes_hash,
                at,
            };
            self.append_to_ledger(conn, org, entry).await?;
        }
        let (actor_kind, actor_id) = match &event.actor {
            Actor::User(user) => ("user", Some(user.to_string())),
            Actor::Operator(token) => ("operator", Some(token.clone())),
            Actor::Anonymous => ("anonymous", None),
            Actor::Scheduler => ("scheduler", None),
            Actor::Support { grant } => ("support", Some(grant.to_string())),
        };
        let stored = StoredEvent {
            id,
            organization_id: org,
            at,
            actor_kind: actor_kind.to_owned(),
            actor_id,
            action: event.action.to_owned(),
            object_kind: event.object_kind.to_owned(),
            object_id: event.object_id,
            outcome: if event.success { "success" } else { "failure" }.to_owned(),
            changes_ciphertext,
        };
        audit::append(conn, &stored, settings.audit_depth).await?;
        Ok(())
    }

    async fn open_event(&self, e: StoredEvent) -> Result<AuditEvent, AppError> {
        let changes = match &e.changes_ciphertext {
            None => BTreeMap::new(),
            Some(ciphertext) => {
                let json = self
                    .open_field(
                        e.organization_id,
                        "audit_event",
                        &e.id,
                        "changes",
                        ciphertext,
                    )
                    .await?;
                serde_json::from_slice(&json)
                    .map_err(|_| AppError::Vault(lockstep_vault::VaultError::Decrypt))?
            }
        };
        Ok(AuditEvent {
            id: e.id,
            at: e.at,
            actor_kind: e.actor_kind,
            actor_id: e.actor_id,
            action: e.action,
            object_kind: e.object_kind,
            object_id: e.object_id,
            outcome: e.outcome,
            changes,
        })
    }

    /// An object's last events, newest first (Administrators). An object with no events in the
    /// caller's organization — another organization's, or none at all — is "not found".
    pub async fn object_events(
        &self,
        caller: &Caller,
        object_kind: &str,
        object_id: &str,
    ) -> Result<Vec<AuditEvent>, AppError> {
        let mut conn = self.store.read().await?;
        let events =
            audit::for_object(&mut conn, caller.organization(), object_kind, object_id).await?;
        drop(conn);
        if events.is_empty() {
            return Err(AppError::NotFound("audited object"));
        }
        self.authorize(
            caller,
            Action::ReadAudit,
            &Resource::organization(caller.organization()),
        )?;
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            out.push(self.open_event(e).await?);
        }
        Ok(out)
    }

    /// Searches the organization's events (Administrators), newest first.
    pub async fn search_events(
        &self,
        caller: &Caller,
        search: Search,
    ) -> Result<Vec<AuditEvent>, AppError> {
        self.authorize(
            caller,
            Action::ReadAudit,
            &Resource::organization(caller.organization()),
        )?;
        let mut conn = self.store.read().await?;
        let events = audit::search(&mut conn, caller.organization(), &search).await?;
        drop(conn);
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            out.push(self.open_event(e).await?);
        }
        Ok(out)
    }
}
