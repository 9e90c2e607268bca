//! The long-term audit ledger of each organization: every audit event is also appended, in the
//! same transaction, as an entry of an append-only Merkle log (RFC 9162 hashing); checkpoints of
//! its size and root are signed with the hub's Ed25519 key (C2SP signed-note format).
//!
//! Entries carry ids only; the change set appears as a keyed hash under the organization's key,
//! so deleting the organization destroys what the entries mean while every proof still verifies.
//! The signing key is derived from the keyring: it exists only while the hub is unsealed.

use crate::audit::Actor;
use crate::identity::Caller;
use crate::{AppError, Hub};
use lockstep_domain::OrganizationId;
use lockstep_ledger::merkle::{CompactTree, Hash, MerkleTree, leaf_hash};
use lockstep_ledger::{Checkpoint, ExportedLedger, SigningKey};
use lockstep_policy::{Action, Resource};
use lockstep_storage::ledger::{self, Head};
use lockstep_storage::{Connection, StoreError};
use time::OffsetDateTime;

/// The name the hub signs checkpoints with.
pub const KEY_NAME: &str = "lockstep-hub";

/// The origin line of an organization's checkpoints.
pub fn origin(org: OrganizationId) -> String {
    format!("lockstep/audit/{org}")
}

/// What one ledger entry says: ids, the action and its outcome; the changes as a keyed hash.
#[derive(serde::Serialize)]
struct Entry<'a> {
    v: u8,
    seq: u64,
    at: i64,
    actor_kind: &'a str,
    actor_id: Option<&'a str>,
    action: &'a str,
    object_kind: &'a str,
    object_id: &'a str,
    outcome: &'a str,
    changes: Option<String>,
}

/// The fields of an audit event the ledger records.
pub(crate) struct LedgerEvent<'a> {
    pub actor: &'a Actor,
    pub action: &'a str,
    pub object_kind: &'a str,
    pub object_id: &'a str,
    pub success: bool,
    /// The keyed hash of the change set, hex.
    pub changes_hash: Option<String>,
    pub at: OffsetDateTime,
}

impl Hub {
    fn signing_key(&self) -> Result<SigningKey, AppError> {
        let seed = self
            .vault
            .with_keyring(|keyring| keyring.derive_subkey("ledger signing key v1"))?;
        Ok(SigningKey::from_bytes(&seed))
    }

    /// The hub's verifier key, in the C2SP note format.
    pub fn ledger_vkey(&self) -> Result<String, AppError> {
        self.signing_key()?
            .verifying_key()
            .to_vkey(KEY_NAME)
            .map_err(|_| AppError::Refused("the ledger key cannot be written as a verifier key"))
    }

    /// Appends one event to the organization's ledger on the caller's transaction.
    pub(crate) async fn append_to_ledger(
        &self,
        conn: &mut Connection,
        org: OrganizationId,
        event: LedgerEvent<'_>,
    ) -> Result<(), AppError> {
        let changes = event.changes_hash;
        let head = ledger::head(conn, self.store.backend(), org).await?;
        let (actor_kind, actor_id) = match event.actor {
            Actor::User(user) => ("user", Some(user.to_string())),
            Actor::Operator(token) => ("operator", Some(token.clone())),
            Actor::Anonymous => ("anonymous", None),
            Actor::Scheduler => ("scheduler", None),
            Actor::Support { grant } => ("support", Some(grant.to_string())),
        };
        let entry = serde_json::to_vec(&Entry {
            v: 1,
            seq: head.size,
            at: i64::try_from(event.at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX),
            actor_kind,
            actor_id: actor_id.as_deref(),
            action: event.action,
            object_kind: event.object_kind,
            object_id: event.object_id,
            outcome: if event.success { "success" } else { "failure" },
            changes,
        })
        .map_err(|_| AppError::Refused("the ledger entry could not be encoded"))?;
        let mut tree = CompactTree::from_frontier(head.size, head.frontier)
            .map_err(|_| AppError::Store(StoreError::Corrupt("ledger frontier")))?;
        tree.push(leaf_hash(&entry));
        let next = Head {
            size: tree.size(),
            frontier: tree.frontier().to_vec(),
        };
        ledger::append(conn, org, &entry, &tree.root(), &next, event.at).await?;
        Ok(())
    }

    /// Signs a checkpoint of every ledger that grew since its last one. Run every minute by the
    /// server; does nothing while sealed.
    pub async fn checkpoint_ledgers(&self) -> Result<usize, AppError> {
        if self.vault.is_sealed() {
            return Ok(0);
        }
        let mut conn = self.store.read().await?;
        let grown = ledger::needing_checkpoint(&mut conn).await?;
        drop(conn);
        let mut signed = 0;
        for (org, _) in grown {
            self.checkpoint_ledger(org).await?;
            signed += 1;
        }
        Ok(signed)
    }

    pub(crate) async fn checkpoint_ledger(&self, org: OrganizationId) -> Result<(), AppError> {
        let key = self.signing_key()?;
        let mut tx = self.store.write().await?;
        let head = ledger::head(&mut tx, self.store.backend(), org).await?;
        if head.size == 0 {
            return Ok(());
        }
        let root = CompactTree::from_frontier(head.size, head.frontier)
            .map_err(|_| AppError::Store(StoreError::Corrupt("ledger frontier")))?
            .root();
        let note = key
            .sign(
                KEY_NAME,
                &Checkpoint {
                    origin: origin(org),
                    size: head.size,
                    root,
                },
            )
            .map_err(|_| AppError::Refused("the checkpoint could not be signed"))?;
        let vkey = key
            .verifying_key()
            .to_vkey(KEY_NAME)
            .map_err(|_| AppError::Refused("the ledger key cannot be written as a verifier key"))?;
        ledger::insert_checkpoint(&mut tx, org, head.size, &note, &vkey, self.clock.now()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    fn authorize_ledger(&self, caller: &Caller) -> Result<OrganizationId, AppError> {
        let org = caller.organization();
        self.authorize(caller, Action::ReadAudit, &Resource::organization(org))?;
        Ok(org)
    }

    async fn ledger_tree(&self, org: OrganizationId) -> Result<MerkleTree, AppError> {
        let mut conn = self.store.read().await?;
        let rows = ledger::entries(&mut conn, org).await?;
        Ok(MerkleTree::from_leaves(
            rows.iter().map(|(entry, _)| leaf_hash(entry)),
        ))
    }

    /// The newest signed checkpoint (signing one first if the ledger grew), Administrators only.
    pub async fn latest_checkpoint(&self, caller: &Caller) -> Result<String, AppError> {
        let org = self.authorize_ledger(caller)?;
        self.checkpoint_ledger(org).await?;
        let mut conn = self.store.read().await?;
        ledger::checkpoints(&mut conn, org)
            .await?
            .pop()
            .ok_or(AppError::NotFound("checkpoint (the ledger is empty)"))
    }

    /// The inclusion proof of entry `index` in the tree of `size` entries, with that entry.
    pub async fn inclusion_proof(
        &self,
        caller: &Caller,
        index: u64,
        size: u64,
    ) -> Result<(Vec<u8>, Vec<Hash>), AppError> {
        let org = self.authorize_ledger(caller)?;
        let mut conn = self.store.read().await?;
        let rows = ledger::entries(&mut conn, org).await?;
        drop(conn);
        let tree = MerkleTree::from_leaves(rows.iter().map(|(entry, _)| leaf_hash(entry)));
        let proof = tree
            .inclusion_proof(index, size)
            .map_err(|_| AppError::Invalid {
                field: "index",
                reason: "must be below size, and size at most the ledger's size".to_owned(),
            })?;
        let entry = usize::try_from(index)
            .ok()
            .and_then(|i| rows.into_iter().nth(i))
            .map(|(entry, _)| entry)
            .ok_or(AppError::NotFound("ledger entry"))?;
        Ok((entry, proof))
    }

    /// The consistency proof between the trees of `old_size` and `new_size` entries.
    pub async fn consistency_proof(
        &self,
        caller: &Caller,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, AppError> {
        let org = self.authorize_ledger(caller)?;
        self.ledger_tree(org)
            .await?
            .consistency_proof(old_size, new_size)
            .map_err(|_| AppError::Invalid {
                field: "from",
                reason: "must be at least 1 and at most `to`, which is at most the ledger's size"
                    .to_owned(),
            })
    }

    /// The caller's organization's whole ledger, with a fresh checkpoint, for offline
    /// verification (`lockstep audit verify --export FILE`). Administrators only. Audited
    /// `ledger.exported` before the ledger is read, so the export holds its own event; nothing
    /// is answered if the event cannot be written.
    pub async fn export_ledger(&self, caller: &Caller) -> Result<ExportedLedger, AppError> {
        let org = self.authorize_ledger(caller)?;
        let event = crate::audit::Event::new(
            crate::audit::Actor::User(caller.user()),
            "ledger.exported",
            "organization",
            org,
        );
        self.record_read(caller, event).await?;
        self.checkpoint_ledger(org).await?;
        let mut conn = self.store.read().await?;
        let rows = ledger::entries(&mut conn, org).await?;
        let checkpoints = ledger::checkpoints(&mut conn, org).await?;
        drop(conn);
        let (entries, running_roots) = rows.into_iter().unzip();
        Ok(ExportedLedger {
            origin: origin(org),
            vkey: self.ledger_vkey()?,
            entries,
            running_roots,
            checkpoints,
        })
    }
}

/// The stored ledger of `org`, read straight from the store (no keys needed), for
/// `lockstep audit verify --data DIR`.
pub async fn stored_ledger(
    store: &lockstep_storage::Store,
    org: OrganizationId,
) -> Result<ExportedLedger, AppError> {
    let mut conn = store.read().await?;
    let rows = ledger::entries(&mut conn, org).await?;
    let checkpoints = ledger::checkpoints(&mut conn, org).await?;
    let vkey = ledger::latest_vkey(&mut conn, org)
        .await?
        .unwrap_or_default();
    let (entries, running_roots) = rows.into_iter().unzip();
    Ok(ExportedLedger {
        origin: origin(org),
        vkey,
        entries,
        running_roots,
        checkpoints,
    })
}
