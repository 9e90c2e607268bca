//! Vault initialization: a random root key split into Shamir shares, and a fresh keyring sealed under it.

use std::fmt;

use blahaj::Sharks;
use zeroize::Zeroizing;

use crate::keyring::Keyring;
use crate::shares::{self, UnsealKey};
use crate::{KEY_LEN, SealConfig, SecretKey, VaultError, random_key};

/// The root key: reconstructed from the shares, it only decrypts the keyring. Zeroized on drop.
pub struct RootKey(SecretKey);

impl RootKey {
    pub(crate) fn from_secret(key: SecretKey) -> Self {
        Self(key)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey(..)")
    }
}

/// The result of [`initialize`]: the config to store, the shares to hand out once, and the unsealed keys.
pub struct Initialized {
    /// To be stored; loaded again on every start to build [`Vault::sealed`](crate::Vault::sealed).
    pub config: SealConfig,
    /// The unseal key shares, in order x = 1..=key_shares. Show each once, never store them.
    pub unseal_keys: Vec<UnsealKey>,
    /// The root key, for [`Vault::unsealed`](crate::Vault::unsealed).
    pub root: RootKey,
    /// The fresh keyring (version 1), for [`Vault::unsealed`](crate::Vault::unsealed).
    pub keyring: Keyring,
}

impl fmt::Debug for Initialized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initialized")
            .field("config", &self.config)
            .field("unseal_keys", &self.unseal_keys.len())
            .field("root", &self.root)
            .field("keyring", &self.keyring)
            .finish()
    }
}

/// Checks `1 <= threshold <= shares <= 255` and `threshold >= 2` unless `shares == 1`, before
/// anything is made or stored.
pub fn check_share_config(key_shares: u8, key_threshold: u8) -> Result<(), VaultError> {
    let reason = if key_shares == 0 {
        "at least one key share is needed"
    } else if key_threshold == 0 {
        "the threshold must be at least 1"
    } else if key_threshold > key_shares {
        "the threshold cannot be larger than the number of key shares"
    } else if key_threshold == 1 && key_shares > 1 {
        "a threshold of 1 with several shares would make each share the whole key; use a threshold of at least 2"
    } else {
        return Ok(());
    };
    Err(VaultError::InvalidShareConfig { reason })
}

/// Initializes a new vault.
///
/// Validates `1 <= key_threshold <= key_shares <= 255` and `key_threshold >= 2` unless
/// `key_shares == 1` ([`VaultError::InvalidShareConfig`] otherwise), makes a random 256-bit root key,
/// splits it with Shamir's secret sharing over GF(256) (blahaj), makes a keyring with one key
/// (version 1) and encrypts it under the root key.
pub fn initialize(
    key_shares: u8,
    key_threshold: u8,
    rng: &mut impl rand::CryptoRng,
) -> Result<Initialized, VaultError> {
    check_share_config(key_shares, key_threshold)?;

    let mut vault_id = [0u8; 16];
    rng.fill_bytes(&mut vault_id);
    let root = RootKey::from_secret(random_key(rng));
    let keyring = Keyring::generate(rng);
    let encrypted_keyring = keyring.seal_with(&root, &vault_id, rng)?;

    let mut unseal_keys = Vec::with_capacity(usize::from(key_shares));
    let mut share_verifiers = Vec::with_capacity(usize::from(key_shares));
    // blahaj hands out shares with x = 1, 2, 3, ... in order.
    for share in Sharks(key_threshold)
        .dealer_rng(root.bytes(), rng)
        .take(usize::from(key_shares))
    {
        if share.y.len() != KEY_LEN {
            return Err(VaultError::Encrypt);
        }
        let mut y = Zeroizing::new([0u8; KEY_LEN]);
        for (dst, src) in y.iter_mut().zip(share.y.iter()) {
            *dst = src.0;
        }
        let x = share.x.0;
        share_verifiers.push(shares::verifier(&vault_id, x, &y));
        unseal_keys.push(shares::encode(&vault_id, x, &y));
    }

    Ok(Initialized {
        config: SealConfig {
            vault_id,
            key_shares,
            key_threshold,
            share_verifiers,
            encrypted_keyring,
        },
        unseal_keys,
        root,
        keyring,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn initialize_makes_consistent_shares() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let init = initialize(5, 3, &mut rng).unwrap();
        assert_eq!(init.config.key_shares, 5);
        assert_eq!(init.config.key_threshold, 3);
        assert_eq!(init.unseal_keys.len(), 5);
        assert_eq!(init.config.share_verifiers.len(), 5);
        for (i, key) in init.unseal_keys.iter().enumerate() {
            let decoded = shares::decode(key).unwrap();
            assert_eq!(usize::from(decoded.x), i + 1);
            assert_eq!(decoded.vault_id, init.config.vault_id);
            assert_eq!(
                shares::verifier(&decoded.vault_id, decoded.x, &decoded.y),
                init.config.share_verifiers[i]
            );
        }
        let keyring = Keyring::open(
            &init.root,
            &init.config.vault_id,
            &init.config.encrypted_keyring,
        )
        .unwrap();
        assert_eq!(keyring.versions(), vec![1]);
    }

    #[test]
    fn a_single_share_is_allowed() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let init = initialize(1, 1, &mut rng).unwrap();
        assert_eq!(init.unseal_keys.len(), 1);
    }

    #[test]
    fn two_vaults_differ() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let a = initialize(2, 2, &mut rng).unwrap();
        let b = initialize(2, 2, &mut rng).unwrap();
        assert_ne!(a.config.vault_id, b.config.vault_id);
        assert_ne!(a.root.bytes(), b.root.bytes());
    }

    #[test]
    fn debug_of_initialized_and_root_key_hides_secrets() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let init = initialize(3, 2, &mut rng).unwrap();
        let debug = format!("{init:?} {init:#?}");
        for key in &init.unseal_keys {
            assert!(!debug.contains(key.expose()));
            // Not even a recognizable piece of the share's body.
            assert!(!debug.contains(&key.expose()[5..25]));
        }
        assert!(!debug.contains("lks1-"));
        let root_hex: String = init
            .root
            .bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!debug.contains(&root_hex));
        assert!(!debug.contains(&format!("{:?}", init.root.bytes())));
        assert!(!debug.contains(&format!("{:?}", &init.root.bytes()[..4])));
        assert_eq!(format!("{:?}", init.root), "RootKey(..)");
        assert!(debug.contains("RootKey(..)"));
    }
}
