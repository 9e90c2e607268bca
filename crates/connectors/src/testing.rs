//! Test helpers (feature `testing`): a real OAuth 2.0 / OpenID Connect authorization server.
//!
//! [`OidcPeer::start`] runs `tests/peers/oidc/server.mjs` (the npm package `oidc-provider`) with
//! Node.js on a free loopback port; the process is killed when the peer is dropped. Its
//! dependencies come from `npm ci --prefix tests/peers/oidc`, which `scripts/test` runs.

use serde::Deserialize;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

const HOW_TO_INSTALL: &str = "run ./scripts/test, or npm ci --prefix tests/peers/oidc";

/// A running `oidc-provider` with three clients, a protected JSON API (`GET {api}/items`, …)
/// and test-only endpoints that set the signed-in account's claims and change the next ID
/// token (see `tests/peers/oidc/README.md`).
#[derive(Debug)]
pub struct OidcPeer {
    /// `http://127.0.0.1:<port>`
    pub issuer: String,
    /// The confidential client for the authorization code flow (PKCE required, refresh tokens,
    /// `client_secret_basic`), allowed the redirect URIs given to [`OidcPeer::start`].
    pub client_id: String,
    pub client_secret: String,
    /// The client for the client credentials grant (scope `items:read`).
    pub cc_client_id: String,
    pub cc_client_secret: String,
    /// A second confidential web client (authorization code, PKCE, `openid email profile`),
    /// with the same redirect URIs: another organization's registration at the same provider.
    pub client2_id: String,
    pub client2_secret: String,
    /// `http://127.0.0.1:<port>/api`, protected by the peer's access tokens.
    pub api: String,
    authorization_endpoint: String,
    token_endpoint: String,
    revocation_endpoint: String,
    child: Child,
    /// Kept open so that the peer never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

#[derive(Deserialize)]
struct Ready {
    issuer: String,
    client_id: String,
    client_secret: String,
    cc_client_id: String,
    cc_client_secret: String,
    client2_id: String,
    client2_secret: String,
    api: String,
}

#[derive(Deserialize)]
struct Discovery {
    authorization_endpoint: String,
    token_endpoint: String,
    revocation_endpoint: String,
}

/// The peer's folder in the repository.
pub fn oidc_peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/oidc")
}

impl OidcPeer {
    /// Starts a peer whose web client accepts `redirect_uris` (at least one is used: a
    /// placeholder when the list is empty) and whose access tokens live `access_token_ttl_secs`.
    /// The peer's stderr is the test's.
    pub async fn start(
        redirect_uris: &[&str],
        access_token_ttl_secs: u32,
    ) -> Result<OidcPeer, String> {
        let dir = oidc_peer_dir();
        if !dir.join("node_modules/oidc-provider").is_dir() {
            return Err(format!(
                "the OIDC test peer's npm packages are not installed in {} ({HOW_TO_INSTALL})",
                dir.join("node_modules").display()
            ));
        }
        let mut command = Command::new("node");
        command
            .arg(dir.join("server.mjs"))
            .args(["--port", "0", "--access-token-ttl"])
            .arg(access_token_ttl_secs.to_string())
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for uri in redirect_uris {
            command.args(["--redirect-uri", uri]);
        }
        let mut child = command.spawn().map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                format!("Node.js (node) is not installed, needed for the OIDC test peer ({HOW_TO_INSTALL})")
            } else {
                format!("cannot start the OIDC test peer: {err}")
            }
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the OIDC test peer has no stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(20), stdout.read_line(&mut line))
            .await
            .map_err(|_| "the OIDC test peer did not start within 20 s".to_owned())?
            .map_err(|err| format!("cannot read from the OIDC test peer: {err}"))?;
        if read == 0 {
            let status = child.try_wait().ok().flatten();
            return Err(format!(
                "the OIDC test peer exited before it was ready ({}; see its output above)",
                status.map_or_else(|| "still running".to_owned(), |s| s.to_string())
            ));
        }
        let ready: Ready = serde_json::from_str(line.trim())
            .map_err(|err| format!("the OIDC test peer printed an unexpected first line: {err}"))?;
        let discovery: Discovery = client(false)?
            .get(format!("{}/.well-known/openid-configuration", ready.issuer))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|err| format!("cannot read the OIDC test peer's discovery document: {err}"))?
            .json()
            .await
            .map_err(|err| format!("the OIDC test peer's discovery document: {err}"))?;
        Ok(OidcPeer {
            issuer: ready.issuer,
            client_id: ready.client_id,
            client_secret: ready.client_secret,
            cc_client_id: ready.cc_client_id,
            cc_client_secret: ready.cc_client_secret,
            client2_id: ready.client2_id,
            client2_secret: ready.client2_secret,
            api: ready.api,
            authorization_endpoint: discovery.authorization_endpoint,
            token_endpoint: discovery.token_endpoint,
            revocation_endpoint: discovery.revocation_endpoint,
            child,
            _stdout: stdout,
        })
    }

    pub fn authorization_endpoint(&self) -> String {
        self.authorization_endpoint.clone()
    }

    pub fn token_endpoint(&self) -> String {
        self.token_endpoint.clone()
    }

    pub fn revocation_endpoint(&self) -> String {
        self.revocation_endpoint.clone()
    }

    /// Plays the user's browser: requests `authorize_url` and follows the redirects (with
    /// cookies) through the peer's login and consent, which approve everything, until a
    /// `Location` starts with `redirect_prefix`. Answers that URL (with `code` and `state`, or
    /// `error`) without requesting it.
    pub async fn approve(
        &self,
        authorize_url: &str,
        redirect_prefix: &str,
    ) -> Result<url::Url, String> {
        let browser = client(true)?;
        let mut url = url::Url::parse(authorize_url)
            .map_err(|err| format!("the authorization URL does not parse: {err}"))?;
        for _ in 0..20 {
            let response = browser
                .get(url.clone())
                .send()
                .await
                .map_err(|err| format!("GET {url}: {err}"))?;
            let status = response.status();
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned);
            let Some(location) = location.filter(|_| status.is_redirection()) else {
                let body = response.text().await.unwrap_or_default();
                let body: String = body.chars().take(2000).collect();
                return Err(format!(
                    "GET {url} answered {status}, not a redirect: {body}"
                ));
            };
            let next = url
                .join(&location)
                .map_err(|err| format!("GET {url} redirected to an invalid Location: {err}"))?;
            if next.as_str().starts_with(redirect_prefix) {
                return Ok(next);
            }
            url = next;
        }
        Err("the authorization server redirected more than 20 times".to_owned())
    }

    /// Plays the browser like [`OidcPeer::approve`] and answers the callback's `code` and
    /// `state` (an error when the provider answered `error` instead).
    pub async fn approve_code(
        &self,
        authorize_url: &str,
        redirect_prefix: &str,
    ) -> Result<(String, String), String> {
        let callback = self.approve(authorize_url, redirect_prefix).await?;
        let param = |name: &str| {
            callback
                .query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        if let Some(error) = param("error") {
            return Err(format!("the provider answered error={error}"));
        }
        match (param("code"), param("state")) {
            (Some(code), Some(state)) => Ok((code, state)),
            _ => Err("the callback has no code or no state".to_owned()),
        }
    }

    /// The second web client's id and secret.
    pub fn second_client(&self) -> (String, String) {
        (self.client2_id.clone(), self.client2_secret.clone())
    }

    /// Sets the claims of the account the next sign-ins get (`POST /test/account`): for
    /// example `{"email": "ann@example.com", "email_verified": true, "name": "Ann"}`; `sub`
    /// is `test-user` unless given. The claims are read when a token is issued.
    pub async fn set_account(&self, claims: serde_json::Value) -> Result<(), String> {
        self.test_post("/test/account", claims).await
    }

    /// Changes the next ID token the token endpoint answers (`POST /test/next-id-token`),
    /// signed again with the provider's key: `iss`, `aud`, `azp`, `nonce` replaced;
    /// `exp_offset_secs` sets `exp` to now + offset; `remove` (claim names) and `set` (an
    /// object of claims); `break_signature: true` signs with another key under the same `kid`.
    pub async fn inject_next_id_token(&self, change: serde_json::Value) -> Result<(), String> {
        self.test_post("/test/next-id-token", change).await
    }

    async fn test_post(&self, path: &str, body: serde_json::Value) -> Result<(), String> {
        let response = client(false)?
            .post(format!("{}{path}", self.issuer))
            .body(body.to_string())
            .send()
            .await
            .map_err(|err| format!("POST {path}: {err}"))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            let text = response.text().await.unwrap_or_default();
            Err(format!("POST {path} answered {status}: {text}"))
        }
    }

    /// `GET {api}{path}` with `Authorization: Bearer {token}`: the status and the JSON body
    /// (`null` when the body is not JSON).
    pub async fn api_get(
        &self,
        path: &str,
        token: &str,
    ) -> Result<(u16, serde_json::Value), String> {
        let response = client(false)?
            .get(format!("{}{path}", self.api))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|err| format!("GET {path}: {err}"))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|err| format!("GET {path}: {err}"))?;
        Ok((status, serde_json::from_slice(&body).unwrap_or_default()))
    }

    /// Stops the peer now (dropping it does the same, without waiting).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A plain HTTP client for the peer (loopback, no proxy, no egress policy: test code only).
/// The browser keeps cookies and handles redirects itself.
fn client(browser: bool) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20));
    let builder = if browser {
        builder
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
    } else {
        builder
    };
    builder
        .build()
        .map_err(|err| format!("cannot build an HTTP client: {err}"))
}
