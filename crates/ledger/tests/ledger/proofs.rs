//! Properties of proofs made by this crate: they verify against the reference root, and do not verify
//! for another leaf, index, size or root. A plain recursive transcription of RFC 9162 PATH and
//! PROOF serves as the reference for the tree-backed provers.

use lockstep_ledger::Hash;
use lockstep_ledger::merkle::{
    CompactTree, MerkleTree, consistency_proof, inclusion_proof, leaf_hash, node_hash, root,
    verify_consistency, verify_inclusion,
};
use proptest::prelude::*;

fn leaves(seed: u64, n: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("entry {seed}/{i}").as_bytes()))
        .collect()
}

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut out = *hash;
    out[bit / 8 % 32] ^= 1 << (bit % 8);
    out
}

fn k(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 9162 §2.1.3.1 PATH, on slices.
fn reference_path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() <= 1 {
        return Vec::new();
    }
    let k = k(d.len());
    let (left, right) = d.split_at(k);
    if m < k {
        let mut p = reference_path(m, left);
        p.push(root(right));
        p
    } else {
        let mut p = reference_path(m - k, right);
        p.push(root(left));
        p
    }
}

/// RFC 9162 §2.1.4.1 SUBPROOF, on slices.
fn reference_subproof(m: usize, d: &[Hash], whole: bool) -> Vec<Hash> {
    if m == d.len() {
        return if whole { Vec::new() } else { vec![root(d)] };
    }
    let k = k(d.len());
    let (left, right) = d.split_at(k);
    if m <= k {
        let mut p = reference_subproof(m, left, whole);
        p.push(root(right));
        p
    } else {
        let mut p = reference_subproof(m - k, right, false);
        p.push(root(left));
        p
    }
}

#[test]
fn reference_root_matches_definition_for_small_trees() {
    let l = leaves(0, 7);
    let n01 = node_hash(&l[0], &l[1]);
    let n23 = node_hash(&l[2], &l[3]);
    let n45 = node_hash(&l[4], &l[5]);
    let expected = node_hash(&node_hash(&n01, &n23), &node_hash(&n45, &l[6]));
    assert_eq!(root(&l), expected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn inclusion_proofs_verify_and_only_for_their_leaf(
        seed in any::<u64>(),
        n in 1u64..300,
        index_seed in any::<u64>(),
        other_seed in any::<u64>(),
        bit in 0usize..256,
    ) {
        let l = leaves(seed, n);
        let index = index_seed % n;
        let r = root(&l);
        let proof = inclusion_proof(&l, index).unwrap();
        prop_assert_eq!(&proof, &reference_path(index as usize, &l));
        prop_assert!(verify_inclusion(&l[index as usize], index, n, &proof, &r).is_ok());

        // Another leaf, another index, another root, a changed or longer proof: all fail.
        let other = other_seed % n;
        if other != index {
            prop_assert!(verify_inclusion(&l[other as usize], index, n, &proof, &r).is_err());
            prop_assert!(verify_inclusion(&l[index as usize], other, n, &proof, &r).is_err());
        }
        prop_assert!(verify_inclusion(&flip(&l[index as usize], bit), index, n, &proof, &r).is_err());
        prop_assert!(verify_inclusion(&l[index as usize], index, n, &proof, &flip(&r, bit)).is_err());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let at = bit % bad.len();
            bad[at] = flip(&bad[at], bit);
            prop_assert!(verify_inclusion(&l[index as usize], index, n, &bad, &r).is_err());
            prop_assert!(verify_inclusion(&l[index as usize], index, n, &proof[1..], &r).is_err());
        }
        let mut longer = proof.clone();
        longer.push(r);
        prop_assert!(verify_inclusion(&l[index as usize], index, n, &longer, &r).is_err());
    }

    #[test]
    fn consistency_proofs_verify_and_only_for_their_roots(
        seed in any::<u64>(),
        n in 1u64..300,
        old_seed in any::<u64>(),
        bit in 0usize..256,
    ) {
        let l = leaves(seed, n);
        let old = old_seed % n + 1; // 1..=n
        let (old_root, new_root) = (root(&l[..old as usize]), root(&l));
        let proof = consistency_proof(&l, old).unwrap();
        prop_assert_eq!(&proof, &reference_subproof(old as usize, &l, true));
        prop_assert!(verify_consistency(old, n, &old_root, &new_root, &proof).is_ok());

        prop_assert!(verify_consistency(old, n, &flip(&old_root, bit), &new_root, &proof).is_err());
        prop_assert!(verify_consistency(old, n, &old_root, &flip(&new_root, bit), &proof).is_err());
        // The proof of another ledger's history does not verify.
        let forged = leaves(seed.wrapping_add(1), n);
        prop_assert!(verify_consistency(old, n, &root(&forged[..old as usize]), &new_root, &proof).is_err());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let at = bit % bad.len();
            bad[at] = flip(&bad[at], bit);
            prop_assert!(verify_consistency(old, n, &old_root, &new_root, &bad).is_err());
            prop_assert!(verify_consistency(old, n, &old_root, &new_root, &proof[1..]).is_err());
            prop_assert!(verify_consistency(old, n, &old_root, &new_root, &proof[..proof.len() - 1]).is_err());
        }
        let mut longer = proof.clone();
        longer.push(new_root);
        prop_assert!(verify_consistency(old, n, &old_root, &new_root, &longer).is_err());
    }

    #[test]
    fn tree_representations_agree(seed in any::<u64>(), n in 0u64..300, size_seed in any::<u64>()) {
        let l = leaves(seed, n);
        let tree = MerkleTree::from_leaves(l.iter().copied());
        let mut compact = CompactTree::new();
        for leaf in &l {
            compact.push(*leaf);
        }
        let expected = root(&l);
        prop_assert_eq!(tree.root(), expected);
        prop_assert_eq!(compact.root(), expected);
        prop_assert_eq!(tree.leaves(), l.as_slice());
        let size = size_seed % (n + 1);
        prop_assert_eq!(tree.root_at(size).unwrap(), root(&l[..size as usize]));
        if size > 0 {
            let index = size_seed % size;
            let proof = tree.inclusion_proof(index, size).unwrap();
            prop_assert_eq!(&proof, &reference_path(index as usize, &l[..size as usize]));
            let old = size_seed % size + 1;
            let proof = tree.consistency_proof(old, size).unwrap();
            prop_assert_eq!(&proof, &reference_subproof(old as usize, &l[..size as usize], true));
        }
    }
}
