//! Signed checkpoints: the C2SP tlog-checkpoint body, signed and verified as a C2SP signed note with
//! Ed25519.
//!
//! A checkpoint body is three lines, `<origin>\n<size>\n<base64 root>\n`, optionally followed by
//! extension lines. A signed note is the body, an empty line, and one or more signature lines
//! `— <key name> <base64(key id || signature)>\n` (U+2014 EM DASH, then a space). For Ed25519 the
//! key id is the first four bytes of `SHA-256(key name || "\n" || 0x01 || public key)` and the
//! signature is over the body bytes exactly as they appear in the note.
//!
//! A verifier key is shared as text, `<key name>+<8 hex digits of key id>+<base64(0x01 || public
//! key)>`: see [`VerifyingKey::to_vkey`] and [`VerifyingKey::parse_vkey`].

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::LedgerError;
use crate::merkle::Hash;

/// The signature algorithm byte of Ed25519 in signed notes.
const ALG_ED25519: u8 = 0x01;
/// The start of every signature line: U+2014 EM DASH and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// At most this many signature lines are read from one note.
const MAX_SIGNATURES: usize = 100;
/// At most this many bytes in one note (a checkpoint is a few hundred).
const MAX_NOTE_LEN: usize = 64 * 1024;

/// A tree head: the log's origin line, its size and its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's unique name, the first line of the body (for example `lockstep.example.org/org/42`).
    pub origin: String,
    /// Number of entries in the tree.
    pub size: u64,
    /// The tree's root ([`crate::merkle::root`] of the first `size` leaves).
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint body, `<origin>\n<size>\n<base64 root>\n`, without extension lines.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Parses a checkpoint body. Extension lines after the third line are accepted and ignored;
    /// they must not be empty.
    pub fn parse_body(text: &str) -> Result<Checkpoint, LedgerError> {
        let malformed = |reason| LedgerError::MalformedCheckpoint { reason };
        let content = text
            .strip_suffix('\n')
            .ok_or(malformed("the body must end with a newline"))?;
        let mut lines = content.split('\n');
        let origin = lines.next().unwrap_or_default();
        check_origin(origin)?;
        let size = parse_size(lines.next().ok_or(malformed("the size line is missing"))?)?;
        let root_line = lines
            .next()
            .ok_or(malformed("the root hash line is missing"))?;
        let root = STANDARD
            .decode(root_line)
            .ok()
            .and_then(|bytes| Hash::try_from(bytes).ok())
            .ok_or(malformed(
                "the root hash is not 32 bytes of standard base64",
            ))?;
        for extension in lines {
            if extension.is_empty() {
                return Err(malformed("extension lines must not be empty"));
            }
            if extension.chars().any(char::is_control) {
                return Err(malformed(
                    "extension lines must not contain control characters",
                ));
            }
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

fn check_origin(origin: &str) -> Result<(), LedgerError> {
    if origin.is_empty() {
        return Err(LedgerError::MalformedCheckpoint {
            reason: "the origin line is empty",
        });
    }
    if origin.chars().any(char::is_control) {
        return Err(LedgerError::MalformedCheckpoint {
            reason: "the origin must not contain control characters",
        });
    }
    Ok(())
}

/// A tree size in ASCII decimal without leading zeros.
fn parse_size(line: &str) -> Result<u64, LedgerError> {
    let malformed = LedgerError::MalformedCheckpoint {
        reason: "the size is not a decimal number without leading zeros",
    };
    if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed);
    }
    if line.len() > 1 && line.starts_with('0') {
        return Err(malformed);
    }
    line.parse().map_err(|_| malformed)
}

/// Checks a signed-note key name: not empty, no Unicode white space, no `+`.
fn check_key_name(name: &str) -> Result<(), LedgerError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err(LedgerError::MalformedKey {
            reason: "a key name must be non-empty, without spaces or plus signs",
        });
    }
    Ok(())
}

/// The Ed25519 key id: the first four bytes of `SHA-256(name || "\n" || 0x01 || public key)`.
fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([ALG_ED25519]);
    hasher.update(public);
    let digest: [u8; 32] = hasher.finalize().into();
    let [a, b, c, d, ..] = digest;
    [a, b, c, d]
}

/// The private key that signs checkpoints. Wiped from memory on drop; `Debug` shows only the public key.
pub struct SigningKey {
    inner: ed25519_dalek::SigningKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field(
                "public",
                &STANDARD.encode(self.inner.verifying_key().as_bytes()),
            )
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh random key. In production pass `&mut rand::rng()`.
    pub fn generate(rng: &mut impl rand::CryptoRng) -> Self {
        Self {
            inner: ed25519_dalek::SigningKey::generate(rng),
        }
    }

    /// The key from its 32-byte seed (as returned by [`SigningKey::to_bytes`]).
    pub fn from_bytes(seed: &[u8; 32]) -> Self {
        Self {
            inner: ed25519_dalek::SigningKey::from_bytes(seed),
        }
    }

    /// The 32-byte seed, for storing the key encrypted. Wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.inner.to_bytes())
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            inner: self.inner.verifying_key(),
        }
    }

    /// Signs the checkpoint's body and returns the whole signed note: the body, an empty line and
    /// one signature line for `key_name`.
    ///
    /// Fails if `key_name` is not a valid key name or the checkpoint's origin is empty or holds
    /// control characters (such a note could not be parsed back).
    pub fn sign(&self, key_name: &str, checkpoint: &Checkpoint) -> Result<String, LedgerError> {
        check_key_name(key_name)?;
        check_origin(&checkpoint.origin)?;
        let body = checkpoint.body();
        let signature = self.inner.sign(body.as_bytes());
        let id = key_id(key_name, self.inner.verifying_key().as_bytes());
        let mut blob = Vec::with_capacity(4 + 64);
        blob.extend_from_slice(&id);
        blob.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{body}\n{SIGNATURE_PREFIX}{key_name} {}\n",
            STANDARD.encode(blob)
        ))
    }
}

/// The public key that verifies checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey {
    inner: ed25519_dalek::VerifyingKey,
}

impl VerifyingKey {
    /// The 32-byte public key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.inner.to_bytes()
    }

    /// The key from its 32 bytes; fails if they are not a valid Ed25519 public key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, LedgerError> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(|inner| Self { inner })
            .map_err(|_| LedgerError::MalformedKey {
                reason: "not an Ed25519 public key",
            })
    }

    /// The signed-note key id of this key under `key_name`, as a big-endian number.
    pub fn key_id(&self, key_name: &str) -> u32 {
        u32::from_be_bytes(key_id(key_name, self.inner.as_bytes()))
    }

    /// The verifier key text `<name>+<hex key id>+<base64(0x01 || public key)>`.
    pub fn to_vkey(&self, key_name: &str) -> Result<String, LedgerError> {
        check_key_name(key_name)?;
        let mut blob = Vec::with_capacity(33);
        blob.push(ALG_ED25519);
        blob.extend_from_slice(self.inner.as_bytes());
        Ok(format!(
            "{key_name}+{:08x}+{}",
            self.key_id(key_name),
            STANDARD.encode(blob)
        ))
    }

    /// Parses a verifier key text; returns the key name and the key. The key id in the text must
    /// match the one computed from the name and key.
    pub fn parse_vkey(text: &str) -> Result<(String, VerifyingKey), LedgerError> {
        let malformed = |reason| LedgerError::MalformedKey { reason };
        // The name and the hex id hold no '+'; the base64 key may.
        let mut parts = text.splitn(3, '+');
        let name = parts.next().unwrap_or_default();
        check_key_name(name)?;
        let id_hex = parts.next().ok_or(malformed("the key id is missing"))?;
        let key_b64 = parts.next().ok_or(malformed("the key is missing"))?;
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed("the key id must be 8 hex digits"));
        }
        let id = u32::from_str_radix(id_hex, 16)
            .map_err(|_| malformed("the key id must be 8 hex digits"))?;
        let blob = STANDARD
            .decode(key_b64)
            .map_err(|_| malformed("the key is not standard base64"))?;
        let public: [u8; 32] = match blob.split_first() {
            Some((&ALG_ED25519, rest)) => {
                <[u8; 32]>::try_from(rest).map_err(|_| malformed("an Ed25519 key is 32 bytes"))?
            }
            _ => return Err(malformed("not an Ed25519 verifier key")),
        };
        let key = VerifyingKey::from_bytes(&public)?;
        if key.key_id(name) != id {
            return Err(malformed("the key id does not match the name and key"));
        }
        Ok((name.to_owned(), key))
    }

    /// Verifies a signed note and parses its checkpoint.
    ///
    /// The note must carry at least one signature line with `key_name` and this key's id, and
    /// every such line must hold a valid signature over the body bytes as received (extension
    /// lines included). Lines by other keys are ignored. The caller still has to check that the
    /// checkpoint's origin is the one it expects.
    pub fn verify_note(&self, key_name: &str, note: &str) -> Result<Checkpoint, LedgerError> {
        let malformed = |reason| LedgerError::MalformedNote { reason };
        if note.len() > MAX_NOTE_LEN {
            return Err(malformed("the note is too long"));
        }
        // The signature block starts after the last empty line.
        let split = note
            .rfind("\n\n")
            .ok_or(malformed("no empty line before the signatures"))?;
        let (body, signatures) = note
            .split_at_checked(split + 1)
            .ok_or(malformed("no body"))?;
        let signatures = signatures
            .strip_prefix('\n')
            .ok_or(malformed("no empty line before the signatures"))?;
        let signatures = signatures
            .strip_suffix('\n')
            .ok_or(malformed("the note must end with a newline"))?;
        if signatures.is_empty() {
            return Err(malformed("the note has no signature lines"));
        }
        let my_id = key_id(key_name, self.inner.as_bytes());
        let mut verified = 0usize;
        for (count, line) in signatures.split('\n').enumerate() {
            if count >= MAX_SIGNATURES {
                return Err(malformed("too many signature lines"));
            }
            let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or(malformed(
                "a signature line must start with an em dash and a space",
            ))?;
            let (name, sig_b64) = rest.split_once(' ').ok_or(malformed(
                "a signature line needs a key name and a signature",
            ))?;
            let blob = STANDARD
                .decode(sig_b64)
                .map_err(|_| malformed("a signature is not standard base64"))?;
            let (id, signature) = blob
                .split_first_chunk::<4>()
                .ok_or(malformed("a signature is too short"))?;
            if name.is_empty() || signature.is_empty() {
                return Err(malformed(
                    "a signature line needs a key name and a signature",
                ));
            }
            if name != key_name || *id != my_id {
                continue;
            }
            let signature = ed25519_dalek::Signature::from_slice(signature)
                .map_err(|_| LedgerError::BadSignature)?;
            self.inner
                .verify_strict(body.as_bytes(), &signature)
                .map_err(|_| LedgerError::BadSignature)?;
            verified += 1;
        }
        if verified == 0 {
            return Err(LedgerError::SignatureNotFound);
        }
        Checkpoint::parse_body(body)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn body_has_three_lines() {
        let cp = Checkpoint {
            origin: "example.org/log".into(),
            size: 7,
            root: [0; 32],
        };
        assert_eq!(
            cp.body(),
            "example.org/log\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
        );
        assert_eq!(Checkpoint::parse_body(&cp.body()).unwrap(), cp);
    }

    #[test]
    fn parse_body_rejects_malformed_text() {
        let root = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        for bad in [
            String::new(),
            format!("o\n7\n{root}"),
            format!("\n7\n{root}\n"),
            format!("o\n07\n{root}\n"),
            format!("o\n-7\n{root}\n"),
            format!("o\n+7\n{root}\n"),
            format!("o\n 7\n{root}\n"),
            format!("o\n18446744073709551616\n{root}\n"),
            "o\n7\nAAAA\n".to_owned(),
            "o\n7\n".to_owned(),
            format!("o\n7\n{root}\n\n"),
            format!("o\r\n7\n{root}\n"),
        ] {
            assert!(Checkpoint::parse_body(&bad).is_err(), "{bad:?}");
        }
        let with_extension = format!("o\n0\n{root}\nextension line\n");
        assert_eq!(Checkpoint::parse_body(&with_extension).unwrap().size, 0);
    }

    #[test]
    fn key_names_are_checked() {
        assert!(check_key_name("example.org/log").is_ok());
        for bad in ["", "a b", "a+b", "a\u{a0}b", "a\nb"] {
            assert!(check_key_name(bad).is_err(), "{bad:?}");
        }
    }
}
