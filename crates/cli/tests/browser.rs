//! The web UI in a real browser: Debian's Chromium driven through chromedriver (WebDriver, with
//! fantoccini), against the real `lockstep serve` over HTTPS with its self-signed certificate.
//!
//! One story, as people live it: the operator unseals share by share and creates an
//! organization; its Administrator accepts the invitation, enrols TOTP and signs in with it,
//! creates a PostgreSQL connection, tests and discovers it, builds a pipeline, runs it and
//! watches it finish, and invites an Editor and a Viewer; the Editor cannot see the connection's
//! configuration; the Viewer cannot edit; the audit page shows what happened.
//!
//! A second story, when the Tryton peer is there (`scripts/test` starts it): a member uploads a
//! SOLIDWORKS bill of materials through a pipeline into Tryton, opens an assembly of its tree,
//! finds the blank part number marked, and unticks the assembly with its children.
//!
//! Screenshots of the main pages go to `screenshots/` at the workspace root (ignored by git).
//! `scripts/test` installs `chromium` and `chromium-driver` when they are missing; without them
//! this test fails and says so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::zombie_processes
)]

#[path = "browser/passkeys.rs"]
mod passkeys;
mod support;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{Server, cli, pg_client, serve_with};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PASSWORD: &str = "a long and quiet river at dawn";

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Driver {
    for binary in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(binary).exists(),
            "{binary} is missing: install Debian's `chromium` and `chromium-driver` \
             (scripts/test does this when it may use apt-get)"
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("chromedriver did not start");
        if line.contains("started successfully") {
            break;
        }
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// A headless Chromium window of 1280×900 with a fresh profile; with `javascript` false, pages
/// run no script at all (WebDriver's own commands still work).
async fn chromium(driver: &Driver, profile: &Path, javascript: bool) -> Client {
    let extra: &[String] = if javascript {
        &[]
    } else {
        &["--blink-settings=scriptEnabled=false".to_owned()]
    };
    chromium_with(driver, profile, extra).await
}

/// [`chromium`] with more command-line arguments.
async fn chromium_with(driver: &Driver, profile: &Path, extra: &[String]) -> Client {
    let mut args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--disable-extensions".to_owned(),
        "--window-size=1280,900".to_owned(),
        format!("--user-data-dir={}", profile.display()),
    ];
    args.extend_from_slice(extra);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({ "binary": CHROMIUM, "args": args }),
    );
    // The hub's certificate is its own self-signed one, as on a fresh installation.
    caps.insert("acceptInsecureCerts".to_owned(), json!(true));
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap()
}

/// The browser on the hub, with the few moves the story needs.
struct Ui {
    client: Client,
    base: String,
    shots: PathBuf,
}

impl Ui {
    async fn go(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits until htmx has no request, swap or settle in flight: a control replaced by a
    /// swap must be found again, not typed into while it is being taken out.
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let busy = self
                .client
                .execute(
                    "return document.querySelectorAll('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added').length;",
                    vec![],
                )
                .await
                .unwrap();
            if busy == json!(0) {
                return;
            }
            assert!(Instant::now() < deadline, "htmx never settled");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `text` into the field (after htmx settled; found again if a swap replaced it).
    async fn fill(&self, css: &str, text: &str) {
        for attempt in 0..5 {
            self.settle().await;
            let field = self.wait(css).await;
            let done = match field.clear().await {
                Ok(()) => field.send_keys(text).await,
                Err(err) => Err(err),
            };
            match done {
                Ok(()) => return,
                Err(err) if attempt < 4 && stale(&err) => continue,
                Err(err) => panic!("typing into {css}: {err}"),
            }
        }
    }

    async fn select(&self, css: &str, value: &str) {
        for attempt in 0..5 {
            self.settle().await;
            match self.wait(css).await.select_by_value(value).await {
                Ok(()) => return,
                Err(err) if attempt < 4 && stale(&err) => continue,
                Err(err) => panic!("choosing {value} in {css}: {err}"),
            }
        }
    }

    async fn click(&self, css: &str) {
        for attempt in 0..5 {
            self.settle().await;
            match self.wait(css).await.click().await {
                Ok(()) => return,
                Err(err) if attempt < 4 && stale(&err) => continue,
                Err(err) => panic!("clicking {css}: {err}"),
            }
        }
    }

    /// Clicks and waits until the next page has loaded (a form post and its redirect).
    async fn submit(&self, css: &str) {
        let before = self.client.find(Locator::Css("html")).await.unwrap();
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while before.tag_name().await.is_ok() {
            assert!(
                Instant::now() < deadline,
                "no new page after clicking {css}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.wait("body").await;
    }

    async fn wait(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("no {css} on {}", self.base))
    }

    async fn text(&self, css: &str) -> String {
        self.wait(css).await.text().await.unwrap()
    }

    async fn body(&self) -> String {
        self.text("body").await
    }

    async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    async fn attr(&self, css: &str, name: &str) -> String {
        self.wait(css)
            .await
            .attr(name)
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// What a form control holds now.
    async fn value(&self, css: &str) -> String {
        self.wait(css)
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// Saves a screenshot, after checking the page's basic accessibility: every form control
    /// has a label, every image a text alternative, the page one `<h1>`, and no element an
    /// inline style.
    async fn shot(&self, name: &str) {
        let problems = self
            .client
            .execute(
                r#"
                const problems = [];
                document.querySelectorAll("input:not([type=hidden]), select, textarea").forEach((el) => {
                  const labelled = (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`))
                    || el.closest("label") || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
                  if (!labelled) problems.push("no label: " + (el.name || el.id || el.outerHTML.slice(0, 60)));
                });
                document.querySelectorAll("img:not([alt])").forEach((el) => problems.push("no alt: " + el.src.slice(0, 40)));
                const h1 = document.querySelectorAll("h1").length;
                if (h1 !== 1) problems.push(h1 + " h1 elements");
                document.querySelectorAll("[style]").forEach((el) => problems.push("inline style on " + el.tagName));
                return problems;
                "#,
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(problems, json!([]), "on {name}");
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// Waits until `css` has a text containing `needle`.
    async fn wait_text(&self, css: &str, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await
                && el.text().await.is_ok_and(|t| t.contains(needle))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never showed {needle:?}; the page says: {}",
                self.body().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Signs in at /login; with `totp`, through the TOTP step.
    async fn sign_in(&self, email: &str, totp: Option<&str>) {
        self.go("/login").await;
        self.fill("#email", email).await;
        self.fill("#password", PASSWORD).await;
        self.submit("form[action='/login'] button[type=submit]")
            .await;
        if let Some(secret) = totp {
            assert_eq!(self.path().await, "/login", "no TOTP step");
            self.wait("form[action='/login/totp']").await;
            self.shot("02-sign-in-totp").await;
            self.fill("#totp", &totp_code(secret, 30)).await;
            self.submit("form[action='/login/totp'] button[type=submit]")
                .await;
        }
        assert!(
            !self.path().await.starts_with("/login"),
            "sign-in failed: {}",
            self.body().await
        );
    }

    async fn sign_out(&self) {
        self.submit("form[action='/logout'] button").await;
        assert!(self.path().await.starts_with("/login"));
    }

    /// Accepts an invitation link as `name` and lands on the sign-in page.
    async fn accept(&self, link: &str, name: &str) {
        self.go(link).await;
        // The token came in the fragment and left the address bar.
        assert!(
            !self
                .client
                .current_url()
                .await
                .unwrap()
                .as_str()
                .contains('#')
        );
        self.fill("#display_name", name).await;
        self.fill("#password", PASSWORD).await;
        self.fill("#password_again", PASSWORD).await;
        self.submit("form[action='/accept-invitation'] button[type=submit]")
            .await;
        assert!(
            self.path().await.starts_with("/login"),
            "accepting failed: {}",
            self.body().await
        );
    }
}

/// Whether WebDriver says the element was taken out of the page (by an htmx swap).
fn stale(err: &fantoccini::error::CmdError) -> bool {
    matches!(
        err,
        fantoccini::error::CmdError::Standard(e)
            if e.error == fantoccini::error::ErrorStatus::StaleElementReference
    )
}

/// The TOTP code `ahead` seconds from now for a base32 secret.
fn totp_code(secret: &str, ahead: i64) -> String {
    let secret = lockstep_auth::TotpSecret::from_base32(secret.trim()).unwrap();
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(ahead);
    secret.code_at(at).unwrap().to_string()
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_work_in_a_real_browser() {
    lockstep_server::tls::install_crypto_provider();
    let data = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = cli(
        &[
            "vault",
            "init",
            "--data",
            data.path().to_str().unwrap(),
            "--key-shares",
            "3",
            "--key-threshold",
            "2",
            "--format",
            "json",
        ],
        "",
        &[],
    );
    assert!(ok, "{stderr}");
    let init: Value = serde_json::from_str(stdout.trim()).unwrap();
    let server: Server = serve_with(
        data.path(),
        &["--egress-allow", "loopback"],
        "warn",
        Stdio::inherit(),
    );
    let driver = chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let ui = Ui {
        client: chromium(&driver, profile.path(), true).await,
        base: server.addr.clone(),
        shots: screenshots(),
    };
    // A second window, with JavaScript off, as the README promises the pages work without it.
    let plain_profile = tempfile::tempdir().unwrap();
    let plain = Ui {
        client: chromium(&driver, plain_profile.path(), false).await,
        base: server.addr.clone(),
        shots: screenshots(),
    };
    let outcome = tokio::time::timeout(Duration::from_secs(600), story(&ui, &plain, &init)).await;
    let _ = ui.client.clone().close().await;
    let _ = plain.client.clone().close().await;
    outcome.expect("the story took longer than 10 minutes");
}

async fn story(ui: &Ui, plain: &Ui, init: &Value) {
    // The operator unseals: share by share, with progress.
    ui.go("/").await;
    ui.wait("form[action='/unseal']").await;
    assert!(ui.body().await.contains("0 of 2 shares"));
    ui.shot("01-unseal").await;
    ui.fill("#key", "not-a-share").await;
    ui.submit("form[action='/unseal'] button[type=submit]")
        .await;
    assert!(ui.has("#key-error").await, "a bad share shows an error");
    assert!(ui.body().await.contains("0 of 2 shares"));
    ui.fill("#key", init["unseal_keys"][0].as_str().unwrap())
        .await;
    ui.submit("form[action='/unseal'] button[type=submit]")
        .await;
    assert!(
        ui.body().await.contains("1 of 2 shares"),
        "{}",
        ui.body().await
    );
    ui.fill("#key", init["unseal_keys"][1].as_str().unwrap())
        .await;
    ui.submit("form[action='/unseal'] button[type=submit]")
        .await;
    // the notice is shown, and then dropped from the address (app.js)
    assert_eq!(without_notice(&ui.path().await), "/operator");
    ui.wait_text("#page-notice", "The hub is unsealed.").await;

    // The operator signs in and creates the organization.
    ui.fill("#token", init["operator_token"].as_str().unwrap())
        .await;
    ui.submit("form[action='/operator'] button[type=submit]")
        .await;
    assert_eq!(ui.path().await, "/operator/organizations");
    ui.fill("#name", "Acme").await;
    ui.fill("#admin_email", "ada@acme.test").await;
    ui.submit("form[action='/operator/organizations'] button[type=submit]")
        .await;
    let invitation = ui.attr("#invitation-link", "href").await;
    assert!(invitation.contains("/accept-invitation#"));
    ui.shot("03-organizations").await;
    ui.submit("form[action='/operator/sign-out'] button").await;

    // The Administrator accepts: weak passwords get feedback as they are typed.
    ui.go(&invitation).await;
    ui.fill("#password", "password1").await;
    ui.wait_text("#strength", "common").await;
    ui.shot("04-accept-invitation").await;
    ui.accept(&invitation, "Ada Lovelace").await;
    ui.sign_in("ada@acme.test", None).await;

    // TOTP enrolment: the QR code is an image rendered by the hub; the secret is shown too.
    ui.go("/account").await;
    ui.submit("form[action='/account/totp/start'] button[type=submit]")
        .await;
    let qr = ui.attr("img.qr", "src").await;
    assert!(qr.starts_with("data:image/svg+xml;base64,"));
    let secret = ui.text("#totp-secret").await.replace(' ', "");
    ui.shot("05-totp-enrolment").await;
    ui.fill("#code", &totp_code(&secret, 0)).await;
    ui.submit("form[action='/account/totp/confirm'] button[type=submit]")
        .await;
    let codes = ui.text("#recovery-codes").await;
    assert!(codes.lines().count() >= 8, "{codes}");
    let recovery = codes.lines().next().unwrap().trim().to_owned();
    ui.sign_out().await;
    ui.sign_in("ada@acme.test", Some(&secret)).await;
    ui.go("/account").await;
    ui.shot("06-account").await;
    assert!(ui.body().await.contains("Ada Lovelace"));

    let _ = secret;
    rest_of_story(ui, plain, &recovery).await;
}

/// From a signed-in Administrator with TOTP on: connection, pipeline, run, invitations, roles,
/// audit.
async fn rest_of_story(ui: &Ui, plain: &Ui, recovery: &str) {
    let db = pg_client().await;
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let source = format!("browser_src_{}", &suffix[20..]);
    let target = format!("browser_dst_{}", &suffix[20..]);
    db.batch_execute(&format!(
        "CREATE TABLE {source} (id int PRIMARY KEY, name text NOT NULL, amount numeric(10,2));
         INSERT INTO {source} SELECT g, 'part ' || g, g * 1.5 FROM generate_series(1, 500) g;"
    ))
    .await
    .unwrap();

    // A PostgreSQL connection, with a password canary (the local server trusts 127.0.0.1).
    let pg = url::Url::parse(&lockstep_storage::testing::postgres_admin_url()).unwrap();
    let canary = format!("canary-{}", &suffix[..12]);
    ui.go("/connections").await;
    ui.click("a[href='/connections/new']").await;
    ui.fill("#name", "Warehouse").await;
    ui.select("#kind", "postgres").await;
    ui.fill("#postgres-config-host", pg.host_str().unwrap())
        .await;
    ui.fill(
        "#postgres-config-port",
        &pg.port().unwrap_or(5432).to_string(),
    )
    .await;
    ui.fill(
        "#postgres-config-database",
        pg.path().trim_start_matches('/'),
    )
    .await;
    ui.fill("#postgres-config-user", pg.username()).await;
    ui.fill("#postgres-secrets-password", &canary).await;
    ui.shot("07-connection-form").await;
    ui.submit("form[action='/connections'] button[type=submit]")
        .await;
    let connection_page = without_notice(&ui.path().await);
    assert!(
        connection_page.starts_with("/connections/"),
        "{connection_page}: {}",
        ui.body().await
    );
    ui.wait_text("#page-notice", "Created.").await;
    // Test connection: htmx puts the readable result in place.
    ui.click("form[action$='/test'] button[type=submit]").await;
    ui.wait_text("#test-result", "Connected").await;
    ui.submit("form[action$='/discover'] button[type=submit]")
        .await;
    ui.wait_text("main", &source).await;
    ui.shot("08-connection").await;
    assert!(
        !ui.source().await.contains(&canary),
        "the password came back"
    );

    pipeline_story(
        ui,
        plain,
        recovery,
        &connection_page,
        &source,
        &target,
        &canary,
    )
    .await;
    db.batch_execute(&format!(
        "DROP TABLE IF EXISTS {source}; DROP TABLE IF EXISTS {target};"
    ))
    .await
    .unwrap();
}

/// The Editor writes a pipeline in a browser that runs no script: objects and fields are loaded,
/// mapping and rule rows added and removed, all by plain form submits the hub answers with the
/// form again.
async fn without_javascript(plain: &Ui, connection_id: &str, source: &str, pipeline_page: &str) {
    plain.sign_in("ed@acme.test", None).await;
    plain.go("/pipelines/new").await;
    plain.fill("#name", "Parts, typed without JavaScript").await;
    plain.select("#source-connection_id", connection_id).await;
    plain.submit("#pipeline-form button[name=reload]").await;
    let object = format!("public.{source}");
    plain.select("#source-object", &object).await;
    plain.submit("#pipeline-form button[name=reload]").await;
    // The hub filled the mapping table from the source's fields.
    let rows = plain.count("#mappings-body tr").await;
    assert_eq!(rows, 3, "id, name, amount: {}", plain.body().await);
    plain
        .submit("#pipeline-form button[value='add:mappings']")
        .await;
    assert_eq!(plain.count("#mappings-body tr").await, rows + 1);
    plain
        .submit(&format!(
            "#pipeline-form button[value='remove:mappings:{rows}']"
        ))
        .await;
    assert_eq!(plain.count("#mappings-body tr").await, rows);
    assert_eq!(
        plain.value("#name").await,
        "Parts, typed without JavaScript"
    );
    plain
        .submit("#pipeline-form button[value='add:rules']")
        .await;
    plain.select("#rules-0-kind", "validation").await;
    plain.fill("#rules-0-expression", "amount > 0.0").await;
    plain
        .fill("#rules-0-message", "an amount is positive")
        .await;
    plain
        .submit("#pipeline-form button[value='add:rules']")
        .await;
    assert!(plain.has("#rules-1-expression").await);
    plain
        .submit("#pipeline-form button[value='remove:rules:1']")
        .await;
    assert!(!plain.has("#rules-1-expression").await);
    assert_eq!(plain.value("#rules-0-expression").await, "amount > 0.0");
    plain
        .select("#destination-connection_id", connection_id)
        .await;
    plain.submit("#pipeline-form button[name=reload]").await;
    plain
        .fill("#destination-object", "public.typed_without_javascript")
        .await;
    plain.select("#mode", "full_refresh").await;
    plain.fill("#key", "id").await;
    plain.shot("14b-pipeline-form-without-javascript").await;
    plain
        .submit("#pipeline-form button[type=submit]:not([name])")
        .await;
    // No script ran: the notice is still in the address (app.js would have dropped it).
    let path = plain.path().await;
    assert!(
        path.starts_with("/pipelines/") && path.contains("?notice="),
        "{path}: {}",
        plain.body().await
    );
    plain.wait_text("#page-notice", "Created.").await;
    plain.wait_text("main", "amount > 0.0").await;

    // A data set pulled, followed and reviewed without JavaScript: the refresh link instead of
    // polling, and the grid's tick boxes saved by their own form.
    plain.go("/datasets").await;
    plain
        .select(
            "#pipeline_id",
            pipeline_page.trim_start_matches("/pipelines/"),
        )
        .await;
    plain.fill("#filter", "id <= 3").await;
    plain.submit("#pull-form button[type=submit]").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !plain.has("#review-grid").await {
        assert!(Instant::now() < deadline, "the pull did not finish");
        tokio::time::sleep(Duration::from_millis(250)).await;
        if plain.has("#dataset-progress a").await {
            plain.submit("#dataset-progress a").await;
        } else {
            plain.go(&without_notice(&plain.path().await)).await;
        }
    }
    // The three records are as the destination has them, so none comes ticked: tick one.
    let row = plain
        .attr("#review-grid tr.status-unchanged", "data-row")
        .await;
    assert!(!plain.has(&format!("#tick-{row}:checked")).await);
    plain.click(&format!("#tick-{row}")).await;
    plain.submit("#ticks-form button[type=submit]").await;
    plain.wait_text("#page-notice", "ticks were saved").await;
    assert!(plain.has(&format!("#tick-{row}:checked")).await);
    assert_eq!(plain.text("#count-ticked").await, "1");
    plain.shot("14c-dataset-without-javascript").await;
    plain.sign_out().await;
}

/// The Administrator pulls a data set through the pipeline (a filter that does not compile
/// first), finds the record the rule holds back marked on its cell and the changed one beside
/// the destination's value, fixes the bad record inline, submits, and sees it written.
async fn dataset_story(ui: &Ui, pipeline_page: &str, source: &str, target: &str) -> String {
    let db = pg_client().await;
    db.batch_execute(&format!(
        "UPDATE {source} SET name = 'part 5 renamed' WHERE id = 5"
    ))
    .await
    .unwrap();
    let pipeline_id = pipeline_page.trim_start_matches("/pipelines/");
    ui.go("/datasets").await;
    ui.select("#pipeline_id", pipeline_id).await;
    ui.fill("#name", "Parts to check").await;
    ui.fill("#filter", "id <=").await;
    ui.submit("#pull-form button[type=submit]").await;
    ui.wait_text("#filter-error", "column").await;
    ui.shot("19-dataset-pull-error").await;
    ui.fill("#filter", "amount < 100.0").await;
    ui.submit("#pull-form button[type=submit]").await;
    let dataset_page = without_notice(&ui.path().await);
    assert!(
        dataset_page.starts_with("/datasets/"),
        "{dataset_page}: {}",
        ui.body().await
    );
    // The progress area polls until the pull ends, then the page shows the grid.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ui.has("#review-grid").await {
        assert!(
            !ui.has("[data-state='failed']").await,
            "the pull failed: {}",
            ui.body().await
        );
        assert!(Instant::now() < deadline, "the pull did not finish");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ui.wait("#dataset-progress[data-state='ready']").await;
    assert_eq!(ui.text("#count-create").await, "1");
    assert_eq!(ui.text("#count-update").await, "1");
    assert_eq!(ui.text("#count-errors").await, "1");
    assert_eq!(ui.text("#count-unchanged").await, "64");
    // The held-back record's error is on its cell (title and text), the changed name shows the
    // destination's value struck through.
    let bad_row = ui.attr("#review-grid tr:has(td.issue-error)", "id").await;
    assert!(
        ui.attr(&format!("#{bad_row} td.issue-error"), "title")
            .await
            .contains("part 13 is held back")
    );
    ui.wait_text(
        &format!("#{bad_row} td.issue-error"),
        "part 13 is held back",
    )
    .await;
    ui.wait_text("#review-grid tr.status-update del.was", "part 5")
        .await;
    ui.wait_text("#review-grid tr.status-update", "part 5 renamed")
        .await;
    assert!(ui.has("#submit-form button[disabled]").await);
    ui.wait_text("#submit-blocked", "1 ticked record has errors")
        .await;
    ui.shot("20-dataset-review").await;

    // Fixed inline: the record gets another id, the rule passes, Submit is enabled.
    let row = bad_row.trim_start_matches("row-");
    ui.click(&format!("#{bad_row} details.edit summary")).await;
    ui.fill(&format!("#edit-{row}-0"), "1013").await;
    ui.submit(&format!("#edit-{row} button[type=submit]")).await;
    ui.wait_text("#page-notice", "checked again").await;
    assert!(!ui.has("#review-grid td.issue-error").await);
    assert_eq!(ui.text("#count-errors").await, "0");
    assert!(!ui.has("#submit-form button[disabled]").await);
    ui.shot("21-dataset-fixed").await;

    // Submitted (the confirmation answered yes), then written.
    ui.client
        .execute("window.confirm = function () { return true; };", vec![])
        .await
        .unwrap();
    ui.submit("#submit-form button[type=submit]").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ui.has("#dataset-progress[data-state='submitted']").await {
        assert!(Instant::now() < deadline, "the submit did not finish");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ui.wait_text("#dataset-state", "submitted").await;
    assert_eq!(ui.text("#count-submitted").await, "2");
    ui.shot("22-dataset-submitted").await;
    let rows = db
        .query(
            &format!("SELECT id, part_name FROM {target} WHERE id IN (5, 13, 1013) ORDER BY id"),
            &[],
        )
        .await
        .unwrap();
    let rows: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        rows,
        [(5, "part 5 renamed"), (1013, "part 13")].map(|(i, n)| (i, n.to_owned()))
    );
    ui.go("/datasets").await;
    ui.wait_text("#datasets", "Parts to check").await;
    ui.shot("23-datasets").await;
    dataset_page
}

/// A team, a redaction rule for it saved through the policies page, and the data set seen as
/// that team: the renamed part's name masked, a banner saying whose view it is.
async fn policies_story(ui: &Ui, dataset_page: &str) {
    ui.go("/teams").await;
    ui.fill("#name", "Reviewers").await;
    ui.submit("section.narrow form button[type=submit]").await;
    ui.wait("section[id^='team-']").await;
    let section = ui.attr("section[id^='team-']", "id").await;
    let team = section.trim_start_matches("team-").to_owned();
    ui.wait_text(&format!("#{section}"), "Reviewers").await;
    ui.shot("24-teams").await;
    ui.go("/policies").await;
    ui.select("#redaction-rules-0-team_id", &team).await;
    ui.fill("#redaction-rules-0-field", "part_name").await;
    ui.select("#redaction-rules-0-kind", "mask").await;
    ui.click("#redaction-enabled").await;
    ui.submit("#redaction form button[type=submit]").await;
    ui.wait("#redaction-enabled:checked").await;
    assert_eq!(
        ui.attr("#redaction-rules-0-field", "value").await,
        "part_name"
    );
    ui.shot("25-policies").await;
    ui.go(&format!("{dataset_page}?view_as=team:{team}")).await;
    ui.wait("#view-as-banner").await;
    ui.wait_text("#review-grid", "••••").await;
    assert!(!ui.text("#review-grid").await.contains("part 5 renamed"));
    ui.shot("26-dataset-as-team").await;
    // The Administrator's own view is not redacted (the rule is the team's).
    ui.go(dataset_page).await;
    ui.wait_text("#review-grid", "part 5 renamed").await;
    assert!(!ui.has("#view-as-banner").await);
}

/// `path` without the `?notice=…` that app.js drops from the address once shown.
fn without_notice(path: &str) -> String {
    match path.split_once("?notice=") {
        Some((before, _)) => before.to_owned(),
        None => path.to_owned(),
    }
}

/// The pipeline from `source` to `target` on the connection, run and watched; then the
/// invitations, the other roles and the audit.
async fn pipeline_story(
    ui: &Ui,
    plain: &Ui,
    recovery: &str,
    connection_page: &str,
    source: &str,
    target: &str,
    canary: &str,
) {
    let connection_id = connection_page.trim_start_matches("/connections/");
    // The pipeline form: pickers fed by discovery, the mapping table filled from the fields.
    ui.go("/pipelines").await;
    ui.click("a[href='/pipelines/new']").await;
    ui.fill("#name", "Parts to the warehouse").await;
    ui.select("#source-connection_id", connection_id).await;
    let object = format!("public.{source}");
    ui.wait(&format!("#source-object option[value='{object}']"))
        .await;
    ui.select("#source-object", &object).await;
    ui.wait("#mappings-2-source").await;
    ui.select("#destination-connection_id", connection_id).await;
    ui.fill("#destination-object", &format!("public.{target}"))
        .await;
    ui.fill("#mappings-1-destination", "part_name").await;
    ui.select("#mode", "full_refresh").await;
    ui.fill("#key", "id").await;
    // A rule with a syntax error: the error shows next to it and nothing is saved.
    ui.click("button[data-add-row='rule-row']").await;
    ui.select("#rules-0-kind", "validation").await;
    ui.fill("#rules-0-expression", "id !=").await;
    ui.fill("#rules-0-message", "part 13 is held back").await;
    ui.submit("#pipeline-form button[type=submit]:not([name])")
        .await;
    ui.wait("#rules-0-expression-error").await;
    ui.shot("09-pipeline-form-error").await;
    ui.fill("#rules-0-expression", "id != 13").await;
    ui.submit("#pipeline-form button[type=submit]:not([name])")
        .await;
    let pipeline_page = without_notice(&ui.path().await);
    assert!(
        pipeline_page.starts_with("/pipelines/"),
        "{pipeline_page}: {}",
        ui.body().await
    );
    ui.wait_text("#page-notice", "Created.").await;

    // Run now, and watch it finish on the run page.
    ui.submit("form[action$='/run'] button[type=submit]").await;
    assert!(ui.path().await.contains("/runs/"), "{}", ui.body().await);
    ui.shot("10-run-live").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    // one record of 500 is rejected: under the 5% threshold, the run commits and says so
    while !ui.has("[data-state='succeeded_with_rejections']").await {
        assert!(
            !ui.has("[data-state='failed']").await,
            "the run failed: {}",
            ui.body().await
        );
        assert!(Instant::now() < deadline, "the run did not finish");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ui.wait_text("main", "part 13 is held back").await;
    // Rejections grouped by the rule's message, with their count, and the record itself: its
    // key, and the field the rule refers to first.
    ui.wait_text(
        "#rejections tbody tr td:nth-child(1)",
        "part 13 is held back",
    )
    .await;
    assert_eq!(ui.text("#rejections tbody tr td:nth-child(2)").await, "1");
    let rejected = ui
        .client
        .find_all(Locator::Css("#rejected tbody tr"))
        .await
        .unwrap();
    assert_eq!(
        rejected.len(),
        1,
        "one rejected record: {}",
        ui.body().await
    );
    assert_eq!(ui.text("#rejected tbody tr td.mono").await, "id = 13");
    assert_eq!(
        ui.text("#rejected tbody tr td:nth-child(4) dt").await,
        "id",
        "the field the rule refers to comes first"
    );
    assert_eq!(ui.text("#rejected tbody tr td:nth-child(4) dd").await, "13");
    assert!(
        ui.has("#rejected a[href$='/rejected.csv']").await,
        "an Administrator can download the rejected records"
    );
    assert_eq!(ui.text("#run-read").await, "500");
    assert_eq!(ui.text("#run-written").await, "499");
    assert_eq!(ui.text("#run-rejected").await, "1");
    ui.shot("11-run-finished").await;
    let rows: i64 = pg_client()
        .await
        .query_one(&format!("SELECT count(*) FROM {target}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 499, "500 rows read, part 13 rejected");
    // The start page shows the run, amber for its rejected record.
    ui.go("/").await;
    assert_eq!(ui.path().await, "/dashboard");
    ui.wait("main .badge.state-succeeded_with_rejections").await;
    ui.wait_text("main", "Parts to the warehouse").await;
    ui.shot("11b-dashboard").await;
    ui.go(&pipeline_page).await;
    ui.shot("12-pipeline").await;
    let dataset_page = dataset_story(ui, &pipeline_page, source, target).await;
    policies_story(ui, &dataset_page).await;

    // An Editor and a Viewer are invited.
    let mut links = Vec::new();
    for (email, role) in [("ed@acme.test", "editor"), ("vi@acme.test", "viewer")] {
        ui.go("/users").await;
        ui.fill("#email", email).await;
        ui.select("#role", role).await;
        ui.submit("form[action='/users/invitations'] button[type=submit]")
            .await;
        links.push(ui.attr("#invitation-link", "href").await);
    }
    ui.shot("13-users").await;
    ui.sign_out().await;

    // The Editor sees the connection's name and objects, never its configuration.
    ui.accept(&links[0], "Ed").await;
    ui.sign_in("ed@acme.test", None).await;
    ui.go(connection_page).await;
    ui.wait_text("main", source).await;
    let page = ui.source().await;
    assert!(
        !page.contains(">Configuration<") && !page.contains(canary),
        "the Editor sees the configuration"
    );
    assert!(!ui.has("a[href$='/edit']").await);
    ui.shot("14-connection-as-editor").await;
    ui.sign_out().await;
    without_javascript(plain, connection_id, source, &pipeline_page).await;

    // The Viewer reads the pipeline but cannot edit or run it.
    ui.accept(&links[1], "Vi").await;
    ui.sign_in("vi@acme.test", None).await;
    ui.go(&pipeline_page).await;
    ui.wait_text("main", "Parts to the warehouse").await;
    assert!(!ui.has("a[href$='/edit']").await && !ui.has("form[action$='/run']").await);
    ui.shot("15-pipeline-as-viewer").await;
    ui.go(&format!("{pipeline_page}/edit")).await;
    assert!(
        ui.body().await.contains("needs the editor role"),
        "{}",
        ui.body().await
    );
    ui.shot("16-refused-as-viewer").await;
    // The refusal keeps the Viewer's own navigation.
    ui.sign_out().await;

    // The Administrator (with a recovery code this time) finds all of it in the audit.
    ui.go("/login").await;
    ui.fill("#email", "ada@acme.test").await;
    ui.fill("#password", PASSWORD).await;
    ui.submit("form[action='/login'] button[type=submit]").await;
    ui.fill("#totp", recovery).await;
    ui.submit("form[action='/login/totp'] button[type=submit]")
        .await;
    ui.go("/audit").await;
    for action in [
        "connection.created",
        "connection.discovered",
        "pipeline.created",
        "run.succeeded",
        "invitation.created",
    ] {
        ui.wait_text("main", action).await;
    }
    ui.wait_text("main", "verified").await;
    ui.shot("17-audit").await;
    // The same pages on a phone-sized window.
    ui.client.set_window_size(390, 844).await.unwrap();
    ui.go(&pipeline_page).await;
    ui.shot("18-pipeline-on-a-phone").await;
}

/// The Tryton peer `scripts/test` starts: (url, database, user, password); `None` when this
/// run skips it (`LOCKSTEP_TEST_SKIP_TRYTON=1`).
#[allow(clippy::print_stderr)]
fn tryton_peer() -> Option<[String; 4]> {
    let var = |name: &str| std::env::var(name).ok();
    match var("LOCKSTEP_TEST_TRYTON_URL") {
        Some(url) => Some([
            url,
            var("LOCKSTEP_TEST_TRYTON_DATABASE").unwrap(),
            var("LOCKSTEP_TEST_TRYTON_USER").unwrap(),
            var("LOCKSTEP_TEST_TRYTON_PASSWORD").unwrap(),
        ]),
        None if var("LOCKSTEP_TEST_SKIP_TRYTON").as_deref() == Some("1") => {
            eprintln!("skipped: the BOM story needs Tryton (LOCKSTEP_TEST_SKIP_TRYTON=1)");
            None
        }
        None => panic!(
            "LOCKSTEP_TEST_TRYTON_URL is not set: run via scripts/test (or `source \
             scripts/lib/services.sh; source scripts/lib/peers.sh; ensure_tryton` first), or set \
             LOCKSTEP_TEST_SKIP_TRYTON=1"
        ),
    }
}

/// The hub's JSON API as the test's own client (trusting the hub's CA).
struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bill_of_materials_in_a_real_browser() {
    let Some([url, database, user, password]) = tryton_peer() else {
        return;
    };
    lockstep_server::tls::install_crypto_provider();
    let data = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = cli(
        &[
            "vault",
            "init",
            "--data",
            data.path().to_str().unwrap(),
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
    let server: Server = serve_with(
        data.path(),
        &["--egress-allow", "loopback"],
        "warn",
        Stdio::inherit(),
    );
    let ca = std::fs::read(data.path().join("tls/ca.pem")).unwrap();
    let mut api = Api {
        http: reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .build()
            .unwrap(),
        base: server.addr.clone(),
        token: None,
    };
    // Set up through the API: unsealed, an organization, its Administrator, a Tryton
    // connection, a pipeline into it, and a member (an Editor).
    let (status, _) = api
        .post("/api/v1/sys/unseal", json!({"key": init["unseal_keys"][0]}))
        .await;
    assert_eq!(status, 200);
    api.token = Some(init["operator_token"].as_str().unwrap().to_owned());
    let (status, org) = api
        .post(
            "/api/v1/sys/organizations",
            json!({"name": "Acme", "admin_email": "ada@acme.test"}),
        )
        .await;
    assert_eq!(status, 201, "{org}");
    api.token = None;
    let (status, _) = api
        .post(
            "/api/v1/auth/invitations/accept",
            json!({"token": org["invitation_token"], "password": PASSWORD, "display_name": "Ada"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, login) = api
        .post(
            "/api/v1/auth/login",
            json!({"email": "ada@acme.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    api.token = Some(login["session_token"].as_str().unwrap().to_owned());
    let (status, erp) = api
        .post(
            "/api/v1/connections",
            json!({"name": "ERP", "kind": "tryton",
                "config": {"url": url, "database": database, "user": user},
                "secrets": {"password": password}}),
        )
        .await;
    assert_eq!(status, 201, "{erp}");
    let (status, pipeline) = api
        .post(
            "/api/v1/pipelines",
            json!({"name": "BOMs into Tryton",
                "source": {"connection_id": erp["id"], "object": "bom"},
                "destination": {"connection_id": erp["id"], "object": "bom"},
                "mode": "append"}),
        )
        .await;
    assert_eq!(status, 201, "{pipeline}");
    let (status, invitation) = api
        .post(
            "/api/v1/users/invitations",
            json!({"email": "ed@acme.test", "role": "editor"}),
        )
        .await;
    assert_eq!(status, 201, "{invitation}");
    api.token = None;
    let (status, _) = api
        .post(
            "/api/v1/auth/invitations/accept",
            json!({"token": invitation["invitation_token"], "password": PASSWORD, "display_name": "Ed"}),
        )
        .await;
    assert_eq!(status, 201);

    let driver = chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let ui = Ui {
        client: chromium(&driver, profile.path(), true).await,
        base: server.addr.clone(),
        shots: screenshots(),
    };
    let pipeline_id = pipeline["id"].as_str().unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(300), bom_story(&ui, pipeline_id)).await;
    let _ = ui.client.clone().close().await;
    outcome.expect("the BOM story took longer than 5 minutes");
}

/// `shared/testdata/bom/<relative>` beside the repository (or under `LOCKSTEP_TESTDATA`), as an
/// absolute path for the file input.
fn bom_testdata(relative: &str) -> PathBuf {
    let base = match std::env::var_os("LOCKSTEP_TESTDATA") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/bom"),
    };
    let path = base.join(relative);
    assert!(path.exists(), "{} is missing", path.display());
    path.canonicalize().unwrap()
}

/// The Editor uploads SOLIDWORKS' export, opens assembly 2.17, finds 2.17.1's blank part number
/// marked, and unticks 2.17 with its children.
async fn bom_story(ui: &Ui, pipeline_id: &str) {
    ui.sign_in("ed@acme.test", None).await;
    ui.go("/datasets").await;
    ui.select("#bom-pipeline_id", pipeline_id).await;
    let file = bom_testdata("solidworks/ACV0158450_sw.csv");
    ui.wait("#bom-file")
        .await
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    ui.shot("30-bom-upload").await;
    ui.submit("#upload-form button[type=submit]").await;
    let dataset_page = without_notice(&ui.path().await);
    assert!(
        dataset_page.starts_with("/datasets/"),
        "{dataset_page}: {}",
        ui.body().await
    );
    // The progress area polls until the comparison with Tryton ends, then the page shows the
    // tree.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ui.has("#bom-tree").await {
        assert!(
            !ui.has("[data-state='failed']").await,
            "the comparison failed: {}",
            ui.body().await
        );
        assert!(Instant::now() < deadline, "the comparison did not finish");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ui.wait("#dataset-progress[data-state='ready']").await;
    ui.wait_text("#bom-source", "ACV0158450_sw.csv").await;
    // Two levels at first: 2.17 is there, closed; its parts come when it is opened.
    let assembly = "details[data-path='2.17']";
    ui.wait(assembly).await;
    assert!(!ui.has("[data-path='2.17.1']").await);
    ui.click(&format!("{assembly} > summary .c-description"))
        .await;
    ui.wait("[data-path='2.17.1']").await;
    ui.settle().await;
    let nut = "[data-path='2.17.1'] .c-part_number";
    assert!(
        ui.attr(nut, "class").await.contains("issue-error"),
        "2.17.1's blank part number is not marked"
    );
    assert!(!ui.attr(nut, "title").await.is_empty());
    ui.client
        .execute(
            "document.querySelector(\"[data-path='2.17.1']\").scrollIntoView({block: 'center'});",
            vec![],
        )
        .await
        .unwrap();
    ui.shot("31-bom-tree").await;

    // Unticked with everything below it ("apply to children").
    let row = ui.attr(assembly, "data-row").await;
    let tick = format!("#tree-tick-{row}");
    if !ui.has(&format!("{tick}:checked")).await {
        // Not ticked to begin with (already in Tryton): tick it with its children first.
        ui.click(&tick).await;
        ui.click("#tree-subtrees").await;
        ui.submit("#tree-form button[type=submit]").await;
        ui.wait_text("#page-notice", "ticks were saved").await;
    }
    let ticked = || async {
        let text = ui.text("#count-ticked").await;
        text.split_whitespace()
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let before = ticked().await;
    ui.click(&tick).await;
    ui.click("#tree-subtrees").await;
    assert!(ui.has("#tree-subtrees:checked").await);
    ui.submit("#tree-form button[type=submit]").await;
    ui.wait_text("#page-notice", "ticks were saved").await;
    let after = ticked().await;
    assert!(
        after < before && before - after >= 2,
        "ticked {before} → {after}: 2.17 and its parts should have been unticked"
    );
    assert!(!ui.has(&format!("{tick}:checked")).await);
    // Its parts too, once it is opened again.
    ui.click(&format!("{assembly} > summary .c-description"))
        .await;
    ui.wait("[data-path='2.17.1']").await;
    ui.settle().await;
    let nut_row = ui.attr("[data-path='2.17.1']", "data-row").await;
    assert!(!ui.has(&format!("#tree-tick-{nut_row}:checked")).await);
    ui.shot("32-bom-unticked").await;
}
