//! Pages: bills of materials (in process, see `web.rs`) against the real Tryton `scripts/test`
//! starts (`ensure_tryton`; skipped with `LOCKSTEP_TEST_SKIP_TRYTON=1`): the upload form lists
//! only pipelines into Tryton, refuses a file it cannot read next to the file input and keeps
//! nothing; SOLIDWORKS' export becomes a tree whose assemblies open one level at a time, with
//! the blank part number of 2.17.1 marked on its cell; "apply to children" ticks and unticks a
//! whole assembly; a part's image is served `no-store`/`nosniff` to those who may see the data
//! set and 404 to another Editor; the totals per part; the import profile editor only for
//! Administrators, saved on the pipeline.

use super::pipelines::{pg, postgres_connection, unique};
use super::web::{Browser, PASSWORD, Page};
use super::web_connections::post_multipart;
use axum::http::Method;
use lockstep_app::Password;
use lockstep_domain::Role;
use serde_json::json;
use std::path::PathBuf;

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// `shared/testdata/bom`, beside the repository (or under `LOCKSTEP_TESTDATA`).
fn testdata(relative: &str) -> Vec<u8> {
    let base = match std::env::var_os("LOCKSTEP_TESTDATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/bom"),
    };
    std::fs::read(base.join(relative)).unwrap()
}

/// The Tryton peer's (url, database, user, password); `None` when the tests are to skip it.
#[allow(clippy::print_stderr)]
fn tryton() -> Option<(String, String, String, String)> {
    let var = |name: &str| std::env::var(name).ok();
    match var("LOCKSTEP_TEST_TRYTON_URL") {
        Some(url) => Some((
            url,
            var("LOCKSTEP_TEST_TRYTON_DATABASE").unwrap(),
            var("LOCKSTEP_TEST_TRYTON_USER").unwrap(),
            var("LOCKSTEP_TEST_TRYTON_PASSWORD").unwrap(),
        )),
        None if var("LOCKSTEP_TEST_SKIP_TRYTON").as_deref() == Some("1") => {
            eprintln!("skipped: this test needs Tryton (LOCKSTEP_TEST_SKIP_TRYTON=1)");
            None
        }
        None => panic!(
            "LOCKSTEP_TEST_TRYTON_URL is not set: run via scripts/test (or `source \
             scripts/lib/services.sh; source scripts/lib/peers.sh; ensure_tryton` first), or set \
             LOCKSTEP_TEST_SKIP_TRYTON=1"
        ),
    }
}

/// The `data-row` of the tree line whose item number is `path`.
fn row_of(page: &Page, path: &str) -> u64 {
    let at = page
        .body
        .find(&format!("data-path=\"{path}\""))
        .unwrap_or_else(|| panic!("no line {path}: {}", page.body));
    let before = &page.body[..at];
    let start = before.rfind("data-row=\"").unwrap() + "data-row=\"".len();
    let rest = &page.body[start..];
    rest[..rest.find('"').unwrap()].parse().unwrap()
}

/// The markup of the tree line `path`, up to the next line.
fn line_html<'a>(page: &'a Page, path: &str) -> &'a str {
    let at = page
        .body
        .find(&format!("data-path=\"{path}\""))
        .unwrap_or_else(|| panic!("no line {path}: {}", page.body));
    let rest = &page.body[at..];
    let end = rest[1..].find("data-path=").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

fn ticked(page: &Page, row: u64) -> bool {
    assert!(
        page.body.contains(&format!("id=\"tree-tick-{row}\"")),
        "no tick for {row}"
    );
    page.body
        .contains(&format!("id=\"tree-tick-{row}\" value=\"on\" checked"))
}

/// Polls the progress fragment until the data set is neither pulling nor submitting.
async fn settled(browser: &mut Browser, path: &str) {
    for _ in 0..600 {
        let fragment = browser.get(&format!("{path}/progress")).await;
        if fragment.status.as_u16() == 286 {
            return;
        }
        assert_eq!(fragment.status, 200, "{}", fragment.body);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the data set stayed busy for 60 s");
}

#[tokio::test]
async fn members_upload_a_bom_review_its_tree_and_administrators_save_its_profile() {
    let Some((url, database, user, password)) = tryton() else {
        return;
    };
    let (mut e, mut admin, mut editor, _viewer) = super::web::web_env("loopback").await;
    let created = e
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "ERP", "kind": "tryton",
                "config": {"url": url, "database": database, "user": user},
                "secrets": {"password": password}})),
        )
        .await;
    assert_eq!(created.status, 201, "{}\n{}", created.body, e.logs.text());
    let erp = created.json()["id"].as_str().unwrap().to_owned();
    let created = e
        .admin(
            Method::POST,
            "/api/v1/pipelines",
            Some(json!({"name": "BOMs into Tryton",
                "source": {"connection_id": erp, "object": "bom"},
                "destination": {"connection_id": erp, "object": "bom"},
                "mode": "append"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let pipeline = created.json()["id"].as_str().unwrap().to_owned();
    // A pipeline into PostgreSQL is not offered for a bill of materials.
    let db = pg().await;
    let table = unique("wbom");
    db.batch_execute(&format!(
        "CREATE TABLE public.{table} (id bigint PRIMARY KEY);"
    ))
    .await
    .unwrap();
    let warehouse = postgres_connection(&mut e, "Warehouse").await;
    let other = e
        .admin(
            Method::POST,
            "/api/v1/pipelines",
            Some(json!({"name": "Not a BOM",
                "source": {"connection_id": warehouse, "object": format!("public.{table}")},
                "destination": {"connection_id": warehouse, "object": format!("public.{table}")},
                "mode": "upsert", "key": ["id"]})),
        )
        .await;
    assert_eq!(other.status, 201, "{}", other.body);
    let other = other.json()["id"].as_str().unwrap().to_owned();

    let list = editor.get("/datasets").await;
    assert_eq!(list.status, 200, "{}", list.body);
    let upload_form = &list.body[list.body.find("id=\"upload-form\"").unwrap()..];
    assert!(upload_form.contains(&format!(
        r#"<option value="{pipeline}">BOMs into Tryton</option>"#
    )));
    assert!(
        !upload_form.contains(&other),
        "a pipeline into PostgreSQL is offered"
    );
    let csrf = editor.csrf.clone();

    // A file that cannot be read: the reason next to the file input, nothing kept.
    let refused = post_multipart(
        &e,
        &editor,
        "/datasets/upload",
        &[
            ("csrf", None, csrf.as_bytes()),
            ("pipeline_id", None, pipeline.as_bytes()),
            ("file", Some("empty.csv"), b"no,header,here\n1,2,3\n"),
        ],
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("id=\"bom-file-error\""),
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains(&format!(r#"<option value="{pipeline}" selected>"#))
    );
    let editor_caller = e.hub.authenticate(&e.editor).await.unwrap();
    assert!(
        e.hub
            .list_datasets(&editor_caller, false)
            .await
            .unwrap()
            .is_empty()
    );
    // Without the CSRF token first, nothing is read.
    let forged = post_multipart(
        &e,
        &editor,
        "/datasets/upload",
        &[
            ("pipeline_id", None, pipeline.as_bytes()),
            (
                "file",
                Some("a.csv"),
                &testdata("solidworks/ACV0158450_sw.csv"),
            ),
        ],
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);

    // SOLIDWORKS' export.
    let uploaded = post_multipart(
        &e,
        &editor,
        "/datasets/upload",
        &[
            ("csrf", None, csrf.as_bytes()),
            ("pipeline_id", None, pipeline.as_bytes()),
            ("root_part", None, b""),
            (
                "file",
                Some("ACV0158450_sw.csv"),
                &testdata("solidworks/ACV0158450_sw.csv"),
            ),
        ],
    )
    .await;
    assert_eq!(uploaded.status, 303, "{}", uploaded.body);
    let location = uploaded.location().unwrap().to_owned();
    let path = location.split('?').next().unwrap().to_owned();
    assert!(path.starts_with("/datasets/"), "{location}");
    settled(&mut editor, &path).await;
    let page = editor.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"bom-tree\""), "{}", page.body);
    assert!(page.body.contains("ACV0158450_sw.csv"));
    // Two levels: 2 and its children; 2.17's children come when it is opened.
    let assembly = row_of(&page, "2.17");
    assert!(line_html(&page, "2").contains(" open"));
    assert!(
        line_html(&page, "2.17").contains(&format!(
            "hx-get=\"{path}/tree?parent={assembly}\" hx-trigger=\"toggle once\""
        )),
        "{}",
        line_html(&page, "2.17")
    );
    assert!(!page.body.contains("data-path=\"2.17.1\""));
    let children = editor.get(&format!("{path}/tree?parent={assembly}")).await;
    assert_eq!(children.status, 200, "{}", children.body);
    assert!(!children.body.contains("<html"));
    let nut = line_html(&children, "2.17.1");
    assert!(
        nut.contains("c-part_number issue-error"),
        "the blank part number is not marked: {nut}"
    );
    assert!(nut.contains("indent-2"));
    // Without JavaScript every level shows at once.
    let all = editor.get(&format!("{path}?levels=all")).await;
    assert!(all.body.contains("data-path=\"2.17.1\""));
    assert!(!all.body.contains("hx-get"), "a level is still to load");

    // "Apply to children": ticked, then unticked, with everything below 2.17.
    let nut_row = row_of(&children, "2.17.1");
    let row = assembly.to_string();
    let tick = format!("tick.{row}");
    let shown = format!("shown.{row}");
    let was = format!("was.{row}");
    let done = editor
        .post(
            &format!("{path}/tree/ticks"),
            &[
                (shown.as_str(), "1"),
                (tick.as_str(), "on"),
                ("subtrees", "on"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let children = editor.get(&format!("{path}/tree?parent={assembly}")).await;
    assert!(ticked(&children, nut_row));
    let done = editor
        .post(
            &format!("{path}/tree/ticks"),
            &[
                (shown.as_str(), "1"),
                (was.as_str(), "1"),
                ("subtrees", "on"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.location().unwrap().contains("notice=ticks"));
    let children = editor.get(&format!("{path}/tree?parent={assembly}")).await;
    assert!(!ticked(&children, nut_row));
    let page = editor.get(&path).await;
    assert!(!ticked(&page, assembly));

    // A thumbnail for 2.17's part, served only to those who may see the data set.
    let csrf = editor.csrf.clone();
    let added = post_multipart(
        &e,
        &editor,
        &format!("{path}/files"),
        &[
            ("csrf", None, csrf.as_bytes()),
            ("part_number", None, b""),
            ("file", Some("0300-1980-003.png"), PNG),
        ],
    )
    .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let page = editor.get(&path).await;
    let line = line_html(&page, "2.17");
    let src = &line[line.find("<img src=\"").unwrap() + "<img src=\"".len()..];
    let src = src[..src.find('"').unwrap()].to_owned();
    assert!(src.starts_with(&format!("{path}/files/")), "{src}");
    assert!(line.contains("alt=\"0300-1980-003\""));
    let image = editor.get(&src).await;
    assert_eq!(image.status, 200);
    assert_eq!(image.headers["content-type"], "image/png");
    assert_eq!(image.headers["cache-control"], "no-store");
    assert_eq!(image.headers["x-content-type-options"], "nosniff");
    let refused = post_multipart(
        &e,
        &editor,
        &format!("{path}/files"),
        &[
            ("csrf", None, csrf.as_bytes()),
            ("file", Some("NOT-A-PART.png"), PNG),
        ],
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("id=\"files-file-error\""));

    // Another Editor: 404 for the page, the tree, the file and the parts.
    let admin_caller = e.hub.authenticate(&e.admin).await.unwrap();
    let invitation = e
        .hub
        .invite_user(&admin_caller, "eve@alpha.io", Role::Editor)
        .await
        .unwrap();
    e.hub
        .accept_invitation(
            invitation.token.expose(),
            &Password::new(PASSWORD.to_owned()),
            "Eve",
        )
        .await
        .unwrap();
    let mut eve = Browser::signed_in(&e.app, "eve@alpha.io").await;
    for p in [
        path.clone(),
        format!("{path}/tree?parent={assembly}"),
        src.clone(),
        format!("{path}/parts"),
    ] {
        assert_eq!(eve.get(&p).await.status, 404, "{p}");
    }

    // The totals per part.
    let parts = editor.get(&format!("{path}/parts")).await;
    assert_eq!(parts.status, 200, "{}", parts.body);
    assert!(parts.body.contains("0300-1980-003"));

    // The import profile: only Administrators see and save it.
    let page = editor.get(&path).await;
    assert!(!page.body.contains("id=\"profile-form\""));
    let refused = editor
        .post(&format!("{path}/profile"), &[("hierarchy", "flat")])
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let page = admin.get(&path).await;
    assert!(page.body.contains("id=\"profile-form\""), "{}", page.body);
    let form = &page.body[page.body.find("id=\"profile-columns\"").unwrap()..];
    assert!(form.contains("PART NUMBER"));
    assert!(form.contains(r#"<option value="part_number" selected>"#));
    // A role that is not one is refused next to its select.
    let refused = admin
        .post(&format!("{path}/profile"), &[("role.0", "price")])
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let saved = admin
        .post(
            &format!("{path}/profile"),
            &[
                ("header_row", "2"),
                ("hierarchy", "dotted"),
                ("separator", "."),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let spec = e
        .hub
        .get_pipeline(&admin_caller, pipeline.parse().unwrap())
        .await
        .unwrap()
        .spec;
    let bom = spec.bom.unwrap();
    assert!(!bom.match_by_name);
    let profile = bom.profile.unwrap();
    assert_eq!(profile["header_row"], json!(2));
    assert_eq!(
        profile["hierarchy"],
        json!({"kind": "dotted", "separator": "."})
    );
    db.batch_execute(&format!("DROP TABLE IF EXISTS public.{table};"))
        .await
        .unwrap();
}
