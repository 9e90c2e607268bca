//! Offline verification of a whole exported ledger: entries, running roots and signed checkpoints.
//!
//! What each part proves:
//!
//! - the **signed checkpoints** are the only trusted data: each one binds a size to a root under the
//!   ledger's key, so any change to the first `size` entries (edit, deletion, insertion, reordering)
//!   shows up as [`Finding::RootMismatch`] or [`Finding::SizeBeyondEntries`];
//! - the **running roots** (the root after each entry was appended, stored by the app next to the
//!   entry) are not signed, so a complete rewrite can forge them; they serve to *locate* a change:
//!   the first position where the recomputed running root differs from the stored one is reported
//!   as `first_bad_entry`. An attacker who also recomputes the running roots from the changed entry
//!   on moves that position later or hides it (then `first_bad_entry` is `None`), but never hides
//!   the checkpoint mismatch itself.
//!
//! Entries after the latest checkpoint are allowed (appended since it was signed); they are
//! covered only by the running roots and reported as [`VerifiedLedger::unchecked_tail`].

use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, VerifyingKey};
use crate::merkle::{CompactTree, Hash, MerkleTree, leaf_hash, verify_consistency};

/// A ledger as exported for offline checking.
///
/// In JSON, `entries` and `running_roots` are lists of standard base64 strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedLedger {
    /// The origin line every checkpoint must carry.
    pub origin: String,
    /// The verifier key text (see [`VerifyingKey::to_vkey`]); its name is the signature key name.
    pub vkey: String,
    /// The entries, oldest first; entry `i` is leaf `i`.
    #[serde(with = "base64_bytes")]
    pub entries: Vec<Vec<u8>>,
    /// `running_roots[i]` is the root of the tree right after entry `i` was appended.
    #[serde(with = "base64_hashes")]
    pub running_roots: Vec<Hash>,
    /// The signed checkpoint notes, oldest first.
    pub checkpoints: Vec<String>,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLedger {
    /// Number of entries.
    pub size: u64,
    /// Root of all entries.
    pub root: Hash,
    /// Number of checkpoints, all of which verified.
    pub checkpoints: usize,
    /// Size of the latest checkpoint (0 without checkpoints).
    pub checked_size: u64,
    /// Root of the latest checkpoint ([`crate::merkle::empty_root`] without checkpoints).
    pub checked_root: Hash,
    /// Entries appended after the latest checkpoint, not yet covered by a signature.
    pub unchecked_tail: u64,
}

/// One problem found in an export. Checkpoints are numbered from 0 in export order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The export's verifier key text cannot be parsed; no checkpoint could be checked.
    BadVerifierKey,
    /// The checkpoint is malformed or its signature by the export's key does not verify.
    BadSignature {
        /// Which checkpoint.
        checkpoint: usize,
    },
    /// The checkpoint's signed root differs from the root of the first `size` entries.
    RootMismatch {
        /// Which checkpoint.
        checkpoint: usize,
        /// Its size.
        size: u64,
        /// The first entry below `size` whose recomputed running root differs from the stored
        /// one; `None` if the running roots were rewritten to match.
        first_bad_entry: Option<u64>,
    },
    /// The checkpoint claims more entries than the export holds.
    SizeBeyondEntries {
        /// Which checkpoint.
        checkpoint: usize,
        /// Its size.
        size: u64,
    },
    /// The checkpoint does not extend the previous valid one: smaller size, same size with
    /// another root, or no consistency proof between the two.
    NotAppendOnly {
        /// Which checkpoint (the later of the two).
        checkpoint: usize,
    },
    /// The checkpoint is validly signed but for another origin.
    WrongOrigin {
        /// Which checkpoint.
        checkpoint: usize,
    },
    /// The number of running roots differs from the number of entries.
    RunningRootCount {
        /// Number of entries.
        entries: u64,
        /// Number of running roots.
        running_roots: u64,
    },
    /// Recomputing the running roots from the entries disagrees with the stored ones, first at
    /// this entry (also reported for entries after the latest checkpoint).
    RunningRootMismatch {
        /// The first entry whose running root differs (or is missing on one side).
        first_bad_entry: u64,
    },
}

/// Verifies an exported ledger offline.
///
/// Returns every problem found, not just the first; see [`Finding`] and the module documentation.
pub fn verify_export(ledger: &ExportedLedger) -> Result<VerifiedLedger, Vec<Finding>> {
    let mut findings = Vec::new();
    let tree = check_entries(ledger, &mut findings);
    let Ok((key_name, key)) = VerifyingKey::parse_vkey(&ledger.vkey) else {
        findings.push(Finding::BadVerifierKey);
        return Err(findings);
    };
    check_checkpoints(
        ledger,
        &tree,
        |note| key.verify_note(&key_name, note).ok(),
        findings,
    )
}

/// Verifies a ledger's structure when its verifier key may be gone, as for a deleted
/// organization's stored ledger or one not yet checkpointed: the entries against their running
/// roots, and each checkpoint's size and root against the entries and the checkpoint before it.
///
/// With a readable verifier key the checkpoints' signatures are checked too (exactly as
/// [`verify_export`] does); without one their bodies are read unsigned, which proves the
/// ledger is consistent with itself but not who wrote it.
pub fn verify_structure(ledger: &ExportedLedger) -> Result<VerifiedLedger, Vec<Finding>> {
    if VerifyingKey::parse_vkey(&ledger.vkey).is_ok() {
        return verify_export(ledger);
    }
    let mut findings = Vec::new();
    let tree = check_entries(ledger, &mut findings);
    check_checkpoints(
        ledger,
        &tree,
        |note| {
            let split = note.rfind("\n\n")?;
            let (body, _) = note.split_at_checked(split + 1)?;
            Checkpoint::parse_body(body).ok()
        },
        findings,
    )
}

/// Recomputes the tree from the entries and compares the running roots.
fn check_entries(ledger: &ExportedLedger, findings: &mut Vec<Finding>) -> MerkleTree {
    let mut tree = MerkleTree::new();
    let mut compact = CompactTree::new();
    let mut first_running_mismatch = None;
    let mut stored = ledger.running_roots.iter();
    for (index, entry) in ledger.entries.iter().enumerate() {
        let leaf = leaf_hash(entry);
        tree.push(leaf);
        compact.push(leaf);
        let matches = stored.next() == Some(&compact.root());
        if !matches && first_running_mismatch.is_none() {
            first_running_mismatch = Some(index as u64);
        }
    }
    let size = tree.size();
    let running_roots = ledger.running_roots.len() as u64;
    if running_roots != size {
        findings.push(Finding::RunningRootCount {
            entries: size,
            running_roots,
        });
        first_running_mismatch.get_or_insert(size.min(running_roots));
    }
    if let Some(first_bad_entry) = first_running_mismatch {
        findings.push(Finding::RunningRootMismatch { first_bad_entry });
    }
    tree
}

/// Checks each checkpoint (read by `read`, `None` when it is malformed or badly signed) against
/// the entries and the checkpoint before it.
fn check_checkpoints(
    ledger: &ExportedLedger,
    tree: &MerkleTree,
    read: impl Fn(&str) -> Option<Checkpoint>,
    mut findings: Vec<Finding>,
) -> Result<VerifiedLedger, Vec<Finding>> {
    let first_running_mismatch = findings.iter().find_map(|finding| match finding {
        Finding::RunningRootMismatch { first_bad_entry } => Some(*first_bad_entry),
        _ => None,
    });
    let size = tree.size();
    // The previous checkpoint with a good signature and origin, and whether it matched the entries.
    let mut previous: Option<(Checkpoint, bool)> = None;
    for (index, note) in ledger.checkpoints.iter().enumerate() {
        let Some(checkpoint) = read(note) else {
            findings.push(Finding::BadSignature { checkpoint: index });
            continue;
        };
        if checkpoint.origin != ledger.origin {
            findings.push(Finding::WrongOrigin { checkpoint: index });
            continue;
        }
        let matches_entries = match tree.root_at(checkpoint.size) {
            Err(_) => {
                findings.push(Finding::SizeBeyondEntries {
                    checkpoint: index,
                    size: checkpoint.size,
                });
                false
            }
            Ok(root) if root != checkpoint.root => {
                findings.push(Finding::RootMismatch {
                    checkpoint: index,
                    size: checkpoint.size,
                    first_bad_entry: first_running_mismatch.filter(|bad| *bad < checkpoint.size),
                });
                false
            }
            Ok(_) => true,
        };
        if let Some((before, before_matches)) = &previous {
            let extends = if checkpoint.size < before.size {
                false
            } else if checkpoint.size == before.size {
                checkpoint.root == before.root
            } else if matches_entries && *before_matches && before.size > 0 {
                // Both roots come from the entries, so this holds unless the proof code is broken;
                // it is checked anyway, as an independent second look.
                tree.consistency_proof(before.size, checkpoint.size)
                    .and_then(|proof| {
                        verify_consistency(
                            before.size,
                            checkpoint.size,
                            &before.root,
                            &checkpoint.root,
                            &proof,
                        )
                    })
                    .is_ok()
            } else {
                // Without matching entries there is nothing to build a proof from; the mismatch
                // is already reported above.
                true
            };
            if !extends {
                findings.push(Finding::NotAppendOnly { checkpoint: index });
            }
        }
        previous = Some((checkpoint, matches_entries));
    }

    if !findings.is_empty() {
        return Err(findings);
    }
    let (checked_size, checked_root) = previous
        .map(|(checkpoint, _)| (checkpoint.size, checkpoint.root))
        .unwrap_or((0, crate::merkle::empty_root()));
    Ok(VerifiedLedger {
        size,
        root: tree.root(),
        checkpoints: ledger.checkpoints.len(),
        checked_size,
        checked_root,
        unchecked_tail: size.saturating_sub(checked_size),
    })
}

/// Serde for `Vec<Vec<u8>>` as a list of standard base64 strings.
mod base64_bytes {
    use super::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(
        items: &[Vec<u8>],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(items.iter().map(|item| STANDARD.encode(item)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| STANDARD.decode(text).map_err(D::Error::custom))
            .collect()
    }
}

/// Serde for `Vec<Hash>` as a list of standard base64 strings of 32 bytes.
mod base64_hashes {
    use super::{Hash, STANDARD};
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(
        items: &[Hash],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(items.iter().map(|item| STANDARD.encode(item)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Hash>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| {
                let bytes = STANDARD.decode(text).map_err(D::Error::custom)?;
                Hash::try_from(bytes).map_err(|_| D::Error::custom("a hash must be 32 bytes"))
            })
            .collect()
    }
}
