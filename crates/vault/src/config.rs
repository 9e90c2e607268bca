//! The seal configuration: the plain, non-secret data the store persists so a restarted hub can be unsealed.

use std::fmt;

/// What the store persists for the vault. Contains no secret: the keyring inside is encrypted under
/// the root key, and the share verifiers are SHA-256 preimages of 256-bit shares.
#[derive(Clone, PartialEq, Eq)]
pub struct SealConfig {
    /// Random id of this vault; every share names it, so a share of another vault is recognized.
    pub vault_id: [u8; 16],
    /// How many shares the root key was split into.
    pub key_shares: u8,
    /// How many distinct shares unseal the vault.
    pub key_threshold: u8,
    /// SHA-256(b"lockstep share verifier v1" || vault_id || x || y) for x = 1..=key_shares, in order.
    /// Lets the hub refuse a wrong share one at a time, while sealed (a 256-bit preimage is not guessable).
    pub share_verifiers: Vec<[u8; 32]>,
    /// The keyring, AES-256-GCM encrypted under the root key (nonce prepended),
    /// AAD = b"lockstep keyring v1" || vault_id.
    pub encrypted_keyring: Vec<u8>,
}

impl fmt::Debug for SealConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vault_id: String = self.vault_id.iter().map(|b| format!("{b:02x}")).collect();
        f.debug_struct("SealConfig")
            .field("vault_id", &vault_id)
            .field("key_shares", &self.key_shares)
            .field("key_threshold", &self.key_threshold)
            .field("share_verifiers", &self.share_verifiers.len())
            .field("encrypted_keyring_len", &self.encrypted_keyring.len())
            .finish()
    }
}
