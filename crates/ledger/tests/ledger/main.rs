//! The ledger crate's one integration-test binary: Merkle test vectors, proof properties, signed
//! checkpoints and offline verification of exported ledgers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod checkpoint;
mod export;
mod proofs;
mod vectors;
