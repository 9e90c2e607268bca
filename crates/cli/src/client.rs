//! A small client of the hub's API: HTTPS with the hub's CA (or `--insecure`), bearer tokens,
//! and problem+json errors turned into readable messages.

use crate::args::ClientArgs;
use anyhow::{Context, bail};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::PathBuf;

/// Where `lockstep serve` keeps its data by default.
pub const DEFAULT_DATA: &str = "./lockstep-data";
/// Where, in the data directory, `lockstep serve` keeps its self-signed CA; trusted when
/// `--ca-cert` is not given.
pub const CA_IN_DATA: &str = "tls/ca.pem";

#[derive(Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl ApiClient {
    pub fn new(args: &ClientArgs, token: Option<String>) -> anyhow::Result<ApiClient> {
        let base = args.addr.trim_end_matches('/').to_owned();
        if !base.starts_with("https://") {
            bail!("--addr must be an https:// URL (the hub serves HTTPS only)");
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("lockstep-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(60));
        if args.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        } else {
            let ca = args.ca_cert.clone().or_else(|| {
                let in_data = match &args.data {
                    Some(data) => data.join(CA_IN_DATA),
                    None => PathBuf::from(DEFAULT_DATA).join(CA_IN_DATA),
                };
                in_data.exists().then_some(in_data)
            });
            if let Some(ca) = ca {
                let pem = std::fs::read(&ca)
                    .with_context(|| format!("cannot read the CA certificate {}", ca.display()))?;
                let cert = reqwest::Certificate::from_pem(&pem)
                    .with_context(|| format!("{} is not a PEM certificate", ca.display()))?;
                builder = builder.tls_certs_only([cert]);
            }
        }
        Ok(ApiClient {
            http: builder.build().context("cannot set up the HTTPS client")?,
            base,
            token,
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call(Method::GET, path, None::<&()>).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        let response = self.send(Method::DELETE, path, None::<&()>).await?;
        check(response).await.map(|_| ())
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<T> {
        let response = self.send(method, path, body).await?;
        let response = check(response).await?;
        response
            .json::<T>()
            .await
            .context("the hub answered with an unexpected body")
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.map_err(|err| {
            let mut chain = String::new();
            let mut source: Option<&dyn std::error::Error> = Some(&err);
            while let Some(e) = source {
                chain.push_str(&e.to_string());
                source = e.source();
            }
            let hint = if chain.contains("certificate") || chain.contains("UnknownIssuer") {
                " (is the hub's certificate trusted? pass --data DIR, the hub's data directory, or --ca-cert DIR/tls/ca.pem)"
            } else {
                ""
            };
            anyhow::anyhow!("cannot reach the hub at {}{hint}", self.base)
        })
    }
}

/// A problem+json answer of the hub, kept whole so a command can show more of it (the records
/// in the way of a data set's submit); it reads like a sentence.
#[derive(Debug)]
pub struct ApiProblem {
    pub status: StatusCode,
    pub title: String,
    pub detail: Option<String>,
    /// For a refused data-set submit: the ticked records with errors, with their errors'
    /// messages (which name fields and rules, never values).
    pub rows: Vec<BlockedRow>,
}

/// A record in the way of a data set's submit.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct BlockedRow {
    pub row: u64,
    #[serde(default)]
    pub issues: Vec<String>,
}

impl std::fmt::Display for ApiProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.title)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        if self.status == StatusCode::UNAUTHORIZED {
            f.write_str(" (set LOCKSTEP_TOKEN to the operator token)")?;
        }
        write!(f, " [HTTP {}]", self.status.as_u16())
    }
}

impl std::error::Error for ApiProblem {}

/// Turns a problem+json answer into an [`ApiProblem`].
async fn check(response: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let problem: serde_json::Value = response.json().await.unwrap_or_default();
    let title = problem
        .get("title")
        .and_then(|v| v.as_str())
        .unwrap_or("request failed")
        .to_owned();
    let detail = problem
        .get("detail")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let rows = problem
        .get("rows")
        .cloned()
        .and_then(|rows| serde_json::from_value(rows).ok())
        .unwrap_or_default();
    Err(anyhow::Error::new(ApiProblem {
        status,
        title,
        detail,
        rows,
    }))
}
