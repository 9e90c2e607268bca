//! Passkeys in a real browser: Chromium's virtual authenticator (the WebDriver WebAuthn
//! extension: CTAP2, internal transport, resident keys, user verification) registers a passkey
//! on the account page, signs in with it alone, confirms a password sign-in with it, and is
//! refused once the passkey is removed.
//!
//! WebAuthn needs a host name (not an IP address) and a certificate the browser trusts: the hub
//! listens on a chosen port with `--public-url https://localhost:PORT`, and Chromium is told to
//! trust the hub's self-signed certificate by its public key (`--ignore-certificate-errors-spki-list`).

use super::{Api, Driver, PASSWORD, Ui, chromedriver, chromium_with, screenshots};
use crate::support::{cli, serve_with};
use base64::Engine as _;
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{Value, json};
use sha2::Digest as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A raw WebDriver command of the WebAuthn extension (fantoccini has none of its own).
#[derive(Debug)]
struct WebAuthnCommand {
    method: reqwest::Method,
    /// The path after `/session/{id}/`.
    path: String,
    body: Option<Value>,
}

impl WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or(""),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}

/// The base64 SHA-256 of the certificate's public key, as Chromium's SPKI list wants it.
fn spki_hash(cert_pem: &[u8]) -> String {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let digest = sha2::Sha256::digest(cert.public_key().raw);
    base64::engine::general_purpose::STANDARD.encode(digest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_in_a_real_browser() {
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("https://localhost:{port}");
    let _server = serve_with(
        data.path(),
        &["--listen", &listen, "--public-url", &base],
        "warn",
        Stdio::inherit(),
    );
    let ca = std::fs::read(data.path().join("tls/ca.pem")).unwrap();
    let mut api = Api {
        http: reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .build()
            .unwrap(),
        base: base.clone(),
        token: None,
    };
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

    let cert = std::fs::read(data.path().join("tls/cert.pem")).unwrap();
    let driver: Driver = chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let ui = Ui {
        client: chromium_with(
            &driver,
            profile.path(),
            &[format!(
                "--ignore-certificate-errors-spki-list={}",
                spki_hash(&cert)
            )],
        )
        .await,
        base,
        shots: screenshots(),
    };
    let outcome = tokio::time::timeout(Duration::from_secs(300), story(&ui)).await;
    let _ = ui.client.clone().close().await;
    outcome.expect("the passkey story took longer than 5 minutes");
}

async fn webauthn(ui: &Ui, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    ui.client
        .issue_cmd(WebAuthnCommand {
            method,
            path: path.to_owned(),
            body,
        })
        .await
        .unwrap()
}

/// Waits until the browser is on a page whose path starts with `prefix`.
async fn wait_path(ui: &Ui, prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let path = ui.path().await;
        if path.starts_with(prefix) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still on {path}, not {prefix}: {}",
            ui.body().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn story(ui: &Ui) {
    // A platform authenticator with user verification that keeps discoverable credentials.
    let added = webauthn(
        ui,
        reqwest::Method::POST,
        "webauthn/authenticator",
        Some(json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        })),
    )
    .await;
    let authenticator = added.as_str().unwrap().to_owned();

    // Register a passkey on the account page.
    ui.sign_in("ada@acme.test", None).await;
    ui.go("/account").await;
    ui.wait("#passkeys").await;
    assert!(ui.text("#passkeys").await.contains("No passkey."));
    ui.fill("#passkey-name", "Work laptop").await;
    ui.click("#passkey-add").await;
    // The page is loaded anew with a notice (app.js then drops it from the address).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ui.has("#passkey-list").await {
        // The page may be replaced between finding the element and reading it: a stale
        // element reads as no error yet.
        let error = match ui
            .client
            .find(fantoccini::Locator::Css(
                "[data-passkey-register] [data-passkey-error]",
            ))
            .await
        {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        assert!(
            Instant::now() < deadline && error.is_empty(),
            "the passkey was not added: {error:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ui.wait_text("#passkey-list", "Work laptop").await;
    ui.wait_text("#page-notice", "The passkey was added").await;
    ui.shot("passkeys-01-account").await;
    let credentials = webauthn(
        ui,
        reqwest::Method::GET,
        &format!("webauthn/authenticator/{authenticator}/credentials"),
        None,
    )
    .await;
    let credentials = credentials.as_array().unwrap();
    assert_eq!(credentials.len(), 1, "{credentials:?}");
    assert_eq!(credentials[0]["isResidentCredential"], json!(true));
    assert_eq!(credentials[0]["rpId"], json!("localhost"));

    // Signed out, the passkey alone signs in.
    ui.sign_out().await;
    ui.wait("#passkey-sign-in").await;
    ui.shot("passkeys-02-sign-in").await;
    ui.click("#passkey-sign-in").await;
    wait_path(ui, "/").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while ui.path().await.starts_with("/login") {
        assert!(Instant::now() < deadline, "{}", ui.body().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ui.go("/account").await;
    ui.wait_text("#passkey-list", "Work laptop").await;
    assert!(
        !ui.text("#passkey-list").await.contains("Never"),
        "the passkey's last use is shown"
    );

    // A password sign-in now needs the second step: the passkey instead of a code.
    ui.sign_out().await;
    ui.go("/login").await;
    ui.fill("#email", "ada@acme.test").await;
    ui.fill("#password", PASSWORD).await;
    ui.submit("form[action='/login'] button[type=submit]").await;
    ui.wait("#passkey-second-factor").await;
    ui.shot("passkeys-03-second-step").await;
    ui.click("#passkey-second-factor").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while ui.path().await.starts_with("/login") {
        assert!(Instant::now() < deadline, "{}", ui.body().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Removed, it signs in no more.
    ui.go("/account").await;
    ui.client
        .execute("window.confirm = function () { return true; };", vec![])
        .await
        .unwrap();
    ui.submit("form[action$='/remove'] button[type=submit]")
        .await;
    ui.wait_text("#page-notice", "The passkey was removed")
        .await;
    assert!(ui.text("#passkeys").await.contains("No passkey."));
    ui.shot("passkeys-04-removed").await;
    ui.sign_out().await;
    ui.click("#passkey-sign-in").await;
    ui.wait_text(
        "[data-passkey-sign-in] [data-passkey-error]",
        "not registered here",
    )
    .await;
    assert!(ui.path().await.starts_with("/login"));
    ui.shot("passkeys-05-refused").await;
}
