//! Names of connections, pipelines and API tokens at rest: sealed under the organization's key
//! (bound to the object and the field `name`), with a keyed index in the clear `name` column
//! where a name must be unique in its organization. Rows written before names were sealed keep
//! their clear name until [`Hub::seal_clear_names`] seals them; until then they read as they are.

use crate::{AppError, Hub};
use hmac::{KeyInit, Mac};
use lockstep_domain::OrganizationId;
use lockstep_storage::StoreError;
use lockstep_storage::names::{self, NamedTable};

/// A name as it is stored: the `name` column (the keyed index, or empty where names need not
/// be unique) and the sealed name.
#[derive(Clone)]
pub(crate) struct StoredName {
    pub column: String,
    pub ciphertext: Vec<u8>,
}

impl Hub {
    /// The keyed index of `name` in `org` for `table`: HMAC-SHA256 under a hub-wide key derived
    /// from the keyring over the organization, the table and the exact name; equal for equal
    /// names, meaningless without the keyring.
    fn name_index(
        &self,
        org: OrganizationId,
        table: NamedTable,
        name: &str,
    ) -> Result<String, AppError> {
        self.keyed_name_index(org, table.object_kind(), name)
    }

    /// [`Hub::name_index`] for any kind of object whose name is unique in its organization.
    pub(crate) fn keyed_name_index(
        &self,
        org: OrganizationId,
        object_kind: &str,
        name: &str,
    ) -> Result<String, AppError> {
        let key = self
            .vault
            .with_keyring(|keyring| keyring.derive_subkey("name-index v1"))?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_ref())
            .map_err(|_| AppError::Refused("cannot key the name index"))?;
        for part in [org.to_string().as_str(), object_kind, name] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        let digest = mac.finalize().into_bytes();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Ok(format!("hmac1:{hex}"))
    }

    /// Seals the name of object `id` of `table` in `org`.
    pub(crate) async fn seal_name(
        &self,
        org: OrganizationId,
        table: NamedTable,
        id: &str,
        name: &str,
    ) -> Result<StoredName, AppError> {
        let column = match table {
            NamedTable::ApiTokens => String::new(),
            NamedTable::Connections | NamedTable::Pipelines => self.name_index(org, table, name)?,
        };
        let ciphertext = self
            .seal_field(org, table.object_kind(), id, "name", name.as_bytes())
            .await?;
        Ok(StoredName { column, ciphertext })
    }

    /// Seals a name that must be unique in its organization (a connection's, a pipeline's),
    /// refusing one that another object still holds in clear; the unique index refuses the rest.
    pub(crate) async fn seal_unique_name(
        &self,
        org: OrganizationId,
        table: NamedTable,
        id: &str,
        name: &str,
        taken: &'static str,
    ) -> Result<StoredName, AppError> {
        let mut conn = self.store.read().await?;
        let clash = names::clear_name_taken(&mut conn, table, org, name, id).await?;
        drop(conn);
        if clash {
            return Err(AppError::Conflict(taken));
        }
        self.seal_name(org, table, id, name).await
    }

    /// The name of object `id` of `table`, in clear: opened from its ciphertext, or as stored
    /// in a row written before names were sealed.
    pub(crate) async fn open_name(
        &self,
        org: OrganizationId,
        table: NamedTable,
        id: &str,
        column: &str,
        ciphertext: Option<&[u8]>,
    ) -> Result<String, AppError> {
        match ciphertext {
            Some(ciphertext) => {
                self.open_text(org, table.object_kind(), id, "name", ciphertext)
                    .await
            }
            None => Ok(column.to_owned()),
        }
    }

    /// Seals the names still stored in clear (rows written before names were sealed), each in
    /// its own transaction; answers how many. Nothing while sealed. A clear name whose sealed
    /// form is taken meanwhile stays as it is (and is logged by id).
    pub async fn seal_clear_names(&self) -> Result<u64, AppError> {
        if self.vault.is_sealed() {
            return Ok(0);
        }
        let mut sealed = 0;
        for table in NamedTable::ALL {
            let mut conn = self.store.read().await?;
            let rows = names::clear_names(&mut conn, table, 1000).await?;
            drop(conn);
            for row in rows {
                let name = self
                    .seal_name(row.organization_id, table, &row.id, &row.name)
                    .await?;
                let mut tx = self.store.write().await?;
                match names::seal(&mut tx, table, &row, &name.column, &name.ciphertext).await {
                    Ok(done) => {
                        tx.commit().await.map_err(StoreError::from)?;
                        sealed += u64::from(done);
                    }
                    Err(StoreError::Conflict(_)) => {
                        tracing::warn!(
                            object_kind = table.object_kind(),
                            id = %row.id,
                            "a name kept in clear: its sealed form is taken by another object"
                        );
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        }
        if sealed > 0 {
            tracing::info!(sealed, "names stored in clear were sealed");
        }
        Ok(sealed)
    }
}

impl Hub {
    /// A pipeline's name, in clear.
    pub(crate) async fn pipeline_name(
        &self,
        p: &lockstep_storage::pipelines::StoredPipeline,
    ) -> Result<String, AppError> {
        self.open_name(
            p.organization_id,
            NamedTable::Pipelines,
            &p.id.to_string(),
            &p.name,
            p.name_ciphertext.as_deref(),
        )
        .await
    }

    /// Seals `name` for pipeline `id`, refusing a name another pipeline holds in clear.
    pub(crate) async fn seal_pipeline_name(
        &self,
        org: OrganizationId,
        id: lockstep_domain::PipelineId,
        name: &str,
    ) -> Result<StoredName, AppError> {
        self.seal_unique_name(
            org,
            NamedTable::Pipelines,
            &id.to_string(),
            name,
            "pipeline with this name",
        )
        .await
    }
}
