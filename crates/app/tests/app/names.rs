//! Names of connections, pipelines and API tokens at rest: sealed, unique through a keyed index,
//! and names of rows written before sealing read as they are, then sealed by
//! `Hub::seal_clear_names`.

use super::identity::{PASSWORD, sign_in, world};
use lockstep_app::{AppError, NewConnection, TokenExpiry};
use lockstep_domain::TokenScope;
use lockstep_storage::testing::{TestStore, execute, snapshot};

fn files(name: &str) -> NewConnection {
    NewConnection {
        name: name.to_owned(),
        kind: "files".to_owned(),
        config: serde_json::json!({}),
        secrets: Default::default(),
    }
}

/// Whether `text` is anywhere in the store, as text or as hex.
async fn stored_in_clear(t: &TestStore, text: &str) -> bool {
    let rows = snapshot(&t.store).await.unwrap().join("\n");
    let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
    rows.contains(text) || rows.to_lowercase().contains(&hex)
}

lockstep_storage::on_both_stores!(names_are_sealed_and_stay_unique);
async fn names_are_sealed_and_stay_unique(t: TestStore) {
    let w = world(t).await;
    let (_, admin) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();
    let made = w
        .hub
        .create_connection(&admin, files("Canary Depot 7f3"))
        .await
        .unwrap();
    w.hub
        .create_api_token(
            &admin,
            "Canary token 9c1",
            TokenScope::Read,
            TokenExpiry::default(),
        )
        .await
        .unwrap();
    assert!(!stored_in_clear(&w._t, "Canary Depot 7f3").await);
    assert!(!stored_in_clear(&w._t, "Canary token 9c1").await);

    let names: Vec<String> = w
        .hub
        .list_connections(&admin)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Canary Depot 7f3"]);
    let tokens = w.hub.list_api_tokens(&admin).await.unwrap();
    assert_eq!(tokens[0].name, "Canary token 9c1");
    assert_eq!(tokens[0].scope, TokenScope::Read);

    // The keyed index keeps names unique, renames included.
    let again = w
        .hub
        .create_connection(&admin, files("Canary Depot 7f3"))
        .await;
    assert!(matches!(again, Err(AppError::Conflict(_))), "{again:?}");
    let other = w
        .hub
        .create_connection(&admin, files("Another depot"))
        .await
        .unwrap();
    let renamed = w
        .hub
        .update_connection(
            &admin,
            other.id,
            lockstep_app::ConnectionUpdate {
                name: Some("Canary Depot 7f3".to_owned()),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(renamed, Err(AppError::Conflict(_))), "{renamed:?}");
    // Listed by name, as before names were sealed.
    let names: Vec<String> = w
        .hub
        .list_connections(&admin)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Another depot", "Canary Depot 7f3"]);
    assert_eq!(
        w.hub.get_connection(&admin, made.id).await.unwrap().name,
        "Canary Depot 7f3"
    );
}

lockstep_storage::on_both_stores!(clear_names_of_older_rows_are_read_then_sealed);
async fn clear_names_of_older_rows_are_read_then_sealed(t: TestStore) {
    let w = world(t).await;
    let (_, admin) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();
    w.hub
        .create_connection(&admin, files("placeholder"))
        .await
        .unwrap();
    w.hub
        .create_api_token(&admin, "placeholder", TokenScope::Run, TokenExpiry::Days(7))
        .await
        .unwrap();
    // What a store written before names were sealed holds.
    execute(
        &w._t.store,
        "UPDATE connections SET name = 'Old Depot', name_ciphertext = NULL",
    )
    .await
    .unwrap();
    execute(
        &w._t.store,
        "UPDATE api_tokens SET name = 'old token', name_ciphertext = NULL",
    )
    .await
    .unwrap();
    let listed = w.hub.list_connections(&admin).await.unwrap();
    assert_eq!(listed[0].name, "Old Depot");
    assert_eq!(
        w.hub.list_api_tokens(&admin).await.unwrap()[0].name,
        "old token"
    );
    let clash = w.hub.create_connection(&admin, files("Old Depot")).await;
    assert!(matches!(clash, Err(AppError::Conflict(_))), "{clash:?}");

    assert_eq!(w.hub.seal_clear_names().await.unwrap(), 2);
    assert_eq!(w.hub.seal_clear_names().await.unwrap(), 0, "sealed twice");
    assert!(!stored_in_clear(&w._t, "Old Depot").await);
    assert!(!stored_in_clear(&w._t, "old token").await);
    let listed = w.hub.list_connections(&admin).await.unwrap();
    assert_eq!(listed[0].name, "Old Depot");
    assert_eq!(
        w.hub.list_api_tokens(&admin).await.unwrap()[0].name,
        "old token"
    );
    let clash = w.hub.create_connection(&admin, files("Old Depot")).await;
    assert!(matches!(clash, Err(AppError::Conflict(_))), "{clash:?}");
}
