//! A key of its own for one object that holds much data (a data set): random, used for that
//! object only, and stored only wrapped by the organization's key ([`crate::OrgKeys::encrypt`],
//! bound to the object). Destroying the wrapped key makes everything sealed under it unreadable.
//!
//! Ciphertext format: `[format u8 = 2][nonce 12][AES-256-GCM ciphertext + tag 16]`; the
//! associated data is `b"lockstep object data v1"` followed by each part of the binding (the
//! object id, what the bytes are, their position) prefixed with its length as u64 BE.

use std::fmt;

use zeroize::Zeroizing;

use crate::{KEY_LEN, SecretKey, VaultError, gcm, random_key};

const FORMAT: u8 = 2;
const DOMAIN: &[u8] = b"lockstep object data v1";

/// One object's data key. Zeroized on drop; `Debug` prints nothing of it.
pub struct DataKey {
    key: SecretKey,
}

impl DataKey {
    /// A new random key.
    pub fn generate(rng: &mut impl rand::CryptoRng) -> DataKey {
        DataKey {
            key: random_key(rng),
        }
    }

    /// The key's bytes, to be wrapped by the organization's key (and nowhere else).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.key.to_vec())
    }

    /// The key from the bytes [`DataKey::to_bytes`] gave (unwrapped).
    pub fn from_bytes(bytes: &[u8]) -> Result<DataKey, VaultError> {
        let array: [u8; KEY_LEN] = bytes.try_into().map_err(|_| VaultError::Decrypt)?;
        Ok(DataKey {
            key: Box::new(Zeroizing::new(array)),
        })
    }

    /// Encrypts `plaintext`, bound to `binding` (every part must be given again to open it).
    pub fn seal(
        &self,
        binding: &[&[u8]],
        plaintext: &[u8],
        rng: &mut impl rand::CryptoRng,
    ) -> Result<Vec<u8>, VaultError> {
        let key: &[u8; KEY_LEN] = &self.key;
        let sealed = gcm::seal(key, &associated_data(binding), plaintext, rng)
            .map_err(|_| VaultError::Encrypt)?;
        let mut out = Vec::with_capacity(1 + sealed.len());
        out.push(FORMAT);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what [`DataKey::seal`] made with the same binding; any failure is
    /// [`VaultError::Decrypt`].
    pub fn open(
        &self,
        binding: &[&[u8]],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (&format, sealed) = ciphertext.split_first().ok_or(VaultError::Decrypt)?;
        if format != FORMAT {
            return Err(VaultError::Decrypt);
        }
        let key: &[u8; KEY_LEN] = &self.key;
        gcm::open(key, &associated_data(binding), sealed).map_err(|_| VaultError::Decrypt)
    }

    /// A keyed hash (HMAC-SHA256) of `data` under a subkey of this key for `purpose`: equal
    /// inputs give equal hashes, meaningless without the key.
    pub fn keyed_hash(&self, purpose: &str, data: &[u8]) -> Result<[u8; 32], VaultError> {
        Ok(self.hasher(purpose)?.hash(data))
    }

    /// The keyed hash of [`DataKey::keyed_hash`] for one purpose, its subkey derived once: for
    /// hashing many values.
    pub fn hasher(&self, purpose: &str) -> Result<KeyedHasher, VaultError> {
        use hmac::KeyInit;
        let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(None, self.key.as_slice());
        let mut subkey = Zeroizing::new([0u8; 32]);
        hkdf.expand_multi_info(
            &[b"lockstep object hash v1", purpose.as_bytes()],
            subkey.as_mut_slice(),
        )
        .map_err(|_| VaultError::Encrypt)?;
        let mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(subkey.as_slice())
            .map_err(|_| VaultError::Encrypt)?;
        Ok(KeyedHasher { mac })
    }
}

/// HMAC-SHA256 under a data key's subkey (see [`DataKey::hasher`]). `Debug` prints nothing of it.
#[derive(Clone)]
pub struct KeyedHasher {
    mac: hmac::Hmac<sha2::Sha256>,
}

impl KeyedHasher {
    /// The hasher of `mac` (an HMAC already keyed with its subkey).
    pub(crate) fn from_mac(mac: hmac::Hmac<sha2::Sha256>) -> KeyedHasher {
        KeyedHasher { mac }
    }

    pub fn hash(&self, data: &[u8]) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = self.mac.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for KeyedHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyedHasher(..)")
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

fn associated_data(binding: &[&[u8]]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(DOMAIN.len() + binding.iter().map(|p| p.len() + 8).sum::<usize>());
    out.extend_from_slice(DOMAIN);
    for part in binding {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sealed_data_opens_only_with_its_key_and_binding() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let key = DataKey::generate(&mut rng);
        let ct = key
            .seal(&[b"ds-1", b"records", b"0"], b"canary", &mut rng)
            .unwrap();
        assert!(!ct.windows(6).any(|w| w == b"canary"));
        assert_eq!(
            key.open(&[b"ds-1", b"records", b"0"], &ct)
                .unwrap()
                .as_slice(),
            b"canary"
        );
        // Another position, another object, another key: nothing.
        assert!(key.open(&[b"ds-1", b"records", b"1"], &ct).is_err());
        assert!(key.open(&[b"ds-2", b"records", b"0"], &ct).is_err());
        assert!(key.open(&[b"ds-1records", b"0"], &ct).is_err());
        let other = DataKey::generate(&mut rng);
        assert!(other.open(&[b"ds-1", b"records", b"0"], &ct).is_err());
        // The unwrapped bytes give the same key back.
        let again = DataKey::from_bytes(&key.to_bytes()).unwrap();
        assert_eq!(
            again
                .open(&[b"ds-1", b"records", b"0"], &ct)
                .unwrap()
                .as_slice(),
            b"canary"
        );
        assert_eq!(format!("{key:?}"), "DataKey(..)");
        assert_eq!(
            key.keyed_hash("p", b"x").unwrap(),
            key.hasher("p").unwrap().hash(b"x")
        );
        assert_ne!(
            key.keyed_hash("p", b"x").unwrap(),
            key.keyed_hash("q", b"x").unwrap()
        );
        assert_ne!(
            key.keyed_hash("p", b"x").unwrap(),
            other.keyed_hash("p", b"x").unwrap()
        );
    }
}
