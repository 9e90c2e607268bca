//! The `tryton` connector against a real Tryton 8.2 server (with the production module): the
//! throwaway one `scripts/test` starts (`ensure_tryton` in scripts/lib/peers.sh), named by
//! `LOCKSTEP_TEST_TRYTON_URL`, `_DATABASE`, `_USER` and `_PASSWORD`. Without it the tests fail
//! and say how to start it, unless `LOCKSTEP_TEST_SKIP_TRYTON=1` (then they say they skip).
//! The tests share the database: each names its products with a code prefix of its own.

use lockstep_connectors::tryton::{
    NewBomLine, NewProduct, TrytonClient, TrytonConfig, TrytonConnector,
};
use lockstep_connectors::{
    AnyConnector, ConnectionConfig, Connector, ConnectorError, Context, EgressPolicy, FailureKind,
    FieldType, Secret, Secrets,
};

/// The peer's settings and password.
struct Peer {
    config: TrytonConfig,
    password: String,
}

/// The Tryton `scripts/test` started; `None` (after saying so) when the tests are to skip it.
#[allow(clippy::print_stderr)] // a skipped test says so
fn peer() -> Option<Peer> {
    match std::env::var("LOCKSTEP_TEST_TRYTON_URL") {
        Ok(url) => {
            let var = |name: &str| {
                std::env::var(name).unwrap_or_else(|_| {
                    panic!("{name} is not set although LOCKSTEP_TEST_TRYTON_URL is")
                })
            };
            Some(Peer {
                config: TrytonConfig {
                    url,
                    database: var("LOCKSTEP_TEST_TRYTON_DATABASE"),
                    user: var("LOCKSTEP_TEST_TRYTON_USER"),
                },
                password: var("LOCKSTEP_TEST_TRYTON_PASSWORD"),
            })
        }
        Err(_) if std::env::var("LOCKSTEP_TEST_SKIP_TRYTON").as_deref() == Ok("1") => {
            eprintln!("skipped: this test needs Tryton (LOCKSTEP_TEST_SKIP_TRYTON=1)");
            None
        }
        Err(_) => panic!(
            "LOCKSTEP_TEST_TRYTON_URL is not set: this test needs a Tryton server. Run it via \
             scripts/test, which starts a throwaway one (or `source scripts/lib/services.sh; \
             source scripts/lib/peers.sh; ensure_tryton` in a shell first), or set \
             LOCKSTEP_TEST_SKIP_TRYTON=1 to skip it"
        ),
    }
}

fn loopback() -> Context {
    Context::new(EgressPolicy::parse("loopback").unwrap(), None)
}

impl Peer {
    fn secret(&self) -> Secret {
        Secret::new(self.password.clone())
    }

    fn secrets(&self) -> Secrets {
        let mut secrets = Secrets::new();
        secrets.insert("password", self.secret());
        secrets
    }

    async fn client(&self) -> TrytonClient {
        TrytonClient::login(&loopback(), &self.config, &self.secret())
            .await
            .unwrap()
    }
}

/// A code prefix no other test (or run against the same database) uses.
/// The tests share one Tryton database and its `admin` user, and Tryton checks a session by
/// reading every session of the user: one test's logout can fail another's call at that moment
/// (the connector retries such an answer a few times, see `rpc.rs`). They take turns, so that a
/// test fails for what it does, not for the timing of the others.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn prefix() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("T{:x}{n}", nanos % (1 << 48))
}

fn part(code: &str, name: &str, uom: &str, producible: bool) -> NewProduct {
    NewProduct {
        code: code.to_owned(),
        name: name.to_owned(),
        uom_symbol: uom.to_owned(),
        producible,
    }
}

fn line(product_id: i64, quantity: f64, uom: &str) -> NewBomLine {
    NewBomLine {
        product_id,
        quantity,
        uom_symbol: uom.to_owned(),
    }
}

#[tokio::test]
async fn logs_in_with_the_right_password_and_refuses_a_wrong_one_without_naming_it() {
    let Some(peer) = peer() else { return };
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let client = peer.client().await;
    assert!(client.user_id() > 0);
    assert_eq!(client.server_version().await.unwrap(), "8.2");
    assert!(client.unit("u").is_some() && client.unit("kg").is_some());
    client.logout().await.unwrap();

    let connector = TrytonConnector::new(peer.config.clone(), peer.secrets(), loopback());
    connector.test().await.unwrap();

    let wrong = format!("wrong-{}", prefix());
    let err = TrytonClient::login(&loopback(), &peer.config, &Secret::new(wrong.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Authentication), "{err}");
    assert!(!err.to_string().contains(&wrong), "{err}");
    assert!(!format!("{err:?}").contains(&wrong));

    let mut secrets = Secrets::new();
    secrets.insert("password", Secret::new(wrong.clone()));
    let err = TrytonConnector::new(peer.config.clone(), secrets, loopback())
        .test()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Authentication), "{err}");
    assert!(!err.to_string().contains(&wrong));

    let mut config = peer.config.clone();
    config.database = format!("missing_{}", prefix());
    let err = TrytonClient::login(&loopback(), &config, &peer.secret())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::NotFound), "{err}");
}

#[tokio::test]
async fn plain_http_is_refused_off_this_machine_and_the_egress_policy_applies() {
    let Some(peer) = peer() else { return };
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let config = TrytonConfig {
        url: "http://192.0.2.10:8000/".to_owned(),
        database: "erp".to_owned(),
        user: "admin".to_owned(),
    };
    let err = config.validate(&peer.secrets()).unwrap_err();
    assert!(
        matches!(&err, ConnectorError::Config { field, .. } if field == "config.url"),
        "{err}"
    );
    let err = TrytonClient::login(&loopback(), &config, &peer.secret())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Config { .. }), "{err}");

    // The peer is on loopback: a policy that allows only another network refuses it.
    let ctx = Context::new(EgressPolicy::parse("10.0.0.0/8").unwrap(), None);
    let err = TrytonClient::login(&ctx, &peer.config, &peer.secret())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Policy), "{err}");
}

#[tokio::test]
async fn products_are_created_and_found_by_code_and_by_name_in_batches_of_any_size() {
    let Some(peer) = peer() else { return };
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let client = peer.client().await;
    let p = prefix();
    let new = [
        part(&format!("{p}-ASM"), &format!("{p} Assembly"), "u", true),
        part(&format!("{p}-BOLT"), &format!("{p} Bolt"), "u", false),
        part(&format!("{p}-STEEL"), &format!("{p} Steel"), "kg", false),
    ];
    let ids = client.create_products(&new).await.unwrap();
    assert_eq!(ids.len(), 3);

    // 1,500 codes, most unknown: two calls, and only the products that exist come back.
    let mut codes: Vec<String> = (0..1497).map(|i| format!("{p}-MISSING-{i}")).collect();
    codes.extend(new.iter().map(|n| n.code.clone()));
    let found = client.products_by_codes(&codes).await.unwrap();
    assert_eq!(found.len(), 3);
    for (new, id) in new.iter().zip(&ids) {
        let product = found.iter().find(|f| f.id == *id).unwrap();
        assert_eq!(product.code.as_deref(), Some(new.code.as_str()));
        assert_eq!(product.name, new.name);
        assert_eq!(product.uom_symbol, new.uom_symbol);
        assert_eq!(product.producible, new.producible);
        assert!(product.template_id > 0);
    }

    // More products than Tryton takes in one call: created in batches, ids in order.
    let many: Vec<NewProduct> = (0..120)
        .map(|i| part(&format!("{p}-M{i}"), &format!("{p} Many {i}"), "u", false))
        .collect();
    let many_ids = client.create_products(&many).await.unwrap();
    let codes: Vec<String> = many.iter().map(|n| n.code.clone()).collect();
    let found = client.products_by_codes(&codes).await.unwrap();
    assert_eq!(found.len(), 120);
    for (new, id) in many.iter().zip(&many_ids) {
        let product = found.iter().find(|f| f.id == *id).unwrap();
        assert_eq!(product.code.as_deref(), Some(new.code.as_str()));
    }

    let by_name = client
        .products_by_names(&[format!("{p} Steel"), format!("{p} Nothing")])
        .await
        .unwrap();
    assert_eq!(by_name.len(), 1);
    assert_eq!(by_name[0].id, ids[2]);

    // A code is unique: creating it again is refused, and says nothing of the values.
    let err = client.create_products(&new[..1]).await.unwrap_err();
    assert!(!err.to_string().contains(&p), "{err}");
    // An unknown unit is refused before anything is sent.
    let err = client
        .create_products(&[part(&format!("{p}-X"), "X", "no-such-unit", false)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::NotFound), "{err}");
    assert!(
        client
            .products_by_codes(&[format!("{p}-X")])
            .await
            .unwrap()
            .is_empty()
    );
    client.logout().await.unwrap();
}

#[tokio::test]
async fn a_bom_is_created_read_changed_extended_and_unlinked() {
    let Some(peer) = peer() else { return };
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let client = peer.client().await;
    let p = prefix();
    let ids = client
        .create_products(&[
            part(&format!("{p}-ASM"), &format!("{p} Assembly"), "u", true),
            part(&format!("{p}-BOLT"), &format!("{p} Bolt"), "u", false),
            part(&format!("{p}-STEEL"), &format!("{p} Steel"), "kg", false),
            part(&format!("{p}-TUBE"), &format!("{p} Tube"), "m", false),
            part(&format!("{p}-NUT"), &format!("{p} Nut"), "u", false),
        ])
        .await
        .unwrap();
    let [asm, bolt, steel, tube, nut] = ids[..] else {
        panic!("{ids:?}")
    };
    assert!(client.boms_of(&[asm]).await.unwrap()[&asm].is_empty());

    let bom_id = client
        .create_bom(
            asm,
            &format!("{p}-ASM"),
            &[
                line(bolt, 4.0, "u"),
                line(steel, 1.25, "kg"),
                line(tube, 0.1 + 0.2, "m"),
            ],
        )
        .await
        .unwrap();
    let boms = client.boms_of(&[asm, bolt]).await.unwrap();
    assert!(boms[&bolt].is_empty());
    let [bom] = &boms[&asm][..] else {
        panic!("{boms:?}")
    };
    assert_eq!(bom.id, bom_id);
    assert_eq!(bom.name, format!("{p}-ASM"));
    assert_eq!(bom.output_product, asm);
    let read: Vec<(i64, f64, &str)> = bom
        .inputs
        .iter()
        .map(|l| (l.product_id, l.quantity, l.uom_symbol.as_str()))
        .collect();
    assert_eq!(
        read,
        [(bolt, 4.0, "u"), (steel, 1.25, "kg"), (tube, 0.3, "m")]
    );

    // Whole pieces only for `u`: refused before anything is sent, nothing changes.
    let bolt_line = bom.inputs[0].id;
    let err = client.set_line_quantity(bolt_line, 2.5).await.unwrap_err();
    assert!(err.to_string().contains("at most 0 decimals"), "{err}");
    client.set_line_quantity(bolt_line, 6.0).await.unwrap();

    let added = client
        .add_lines(bom_id, &[line(nut, 6.0, "u")])
        .await
        .unwrap();
    assert_eq!(added.len(), 1);
    client.unlink_lines(&[bom.inputs[2].id]).await.unwrap();

    let bom = &client.boms_of(&[asm]).await.unwrap()[&asm][0];
    let read: Vec<(i64, i64, f64)> = bom
        .inputs
        .iter()
        .map(|l| (l.id, l.product_id, l.quantity))
        .collect();
    assert_eq!(
        read,
        [
            (bolt_line, bolt, 6.0),
            (bom.inputs[1].id, steel, 1.25),
            (added[0], nut, 6.0)
        ]
    );
    // The unlinked line's product is still there.
    let tube_product = client.products_by_ids(&[tube]).await.unwrap();
    assert_eq!(tube_product.len(), 1);
    assert_eq!(
        tube_product[0].code.as_deref(),
        Some(format!("{p}-TUBE").as_str())
    );

    // A product that is not producible cannot have a BOM: refused before anything is created.
    let err = client
        .create_bom(bolt, "not producible", &[line(nut, 1.0, "u")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not producible"), "{err}");
    assert!(client.boms_of(&[bolt]).await.unwrap()[&bolt].is_empty());
    client.logout().await.unwrap();
}

#[tokio::test]
async fn a_file_attached_to_a_product_reads_back() {
    let Some(peer) = peer() else { return };
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let client = peer.client().await;
    let p = prefix();
    let ids = client
        .create_products(&[part(
            &format!("{p}-IMG"),
            &format!("{p} Imaged"),
            "u",
            false,
        )])
        .await
        .unwrap();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let id = client
        .attach_file(ids[0], "thumbnail.png", &bytes)
        .await
        .unwrap();
    let attachments = client.attachments_of(ids[0]).await.unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0].id, id);
    assert_eq!(attachments[0].name, "thumbnail.png");
    assert_eq!(attachments[0].data, bytes);
    client.logout().await.unwrap();
}

#[tokio::test]
async fn discovery_lists_products_and_bom_lines_and_samples_read_them() {
    let Some(peer) = peer() else { return };
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let client = peer.client().await;
    let p = prefix();
    let ids = client
        .create_products(&[
            part(&format!("{p}-ASM"), &format!("{p} Assembly"), "u", true),
            part(&format!("{p}-PART"), &format!("{p} Part"), "kg", false),
        ])
        .await
        .unwrap();
    client
        .create_bom(ids[0], &format!("{p}-ASM"), &[line(ids[1], 2.5, "kg")])
        .await
        .unwrap();
    client.logout().await.unwrap();

    let config = ConnectionConfig::parse(
        lockstep_connectors::ConnectionKind::Tryton,
        serde_json::to_value(&peer.config).unwrap(),
    )
    .unwrap();
    config.validate(&peer.secrets()).unwrap();
    let connector = lockstep_connectors::open(&config, peer.secrets(), Vec::new(), &loopback());
    assert!(matches!(connector, AnyConnector::Tryton(_)));

    let objects = connector.discover().await.unwrap();
    let names: Vec<&str> = objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["product", "bom", "uom"]);
    let product = &objects[0];
    let field = |name: &str| product.fields.iter().find(|f| f.name == name).unwrap();
    assert_eq!(field("code").field_type, FieldType::String);
    assert_eq!(field("code").native, "char");
    assert!(field("id").primary_key);
    let bom = &objects[1];
    let quantity = bom.fields.iter().find(|f| f.name == "quantity").unwrap();
    assert_eq!(quantity.field_type, FieldType::Float);

    // The sample shows the products as the typed client reads them (the database is shared
    // with the other tests: which products come first is not this test's to know).
    let products = connector.sample("product", 100).await.unwrap();
    assert!(products.len() >= 2, "{products:?}");
    let ids: Vec<i64> = products.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    let client = peer.client().await;
    let typed = client.products_by_ids(&ids).await.unwrap();
    for record in &products {
        let product = typed.iter().find(|t| record["id"] == t.id).unwrap();
        assert_eq!(record["code"].as_str(), product.code.as_deref());
        assert_eq!(record["name"], product.name.as_str());
        assert_eq!(record["uom"], product.uom_symbol.as_str());
        assert_eq!(record["producible"], product.producible);
        assert_eq!(record["template"], product.template_id);
        assert_eq!(record["active"], true);
    }
    client.logout().await.unwrap();
    let lines = connector.sample("bom", 100).await.unwrap();
    assert!(
        lines
            .iter()
            .any(|r| r["product_code"] == format!("{p}-PART").as_str()
                && r["quantity"] == 2.5
                && r["uom"] == "kg"
                && r["bom_name"] == format!("{p}-ASM").as_str()),
        "{lines:?}"
    );
    assert_eq!(connector.sample("product", 1).await.unwrap().len(), 1);
    let err = connector.sample("invoices", 5).await.unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::NotFound));
}
