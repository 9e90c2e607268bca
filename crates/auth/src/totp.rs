//! Time-based one-time passwords (RFC 6238) for second-factor login: HMAC-SHA-1, 6 digits, 30-second
//! steps, one step of clock drift accepted each way, and replay refusal by time step.
//!
//! The caller stores the secret (encrypted, via the vault) and the last accepted time step per user;
//! [`TotpSecret::verify`] refuses any code whose step is not newer than that, so a code cannot be
//! used twice, nor an older code after a newer one.

use std::fmt;

use time::OffsetDateTime;
use totp_rs::{Algorithm, Builder, Secret, Totp};
use zeroize::Zeroizing;

use crate::AuthError;

/// Seconds per time step.
const STEP_SECONDS: u64 = 30;
/// Digits per code.
const DIGITS: usize = 6;
/// Length of a generated secret in bytes (160 bits, as RFC 4226 recommends).
const SECRET_LEN: usize = 20;
/// Issuer shown by authenticator apps.
const ISSUER: &str = "Lockstep";

/// A TOTP shared secret. `Debug` prints `TotpSecret(..)`; it is zeroized on drop.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl TotpSecret {
    /// A new random 160-bit secret, for enrolment.
    pub fn generate(rng: &mut impl rand::CryptoRng) -> TotpSecret {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_LEN]);
        rng.fill_bytes(&mut bytes);
        TotpSecret(bytes)
    }

    /// Wraps a secret loaded from the store. Secrets shorter than 16 bytes are refused when used.
    pub fn from_bytes(bytes: Vec<u8>) -> TotpSecret {
        TotpSecret(Zeroizing::new(bytes))
    }

    /// Reads the Base32 secret an authenticator shows (the `secret=` of an `otpauth://` URI).
    pub fn from_base32(text: &str) -> Result<TotpSecret, AuthError> {
        let secret = Secret::try_from_base32(text.trim()).map_err(|_| AuthError::Totp)?;
        Ok(TotpSecret(Zeroizing::new(secret.as_bytes().to_vec())))
    }

    /// The secret of an `otpauth://` URI, as an authenticator app reads it.
    pub fn from_otpauth_uri(uri: &str) -> Result<TotpSecret, AuthError> {
        let query = uri.split_once('?').map(|(_, q)| q).ok_or(AuthError::Totp)?;
        let secret = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("secret="))
            .ok_or(AuthError::Totp)?;
        TotpSecret::from_base32(secret)
    }

    /// The raw secret, to store it (encrypted).
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The `otpauth://` URI an authenticator app scans (as a QR code) at enrolment:
    /// `otpauth://totp/Lockstep:<account>?secret=<BASE32>&issuer=Lockstep&algorithm=SHA1&digits=6&period=30`.
    ///
    /// The account (usually the e-mail address) is percent-encoded. It must not be empty nor
    /// contain `:` (the label separator), else [`AuthError::Totp`]. The URI contains the secret:
    /// show it once (as a QR code) and never log it.
    pub fn otpauth_uri(&self, account: &str) -> Result<String, AuthError> {
        if account.is_empty() || account.contains(':') {
            return Err(AuthError::Totp);
        }
        let totp = self.totp()?;
        let secret = Zeroizing::new(totp.secret().to_base32());
        let mut uri = String::with_capacity(128 + account.len() * 3);
        uri.push_str("otpauth://totp/");
        uri.push_str(ISSUER);
        uri.push(':');
        percent_encode_into(account, &mut uri);
        uri.push_str("?secret=");
        uri.push_str(&secret);
        uri.push_str("&issuer=");
        uri.push_str(ISSUER);
        uri.push_str("&algorithm=SHA1&digits=6&period=30");
        Ok(uri)
    }

    /// Checks `code` at `now`, accepting the current step and one step either side.
    ///
    /// Returns the matched time step (unix time / 30), which the caller stores as the new
    /// `last_used_step`. Returns `Ok(None)` for a wrong code, for input that is not 6 digits (spaces
    /// are ignored, so "123 456" is read as "123456"), and for a code whose step is not after
    /// `last_used_step` (a replay, or an older code). Errors only when the secret is too short or
    /// `now` is before 1970.
    pub fn verify(
        &self,
        code: &str,
        now: OffsetDateTime,
        last_used_step: Option<u64>,
    ) -> Result<Option<u64>, AuthError> {
        let totp = self.totp()?;
        let unix = u64::try_from(now.unix_timestamp()).map_err(|_| AuthError::Totp)?;
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        let current = unix / STEP_SECONDS;
        let window = [
            current.checked_sub(1),
            Some(current),
            current.checked_add(1),
        ];
        for step in window.into_iter().flatten() {
            if last_used_step.is_some_and(|last| step <= last) {
                continue;
            }
            let Some(at) = step.checked_mul(STEP_SECONDS) else {
                continue;
            };
            // Skew is 0 on `totp`: `check` looks at exactly this step, comparing in constant time.
            if totp.check(&code, at).is_some() {
                return Ok(Some(step));
            }
        }
        Ok(None)
    }

    /// The code for `now`, for tests and for showing a confirmation during enrolment.
    pub fn code_at(&self, now: OffsetDateTime) -> Result<Zeroizing<String>, AuthError> {
        let unix = u64::try_from(now.unix_timestamp()).map_err(|_| AuthError::Totp)?;
        Ok(Zeroizing::new(self.totp()?.generate(unix).to_string()))
    }

    fn totp(&self) -> Result<Totp, AuthError> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(0)
            .with_step_duration(STEP_SECONDS)
            .with_secret(Secret::from(self.0.to_vec()))
            .build()
            .map_err(|_| AuthError::Totp)
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `@` (which authenticator apps
/// show as is in e-mail addresses).
fn percent_encode_into(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            for nibble in [byte >> 4, byte & 0x0f] {
                if let Some(&digit) = HEX.get(usize::from(nibble)) {
                    out.push(char::from(digit));
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use time::Duration;

    /// The secret of RFC 6238 Appendix B for SHA-1.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    /// RFC 6238 Appendix B, SHA-1 rows: time, and the last 6 digits of the 8-digit code.
    const RFC_VECTORS: [(i64, &str); 6] = [
        (59, "287082"),
        (1_111_111_109, "081804"),
        (1_111_111_111, "050471"),
        (1_234_567_890, "005924"),
        (2_000_000_000, "279037"),
        (20_000_000_000, "353130"),
    ];

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(RFC_SECRET.to_vec())
    }

    #[test]
    fn rfc6238_vectors_are_accepted_at_their_time() {
        let secret = rfc_secret();
        for (unix, code) in RFC_VECTORS {
            let step = u64::try_from(unix).unwrap() / 30;
            assert_eq!(secret.code_at(at(unix)).unwrap().as_str(), code);
            assert_eq!(
                secret.verify(code, at(unix), None),
                Ok(Some(step)),
                "{unix}"
            );
        }
    }

    #[test]
    fn one_step_of_drift_is_accepted_each_way_but_not_two() {
        let secret = rfc_secret();
        for (unix, code) in RFC_VECTORS {
            let step = u64::try_from(unix).unwrap() / 30;
            let now = at(unix);
            for drift in [30, -30] {
                let then = now + Duration::seconds(drift);
                assert_eq!(
                    secret.verify(code, then, None),
                    Ok(Some(step)),
                    "{unix} {drift:+}"
                );
            }
            for drift in [61, -61] {
                if unix + drift < 0 {
                    continue;
                }
                let then = now + Duration::seconds(drift);
                assert_eq!(
                    secret.verify(code, then, None),
                    Ok(None),
                    "{unix} {drift:+}"
                );
            }
        }
    }

    #[test]
    fn replays_and_older_codes_are_refused() {
        let secret = rfc_secret();
        let (unix, code) = (1_111_111_109, "081804");
        let step = u64::try_from(unix).unwrap() / 30;
        assert_eq!(secret.verify(code, at(unix), Some(step)), Ok(None));
        assert_eq!(secret.verify(code, at(unix), Some(step + 1)), Ok(None));
        assert_eq!(
            secret.verify(code, at(unix), Some(step - 1)),
            Ok(Some(step))
        );
        // The previous step's code, after the current one was used.
        let older = secret.code_at(at(unix - 30)).unwrap();
        assert_eq!(secret.verify(&older, at(unix), Some(step)), Ok(None));
        assert_eq!(secret.verify(&older, at(unix), None), Ok(Some(step - 1)));
    }

    #[test]
    fn wrong_and_malformed_codes_are_refused() {
        let secret = rfc_secret();
        let now = at(1_234_567_890);
        for code in [
            "005925",
            "",
            "00592",
            "0059244",
            "00592a",
            "+05924",
            "94287082",
            "٠٠٥٩٢٤",
        ] {
            assert_eq!(secret.verify(code, now, None), Ok(None), "{code:?}");
        }
        assert_eq!(
            secret.verify(" 005 924\n", now, None),
            Ok(Some(1_234_567_890 / 30))
        );
    }

    #[test]
    fn short_secrets_and_times_before_1970_are_errors() {
        let short = TotpSecret::from_bytes(vec![1; 15]);
        assert_eq!(short.verify("123456", at(59), None), Err(AuthError::Totp));
        assert_eq!(
            rfc_secret().verify("287082", at(-1), None),
            Err(AuthError::Totp)
        );
    }

    #[test]
    fn generated_secrets_are_20_random_bytes_and_verify() {
        let mut rng = rand::rng();
        let a = TotpSecret::generate(&mut rng);
        let b = TotpSecret::generate(&mut rng);
        assert_eq!(a.expose_bytes().len(), 20);
        assert_ne!(a.expose_bytes(), b.expose_bytes());
        let now = at(1_700_000_000);
        let code = a.code_at(now).unwrap();
        assert_eq!(a.verify(&code, now, None), Ok(Some(1_700_000_000 / 30)));
    }

    #[test]
    fn otpauth_uri_has_issuer_label_and_base32_secret() {
        let uri = rfc_secret().otpauth_uri("ada+ops@example.com").unwrap();
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/Lockstep:ada%2Bops@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Lockstep&algorithm=SHA1&digits=6&period=30"
        );
        let back = TotpSecret::from_otpauth_uri(&uri).unwrap();
        assert_eq!(back.expose_bytes(), rfc_secret().expose_bytes());
        let uri = rfc_secret().otpauth_uri("Zoë Ünal").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Lockstep:Zo%C3%AB%20%C3%9Cnal?"),
            "{uri}"
        );
        assert_eq!(rfc_secret().otpauth_uri(""), Err(AuthError::Totp));
        assert_eq!(rfc_secret().otpauth_uri("a:b"), Err(AuthError::Totp));
    }

    #[test]
    fn debug_hides_the_secret() {
        let secret = rfc_secret();
        let debug = format!("{secret:?}");
        assert_eq!(debug, "TotpSecret(..)");
        assert!(!debug.contains("1234567890"));
    }
}
