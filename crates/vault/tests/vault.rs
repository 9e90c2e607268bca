//! Behaviour of the vault as the app crate uses it: initialize, seal, unseal with shares, encrypt fields.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::cell::Cell;
use std::sync::Arc;

use lockstep_domain::OrganizationId;
use lockstep_vault::{
    Aad, Initialized, OrgKeys, SealStatus, UnsealKey, Vault, VaultError, WrappedOrgKey, initialize,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use uuid::Uuid;

fn org(n: u128) -> OrganizationId {
    OrganizationId::from_uuid(Uuid::from_u128(n))
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

const FIELD: Aad<'static> = Aad {
    object_kind: "connection",
    object_id: "0190-conn-1",
    field: "password",
};

/// All subsets of `0..n` with `size` elements, as index lists.
fn subsets(n: u8, size: u8) -> Vec<Vec<usize>> {
    (0u32..(1 << n))
        .filter(|mask| mask.count_ones() == u32::from(size))
        .map(|mask| {
            (0..usize::from(n))
                .filter(|i| mask & (1 << i) != 0)
                .collect()
        })
        .collect()
}

/// Share settings `initialize` accepts: 1 <= k <= n, k >= 2 unless n == 1.
fn share_settings() -> impl Strategy<Value = (u8, u8)> {
    (1u8..=8).prop_flat_map(|n| (Just(n), if n == 1 { 1u8..=1 } else { 2u8..=n }))
}

/// An initialized, unsealed vault holding one org key (version 1) and one ciphertext made before sealing.
struct Fixture {
    init_config: lockstep_vault::SealConfig,
    unseal_keys: Vec<UnsealKey>,
    wrapped: Vec<WrappedOrgKey>,
    ciphertext: Vec<u8>,
}

fn fixture(n: u8, k: u8, seed: u64) -> Fixture {
    let mut rng = rng(seed);
    let Initialized {
        config,
        unseal_keys,
        root,
        keyring,
    } = initialize(n, k, &mut rng).unwrap();
    let vault = Vault::unsealed(config.clone(), root, keyring);
    let wrapped = vec![
        vault
            .with_keyring(|kr| kr.new_org_key(org(1), 1, &mut rng))
            .unwrap()
            .unwrap(),
    ];
    let keys = vault.org_keys(org(1), || Ok(wrapped.clone())).unwrap();
    let ciphertext = keys.encrypt(&FIELD, b"hunter2", &mut rng).unwrap();
    vault.seal();
    Fixture {
        init_config: config,
        unseal_keys,
        wrapped,
        ciphertext,
    }
}

fn submit_all(vault: &Vault, keys: &[UnsealKey], indices: &[usize]) -> SealStatus {
    let mut status = vault.status();
    for (entered, &i) in indices.iter().enumerate() {
        status = vault.submit_share(&keys[i]).unwrap();
        if status.sealed {
            assert_eq!(usize::from(status.progress), entered + 1);
        }
    }
    status
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_threshold_subset_unseals_and_every_smaller_one_does_not(
        (n, k) in share_settings(),
        seed in any::<u64>(),
    ) {
        let f = fixture(n, k, seed);
        for subset in subsets(n, k) {
            let vault = Vault::sealed(f.init_config.clone());
            let status = submit_all(&vault, &f.unseal_keys, &subset);
            prop_assert!(!status.sealed, "subset {:?} did not unseal", subset);
            prop_assert!(!vault.is_sealed());
            let keys = vault.org_keys(org(1), || Ok(f.wrapped.clone())).unwrap();
            let plaintext = keys.decrypt(&FIELD, &f.ciphertext).unwrap();
            prop_assert_eq!(plaintext.as_slice(), b"hunter2");
        }
        for subset in subsets(n, k - 1) {
            let vault = Vault::sealed(f.init_config.clone());
            let status = submit_all(&vault, &f.unseal_keys, &subset);
            prop_assert!(status.sealed);
            prop_assert_eq!(usize::from(status.progress), subset.len());
            prop_assert_eq!(vault.with_keyring(|_| ()), Err(VaultError::Sealed));
        }
    }

    #[test]
    fn a_share_with_one_changed_character_or_byte_is_refused_and_not_counted(
        (n, k) in share_settings(),
        seed in any::<u64>(),
        target in any::<prop::sample::Index>(),
        position in any::<prop::sample::Index>(),
        replacement in prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= .!".chars().collect::<Vec<_>>()
        ),
        byte in 0usize..54,
        bit in 0u8..8,
    ) {
        let f = fixture(n, k, seed);
        let target = target.index(usize::from(n));
        let genuine = f.unseal_keys[target].expose().to_owned();
        let others: Vec<usize> = (0..usize::from(n)).filter(|&i| i != target).take(usize::from(k) - 1).collect();

        // One character changed anywhere in the text (prefix included).
        let position = position.index(genuine.len());
        let mut changed_char = genuine.clone();
        let original = changed_char.as_bytes()[position] as char;
        let replacement = if replacement == original { '*' } else { replacement };
        changed_char.replace_range(position..=position, &replacement.to_string());

        // One bit flipped in the decoded payload, re-encoded as valid base64: once as is (the checksum
        // catches it) and once with the checksum recomputed (then the vault's own checks must catch it).
        use base64::Engine as _;
        use sha2::Digest as _;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut payload = engine.decode(&genuine[5..]).unwrap();
        payload[byte] ^= 1 << bit;
        let changed_byte = format!("lks1-{}", engine.encode(&payload));
        // Start again from the genuine payload and flip a bit of the body only (bytes 0..50), since a
        // flipped checksum byte would simply be recomputed back.
        let mut payload = engine.decode(&genuine[5..]).unwrap();
        let body_byte = byte % 50;
        payload[body_byte] ^= 1 << bit;
        let checksum = sha2::Sha256::digest(&payload[..50]);
        payload[50..].copy_from_slice(&checksum[..4]);
        let changed_byte_good_checksum = format!("lks1-{}", engine.encode(&payload));
        // Bytes 1..17 are the vault id: a changed vault id is reported as another vault's share.
        let in_vault_id = (1..17).contains(&body_byte);

        for altered in [changed_char, changed_byte, changed_byte_good_checksum] {
            let vault = Vault::sealed(f.init_config.clone());
            let before = submit_all(&vault, &f.unseal_keys, &others);
            prop_assert!(before.sealed);
            let result = vault.submit_share(&UnsealKey::from_text(&altered));
            prop_assert!(
                matches!(result, Err(VaultError::MalformedShare | VaultError::UnknownShare))
                    || (in_vault_id && result == Err(VaultError::ForeignShare)),
                "altered share gave {:?}", result
            );
            prop_assert_eq!(vault.status(), before);
            // The genuine share still completes the unseal: the refusal neither counted nor disturbed progress.
            let after = vault.submit_share(&f.unseal_keys[target]).unwrap();
            prop_assert!(!after.sealed);
        }
    }
}

#[test]
fn foreign_and_duplicate_shares_are_refused_and_reset_discards_progress() {
    let mut rng = rng(1);
    let a = initialize(5, 3, &mut rng).unwrap();
    let b = initialize(5, 3, &mut rng).unwrap();
    let vault = Vault::sealed(a.config.clone());

    assert_eq!(
        vault.submit_share(&b.unseal_keys[0]),
        Err(VaultError::ForeignShare)
    );
    assert_eq!(vault.status().progress, 0);

    assert_eq!(vault.submit_share(&a.unseal_keys[0]).unwrap().progress, 1);
    assert_eq!(
        vault.submit_share(&a.unseal_keys[0]),
        Err(VaultError::DuplicateShare)
    );
    // Same share with surrounding whitespace is the same share.
    let padded = UnsealKey::from_text(&format!(" {}\n", a.unseal_keys[0].expose()));
    assert_eq!(vault.submit_share(&padded), Err(VaultError::DuplicateShare));
    assert_eq!(vault.status().progress, 1);
    assert_eq!(vault.submit_share(&a.unseal_keys[1]).unwrap().progress, 2);

    let status = vault.reset_progress();
    assert_eq!(
        status,
        SealStatus {
            sealed: true,
            progress: 0,
            threshold: 3,
            shares: 5
        }
    );
    // After the reset, two more shares are not enough: the discarded ones really are gone.
    assert_eq!(vault.submit_share(&a.unseal_keys[2]).unwrap().progress, 1);
    assert_eq!(vault.submit_share(&a.unseal_keys[3]).unwrap().progress, 2);
    assert!(vault.is_sealed());
    assert!(!vault.submit_share(&a.unseal_keys[0]).unwrap().sealed);

    assert_eq!(
        vault
            .submit_share(&UnsealKey::from_text("not a share"))
            .map(|s| s.sealed),
        Ok(false)
    );
    let sealed = Vault::sealed(a.config);
    assert_eq!(
        sealed.submit_share(&UnsealKey::from_text("not a share")),
        Err(VaultError::MalformedShare)
    );
    assert_eq!(
        sealed.submit_share(&UnsealKey::from_text("")),
        Err(VaultError::MalformedShare)
    );
}

/// An unsealed vault with org keys for organizations 1 and 2.
fn unsealed_with_two_orgs(seed: u64) -> (Vault, Arc<OrgKeys>, Arc<OrgKeys>, StdRng) {
    let mut rng = rng(seed);
    let init = initialize(3, 2, &mut rng).unwrap();
    let vault = Vault::unsealed(init.config, init.root, init.keyring);
    let w1 = vault
        .with_keyring(|kr| kr.new_org_key(org(1), 1, &mut rng))
        .unwrap()
        .unwrap();
    let w2 = vault
        .with_keyring(|kr| kr.new_org_key(org(2), 1, &mut rng))
        .unwrap()
        .unwrap();
    let k1 = vault.org_keys(org(1), || Ok(vec![w1])).unwrap();
    let k2 = vault.org_keys(org(2), || Ok(vec![w2])).unwrap();
    (vault, k1, k2, rng)
}

#[test]
fn ciphertext_only_decrypts_in_its_own_org_object_and_field() {
    let (_vault, k1, k2, mut rng) = unsealed_with_two_orgs(2);
    let ct = k1.encrypt(&FIELD, b"hunter2", &mut rng).unwrap();
    assert_eq!(k1.decrypt(&FIELD, &ct).unwrap().as_slice(), b"hunter2");

    let decrypt =
        |keys: &OrgKeys, aad: Aad<'_>, ct: &[u8]| keys.decrypt(&aad, ct).map(|p| p.to_vec());
    assert_eq!(
        decrypt(&k2, FIELD, &ct),
        Err(VaultError::Decrypt),
        "other organization"
    );
    let other_object = Aad {
        object_id: "0190-conn-2",
        ..FIELD
    };
    assert_eq!(
        decrypt(&k1, other_object, &ct),
        Err(VaultError::Decrypt),
        "other object id"
    );
    let other_kind = Aad {
        object_kind: "dataset",
        ..FIELD
    };
    assert_eq!(
        decrypt(&k1, other_kind, &ct),
        Err(VaultError::Decrypt),
        "other object kind"
    );
    let other_field = Aad {
        field: "username",
        ..FIELD
    };
    assert_eq!(
        decrypt(&k1, other_field, &ct),
        Err(VaultError::Decrypt),
        "other field"
    );

    for i in 0..ct.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = ct.clone();
            bad[i] ^= bit;
            assert_eq!(
                decrypt(&k1, FIELD, &bad),
                Err(VaultError::Decrypt),
                "flipped byte {i}"
            );
        }
    }
    for len in 0..ct.len() {
        assert_eq!(
            decrypt(&k1, FIELD, &ct[..len]),
            Err(VaultError::Decrypt),
            "truncated to {len}"
        );
    }
    let mut longer = ct.clone();
    longer.push(0);
    assert_eq!(decrypt(&k1, FIELD, &longer), Err(VaultError::Decrypt));
}

#[test]
fn nothing_decrypts_while_sealed() {
    let (vault, k1, _k2, mut rng) = unsealed_with_two_orgs(3);
    let wrapped_again = vault
        .with_keyring(|kr| kr.new_org_key(org(1), 1, &mut rng))
        .unwrap()
        .unwrap();
    let config = vault.config();
    vault.seal();

    assert!(vault.is_sealed());
    assert_eq!(vault.status().progress, 0);
    assert_eq!(
        vault.with_keyring(|kr| kr.current_version()),
        Err(VaultError::Sealed)
    );
    assert_eq!(vault.rotate_keyring(&mut rng), Err(VaultError::Sealed));
    let loaded = Cell::new(false);
    let result = vault.org_keys(org(1), || {
        loaded.set(true);
        Ok(vec![wrapped_again.clone()])
    });
    assert_eq!(result.map(|k| k.current_version()), Err(VaultError::Sealed));
    assert!(
        !loaded.get(),
        "a sealed vault must not even load wrapped keys"
    );
    assert_eq!(vault.config(), config);

    // After unsealing again the old cached keys are gone: the store is asked again, a new Arc comes back.
    let init_keys = {
        let mut rng = self::rng(3);
        initialize(3, 2, &mut rng).unwrap().unseal_keys
    };
    vault.submit_share(&init_keys[0]).unwrap();
    assert!(!vault.submit_share(&init_keys[2]).unwrap().sealed);
    let again = vault.org_keys(org(1), || {
        loaded.set(true);
        Ok(vec![wrapped_again.clone()])
    });
    assert!(loaded.get());
    assert!(!Arc::ptr_eq(&again.unwrap(), &k1));
}

#[test]
fn org_keys_are_cached_until_forgotten() {
    let (vault, k1, _k2, _rng) = unsealed_with_two_orgs(4);
    let calls = Cell::new(0);
    let load = || {
        calls.set(calls.get() + 1);
        Err(VaultError::KeyUnwrap)
    };
    let cached = vault.org_keys(org(1), load).unwrap();
    assert!(Arc::ptr_eq(&cached, &k1));
    assert_eq!(calls.get(), 0);
    vault.forget_org(org(1));
    assert_eq!(
        vault.org_keys(org(1), load).map(|k| k.current_version()),
        Err(VaultError::KeyUnwrap)
    );
    assert_eq!(calls.get(), 1);
    assert_eq!(
        vault
            .org_keys(org(3), || Ok(Vec::new()))
            .map(|k| k.current_version()),
        Err(VaultError::NoKeyVersion)
    );
}

#[test]
fn org_key_rotation_keeps_old_data_readable_and_encrypts_new_data_with_the_new_version() {
    let mut rng = rng(5);
    let init = initialize(2, 2, &mut rng).unwrap();
    let vault = Vault::unsealed(init.config, init.root, init.keyring);
    let mut stored = vec![
        vault
            .with_keyring(|kr| kr.new_org_key(org(1), 1, &mut rng))
            .unwrap()
            .unwrap(),
    ];
    let old_ct = vault
        .org_keys(org(1), || Ok(stored.clone()))
        .unwrap()
        .encrypt(&FIELD, b"old", &mut rng)
        .unwrap();

    stored.push(
        vault
            .with_keyring(|kr| kr.new_org_key(org(1), 2, &mut rng))
            .unwrap()
            .unwrap(),
    );
    vault.forget_org(org(1));
    let keys = vault.org_keys(org(1), || Ok(stored.clone())).unwrap();
    assert_eq!(keys.current_version(), 2);
    assert_eq!(keys.organization(), org(1));
    assert_eq!(keys.decrypt(&FIELD, &old_ct).unwrap().as_slice(), b"old");
    let new_ct = keys.encrypt(&FIELD, b"new", &mut rng).unwrap();
    assert_eq!(new_ct[1..5], 2u32.to_be_bytes());
    assert_eq!(old_ct[1..5], 1u32.to_be_bytes());
    assert_eq!(keys.decrypt(&FIELD, &new_ct).unwrap().as_slice(), b"new");

    // Keys that only know version 1 cannot read version-2 data.
    vault.forget_org(org(1));
    let v1_only = vault.org_keys(org(1), || Ok(stored[..1].to_vec())).unwrap();
    assert_eq!(
        v1_only.decrypt(&FIELD, &new_ct).map(|p| p.to_vec()),
        Err(VaultError::Decrypt)
    );
}

#[test]
fn keyring_rotation_keeps_old_wrapped_keys_and_unseals_with_the_same_shares() {
    let mut rng = rng(6);
    let init = initialize(3, 2, &mut rng).unwrap();
    let shares = init.unseal_keys;
    let mut config = init.config.clone();
    let vault = Vault::unsealed(init.config, init.root, init.keyring);
    let subkey = vault
        .with_keyring(|kr| kr.derive_subkey("blind-index"))
        .unwrap();
    let old = vault
        .with_keyring(|kr| kr.new_org_key(org(1), 1, &mut rng))
        .unwrap()
        .unwrap();
    assert_eq!(old.keyring_version, 1);
    let ct = vault
        .org_keys(org(1), || Ok(vec![old.clone()]))
        .unwrap()
        .encrypt(&FIELD, b"x", &mut rng)
        .unwrap();

    let (version, encrypted) = vault.rotate_keyring(&mut rng).unwrap();
    assert_eq!(version, 2);
    assert_eq!(vault.with_keyring(|kr| kr.versions()).unwrap(), vec![1, 2]);
    let new = vault
        .with_keyring(|kr| kr.new_org_key(org(2), 1, &mut rng))
        .unwrap()
        .unwrap();
    assert_eq!(new.keyring_version, 2);
    config.encrypted_keyring = encrypted;
    assert_eq!(vault.config(), config);

    // A restart: the stored config with the re-encrypted keyring, unsealed by the same shares.
    let restarted = Vault::sealed(config);
    restarted.submit_share(&shares[1]).unwrap();
    assert!(!restarted.submit_share(&shares[2]).unwrap().sealed);
    assert_eq!(restarted.with_keyring(|kr| kr.current_version()), Ok(2));
    let keys = restarted.org_keys(org(1), || Ok(vec![old])).unwrap();
    assert_eq!(keys.decrypt(&FIELD, &ct).unwrap().as_slice(), b"x");
    assert!(restarted.org_keys(org(2), || Ok(vec![new])).is_ok());
    let subkey_after = restarted
        .with_keyring(|kr| kr.derive_subkey("blind-index"))
        .unwrap();
    assert_eq!(
        *subkey_after, *subkey,
        "subkeys are stable across keyring rotation"
    );
}

#[test]
fn initialize_refuses_bad_share_settings() {
    let mut rng = rng(7);
    for (n, k) in [(0, 0), (0, 1), (3, 0), (2, 3), (1, 2), (5, 1), (255, 1)] {
        let result = initialize(n, k, &mut rng).map(|i| i.config);
        assert!(
            matches!(result, Err(VaultError::InvalidShareConfig { .. })),
            "({n}, {k}) gave {result:?}"
        );
    }
    for (n, k) in [(1, 1), (2, 2), (5, 3), (255, 2)] {
        let init = initialize(n, k, &mut rng).unwrap();
        assert_eq!(init.unseal_keys.len(), usize::from(n));
    }
}

#[test]
fn debug_output_never_contains_keys_or_shares() {
    let mut rng = rng(8);
    let init = initialize(3, 2, &mut rng).unwrap();
    let share_texts: Vec<String> = init
        .unseal_keys
        .iter()
        .map(|k| k.expose().to_owned())
        .collect();
    let vault = Vault::sealed(init.config.clone());
    vault.submit_share(&init.unseal_keys[0]).unwrap();
    let unsealed = Vault::unsealed(init.config.clone(), init.root, init.keyring);
    let w = unsealed
        .with_keyring(|kr| kr.new_org_key(org(1), 1, &mut rng))
        .unwrap()
        .unwrap();
    let keys = unsealed.org_keys(org(1), || Ok(vec![w])).unwrap();

    let init2 = initialize(3, 2, &mut rng).unwrap();
    let outputs = [
        format!("{init2:?}"),
        format!("{init2:#?}"),
        format!("{:?}", init2.unseal_keys[0]),
        format!("{:?}", init2.root),
        format!("{:?}", init2.keyring),
        format!("{keys:?}"),
        format!("{vault:?}"),
        format!("{unsealed:?}"),
        format!("{:?}", VaultError::MalformedShare),
    ];
    let init2_texts: Vec<String> = init2
        .unseal_keys
        .iter()
        .map(|k| k.expose().to_owned())
        .collect();
    for output in &outputs {
        assert!(!output.contains("lks1-"), "{output}");
        for text in share_texts.iter().chain(&init2_texts) {
            assert!(!output.contains(&text[5..20]), "{output}");
        }
    }
    assert_eq!(format!("{:?}", init2.unseal_keys[0]), "UnsealKey(..)");
    assert_eq!(format!("{:?}", init2.root), "RootKey(..)");
    assert_eq!(
        format!("{:?}", init2.keyring),
        "Keyring { current_version: 1, versions: [1] }"
    );
    assert_eq!(
        format!("{vault:?}"),
        "Vault { sealed: true, progress: 1, threshold: 2 }"
    );
}

#[test]
fn seal_status_serializes_for_the_api() {
    let status = SealStatus {
        sealed: true,
        progress: 1,
        threshold: 2,
        shares: 3,
    };
    assert_eq!(
        serde_json::to_string(&status).unwrap(),
        r#"{"sealed":true,"progress":1,"threshold":2,"shares":3}"#
    );
}

#[test]
fn keyed_hashes_are_stable_per_org_and_purpose_and_differ_across_orgs() {
    let (_vault, acme, globex, mut rng) = unsealed_with_two_orgs(77);
    let a = acme.keyed_hash("ledger", b"changes").unwrap();
    assert_eq!(a, acme.keyed_hash("ledger", b"changes").unwrap());
    assert_ne!(a, acme.keyed_hash("ledger", b"change").unwrap());
    assert_ne!(a, acme.keyed_hash("other", b"changes").unwrap());
    assert_ne!(a, globex.keyed_hash("ledger", b"changes").unwrap());
    let _ = &mut rng;
}
