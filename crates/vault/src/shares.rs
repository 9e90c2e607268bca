//! Unseal key shares: their text form (`lks1-…`), decoding with a checksum, and the per-share verifier.
//!
//! A share's text is `"lks1-"` followed by the unpadded base64url encoding of a 54-byte payload:
//!
//! | bytes | content |
//! | --- | --- |
//! | 1 | format version, `1` |
//! | 16 | vault id |
//! | 1 | `x`, the share's index (1..=255) |
//! | 32 | `y`, the share's value (one byte per byte of the root key, Shamir over GF(256)) |
//! | 4 | checksum: the first 4 bytes of SHA-256 of everything before |
//!
//! The checksum catches typos and truncation ([`VaultError::MalformedShare`]); the vault id tells a
//! share of another vault apart ([`VaultError::ForeignShare`]); the verifier stored in
//! [`SealConfig`](crate::SealConfig) tells a forged or altered share apart ([`VaultError::UnknownShare`]).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{KEY_LEN, VaultError};

/// The prefix of every share's text.
pub(crate) const SHARE_PREFIX: &str = "lks1-";
const FORMAT_VERSION: u8 = 1;
const CHECKSUM_LEN: usize = 4;
const BODY_LEN: usize = 1 + 16 + 1 + KEY_LEN;
const PAYLOAD_LEN: usize = BODY_LEN + CHECKSUM_LEN;
const VERIFIER_DOMAIN: &[u8] = b"lockstep share verifier v1";

/// One unseal key share as text. Secret: its `Debug` prints `UnsealKey(..)` and it is zeroized on drop.
pub struct UnsealKey(Zeroizing<String>);

impl UnsealKey {
    /// Wraps text the operator typed or pasted. Nothing is checked until the share is submitted.
    pub fn from_text(text: &str) -> Self {
        Self(Zeroizing::new(text.to_owned()))
    }

    /// The share's text, for showing it once to the operator at initialization.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UnsealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UnsealKey(..)")
    }
}

/// A decoded share whose encoding and checksum are correct (not yet checked against any vault).
pub(crate) struct DecodedShare {
    pub(crate) vault_id: [u8; 16],
    pub(crate) x: u8,
    pub(crate) y: Zeroizing<[u8; KEY_LEN]>,
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::digest(body);
    let mut out = [0u8; CHECKSUM_LEN];
    for (dst, src) in out.iter_mut().zip(digest.iter()) {
        *dst = *src;
    }
    out
}

/// Encodes a share as its text form.
pub(crate) fn encode(vault_id: &[u8; 16], x: u8, y: &[u8; KEY_LEN]) -> UnsealKey {
    let mut payload = Zeroizing::new(Vec::with_capacity(PAYLOAD_LEN));
    payload.push(FORMAT_VERSION);
    payload.extend_from_slice(vault_id);
    payload.push(x);
    payload.extend_from_slice(y);
    let sum = checksum(&payload);
    payload.extend_from_slice(&sum);

    let mut text = Zeroizing::new(String::with_capacity(
        SHARE_PREFIX.len() + PAYLOAD_LEN * 4 / 3 + 4,
    ));
    text.push_str(SHARE_PREFIX);
    URL_SAFE_NO_PAD.encode_string(payload.as_slice(), &mut text);
    UnsealKey(text)
}

/// Decodes a share's text. Leading and trailing whitespace is ignored (pasted text often carries some).
pub(crate) fn decode(key: &UnsealKey) -> Result<DecodedShare, VaultError> {
    let encoded = key
        .expose()
        .trim()
        .strip_prefix(SHARE_PREFIX)
        .ok_or(VaultError::MalformedShare)?;
    // Refuse anything that cannot be the right length before decoding into memory.
    if encoded.len() != (PAYLOAD_LEN * 8).div_ceil(6) {
        return Err(VaultError::MalformedShare);
    }
    let mut payload = Zeroizing::new(Vec::with_capacity(PAYLOAD_LEN + 3));
    URL_SAFE_NO_PAD
        .decode_vec(encoded, &mut payload)
        .map_err(|_| VaultError::MalformedShare)?;

    let (body, sum) = payload
        .split_at_checked(BODY_LEN)
        .ok_or(VaultError::MalformedShare)?;
    if sum.len() != CHECKSUM_LEN || checksum(body) != sum {
        return Err(VaultError::MalformedShare);
    }
    let (&format, rest) = body.split_first().ok_or(VaultError::MalformedShare)?;
    if format != FORMAT_VERSION {
        return Err(VaultError::MalformedShare);
    }
    let (vault_id, rest) = rest
        .split_first_chunk::<16>()
        .ok_or(VaultError::MalformedShare)?;
    let (&x, y_bytes) = rest.split_first().ok_or(VaultError::MalformedShare)?;
    let mut y = Zeroizing::new([0u8; KEY_LEN]);
    if y_bytes.len() != KEY_LEN {
        return Err(VaultError::MalformedShare);
    }
    y.copy_from_slice(y_bytes);
    Ok(DecodedShare {
        vault_id: *vault_id,
        x,
        y,
    })
}

/// SHA-256(b"lockstep share verifier v1" || vault_id || x || y): stored in the seal config so a wrong
/// share is refused on its own, before the threshold is reached.
pub(crate) fn verifier(vault_id: &[u8; 16], x: u8, y: &[u8; KEY_LEN]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(VERIFIER_DOMAIN);
    hasher.update(vault_id);
    hasher.update([x]);
    hasher.update(y);
    hasher.finalize().into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const VAULT: [u8; 16] = [0xAB; 16];
    const Y: [u8; KEY_LEN] = [0x5A; KEY_LEN];

    #[test]
    fn share_text_round_trips() {
        let key = encode(&VAULT, 3, &Y);
        assert!(key.expose().starts_with("lks1-"));
        assert_eq!(key.expose().len(), 5 + 72);
        let decoded = decode(&key).unwrap();
        assert_eq!(decoded.vault_id, VAULT);
        assert_eq!(decoded.x, 3);
        assert_eq!(*decoded.y, Y);
        let padded = UnsealKey::from_text(&format!("  {}\n", key.expose()));
        assert_eq!(decode(&padded).unwrap().x, 3);
    }

    #[test]
    fn typos_and_truncation_are_malformed() {
        let text = encode(&VAULT, 1, &Y).expose().to_owned();
        let cases = [
            String::new(),
            "lks1-".to_owned(),
            text.replacen("lks1-", "lks2-", 1),
            text.replacen("lks1-", "LKS1-", 1),
            text[..text.len() - 1].to_owned(),
            format!("{text}A"),
            format!("{}!", &text[..text.len() - 1]),
        ];
        for case in cases {
            let result = decode(&UnsealKey::from_text(&case)).map(|d| d.x);
            assert_eq!(result, Err(VaultError::MalformedShare), "{case:?}");
        }
        // Every single-character change of the base64 body breaks the checksum.
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for i in 5..text.len() {
            let original = text.as_bytes()[i] as char;
            let replacement = alphabet.chars().find(|c| *c != original).unwrap();
            let mut changed = text.clone();
            changed.replace_range(i..=i, &replacement.to_string());
            let result = decode(&UnsealKey::from_text(&changed)).map(|d| d.x);
            assert_eq!(result, Err(VaultError::MalformedShare), "position {i}");
        }
    }

    #[test]
    fn wrong_format_version_is_malformed_even_with_a_good_checksum() {
        let mut payload = vec![2u8];
        payload.extend_from_slice(&VAULT);
        payload.push(1);
        payload.extend_from_slice(&Y);
        let sum = checksum(&payload);
        payload.extend_from_slice(&sum);
        let text = format!("lks1-{}", URL_SAFE_NO_PAD.encode(&payload));
        let result = decode(&UnsealKey::from_text(&text)).map(|d| d.x);
        assert_eq!(result, Err(VaultError::MalformedShare));
    }

    #[test]
    fn debug_hides_the_share() {
        let key = encode(&VAULT, 1, &Y);
        assert_eq!(format!("{key:?}"), "UnsealKey(..)");
        assert_eq!(format!("{key:#?}"), "UnsealKey(..)");
    }

    #[test]
    fn verifier_depends_on_every_input() {
        let v = verifier(&VAULT, 1, &Y);
        assert_ne!(v, verifier(&[0; 16], 1, &Y));
        assert_ne!(v, verifier(&VAULT, 2, &Y));
        assert_ne!(v, verifier(&VAULT, 1, &[0; KEY_LEN]));
    }
}
