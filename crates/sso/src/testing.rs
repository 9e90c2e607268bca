//! Test helpers (feature `testing`): a real SAML 2.0 identity provider.
//!
//! [`SamlPeer::start`] runs `tests/peers/saml/server.py` (PyPI `pysaml2`, signatures by Debian's
//! `xmlsec1`) with the Python of its virtual environment on a free loopback port; the process is
//! killed when the peer is dropped. The environment comes from `ensure_saml_peer` in
//! `scripts/lib/peers.sh`, which `scripts/test` runs.

use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

const HOW_TO_INSTALL: &str = "run ./scripts/test, or: python3 -m venv ~/.cache/lockstep/saml-peer-venv && ~/.cache/lockstep/saml-peer-venv/bin/pip install -r tests/peers/saml/requirements.txt (and apt-get install xmlsec1)";

/// A running test IdP (see `tests/peers/saml/README.md`). It signs in whoever [`TestSignIn`]
/// names, for service providers registered with [`SamlPeer::register_sp`].
#[derive(Debug)]
pub struct SamlPeer {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    /// The IdP's entity id (also its metadata URL).
    pub entity_id: String,
    /// Where its metadata is served.
    pub metadata_url: String,
    /// Its HTTP-Redirect single sign-on URL.
    pub sso_url: String,
    child: Child,
    /// Kept open so that the peer never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

#[derive(Deserialize)]
struct Ready {
    base: String,
    entity_id: String,
    metadata_url: String,
    sso_url: String,
}

/// What the peer does wrong on purpose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SamlFault {
    /// A correct answer.
    #[default]
    None,
    /// Neither the assertion nor the response signed.
    Unsigned,
    /// The response signed, the assertion not.
    ResponseSignedOnly,
    /// The signed assertion moved inside an unsigned one naming another subject.
    Wrapping,
    /// The first attribute value changed after signing.
    AlteredAttribute,
    /// Signed for another service provider's entity id.
    WrongAudience,
    /// Signed with a `NotOnOrAfter` ten minutes in the past.
    Expired,
    /// Status `RequestDenied`, no assertion.
    Denied,
    /// Signed with this `Recipient` and `Destination` (and posted there).
    Recipient(String),
    /// Signed with this `InResponseTo` (`None`: unsolicited) instead of the request's id.
    InResponseTo(Option<String>),
}

/// Whom the peer signs in, and how.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TestSignIn {
    /// The e-mail address: the `NameID` (format emailAddress) unless `persistent_name_id`.
    pub email: String,
    /// A persistent `NameID` instead of the e-mail address.
    pub persistent_name_id: Option<String>,
    /// Attributes by pysaml2's friendly names (`mail`, `displayName`, `givenName`, …).
    pub attributes: Vec<(String, Vec<String>)>,
    /// Sign the response as well as the assertion.
    pub sign_response: bool,
    pub fault: SamlFault,
}

impl fmt::Debug for TestSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestSignIn")
            .field("attributes", &self.attributes.len())
            .field("sign_response", &self.sign_response)
            .field("fault", &self.fault)
            .finish_non_exhaustive()
    }
}

/// The HTTP-POST form the browser would send to the service provider.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct PostedForm {
    /// Where the IdP addressed it (the SP's ACS from its metadata, or the faulty recipient).
    pub acs_url: String,
    /// The `SAMLResponse` field (base64).
    #[serde(rename = "SAMLResponse")]
    pub saml_response: String,
    /// The `RelayState` field, when the request had one.
    #[serde(rename = "RelayState")]
    pub relay_state: Option<String>,
}

impl PostedForm {
    /// The decoded response XML (for tests that tamper with it).
    pub fn response_xml(&self) -> Result<String, String> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.saml_response)
            .map_err(|err| format!("the peer's SAMLResponse is not base64: {err}"))?;
        String::from_utf8(bytes)
            .map_err(|err| format!("the peer's SAMLResponse is not UTF-8: {err}"))
    }
}

impl fmt::Debug for PostedForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostedForm")
            .field("acs_url", &self.acs_url)
            .field("saml_response_bytes", &self.saml_response.len())
            .finish_non_exhaustive()
    }
}

/// The peer's folder in the repository.
pub fn saml_peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/saml")
}

/// The peer's Python: `LOCKSTEP_TEST_SAML_PYTHON` when set (scripts/test sets it), else the
/// virtual environment `ensure_saml_peer` makes under `~/.cache/lockstep`.
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("LOCKSTEP_TEST_SAML_PYTHON") {
        return PathBuf::from(python);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("lockstep/saml-peer-venv/bin/python")
}

impl SamlPeer {
    /// Starts a peer with a new key and certificate. The peer's stderr is the test's.
    pub async fn start() -> Result<SamlPeer, String> {
        let python = python();
        if !python.exists() {
            return Err(format!(
                "the SAML test peer's Python environment is missing at {} ({HOW_TO_INSTALL})",
                python.display()
            ));
        }
        let dir = saml_peer_dir();
        let mut child = Command::new(&python)
            .arg(dir.join("server.py"))
            .args(["--port", "0"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| format!("cannot start the SAML test peer ({HOW_TO_INSTALL}): {err}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the SAML test peer has no stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
            .await
            .map_err(|_| "the SAML test peer did not start within 30 s".to_owned())?
            .map_err(|err| format!("cannot read from the SAML test peer: {err}"))?;
        if read == 0 {
            let status = child.try_wait().ok().flatten();
            return Err(format!(
                "the SAML test peer exited before it was ready ({}; see its output above; {HOW_TO_INSTALL})",
                status.map_or_else(|| "still running".to_owned(), |s| s.to_string())
            ));
        }
        let ready: Ready = serde_json::from_str(line.trim())
            .map_err(|err| format!("the SAML test peer printed an unexpected first line: {err}"))?;
        Ok(SamlPeer {
            base: ready.base,
            entity_id: ready.entity_id,
            metadata_url: ready.metadata_url,
            sso_url: ready.sso_url,
            child,
            _stdout: stdout,
        })
    }

    /// The IdP's metadata XML, as an Administrator would paste it.
    pub async fn metadata_xml(&self) -> Result<String, String> {
        client()?
            .get(&self.metadata_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|err| format!("GET the SAML peer's metadata: {err}"))?
            .text()
            .await
            .map_err(|err| format!("the SAML peer's metadata: {err}"))
    }

    /// Trusts a service provider from its metadata (what an IdP administrator does with the
    /// hub's SP metadata). The peer answers only registered service providers, at the ACS their
    /// metadata names.
    pub async fn register_sp(&self, sp_metadata_xml: &str) -> Result<(), String> {
        let response = client()?
            .post(format!("{}/sp", self.base))
            .body(sp_metadata_xml.to_owned())
            .send()
            .await
            .map_err(|err| format!("POST the SP metadata to the SAML peer: {err}"))?;
        if response.status().is_success() {
            return Ok(());
        }
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Err(format!(
            "the SAML peer refused the SP metadata ({status}): {body}"
        ))
    }

    /// Plays the browser and the user at the IdP: follows `redirect_url` (the hub's
    /// HTTP-Redirect `AuthnRequest`), signs in as `sign_in` says, and answers the form the
    /// browser would post to the service provider.
    pub async fn sign_in(
        &self,
        redirect_url: &url::Url,
        sign_in: &TestSignIn,
    ) -> Result<PostedForm, String> {
        let mut url = redirect_url.clone();
        let user = serde_json::json!({
            "email": sign_in.email,
            "name_id_format": if sign_in.persistent_name_id.is_some() { "persistent" } else { "email" },
            "name_id": sign_in.persistent_name_id,
            "attributes": sign_in.attributes.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        });
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("user", &user.to_string());
            if sign_in.sign_response {
                query.append_pair("sign_response", "1");
            }
            let fault = match &sign_in.fault {
                SamlFault::None => "none",
                SamlFault::Unsigned => "unsigned",
                SamlFault::ResponseSignedOnly => "response_signed_only",
                SamlFault::Wrapping => "wrapping",
                SamlFault::AlteredAttribute => "altered_attribute",
                SamlFault::WrongAudience => "wrong_audience",
                SamlFault::Expired => "expired",
                SamlFault::Denied => "denied",
                SamlFault::Recipient(recipient) => {
                    query.append_pair("recipient", recipient);
                    "none"
                }
                SamlFault::InResponseTo(id) => {
                    query.append_pair("in_response_to", id.as_deref().unwrap_or(""));
                    "none"
                }
            };
            query.append_pair("fault", fault);
        }
        let response = client()?
            .get(url)
            .send()
            .await
            .map_err(|err| format!("GET the SAML peer's SSO URL: {err}"))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|err| format!("the SAML peer's answer: {err}"))?;
        if !status.is_success() {
            return Err(format!("the SAML peer answered {status}: {body}"));
        }
        serde_json::from_str(&body).map_err(|err| format!("the SAML peer's form: {err}"))
    }

    /// Stops the peer now (dropping it does the same, without waiting).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A plain HTTP client for the peer (loopback, no proxy: test code only).
fn client() -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|err| format!("cannot build an HTTP client: {err}"))
}
