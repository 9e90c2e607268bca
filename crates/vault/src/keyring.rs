//! The keyring: versioned key-encryption keys that wrap each organization's data keys.
//!
//! The keyring is stored encrypted under the root key ([`SealConfig::encrypted_keyring`](crate::SealConfig)).
//! Its plaintext form is `[format u8 = 1][count u32 BE][count × 32-byte key]`; key `i` (0-based) has
//! version `i + 1`, so versions are always `1..=count` with no gaps.
//!
//! An organization data key is wrapped with AES-256-GCM under the current keyring key, with
//! AAD = `b"lockstep org key v1" || organization id || org key version u32 BE || keyring version u32 BE`,
//! so a wrapped key cannot be moved to another organization or relabelled with another version.

use std::collections::BTreeMap;
use std::fmt;

use hkdf::Hkdf;
use lockstep_domain::OrganizationId;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::cipher::OrgKeys;
use crate::init::RootKey;
use crate::{KEY_LEN, SecretKey, VaultError, gcm, random_key};

const KEYRING_FORMAT: u8 = 1;
const KEYRING_AAD_DOMAIN: &[u8] = b"lockstep keyring v1";
const ORG_KEY_AAD_DOMAIN: &[u8] = b"lockstep org key v1";
const SUBKEY_INFO_DOMAIN: &[u8] = b"lockstep subkey v1";

/// Versioned keyring keys (u32 versions, starting at 1): the newest wraps new organization keys,
/// every version still unwraps. Zeroized on drop; `Debug` prints the versions only.
pub struct Keyring {
    /// Version 1, kept apart so the keyring can never be empty.
    first: SecretKey,
    /// Versions 2, 3, ... in order.
    later: Vec<SecretKey>,
}

/// An organization data key wrapped by a keyring key: what the store keeps per organization and version.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct WrappedOrgKey {
    /// The organization key's version (starting at 1); the newest encrypts new data.
    pub version: u32,
    /// The keyring key version that wrapped it.
    pub keyring_version: u32,
    /// `nonce || AES-256-GCM ciphertext || tag` of the 32-byte key.
    pub wrapped: Vec<u8>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current_version", &self.current_version())
            .field("versions", &self.versions())
            .finish()
    }
}

fn keyring_aad(vault_id: &[u8; 16]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(KEYRING_AAD_DOMAIN.len() + vault_id.len());
    aad.extend_from_slice(KEYRING_AAD_DOMAIN);
    aad.extend_from_slice(vault_id);
    aad
}

fn org_key_aad(org: OrganizationId, version: u32, keyring_version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(ORG_KEY_AAD_DOMAIN.len() + 16 + 8);
    aad.extend_from_slice(ORG_KEY_AAD_DOMAIN);
    aad.extend_from_slice(org.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad.extend_from_slice(&keyring_version.to_be_bytes());
    aad
}

fn secret_from_slice(bytes: &[u8]) -> Option<SecretKey> {
    if bytes.len() != KEY_LEN {
        return None;
    }
    let mut key = Box::new(Zeroizing::new([0u8; KEY_LEN]));
    key.copy_from_slice(bytes);
    Some(key)
}

impl Keyring {
    /// A fresh keyring with one random key, version 1.
    pub(crate) fn generate(rng: &mut impl rand::CryptoRng) -> Self {
        Self {
            first: random_key(rng),
            later: Vec::new(),
        }
    }

    /// The newest version: the one that wraps new organization keys.
    pub fn current_version(&self) -> u32 {
        u32::try_from(self.later.len()).map_or(u32::MAX, |n| n.saturating_add(1))
    }

    /// All versions, oldest first (always `1..=current_version()`).
    pub fn versions(&self) -> Vec<u32> {
        (1..=self.current_version()).collect()
    }

    fn key(&self, version: u32) -> Option<&[u8; KEY_LEN]> {
        match version {
            0 => None,
            1 => Some(&**self.first),
            n => {
                let index = usize::try_from(n.checked_sub(2)?).ok()?;
                self.later.get(index).map(|k| &***k)
            }
        }
    }

    fn current_key(&self) -> &[u8; KEY_LEN] {
        self.later.last().unwrap_or(&self.first)
    }

    /// Adds a new keyring key version and makes it current. Old versions stay for unwrapping.
    /// Returns the new current version. (At `u32::MAX` versions nothing is added.)
    pub fn rotate(&mut self, rng: &mut impl rand::CryptoRng) -> u32 {
        if self.current_version() < u32::MAX {
            self.later.push(random_key(rng));
        }
        self.current_version()
    }

    /// A copy of this keyring, so a rotation can be prepared and stored before it takes effect.
    pub(crate) fn duplicate(&self) -> Self {
        Self {
            first: self.first.clone(),
            later: self.later.clone(),
        }
    }

    /// Encrypts this keyring under the root key for storage (`SealConfig::encrypted_keyring`).
    pub fn seal_with(
        &self,
        root: &RootKey,
        vault_id: &[u8; 16],
        rng: &mut impl rand::CryptoRng,
    ) -> Result<Vec<u8>, VaultError> {
        let count = self.current_version();
        let mut plain = Zeroizing::new(Vec::with_capacity(5 + KEY_LEN * (self.later.len() + 1)));
        plain.push(KEYRING_FORMAT);
        plain.extend_from_slice(&count.to_be_bytes());
        plain.extend_from_slice(self.first.as_slice());
        for key in &self.later {
            plain.extend_from_slice(key.as_slice());
        }
        gcm::seal(root.bytes(), &keyring_aad(vault_id), &plain, rng)
            .map_err(|_| VaultError::Encrypt)
    }

    /// Decrypts a keyring stored by [`Keyring::seal_with`]. Any failure is [`VaultError::KeyringDecrypt`].
    pub(crate) fn open(
        root: &RootKey,
        vault_id: &[u8; 16],
        encrypted: &[u8],
    ) -> Result<Self, VaultError> {
        let plain = gcm::open(root.bytes(), &keyring_aad(vault_id), encrypted)
            .map_err(|_| VaultError::KeyringDecrypt)?;
        let (&format, rest) = plain.split_first().ok_or(VaultError::KeyringDecrypt)?;
        if format != KEYRING_FORMAT {
            return Err(VaultError::KeyringDecrypt);
        }
        let (count, keys) = rest
            .split_first_chunk::<4>()
            .ok_or(VaultError::KeyringDecrypt)?;
        let count =
            usize::try_from(u32::from_be_bytes(*count)).map_err(|_| VaultError::KeyringDecrypt)?;
        if count == 0 || keys.len() != count.saturating_mul(KEY_LEN) {
            return Err(VaultError::KeyringDecrypt);
        }
        let mut chunks = keys.chunks_exact(KEY_LEN);
        let first = chunks
            .next()
            .and_then(secret_from_slice)
            .ok_or(VaultError::KeyringDecrypt)?;
        let later = chunks
            .map(secret_from_slice)
            .collect::<Option<Vec<_>>>()
            .ok_or(VaultError::KeyringDecrypt)?;
        Ok(Self { first, later })
    }

    /// Makes a new random organization data key of `version`, wrapped by the current keyring key.
    /// The AAD binds it to (organization id, org key version, keyring version).
    /// Version 0 is refused with [`VaultError::NoKeyVersion`]: organization key versions start at 1.
    pub fn new_org_key(
        &self,
        org: OrganizationId,
        version: u32,
        rng: &mut impl rand::CryptoRng,
    ) -> Result<WrappedOrgKey, VaultError> {
        if version == 0 {
            return Err(VaultError::NoKeyVersion);
        }
        let keyring_version = self.current_version();
        let org_key = random_key(rng);
        let wrapped = gcm::seal(
            self.current_key(),
            &org_key_aad(org, version, keyring_version),
            org_key.as_slice(),
            rng,
        )
        .map_err(|_| VaultError::Encrypt)?;
        Ok(WrappedOrgKey {
            version,
            keyring_version,
            wrapped,
        })
    }

    /// Unwraps all stored versions of an organization's data key.
    ///
    /// An empty list is [`VaultError::NoKeyVersion`]; any other failure (unknown keyring version,
    /// damaged or relabelled wrapped key, another organization's key, a version listed twice) is
    /// [`VaultError::KeyUnwrap`] and never says more.
    pub fn unwrap_org_keys(
        &self,
        org: OrganizationId,
        wrapped: &[WrappedOrgKey],
    ) -> Result<OrgKeys, VaultError> {
        if wrapped.is_empty() {
            return Err(VaultError::NoKeyVersion);
        }
        let mut keys = BTreeMap::new();
        for entry in wrapped {
            let keyring_key = self
                .key(entry.keyring_version)
                .ok_or(VaultError::KeyUnwrap)?;
            let aad = org_key_aad(org, entry.version, entry.keyring_version);
            let plain =
                gcm::open(keyring_key, &aad, &entry.wrapped).map_err(|_| VaultError::KeyUnwrap)?;
            let key = secret_from_slice(&plain).ok_or(VaultError::KeyUnwrap)?;
            if keys.insert(entry.version, key).is_some() {
                return Err(VaultError::KeyUnwrap);
            }
        }
        OrgKeys::new(org, keys)
    }

    /// Keys for fields that belong to the hub rather than to an organization (support accounts'
    /// e-mail and TOTP secret): one version, the subkey derived for `purpose`, and ciphertexts
    /// bound to the nil organization id, which no organization has. Stable across keyring
    /// rotations, like every subkey.
    pub fn hub_field_keys(&self, purpose: &str) -> Result<OrgKeys, VaultError> {
        let key: SecretKey = Box::new(self.derive_subkey(purpose));
        OrgKeys::new(
            OrganizationId::from_uuid(Default::default()), // the nil id
            BTreeMap::from([(1, key)]),
        )
    }

    /// Derives a hub-wide 32-byte subkey for a `purpose` (for example a blind-index key).
    ///
    /// HKDF-SHA256 with keyring key version 1 as input key material (no salt) and
    /// info = `b"lockstep subkey v1" || purpose`, so the subkey is stable across keyring rotations.
    pub fn derive_subkey(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let hkdf = Hkdf::<Sha256>::new(None, self.first.as_slice());
        let mut out = Zeroizing::new([0u8; 32]);
        // HKDF-SHA256 can expand up to 255 * 32 bytes; 32 bytes never fails.
        let expanded = hkdf.expand_multi_info(
            &[SUBKEY_INFO_DOMAIN, purpose.as_bytes()],
            out.as_mut_slice(),
        );
        debug_assert!(expanded.is_ok());
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use uuid::Uuid;

    fn org(n: u128) -> OrganizationId {
        OrganizationId::from_uuid(Uuid::from_u128(n))
    }

    fn setup() -> (rand::rngs::StdRng, RootKey, Keyring) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let root = RootKey::from_secret(random_key(&mut rng));
        let keyring = Keyring::generate(&mut rng);
        (rng, root, keyring)
    }

    #[test]
    fn keyring_round_trips_through_sealing() {
        let (mut rng, root, mut keyring) = setup();
        keyring.rotate(&mut rng);
        keyring.rotate(&mut rng);
        let vault_id = [7u8; 16];
        let sealed = keyring.seal_with(&root, &vault_id, &mut rng).unwrap();
        let opened = Keyring::open(&root, &vault_id, &sealed).unwrap();
        assert_eq!(opened.versions(), vec![1, 2, 3]);
        for v in 1..=3 {
            assert_eq!(opened.key(v), keyring.key(v));
        }
        assert_eq!(
            Keyring::open(&root, &[8u8; 16], &sealed).map(|k| k.current_version()),
            Err(VaultError::KeyringDecrypt)
        );
        let other_root = RootKey::from_secret(random_key(&mut rng));
        assert_eq!(
            Keyring::open(&other_root, &vault_id, &sealed).map(|k| k.current_version()),
            Err(VaultError::KeyringDecrypt)
        );
    }

    #[test]
    fn rotation_keeps_old_versions_and_wraps_with_the_newest() {
        let (mut rng, _root, mut keyring) = setup();
        let o = org(1);
        let old = keyring.new_org_key(o, 1, &mut rng).unwrap();
        assert_eq!(old.keyring_version, 1);
        assert_eq!(keyring.rotate(&mut rng), 2);
        assert_eq!(keyring.current_version(), 2);
        let new = keyring.new_org_key(o, 2, &mut rng).unwrap();
        assert_eq!(new.keyring_version, 2);
        let keys = keyring.unwrap_org_keys(o, &[old, new]).unwrap();
        assert_eq!(keys.versions(), vec![1, 2]);
        assert_eq!(keys.current_version(), 2);
    }

    #[test]
    fn wrapped_keys_are_bound_to_org_and_versions() {
        let (mut rng, _root, mut keyring) = setup();
        let o = org(1);
        let wrapped = keyring.new_org_key(o, 1, &mut rng).unwrap();
        keyring.rotate(&mut rng);
        let unwrap = |w: &WrappedOrgKey, o| {
            keyring
                .unwrap_org_keys(o, std::slice::from_ref(w))
                .map(|k| k.current_version())
        };
        assert_eq!(unwrap(&wrapped, o), Ok(1));
        assert_eq!(unwrap(&wrapped, org(2)), Err(VaultError::KeyUnwrap));
        let relabelled = WrappedOrgKey {
            version: 2,
            ..wrapped.clone()
        };
        assert_eq!(unwrap(&relabelled, o), Err(VaultError::KeyUnwrap));
        let other_keyring = WrappedOrgKey {
            keyring_version: 2,
            ..wrapped.clone()
        };
        assert_eq!(unwrap(&other_keyring, o), Err(VaultError::KeyUnwrap));
        let unknown_keyring = WrappedOrgKey {
            keyring_version: 9,
            ..wrapped.clone()
        };
        assert_eq!(unwrap(&unknown_keyring, o), Err(VaultError::KeyUnwrap));
        for i in 0..wrapped.wrapped.len() {
            let mut bad = wrapped.clone();
            bad.wrapped[i] ^= 0x80;
            assert_eq!(unwrap(&bad, o), Err(VaultError::KeyUnwrap));
        }
        let twice = [wrapped.clone(), wrapped.clone()];
        assert_eq!(
            keyring
                .unwrap_org_keys(o, &twice)
                .map(|k| k.current_version()),
            Err(VaultError::KeyUnwrap)
        );
        assert_eq!(
            keyring.unwrap_org_keys(o, &[]).map(|k| k.current_version()),
            Err(VaultError::NoKeyVersion)
        );
        assert_eq!(
            keyring.new_org_key(o, 0, &mut rng).map(|w| w.version),
            Err(VaultError::NoKeyVersion)
        );
    }

    #[test]
    fn subkeys_are_stable_across_rotation_and_differ_by_purpose() {
        let (mut rng, _root, mut keyring) = setup();
        let before = keyring.derive_subkey("blind-index");
        keyring.rotate(&mut rng);
        assert_eq!(*keyring.derive_subkey("blind-index"), *before);
        assert_ne!(*keyring.derive_subkey("other"), *before);
        let (_, _, other_keyring) = {
            let mut rng = rand::rngs::StdRng::seed_from_u64(12);
            let root = RootKey::from_secret(random_key(&mut rng));
            let k = Keyring::generate(&mut rng);
            (rng, root, k)
        };
        assert_ne!(*other_keyring.derive_subkey("blind-index"), *before);
    }

    #[test]
    fn debug_prints_versions_only() {
        let (mut rng, _root, mut keyring) = setup();
        keyring.rotate(&mut rng);
        let debug = format!("{keyring:?}");
        assert_eq!(debug, "Keyring { current_version: 2, versions: [1, 2] }");
        for v in 1..=2 {
            let key = keyring.key(v).unwrap();
            assert!(!debug.contains(&format!("{:?}", &key[..3])));
        }
    }
}
