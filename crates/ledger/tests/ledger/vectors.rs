//! The transparency-dev/merkle proof verification vectors (shared/testdata/merkle), read at run time.
//!
//! Every file under `testdata/inclusion` and `testdata/consistency` is checked against its
//! `wantErr`. The vectors hold byte strings of any length where the API takes a 32-byte [`Hash`];
//! a value that is not 32 bytes is replaced by a stand-in hash derived from its role (leaf, root,
//! proof node) and its bytes. Equal values of one role stay equal (one vector, "sizes are equal
//! (one) and proof is empty", compares two such roots and expects success); a stand-in never
//! equals a real tree hash nor a stand-in of another role, so a malformed leaf never "matches" a
//! malformed root.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lockstep_ledger::Hash;
use lockstep_ledger::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InclusionVector {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConsistencyVector {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/merkle/testdata")
}

/// Every `.json` file under `dir`, recursively, sorted.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read test vectors in {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// What a value stands for, to keep stand-ins of different roles apart.
#[derive(Clone, Copy)]
enum Role {
    Leaf,
    Root,
    Proof,
}

fn hash(role: Role, text: &str) -> Hash {
    let bytes = STANDARD.decode(text).unwrap();
    Hash::try_from(bytes.as_slice()).unwrap_or_else(|_| {
        let tag: &[u8] = match role {
            Role::Leaf => b"stand-in leaf hash: ",
            Role::Root => b"stand-in root hash: ",
            Role::Proof => b"stand-in proof node: ",
        };
        leaf_hash(&[tag, &bytes].concat())
    })
}

fn hashes(proof: &Option<Vec<String>>) -> Vec<Hash> {
    proof
        .iter()
        .flatten()
        .map(|h| hash(Role::Proof, h))
        .collect()
}

/// The eight entries of the RFC 6962 reference tree that the vectors' happy paths are built on.
fn reference_leaves() -> Vec<Hash> {
    let entries: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    entries.iter().map(|e| leaf_hash(e)).collect()
}

#[test]
fn reference_tree_root_is_the_known_one() {
    let leaves = reference_leaves();
    assert_eq!(
        STANDARD.encode(root(&leaves)),
        "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=" // 5dc9da79...4328
    );
}

#[test]
fn inclusion_vectors() {
    let files = json_files(&testdata().join("inclusion"));
    assert!(
        files.len() >= 20,
        "only {} inclusion vectors found",
        files.len()
    );
    let reference = reference_leaves();
    let (mut passing, mut failing, mut cross_checked) = (0, 0, 0);
    for file in &files {
        let v: InclusionVector = serde_json::from_str(&fs::read_to_string(file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let proof = hashes(&v.proof);
        let result = verify_inclusion(
            &hash(Role::Leaf, &v.leaf_hash),
            v.leaf_idx,
            v.tree_size,
            &proof,
            &hash(Role::Root, &v.root),
        );
        assert_eq!(
            result.is_err(),
            v.want_err,
            "{} ({}): got {result:?}",
            file.display(),
            v.desc
        );
        if v.want_err {
            failing += 1;
        } else {
            passing += 1;
            // Where the vector is about the reference tree, our prover must produce its proof.
            if v.tree_size <= 8
                && root(&reference[..v.tree_size as usize]) == hash(Role::Root, &v.root)
            {
                let prefix = &reference[..v.tree_size as usize];
                assert_eq!(
                    reference[v.leaf_idx as usize],
                    hash(Role::Leaf, &v.leaf_hash)
                );
                assert_eq!(
                    inclusion_proof(prefix, v.leaf_idx).unwrap(),
                    proof,
                    "{}",
                    file.display()
                );
                cross_checked += 1;
            }
        }
    }
    assert!(
        passing >= 5 && failing >= 15,
        "{passing} passing, {failing} failing vectors"
    );
    assert!(
        cross_checked >= 5,
        "only {cross_checked} proofs cross-checked"
    );
}

#[test]
fn consistency_vectors() {
    let files = json_files(&testdata().join("consistency"));
    assert!(
        files.len() >= 10,
        "only {} consistency vectors found",
        files.len()
    );
    let reference = reference_leaves();
    let (mut passing, mut failing, mut cross_checked) = (0, 0, 0);
    for file in &files {
        let v: ConsistencyVector = serde_json::from_str(&fs::read_to_string(file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let proof = hashes(&v.proof);
        let (root1, root2) = (hash(Role::Root, &v.root1), hash(Role::Root, &v.root2));
        let result = verify_consistency(v.size1, v.size2, &root1, &root2, &proof);
        assert_eq!(
            result.is_err(),
            v.want_err,
            "{} ({}): got {result:?}",
            file.display(),
            v.desc
        );
        if v.want_err {
            failing += 1;
        } else {
            passing += 1;
            // Where the vector is about the reference tree, our prover must produce its proof.
            if v.size2 <= 8 && root(&reference[..v.size2 as usize]) == root2 {
                let prefix = &reference[..v.size2 as usize];
                assert_eq!(root(&reference[..v.size1 as usize]), root1);
                assert_eq!(
                    consistency_proof(prefix, v.size1).unwrap(),
                    proof,
                    "{}",
                    file.display()
                );
                cross_checked += 1;
            }
        }
    }
    assert!(
        passing >= 5 && failing >= 10,
        "{passing} passing, {failing} failing vectors"
    );
    assert!(
        cross_checked >= 5,
        "only {cross_checked} proofs cross-checked"
    );
}
