//! One-time recovery codes for when the second factor is lost: ten codes like `abcd-efgh-jk2m`, shown
//! once, stored as SHA-256 hashes of their normalized form.
//!
//! Each code is 12 characters from a 31-symbol alphabet (lowercase letters and digits without the
//! look-alikes `i l o 0 1`), about 59 bits. The codes are a second factor (the password is still
//! needed) and each works once, so an unsalted fast hash is enough.

use std::collections::HashSet;
use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// How many codes a user gets.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// The symbols codes are made of: no `i`, `l`, `o`, `0` or `1`.
const ALPHABET: &[u8; 31] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Groups per code and characters per group: `xxxx-xxxx-xxxx`.
const GROUPS: usize = 3;
const GROUP_LEN: usize = 4;

/// Freshly generated recovery codes: the texts to show once, and the hashes to store (same order).
///
/// `Debug` shows only how many codes there are.
pub struct RecoveryCodes {
    /// The codes' texts, `xxxx-xxxx-xxxx`, zeroized on drop.
    pub codes: Vec<Zeroizing<String>>,
    /// [`hash_recovery_code`] of each code.
    pub hashes: Vec<[u8; 32]>,
}

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryCodes")
            .field("count", &self.codes.len())
            .finish_non_exhaustive()
    }
}

/// Generates [`RECOVERY_CODE_COUNT`] distinct codes and their hashes.
pub fn generate_recovery_codes(rng: &mut impl rand::CryptoRng) -> RecoveryCodes {
    let mut seen = HashSet::with_capacity(RECOVERY_CODE_COUNT);
    let mut codes = Vec::with_capacity(RECOVERY_CODE_COUNT);
    let mut hashes = Vec::with_capacity(RECOVERY_CODE_COUNT);
    while codes.len() < RECOVERY_CODE_COUNT {
        let code = generate_code(rng);
        let hash = hash_recovery_code(&code);
        if seen.insert(hash) {
            codes.push(code);
            hashes.push(hash);
        }
    }
    RecoveryCodes { codes, hashes }
}

/// Normalizes what the user typed (surrounding whitespace trimmed, lowercased, dashes and spaces
/// removed) and hashes it, to compare with the stored hashes.
pub fn hash_recovery_code(input: &str) -> [u8; 32] {
    let normalized: Zeroizing<String> = Zeroizing::new(
        input
            .trim()
            .chars()
            .filter(|c| *c != '-' && !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect(),
    );
    Sha256::digest(normalized.as_bytes()).into()
}

fn generate_code(rng: &mut impl rand::CryptoRng) -> Zeroizing<String> {
    let mut code = Zeroizing::new(String::with_capacity(GROUPS * (GROUP_LEN + 1)));
    for group in 0..GROUPS {
        if group > 0 {
            code.push('-');
        }
        for _ in 0..GROUP_LEN {
            code.push(random_symbol(rng));
        }
    }
    code
}

/// One symbol of [`ALPHABET`], uniformly: bytes 248..=255 are rejected (248 = 8 × 31).
fn random_symbol(rng: &mut impl rand::CryptoRng) -> char {
    loop {
        let mut byte = [0u8; 1];
        rng.fill_bytes(&mut byte);
        let [value] = byte;
        if usize::from(value) < ALPHABET.len() * 8
            && let Some(&symbol) = ALPHABET.get(usize::from(value) % ALPHABET.len())
        {
            return char::from(symbol);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn ten_distinct_well_formed_codes_with_matching_hashes() {
        let codes = generate_recovery_codes(&mut rand::rng());
        assert_eq!(codes.codes.len(), 10);
        assert_eq!(codes.hashes.len(), 10);
        let distinct: HashSet<&str> = codes.codes.iter().map(|c| c.as_str()).collect();
        assert_eq!(distinct.len(), 10);
        for (code, hash) in codes.codes.iter().zip(&codes.hashes) {
            let groups: Vec<&str> = code.split('-').collect();
            assert_eq!(groups.len(), 3, "{}", code.as_str());
            for group in groups {
                assert_eq!(group.len(), 4);
                assert!(group.bytes().all(|b| ALPHABET.contains(&b)), "{group}");
            }
            assert_eq!(hash_recovery_code(code), *hash);
        }
    }

    #[test]
    fn every_symbol_can_appear() {
        let mut seen = HashSet::new();
        let mut rng = rand::rng();
        for _ in 0..2000 {
            seen.insert(random_symbol(&mut rng));
        }
        assert_eq!(seen.len(), ALPHABET.len());
        for ambiguous in ['i', 'l', 'o', '0', '1'] {
            assert!(!seen.contains(&ambiguous));
        }
    }

    #[test]
    fn typing_variants_hash_alike() {
        let stored = hash_recovery_code("abcd-efgh-jkmn");
        for typed in [
            "ABCD-EFGH-JKMN",
            "abcdefghjkmn",
            " abcd efgh jkmn ",
            "abcd-efgh-jkmn\n",
        ] {
            assert_eq!(hash_recovery_code(typed), stored, "{typed:?}");
        }
        for other in [
            "abcd-efgh-jkmp",
            "abcd-efgh-jkm",
            "abcd-efgh-jkmnn",
            "",
            "bcda-efgh-jkmn",
        ] {
            assert_ne!(hash_recovery_code(other), stored, "{other:?}");
        }
    }

    #[test]
    fn debug_hides_the_codes() {
        let codes = generate_recovery_codes(&mut rand::rng());
        let debug = format!("{codes:?}");
        for code in &codes.codes {
            assert!(!debug.contains(code.as_str()));
            assert!(!debug.contains(&code[..4]));
        }
        assert!(debug.contains("10"));
    }
}
