//! The ledger's error type: few, stable variants; none of them carries key bytes.

/// Everything that can go wrong when building or checking proofs, checkpoints and keys.
///
/// The messages are safe to show to an operator. They say *what* failed, not the bytes involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// A leaf index or tree size outside the tree was asked for (for example `index >= size`,
    /// `old_size > new_size`, or a proof request on an empty tree).
    #[error("index or size out of range: {reason}")]
    OutOfRange {
        /// Which bound was violated.
        reason: &'static str,
    },
    /// An inclusion or consistency proof does not prove what it claims.
    #[error("the Merkle proof does not verify: {reason}")]
    InvalidProof {
        /// The first check that failed.
        reason: &'static str,
    },
    /// A checkpoint body is not in the C2SP tlog-checkpoint format.
    #[error("malformed checkpoint: {reason}")]
    MalformedCheckpoint {
        /// What is wrong with the text.
        reason: &'static str,
    },
    /// A signed note is not in the C2SP signed-note format.
    #[error("malformed signed note: {reason}")]
    MalformedNote {
        /// What is wrong with the text.
        reason: &'static str,
    },
    /// A verifier key (vkey) text or key name is not well-formed, or the key bytes are not a valid
    /// Ed25519 public key.
    #[error("malformed verifier key: {reason}")]
    MalformedKey {
        /// What is wrong with the key.
        reason: &'static str,
    },
    /// The note carries no signature line for the expected key name and key id.
    #[error("the note has no signature by the expected key")]
    SignatureNotFound,
    /// A signature line for the expected key is present but the signature does not verify.
    #[error("the note's signature does not verify")]
    BadSignature,
}
