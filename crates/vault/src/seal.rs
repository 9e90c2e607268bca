//! The sealed/unsealed state machine: collects unseal key shares, opens the keyring, caches org keys.
//!
//! One [`std::sync::RwLock`] guards the whole state. A poisoned lock is recovered with
//! [`std::sync::PoisonError::into_inner`]: no code in this module can panic while holding the
//! write lock, and each state change is a single assignment, so the state is never half-updated.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use blahaj::{Share, Sharks};
use lockstep_domain::OrganizationId;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::cipher::OrgKeys;
use crate::init::RootKey;
use crate::keyring::{Keyring, WrappedOrgKey};
use crate::shares::{self, UnsealKey};
use crate::{KEY_LEN, SealConfig, VaultError};

/// The vault's seal state as shown to operators (and serialized in the status API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SealStatus {
    /// No key is in memory.
    pub sealed: bool,
    /// Distinct valid shares entered so far (0 when unsealed).
    pub progress: u8,
    /// Shares needed to unseal.
    pub threshold: u8,
    /// Shares that exist.
    pub shares: u8,
}

enum Phase {
    Sealed {
        /// Shares entered so far, by x. Each was checked against its verifier.
        pending: BTreeMap<u8, Zeroizing<[u8; KEY_LEN]>>,
    },
    Unsealed {
        root: RootKey,
        keyring: Keyring,
        org_keys: HashMap<OrganizationId, Arc<OrgKeys>>,
    },
}

struct State {
    config: SealConfig,
    phase: Phase,
}

impl State {
    fn status(&self) -> SealStatus {
        let (sealed, progress) = match &self.phase {
            Phase::Sealed { pending } => (true, u8::try_from(pending.len()).unwrap_or(u8::MAX)),
            Phase::Unsealed { .. } => (false, 0),
        };
        SealStatus {
            sealed,
            progress,
            threshold: self.config.key_threshold,
            shares: self.config.key_shares,
        }
    }
}

fn sealed_phase() -> Phase {
    Phase::Sealed {
        pending: BTreeMap::new(),
    }
}

/// The vault: sealed (only the [`SealConfig`] is known) or unsealed (root key and keyring in memory).
///
/// `Send + Sync`; share it in an `Arc`. The closures passed to [`Vault::with_keyring`] and the
/// `load` of [`Vault::org_keys`] must not call back into the same `Vault` while the lock is held
/// (`with_keyring` holds a read lock while `f` runs; `load` runs without any lock).
pub struct Vault {
    state: RwLock<State>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state.try_read() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        match state {
            Some(state) => {
                let status = state.status();
                f.debug_struct("Vault")
                    .field("sealed", &status.sealed)
                    .field("progress", &status.progress)
                    .field("threshold", &status.threshold)
                    .finish()
            }
            None => f.write_str("Vault { <locked> }"),
        }
    }
}

/// Recombines the root key from verified shares.
fn combine(
    threshold: u8,
    pending: &BTreeMap<u8, Zeroizing<[u8; KEY_LEN]>>,
) -> Result<RootKey, VaultError> {
    let mut parts = Vec::with_capacity(pending.len());
    for (&x, y) in pending {
        let mut bytes = Zeroizing::new(Vec::with_capacity(1 + KEY_LEN));
        bytes.push(x);
        bytes.extend_from_slice(y.as_slice());
        parts.push(Share::try_from(bytes.as_slice()).map_err(|_| VaultError::KeyringDecrypt)?);
    }
    let secret = Zeroizing::new(
        Sharks(threshold)
            .recover(&parts)
            .map_err(|_| VaultError::KeyringDecrypt)?,
    );
    if secret.len() != KEY_LEN {
        return Err(VaultError::KeyringDecrypt);
    }
    let mut root = Box::new(Zeroizing::new([0u8; KEY_LEN]));
    root.copy_from_slice(&secret);
    Ok(RootKey::from_secret(root))
}

impl Vault {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// A vault whose config was loaded from the store: starts sealed, progress 0.
    pub fn sealed(config: SealConfig) -> Vault {
        Vault {
            state: RwLock::new(State {
                config,
                phase: sealed_phase(),
            }),
        }
    }

    /// Right after [`initialize`](crate::initialize) on the first start: unsealed with the given root key and keyring.
    pub fn unsealed(config: SealConfig, root: RootKey, keyring: Keyring) -> Vault {
        Vault {
            state: RwLock::new(State {
                config,
                phase: Phase::Unsealed {
                    root,
                    keyring,
                    org_keys: HashMap::new(),
                },
            }),
        }
    }

    /// Whether the vault is sealed, how many shares were entered, how many are needed.
    pub fn status(&self) -> SealStatus {
        self.read().status()
    }

    /// Decodes and checks one share, and unseals once the threshold is reached.
    ///
    /// Refusals: [`VaultError::MalformedShare`] (bad encoding or checksum), [`VaultError::ForeignShare`]
    /// (another vault's share), [`VaultError::UnknownShare`] (x out of range or verifier mismatch),
    /// [`VaultError::DuplicateShare`] (this x was already entered). A refused share does not count and
    /// does not disturb earlier progress. When the threshold is reached the shares are combined and the
    /// keyring decrypted; if that fails the result is [`VaultError::KeyringDecrypt`] and progress
    /// resets to 0 (the vault stays sealed). Already unsealed: `Ok(status)` without change.
    pub fn submit_share(&self, key: &UnsealKey) -> Result<SealStatus, VaultError> {
        let decoded = shares::decode(key);
        let mut state = self.write();
        let state = &mut *state;
        let Phase::Sealed { pending } = &mut state.phase else {
            return Ok(state.status());
        };
        let share = decoded?;
        let config = &state.config;
        if share.vault_id != config.vault_id {
            return Err(VaultError::ForeignShare);
        }
        if share.x == 0 || share.x > config.key_shares {
            return Err(VaultError::UnknownShare);
        }
        let expected = config
            .share_verifiers
            .get(usize::from(share.x) - 1)
            .ok_or(VaultError::UnknownShare)?;
        let actual = shares::verifier(&share.vault_id, share.x, &share.y);
        if !bool::from(actual.ct_eq(expected)) {
            return Err(VaultError::UnknownShare);
        }
        if pending.contains_key(&share.x) {
            return Err(VaultError::DuplicateShare);
        }
        pending.insert(share.x, share.y);

        if pending.len() < usize::from(config.key_threshold) {
            return Ok(state.status());
        }
        let opened = combine(config.key_threshold, pending).and_then(|root| {
            let keyring = Keyring::open(&root, &config.vault_id, &config.encrypted_keyring)?;
            Ok((root, keyring))
        });
        match opened {
            Ok((root, keyring)) => {
                state.phase = Phase::Unsealed {
                    root,
                    keyring,
                    org_keys: HashMap::new(),
                };
                Ok(state.status())
            }
            Err(_) => {
                state.phase = sealed_phase();
                Err(VaultError::KeyringDecrypt)
            }
        }
    }

    /// Discards the shares entered so far (progress 0). No effect when unsealed.
    pub fn reset_progress(&self) -> SealStatus {
        let mut state = self.write();
        if let Phase::Sealed { pending } = &mut state.phase {
            pending.clear();
        }
        state.status()
    }

    /// Seals: drops (zeroizes) the root key, the keyring, all cached [`OrgKeys`] and pending shares.
    ///
    /// An `Arc<OrgKeys>` a caller still holds lives until the caller drops it; the vault never hands it
    /// out again.
    pub fn seal(&self) {
        let mut state = self.write();
        state.phase = sealed_phase();
    }

    /// Whether the vault is sealed.
    pub fn is_sealed(&self) -> bool {
        matches!(self.read().phase, Phase::Sealed { .. })
    }

    /// Runs `f` with the keyring; [`VaultError::Sealed`] when sealed.
    pub fn with_keyring<T>(&self, f: impl FnOnce(&Keyring) -> T) -> Result<T, VaultError> {
        let state = self.read();
        match &state.phase {
            Phase::Unsealed { keyring, .. } => Ok(f(keyring)),
            Phase::Sealed { .. } => Err(VaultError::Sealed),
        }
    }

    /// Rotates the keyring (new version) and returns the new version with the re-encrypted keyring,
    /// for the caller to store as the new `SealConfig::encrypted_keyring`. The vault updates its own
    /// copy of the config too. [`VaultError::Sealed`] when sealed. If encryption fails nothing changes.
    pub fn rotate_keyring(
        &self,
        rng: &mut impl rand::CryptoRng,
    ) -> Result<(u32, Vec<u8>), VaultError> {
        let mut state = self.write();
        let state = &mut *state;
        let Phase::Unsealed { root, keyring, .. } = &mut state.phase else {
            return Err(VaultError::Sealed);
        };
        let mut rotated = keyring.duplicate();
        let version = rotated.rotate(rng);
        let encrypted = rotated.seal_with(root, &state.config.vault_id, rng)?;
        *keyring = rotated;
        state.config.encrypted_keyring.clone_from(&encrypted);
        Ok((version, encrypted))
    }

    /// An organization's data keys: from the cache, or `load()`'s wrapped keys unwrapped with the
    /// keyring and cached. `load` is called only on a cache miss, without holding the vault's lock.
    /// [`VaultError::Sealed`] when sealed (also when the vault was sealed while `load` ran).
    pub fn org_keys(
        &self,
        org: OrganizationId,
        load: impl FnOnce() -> Result<Vec<WrappedOrgKey>, VaultError>,
    ) -> Result<Arc<OrgKeys>, VaultError> {
        match &self.read().phase {
            Phase::Sealed { .. } => return Err(VaultError::Sealed),
            Phase::Unsealed { org_keys, .. } => {
                if let Some(keys) = org_keys.get(&org) {
                    return Ok(Arc::clone(keys));
                }
            }
        }
        let wrapped = load()?;
        let mut state = self.write();
        let Phase::Unsealed {
            keyring, org_keys, ..
        } = &mut state.phase
        else {
            return Err(VaultError::Sealed);
        };
        if let Some(keys) = org_keys.get(&org) {
            return Ok(Arc::clone(keys));
        }
        let keys = Arc::new(keyring.unwrap_org_keys(org, &wrapped)?);
        org_keys.insert(org, Arc::clone(&keys));
        Ok(keys)
    }

    /// Drops an organization's cached keys (after its deletion or key rotation).
    pub fn forget_org(&self, org: OrganizationId) {
        let mut state = self.write();
        if let Phase::Unsealed { org_keys, .. } = &mut state.phase {
            org_keys.remove(&org);
        }
    }

    /// The current seal config (with the keyring as last rotated).
    pub fn config(&self) -> SealConfig {
        self.read().config.clone()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::initialize;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rand::SeedableRng;
    use sha2::{Digest, Sha256};

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn vault_is_send_and_sync() {
        assert_send_sync::<Vault>();
        assert_send_sync::<Arc<OrgKeys>>();
    }

    /// Re-encodes a share after changing one payload byte, with a correct checksum, so only the
    /// vault's own checks (vault id, x range, verifier) can catch it.
    fn tamper(key: &UnsealKey, byte: usize) -> UnsealKey {
        let mut payload = URL_SAFE_NO_PAD.decode(&key.expose()[5..]).unwrap();
        payload[byte] ^= 0x01;
        let sum = Sha256::digest(&payload[..50]);
        payload[50..].copy_from_slice(&sum[..4]);
        UnsealKey::from_text(&format!("lks1-{}", URL_SAFE_NO_PAD.encode(&payload)))
    }

    #[test]
    fn altered_shares_with_valid_checksums_are_refused_by_the_vault() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(21);
        let init = initialize(3, 2, &mut rng).unwrap();
        let vault = Vault::sealed(init.config.clone());
        vault.submit_share(&init.unseal_keys[0]).unwrap();
        let second = &init.unseal_keys[1];
        // Byte 0 is the format version, 1..17 the vault id, 17 x, 18..50 y.
        assert_eq!(
            vault.submit_share(&tamper(second, 0)),
            Err(VaultError::MalformedShare)
        );
        for byte in 1..17 {
            assert_eq!(
                vault.submit_share(&tamper(second, byte)),
                Err(VaultError::ForeignShare)
            );
        }
        // x = 2 -> 3: a real index, but the verifier does not match.
        assert_eq!(
            vault.submit_share(&tamper(second, 17)),
            Err(VaultError::UnknownShare)
        );
        for byte in 18..50 {
            assert_eq!(
                vault.submit_share(&tamper(second, byte)),
                Err(VaultError::UnknownShare)
            );
        }
        assert_eq!(vault.status().progress, 1);
        assert!(!vault.submit_share(second).unwrap().sealed);
    }

    #[test]
    fn share_index_out_of_range_is_unknown() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(22);
        let init = initialize(2, 2, &mut rng).unwrap();
        // A config that claims fewer shares than were made: share 2 is then out of range.
        let mut config = init.config.clone();
        config.key_shares = 1;
        config.share_verifiers.truncate(1);
        let vault = Vault::sealed(config);
        assert_eq!(
            vault.submit_share(&init.unseal_keys[1]),
            Err(VaultError::UnknownShare)
        );
        assert_eq!(vault.status().progress, 0);
    }

    #[test]
    fn wrong_keyring_resets_progress() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(23);
        let init = initialize(3, 2, &mut rng).unwrap();
        let other = initialize(3, 2, &mut rng).unwrap();
        let mut config = init.config.clone();
        config.encrypted_keyring = other.config.encrypted_keyring.clone();
        let vault = Vault::sealed(config);
        assert_eq!(
            vault.submit_share(&init.unseal_keys[0]).unwrap().progress,
            1
        );
        assert_eq!(
            vault.submit_share(&init.unseal_keys[1]),
            Err(VaultError::KeyringDecrypt)
        );
        let status = vault.status();
        assert!(status.sealed);
        assert_eq!(status.progress, 0);
    }

    #[test]
    fn rotate_keyring_updates_the_config() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(24);
        let init = initialize(1, 1, &mut rng).unwrap();
        let vault = Vault::unsealed(init.config.clone(), init.root, init.keyring);
        let (version, encrypted) = vault.rotate_keyring(&mut rng).unwrap();
        assert_eq!(version, 2);
        assert_eq!(vault.config().encrypted_keyring, encrypted);
        assert_ne!(encrypted, init.config.encrypted_keyring);
        assert_eq!(vault.with_keyring(|k| k.versions()).unwrap(), vec![1, 2]);
    }

    #[test]
    fn submit_when_unsealed_changes_nothing() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(25);
        let init = initialize(2, 2, &mut rng).unwrap();
        let keys = init.unseal_keys;
        let vault = Vault::unsealed(init.config, init.root, init.keyring);
        let status = vault
            .submit_share(&UnsealKey::from_text("garbage"))
            .unwrap();
        assert!(!status.sealed);
        assert!(!vault.submit_share(&keys[0]).unwrap().sealed);
        assert_eq!(vault.reset_progress().progress, 0);
        assert!(!vault.is_sealed());
    }

    #[test]
    fn debug_shows_state_only() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(26);
        let init = initialize(3, 2, &mut rng).unwrap();
        let vault = Vault::sealed(init.config.clone());
        vault.submit_share(&init.unseal_keys[0]).unwrap();
        assert_eq!(
            format!("{vault:?}"),
            "Vault { sealed: true, progress: 1, threshold: 2 }"
        );
        vault.submit_share(&init.unseal_keys[2]).unwrap();
        assert_eq!(
            format!("{vault:?}"),
            "Vault { sealed: false, progress: 0, threshold: 2 }"
        );
    }
}
