//! AES-256-GCM with a random 96-bit nonce prepended: the one AEAD construction every layer of the vault uses.

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use zeroize::Zeroizing;

use crate::KEY_LEN;

/// Length of the random nonce written in front of every sealed box.
pub(crate) const NONCE_LEN: usize = 12;
/// Length of the GCM authentication tag at the end of every sealed box.
pub(crate) const TAG_LEN: usize = 16;

type Nonce = aes_gcm::aead::Nonce<Aes256Gcm>;
type Tag = aes_gcm::aead::Tag<Aes256Gcm>;

/// The AEAD failed; callers turn this into their own error without further detail.
#[derive(Debug)]
pub(crate) struct GcmError;

fn cipher(key: &[u8; KEY_LEN]) -> Result<Aes256Gcm, GcmError> {
    Aes256Gcm::new_from_slice(key).map_err(|_| GcmError)
}

/// Encrypts `plaintext` under `key` with `aad`; returns `nonce || ciphertext || tag`.
pub(crate) fn seal(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl rand::CryptoRng,
) -> Result<Vec<u8>, GcmError> {
    let mut nonce_bytes = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce_bytes);
    let nonce = Nonce::from(nonce_bytes);

    // Reserve the full size up front so the plaintext is never left behind by a reallocation.
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(plaintext);
    let body = out.get_mut(NONCE_LEN..).ok_or(GcmError)?;
    let tag = cipher(key)?
        .encrypt_inout_detached(&nonce, aad, body.into())
        .map_err(|_| GcmError)?;
    out.extend_from_slice(tag.as_slice());
    Ok(out)
}

/// Opens a box made by [`seal`] with the same `key` and `aad`.
pub(crate) fn open(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, GcmError> {
    let (nonce, rest) = sealed.split_at_checked(NONCE_LEN).ok_or(GcmError)?;
    let body_len = rest.len().checked_sub(TAG_LEN).ok_or(GcmError)?;
    let (body, tag) = rest.split_at_checked(body_len).ok_or(GcmError)?;
    let nonce = Nonce::try_from(nonce).map_err(|_| GcmError)?;
    let tag = Tag::try_from(tag).map_err(|_| GcmError)?;

    let mut plaintext = Zeroizing::new(body.to_vec());
    cipher(key)?
        .decrypt_inout_detached(&nonce, aad, plaintext.as_mut_slice().into(), &tag)
        .map_err(|_| GcmError)?;
    Ok(plaintext)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn round_trips_and_refuses_tampering() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let key = [9u8; KEY_LEN];
        let boxed = seal(&key, b"ctx", b"hello", &mut rng).unwrap();
        assert_eq!(boxed.len(), NONCE_LEN + 5 + TAG_LEN);
        assert_eq!(open(&key, b"ctx", &boxed).unwrap().as_slice(), b"hello");
        assert!(open(&key, b"other", &boxed).is_err());
        assert!(open(&[8u8; KEY_LEN], b"ctx", &boxed).is_err());
        for i in 0..boxed.len() {
            let mut bad = boxed.clone();
            bad[i] ^= 0x01;
            assert!(open(&key, b"ctx", &bad).is_err(), "flip at {i}");
        }
        for len in 0..boxed.len() {
            assert!(
                open(&key, b"ctx", &boxed[..len]).is_err(),
                "truncated to {len}"
            );
        }
    }

    #[test]
    fn nonces_differ() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let key = [1u8; KEY_LEN];
        let a = seal(&key, b"", b"same", &mut rng).unwrap();
        let b = seal(&key, b"", b"same", &mut rng).unwrap();
        assert_ne!(a, b);
    }
}
