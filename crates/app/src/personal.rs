//! Personal data at rest: fields sealed under the organization's key, and the keyed e-mail index
//! that lets sign-in find an account without storing the address in clear.

use crate::{AppError, Hub};
use hmac::{KeyInit, Mac};
use lockstep_domain::{EmailAddress, OrganizationId};
use lockstep_vault::Aad;

impl Hub {
    /// HMAC-SHA256 of the lower-cased address under a hub-wide key derived from the keyring:
    /// equal for equal addresses, meaningless without the keyring.
    pub(crate) fn email_index(&self, email: &EmailAddress) -> Result<Vec<u8>, AppError> {
        let key = self
            .vault
            .with_keyring(|keyring| keyring.derive_subkey("email-index v1"))?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_ref())
            .map_err(|_| AppError::Refused("cannot key the e-mail index"))?;
        mac.update(email.as_str().to_lowercase().as_bytes());
        Ok(mac.finalize().into_bytes().to_vec())
    }

    /// Encrypts one field of an object under the organization's current key.
    pub(crate) async fn seal_field(
        &self,
        org: OrganizationId,
        object_kind: &str,
        object_id: &str,
        field: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, AppError> {
        let keys = self.org_keys(org).await?;
        let aad = Aad {
            object_kind,
            object_id,
            field,
        };
        Ok(keys.encrypt(&aad, plaintext, &mut rand::rng())?)
    }

    /// Decrypts one field sealed by [`Hub::seal_field`].
    pub(crate) async fn open_field(
        &self,
        org: OrganizationId,
        object_kind: &str,
        object_id: &str,
        field: &str,
        ciphertext: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, AppError> {
        let keys = self.org_keys(org).await?;
        let aad = Aad {
            object_kind,
            object_id,
            field,
        };
        Ok(keys.decrypt(&aad, ciphertext)?)
    }

    /// Decrypts a text field.
    pub(crate) async fn open_text(
        &self,
        org: OrganizationId,
        object_kind: &str,
        object_id: &str,
        field: &str,
        ciphertext: &[u8],
    ) -> Result<String, AppError> {
        let bytes = self
            .open_field(org, object_kind, object_id, field, ciphertext)
            .await?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| AppError::Vault(lockstep_vault::VaultError::Decrypt))
    }
}

impl Hub {
    /// A user's e-mail address and display name, in clear.
    pub(crate) async fn open_profile(
        &self,
        user: &lockstep_storage::users::StoredUser,
    ) -> Result<(String, String), AppError> {
        let (org, id) = (user.organization_id, user.id.to_string());
        let email = self
            .open_text(org, "user", &id, "email", &user.email_ciphertext)
            .await?;
        let name = self
            .open_text(
                org,
                "user",
                &id,
                "display_name",
                &user.display_name_ciphertext,
            )
            .await?;
        Ok((email, name))
    }

    /// A member's display name, in clear (for mails that say who did something).
    pub(crate) async fn display_name_of(
        &self,
        org: lockstep_domain::OrganizationId,
        user: lockstep_domain::UserId,
    ) -> Result<String, AppError> {
        let mut conn = self.store.read().await?;
        let stored = lockstep_storage::users::get(&mut conn, org, user)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        drop(conn);
        Ok(self.open_profile(&stored).await?.1)
    }
}

/// A display name: 1 to 100 characters, no control characters, trimmed.
pub(crate) fn parse_display_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    let invalid = |reason: &str| AppError::Invalid {
        field: "display_name",
        reason: reason.to_owned(),
    };
    if name.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if name.chars().count() > 100 {
        return Err(invalid("must be at most 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters"));
    }
    Ok(name.to_owned())
}
