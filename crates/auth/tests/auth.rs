//! The auth crate through its public API: password policy and hashing, secrets' `Debug`, and a
//! login flow with lockout, TOTP and recovery codes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lockstep_auth::password::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, common_password_count};
use lockstep_auth::*;
use time::macros::datetime;

fn pw(text: &str) -> Password {
    Password::new(text.to_owned())
}

// ---- policy ---------------------------------------------------------------------------------

#[test]
fn length_limits_count_characters_not_bytes() {
    assert_eq!(MIN_PASSWORD_CHARS, 8);
    assert_eq!(MAX_PASSWORD_CHARS, 128);
    assert_eq!(
        check_password_policy(&pw("vKt3#qZ")),
        Err(PasswordRejected::TooShort { min: 8 })
    );
    assert_eq!(check_password_policy(&pw("vKt3#qZw")), Ok(()));
    let long: String = "vKt3#qZw".repeat(16);
    assert_eq!(long.chars().count(), 128);
    assert_eq!(check_password_policy(&pw(&long)), Ok(()));
    assert_eq!(
        check_password_policy(&pw(&format!("{long}x"))),
        Err(PasswordRejected::TooLong { max: 128 })
    );
    // Multi-byte characters: 7 of them (21 bytes) are too short, 8 are enough; 128 of them (512
    // bytes) are accepted, 129 are too long.
    assert_eq!(
        check_password_policy(&pw("日本語のパスワ")),
        Err(PasswordRejected::TooShort { min: 8 })
    );
    assert_eq!(check_password_policy(&pw("日本語のパスワー")), Ok(()));
    assert_eq!(check_password_policy(&pw(&"🔑".repeat(128))), Ok(()));
    assert_eq!(
        check_password_policy(&pw(&"🔑".repeat(129))),
        Err(PasswordRejected::TooLong { max: 128 })
    );
}

#[test]
fn common_passwords_are_rejected_case_insensitively() {
    assert!(
        common_password_count() >= 10_000,
        "{}",
        common_password_count()
    );
    for common in [
        "password123",
        "qwertyuiop",
        "Password123",
        "QWERTYUIOP",
        "iloveyou",
        "baseball",
        "1234567890",
        " password123 ",
    ] {
        assert_eq!(
            check_password_policy(&pw(common)),
            Err(PasswordRejected::Common),
            "{common:?}"
        );
    }
    for fine in [
        "correct horse battery staple",
        "tangerine-orbit-kettle-94",
        "Zp4!rT9qW2mK",
    ] {
        assert_eq!(check_password_policy(&pw(fine)), Ok(()), "{fine:?}");
    }
}

#[test]
fn rejection_messages_never_contain_the_password() {
    for (text, rejected) in [
        ("short1", PasswordRejected::TooShort { min: 8 }),
        ("password123", PasswordRejected::Common),
    ] {
        let err = check_password_policy(&pw(text)).unwrap_err();
        assert_eq!(err, rejected);
        assert!(!err.to_string().contains(text), "{err}");
    }
    let long = "x".repeat(129);
    let err = check_password_policy(&pw(&long)).unwrap_err();
    assert!(!err.to_string().contains("xxxxxxxx"), "{err}");
}

#[test]
fn strength_feedback_scores_and_suggests() {
    let weak = password_strength(&pw("password"), &[]);
    assert_eq!(weak.score, 0);
    assert!(weak.warning.is_some());
    assert!(!weak.suggestions.is_empty() && weak.suggestions.len() <= 3);

    let strong = password_strength(&pw("tangerine-orbit-kettle-94!Lq"), &[]);
    assert_eq!(strong.score, 4);

    // Built from the user's own name and e-mail: weaker than the same shape of random words.
    let personal = password_strength(
        &pw("adalovelace1815"),
        &["ada@example.com", "Ada", "Lovelace1815"],
    );
    let unrelated = password_strength(&pw("adalovelace1815"), &[]);
    assert!(
        personal.score < unrelated.score || personal.score <= 1,
        "{personal:?} {unrelated:?}"
    );

    let json = serde_json::to_value(&weak).unwrap();
    assert_eq!(json["score"], 0);
    assert!(json["suggestions"].is_array());
}

// ---- hashing --------------------------------------------------------------------------------

/// Parses `$argon2id$v=19$m=..,t=..,p=..$salt$hash` by hand, independently of the argon2 crate.
fn phc_fields(hash: &PasswordHash) -> (String, String, String, String, String) {
    let parts: Vec<&str> = hash.as_str().split('$').collect();
    assert_eq!(parts.len(), 6, "{}", hash.as_str());
    assert_eq!(parts[0], "");
    (
        parts[1].to_owned(),
        parts[2].to_owned(),
        parts[3].to_owned(),
        parts[4].to_owned(),
        parts[5].to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
    let hasher = PasswordHasher::new(2);
    let password = pw("tangerine-orbit-kettle-94");
    let (a, b) = tokio::join!(hasher.hash(&password), hasher.hash(&password));
    let (a, b) = (a.unwrap(), b.unwrap());

    let (alg, version, params, salt, output) = phc_fields(&a);
    assert_eq!(alg, "argon2id");
    assert_eq!(version, "v=19");
    assert_eq!(params, "m=19456,t=2,p=1");
    assert_eq!(salt.len(), 22, "16 bytes of salt in unpadded base64");
    assert_eq!(output.len(), 43, "32 bytes of output in unpadded base64");
    assert_ne!(a, b, "each hash has its own salt");
    assert_ne!(phc_fields(&b).3, salt);
    assert!(!a.needs_rehash());

    assert!(hasher.verify(&password, Some(&a)).await.unwrap());
    assert!(hasher.verify(&password, Some(&b)).await.unwrap());
    assert!(
        !hasher
            .verify(&pw("tangerine-orbit-kettle-95"), Some(&a))
            .await
            .unwrap()
    );
    assert!(
        !hasher
            .verify(&pw("Tangerine-orbit-kettle-94"), Some(&a))
            .await
            .unwrap()
    );

    // A hash survives the store.
    let stored = PasswordHash::from_stored(a.as_str().to_owned());
    assert!(hasher.verify(&password, Some(&stored)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_passwords_are_not_truncated() {
    let hasher = PasswordHasher::new(2);
    let base = "k".repeat(127);
    let one = pw(&format!("{base}1"));
    let two = pw(&format!("{base}2"));
    assert_eq!(one.expose().chars().count(), 128);
    let hash = hasher.hash(&one).await.unwrap();
    assert!(hasher.verify(&one, Some(&hash)).await.unwrap());
    assert!(!hasher.verify(&two, Some(&hash)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_stored_hashes_are_errors_not_wrong_passwords() {
    let hasher = PasswordHasher::new(1);
    for garbage in [
        "",
        "plaintext",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "$argon2id$v=19$m=19456,t=2,p=1$!!!$AAAA",
    ] {
        let stored = PasswordHash::from_stored(garbage.to_owned());
        let result = hasher.verify(&pw("whatever123"), Some(&stored)).await;
        assert_eq!(result, Err(AuthError::MalformedHash), "{garbage:?}");
        assert!(stored.needs_rehash());
    }
}

async fn timed(hasher: &PasswordHasher, p: &Password, hash: Option<&PasswordHash>) -> Duration {
    let start = Instant::now();
    assert!(!hasher.verify(p, hash).await.unwrap());
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_accounts_take_as_long_as_wrong_passwords() {
    let hasher = PasswordHasher::new(1);
    let hash = hasher.hash(&pw("tangerine-orbit-kettle-94")).await.unwrap();
    let wrong = pw("not-the-password");
    let mut real = Duration::ZERO;
    let mut dummy = Duration::ZERO;
    // Interleaved, so that a slow moment of the machine hits both.
    for _ in 0..3 {
        real += timed(&hasher, &wrong, Some(&hash)).await;
        dummy += timed(&hasher, &wrong, None).await;
    }
    let ratio = dummy.as_secs_f64() / real.as_secs_f64();
    assert!(
        (0.3..3.0).contains(&ratio),
        "dummy {dummy:?} vs real {real:?}"
    );
    // The right password for some account is still `false` for an unknown account.
    assert!(
        !hasher
            .verify(&pw("tangerine-orbit-kettle-94"), None)
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_permit_still_completes_concurrent_hashes() {
    let hasher = Arc::new(PasswordHasher::new(1));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let hasher = hasher.clone();
        tasks.push(tokio::spawn(async move {
            let password = pw(&format!("concurrent-password-{i}"));
            let hash = hasher.hash(&password).await.unwrap();
            (password, hash)
        }));
    }
    let mut hashes = Vec::new();
    for task in tasks {
        let (password, hash) = task.await.unwrap();
        assert!(hasher.verify(&password, Some(&hash)).await.unwrap());
        hashes.push(hash);
    }
    hashes.dedup();
    assert_eq!(hashes.len(), 4);
}

// ---- secrets never print --------------------------------------------------------------------

#[tokio::test]
async fn debug_never_prints_secrets() {
    let password = pw("tangerine-orbit-kettle-94");
    assert_eq!(format!("{password:?}"), "Password(..)");

    let hash = PasswordHash::from_stored(
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
            .to_owned(),
    );
    assert_eq!(format!("{hash:?}"), "PasswordHash(..)");

    let token = SecretToken::generate("lss", &mut rand::rng());
    assert!(!format!("{token:?}").contains(&token.expose()[4..]));

    let totp = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
    assert_eq!(format!("{totp:?}"), "TotpSecret(..)");

    let codes = generate_recovery_codes(&mut rand::rng());
    let debug = format!("{codes:?}");
    assert!(codes.codes.iter().all(|c| !debug.contains(c.as_str())));

    let hasher = PasswordHasher::new(1);
    let debug = format!("{hasher:?} {:?}", AuthError::Hashing);
    assert!(!debug.contains("tangerine"));
}

// ---- a login, end to end --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_lockout_totp_and_recovery_codes() {
    let hasher = PasswordHasher::new(1);
    let lockout = LockoutPolicy::default();
    let sessions = SessionPolicy::default();
    let mut rng = rand::rng();

    // Sign-up.
    let password = pw("tangerine-orbit-kettle-94");
    check_password_policy(&password).unwrap();
    let stored = hasher.hash(&password).await.unwrap();
    let totp = TotpSecret::generate(&mut rng);
    let uri = totp.otpauth_uri("ada@example.com").unwrap();
    assert!(uri.starts_with("otpauth://totp/Lockstep:ada@example.com?secret="));
    let recovery = generate_recovery_codes(&mut rng);

    // Five wrong passwords lock the account; the right one is then refused before hashing.
    let t0 = datetime!(2026-11-22 10:00 UTC);
    let mut failures = LoginFailures::default();
    for _ in 0..5 {
        assert!(!lockout.is_locked(&failures, t0));
        assert!(
            !hasher
                .verify(&pw("guess-guess-guess"), Some(&stored))
                .await
                .unwrap()
        );
        failures = lockout.after_failure(failures, t0);
    }
    assert!(lockout.is_locked(&failures, datetime!(2026-11-22 10:14 UTC)));

    // After the lock: password, then TOTP, then a session.
    let t1 = datetime!(2026-11-22 10:16 UTC);
    assert!(!lockout.is_locked(&failures, t1));
    assert!(hasher.verify(&password, Some(&stored)).await.unwrap());
    let code = totp.code_at(t1).unwrap();
    let step = totp.verify(&code, t1, None).unwrap().unwrap();
    assert_eq!(totp.verify(&code, t1, Some(step)).unwrap(), None, "replay");
    failures = lockout.after_success();
    assert_eq!(failures, LoginFailures::default());

    let session = SecretToken::generate("lss", &mut rng);
    let presented = SecretToken::from_text(session.expose());
    assert!(hashes_equal(&session.hash(), &presented.hash()));
    assert!(sessions.is_valid(t1, t1, datetime!(2026-11-22 10:45 UTC)));
    assert!(!sessions.is_valid(t1, t1, datetime!(2026-11-22 10:46 UTC)));

    // Lost phone: a recovery code works once (the caller deletes the matching hash).
    let typed = recovery.codes[3].to_uppercase().replace('-', " ");
    let mut remaining = recovery.hashes.clone();
    let typed_hash = hash_recovery_code(&typed);
    let position = remaining.iter().position(|h| hashes_equal(h, &typed_hash));
    assert_eq!(position, Some(3));
    remaining.remove(3);
    assert!(!remaining.iter().any(|h| hashes_equal(h, &typed_hash)));
}
