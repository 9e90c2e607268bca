//! Passwords: the [`Password`] secret, the length/common-list policy, strength feedback, and
//! Argon2id hashing bounded by a semaphore ([`PasswordHasher`]).
//!
//! # Policy
//!
//! Following NIST SP 800-63B: 8 to 128 characters (Unicode scalar values, not bytes), no
//! composition rules, and no password found in a list of common and breached passwords. The list is
//! Django's `common-passwords.txt` (19,640 entries, BSD-3-Clause, see `data/LICENSE-common-passwords`),
//! compiled into the binary. zxcvbn keeps its own dictionaries private, so they cannot be reused.
//!
//! # Hashing
//!
//! Argon2id, version 19, m = 19456 KiB, t = 2, p = 1, 16-byte random salt, 32-byte output, stored as a
//! PHC string. The whole password is hashed (no truncation, unlike bcrypt). Argon2 is CPU- and
//! memory-heavy, so every hash and verification runs on tokio's blocking pool and at most
//! `permits` of them run at once; the rest wait their turn.
//!
//! The salt is drawn from [`rand::rng()`] inside [`PasswordHasher::hash`]: this is the one place in
//! the crate that does not take its randomness as a parameter, because the hash runs on another
//! thread and a salt needs no reproducibility in tests.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, LazyLock};

use argon2::password_hash::Error as PhcError;
use argon2::password_hash::phc::PasswordHash as PhcString;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand::Rng as _;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::AuthError;

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password accepted, in characters (a bound on the work a login request can cause).
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Argon2 memory cost in KiB (19 MiB, the OWASP minimum for Argon2id with t = 2).
const M_COST: u32 = 19_456;
/// Argon2 iterations.
const T_COST: u32 = 2;
/// Argon2 lanes.
const P_COST: u32 = 1;
/// Length of the hash output in bytes.
const OUTPUT_LEN: usize = 32;
/// Length of the random salt in bytes.
const SALT_LEN: usize = 16;

/// The compiled-in list of common and breached passwords, lowercased, one per line.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
});

/// How many entries the compiled-in common-password list holds.
pub fn common_password_count() -> usize {
    COMMON_PASSWORDS.len()
}

/// A password in clear, as typed by a user. Its `Debug` prints `Password(..)`; it is zeroized on drop.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps the text a user typed. Nothing is checked here: see [`check_password_policy`].
    pub fn new(text: String) -> Password {
        Password(Zeroizing::new(text))
    }

    /// The password's text, for hashing or strength estimation.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Why a new password was refused. The messages are meant for the user and never contain the password.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PasswordRejected {
    /// Fewer than `min` characters.
    #[error("the password must be at least {min} characters long")]
    TooShort {
        /// The minimum number of characters.
        min: usize,
    },
    /// More than `max` characters.
    #[error("the password must be at most {max} characters long")]
    TooLong {
        /// The maximum number of characters.
        max: usize,
    },
    /// Found in the list of common or breached passwords.
    #[error("this password is too common and easy to guess; choose another one")]
    Common,
}

/// Checks a new password: 8..=128 characters (chars, not bytes), no composition rules, and not in
/// the compiled-in common/breached list (compared case-insensitively, ignoring surrounding spaces).
pub fn check_password_policy(p: &Password) -> Result<(), PasswordRejected> {
    let chars = p.expose().chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordRejected::TooShort {
            min: MIN_PASSWORD_CHARS,
        });
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordRejected::TooLong {
            max: MAX_PASSWORD_CHARS,
        });
    }
    let folded = Zeroizing::new(p.expose().trim().to_lowercase());
    if COMMON_PASSWORDS.contains(folded.as_str()) {
        return Err(PasswordRejected::Common);
    }
    Ok(())
}

/// Strength feedback for a password form: advisory only, the policy is [`check_password_policy`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PasswordStrength {
    /// 0 (guessable in under 10^3 tries) to 4 (needs more than 10^10 tries), from zxcvbn.
    pub score: u8,
    /// What is wrong, when zxcvbn has something to say (for example "This is a very common password.").
    pub warning: Option<String>,
    /// Up to three short suggestions to make the password stronger.
    pub suggestions: Vec<String>,
}

/// Estimates a password's strength with zxcvbn. `user_inputs` are words the password should not be
/// built from: the user's e-mail address, name, the organization's name.
pub fn password_strength(p: &Password, user_inputs: &[&str]) -> PasswordStrength {
    let entropy = zxcvbn::zxcvbn(p.expose(), user_inputs);
    let feedback = entropy.feedback();
    PasswordStrength {
        score: u8::from(entropy.score()),
        warning: feedback.and_then(|f| f.warning()).map(|w| w.to_string()),
        suggestions: feedback
            .map(|f| {
                f.suggestions()
                    .iter()
                    .take(3)
                    .map(ToString::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// A password hash as stored: a PHC string such as `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`.
///
/// Not secret in the way a password is, but still worth keeping out of logs: `Debug` prints
/// `PasswordHash(..)`.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// The PHC string, to store.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a PHC string loaded from the store. It is parsed when it is verified against.
    pub fn from_stored(s: String) -> PasswordHash {
        PasswordHash(s)
    }

    /// True when this hash was not made with the current algorithm and parameters (or cannot be
    /// parsed), so the caller should re-hash the password after the next successful login.
    pub fn needs_rehash(&self) -> bool {
        let Ok(parsed) = PhcString::new(&self.0) else {
            return true;
        };
        let current = parsed.algorithm.as_str() == "argon2id"
            && parsed.version == Some(19)
            && parsed.params.get_decimal("m") == Some(M_COST)
            && parsed.params.get_decimal("t") == Some(T_COST)
            && parsed.params.get_decimal("p") == Some(P_COST)
            && parsed.hash.as_ref().map(|h| h.len()) == Some(OUTPUT_LEN);
        !current
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// Hashes and verifies passwords with Argon2id, at most `permits` at a time, each on tokio's blocking
/// thread pool. Cheap to share: wrap it in an `Arc` or keep it in the app state.
#[derive(Debug)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Verified against when the account is unknown, so that "no such user" costs the same time as
    /// "wrong password". Same algorithm and parameters as real hashes; no password matches it.
    dummy: PasswordHash,
}

impl PasswordHasher {
    /// A hasher that runs at most `permits` Argon2 computations at once (at least one; each takes
    /// 19 MiB of memory and one CPU core for tens of milliseconds).
    pub fn new(permits: usize) -> PasswordHasher {
        PasswordHasher {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            dummy: dummy_hash(),
        }
    }

    /// Hashes a password with a fresh random salt.
    pub async fn hash(&self, p: &Password) -> Result<PasswordHash, AuthError> {
        let secret = Zeroizing::new(p.expose().to_owned());
        let mut salt = [0u8; SALT_LEN];
        rand::rng().fill_bytes(&mut salt);
        self.run_bounded(move || argon2_hash(&secret, &salt))
            .await?
    }

    /// Verifies a password against a stored hash. When `hash` is `None` (unknown account) it
    /// verifies against a dummy hash with the same parameters, so the answer takes the same time,
    /// and returns `false`.
    ///
    /// A stored hash that cannot be parsed is [`AuthError::MalformedHash`], never `false`: damaged
    /// data is not a wrong password.
    pub async fn verify(
        &self,
        p: &Password,
        hash: Option<&PasswordHash>,
    ) -> Result<bool, AuthError> {
        let secret = Zeroizing::new(p.expose().to_owned());
        let (stored, known) = match hash {
            Some(stored) => (stored.clone(), true),
            None => (self.dummy.clone(), false),
        };
        let matched = self
            .run_bounded(move || argon2_verify(&secret, &stored))
            .await??;
        Ok(matched && known)
    }

    /// Runs `work` on the blocking pool once a permit is free. The permit moves into the blocking
    /// task, so it stays taken until the work ends even if the caller's future is dropped.
    async fn run_bounded<T, F>(&self, work: F) -> Result<T, AuthError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| AuthError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .map_err(|_| AuthError::Hashing)
    }
}

fn argon2() -> Result<Argon2<'static>, AuthError> {
    let params =
        Params::new(M_COST, T_COST, P_COST, Some(OUTPUT_LEN)).map_err(|_| AuthError::Hashing)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn argon2_hash(password: &str, salt: &[u8]) -> Result<PasswordHash, AuthError> {
    let phc = argon2()?
        .hash_password_with_salt(password.as_bytes(), salt)
        .map_err(|_| AuthError::Hashing)?;
    Ok(PasswordHash(phc.to_string()))
}

fn argon2_verify(password: &str, stored: &PasswordHash) -> Result<bool, AuthError> {
    let parsed = PhcString::new(stored.as_str()).map_err(|_| AuthError::MalformedHash)?;
    // The parameters come from the stored hash, not from `argon2()`.
    match argon2()?.verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(PhcError::PasswordInvalid) => Ok(false),
        Err(
            PhcError::Algorithm
            | PhcError::EncodingInvalid
            | PhcError::OutputSize
            | PhcError::ParamInvalid { .. }
            | PhcError::ParamsInvalid
            | PhcError::SaltInvalid
            | PhcError::Version,
        ) => Err(AuthError::MalformedHash),
        Err(_) => Err(AuthError::Hashing),
    }
}

/// The PHC string of the dummy hash: current parameters, a fixed salt, and an all-zero output that
/// no password produces in practice (and a match would still answer `false`).
fn dummy_hash() -> PasswordHash {
    const SALT: &[u8; SALT_LEN] = b"lockstep-dummy!!";
    PasswordHash(format!(
        "$argon2id$v=19$m={M_COST},t={T_COST},p={P_COST}${}${}",
        STANDARD_NO_PAD.encode(SALT),
        STANDARD_NO_PAD.encode([0u8; OUTPUT_LEN]),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn dummy_hash_has_the_current_parameters() {
        let dummy = dummy_hash();
        assert!(!dummy.needs_rehash(), "{}", dummy.as_str());
        let parsed = PhcString::new(dummy.as_str()).unwrap();
        assert_eq!(parsed.salt.unwrap().len(), SALT_LEN);
    }

    #[test]
    fn needs_rehash_spots_old_parameters_and_garbage() {
        let old = PasswordHash::from_stored(format!(
            "$argon2id$v=19$m=4096,t=3,p=1${}${}",
            STANDARD_NO_PAD.encode([1u8; 16]),
            STANDARD_NO_PAD.encode([2u8; 32]),
        ));
        assert!(old.needs_rehash());
        assert!(PasswordHash::from_stored("not a hash".to_owned()).needs_rehash());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_permits_tasks_run_at_once() {
        for permits in [1usize, 2] {
            let hasher = Arc::new(PasswordHasher::new(permits));
            let running = Arc::new(AtomicUsize::new(0));
            let most = Arc::new(AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for _ in 0..6 {
                let (hasher, running, most) = (hasher.clone(), running.clone(), most.clone());
                tasks.push(tokio::spawn(async move {
                    hasher
                        .run_bounded(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(30));
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                }));
            }
            for task in tasks {
                task.await.unwrap().unwrap();
            }
            assert_eq!(most.load(Ordering::SeqCst), permits);
        }
    }

    #[tokio::test]
    async fn closed_semaphore_is_busy() {
        let hasher = PasswordHasher::new(1);
        hasher.permits.close();
        let result = hasher.hash(&Password::new("long enough".to_owned())).await;
        assert_eq!(result, Err(AuthError::Busy));
    }

    #[test]
    fn zero_permits_still_allows_one() {
        assert_eq!(PasswordHasher::new(0).permits.available_permits(), 1);
    }
}
