//! Field encryption with an organization's data keys, bound to the organization, object and field.
//!
//! Ciphertext format: `[format u8 = 1][key version u32 BE][nonce 12][AES-256-GCM ciphertext + tag 16]`.
//!
//! The AEAD associated data is `b"lockstep data v1" || organization id (16) || format || key version (u32 BE)`
//! followed by `object_kind`, `object_id` and `field`, each prefixed with its length as u64 BE. The
//! length prefixes make the encoding unambiguous (`("ab", "c")` and `("a", "bc")` differ), so a
//! ciphertext copied to another organization, object or field does not decrypt.

use std::collections::BTreeMap;
use std::fmt;

use lockstep_domain::OrganizationId;
use zeroize::Zeroizing;

use crate::{KEY_LEN, KeyedHasher, SecretKey, VaultError, gcm};

const DATA_FORMAT: u8 = 1;
const DATA_AAD_DOMAIN: &[u8] = b"lockstep data v1";

/// What a ciphertext is bound to. Encoded unambiguously (length-prefixed) into the AEAD associated data
/// together with the organization id, so a ciphertext copied to another organization, object or field fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aad<'a> {
    /// The kind of object, e.g. `"connection"`.
    pub object_kind: &'a str,
    /// The object's id as text.
    pub object_id: &'a str,
    /// The field inside the object, e.g. `"password"`.
    pub field: &'a str,
}

/// An organization's unwrapped data keys (all versions). Zeroized on drop. `Debug` prints the
/// organization id and the versions only.
pub struct OrgKeys {
    organization: OrganizationId,
    /// Never empty: [`OrgKeys::new`] refuses an empty map.
    keys: BTreeMap<u32, SecretKey>,
}

impl OrgKeys {
    /// A keyed hash (HMAC-SHA256) of `data` under a subkey of the organization's first data key,
    /// separated by `purpose`. Equal inputs give equal hashes, stable across key rotation;
    /// without the organization's key the hash says nothing, so destroying the key destroys
    /// the meaning of every hash made with it.
    pub fn keyed_hash(&self, purpose: &str, data: &[u8]) -> Result<[u8; 32], VaultError> {
        Ok(self.hasher(purpose)?.hash(data))
    }

    /// The hasher [`OrgKeys::keyed_hash`] hashes with, to hash many values under one purpose
    /// without deriving the subkey each time: `hasher(p)?.hash(d) == keyed_hash(p, d)`.
    pub fn hasher(&self, purpose: &str) -> Result<KeyedHasher, VaultError> {
        use hmac::KeyInit;
        let first = self.keys.values().next().ok_or(VaultError::NoKeyVersion)?;
        let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(None, first.as_slice());
        let mut subkey = Zeroizing::new([0u8; 32]);
        hkdf.expand_multi_info(
            &[b"lockstep keyed hash v1", purpose.as_bytes()],
            subkey.as_mut_slice(),
        )
        .map_err(|_| VaultError::Encrypt)?;
        let mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(subkey.as_slice())
            .map_err(|_| VaultError::Encrypt)?;
        Ok(KeyedHasher::from_mac(mac))
    }
}

impl fmt::Debug for OrgKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrgKeys")
            .field("organization", &self.organization)
            .field("versions", &self.versions())
            .finish()
    }
}

fn associated_data(org: OrganizationId, version: u32, aad: &Aad<'_>) -> Vec<u8> {
    let parts = [aad.object_kind, aad.object_id, aad.field];
    let strings: usize = parts.iter().map(|p| p.len() + 8).sum();
    let mut out = Vec::with_capacity(DATA_AAD_DOMAIN.len() + 16 + 5 + strings);
    out.extend_from_slice(DATA_AAD_DOMAIN);
    out.extend_from_slice(org.as_bytes());
    out.push(DATA_FORMAT);
    out.extend_from_slice(&version.to_be_bytes());
    for part in parts {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

impl OrgKeys {
    pub(crate) fn new(
        organization: OrganizationId,
        keys: BTreeMap<u32, SecretKey>,
    ) -> Result<Self, VaultError> {
        if keys.is_empty() {
            return Err(VaultError::NoKeyVersion);
        }
        Ok(Self { organization, keys })
    }

    /// The organization these keys belong to.
    pub fn organization(&self) -> OrganizationId {
        self.organization
    }

    /// The newest key version: the one [`OrgKeys::encrypt`] uses.
    pub fn current_version(&self) -> u32 {
        self.keys
            .last_key_value()
            .map_or(0, |(version, _)| *version)
    }

    /// All key versions held, oldest first.
    pub fn versions(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    /// Encrypts `plaintext` with the newest key version, bound to this organization and `aad`.
    /// Ciphertext format: `[format u8 = 1][key version u32 BE][nonce 12][AES-256-GCM ciphertext + tag]`.
    pub fn encrypt(
        &self,
        aad: &Aad<'_>,
        plaintext: &[u8],
        rng: &mut impl rand::CryptoRng,
    ) -> Result<Vec<u8>, VaultError> {
        let (&version, key) = self.keys.last_key_value().ok_or(VaultError::NoKeyVersion)?;
        let key: &[u8; KEY_LEN] = key;
        let sealed = gcm::seal(
            key,
            &associated_data(self.organization, version, aad),
            plaintext,
            rng,
        )
        .map_err(|_| VaultError::Encrypt)?;
        let mut out = Vec::with_capacity(1 + 4 + sealed.len());
        out.push(DATA_FORMAT);
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts a ciphertext made by [`OrgKeys::encrypt`] (with any version still held).
    /// Any failure (unknown version, truncated, flipped byte, wrong AAD, other organization) is
    /// [`VaultError::Decrypt`].
    pub fn decrypt(
        &self,
        aad: &Aad<'_>,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (&format, rest) = ciphertext.split_first().ok_or(VaultError::Decrypt)?;
        if format != DATA_FORMAT {
            return Err(VaultError::Decrypt);
        }
        let (version, sealed) = rest.split_first_chunk::<4>().ok_or(VaultError::Decrypt)?;
        let version = u32::from_be_bytes(*version);
        let key: &[u8; KEY_LEN] = self.keys.get(&version).ok_or(VaultError::Decrypt)?;
        gcm::open(
            key,
            &associated_data(self.organization, version, aad),
            sealed,
        )
        .map_err(|_| VaultError::Decrypt)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::random_key;
    use rand::SeedableRng;
    use uuid::Uuid;

    const AAD: Aad<'static> = Aad {
        object_kind: "connection",
        object_id: "c-1",
        field: "password",
    };

    fn keys(org: u128, versions: &[u32], seed: u64) -> OrgKeys {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let map = versions
            .iter()
            .map(|v| (*v, random_key(&mut rng)))
            .collect();
        OrgKeys::new(OrganizationId::from_uuid(Uuid::from_u128(org)), map).unwrap()
    }

    #[test]
    fn the_hasher_hashes_as_keyed_hash_does() {
        use hmac::{KeyInit, Mac};
        let k = keys(1, &[1, 2], 3);
        let hasher = k.hasher("redaction scramble v1").unwrap();
        // The derivation keyed hashes were always made with (stored hashes stay valid).
        let first = k.keys.values().next().unwrap();
        let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(None, first.as_slice());
        let mut subkey = [0u8; 32];
        hkdf.expand_multi_info(
            &[b"lockstep keyed hash v1", b"redaction scramble v1"],
            &mut subkey,
        )
        .unwrap();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&subkey).unwrap();
        mac.update(b"ada@example.com");
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(hasher.hash(b"ada@example.com"), expected);
        assert_eq!(
            k.keyed_hash("redaction scramble v1", b"ada@example.com")
                .unwrap(),
            expected
        );
        // Another purpose, another organization's keys: other hashes.
        assert_ne!(
            k.hasher("e-mail index").unwrap().hash(b"ada@example.com"),
            expected
        );
        let other = keys(2, &[1], 4);
        assert_ne!(
            other
                .hasher("redaction scramble v1")
                .unwrap()
                .hash(b"ada@example.com"),
            expected
        );
    }

    #[test]
    fn round_trip_uses_newest_version() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let k = keys(1, &[1, 2], 1);
        let ct = k.encrypt(&AAD, b"s3cret", &mut rng).unwrap();
        assert_eq!(ct[0], 1);
        assert_eq!(&ct[1..5], &2u32.to_be_bytes());
        assert_eq!(ct.len(), 1 + 4 + 12 + 6 + 16);
        assert_eq!(k.decrypt(&AAD, &ct).unwrap().as_slice(), b"s3cret");
        assert!(!ct.windows(6).any(|w| w == b"s3cret"));
    }

    #[test]
    fn length_prefixes_make_the_aad_unambiguous() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let k = keys(1, &[1], 1);
        let a = Aad {
            object_kind: "ab",
            object_id: "c",
            field: "f",
        };
        let b = Aad {
            object_kind: "a",
            object_id: "bc",
            field: "f",
        };
        let ct = k.encrypt(&a, b"x", &mut rng).unwrap();
        assert_eq!(
            k.decrypt(&b, &ct).map(|p| p.to_vec()),
            Err(VaultError::Decrypt)
        );
    }

    #[test]
    fn the_organization_is_bound_even_with_the_same_key_bytes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        // Same seed: the same key bytes, only the organization differs.
        let a = keys(1, &[1], 9);
        let b = keys(2, &[1], 9);
        let ct = a.encrypt(&AAD, b"x", &mut rng).unwrap();
        assert_eq!(a.decrypt(&AAD, &ct).unwrap().as_slice(), b"x");
        assert_eq!(
            b.decrypt(&AAD, &ct).map(|p| p.to_vec()),
            Err(VaultError::Decrypt)
        );
    }

    #[test]
    fn version_byte_and_format_are_checked() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let k = keys(1, &[1, 2], 1);
        let mut ct = k.encrypt(&AAD, b"x", &mut rng).unwrap();
        // Relabelling as version 1 (a key we hold) still fails: the version is in the AAD and key.
        ct[4] = 1;
        assert_eq!(
            k.decrypt(&AAD, &ct).map(|p| p.to_vec()),
            Err(VaultError::Decrypt)
        );
        assert_eq!(
            k.decrypt(&AAD, &[]).map(|p| p.to_vec()),
            Err(VaultError::Decrypt)
        );
    }

    #[test]
    fn debug_prints_org_and_versions_only() {
        let k = keys(1, &[1, 3], 1);
        let debug = format!("{k:?}");
        assert_eq!(
            debug,
            "OrgKeys { organization: OrganizationId(00000000-0000-0000-0000-000000000001), versions: [1, 3] }"
        );
        for key in k.keys.values() {
            assert!(!debug.contains(&format!("{:?}", &key[..3])));
        }
        assert!(OrgKeys::new(k.organization(), BTreeMap::new()).is_err());
    }
}
