//! Opaque bearer secrets (session, CSRF, API and password-reset tokens): 256 random bits, shown or
//! sent once, stored only as a SHA-256 hash, compared in constant time.
//!
//! The hash of a 256-bit random value cannot be reversed or guessed, so a stolen database yields no
//! usable token, and no salt or slow hash is needed (unlike passwords).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// Prefix of session tokens (the session cookie).
pub const SESSION_PREFIX: &str = "lss";
/// Prefix of CSRF tokens.
pub const CSRF_PREFIX: &str = "lsc";
/// Prefix of API tokens.
pub const API_TOKEN_PREFIX: &str = "lst";
/// Prefix of password-reset tokens.
pub const PASSWORD_RESET_PREFIX: &str = "lsr";

/// A bearer secret in clear, `"<prefix>_<43 characters of base64url>"`. `Debug` prints
/// `SecretToken(..)`; it is zeroized on drop.
pub struct SecretToken(Zeroizing<String>);

impl SecretToken {
    /// A new token of 256 random bits with a readable prefix naming its kind (`lss` session, `lsc`
    /// CSRF, `lst` API token, `lsr` password reset).
    pub fn generate(prefix: &str, rng: &mut impl rand::CryptoRng) -> SecretToken {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        let mut text = Zeroizing::new(String::with_capacity(prefix.len() + 1 + 43));
        text.push_str(prefix);
        text.push('_');
        URL_SAFE_NO_PAD.encode_string(bytes.as_ref(), &mut text);
        SecretToken(text)
    }

    /// Wraps a token received from a client. Nothing is checked: an unknown token simply has a hash
    /// that matches nothing in the store.
    pub fn from_text(text: &str) -> SecretToken {
        SecretToken(Zeroizing::new(text.to_owned()))
    }

    /// The token's text, to send it to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the token's text: what the store keeps and looks tokens up by.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(..)")
    }
}

/// Compares two 32-byte hashes in constant time (for example a CSRF token's hash with the one kept
/// in the session).
pub fn hashes_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rand::SeedableRng as _;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let mut rng = rand::rng();
        for prefix in [
            SESSION_PREFIX,
            CSRF_PREFIX,
            API_TOKEN_PREFIX,
            PASSWORD_RESET_PREFIX,
        ] {
            let a = SecretToken::generate(prefix, &mut rng);
            let b = SecretToken::generate(prefix, &mut rng);
            assert!(a.expose().starts_with(&format!("{prefix}_")));
            assert_eq!(a.expose().len(), 4 + 43);
            let body = URL_SAFE_NO_PAD.decode(&a.expose()[4..]).unwrap();
            assert_eq!(body.len(), 32);
            assert_ne!(a.expose(), b.expose());
            assert_eq!(a.hash(), SecretToken::from_text(a.expose()).hash());
            assert_ne!(a.hash(), b.hash());
        }
    }

    #[test]
    fn generation_uses_the_given_rng() {
        let a = SecretToken::generate("lss", &mut rand::rngs::StdRng::seed_from_u64(7));
        let b = SecretToken::generate("lss", &mut rand::rngs::StdRng::seed_from_u64(7));
        assert_eq!(a.expose(), b.expose());
    }

    #[test]
    fn hash_is_sha256_of_the_text() {
        // SHA-256("abc"), FIPS 180-2 example.
        let expected = [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
            0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
            0xf2, 0x00, 0x15, 0xad,
        ];
        assert_eq!(SecretToken::from_text("abc").hash(), expected);
    }

    #[test]
    fn hashes_equal_compares_every_byte() {
        let a = [7u8; 32];
        assert!(hashes_equal(&a, &a.clone()));
        for i in 0..32 {
            let mut b = a;
            b[i] ^= 1;
            assert!(!hashes_equal(&a, &b), "byte {i}");
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let token = SecretToken::generate("lst", &mut rand::rng());
        let debug = format!("{token:?}");
        assert_eq!(debug, "SecretToken(..)");
        assert!(!debug.contains(&token.expose()[4..]));
    }
}
