//! End to end: the real `lockstep` binary on a random port, over HTTPS, on SQLite and PostgreSQL.
//! init → serve (sealed) → unseal → create an organization → seal → restart (sealed) → unseal with
//! other shares → the organization is still there.
#![allow(
    clippy::unwrap_used,
    clippy::zombie_processes,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use lockstep_storage::Backend;
use lockstep_storage::testing::TestStore;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "e2e/confinement.rs"]
mod confinement;
mod conformance;
#[path = "e2e/datasets.rs"]
mod datasets;
mod support;

use support::{BIN, Server, cli, pg_client, serve_with};

fn serve(data: &Path, database: Option<&str>) -> Server {
    match database {
        Some(url) => serve_with(data, &["--database", url], "warn", Stdio::inherit()),
        None => serve_with(data, &[], "warn", Stdio::inherit()),
    }
}

/// Unseals a hub made by [`init_one_share`], creates the organization "Acme" and accepts its
/// invitation as ada@acme.io with the password `correct horse battery staple`.
async fn unseal_with_an_administrator(http: &reqwest::Client, server: &Server, init: &Value) {
    let operator = init["operator_token"].as_str().unwrap();
    let (status, _) = post(
        http,
        server,
        "/api/v1/sys/unseal",
        None,
        json!({"key": init["unseal_keys"][0]}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, org) = post(
        http,
        server,
        "/api/v1/sys/organizations",
        Some(operator),
        json!({"name": "Acme", "admin_email": "ada@acme.io"}),
    )
    .await;
    assert_eq!(status, 201, "{org}");
    let (status, _) = post(http, server, "/api/v1/auth/invitations/accept", None,
        json!({"token": org["invitation_token"], "password": "correct horse battery staple", "display_name": "Ada"})).await;
    assert_eq!(status, 201);
}

/// `lockstep vault init` with one share, as JSON.
fn init_one_share(data: &Path) -> Value {
    let (ok, stdout, stderr) = cli(
        &[
            "vault",
            "init",
            "--data",
            data.to_str().unwrap(),
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
    serde_json::from_str(stdout.trim()).unwrap()
}

fn client(data: &Path) -> reqwest::Client {
    lockstep_server::tls::install_crypto_provider();
    let ca = std::fs::read(data.join("tls/ca.pem")).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap()
}

async fn get(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = client.get(format!("{}{path}", server.addr));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn post(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = client.post(format!("{}{path}", server.addr)).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn init_serve_unseal_seal_restart(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    let _db;
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let (url, _, name) = TestStore::empty_url(Backend::Postgres).await.unwrap();
            _db = DropDb(name);
            Some(url)
        }
    };

    // vault init --format json prints exactly one JSON object.
    let mut args = vec![
        "vault",
        "init",
        "--data",
        data.to_str().unwrap(),
        "--key-shares",
        "5",
        "--key-threshold",
        "3",
        "--format",
        "json",
    ];
    if let Some(url) = &database {
        args.extend(["--database", url.as_str()]);
    }
    let (ok, stdout, stderr) = cli(&args, "", &[]);
    assert!(ok, "vault init failed: {stderr}");
    let init: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"));
    assert_eq!(init.as_object().unwrap().len(), 3, "{init}");
    assert_eq!(init["key_threshold"], 3);
    let keys: Vec<String> = init["unseal_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 5);
    let token = init["operator_token"].as_str().unwrap().to_owned();

    // A second init of the same store is refused.
    let (ok, _, stderr) = cli(&args, "", &[]);
    assert!(!ok);
    assert!(stderr.contains("already initialized"), "{stderr}");

    // The first serve after init is sealed and prints no key shares.
    let server = serve(&data, database.as_deref());
    assert!(
        server
            .stdout
            .iter()
            .all(|l| !l.contains("lks1-") && !l.contains(&token)),
        "{:#?}",
        server.stdout
    );
    let http = client(&data);
    assert_eq!(
        get(&http, &server, "/healthz", None).await,
        (200, json!({"status": "ok", "sealed": true}))
    );
    let (status, problem) = get(&http, &server, "/api/v1/sys/organizations", Some(&token)).await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (503, Some("urn:lockstep:problem:sealed"))
    );

    // Unseal over HTTPS with shares 1, 3, 5.
    for (n, i) in [0, 2, 4].into_iter().enumerate() {
        let (status, body) = post(
            &http,
            &server,
            "/api/v1/sys/unseal",
            None,
            json!({"key": keys[i]}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["progress"], if n < 2 { n + 1 } else { 0 });
        assert_eq!(body["sealed"], n < 2);
    }
    let (status, created) = post(
        &http,
        &server,
        "/api/v1/sys/organizations",
        Some(&token),
        json!({"name": "Acme", "admin_email": "ada@acme.io"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let org_id = created["id"].as_str().unwrap().to_owned();

    // Seal from the CLI with the operator token in the environment.
    let ca = data.join("tls/ca.pem");
    let client_args = |cmd: &'static str, addr: &str| -> Vec<String> {
        vec![
            "vault".into(),
            cmd.into(),
            "--addr".into(),
            addr.to_owned(),
            "--ca-cert".into(),
            ca.to_str().unwrap().into(),
        ]
    };
    let seal_args = client_args("seal", &server.addr);
    let (ok, stdout, stderr) = cli(
        &seal_args.iter().map(String::as_str).collect::<Vec<_>>(),
        "",
        &[("LOCKSTEP_TOKEN", &token)],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Sealed"), "{stdout}");
    let (status, _) = get(&http, &server, "/api/v1/sys/organizations", Some(&token)).await;
    assert_eq!(status, 503);

    // Restart: sealed again; unseal with other shares, two of them from the CLI's standard input.
    drop(server);
    let server = serve(&data, database.as_deref());
    let http = client(&data);
    assert_eq!(
        get(&http, &server, "/healthz", None).await.1["sealed"],
        true
    );
    let unseal_args: Vec<String> = client_args("unseal", &server.addr);
    let unseal_args: Vec<&str> = unseal_args.iter().map(String::as_str).collect();
    for i in [1, 3] {
        let (ok, stdout, stderr) = cli(&unseal_args, &format!("{}\n", keys[i]), &[]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("Sealed:"), "{stdout}");
    }
    let (ok, _, stderr) = cli(&unseal_args, "lks1-not-a-share\n", &[]);
    assert!(!ok);
    assert!(
        stderr.contains("refused") && !stderr.contains("lks1-not-a-share"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = cli(&unseal_args, &format!("{}\n", keys[0]), &[]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Unsealed"), "{stdout}");

    let (status, list) = get(&http, &server, "/api/v1/sys/organizations", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(
        list,
        json!({"organizations": [{"id": org_id, "name": "Acme"}]})
    );

    // Plain HTTP on the same port gets no HTTP answer.
    let plain = reqwest::Client::builder()
        .build()
        .unwrap()
        .get(server.addr.replace("https://", "http://") + "/healthz")
        .send()
        .await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP was served"
    );
}

struct DropDb(Option<String>);
impl Drop for DropDb {
    fn drop(&mut self) {
        if let Some(name) = self.0.take() {
            let _ = Command::new("psql")
                .arg(lockstep_storage::testing::postgres_admin_url())
                .args([
                    "-q",
                    "-c",
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[tokio::test]
async fn init_serve_unseal_seal_restart_on_sqlite() {
    init_serve_unseal_seal_restart(Backend::Sqlite).await;
}

#[tokio::test]
async fn init_serve_unseal_seal_restart_on_postgres() {
    init_serve_unseal_seal_restart(Backend::Postgres).await;
}

#[tokio::test]
async fn first_start_of_an_empty_data_directory_initializes_prints_once_and_serves_unsealed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data, None);
    let printed = server.stdout.join("\n");
    let keys: Vec<&str> = printed
        .split_whitespace()
        .filter(|w| w.starts_with("lks1-"))
        .collect();
    assert_eq!(keys.len(), 3, "{printed}");
    assert!(printed.contains("lso_"), "{printed}");
    // The egress policy in force, with how to reach a database on this machine.
    assert!(
        printed.contains(
            "Connections may reach: public addresses only (use --egress-allow loopback,private to reach this machine or your network)"
        ),
        "{printed}"
    );
    let http = client(&data);
    assert_eq!(
        get(&http, &server, "/healthz", None).await.1["sealed"],
        false
    );
    let cert = std::fs::read(data.join("tls/cert.pem")).unwrap();
    // The data directory and the store in it are the operator's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: PathBuf| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(data.clone()), 0o700);
        assert_eq!(mode(data.join("lockstep.db")), 0o600);
    }
    drop(server);

    // The second start is sealed, prints no keys, and keeps the certificate.
    let server = serve_with(
        &data,
        &["--egress-allow", "loopback"],
        "warn",
        Stdio::inherit(),
    );
    assert!(
        server
            .stdout
            .contains(&"Connections may reach: this machine (loopback)".to_owned()),
        "{:#?}",
        server.stdout
    );
    assert!(
        server
            .stdout
            .iter()
            .all(|l| !l.contains("lks1-") && !l.contains("lso_")),
        "{:#?}",
        server.stdout
    );
    assert_eq!(
        get(&client(&data), &server, "/healthz", None).await.1["sealed"],
        true
    );
    assert_eq!(std::fs::read(data.join("tls/cert.pem")).unwrap(), cert);
}

#[tokio::test]
async fn dev_mode_unseals_by_itself_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    drop(serve_with(&data, &["--dev"], "warn", Stdio::null()));
    let mut server = serve_with(&data, &["--dev"], "warn", Stdio::piped());
    assert_eq!(
        get(&client(&data), &server, "/healthz", None).await.1["sealed"],
        false
    );
    let _ = server.child.kill();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut server.child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("WARNING: --dev"), "{stderr}");
}

#[test]
fn bad_command_lines_get_readable_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("never-made");
    let (ok, _, stderr) = cli(
        &[
            "vault",
            "init",
            "--data",
            data.to_str().unwrap(),
            "--key-shares",
            "3",
            "--key-threshold",
            "1",
        ],
        "",
        &[],
    );
    assert!(!ok);
    assert!(
        stderr.contains("--key-shares") && stderr.contains("threshold"),
        "{stderr}"
    );
    assert!(!data.exists(), "a refused init created the data directory");
    let (ok, _, stderr) = cli(&["serve", "--tls-key", "k.pem"], "", &[]);
    assert!(!ok);
    assert!(
        stderr.contains("--tls-cert and --tls-key go together"),
        "{stderr}"
    );
    let (ok, _, stderr) = cli(
        &["serve", "--database", "mysql://root:hunter2@localhost/x"],
        "",
        &[],
    );
    assert!(!ok);
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let (ok, _, stderr) = cli(&["serve", "--session-idle-timeout", "30"], "", &[]);
    assert!(!ok);
    assert!(
        stderr.contains("--session-idle-timeout must be at least 60 seconds"),
        "{stderr}"
    );
}

/// Sign-in over real HTTPS: the `__Host-` cookie, CSRF on cookie-authenticated writes, sign-out,
/// the per-address rate limit on sign-in routes, and the password-reset mail in DATA/outbox.
#[tokio::test]
async fn identity_over_https_cookies_csrf_rate_limit_and_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let init = init_one_share(&data);
    let server = serve_with(&data, &["--auth-rate-limit", "8"], "warn", Stdio::null());
    let http = client(&data);
    unseal_with_an_administrator(&http, &server, &init).await;

    let response = http
        .post(format!("{}/api/v1/auth/login", server.addr))
        .json(&json!({"email": "ada@acme.io", "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in [
        "__Host-lockstep_session=lss_",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let login: Value = response.json().await.unwrap();
    let csrf = login["csrf_token"].as_str().unwrap();
    let session_cookie = cookie.split(';').next().unwrap().to_owned();

    // The cookie authenticates reads; writes need the CSRF token too.
    let me = http
        .get(format!("{}/api/v1/me", server.addr))
        .header("cookie", &session_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let invite = |csrf: Option<&str>| {
        let mut req = http
            .post(format!("{}/api/v1/users/invitations", server.addr))
            .header("cookie", &session_cookie)
            .json(&json!({"email": "ed@acme.io", "role": "editor"}));
        if let Some(csrf) = csrf {
            req = req.header("x-csrf-token", csrf);
        }
        req.send()
    };
    assert_eq!(invite(None).await.unwrap().status(), 403);
    assert_eq!(invite(Some("lsc_wrong")).await.unwrap().status(), 403);
    assert_eq!(invite(Some(csrf)).await.unwrap().status(), 201);

    // Sign-out ends the session on the server and clears the cookie.
    let out = http
        .post(format!("{}/api/v1/auth/logout", server.addr))
        .header("cookie", &session_cookie)
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(out.headers()["clear-site-data"], "\"cookies\"");
    let me = http
        .get(format!("{}/api/v1/me", server.addr))
        .header("cookie", &session_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);

    // The reset mail lands in the outbox, with the link's token after '#', never in a query.
    let (status, _) = post(
        &http,
        &server,
        "/api/v1/auth/password-reset",
        None,
        json!({"email": "ada@acme.io"}),
    )
    .await;
    assert_eq!(status, 202);
    // Mailed after the answer.
    let reset = outbox_mail(&data, "Reset your Lockstep password").await;
    assert!(reset.contains("/reset-password#lsr_"), "{reset}");

    // Sign-in routes are rate-limited per address (8 per minute here; 5 requests were made).
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (status, _) = post(
            &http,
            &server,
            "/api/v1/auth/login",
            None,
            json!({"email": "x@acme.io", "password": "whatever it is"}),
        )
        .await;
        statuses.push(status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(
        get(&http, &server, "/healthz", None).await.0,
        200,
        "the limit is for sign-in routes only"
    );
}

/// Canary values go through a whole workflow; afterwards no log file and no line on standard
/// error holds any of them (nor any token, share or TOTP secret the hub handed out).
#[tokio::test]
async fn no_log_line_holds_a_secret_or_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The hub's standard error goes to a file: a pipe nobody drains while the hub starts
    // (debug logs every migration statement) would fill and block it.
    let stderr_path = dir.path().join("stderr.log");
    let stderr_file = std::fs::File::create(&stderr_path).unwrap();
    let server = serve_with(
        &data,
        &["--auth-rate-limit", "1000", "--egress-allow", "loopback"],
        "debug",
        Stdio::from(stderr_file),
    );
    let printed = server.stdout.clone();
    let http = client(&data);
    let printed = printed.join("\n");
    let operator = printed
        .split_whitespace()
        .find(|w| w.starts_with("lso_"))
        .unwrap()
        .to_owned();
    let mut secrets: Vec<String> = printed
        .split_whitespace()
        .filter(|w| w.starts_with("lks1-"))
        .map(str::to_owned)
        .collect();
    secrets.push(operator.clone());

    let canaries = [
        "canary-ada-5e1f@canary-acme.io",
        "canary-ed-5e1f@canary-acme.io",
        "CanaryOrg5e1f",
        "CanaryAda5e1f",
        "CanaryEd5e1f",
        "canary pass phrase 5e1f",
        "canary wrong phrase 5e1f",
        "canary new phrase 5e1f",
        "canary-db-password-5e1f",
    ];
    let (status, org) = post(
        &http,
        &server,
        "/api/v1/sys/organizations",
        Some(&operator),
        json!({"name": canaries[2], "admin_email": canaries[0]}),
    )
    .await;
    assert_eq!(status, 201, "{org}");
    let invitation = org["invitation_token"].as_str().unwrap().to_owned();
    secrets.push(invitation.clone());
    let (status, _) = post(
        &http,
        &server,
        "/api/v1/auth/invitations/accept",
        None,
        json!({"token": invitation, "password": canaries[5], "display_name": canaries[3]}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = post(
        &http,
        &server,
        "/api/v1/auth/login",
        None,
        json!({"email": canaries[0], "password": canaries[6]}),
    )
    .await;
    assert_eq!(status, 401);
    let (_, login) = post(
        &http,
        &server,
        "/api/v1/auth/login",
        None,
        json!({"email": canaries[0], "password": canaries[5]}),
    )
    .await;
    let session = login["session_token"].as_str().unwrap().to_owned();
    secrets.push(session.clone());
    secrets.push(login["csrf_token"].as_str().unwrap().to_owned());

    let (_, totp) = post(&http, &server, "/api/v1/me/totp", Some(&session), json!({})).await;
    let uri = totp["otpauth_uri"].as_str().unwrap();
    let secret = lockstep_auth::TotpSecret::from_otpauth_uri(uri).unwrap();
    secrets.push(
        uri.split("secret=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned(),
    );
    let code = secret
        .code_at(time::OffsetDateTime::now_utc())
        .unwrap()
        .to_string();
    let (status, codes) = post(
        &http,
        &server,
        "/api/v1/me/totp/confirm",
        Some(&session),
        json!({"code": code}),
    )
    .await;
    assert_eq!(status, 200, "{codes}");
    secrets.extend(
        codes["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned()),
    );

    let (status, token) = post(
        &http,
        &server,
        "/api/v1/me/tokens",
        Some(&session),
        json!({"name": "canary-ci", "scope": "manage", "expires_in_days": 3}),
    )
    .await;
    assert_eq!(status, 201);
    secrets.push(token["token"].as_str().unwrap().to_owned());

    let (status, invited) = post(
        &http,
        &server,
        "/api/v1/users/invitations",
        Some(&session),
        json!({"email": canaries[1], "role": "viewer"}),
    )
    .await;
    assert_eq!(status, 201);
    let ed_invitation = invited["invitation_token"].as_str().unwrap().to_owned();
    secrets.push(ed_invitation.clone());
    post(
        &http,
        &server,
        "/api/v1/auth/invitations/accept",
        None,
        json!({"token": ed_invitation, "password": canaries[5], "display_name": canaries[4]}),
    )
    .await;
    let (_, users) = get(&http, &server, "/api/v1/users", Some(&session)).await;
    let ed_id = users["users"][1]["id"].as_str().unwrap().to_owned();
    let patched = http
        .patch(format!("{}/api/v1/users/{ed_id}", server.addr))
        .bearer_auth(&session)
        .json(&json!({"role": "editor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);

    // A connection with a password: created, tested, discovered over HTTPS; its password
    // appears in no log line and nowhere in the store in clear.
    let pg = url::Url::parse(
        &std::env::var("LOCKSTEP_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
    )
    .unwrap();
    let (status, connection) = post(
        &http,
        &server,
        "/api/v1/connections",
        Some(&session),
        json!({"name": "Warehouse", "kind": "postgres",
            "config": {"host": pg.host_str().unwrap(), "port": pg.port().unwrap_or(5432),
                "database": pg.path().trim_start_matches('/'), "user": pg.username(), "tls": "disable"},
            "secrets": {"password": canaries[8]}}),
    )
    .await;
    assert_eq!(status, 201, "{connection}");
    let connection_id = connection["id"].as_str().unwrap().to_owned();
    let (status, tested) = post(
        &http,
        &server,
        &format!("/api/v1/connections/{connection_id}/test"),
        Some(&session),
        json!({}),
    )
    .await;
    assert_eq!((status, &tested["ok"]), (200, &json!(true)), "{tested}");
    let (status, found) = post(
        &http,
        &server,
        &format!("/api/v1/connections/{connection_id}/discover"),
        Some(&session),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert!(found["discovered_at"].is_string(), "{found}");

    // Password reset, completed with a TOTP code.
    post(
        &http,
        &server,
        "/api/v1/auth/password-reset",
        None,
        json!({"email": canaries[0]}),
    )
    .await;
    // Mailed after the answer; quoted-printable soft line breaks undone, as a mail client would.
    let reset_mail = outbox_mail(&data, "reset-password#")
        .await
        .replace("=\r\n", "")
        .replace("=\n", "");
    let reset = reset_mail
        .split("reset-password#")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    secrets.push(reset.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let next_code = secret
        .code_at(time::OffsetDateTime::now_utc() + time::Duration::seconds(30))
        .unwrap()
        .to_string();
    let (status, body) = post(
        &http,
        &server,
        "/api/v1/auth/password-reset/complete",
        None,
        json!({"token": reset, "password": canaries[7], "totp": next_code}),
    )
    .await;
    assert_eq!(status, 204, "{body}");

    drop(server);
    std::thread::sleep(Duration::from_millis(300));
    let mut logs = std::fs::read_to_string(&stderr_path).unwrap();
    for entry in std::fs::read_dir(data.join("logs")).unwrap() {
        logs.push('\n');
        logs.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    assert!(
        logs.contains("\"route\":\"/api/v1/auth/login\""),
        "request lines are missing: the test would prove nothing"
    );
    let mut at_rest = Vec::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("lockstep.db") {
            at_rest.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(!at_rest.is_empty(), "the store files were not found");
    let at_rest = String::from_utf8_lossy(&at_rest);
    assert!(
        !at_rest.contains(canaries[8]),
        "the connection's password is in the store in clear"
    );
    for canary in canaries.iter().map(|c| c.to_string()).chain(secrets) {
        assert!(!logs.contains(&canary), "a log line holds {canary:?}");
        // Also the part before the @ or the first word, in case something logs a fragment.
        let fragment = canary.split(['@', ' ']).next().unwrap();
        if fragment.len() >= 8 {
            assert!(!logs.contains(fragment), "a log line holds {fragment:?}");
        }
    }
}

/// A way to tamper with an exported ledger.
type Tamper = Box<dyn Fn(&mut Value)>;

/// The long-term ledger over the real binary: export it with the CLI, verify it offline, then
/// edit, delete, reorder or insert an entry: verification fails and names the first bad position.
#[tokio::test]
async fn exported_ledger_verifies_and_any_tampering_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let init = init_one_share(&data);
    let server = serve(&data, None);
    let http = client(&data);
    unseal_with_an_administrator(&http, &server, &init).await;
    let (_, login) = post(
        &http,
        &server,
        "/api/v1/auth/login",
        None,
        json!({"email": "ada@acme.io", "password": "correct horse battery staple"}),
    )
    .await;
    let session = login["session_token"].as_str().unwrap().to_owned();
    for email in ["b@acme.io", "c@acme.io", "d@acme.io", "e@acme.io"] {
        let (status, _) = post(
            &http,
            &server,
            "/api/v1/users/invitations",
            Some(&session),
            json!({"email": email, "role": "viewer"}),
        )
        .await;
        assert_eq!(status, 201);
    }
    // The API serves the newest checkpoint and proofs.
    let (status, checkpoint) = get(
        &http,
        &server,
        "/api/v1/audit/ledger/checkpoint",
        Some(&session),
    )
    .await;
    assert_eq!(status, 200, "{checkpoint}");
    assert!(
        checkpoint["checkpoint"]
            .as_str()
            .unwrap()
            .starts_with("lockstep/audit/")
    );
    let (status, proof) = get(
        &http,
        &server,
        "/api/v1/audit/ledger/proofs/consistency?from=2&to=5",
        Some(&session),
    )
    .await;
    assert_eq!(status, 200, "{proof}");

    let export = dir.path().join("ledger.json");
    let ca = data.join("tls/ca.pem");
    let (ok, stdout, stderr) = cli(
        &[
            "audit",
            "export",
            "--addr",
            &server.addr,
            "--ca-cert",
            ca.to_str().unwrap(),
            "--output",
            export.to_str().unwrap(),
        ],
        "",
        &[("LOCKSTEP_TOKEN", &session)],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Exported"), "{stdout}");
    let verify = |path: &Path| {
        cli(
            &["audit", "verify", "--export", path.to_str().unwrap()],
            "",
            &[],
        )
    };
    let (ok, stdout, stderr) = verify(&export);
    assert!(ok, "an untouched ledger must verify: {stdout} {stderr}");
    assert!(stdout.starts_with("OK:"), "{stdout}");

    let original: Value = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    assert!(
        original["entries"].as_array().unwrap().len() >= 7,
        "{original}"
    );
    let tampered = dir.path().join("tampered.json");
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "edit",
            Box::new(|v: &mut Value| {
                let e = v["entries"][5].clone();
                v["entries"][3] = e;
            }),
            "position 3",
        ),
        (
            "delete",
            Box::new(|v: &mut Value| {
                v["entries"].as_array_mut().unwrap().remove(4);
                v["running_roots"].as_array_mut().unwrap().remove(4);
            }),
            "position 4",
        ),
        (
            "reorder",
            Box::new(|v: &mut Value| v["entries"].as_array_mut().unwrap().swap(2, 6)),
            "position 2",
        ),
        (
            "insert",
            Box::new(|v: &mut Value| {
                let e = v["entries"][1].clone();
                v["entries"].as_array_mut().unwrap().insert(5, e);
                let r = v["running_roots"][1].clone();
                v["running_roots"].as_array_mut().unwrap().insert(5, r);
            }),
            "position 5",
        ),
    ];
    for (what, tamper, position) in cases {
        let mut copy = original.clone();
        tamper(&mut copy);
        std::fs::write(&tampered, serde_json::to_vec(&copy).unwrap()).unwrap();
        let (ok, stdout, _) = verify(&tampered);
        assert!(!ok, "{what}: a tampered ledger verified");
        assert!(
            stdout.contains(position),
            "{what}: the report does not name {position}: {stdout}"
        );
    }

    // A deleted organization leaves its ledger behind; it does not fail the verification.
    let operator = init["operator_token"].as_str().unwrap();
    let (status, brief) = post(
        &http,
        &server,
        "/api/v1/sys/organizations",
        Some(operator),
        json!({"name": "Brief", "admin_email": "bo@brief.io"}),
    )
    .await;
    assert_eq!(status, 201, "{brief}");
    let brief_id = brief["id"].as_str().unwrap().to_owned();
    let deleted = http
        .delete(format!(
            "{}/api/v1/sys/organizations/{brief_id}",
            server.addr
        ))
        .bearer_auth(operator)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);

    // The stored ledger, verified offline straight from the store, and tampered in the store.
    drop(server);
    let stored = |dir: &Path| {
        cli(
            &["audit", "verify", "--data", dir.to_str().unwrap()],
            "",
            &[],
        )
    };
    let (ok, stdout, stderr) = stored(&data);
    assert!(ok, "the stored ledger must verify: {stdout} {stderr}");
    assert!(
        stdout.contains(&format!(
            "organization {brief_id}: deleted; 2 entries and 1 checkpoint verified for structure, signatures included."
        )),
        "{stdout}"
    );
    // A deleted organization's ledger without a checkpoint (deleted before one was signed) is
    // still verified for structure, and its tampering still found.
    let copy_store = |name: &str| {
        let copy = dir.path().join(name);
        std::fs::create_dir_all(&copy).unwrap();
        for entry in std::fs::read_dir(&data).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_str().unwrap();
            if file.starts_with("lockstep.db") {
                std::fs::copy(&path, copy.join(file)).unwrap();
            }
        }
        copy
    };
    let unsigned = copy_store("unsigned");
    let store = lockstep_storage::Store::open_sqlite(&unsigned.join("lockstep.db"))
        .await
        .unwrap();
    lockstep_storage::testing::execute(
        &store,
        format!("DELETE FROM ledger_checkpoints WHERE organization_id = '{brief_id}'").leak(),
    )
    .await
    .unwrap();
    store.close().await;
    let (ok, stdout, stderr) = stored(&unsigned);
    assert!(
        ok,
        "an unsigned deleted ledger must verify: {stdout} {stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "organization {brief_id}: deleted; 2 entries and 0 checkpoints verified for structure."
        )),
        "{stdout}"
    );
    let store = lockstep_storage::Store::open_sqlite(&unsigned.join("lockstep.db"))
        .await
        .unwrap();
    lockstep_storage::testing::execute(
        &store,
        format!("DELETE FROM ledger_entries WHERE organization_id = '{brief_id}' AND idx = 0")
            .leak(),
    )
    .await
    .unwrap();
    store.close().await;
    let (ok, stdout, _) = stored(&unsigned);
    assert!(!ok, "a tampered deleted ledger verified: {stdout}");
    assert!(stdout.contains("position 0"), "{stdout}");
    let sql_cases: [(&str, &'static str, &str); 4] = [
        (
            "edit",
            "UPDATE ledger_entries SET entry = (SELECT entry FROM ledger_entries WHERE idx = 5) WHERE idx = 3",
            "position 3",
        ),
        (
            "delete",
            "DELETE FROM ledger_entries WHERE idx = 4",
            "position 4",
        ),
        (
            "reorder",
            "UPDATE ledger_entries SET idx = -1 WHERE idx = 2; UPDATE ledger_entries SET idx = 2 WHERE idx = 6; \
                     UPDATE ledger_entries SET idx = 6 WHERE idx = -1",
            "position 2",
        ),
        (
            "insert",
            "UPDATE ledger_entries SET idx = idx + 1000 WHERE idx >= 5; UPDATE ledger_entries SET idx = idx - 999 WHERE idx >= 1000; \
                    INSERT INTO ledger_entries (organization_id, idx, entry, running_root) \
                    SELECT organization_id, 5, entry, running_root FROM ledger_entries WHERE idx = 1",
            "position 5",
        ),
    ];
    for (what, sql, position) in sql_cases {
        let copy = dir.path().join(format!("copy-{what}"));
        std::fs::create_dir_all(&copy).unwrap();
        for entry in std::fs::read_dir(&data).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("lockstep.db")
            {
                std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
            }
        }
        let store = lockstep_storage::Store::open_sqlite(&copy.join("lockstep.db"))
            .await
            .unwrap();
        lockstep_storage::testing::execute(&store, sql)
            .await
            .unwrap();
        store.close().await;
        let (ok, stdout, _) = stored(&copy);
        assert!(!ok, "{what}: a tampered stored ledger verified");
        assert!(
            stdout.contains(position),
            "{what}: the report does not name {position}: {stdout}"
        );
    }
}

/// A source of `rows` records, and a view over it that reads slowly (5 ms every 1000 rows), so
/// a run lasts long enough to be killed in the middle.
async fn slow_source(db: &tokio_postgres::Client, table: &str, rows: i64) {
    db.batch_execute(&format!(
        "CREATE OR REPLACE FUNCTION lockstep_test_slow(n bigint) RETURNS boolean LANGUAGE plpgsql AS
           $$ BEGIN IF n % 1000 = 0 THEN PERFORM pg_sleep(0.005); END IF; RETURN true; END $$;
         CREATE TABLE public.{table} (id bigint PRIMARY KEY, part_no text NOT NULL, price numeric(12,2) NOT NULL);
         INSERT INTO public.{table} SELECT g, 'P-' || g, (g % 1000) / 10.0 FROM generate_series(1, {rows}) g;
         CREATE VIEW public.{table}_slow AS SELECT * FROM public.{table} WHERE lockstep_test_slow(id);"
    ))
    .await
    .unwrap();
}

async fn count(db: &tokio_postgres::Client, table: &str) -> i64 {
    db.query_one(&format!("SELECT count(*) FROM public.{table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// Signs in as the Administrator that `unseal_with_an_administrator` made.
async fn admin_session(http: &reqwest::Client, server: &Server) -> String {
    let (status, login) = post(
        http,
        server,
        "/api/v1/auth/login",
        None,
        json!({"email": "ada@acme.io", "password": "correct horse battery staple"}),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    login["session_token"].as_str().unwrap().to_owned()
}

/// A PostgreSQL connection to the test server, discovered; answers its id.
async fn pg_connection(http: &reqwest::Client, server: &Server, token: &str, name: &str) -> String {
    let pg = url::Url::parse(&lockstep_storage::testing::postgres_admin_url()).unwrap();
    let (status, created) = post(
        http,
        server,
        "/api/v1/connections",
        Some(token),
        json!({"name": name, "kind": "postgres",
            "config": {"host": pg.host_str().unwrap(), "port": pg.port().unwrap_or(5432),
                "database": pg.path().trim_start_matches('/'), "user": pg.username(), "tls": "disable"}}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, found) = post(
        http,
        server,
        &format!("/api/v1/connections/{id}/discover"),
        Some(token),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    id
}

/// Waits until the run is in one of `states`; answers it.
async fn wait_for(
    http: &reqwest::Client,
    server: &Server,
    token: &str,
    path: &str,
    states: &[&str],
    timeout: Duration,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, run) = get(http, server, path, Some(token)).await;
        assert_eq!(status, 200, "{run}");
        if states.contains(&run["state"].as_str().unwrap_or("")) {
            return run;
        }
        assert!(Instant::now() < deadline, "the run stayed {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `lockstep pipeline run` shows progress and a summary and exits 0; a failing run exits
/// non-zero. Then the hub is killed (SIGKILL) in the middle of a full refresh: the destination
/// still holds the old table, and after a restart the run is taken over and completes.
#[tokio::test]
async fn pipeline_runs_from_the_cli_and_survive_a_killed_hub() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let init = init_one_share(&data);
    let extra = ["--egress-allow", "loopback", "--run-lease", "3"];
    let server = serve_with(&data, &extra, "warn", Stdio::inherit());
    let http = client(&data);
    unseal_with_an_administrator(&http, &server, &init).await;
    let token = admin_session(&http, &server).await;

    let db = pg_client().await;
    let suffix = &uuid::Uuid::now_v7().simple().to_string()[20..];
    let source = format!("e2e_parts_{suffix}");
    let target = format!("e2e_items_{suffix}");
    slow_source(&db, &source, 200_000).await;
    let src = pg_connection(&http, &server, &token, "source").await;
    let dst = pg_connection(&http, &server, &token, "warehouse").await;
    let (status, pipeline) = post(
        &http,
        &server,
        "/api/v1/pipelines",
        Some(&token),
        json!({"name": "items", "source": {"connection_id": src, "object": format!("public.{source}_slow")},
            "destination": {"connection_id": dst, "object": format!("public.{target}")},
            "mappings": [{"source": "id", "destination": "id"}, {"source": "part_no", "destination": "item_code"},
                {"source": "price", "destination": "unit_price"}],
            "rules": [{"kind": "validation", "expression": "price >= 0.0"}],
            "mode": "full_refresh"}),
    )
    .await;
    assert_eq!(status, 201, "{pipeline}");
    let pipeline = pipeline["id"].as_str().unwrap().to_owned();

    let ca = data.join("tls/ca.pem");
    let run_cli = |name: &str| {
        cli(
            &[
                "pipeline",
                "run",
                name,
                "--addr",
                &server.addr,
                "--ca-cert",
                ca.to_str().unwrap(),
            ],
            "",
            &[("LOCKSTEP_TOKEN", token.as_str())],
        )
    };
    let (ok, stdout, stderr) = run_cli("items");
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("succeeded: 200000 read, 200000 written, 0 rejected"),
        "{stdout}"
    );
    assert_eq!(count(&db, &target).await, 200_000);
    let (ok, _, stderr) = run_cli("no such pipeline");
    assert!(!ok && stderr.contains("no pipeline named"), "{stderr}");

    // A run that fails exits non-zero and says why.
    let (status, bad) = post(
        &http,
        &server,
        "/api/v1/pipelines",
        Some(&token),
        json!({"name": "broken", "source": {"connection_id": src, "object": format!("public.{source}")},
            "destination": {"connection_id": dst, "object": format!("public.{source}_slow")},
            "mode": "append"}),
    )
    .await;
    assert_eq!(status, 201, "{bad}");
    let (ok, stdout, stderr) = run_cli("broken");
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("failed"), "{stdout}\n{stderr}");

    // Kill the hub in the middle of a full refresh of more rows.
    db.batch_execute(&format!(
        "INSERT INTO public.{source} SELECT g, 'P-' || g, 1 FROM generate_series(200001, 300000) g"
    ))
    .await
    .unwrap();
    let (status, started) = post(
        &http,
        &server,
        &format!("/api/v1/pipelines/{pipeline}/runs"),
        Some(&token),
        json!({}),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let run_path = format!(
        "/api/v1/pipelines/{pipeline}/runs/{}",
        started["id"].as_str().unwrap()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, run) = get(&http, &server, &run_path, Some(&token)).await;
        if run["state"] == "running" && run["records_read"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert_ne!(
            run["state"], "succeeded",
            "the run ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "{run}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    assert_eq!(
        count(&db, &target).await,
        200_000,
        "readers still see the old table"
    );
    drop(server);

    let server = serve_with(&data, &extra, "warn", Stdio::inherit());
    let (status, _) = post(
        &http,
        &server,
        "/api/v1/sys/unseal",
        None,
        json!({"key": init["unseal_keys"][0]}),
    )
    .await;
    assert_eq!(status, 200);
    let token = admin_session(&http, &server).await;
    let run = wait_for(
        &http,
        &server,
        &token,
        &run_path,
        &["succeeded", "failed", "cancelled"],
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert!(run["attempts"].as_u64().unwrap() >= 2, "{run}");
    assert_eq!(
        count(&db, &target).await,
        300_000,
        "the new table, complete"
    );
    let leftovers: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname LIKE $1",
            &[&format!("{target}__lockstep%")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leftovers, 0, "no staging table is left behind");
    db.batch_execute(&format!(
        "DROP VIEW public.{source}_slow; DROP TABLE public.{source}; DROP TABLE public.{target}"
    ))
    .await
    .unwrap();
}

/// Scale-out on PostgreSQL: `serve` executes nothing (`--workers 0`), two `lockstep worker`
/// processes share the runs; one is killed in the middle of a run, the other takes it over.
#[tokio::test]
async fn two_workers_share_the_runs_and_take_over_a_dead_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (url, _, name) = TestStore::empty_url(Backend::Postgres).await.unwrap();
    let _db = DropDb(name);
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
    let server = serve_with(
        &data,
        &[
            "--database",
            &url,
            "--workers",
            "0",
            "--egress-allow",
            "loopback",
        ],
        "warn",
        Stdio::inherit(),
    );
    let http = client(&data);
    unseal_with_an_administrator(&http, &server, &init).await;
    let token = admin_session(&http, &server).await;
    let share = format!("{}\n", init["unseal_keys"][0].as_str().unwrap());
    let start_worker = || {
        let mut child = Command::new(BIN)
            .args([
                "worker",
                "--database",
                &url,
                "--egress-allow",
                "loopback",
                "--run-lease",
                "3",
            ])
            .env("LOCKSTEP_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // The share, and stdin stays open (the worker does not need it after unsealing).
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(share.as_bytes()).unwrap();
        (child, stdin)
    };
    let mut first = start_worker();
    let mut second = start_worker();

    let db = pg_client().await;
    let suffix = &uuid::Uuid::now_v7().simple().to_string()[20..];
    let source = format!("e2e_w_{suffix}");
    slow_source(&db, &source, 150_000).await;
    let src = pg_connection(&http, &server, &token, "source").await;
    let mut runs = Vec::new();
    for n in 0..3 {
        let (status, pipeline) = post(
            &http,
            &server,
            "/api/v1/pipelines",
            Some(&token),
            json!({"name": format!("copy {n}"), "source": {"connection_id": src, "object": format!("public.{source}_slow")},
                "destination": {"connection_id": src, "object": format!("public.{source}_copy{n}")},
                "mode": "full_refresh"}),
        )
        .await;
        assert_eq!(status, 201, "{pipeline}");
        let id = pipeline["id"].as_str().unwrap().to_owned();
        let (status, run) = post(
            &http,
            &server,
            &format!("/api/v1/pipelines/{id}/runs"),
            Some(&token),
            json!({}),
        )
        .await;
        assert_eq!(status, 202, "{run}");
        runs.push(format!(
            "/api/v1/pipelines/{id}/runs/{}",
            run["id"].as_str().unwrap()
        ));
    }
    // Once two runs are running (one per worker), kill the first worker.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut running = 0;
        for path in &runs {
            let (_, run) = get(&http, &server, path, Some(&token)).await;
            if run["state"] == "running" {
                running += 1;
            }
        }
        if running >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "two workers never ran two runs at once"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    drop(first.1);
    for path in &runs {
        let run = wait_for(
            &http,
            &server,
            &token,
            path,
            &["succeeded", "failed", "cancelled"],
            Duration::from_secs(120),
        )
        .await;
        assert_eq!(run["state"], "succeeded", "{run}");
    }
    for n in 0..3 {
        assert_eq!(count(&db, &format!("{source}_copy{n}")).await, 150_000);
    }
    let _ = second.0.kill();
    let _ = second.0.wait();
    drop(second.1);
    db.batch_execute(&format!(
        "DROP VIEW public.{source}_slow; DROP TABLE public.{source}; DROP TABLE public.{source}_copy0; \
         DROP TABLE public.{source}_copy1; DROP TABLE public.{source}_copy2"
    ))
    .await
    .unwrap();
}

/// A list literal of `n` integers, for expressions whose cost is known before they run.
fn int_list(n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    format!("[{}]", items.join(","))
}

/// An Editor's hostile rules cannot take the hub down: the security test's expressions are
/// refused when saved (and the hub still answers), and while the costliest rule that is allowed
/// runs, `/healthz` and another organization's sign-in answer within a second; cancelling the
/// run stops it in the middle of its rules.
#[tokio::test]
async fn the_costliest_allowed_rule_never_stalls_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let init = init_one_share(&data);
    // Two runs at once: were rules evaluated on the runtime's threads (one per core here), the
    // two would hold both of them and nothing else would be answered.
    let server = serve_with(
        &data,
        &["--egress-allow", "loopback", "--workers", "2"],
        "warn",
        Stdio::inherit(),
    );
    let http = client(&data);
    unseal_with_an_administrator(&http, &server, &init).await;
    let token = admin_session(&http, &server).await;
    // another organization, whose member signs in while the rule runs
    let (status, org) = post(
        &http,
        &server,
        "/api/v1/sys/organizations",
        init["operator_token"].as_str(),
        json!({"name": "Globex", "admin_email": "bea@globex.io"}),
    )
    .await;
    assert_eq!(status, 201, "{org}");
    let (status, _) = post(&http, &server, "/api/v1/auth/invitations/accept", None,
        json!({"token": org["invitation_token"], "password": "another long passphrase", "display_name": "Bea"})).await;
    assert_eq!(status, 201);

    let db = pg_client().await;
    let suffix = &uuid::Uuid::now_v7().simple().to_string()[20..];
    let source = format!("e2e_cost_{suffix}");
    let target = format!("e2e_cost_out_{suffix}");
    db.batch_execute(&format!(
        "CREATE TABLE public.{source} (id bigint PRIMARY KEY, part_no text NOT NULL);
         INSERT INTO public.{source} SELECT g, 'P-' || g FROM generate_series(1, 3000) g;"
    ))
    .await
    .unwrap();
    let src = pg_connection(&http, &server, &token, "source").await;
    let dst = pg_connection(&http, &server, &token, "warehouse").await;
    let pipeline = |rule: String| {
        json!({"name": format!("cost {}", rule.len()),
            "source": {"connection_id": src, "object": format!("public.{source}")},
            "destination": {"connection_id": dst, "object": format!("public.{target}")},
            "rules": [{"kind": "validation", "expression": rule, "message": "costly"}],
            "mode": "full_refresh"})
    };

    // The security test's expressions are refused with the rule named; the hub lives on.
    let l = int_list(100);
    for (rule, reason) in [
        (format!("{} > 0", vec!["1"; 6000].join("+")), "is too long"),
        (
            format!("{} > 0", vec!["1"; 1500].join("+")),
            "is too complex",
        ),
        (
            format!("{l}.all(a, {l}.all(b, {l}.all(c, {l}.all(d, a + b + c + d >= 0))))"),
            "may cost too much",
        ),
        (
            format!("{l}.map(a, {l}.map(b, {l}.map(c, [a, b, c]))).size() > 0"),
            "may cost too much",
        ),
    ] {
        let (status, problem) = post(
            &http,
            &server,
            "/api/v1/pipelines",
            Some(&token),
            pipeline(rule),
        )
        .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], "rules[0].expression", "{problem}");
        assert!(problem.to_string().contains(reason), "{reason}: {problem}");
        let (status, _) = get(&http, &server, "/healthz", None).await;
        assert_eq!(status, 200);
    }

    // The costliest allowed: 80 × 80 iterations a record (an estimated 84,000 steps), in two
    // pipelines to two tables, run at once.
    let l = int_list(80);
    let costly = pipeline(format!("{l}.all(a, {l}.all(b, a + b + id >= 0))"));
    let mut twin = costly.clone();
    twin["name"] = json!("cost twin");
    twin["destination"]["object"] = json!(format!("public.{target}_2"));
    let mut run_paths = Vec::new();
    for definition in [costly, twin] {
        let (status, created) = post(
            &http,
            &server,
            "/api/v1/pipelines",
            Some(&token),
            definition,
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap();
        let (status, started) = post(
            &http,
            &server,
            &format!("/api/v1/pipelines/{id}/runs"),
            Some(&token),
            json!({}),
        )
        .await;
        assert_eq!(status, 202, "{started}");
        run_paths.push(format!(
            "/api/v1/pipelines/{id}/runs/{}",
            started["id"].as_str().unwrap()
        ));
    }
    for run_path in &run_paths {
        wait_for(
            &http,
            &server,
            &token,
            run_path,
            &["running"],
            Duration::from_secs(30),
        )
        .await;
    }

    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let (status, _) = get(&http, &server, "/healthz", None).await;
        assert_eq!(status, 200);
        let (status, login) = post(
            &http,
            &server,
            "/api/v1/auth/login",
            None,
            json!({"email": "bea@globex.io", "password": "another long passphrase"}),
        )
        .await;
        assert_eq!(status, 200, "{login}");
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for run_path in &run_paths {
        let (_, run) = get(&http, &server, run_path, Some(&token)).await;
        assert_eq!(
            run["state"], "running",
            "both rules ran while we measured: {run}"
        );
    }
    assert!(
        slowest < Duration::from_secs(1),
        "/healthz and a sign-in took {slowest:?} while the rule ran"
    );

    // Cancelling stops each rule in the middle of its work.
    for run_path in &run_paths {
        let cancelled_at = Instant::now();
        let (status, _) = post(
            &http,
            &server,
            &format!("{run_path}/cancel"),
            Some(&token),
            json!({}),
        )
        .await;
        assert!(status == 202 || status == 200, "{status}");
        let run = wait_for(
            &http,
            &server,
            &token,
            run_path,
            &["cancelled", "failed", "succeeded"],
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(run["state"], "cancelled", "{run}");
        assert!(cancelled_at.elapsed() < Duration::from_secs(5));
        assert_eq!(run["records_written"], 0, "{run}");
    }
    db.batch_execute(&format!(
        "DROP TABLE public.{source}; DROP TABLE IF EXISTS public.{target}; \
         DROP TABLE IF EXISTS public.{target}_2"
    ))
    .await
    .unwrap();
}

/// The sealed hub's printed unseal command works as printed from another directory (it names
/// the data directory, where the CA is), and several shares piped into it are all entered.
#[tokio::test]
async fn the_printed_unseal_command_works_as_printed_with_piped_shares() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub data");
    let (ok, stdout, stderr) = cli(
        &[
            "vault",
            "init",
            "--data",
            data.to_str().unwrap(),
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
    let server = serve(&data, None);
    let hint = server
        .stdout
        .iter()
        .find(|line| line.contains("lockstep vault unseal"))
        .unwrap_or_else(|| panic!("no unseal hint in {:#?}", server.stdout));
    let command = hint.split('`').nth(1).unwrap();
    let words = shlex::split(command).unwrap();
    assert_eq!(words[0], "lockstep");
    assert!(words.contains(&"--data".to_owned()), "{command}");
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    let keys: Vec<&str> = init["unseal_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();

    // One share at a time: the progress.
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |stdin: &str| {
        let out = Command::new(BIN)
            .args(&args)
            .current_dir(elsewhere.path())
            .env_remove("LOCKSTEP_DATA")
            .env_remove("LOCKSTEP_CA_CERT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child.stdin.take().unwrap().write_all(stdin.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stdout, stderr) = run(&format!("{}\n", keys[0]));
    assert!(ok, "the printed command failed: {stdout} {stderr}");
    assert!(stdout.contains("Sealed: 1 of 2"), "{stdout}");
    // Shares are entered until the hub opens; a blank line is skipped, the rest is not sent.
    let (ok, stdout, stderr) = run(&format!("\n{}\n{}\n", keys[1], keys[2]));
    assert!(ok, "{stdout} {stderr}");
    assert!(stdout.contains("Entered 1 key share."), "{stdout}");
    assert!(stdout.contains("Unsealed."), "{stdout}");
    let http = client(&data);
    let (status, seal) = get(&http, &server, "/api/v1/sys/seal-status", None).await;
    assert_eq!(status, 200);
    assert_eq!(seal["sealed"], false);

    // Sealed again, two shares piped at once are both entered and the hub opens.
    let (ok, _, stderr) = cli(
        &[
            "vault",
            "seal",
            "--addr",
            &server.addr,
            "--data",
            data.to_str().unwrap(),
        ],
        "",
        &[("LOCKSTEP_TOKEN", init["operator_token"].as_str().unwrap())],
    );
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = run(&format!("{}\n{}\n", keys[2], keys[0]));
    assert!(ok, "{stdout} {stderr}");
    assert!(
        stdout.contains("Entered 2 key shares.") && stdout.contains("Unsealed."),
        "{stdout}"
    );
    // A refused share is named by its line, and the run fails while still sealed.
    let (ok, _, stderr) = cli(
        &[
            "vault",
            "seal",
            "--addr",
            &server.addr,
            "--data",
            data.to_str().unwrap(),
        ],
        "",
        &[("LOCKSTEP_TOKEN", init["operator_token"].as_str().unwrap())],
    );
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = run(&format!("lks1-not-a-share\n{}\n", keys[1]));
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("Share 1 refused"), "{stderr}");
    assert!(
        stdout.contains("Entered 1 key share (1 refused)."),
        "{stdout}"
    );
    assert!(stdout.contains("Sealed: 1 of 2"), "{stdout}");
}

/// The one-time printout counts in words: "once", "1 of 1 key unseals", never "time(s)".
#[test]
fn the_printout_counts_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, stdout, stderr) = cli(
        &[
            "vault",
            "init",
            "--data",
            data.to_str().unwrap(),
            "--key-shares",
            "1",
            "--key-threshold",
            "1",
        ],
        "",
        &[],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("1 of 1 key unseals the hub"), "{stdout}");
    assert!(
        stdout.contains("run `lockstep vault unseal` once, one key each"),
        "{stdout}"
    );
    assert!(!stdout.contains("(s)"), "{stdout}");
}

/// The first mail in `DATA/outbox` containing `needle`, waiting up to 20 s for it (mails that
/// anonymous requests cause are sent after the answer).
async fn outbox_mail(data: &std::path::Path, needle: &str) -> String {
    for _ in 0..200 {
        let found = std::fs::read_dir(data.join("outbox"))
            .into_iter()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .find(|m| m.replace("=\r\n", "").replace("=\n", "").contains(needle));
        if let Some(mail) = found {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no mail with {needle:?} in the outbox");
}
