//! Offline verification of exported ledgers: an untouched ledger verifies; edits, deletions,
//! reorderings and insertions are found and located; bad checkpoints are named.

use lockstep_ledger::merkle::{CompactTree, empty_root, leaf_hash, root};
use lockstep_ledger::{
    Checkpoint, ExportedLedger, Finding, SigningKey, VerifiedLedger, verify_export,
};

const ORIGIN: &str = "lockstep.example.org/ledger/org-42";

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn entry(i: usize) -> Vec<u8> {
    format!(r#"{{"event":"record.updated","seq":{i}}}"#).into_bytes()
}

fn running_roots(entries: &[Vec<u8>]) -> Vec<[u8; 32]> {
    let mut tree = CompactTree::new();
    entries
        .iter()
        .map(|e| {
            tree.push(leaf_hash(e));
            tree.root()
        })
        .collect()
}

fn sign_at(key: &SigningKey, entries: &[Vec<u8>], size: usize) -> String {
    let leaves: Vec<_> = entries[..size].iter().map(|e| leaf_hash(e)).collect();
    let checkpoint = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: size as u64,
        root: root(&leaves),
    };
    key.sign(ORIGIN, &checkpoint).unwrap()
}

/// A ledger of `n` entries with checkpoints signed at `sizes`, as the app would export it.
fn ledger(n: usize, sizes: &[usize]) -> ExportedLedger {
    let key = signing_key();
    let entries: Vec<_> = (0..n).map(entry).collect();
    ExportedLedger {
        origin: ORIGIN.to_owned(),
        vkey: key.verifying_key().to_vkey(ORIGIN).unwrap(),
        running_roots: running_roots(&entries),
        checkpoints: sizes.iter().map(|s| sign_at(&key, &entries, *s)).collect(),
        entries,
    }
}

fn standard() -> ExportedLedger {
    ledger(20, &[5, 12, 20])
}

#[test]
fn untouched_ledger_verifies() {
    let exported = standard();
    let leaves: Vec<_> = exported.entries.iter().map(|e| leaf_hash(e)).collect();
    assert_eq!(
        verify_export(&exported),
        Ok(VerifiedLedger {
            size: 20,
            root: root(&leaves),
            checkpoints: 3,
            checked_size: 20,
            checked_root: root(&leaves),
            unchecked_tail: 0,
        })
    );
}

#[test]
fn entries_after_the_latest_checkpoint_are_an_unchecked_tail() {
    let verified = verify_export(&ledger(20, &[5, 12])).unwrap();
    assert_eq!(verified.checked_size, 12);
    assert_eq!(verified.unchecked_tail, 8);
    assert_eq!(verified.size, 20);
}

#[test]
fn empty_ledger_and_empty_checkpoint_verify() {
    let verified = verify_export(&ledger(0, &[0])).unwrap();
    assert_eq!(verified.size, 0);
    assert_eq!(verified.root, empty_root());
    assert_eq!(verified.checked_root, empty_root());
    let verified = verify_export(&ledger(3, &[0, 0, 3])).unwrap();
    assert_eq!(verified.checked_size, 3);
    let verified = verify_export(&ledger(4, &[])).unwrap();
    assert_eq!((verified.checkpoints, verified.unchecked_tail), (0, 4));
}

#[test]
fn edited_entry_is_located() {
    let mut exported = standard();
    exported.entries[7] = br#"{"event":"record.deleted","seq":7}"#.to_vec();
    assert_eq!(
        verify_export(&exported),
        Err(vec![
            Finding::RunningRootMismatch { first_bad_entry: 7 },
            Finding::RootMismatch {
                checkpoint: 1,
                size: 12,
                first_bad_entry: Some(7)
            },
            Finding::RootMismatch {
                checkpoint: 2,
                size: 20,
                first_bad_entry: Some(7)
            },
        ])
    );
}

#[test]
fn deleted_entry_is_located() {
    // The row is gone, with its running root.
    let mut exported = standard();
    exported.entries.remove(7);
    exported.running_roots.remove(7);
    assert_eq!(
        verify_export(&exported),
        Err(vec![
            Finding::RunningRootMismatch { first_bad_entry: 7 },
            Finding::RootMismatch {
                checkpoint: 1,
                size: 12,
                first_bad_entry: Some(7)
            },
            Finding::SizeBeyondEntries {
                checkpoint: 2,
                size: 20
            },
        ])
    );
}

#[test]
fn deleted_entry_with_its_running_root_kept_is_located() {
    let mut exported = standard();
    exported.entries.remove(3);
    assert_eq!(
        verify_export(&exported),
        Err(vec![
            Finding::RunningRootCount {
                entries: 19,
                running_roots: 20
            },
            Finding::RunningRootMismatch { first_bad_entry: 3 },
            Finding::RootMismatch {
                checkpoint: 0,
                size: 5,
                first_bad_entry: Some(3)
            },
            Finding::RootMismatch {
                checkpoint: 1,
                size: 12,
                first_bad_entry: Some(3)
            },
            Finding::SizeBeyondEntries {
                checkpoint: 2,
                size: 20
            },
        ])
    );
}

#[test]
fn reordered_entries_are_located() {
    // Two entries swap places; each row keeps its position's running root.
    let mut exported = standard();
    exported.entries.swap(7, 9);
    assert_eq!(
        verify_export(&exported),
        Err(vec![
            Finding::RunningRootMismatch { first_bad_entry: 7 },
            Finding::RootMismatch {
                checkpoint: 1,
                size: 12,
                first_bad_entry: Some(7)
            },
            Finding::RootMismatch {
                checkpoint: 2,
                size: 20,
                first_bad_entry: Some(7)
            },
        ])
    );
    // Rows swapped whole, running roots included.
    let mut exported = standard();
    exported.entries.swap(13, 16);
    exported.running_roots.swap(13, 16);
    assert_eq!(
        verify_export(&exported),
        Err(vec![
            Finding::RunningRootMismatch {
                first_bad_entry: 13
            },
            Finding::RootMismatch {
                checkpoint: 2,
                size: 20,
                first_bad_entry: Some(13)
            },
        ])
    );
}

#[test]
fn inserted_entry_is_located() {
    // A forged row goes in at position 7 with a running root copied from a neighbouring row.
    let mut exported = standard();
    exported
        .entries
        .insert(7, br#"{"event":"role.granted","seq":7}"#.to_vec());
    let copied = exported.running_roots[6];
    exported.running_roots.insert(7, copied);
    assert_eq!(
        verify_export(&exported),
        Err(vec![
            Finding::RunningRootMismatch { first_bad_entry: 7 },
            Finding::RootMismatch {
                checkpoint: 1,
                size: 12,
                first_bad_entry: Some(7)
            },
            Finding::RootMismatch {
                checkpoint: 2,
                size: 20,
                first_bad_entry: Some(7)
            },
        ])
    );
}

#[test]
fn inserted_entry_with_forged_running_root_is_located_at_the_next_row() {
    // The forger computes a correct running root for the inserted row; the next row's stored
    // root still gives the change away.
    let mut exported = standard();
    exported.entries.insert(7, b"forged".to_vec());
    let forged = running_roots(&exported.entries[..8])[7];
    exported.running_roots.insert(7, forged);
    assert_eq!(
        verify_export(&exported),
        Err(vec![
            Finding::RunningRootMismatch { first_bad_entry: 8 },
            Finding::RootMismatch {
                checkpoint: 1,
                size: 12,
                first_bad_entry: Some(8)
            },
            Finding::RootMismatch {
                checkpoint: 2,
                size: 20,
                first_bad_entry: Some(8)
            },
        ])
    );
}

#[test]
fn fully_rewritten_running_roots_are_caught_by_the_checkpoints() {
    let mut exported = standard();
    exported.entries[9] = b"rewritten".to_vec();
    exported.running_roots = running_roots(&exported.entries);
    assert_eq!(
        verify_export(&exported),
        Err(vec![
            Finding::RootMismatch {
                checkpoint: 1,
                size: 12,
                first_bad_entry: None
            },
            Finding::RootMismatch {
                checkpoint: 2,
                size: 20,
                first_bad_entry: None
            },
        ])
    );
}

#[test]
fn tampering_after_the_latest_checkpoint_shows_in_the_running_roots() {
    let mut exported = ledger(20, &[5, 12]);
    exported.entries[15] = b"changed".to_vec();
    assert_eq!(
        verify_export(&exported),
        Err(vec![Finding::RunningRootMismatch {
            first_bad_entry: 15
        }])
    );
}

#[test]
fn bad_signatures_are_named() {
    let mut exported = standard();
    // Flip one character of checkpoint 1's signature.
    let note = &exported.checkpoints[1];
    let last = note.trim_end().chars().nth_back(3).unwrap();
    let swapped = if last == 'A' { 'B' } else { 'A' };
    let cut = note.trim_end().len() - 4;
    exported.checkpoints[1] = format!("{}{swapped}{}\n", &note[..cut], &note.trim_end()[cut + 1..]);
    // Checkpoint 2 is signed by someone else.
    let intruder = SigningKey::from_bytes(&[7; 32]);
    exported.checkpoints[2] = sign_at(&intruder, &exported.entries, 20);
    assert_eq!(
        verify_export(&exported),
        Err(vec![
            Finding::BadSignature { checkpoint: 1 },
            Finding::BadSignature { checkpoint: 2 },
        ])
    );
}

#[test]
fn checkpoint_for_another_origin_is_named() {
    let mut exported = standard();
    let key = signing_key();
    let leaves: Vec<_> = exported.entries[..12]
        .iter()
        .map(|e| leaf_hash(e))
        .collect();
    let elsewhere = Checkpoint {
        origin: "lockstep.example.org/ledger/org-43".to_owned(),
        size: 12,
        root: root(&leaves),
    };
    exported.checkpoints[1] = key.sign(ORIGIN, &elsewhere).unwrap();
    assert_eq!(
        verify_export(&exported),
        Err(vec![Finding::WrongOrigin { checkpoint: 1 }])
    );
}

#[test]
fn shrinking_or_forking_checkpoints_are_not_append_only() {
    let exported = ledger(20, &[12, 5, 20]);
    assert_eq!(
        verify_export(&exported),
        Err(vec![Finding::NotAppendOnly { checkpoint: 1 }])
    );

    // Two signed checkpoints of the same size with different roots: a fork.
    let mut exported = standard();
    let key = signing_key();
    let fork = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: 12,
        root: leaf_hash(b"another history"),
    };
    exported
        .checkpoints
        .insert(2, key.sign(ORIGIN, &fork).unwrap());
    assert_eq!(
        verify_export(&exported),
        Err(vec![
            Finding::RootMismatch {
                checkpoint: 2,
                size: 12,
                first_bad_entry: None
            },
            Finding::NotAppendOnly { checkpoint: 2 },
        ])
    );
}

#[test]
fn unreadable_verifier_key_is_reported() {
    let mut exported = standard();
    exported.vkey = "not a key".to_owned();
    assert_eq!(verify_export(&exported), Err(vec![Finding::BadVerifierKey]));
}

#[test]
fn json_round_trip_uses_base64() {
    let exported = ledger(3, &[3]);
    let json = serde_json::to_value(&exported).unwrap();
    assert_eq!(
        json["entries"][0],
        "eyJldmVudCI6InJlY29yZC51cGRhdGVkIiwic2VxIjowfQ=="
    );
    assert_eq!(json["running_roots"].as_array().unwrap().len(), 3);
    assert!(json["running_roots"][0].as_str().unwrap().ends_with('='));
    let back: ExportedLedger = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, exported);

    let mut bad = json.clone();
    bad["running_roots"][0] = "AAAA".into();
    assert!(serde_json::from_value::<ExportedLedger>(bad).is_err());
    let mut bad = json;
    bad["entries"][0] = "not base64!".into();
    assert!(serde_json::from_value::<ExportedLedger>(bad).is_err());
}

/// A deleted organization's ledger keeps no verifier key when it was never checkpointed; its
/// structure still verifies, and a change in it is still located.
#[test]
fn structure_verifies_without_a_verifier_key() {
    use lockstep_ledger::verify_structure;
    let mut unkeyed = ledger(6, &[]);
    unkeyed.vkey = String::new();
    assert_eq!(
        verify_export(&unkeyed),
        Err(vec![Finding::BadVerifierKey]),
        "a signed verification needs the key"
    );
    let verified = verify_structure(&unkeyed).unwrap();
    assert_eq!((verified.size, verified.checkpoints), (6, 0));

    // Checkpoints without a readable key are still checked against the entries.
    let mut checkpointed = ledger(20, &[5, 12]);
    checkpointed.vkey = String::new();
    let verified = verify_structure(&checkpointed).unwrap();
    assert_eq!((verified.checkpoints, verified.checked_size), (2, 12));
    checkpointed.entries[7] = br#"{"event":"record.deleted","seq":7}"#.to_vec();
    assert_eq!(
        verify_structure(&checkpointed),
        Err(vec![
            Finding::RunningRootMismatch { first_bad_entry: 7 },
            Finding::RootMismatch {
                checkpoint: 1,
                size: 12,
                first_bad_entry: Some(7)
            },
        ])
    );
    unkeyed.entries.swap(1, 3);
    assert_eq!(
        verify_structure(&unkeyed),
        Err(vec![Finding::RunningRootMismatch { first_bad_entry: 1 }])
    );
    // With the key, the signatures are checked as well.
    let mut forged = ledger(20, &[5]);
    forged.checkpoints[0] = forged.checkpoints[0].replace("\n5\n", "\n6\n");
    assert_eq!(
        verify_structure(&forged),
        Err(vec![Finding::BadSignature { checkpoint: 0 }])
    );
}
