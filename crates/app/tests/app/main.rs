//! The use cases end to end on a real store, SQLite and PostgreSQL alike.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use lockstep_app::{AppError, Credentials, Hub, SecretToken, SystemClock, UnsealKey};
use lockstep_storage::testing::TestStore;
use lockstep_storage::{Store, footprint, organizations};
use lockstep_vault::Aad;
use std::sync::Arc;

mod audit;
mod boms;
mod customer_control;
mod datasets;
mod identity;
mod names;
mod organizations_share_addresses;
mod passkeys;
mod policies;
mod redaction;
mod schedule;

use lockstep_storage::on_both_stores;

async fn init(store: &Store, shares: u8, threshold: u8) -> (Hub, Credentials) {
    Hub::initialize(store.clone(), Arc::new(SystemClock), shares, threshold)
        .await
        .unwrap()
}

/// What a restart does: a new hub over the same store.
async fn restart(store: &Store) -> Hub {
    Hub::open(store.clone(), Arc::new(SystemClock))
        .await
        .unwrap()
        .unwrap()
}

fn unseal(hub: &Hub, keys: &[&UnsealKey]) {
    for key in keys {
        hub.submit_unseal_key(key).unwrap();
    }
    assert!(!hub.is_sealed());
}

on_both_stores!(an_initialized_hub_restarts_sealed_and_unseals_with_its_shares);
async fn an_initialized_hub_restarts_sealed_and_unseals_with_its_shares(t: TestStore) {
    assert!(
        Hub::open(t.store.clone(), Arc::new(SystemClock))
            .await
            .unwrap()
            .is_none()
    );
    let (hub, creds) = init(&t.store, 5, 3).await;
    assert!(!hub.is_sealed());
    assert_eq!(creds.unseal_keys.len(), 5);
    assert_eq!(creds.key_threshold, 3);

    let hub = restart(&t.store).await;
    let status = hub.seal_status();
    assert!(status.sealed);
    assert_eq!(
        (status.progress, status.threshold, status.shares),
        (0, 3, 5)
    );

    let op = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    assert!(matches!(
        hub.list_organizations(&op).await,
        Err(AppError::Sealed)
    ));
    assert!(matches!(
        hub.create_organization(&op, "Acme", "a@acme.io").await,
        Err(AppError::Sealed)
    ));

    hub.submit_unseal_key(&creds.unseal_keys[4]).unwrap();
    let refused = hub.submit_unseal_key(&UnsealKey::from_text("lks1-garbage"));
    assert!(
        matches!(refused, Err(AppError::UnsealRefused(_))),
        "{refused:?}"
    );
    assert_eq!(hub.seal_status().progress, 1);
    unseal(&hub, &[&creds.unseal_keys[0], &creds.unseal_keys[2]]);
    assert!(hub.list_organizations(&op).await.unwrap().is_empty());

    hub.seal(&op);
    assert!(hub.is_sealed());
    assert!(matches!(
        hub.list_organizations(&op).await,
        Err(AppError::Sealed)
    ));
}

on_both_stores!(a_store_is_initialized_only_once);
async fn a_store_is_initialized_only_once(t: TestStore) {
    let _ = init(&t.store, 1, 1).await;
    let again = Hub::initialize(t.store.clone(), Arc::new(SystemClock), 3, 3).await;
    assert!(
        matches!(again, Err(AppError::Conflict("vault"))),
        "{again:?}"
    );
}

on_both_stores!(bad_share_configurations_are_refused_and_store_nothing);
async fn bad_share_configurations_are_refused_and_store_nothing(t: TestStore) {
    for (n, k) in [(0, 0), (3, 4), (3, 1), (2, 0)] {
        let err = Hub::initialize(t.store.clone(), Arc::new(SystemClock), n, k).await;
        assert!(
            matches!(err, Err(AppError::Invalid { .. })),
            "({n},{k}): {err:?}"
        );
    }
    assert!(
        Hub::open(t.store.clone(), Arc::new(SystemClock))
            .await
            .unwrap()
            .is_none()
    );
}

on_both_stores!(only_the_operator_token_authenticates);
async fn only_the_operator_token_authenticates(t: TestStore) {
    let (hub, creds) = init(&t.store, 1, 1).await;
    assert!(
        hub.authenticate_operator(&creds.operator_token)
            .await
            .is_ok()
    );
    let forged = SecretToken::from_text("lso_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert!(matches!(
        hub.authenticate_operator(&forged).await,
        Err(AppError::Unauthenticated)
    ));
}

on_both_stores!(organizations_get_their_own_key_and_deletion_shreds_it);
async fn organizations_get_their_own_key_and_deletion_shreds_it(t: TestStore) {
    let (hub, creds) = init(&t.store, 3, 2).await;
    let op = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    let acme = hub
        .create_organization(&op, "Acme", "ada@acme.io")
        .await
        .unwrap();
    let globex = hub
        .create_organization(&op, "Globex", "bob@globex.io")
        .await
        .unwrap();
    assert!(acme.invitation_token.expose().starts_with("lsi_"));

    let names: Vec<_> = hub
        .list_organizations(&op)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name.as_str().to_owned())
        .collect();
    assert_eq!(names, ["Acme", "Globex"]);

    // Each organization's data is readable with its own key only.
    let aad = Aad {
        object_kind: "probe",
        object_id: "1",
        field: "value",
    };
    let acme_keys = hub.org_keys(acme.id).await.unwrap();
    let globex_keys = hub.org_keys(globex.id).await.unwrap();
    let ciphertext = acme_keys
        .encrypt(&aad, b"bill of materials", &mut rand::rng())
        .unwrap();
    assert_eq!(
        acme_keys.decrypt(&aad, &ciphertext).unwrap().as_slice(),
        b"bill of materials"
    );
    assert!(globex_keys.decrypt(&aad, &ciphertext).is_err());

    // The invitation's e-mail is not stored in clear.
    let mut conn = t.store.read().await.unwrap();
    let tables = footprint::organization_footprint(&mut conn, t.store.backend(), acme.id)
        .await
        .unwrap();
    assert!(
        tables.iter().any(|(table, _)| table == "invitations"),
        "{tables:?}"
    );
    drop(conn);

    assert!(
        hub.checkpoint_ledgers().await.unwrap() >= 2,
        "the minute task signs both ledgers"
    );
    hub.delete_organization(&op, acme.id).await.unwrap();
    let mut conn = t.store.read().await.unwrap();
    let left = footprint::organization_footprint(&mut conn, t.store.backend(), acme.id)
        .await
        .unwrap();
    // Only the ledger stays (ids and keyed hashes, meaningless without the destroyed key).
    let (kept, left): (Vec<_>, Vec<_>) = left.into_iter().partition(|(table, _)| {
        lockstep_storage::ledger::RETAINED_AFTER_DELETION.contains(&table.as_str())
    });
    assert_eq!(left, vec![], "rows left after deletion");
    assert!(
        kept.iter().any(|(table, _)| table == "ledger_entries"),
        "{kept:?}"
    );
    // The kept ledger still verifies, and its last entry records the deletion.
    let ledger = lockstep_app::stored_ledger(&t.store, acme.id)
        .await
        .unwrap();
    let verified = lockstep_ledger::verify_export(&ledger).unwrap_or_else(|f| panic!("{f:?}"));
    assert_eq!(verified.size, ledger.entries.len() as u64);
    let last = String::from_utf8(ledger.entries.last().unwrap().clone()).unwrap();
    assert!(last.contains("organization.deleted"), "{last}");
    assert!(
        !last.contains("Acme") && !last.contains("ada@acme.io"),
        "{last}"
    );
    assert!(
        organizations::keys(&mut conn, acme.id)
            .await
            .unwrap()
            .is_empty()
    );
    drop(conn);
    assert!(matches!(
        hub.org_keys(acme.id).await,
        Err(AppError::NotFound(_))
    ));
    assert!(matches!(
        hub.delete_organization(&op, acme.id).await,
        Err(AppError::NotFound(_))
    ));

    // After a restart and unseal, the deleted organization's key is gone for good; the other's works.
    let hub = restart(&t.store).await;
    unseal(&hub, &[&creds.unseal_keys[1], &creds.unseal_keys[2]]);
    assert!(matches!(
        hub.org_keys(acme.id).await,
        Err(AppError::NotFound(_))
    ));
    let globex_keys = hub.org_keys(globex.id).await.unwrap();
    let sealed = globex_keys.encrypt(&aad, b"x", &mut rand::rng()).unwrap();
    assert_eq!(globex_keys.decrypt(&aad, &sealed).unwrap().as_slice(), b"x");
}

on_both_stores!(bad_organization_input_changes_nothing);
async fn bad_organization_input_changes_nothing(t: TestStore) {
    let (hub, creds) = init(&t.store, 1, 1).await;
    let op = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    for (name, email, field) in [
        ("", "a@b.io", "name"),
        ("Acme", "not-an-email", "admin_email"),
        (" Acme", "a@b.io", "name"),
    ] {
        match hub.create_organization(&op, name, email).await {
            Err(AppError::Invalid { field: f, reason }) => {
                assert_eq!(f, field);
                assert!(
                    !reason.contains(email) || email.is_empty(),
                    "reason echoes the input: {reason}"
                );
            }
            other => panic!("expected Invalid for {name:?}/{email:?}, got {other:?}"),
        }
    }
    hub.create_organization(&op, "Acme", "a@acme.io")
        .await
        .unwrap();
    let dup = hub.create_organization(&op, "acme", "b@acme.io").await;
    assert!(
        matches!(dup, Err(AppError::Conflict("organization"))),
        "{dup:?}"
    );
    assert_eq!(hub.list_organizations(&op).await.unwrap().len(), 1);
}

on_both_stores!(a_rotated_keyring_keeps_old_keys_working_across_a_restart);
async fn a_rotated_keyring_keeps_old_keys_working_across_a_restart(t: TestStore) {
    let (hub, creds) = init(&t.store, 3, 2).await;
    let op = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    let acme = hub
        .create_organization(&op, "Acme", "a@acme.io")
        .await
        .unwrap();
    let aad = Aad {
        object_kind: "probe",
        object_id: "1",
        field: "value",
    };
    let old = hub
        .org_keys(acme.id)
        .await
        .unwrap()
        .encrypt(&aad, b"before", &mut rand::rng())
        .unwrap();

    assert_eq!(hub.rotate_keyring(&op).await.unwrap(), 2);
    let globex = hub
        .create_organization(&op, "Globex", "g@globex.io")
        .await
        .unwrap();
    let mut conn = t.store.read().await.unwrap();
    assert_eq!(
        organizations::keys(&mut conn, acme.id).await.unwrap()[0].keyring_version,
        1
    );
    assert_eq!(
        organizations::keys(&mut conn, globex.id).await.unwrap()[0].keyring_version,
        2
    );
    drop(conn);

    // After a restart the same shares unseal the rotated keyring, and both generations work.
    let hub = restart(&t.store).await;
    unseal(&hub, &[&creds.unseal_keys[0], &creds.unseal_keys[1]]);
    let acme_keys = hub.org_keys(acme.id).await.unwrap();
    assert_eq!(acme_keys.decrypt(&aad, &old).unwrap().as_slice(), b"before");
    let globex_keys = hub.org_keys(globex.id).await.unwrap();
    let new = globex_keys
        .encrypt(&aad, b"after", &mut rand::rng())
        .unwrap();
    assert_eq!(
        globex_keys.decrypt(&aad, &new).unwrap().as_slice(),
        b"after"
    );
}
