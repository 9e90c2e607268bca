//! RFC 9162 (RFC 6962) Merkle tree hashing with SHA-256: leaf and node hashes, tree roots, inclusion and
//! consistency proofs, and their verification.
//!
//! Three ways to hold a tree, for three jobs:
//!
//! - the free functions [`root`], [`inclusion_proof`] and [`consistency_proof`] take all leaf hashes
//!   as a slice; [`root`] is a direct transcription of MTH (RFC 9162 §2.1.1);
//! - [`CompactTree`] keeps only the roots of the perfect subtrees on the right edge (one hash per set
//!   bit of the size): enough to append and to compute the new root in O(log n) memory, so the app
//!   can append without loading the whole ledger;
//! - [`MerkleTree`] keeps every perfect, aligned subtree hash (about two hashes per leaf) and answers
//!   roots of any prefix and proofs between any sizes in O(log² n), which offline verification of a
//!   whole export needs.
//!
//! Proof verification ([`verify_inclusion`], [`verify_consistency`]) follows RFC 9162 §2.1.3.2 and
//! §2.1.4.2 step by step and needs nothing but the proof.

use sha2::{Digest, Sha256};

use crate::LedgerError;

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// Domain separation prefix of a leaf hash (RFC 9162 §2.1.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain separation prefix of an interior node hash (RFC 9162 §2.1.1).
const NODE_PREFIX: u8 = 0x01;

/// The hash of one ledger entry: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(entry);
    hasher.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n`; `n` must be at least 2.
fn split_point(n: u64) -> u64 {
    // For n >= 2, n - 1 >= 1 has at most 63 leading zeros, so the shift is in range.
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// The Merkle tree hash MTH (RFC 9162 §2.1.1) of a list of leaf hashes.
///
/// `leaves` are leaf hashes (see [`leaf_hash`]), not entries. The root of no leaves is
/// [`empty_root`]; the root of one leaf is that leaf hash.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [only] => *only,
        _ => {
            let k = usize::try_from(split_point(leaves.len() as u64)).unwrap_or(usize::MAX);
            match leaves.split_at_checked(k) {
                Some((left, right)) => node_hash(&root(left), &root(right)),
                // Unreachable: k < len for len >= 2.
                None => empty_root(),
            }
        }
    }
}

/// The inclusion proof `PATH(index, D[n])` (RFC 9162 §2.1.3.1) of leaf `index` in the tree of `leaves`.
///
/// Fails with [`LedgerError::OutOfRange`] if `index >= leaves.len()`.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, LedgerError> {
    let tree = MerkleTree::from_leaves(leaves.iter().copied());
    tree.inclusion_proof(index, tree.size())
}

/// The consistency proof `PROOF(old_size, D[n])` (RFC 9162 §2.1.4.1) between the first `old_size`
/// leaves and all of `leaves`.
///
/// The proof between equal sizes is empty. Fails with [`LedgerError::OutOfRange`] if
/// `old_size > leaves.len()`, or if `old_size` is 0 and the tree is not empty (every tree extends
/// the empty tree; there is nothing to prove, and [`verify_consistency`] rejects such a proof).
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, LedgerError> {
    let tree = MerkleTree::from_leaves(leaves.iter().copied());
    tree.consistency_proof(old_size, tree.size())
}

/// Checks that `leaf` is the leaf hash at `index` in the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), LedgerError> {
    if index >= size {
        return Err(LedgerError::OutOfRange {
            reason: "leaf index must be smaller than the tree size",
        });
    }
    let mut f_n = index;
    let mut s_n = size - 1;
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(LedgerError::InvalidProof {
                reason: "the proof is longer than the path to the root",
            });
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(LedgerError::InvalidProof {
            reason: "the proof is shorter than the path to the root",
        });
    }
    if r != *root {
        return Err(LedgerError::InvalidProof {
            reason: "the computed root does not match",
        });
    }
    Ok(())
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends the tree of `old_size`
/// leaves with root `old_root` (RFC 9162 §2.1.4.2).
///
/// Edge cases: equal sizes need an empty proof and equal roots (and size 0 needs the
/// [`empty_root`]); `old_size > new_size` fails; `old_size == 0 < new_size` fails, because the
/// empty tree is a prefix of every tree and a proof of it proves nothing.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), LedgerError> {
    if old_size > new_size {
        return Err(LedgerError::OutOfRange {
            reason: "the old size is larger than the new size",
        });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(LedgerError::InvalidProof {
                reason: "the proof between equal sizes must be empty",
            });
        }
        if old_root != new_root {
            return Err(LedgerError::InvalidProof {
                reason: "equal sizes with different roots",
            });
        }
        if old_size == 0 && *old_root != empty_root() {
            return Err(LedgerError::InvalidProof {
                reason: "the root of the empty tree is wrong",
            });
        }
        return Ok(());
    }
    if old_size == 0 {
        return Err(LedgerError::OutOfRange {
            reason: "no consistency proof from the empty tree",
        });
    }
    let mut path = proof.iter();
    // RFC 9162 §2.1.4.2 step 1: a proof between different sizes is never empty.
    let Some(first) = path.next() else {
        return Err(LedgerError::InvalidProof {
            reason: "empty proof",
        });
    };
    // Step 2: when the old size is a power of two, the old root is the first node of the path
    // and is not sent.
    let seed = if old_size.is_power_of_two() {
        path = proof.iter();
        *old_root
    } else {
        *first
    };
    let mut f_n = old_size - 1;
    let mut s_n = new_size - 1;
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let mut f_r = seed;
    let mut s_r = seed;
    for c in path {
        if s_n == 0 {
            return Err(LedgerError::InvalidProof {
                reason: "the proof is longer than needed",
            });
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(LedgerError::InvalidProof {
            reason: "the proof is shorter than needed",
        });
    }
    if f_r != *old_root {
        return Err(LedgerError::InvalidProof {
            reason: "the computed old root does not match",
        });
    }
    if s_r != *new_root {
        return Err(LedgerError::InvalidProof {
            reason: "the computed new root does not match",
        });
    }
    Ok(())
}

/// An append-only tree that keeps only its right edge: the roots of the perfect subtrees that make up
/// the tree, largest (leftmost) first, one per set bit of the size.
///
/// Enough to append leaves and compute the root without the earlier leaves. The app can persist
/// [`CompactTree::size`] and [`CompactTree::frontier`] and restore them with
/// [`CompactTree::from_frontier`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactTree {
    size: u64,
    frontier: Vec<Hash>,
}

impl CompactTree {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores a tree from its size and frontier (as returned by [`CompactTree::frontier`]).
    ///
    /// Fails with [`LedgerError::OutOfRange`] if the frontier does not hold exactly one hash per
    /// set bit of `size`.
    pub fn from_frontier(size: u64, frontier: Vec<Hash>) -> Result<Self, LedgerError> {
        if frontier.len() as u64 != u64::from(size.count_ones()) {
            return Err(LedgerError::OutOfRange {
                reason: "the frontier must hold one hash per set bit of the size",
            });
        }
        Ok(Self { size, frontier })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the perfect subtrees on the right edge, largest first.
    pub fn frontier(&self) -> &[Hash] {
        &self.frontier
    }

    /// Appends one leaf hash (see [`leaf_hash`]).
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        // Each trailing one bit of the old size is a perfect subtree of the same size as the one
        // being carried: merge them.
        let mut carry = self.size;
        while carry & 1 == 1 {
            let Some(left) = self.frontier.pop() else {
                break;
            };
            hash = node_hash(&left, &hash);
            carry >>= 1;
        }
        self.frontier.push(hash);
        self.size += 1;
    }

    /// The root of the tree (MTH of all leaves pushed so far).
    pub fn root(&self) -> Hash {
        let mut subtrees = self.frontier.iter().rev();
        match subtrees.next() {
            None => empty_root(),
            Some(last) => subtrees.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// A tree that keeps every perfect, aligned subtree hash, for roots and proofs at any size.
///
/// `levels[0]` holds the leaf hashes; `levels[j][i]` is the root of leaves `i·2^j .. (i+1)·2^j`.
/// Memory is about two hashes per leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl Default for MerkleTree {
    fn default() -> Self {
        Self::new()
    }
}

impl MerkleTree {
    /// The empty tree.
    pub fn new() -> Self {
        Self {
            levels: vec![Vec::new()],
        }
    }

    /// A tree of the given leaf hashes, in order.
    pub fn from_leaves(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let mut tree = Self::new();
        for leaf in leaves {
            tree.push(leaf);
        }
        tree
    }

    /// Appends one leaf hash (see [`leaf_hash`]).
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut level = 0;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            let Some(row) = self.levels.get_mut(level) else {
                return;
            };
            row.push(hash);
            // A new node at an odd position (1-based even length) completes a pair.
            if row.len() % 2 != 0 {
                return;
            }
            match row.get(row.len() - 2..) {
                Some([left, right]) => hash = node_hash(left, right),
                _ => return,
            }
            level += 1;
        }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// The leaf hashes, in order.
    pub fn leaves(&self) -> &[Hash] {
        self.levels.first().map_or(&[], Vec::as_slice)
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.range_root(0, self.size()).unwrap_or_else(empty_root)
    }

    /// The root of the tree made of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, LedgerError> {
        if size > self.size() {
            return Err(LedgerError::OutOfRange {
                reason: "the size is larger than the tree",
            });
        }
        self.range_root(0, size).ok_or(INTERNAL_RANGE)
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LedgerError> {
        if size > self.size() {
            return Err(LedgerError::OutOfRange {
                reason: "the size is larger than the tree",
            });
        }
        if index >= size {
            return Err(LedgerError::OutOfRange {
                reason: "leaf index must be smaller than the tree size",
            });
        }
        let mut proof = Vec::new();
        self.path(0, size, index, &mut proof)
            .ok_or(INTERNAL_RANGE)?;
        Ok(proof)
    }

    /// The consistency proof between the trees of the first `old_size` and the first `new_size`
    /// leaves. Empty when the sizes are equal; an error when `old_size` is 0 and `new_size` is not
    /// (see [`verify_consistency`]).
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, LedgerError> {
        if new_size > self.size() {
            return Err(LedgerError::OutOfRange {
                reason: "the size is larger than the tree",
            });
        }
        if old_size > new_size {
            return Err(LedgerError::OutOfRange {
                reason: "the old size is larger than the new size",
            });
        }
        if old_size == new_size {
            return Ok(Vec::new());
        }
        if old_size == 0 {
            return Err(LedgerError::OutOfRange {
                reason: "no consistency proof from the empty tree",
            });
        }
        let mut proof = Vec::new();
        self.subproof(0, new_size, old_size, true, &mut proof)
            .ok_or(INTERNAL_RANGE)?;
        Ok(proof)
    }

    /// MTH of the leaves `start..end`, where `start` is a multiple of the smallest power of two
    /// not below `end - start` (true of every subtree in the RFC 9162 recursion). `None` if a
    /// needed subtree is not in the tree.
    fn range_root(&self, start: u64, end: u64) -> Option<Hash> {
        let count = end.checked_sub(start)?;
        if count == 0 {
            return Some(empty_root());
        }
        // The range is the perfect aligned subtrees given by the set bits of `count`, largest
        // first; MTH nests them to the right.
        let mut parts = Vec::with_capacity(count.count_ones() as usize);
        let mut position = start;
        for level in (0..u64::BITS).rev() {
            if (count >> level) & 1 == 1 {
                let row = self.levels.get(level as usize)?;
                let index = usize::try_from(position >> level).ok()?;
                parts.push(*row.get(index)?);
                position += 1 << level;
            }
        }
        let mut parts = parts.into_iter().rev();
        let last = parts.next()?;
        Some(parts.fold(last, |acc, left| node_hash(&left, &acc)))
    }

    /// PATH(m, D[start:end]) of RFC 9162 §2.1.3.1, appended to `out`.
    fn path(&self, start: u64, end: u64, m: u64, out: &mut Vec<Hash>) -> Option<()> {
        let n = end.checked_sub(start)?;
        if n <= 1 {
            return Some(());
        }
        let k = split_point(n);
        if m < k {
            self.path(start, start + k, m, out)?;
            out.push(self.range_root(start + k, end)?);
        } else {
            self.path(start + k, end, m - k, out)?;
            out.push(self.range_root(start, start + k)?);
        }
        Some(())
    }

    /// SUBPROOF(m, D[start:end], whole) of RFC 9162 §2.1.4.1, appended to `out`; `1 <= m <= n`.
    fn subproof(
        &self,
        start: u64,
        end: u64,
        m: u64,
        whole: bool,
        out: &mut Vec<Hash>,
    ) -> Option<()> {
        let n = end.checked_sub(start)?;
        if m == n {
            if !whole {
                out.push(self.range_root(start, end)?);
            }
            return Some(());
        }
        if m == 0 || m > n {
            return None;
        }
        let k = split_point(n);
        if m <= k {
            self.subproof(start, start + k, m, whole, out)?;
            out.push(self.range_root(start + k, end)?);
        } else {
            self.subproof(start + k, end, m - k, false, out)?;
            out.push(self.range_root(start, start + k)?);
        }
        Some(())
    }
}

/// Returned when a subtree that the size checks promised is missing (a bug, never bad input).
const INTERNAL_RANGE: LedgerError = LedgerError::OutOfRange {
    reason: "a subtree is missing from the tree",
};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        // SHA-256("") = e3b0c442...b855
        assert_eq!(empty_root()[..4], [0xe3, 0xb0, 0xc4, 0x42]);
        assert_eq!(root(&[]), empty_root());
        assert_eq!(MerkleTree::new().root(), empty_root());
        assert_eq!(CompactTree::new().root(), empty_root());
    }

    #[test]
    fn three_leaf_root_by_hand() {
        let l = leaves(3);
        let expected = node_hash(&node_hash(&l[0], &l[1]), &l[2]);
        assert_eq!(root(&l), expected);
        assert_eq!(MerkleTree::from_leaves(l.clone()).root(), expected);
    }

    #[test]
    fn all_trees_agree_on_every_prefix() {
        let all = leaves(70);
        let tree = MerkleTree::from_leaves(all.clone());
        let mut compact = CompactTree::new();
        for n in 0..=70u64 {
            let expected = root(&all[..n as usize]);
            assert_eq!(tree.root_at(n).unwrap(), expected, "MerkleTree at {n}");
            assert_eq!(compact.root(), expected, "CompactTree at {n}");
            assert_eq!(compact.frontier().len() as u32, n.count_ones());
            let restored = CompactTree::from_frontier(n, compact.frontier().to_vec()).unwrap();
            assert_eq!(restored.root(), expected);
            if n < 70 {
                compact.push(all[n as usize]);
            }
        }
        assert!(tree.root_at(71).is_err());
        assert!(CompactTree::from_frontier(3, vec![[0; 32]]).is_err());
    }

    #[test]
    fn proofs_out_of_range_are_errors() {
        let l = leaves(5);
        assert!(inclusion_proof(&l, 5).is_err());
        assert!(inclusion_proof(&[], 0).is_err());
        assert!(consistency_proof(&l, 6).is_err());
        assert!(consistency_proof(&l, 0).is_err());
        assert_eq!(consistency_proof(&l, 5).unwrap(), Vec::<Hash>::new());
        assert_eq!(consistency_proof(&[], 0).unwrap(), Vec::<Hash>::new());
        let tree = MerkleTree::from_leaves(l);
        assert!(tree.inclusion_proof(0, 6).is_err());
        assert!(tree.consistency_proof(3, 2).is_err());
    }
}
