//! Data sets from the command line against real PostgreSQL tables: `lockstep dataset pull`,
//! `list`, `show`, `submit` (refused while ticked records have errors, then written), `delete`;
//! and a hub killed with SIGKILL in the middle of a pull and of a submit: the pull ends `failed`
//! with nothing of it kept, the destination is exactly as before the submit.

use super::*;

/// The number on the line of `lockstep dataset pull|show` that starts with `label`.
fn count_of(text: &str, label: &str) -> u64 {
    text.lines()
        .map(str::trim_start)
        .find_map(|line| {
            let rest = line.strip_prefix(label)?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no line {label:?} in {text}"))
}

/// The data set id that `lockstep dataset pull|show` prints first ("Data set ID …").
fn id_of(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("Data set "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no data set id in {text}"))
        .to_owned()
}

async fn create_pipeline(
    http: &reqwest::Client,
    server: &Server,
    token: &str,
    name: &str,
    connections: (&str, &str),
    objects: (&str, &str),
) -> String {
    let (status, pipeline) = post(
        http,
        server,
        "/api/v1/pipelines",
        Some(token),
        json!({"name": name, "source": {"connection_id": connections.0, "object": objects.0},
            "destination": {"connection_id": connections.1, "object": objects.1},
            "mappings": [{"source": "id", "destination": "id"}, {"source": "part_no", "destination": "item_code"},
                {"source": "price", "destination": "unit_price"}],
            "rules": [{"kind": "validation", "expression": "price >= 0.0"}],
            "mode": "upsert", "key": ["id"]}),
    )
    .await;
    assert_eq!(status, 201, "{pipeline}");
    pipeline["id"].as_str().unwrap().to_owned()
}

/// A checksum of a destination table: its count and every row's values.
async fn fingerprint(db: &tokio_postgres::Client, table: &str) -> (i64, String) {
    let row = db
        .query_one(
            &format!(
                "SELECT count(*), coalesce(md5(string_agg(id || '|' || item_code || '|' || unit_price, ',' ORDER BY id)), '')
                 FROM public.{table}"
            ),
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Waits until the data set is in one of `states`; answers it.
async fn wait_for_dataset(
    http: &reqwest::Client,
    server: &Server,
    token: &str,
    id: &str,
    states: &[&str],
    timeout: Duration,
) -> Value {
    wait_for(
        http,
        server,
        token,
        &format!("/api/v1/datasets/{id}"),
        states,
        timeout,
    )
    .await
}

#[tokio::test]
async fn datasets_are_pulled_listed_and_submitted_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let init = init_one_share(&data);
    let server = serve_with(
        &data,
        &["--egress-allow", "loopback"],
        "warn",
        Stdio::inherit(),
    );
    let http = client(&data);
    unseal_with_an_administrator(&http, &server, &init).await;
    let token = admin_session(&http, &server).await;

    // The source: 100 parts, two of them with a negative price (an error under the rule). The
    // destination: parts 1..=50, 41..=50 at another price, and 5 parts only it has.
    let db = pg_client().await;
    let suffix = &uuid::Uuid::now_v7().simple().to_string()[20..];
    let source = format!("e2e_ds_parts_{suffix}");
    let target = format!("e2e_ds_items_{suffix}");
    db.batch_execute(&format!(
        "CREATE TABLE public.{source} (id bigint PRIMARY KEY, part_no text NOT NULL, price numeric(12,2) NOT NULL);
         INSERT INTO public.{source} SELECT g, 'P-' || g, CASE WHEN g IN (60, 70) THEN -1 ELSE g END FROM generate_series(1, 100) g;
         CREATE TABLE public.{target} (id bigint PRIMARY KEY, item_code text NOT NULL, unit_price numeric(12,2) NOT NULL);
         INSERT INTO public.{target} SELECT g, 'P-' || g, CASE WHEN g > 40 THEN g + 0.5 ELSE g END FROM generate_series(1, 50) g;
         INSERT INTO public.{target} SELECT g, 'OLD-' || g, 1 FROM generate_series(1001, 1005) g;"
    ))
    .await
    .unwrap();
    let src = pg_connection(&http, &server, &token, "source").await;
    let dst = pg_connection(&http, &server, &token, "warehouse").await;
    create_pipeline(
        &http,
        &server,
        &token,
        "items",
        (&src, &dst),
        (&format!("public.{source}"), &format!("public.{target}")),
    )
    .await;
    let before = fingerprint(&db, &target).await;

    let ca = data.join("tls/ca.pem");
    let dataset_cli = |args: &[&str]| {
        let mut all = vec!["dataset"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--addr", &server.addr, "--ca-cert", ca.to_str().unwrap()]);
        let (ok, stdout, stderr) = cli(&all, "", &[("LOCKSTEP_TOKEN", token.as_str())]);
        assert!(
            !stdout.contains(&token) && !stderr.contains(&token),
            "the token was printed"
        );
        (ok, stdout, stderr)
    };

    // Pull: it waits until the data set is ready and prints the counts of each status.
    let (ok, stdout, stderr) = dataset_cli(&["pull", "items", "--name", "first look"]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("\"first look\": ready"), "{stdout}");
    let first = id_of(&stdout);
    assert_eq!(count_of(&stdout, "create"), 50, "{stdout}");
    assert_eq!(count_of(&stdout, "update"), 10, "{stdout}");
    assert_eq!(count_of(&stdout, "unchanged"), 40, "{stdout}");
    assert_eq!(count_of(&stdout, "destination_only"), 5, "{stdout}");
    assert_eq!(count_of(&stdout, "with errors"), 2, "{stdout}");
    assert_eq!(count_of(&stdout, "ticked"), 60, "{stdout}");
    assert!(
        stdout.contains("2 with errors: fix or untick them"),
        "{stdout}"
    );
    assert!(stdout.contains("100 records read"), "{stdout}");

    // A refused submit names the records in the way and their errors, exits non-zero and
    // writes nothing.
    let (ok, stdout, stderr) = dataset_cli(&["submit", &first]);
    assert!(!ok, "a submit with ticked errors succeeded: {stdout}");
    assert!(stderr.contains("the submit was refused"), "{stderr}");
    let blocked: Vec<&str> = stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("row "))
        .collect();
    assert_eq!(blocked.len(), 2, "{stderr}");
    assert!(
        blocked.iter().all(|l| l.contains("price")),
        "each row names its field: {stderr}"
    );
    assert!(!stderr.contains("-1.00"), "a value was printed: {stderr}");
    assert_eq!(
        fingerprint(&db, &target).await,
        before,
        "nothing was written"
    );

    // A data set without the faulty parts, by its filter; submitted by its name.
    let (ok, stdout, stderr) = dataset_cli(&[
        "pull",
        "items",
        "--name",
        "clean",
        "--filter",
        "price >= 0.0",
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    let clean = id_of(&stdout);
    assert_eq!(count_of(&stdout, "create"), 48, "{stdout}");
    assert_eq!(count_of(&stdout, "ticked"), 58, "{stdout}");
    assert!(stdout.contains("(2 filtered out)"), "{stdout}");

    let (ok, stdout, stderr) = dataset_cli(&["list"]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two data sets: {stdout}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("EXPIRES"),
        "{stdout}"
    );
    let row = lines.iter().find(|l| l.starts_with(&first)).unwrap();
    assert!(
        row.contains("first look") && row.contains("ready") && row.contains(" 105 "),
        "{stdout}"
    );

    let (ok, stdout, stderr) = dataset_cli(&["submit", "clean"]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("submitted: 58 records written"), "{stdout}");
    let (count, _) = fingerprint(&db, &target).await;
    assert_eq!(count, 55 + 48, "the new parts were inserted, none deleted");
    let updated: i64 = db
        .query_one(
            &format!("SELECT count(*) FROM public.{target} WHERE id BETWEEN 41 AND 50 AND unit_price = id"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(updated, 10, "the changed parts were updated");
    let kept: i64 = db
        .query_one(
            &format!("SELECT count(*) FROM public.{target} WHERE item_code LIKE 'OLD-%'"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 5, "the destination's own records were left alone");

    let (ok, stdout, stderr) = dataset_cli(&["show", &clean]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(": submitted"), "{stdout}");
    assert!(
        stdout.contains("last submit: 58 written, 0 failed"),
        "{stdout}"
    );

    // Delete, and readable errors.
    let (ok, stdout, stderr) = dataset_cli(&["delete", &first]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("Deleted data set {first}")),
        "{stdout}"
    );
    let (ok, stdout, _) = dataset_cli(&["list"]);
    assert!(
        ok && !stdout.contains(&first) && stdout.contains(&clean),
        "{stdout}"
    );
    let (ok, _, stderr) = dataset_cli(&["show", &first]);
    assert!(!ok && stderr.contains("HTTP 404"), "{stderr}");
    let (ok, _, stderr) = dataset_cli(&["pull", "no such pipeline"]);
    assert!(!ok && stderr.contains("no pipeline named"), "{stderr}");
    let (ok, _, stderr) = dataset_cli(&["submit", "no such data set"]);
    assert!(!ok && stderr.contains("no data set named"), "{stderr}");
    let (ok, _, stderr) = dataset_cli(&["pull", "items", "--filter", "price >>> 1"]);
    assert!(!ok && stderr.contains("filter"), "{stderr}");

    db.batch_execute(&format!(
        "DROP TABLE public.{source}; DROP TABLE public.{target}"
    ))
    .await
    .unwrap();
}

/// Records stored for a data set in the hub's PostgreSQL store.
async fn stored_chunks(store: &tokio_postgres::Client, id: &str) -> i64 {
    store
        .query_one(
            "SELECT count(*) FROM dataset_chunks WHERE dataset_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0)
}

/// Restarts a killed hub on the same store and signs in again.
async fn restart(
    data: &Path,
    extra: &[&str],
    http: &reqwest::Client,
    init: &Value,
) -> (Server, String) {
    let server = serve_with(data, extra, "warn", Stdio::inherit());
    let (status, _) = post(
        http,
        &server,
        "/api/v1/sys/unseal",
        None,
        json!({"key": init["unseal_keys"][0]}),
    )
    .await;
    assert_eq!(status, 200);
    let token = admin_session(http, &server).await;
    (server, token)
}

/// Waits until no query of PostgreSQL touches `table` any more (a killed hub's statements
/// run on until they end, then roll back).
async fn wait_until_idle(db: &tokio_postgres::Client, table: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let busy: i64 = db
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state <> 'idle' AND query LIKE $1",
                &[&format!("%{table}%")],
            )
            .await
            .unwrap()
            .get(0);
        if busy == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "a killed hub's query never ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_killed_hub_keeps_no_half_pulled_data_set_and_writes_no_half_submit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (url, _, name) = TestStore::empty_url(Backend::Postgres).await.unwrap();
    let _store_db = DropDb(name);
    let (ok, stdout, stderr) = cli(
        &[
            "vault",
            "init",
            "--data",
            data.to_str().unwrap(),
            "--database",
            &url,
            "--key-shares",
            "1",
            "--key-threshold",
            "1",
            "--format",
            "json",
        ],
        "",
        &[],
    );
    assert!(ok, "{stderr}");
    let init: Value = serde_json::from_str(stdout.trim()).unwrap();
    let extra = [
        "--database",
        &url,
        "--egress-allow",
        "loopback",
        "--dataset-lease",
        "5",
        "--dataset-sweep-seconds",
        "1",
    ];
    let server = serve_with(&data, &extra, "warn", Stdio::inherit());
    let http = client(&data);
    unseal_with_an_administrator(&http, &server, &init).await;
    let token = admin_session(&http, &server).await;
    let (store, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);

    // 300,000 parts, read slowly through a view (20 ms every 1000 rows); a destination of 1000
    // parts whose writes are slow too (a trigger: 20 ms every 1000 rows written).
    let db = pg_client().await;
    let suffix = &uuid::Uuid::now_v7().simple().to_string()[20..];
    let source = format!("e2e_dsk_parts_{suffix}");
    let target = format!("e2e_dsk_items_{suffix}");
    db.batch_execute(&format!(
        "CREATE OR REPLACE FUNCTION lockstep_test_slower(n bigint) RETURNS boolean LANGUAGE plpgsql AS
           $$ BEGIN IF n % 1000 = 0 THEN PERFORM pg_sleep(0.02); END IF; RETURN true; END $$;
         CREATE OR REPLACE FUNCTION lockstep_test_slow_write() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM lockstep_test_slower(NEW.id); RETURN NEW; END $$;
         CREATE TABLE public.{source} (id bigint PRIMARY KEY, part_no text NOT NULL, price numeric(12,2) NOT NULL);
         INSERT INTO public.{source} SELECT g, 'P-' || g, (g % 1000) / 10.0 FROM generate_series(1, 300000) g;
         CREATE VIEW public.{source}_slow AS SELECT * FROM public.{source} WHERE lockstep_test_slower(id);
         CREATE TABLE public.{target} (id bigint PRIMARY KEY, item_code text NOT NULL, unit_price numeric(12,2) NOT NULL);
         INSERT INTO public.{target} SELECT g, 'OLD-' || g, 999 FROM generate_series(1, 1000) g;
         CREATE TRIGGER slow_write BEFORE INSERT OR UPDATE ON public.{target}
           FOR EACH ROW EXECUTE FUNCTION lockstep_test_slow_write();"
    ))
    .await
    .unwrap();
    let src = pg_connection(&http, &server, &token, "source").await;
    let dst = pg_connection(&http, &server, &token, "warehouse").await;
    let slow = create_pipeline(
        &http,
        &server,
        &token,
        "slow",
        (&src, &dst),
        (
            &format!("public.{source}_slow"),
            &format!("public.{target}"),
        ),
    )
    .await;
    let fast = create_pipeline(
        &http,
        &server,
        &token,
        "fast",
        (&src, &dst),
        (&format!("public.{source}"), &format!("public.{target}")),
    )
    .await;
    let before = fingerprint(&db, &target).await;

    // 1. Killed in the middle of a pull: records were stored, the source not read to the end.
    let (status, pulled) = post(
        &http,
        &server,
        "/api/v1/datasets",
        Some(&token),
        json!({"pipeline_id": slow, "name": "killed pull"}),
    )
    .await;
    assert_eq!(status, 202, "{pulled}");
    let pulled = pulled["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, d) = get(
            &http,
            &server,
            &format!("/api/v1/datasets/{pulled}"),
            Some(&token),
        )
        .await;
        assert_eq!(
            d["state"], "pulling",
            "the pull ended before it could be killed: {d}"
        );
        if d["counts"]["read"].as_u64().unwrap_or(0) > 0 && stored_chunks(&store, &pulled).await > 0
        {
            break;
        }
        assert!(Instant::now() < deadline, "{d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    drop(server);
    assert!(
        stored_chunks(&store, &pulled).await > 0,
        "a half-written data set is on disk"
    );

    let (server, token) = restart(&data, &extra, &http, &init).await;
    let d = wait_for_dataset(
        &http,
        &server,
        &token,
        &pulled,
        &["failed", "ready"],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(d["state"], "failed", "{d}");
    assert!(
        d["message"]
            .as_str()
            .unwrap_or("")
            .contains("nothing of it was kept"),
        "{d}"
    );
    assert_eq!(d["counts"]["records"], 0, "{d}");
    assert_eq!(
        stored_chunks(&store, &pulled).await,
        0,
        "no record of the killed pull is kept"
    );
    let (status, page) = get(
        &http,
        &server,
        &format!("/api/v1/datasets/{pulled}/records"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 0, "{page}");

    // 2. Killed in the middle of a submit of 300,000 records (299,000 new, 1000 changed).
    let (status, ready) = post(
        &http,
        &server,
        "/api/v1/datasets",
        Some(&token),
        json!({"pipeline_id": fast, "name": "killed submit"}),
    )
    .await;
    assert_eq!(status, 202, "{ready}");
    let ready = ready["id"].as_str().unwrap().to_owned();
    let d = wait_for_dataset(
        &http,
        &server,
        &token,
        &ready,
        &["ready", "failed"],
        Duration::from_secs(300),
    )
    .await;
    assert_eq!(d["state"], "ready", "{d}");
    assert_eq!(d["counts"]["ticked"], 300_000, "{d}");
    let (status, submitting) = post(
        &http,
        &server,
        &format!("/api/v1/datasets/{ready}/submit"),
        Some(&token),
        json!({}),
    )
    .await;
    assert_eq!(status, 202, "{submitting}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, d) = get(
            &http,
            &server,
            &format!("/api/v1/datasets/{ready}"),
            Some(&token),
        )
        .await;
        assert_eq!(
            d["state"], "submitting",
            "the submit ended before it could be killed: {d}"
        );
        if d["counts"]["written"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    drop(server);
    wait_until_idle(&db, &target).await;
    assert_eq!(
        fingerprint(&db, &target).await,
        before,
        "the destination is exactly as before"
    );

    let (server, token) = restart(&data, &extra, &http, &init).await;
    let d = wait_for(
        &http,
        &server,
        &token,
        &format!("/api/v1/datasets/{ready}"),
        &["ready", "submitted", "failed"],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(d["state"], "ready", "{d}");
    assert!(
        d["message"]
            .as_str()
            .unwrap_or("")
            .contains("nothing was written"),
        "{d}"
    );
    assert_eq!(d["counts"]["submitted"], 0, "{d}");
    assert_eq!(
        d["counts"]["ticked"], 300_000,
        "every record is still ticked: {d}"
    );
    assert_eq!(fingerprint(&db, &target).await, before, "still as before");

    // Submitted again, it completes.
    let ca = data.join("tls/ca.pem");
    let (ok, stdout, stderr) = cli(
        &[
            "dataset",
            "submit",
            &ready,
            "--addr",
            &server.addr,
            "--ca-cert",
            ca.to_str().unwrap(),
        ],
        "",
        &[("LOCKSTEP_TOKEN", token.as_str())],
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("300000 records written"), "{stdout}");
    assert_eq!(fingerprint(&db, &target).await.0, 300_000);

    db.batch_execute(&format!(
        "DROP VIEW public.{source}_slow; DROP TABLE public.{source}; DROP TABLE public.{target}"
    ))
    .await
    .unwrap();
}
