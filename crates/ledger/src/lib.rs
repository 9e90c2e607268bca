//! Lockstep's append-only audit ledger, the cryptography only: RFC 9162 Merkle trees, C2SP signed
//! checkpoints, and offline verification of an exported ledger.
//!
//! # How the app uses it
//!
//! Per organization the app stores the ledger entries (bytes) in order. On each append it hashes
//! the entry with [`merkle::leaf_hash`], pushes it onto a [`merkle::CompactTree`] (whose size and
//! frontier it keeps next to the ledger), and stores the new root with the entry as its *running
//! root*. Now and then it signs a [`checkpoint::Checkpoint`] of the current size and root with the
//! ledger's [`checkpoint::SigningKey`] and stores the note. Inclusion and consistency proofs come
//! from [`merkle::MerkleTree`] (or the slice functions in [`merkle`]) and are checked with
//! [`merkle::verify_inclusion`] and [`merkle::verify_consistency`] by anyone holding a checkpoint.
//! An export ([`verify::ExportedLedger`]) can be checked offline with [`verify::verify_export`].
//!
//! # What this crate does not do
//!
//! No IO, no SQL, no clock: the caller loads and stores bytes, hashes and note texts.
//!
//! # Formats
//!
//! - Merkle tree: RFC 9162 §2.1 (the same as RFC 6962), SHA-256, leaf prefix 0x00, node prefix 0x01.
//! - Checkpoint: C2SP tlog-checkpoint; signatures: C2SP signed-note with Ed25519 keys, verifier
//!   keys in the `<name>+<key id>+<base64 key>` text form. Notes produced here can be checked by
//!   other implementations of those formats.
//!
//! # Randomness
//!
//! Only [`checkpoint::SigningKey::generate`] needs randomness; it takes `rng: &mut impl
//! rand::CryptoRng` (rand 0.10). In production pass `&mut rand::rng()`; tests pass a seeded
//! [`rand::rngs::StdRng`].

pub mod checkpoint;
mod error;
pub mod merkle;
pub mod verify;

pub use checkpoint::{Checkpoint, SigningKey, VerifyingKey};
pub use error::LedgerError;
pub use merkle::Hash;
pub use verify::{ExportedLedger, Finding, VerifiedLedger, verify_export, verify_structure};
