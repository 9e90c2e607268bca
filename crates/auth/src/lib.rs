//! Lockstep's authentication: "who is this", never "may they".
//!
//! - [`password`]: the [`Password`] secret, the new-password policy ([`check_password_policy`]),
//!   strength feedback ([`password_strength`]) and Argon2id hashing bounded by a semaphore
//!   ([`PasswordHasher`]), including a dummy verification for unknown accounts.
//! - [`tokens`]: opaque bearer secrets ([`SecretToken`]) for sessions, CSRF, API tokens and password
//!   resets, stored as SHA-256 and compared in constant time ([`hashes_equal`]).
//! - [`totp`]: RFC 6238 codes with replay refusal by time step ([`TotpSecret`]).
//! - [`recovery`]: one-time recovery codes ([`generate_recovery_codes`], [`hash_recovery_code`]).
//! - [`lockout`] and [`session`]: pure policies over state the caller stores.
//!
//! # What this crate does not do
//!
//! No SQL, no HTTP, no authorization decisions, and no clock: every function that needs the time
//! takes `now: time::OffsetDateTime`. Randomness comes in as `rng: &mut impl rand::CryptoRng`
//! (production passes `&mut rand::rng()`), except the Argon2 salt, drawn from `rand::rng()` inside
//! [`PasswordHasher::hash`].
//!
//! # Secrets
//!
//! Passwords, tokens, TOTP secrets and recovery codes live in [`zeroize::Zeroizing`] buffers, wiped
//! on drop. Their `Debug` never prints them, and no error message carries one.

mod error;
pub mod lockout;
pub mod password;
pub mod recovery;
pub mod session;
pub mod tokens;
pub mod totp;

pub use error::AuthError;
pub use lockout::{LockoutPolicy, LoginFailures};
pub use password::{
    MAX_PASSWORD_CHARS, Password, PasswordHash, PasswordHasher, PasswordRejected, PasswordStrength,
    check_password_policy, password_strength,
};
pub use recovery::{RecoveryCodes, generate_recovery_codes, hash_recovery_code};
pub use session::SessionPolicy;
pub use tokens::{SecretToken, hashes_equal};
pub use totp::TotpSecret;
pub use zeroize::Zeroizing;
