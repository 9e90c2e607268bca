//! Bearer secrets (operator tokens, invitation tokens): 256 random bits, shown once, stored only
//! as a SHA-256 hash. The hash of a 256-bit random value cannot be reversed or guessed, so a
//! stolen database gives no usable token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// A bearer secret in clear. `Debug` does not print it; it is zeroized on drop.
pub struct BearerToken(Zeroizing<String>);

impl BearerToken {
    /// A new random token with a readable prefix naming its kind (`lso` operator, `lsi` invitation).
    pub(crate) fn generate(prefix: &str, rng: &mut impl rand::CryptoRng) -> BearerToken {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        BearerToken(Zeroizing::new(format!(
            "{prefix}_{}",
            URL_SAFE_NO_PAD.encode(bytes.as_ref())
        )))
    }

    /// Wraps a token received from a client.
    pub fn from_text(text: &str) -> BearerToken {
        BearerToken(Zeroizing::new(text.to_owned()))
    }

    /// The token's text, to show it once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the store keeps.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let mut rng = rand::rng();
        let a = BearerToken::generate("lso", &mut rng);
        let b = BearerToken::generate("lso", &mut rng);
        assert!(a.expose().starts_with("lso_"));
        assert_eq!(a.expose().len(), 4 + 43);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.hash(), BearerToken::from_text(a.expose()).hash());
        assert_ne!(a.hash(), b.hash());
        assert!(!format!("{a:?}").contains(&a.expose()[4..]));
    }
}
