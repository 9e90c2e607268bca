//! Bills of materials as data sets, against the real Tryton 8.2 `scripts/test` starts
//! (`ensure_tryton`): read as trees, compared with Tryton and with another BOM file, submitted
//! (products created, BOMs created and updated, a line unlinked only when ticked), resubmitted
//! without change; their parts' files seen only by those who may see the data set and gone
//! when it expires. Without the peer the tests fail and say how to start it, unless
//! `LOCKSTEP_TEST_SKIP_TRYTON=1`. The Tryton database is shared: each test names its parts with
//! a prefix of its own.

use lockstep_app::connectors::tryton::{TrytonClient, TrytonConfig};
use lockstep_app::connectors::{Context, EgressPolicy, Secret};
use lockstep_app::{
    AppError, Caller, DatasetState, DatasetView, Hub, ManualClock, NewConnection, Password,
    ProcessSelection, RecordQuery, RecordStatus, RecordView, TreeNode, TreeQuery,
};
use lockstep_domain::{DatasetId, Role};
use lockstep_storage::testing::TestStore;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

const PASSWORD: &str = "correct horse battery staple";
/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn pw() -> Password {
    Password::new(PASSWORD.to_owned())
}

/// `shared/testdata/bom`, beside the repository (or under `LOCKSTEP_TESTDATA`).
fn testdata(relative: &str) -> Vec<u8> {
    let base = match std::env::var_os("LOCKSTEP_TESTDATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/bom"),
    };
    std::fs::read(base.join(relative)).unwrap()
}

/// The Tryton `scripts/test` started: (config, password); `None` (after saying so) when the
/// tests are to skip it.
#[allow(clippy::print_stderr)]
fn peer() -> Option<(TrytonConfig, String)> {
    match std::env::var("LOCKSTEP_TEST_TRYTON_URL") {
        Ok(url) => {
            let var = |name: &str| {
                std::env::var(name).unwrap_or_else(|_| {
                    panic!("{name} is not set although LOCKSTEP_TEST_TRYTON_URL is")
                })
            };
            Some((
                TrytonConfig {
                    url,
                    database: var("LOCKSTEP_TEST_TRYTON_DATABASE"),
                    user: var("LOCKSTEP_TEST_TRYTON_USER"),
                },
                var("LOCKSTEP_TEST_TRYTON_PASSWORD"),
            ))
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

/// The Tryton peer runs on SQLite, which takes one writer at a time: the tests that use it
/// (each on both stores) take turns.
static TRYTON: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct World {
    hub: Arc<Hub>,
    clock: Arc<ManualClock>,
    admin: Caller,
    editor: Caller,
    other_editor: Caller,
    viewer: Caller,
    outsider: Caller,
    pipeline: lockstep_app::PipelineView,
    tryton: TrytonClient,
}

async fn member(hub: &Hub, admin: &Caller, email: &str, role: Role) -> Caller {
    let inv = hub.invite_user(admin, email, role).await.unwrap();
    hub.accept_invitation(inv.token.expose(), &pw(), "M")
        .await
        .unwrap();
    let done = hub.login(email, &pw(), None).await.unwrap();
    hub.authenticate(done.session_token.expose()).await.unwrap()
}

async fn world(t: &TestStore, config: &TrytonConfig, password: &str) -> World {
    let start = OffsetDateTime::from_unix_timestamp(1_795_860_000).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let (hub, creds) = Hub::initialize(t.store.clone(), clock.clone(), 1, 1)
        .await
        .unwrap();
    let connectors = Context::new(EgressPolicy::parse("loopback").unwrap(), None);
    let hub = Arc::new(hub.with_options(lockstep_app::HubOptions {
        password_permits: 2,
        connectors: connectors.clone(),
        ..lockstep_app::HubOptions::default()
    }));
    let op = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    let mut admins = Vec::new();
    for (org, email) in [("Acme", "ada@acme.io"), ("Globex", "gus@globex.io")] {
        let created = hub.create_organization(&op, org, email).await.unwrap();
        hub.accept_invitation(created.invitation_token.expose(), &pw(), "A")
            .await
            .unwrap();
        let done = hub.login(email, &pw(), None).await.unwrap();
        admins.push(hub.authenticate(done.session_token.expose()).await.unwrap());
    }
    let outsider = admins.pop().unwrap();
    let admin = admins.pop().unwrap();
    let editor = member(&hub, &admin, "ed@acme.io", Role::Editor).await;
    let other_editor = member(&hub, &admin, "eve@acme.io", Role::Editor).await;
    let viewer = member(&hub, &admin, "vi@acme.io", Role::Viewer).await;
    let erp = hub
        .create_connection(
            &admin,
            NewConnection {
                name: "erp".into(),
                kind: "tryton".into(),
                config: json!({
                    "url": config.url,
                    "database": config.database,
                    "user": config.user,
                }),
                secrets: [("password".to_owned(), Secret::new(password.to_owned()))]
                    .into_iter()
                    .collect(),
            },
        )
        .await
        .unwrap();
    let c = erp.id.to_string();
    let pipeline = hub
        .create_pipeline(
            &admin,
            "boms",
            json!({
                "source": {"connection_id": c, "object": "bom"},
                "destination": {"connection_id": c, "object": "bom"},
                "mode": "append",
            }),
        )
        .await
        .unwrap();
    let tryton = TrytonClient::login(&connectors, config, &Secret::new(password.to_owned()))
        .await
        .unwrap();
    World {
        hub,
        clock,
        admin,
        editor,
        other_editor,
        viewer,
        outsider,
        pipeline,
        tryton,
    }
}

/// Waits until the data set is neither pulling nor submitting.
async fn settled(w: &World, who: &Caller, id: DatasetId) -> DatasetView {
    for _ in 0..600 {
        let view = w.hub.get_dataset(who, id).await.unwrap();
        if !view.state.is_busy() {
            return view;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the data set stayed busy");
}

async fn records(w: &World, who: &Caller, id: DatasetId) -> Vec<RecordView> {
    let mut all = Vec::new();
    loop {
        let page = w
            .hub
            .dataset_records(
                who,
                id,
                RecordQuery {
                    offset: all.len() as u64,
                    limit: 500,
                    ..RecordQuery::default()
                },
            )
            .await
            .unwrap();
        let done = page.records.is_empty();
        all.extend(page.records);
        if done || all.len() as u64 >= page.total {
            return all;
        }
    }
}

fn text<'a>(r: &'a RecordView, field: &str) -> Option<&'a str> {
    r.values.get(field).and_then(|v| v.as_str())
}

/// The record of `part` under `parent`.
fn line<'a>(all: &'a [RecordView], parent: &str, part: &str) -> &'a RecordView {
    all.iter()
        .find(|r| {
            text(r, "parent_part_number") == Some(parent) && text(r, "part_number") == Some(part)
        })
        .unwrap_or_else(|| panic!("no record of {part} under {parent}"))
}

fn find_node<'a>(nodes: &'a [TreeNode], path: &str) -> Option<&'a TreeNode> {
    for n in nodes {
        if text(&n.record, "path") == Some(path) {
            return Some(n);
        }
        if let Some(found) = find_node(&n.children, path) {
            return Some(found);
        }
    }
    None
}

/// What Tryton holds for an assembly: (part code, quantity) of its BOM's lines, sorted.
async fn erp_lines(w: &World, assembly: &str) -> Vec<(String, f64)> {
    let product = w
        .tryton
        .products_by_codes(&[assembly.to_owned()])
        .await
        .unwrap();
    let Some(product) = product.first() else {
        return Vec::new();
    };
    let boms = w.tryton.boms_of(&[product.id]).await.unwrap();
    let Some(bom) = boms.get(&product.id).and_then(|b| b.first()) else {
        return Vec::new();
    };
    let ids: Vec<i64> = bom.inputs.iter().map(|l| l.product_id).collect();
    let products = w.tryton.products_by_ids(&ids).await.unwrap();
    let mut out: Vec<(String, f64)> = bom
        .inputs
        .iter()
        .map(|l| {
            let code = products
                .iter()
                .find(|p| p.id == l.product_id)
                .and_then(|p| p.code.clone())
                .unwrap_or_default();
            (code, l.quantity)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn csv(prefix: &str, rows: &[(&str, &str, &str, &str)]) -> Vec<u8> {
    let mut out = String::from("ITEM NO.,PART NUMBER,DESCRIPTION,QTY.\n");
    for (item, part, description, qty) in rows {
        out.push_str(&format!(
            "{item},{prefix}-{part},{description} {prefix},{qty}\n"
        ));
    }
    out.into_bytes()
}

lockstep_storage::on_both_stores!(a_bom_goes_into_tryton_and_only_ticked_lines_are_unlinked);
async fn a_bom_goes_into_tryton_and_only_ticked_lines_are_unlinked(t: TestStore) {
    let Some((config, password)) = peer() else {
        return;
    };
    let _turn = TRYTON.lock().await;
    let w = world(&t, &config, &password).await;
    let hub = &w.hub;
    let p = format!("T{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let asm = format!("{p}-ASM");
    let frame = format!("{p}-FRAME");

    // A file that cannot be read is refused, and nothing is kept.
    let refused = hub
        .upload_bom_dataset(
            &w.editor,
            w.pipeline.id,
            None,
            "empty.csv",
            None,
            b"no,header,here\n1,2,3\n".to_vec(),
        )
        .await;
    assert!(
        matches!(refused, Err(AppError::Invalid { field: "file", .. })),
        "{refused:?}"
    );
    assert!(
        hub.list_datasets(&w.editor, false)
            .await
            .unwrap()
            .is_empty()
    );

    // 1. Nothing of it is in Tryton: every line is to create.
    let v1 = csv(
        &p,
        &[
            ("1", "FRAME", "Frame", "1"),
            ("1.1", "BOLT", "Bolt", "4"),
            ("1.2", "NUT", "Nut", "4"),
            ("2", "PLATE", "Plate", "2"),
        ],
    );
    let first = hub
        .upload_bom_dataset(
            &w.editor,
            w.pipeline.id,
            None,
            "v1.csv",
            Some(&asm),
            v1.clone(),
        )
        .await
        .unwrap();
    let first = settled(&w, &w.editor, first.id).await;
    assert_eq!(first.state, DatasetState::Ready, "{:?}", first.message);
    assert_eq!(first.name, "v1.csv");
    let bom = first.bom.as_ref().unwrap();
    assert_eq!(bom.root.as_deref(), Some(asm.as_str()));
    assert_eq!(first.counts.records, 4);
    assert_eq!(first.counts.create, 4);
    assert_eq!(first.counts.ticked, 4);

    // The tree: 1.1 and 1.2 under 1.
    let tree = hub
        .dataset_tree(
            &w.editor,
            first.id,
            TreeQuery {
                depth: 5,
                ..TreeQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(tree.total, 2);
    let one = find_node(&tree.nodes, "1").unwrap();
    assert_eq!(one.child_count, 2);
    assert_eq!(text(&one.children[0].record, "path"), Some("1.1"));
    assert_eq!(one.children[0].record.values["depth"], json!(1));
    assert_eq!(one.children[0].record.values["quantity"], json!(4.0));
    // Totals per part: bolts per assembly = 1 frame × 4.
    let parts = hub.dataset_parts(&w.editor, first.id).await.unwrap();
    let bolts = parts
        .iter()
        .find(|x| x.part_number == format!("{p}-BOLT"))
        .unwrap();
    assert_eq!(bolts.quantity, 4.0);
    // With a redaction rule on descriptions, the totals and the tree show them masked.
    let mask_descriptions = |enabled: bool| lockstep_app::RedactionPolicy {
        enabled,
        rules: vec![lockstep_app::RedactionRule {
            team_id: None,
            connection_id: None,
            object: None,
            field: None,
            pattern: Some("*description*".to_owned()),
            kind: lockstep_app::RedactionKind::Mask,
            keep: None,
            exempt_administrators: true,
        }],
    };
    hub.put_redaction_policy(&w.admin, mask_descriptions(true))
        .await
        .unwrap();
    let masked = hub.dataset_parts(&w.editor, first.id).await.unwrap();
    assert!(masked.iter().any(|x| x.description.is_some()));
    assert!(
        masked
            .iter()
            .all(|x| x.description.as_deref().is_none_or(|d| d == "••••"))
    );
    let tree = hub
        .dataset_tree(
            &w.editor,
            first.id,
            TreeQuery {
                depth: 1,
                ..TreeQuery::default()
            },
        )
        .await
        .unwrap();
    let one = find_node(&tree.nodes, "1").unwrap();
    assert!(
        one.children
            .iter()
            .all(|c| c.record.values["description"].is_null()
                || c.record.values["description"] == json!("••••"))
    );
    // The Administrator is exempted by the rule, and previews the owner's masked view.
    let clear = hub.dataset_parts(&w.admin, first.id).await.unwrap();
    assert!(
        clear
            .iter()
            .any(|x| x.description.as_deref().is_some_and(|d| d != "••••"))
    );
    let preview = hub
        .dataset_parts_as(
            &w.admin,
            first.id,
            Some(lockstep_app::ViewAs::User(w.editor.user())),
        )
        .await
        .unwrap();
    assert_eq!(preview, masked);
    hub.put_redaction_policy(&w.admin, mask_descriptions(false))
        .await
        .unwrap();

    // A thumbnail of the frame, kept sealed, shown on its node.
    let added = hub
        .add_dataset_part_files(
            &w.editor,
            first.id,
            Some(&format!("{frame}.png")),
            None,
            PNG.to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(added.len(), 1);
    let refused = hub
        .add_dataset_part_files(&w.editor, first.id, Some("NOPE-1.png"), None, PNG.to_vec())
        .await;
    assert!(
        matches!(refused, Err(AppError::Invalid { .. })),
        "{refused:?}"
    );
    let refused = hub
        .add_dataset_part_files(
            &w.editor,
            first.id,
            Some(&format!("{frame}.png")),
            None,
            b"<svg/>".to_vec(),
        )
        .await;
    assert!(
        matches!(refused, Err(AppError::Invalid { .. })),
        "{refused:?}"
    );

    // 2. Submit: the products and both BOMs are created.
    hub.submit_dataset(&w.editor, first.id).await.unwrap();
    let submitted = settled(&w, &w.editor, first.id).await;
    assert_eq!(
        submitted.state,
        DatasetState::Submitted,
        "{:?}",
        submitted.message
    );
    assert_eq!(submitted.counts.submitted, 4);
    assert_eq!(
        erp_lines(&w, &asm).await,
        [(frame.clone(), 1.0), (format!("{p}-PLATE"), 2.0)]
    );
    assert_eq!(
        erp_lines(&w, &frame).await,
        [(format!("{p}-BOLT"), 4.0), (format!("{p}-NUT"), 4.0)]
    );
    let frame_product = w
        .tryton
        .products_by_codes(std::slice::from_ref(&frame))
        .await
        .unwrap();
    let attachments = w.tryton.attachments_of(frame_product[0].id).await.unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0].data, PNG);

    // 3. Compared again, everything is unchanged; submitting it all again changes nothing.
    hub.refresh_dataset(&w.editor, first.id).await.unwrap();
    let again = settled(&w, &w.editor, first.id).await;
    assert_eq!(again.counts.unchanged, 4, "{:?}", again.counts);
    assert_eq!(again.counts.ticked, 0);
    hub.set_dataset_process(
        &w.editor,
        first.id,
        ProcessSelection::Status(RecordStatus::Unchanged),
        true,
    )
    .await
    .unwrap();
    let before = (erp_lines(&w, &asm).await, erp_lines(&w, &frame).await);
    hub.submit_dataset(&w.editor, first.id).await.unwrap();
    let resubmitted = settled(&w, &w.editor, first.id).await;
    assert_eq!(
        resubmitted.state,
        DatasetState::Submitted,
        "{:?}",
        resubmitted.message
    );
    assert_eq!(
        (erp_lines(&w, &asm).await, erp_lines(&w, &frame).await),
        before
    );
    assert_eq!(
        w.tryton
            .attachments_of(frame_product[0].id)
            .await
            .unwrap()
            .len(),
        1
    );

    // 4. The file changes: 6 bolts, the nut gone, a washer added, bolts also on the assembly.
    let v2 = csv(
        &p,
        &[
            ("1", "FRAME", "Frame", "1"),
            ("1.1", "BOLT", "Bolt", "6"),
            ("1.2", "WASHER", "Washer", "8"),
            ("2", "PLATE", "Plate", "2"),
            ("3", "BOLT", "Bolt", "2"),
        ],
    );
    let second = hub
        .upload_bom_dataset(
            &w.editor,
            w.pipeline.id,
            Some("v2"),
            "v2.csv",
            Some(&asm),
            v2,
        )
        .await
        .unwrap();
    let second = settled(&w, &w.editor, second.id).await;
    assert_eq!(second.state, DatasetState::Ready, "{:?}", second.message);
    let all = records(&w, &w.editor, second.id).await;
    assert_eq!(all.len(), 6);
    assert_eq!(line(&all, &asm, &frame).status, RecordStatus::Unchanged);
    let bolt = line(&all, &frame, &format!("{p}-BOLT"));
    assert_eq!(bolt.status, RecordStatus::Update);
    assert_eq!(bolt.changes.len(), 1);
    assert_eq!(bolt.changes[0].field, "quantity");
    assert_eq!(bolt.changes[0].destination, json!(4.0));
    assert_eq!(bolt.changes[0].value, json!(6.0));
    assert_eq!(
        line(&all, &frame, &format!("{p}-WASHER")).status,
        RecordStatus::Create
    );
    assert_eq!(
        line(&all, &asm, &format!("{p}-BOLT")).status,
        RecordStatus::Link
    );
    let nut = line(&all, &frame, &format!("{p}-NUT"));
    assert_eq!(nut.status, RecordStatus::DestinationOnly);
    assert!(
        !nut.process,
        "a line only Tryton has is not ticked by default"
    );
    assert_eq!(nut.values["quantity"], json!(4.0));
    // In the tree, the nut hangs under the frame.
    let tree = hub
        .dataset_tree(
            &w.editor,
            second.id,
            TreeQuery {
                depth: 5,
                ..TreeQuery::default()
            },
        )
        .await
        .unwrap();
    let frame_node = find_node(&tree.nodes, "1").unwrap();
    assert!(
        frame_node
            .children
            .iter()
            .any(|c| c.record.status == RecordStatus::DestinationOnly)
    );

    // 5. Submitted with the nut unticked: its line stays.
    hub.submit_dataset(&w.editor, second.id).await.unwrap();
    let done = settled(&w, &w.editor, second.id).await;
    assert_eq!(done.state, DatasetState::Submitted, "{:?}", done.message);
    assert_eq!(
        erp_lines(&w, &frame).await,
        [
            (format!("{p}-BOLT"), 6.0),
            (format!("{p}-NUT"), 4.0),
            (format!("{p}-WASHER"), 8.0)
        ]
    );
    assert_eq!(
        erp_lines(&w, &asm).await,
        [
            (format!("{p}-BOLT"), 2.0),
            (frame.clone(), 1.0),
            (format!("{p}-PLATE"), 2.0)
        ]
    );

    // 6. Ticked, the nut's line is unlinked; the nut itself stays a product.
    hub.refresh_dataset(&w.editor, second.id).await.unwrap();
    let fresh = settled(&w, &w.editor, second.id).await;
    assert_eq!(fresh.counts.destination_only, 1, "{:?}", fresh.counts);
    let all = records(&w, &w.editor, second.id).await;
    let nut = line(&all, &frame, &format!("{p}-NUT"));
    hub.set_dataset_process(
        &w.editor,
        second.id,
        ProcessSelection::Rows(vec![nut.row]),
        true,
    )
    .await
    .unwrap();
    hub.submit_dataset(&w.editor, second.id).await.unwrap();
    let done = settled(&w, &w.editor, second.id).await;
    assert_eq!(done.state, DatasetState::Submitted, "{:?}", done.message);
    assert_eq!(
        erp_lines(&w, &frame).await,
        [(format!("{p}-BOLT"), 6.0), (format!("{p}-WASHER"), 8.0)]
    );
    assert_eq!(
        w.tryton
            .products_by_codes(&[format!("{p}-NUT")])
            .await
            .unwrap()
            .len(),
        1
    );

    // 7. The files: another member, a Viewer it is not shared with and another organization
    //    see nothing (404, as a missing id); the owner does.
    let file_id = added[0].id.clone();
    let file = hub
        .dataset_part_file(&w.editor, first.id, &file_id)
        .await
        .unwrap();
    assert_eq!(file.bytes, PNG);
    assert_eq!(file.view.content_type, "image/png");
    for who in [&w.other_editor, &w.viewer, &w.outsider] {
        let seen = hub.dataset_part_file(who, first.id, &file_id).await;
        assert!(matches!(seen, Err(AppError::NotFound(_))), "{seen:?}");
        let tree = hub.dataset_tree(who, first.id, TreeQuery::default()).await;
        assert!(matches!(tree, Err(AppError::NotFound(_))), "{tree:?}");
    }
    // Shared with the Viewer, it may be read.
    hub.share_dataset(&w.editor, first.id, w.viewer.user())
        .await
        .unwrap();
    assert!(
        hub.dataset_part_file(&w.viewer, first.id, &file_id)
            .await
            .is_ok()
    );
    // An Administrator sees it too.
    assert!(
        hub.dataset_part_file(&w.admin, first.id, &file_id)
            .await
            .is_ok()
    );

    // 8. Untouched past the retention, the data sets and their files are gone.
    w.clock.advance(Duration::days(6));
    assert!(hub.sweep_datasets().await.unwrap() >= 2);
    let gone = hub.dataset_part_file(&w.editor, first.id, &file_id).await;
    assert!(matches!(gone, Err(AppError::NotFound(_))), "{gone:?}");
    let left = lockstep_storage::testing::snapshot(&t.store).await.unwrap();
    assert!(
        !left.iter().any(|l| l.starts_with("dataset_files")),
        "{:?}",
        left.iter()
            .filter(|l| l.starts_with("dataset_"))
            .collect::<Vec<_>>()
    );
}

lockstep_storage::on_both_stores!(a_solidworks_bom_is_a_tree_and_compared_with_the_syteline_export);
async fn a_solidworks_bom_is_a_tree_and_compared_with_the_syteline_export(t: TestStore) {
    let Some((config, password)) = peer() else {
        return;
    };
    let _turn = TRYTON.lock().await;
    let w = world(&t, &config, &password).await;
    let hub = &w.hub;
    let ds = hub
        .upload_bom_dataset(
            &w.editor,
            w.pipeline.id,
            None,
            "ACV0158450_sw.csv",
            None,
            testdata("solidworks/ACV0158450_sw.csv"),
        )
        .await
        .unwrap();
    let ds = settled(&w, &w.editor, ds.id).await;
    assert_eq!(ds.state, DatasetState::Ready, "{:?}", ds.message);
    let bom = ds.bom.clone().unwrap();
    assert_eq!(bom.root.as_deref(), Some("ACV0158450"));
    assert!(bom.profile.get("columns").is_some(), "{:?}", bom.profile);

    // 2.17.1 hangs under 2.17; its part number is blank: an error on that row, not dropped.
    let tree = hub
        .dataset_tree(
            &w.editor,
            ds.id,
            TreeQuery {
                depth: 3,
                limit: 500,
                ..TreeQuery::default()
            },
        )
        .await
        .unwrap();
    let node = find_node(&tree.nodes, "2.17").unwrap();
    let weld_nut = node
        .children
        .iter()
        .find(|c| text(&c.record, "path") == Some("2.17.1"))
        .unwrap();
    assert_eq!(weld_nut.record.values["quantity"], json!(8.0));
    assert_eq!(weld_nut.record.values["depth"], json!(2));
    assert!(
        weld_nut
            .record
            .issues
            .iter()
            .any(|i| i.field == "part_number" && i.level == lockstep_app::engine::Level::Error),
        "{:?}",
        weld_nut.record.issues
    );
    // A node's children on their own (the UI expands one node at a time).
    let children = hub
        .dataset_tree(
            &w.editor,
            ds.id,
            TreeQuery {
                parent: Some(node.record.row),
                ..TreeQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(children.total, node.child_count);
    assert_eq!(text(&children.nodes[0].record, "path"), Some("2.17.1"));
    // "Apply to children": unticking 2.17 unticks its rows too.
    hub.set_dataset_process(
        &w.editor,
        ds.id,
        ProcessSelection::Subtrees(vec![node.record.row]),
        false,
    )
    .await
    .unwrap();
    let all = records(&w, &w.editor, ds.id).await;
    for r in all
        .iter()
        .filter(|r| text(r, "path").is_some_and(|p| p == "2.17" || p.starts_with("2.17.")))
    {
        assert!(!r.process, "{:?} is still ticked", text(r, "path"));
    }
    assert!(all.iter().any(|r| r.process));

    // Compared with SyteLine's export of the same product: the differences found by hand.
    hub.compare_bom_dataset(
        &w.editor,
        ds.id,
        Some("ACV0158450_syteline.xlsx"),
        testdata("erp/ACV0158450_syteline.xlsx"),
    )
    .await
    .unwrap();
    let compared = settled(&w, &w.editor, ds.id).await;
    assert_eq!(
        compared.state,
        DatasetState::Ready,
        "{:?}",
        compared.message
    );
    assert_eq!(
        compared.bom.as_ref().unwrap().against.as_deref(),
        Some("ACV0158450_syteline.xlsx")
    );
    let all = records(&w, &w.editor, ds.id).await;
    // The gasket in the pump subassembly: 2 in CAD (2.23), 1 in the ERP.
    let gasket = line(&all, "ACV0158450-1", "3510-0400-001");
    assert_eq!(text(gasket, "path"), Some("2.23"));
    assert_eq!(gasket.status, RecordStatus::Update);
    assert_eq!(gasket.changes[0].field, "quantity");
    assert_eq!(gasket.changes[0].destination, json!(1.0));
    assert_eq!(gasket.changes[0].value, json!(2.0));
    // The bushing of the vacuum gauge kit is elsewhere in the ERP: a line to link.
    assert_eq!(
        line(&all, "3180-UNV2-001", "3002-3825-001").status,
        RecordStatus::Link
    );
    // The ERP's paint on the assembly: only there.
    let paint = line(&all, "ACV0158450", "5474-0001-081");
    assert_eq!(paint.status, RecordStatus::DestinationOnly);
    assert_eq!(paint.values["quantity"], json!(0.5));
    assert_eq!(compared.counts.link, 1);
    assert_eq!(compared.counts.destination_only, 156);
    // Counts add up.
    let c = &compared.counts;
    assert_eq!(
        c.create + c.link + c.update + c.unchanged + c.destination_only,
        c.records
    );

    // The pipeline's import profile is the Administrators' to save.
    let refused = hub
        .set_pipeline_bom_settings(
            &w.editor,
            w.pipeline.id,
            lockstep_app::engine::BomSettings::default(),
        )
        .await;
    assert!(
        matches!(refused, Err(AppError::Forbidden { .. })),
        "{refused:?}"
    );
    let mut profile = bom.profile.clone();
    profile["header_row"] = json!(999);
    let saved = hub
        .set_pipeline_bom_settings(
            &w.admin,
            w.pipeline.id,
            lockstep_app::engine::BomSettings {
                profile: Some(profile),
                match_by_name: true,
            },
        )
        .await;
    assert!(saved.is_ok(), "{saved:?}");
    // Read with that (wrong) profile, the file is refused with what is wrong.
    let refused = hub
        .upload_bom_dataset(
            &w.editor,
            w.pipeline.id,
            None,
            "ACV0158450_sw.csv",
            None,
            testdata("solidworks/ACV0158450_sw.csv"),
        )
        .await;
    assert!(
        matches!(refused, Err(AppError::Invalid { field: "file", .. })),
        "{refused:?}"
    );
}
