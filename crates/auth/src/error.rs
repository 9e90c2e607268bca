//! The auth crate's error type: few, stable variants whose messages never carry a password, token or key.

/// Everything that can go wrong while authenticating, apart from "wrong password" or "wrong code"
/// (those are ordinary answers: `Ok(false)` / `Ok(None)`).
///
/// The messages are safe to log and to map to a generic 500: they never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Argon2 failed to hash or verify (bad parameters, out of memory, or the worker thread died).
    #[error("password hashing failed")]
    Hashing,
    /// The password hasher has been shut down and accepts no more work.
    #[error("the password hasher is not accepting work")]
    Busy,
    /// A stored password hash is not a PHC string we can verify against (damaged or foreign data).
    #[error("the stored password hash is malformed")]
    MalformedHash,
    /// A TOTP secret or request is unusable (secret too short, time before 1970, account name
    /// empty or containing `:`).
    #[error("the TOTP secret or request is invalid")]
    Totp,
}
