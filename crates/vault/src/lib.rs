//! Lockstep's vault: envelope encryption, Shamir unseal key shares and the sealed/unsealed state machine.
//!
//! # Key hierarchy
//!
//! ```text
//! unseal key shares ──Shamir (blahaj, GF(256))──▶ root key (256-bit, only in memory while unsealed)
//!   root key ──AES-256-GCM──▶ keyring (versioned keys, stored in SealConfig::encrypted_keyring)
//!     keyring key ──AES-256-GCM──▶ organization data keys (WrappedOrgKey, stored per org and version)
//!       org data key ──AES-256-GCM──▶ field ciphertexts, bound to (org, object kind, object id, field)
//! ```
//!
//! A hub is initialized once with [`initialize`]: the operator gets the [`UnsealKey`] texts (shown
//! once), the store keeps the [`SealConfig`]. On every start the app builds [`Vault::sealed`] from the
//! stored config and feeds shares to [`Vault::submit_share`] until the threshold is reached.
//!
//! # What this crate does not do
//!
//! No IO, no SQL, no clock, no async: the caller loads and stores the plain data structs
//! ([`SealConfig`], [`WrappedOrgKey`], ciphertext bytes).
//!
//! # Randomness
//!
//! Every function that needs randomness takes `rng: &mut impl rand::CryptoRng` (rand 0.10, whose
//! `CryptoRng` is infallible). In production pass `&mut rand::rng()` (the thread-local
//! [`rand::rngs::ThreadRng`], a ChaCha12 CSPRNG reseeded from the operating system). The OS source
//! [`rand::rngs::SysRng`] itself is only a *fallible* `TryCryptoRng` in rand 0.10; to use it directly
//! wrap it as `rand::rand_core::UnwrapErr(rand::rngs::SysRng)` (which panics if the OS source fails).
//! Tests pass a seeded [`rand::rngs::StdRng`] for reproducible runs.
//!
//! # Secrets
//!
//! Key material lives in [`zeroize::Zeroizing`] buffers (boxed, so moves do not leave copies) and is
//! wiped on drop. No type prints a key or share in `Debug`; errors never contain key or share bytes.

mod cipher;
mod config;
mod data_key;
mod error;
mod gcm;
mod init;
mod keyring;
mod seal;
mod shares;

use zeroize::Zeroizing;

pub use cipher::{Aad, OrgKeys};
pub use config::SealConfig;
pub use data_key::{DataKey, KeyedHasher};
pub use error::VaultError;
pub use init::{Initialized, RootKey, check_share_config, initialize};
pub use keyring::{Keyring, WrappedOrgKey};
pub use seal::{SealStatus, Vault};
pub use shares::UnsealKey;

/// Length in bytes of every symmetric key in the vault (AES-256).
pub const KEY_LEN: usize = 32;

/// A 256-bit key on the heap, wiped on drop. Boxed so moving it around never copies the bytes.
pub(crate) type SecretKey = Box<Zeroizing<[u8; KEY_LEN]>>;

/// A fresh random key, filled in place on the heap.
pub(crate) fn random_key(rng: &mut impl rand::CryptoRng) -> SecretKey {
    let mut key = Box::new(Zeroizing::new([0u8; KEY_LEN]));
    rng.fill_bytes(key.as_mut_slice());
    key
}
