//! The vault's error type: few, stable variants with short user-facing messages that never carry key or share bytes.

/// Everything that can go wrong in the vault.
///
/// The messages are safe to show to an operator: they never contain key material, share text or
/// plaintext, and decryption failures deliberately do not say *why* they failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The vault is sealed: no key is in memory.
    #[error("the vault is sealed")]
    Sealed,
    /// The requested number of key shares / threshold is not allowed.
    #[error("invalid key share settings: {reason}")]
    InvalidShareConfig {
        /// What is wrong with the settings.
        reason: &'static str,
    },
    /// The unseal key text is not a well-formed share (typo, truncated, wrong prefix, bad checksum).
    #[error("the unseal key is malformed (check it for typos or missing characters)")]
    MalformedShare,
    /// The unseal key is well-formed but was made for another vault.
    #[error("the unseal key belongs to a different vault")]
    ForeignShare,
    /// The unseal key is well-formed and for this vault, but is not one of its shares.
    #[error("the unseal key is not one of this vault's keys")]
    UnknownShare,
    /// This share was already entered during the current unseal attempt.
    #[error("this unseal key was already entered")]
    DuplicateShare,
    /// The combined shares did not open the keyring; the unseal attempt was reset.
    #[error("the unseal keys did not open the keyring")]
    KeyringDecrypt,
    /// A wrapped organization key could not be unwrapped.
    #[error("an organization key could not be unwrapped")]
    KeyUnwrap,
    /// A ciphertext could not be decrypted (wrong key, wrong context, or damaged).
    #[error("the data could not be decrypted")]
    Decrypt,
    /// Encryption failed.
    #[error("the data could not be encrypted")]
    Encrypt,
    /// No key of a usable version is available (for example, an empty list of wrapped keys).
    #[error("no usable key version")]
    NoKeyVersion,
}
