//! A `tryton` connection's settings and their checks.

use crate::config::{check_http_url, check_non_empty};
use crate::{ConnectorError, Secrets};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use url::Url;

/// `kind: "tryton"`: a Tryton ERP server (8.2) reached over JSON-RPC. Secret: `password` (of
/// `user`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrytonConfig {
    /// The server's root, `https://erp.example.com/` (a path prefix is kept: a Tryton behind
    /// a reverse proxy at `/tryton/` is reached at `…/tryton/<database>/rpc/`). Plain `http`
    /// only to this machine (`localhost`, `127.0.0.1`, `::1`).
    pub url: String,
    /// The Tryton database (one server may hold several).
    pub database: String,
    /// The login name.
    pub user: String,
}

/// Every secret a `tryton` connection may be given.
pub const SECRET_FIELDS: &[&str] = &["password"];

impl TrytonConfig {
    pub fn validate(&self, secrets: &Secrets) -> Result<(), ConnectorError> {
        self.base_url()?;
        check_database(&self.database)?;
        check_non_empty("config.user", &self.user)?;
        if secrets.get("password").is_none() {
            return Err(ConnectorError::config(
                "secrets.password",
                "the Tryton user's password is required",
            ));
        }
        Ok(())
    }

    /// The server's root URL, checked: `https`, or `http` to a loopback address; no
    /// credentials, query or fragment; the path ends with `/`.
    pub fn base_url(&self) -> Result<Url, ConnectorError> {
        const FIELD: &str = "config.url";
        let mut url = check_http_url(FIELD, &self.url)?;
        if url.scheme() == "http" && !is_loopback_host(&url) {
            return Err(ConnectorError::config(
                FIELD,
                "must use https: plain http would send the password in clear (http is allowed \
                 only to this machine: localhost, 127.0.0.1, ::1)",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ConnectorError::config(
                FIELD,
                "must not have a query or a fragment",
            ));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(url)
    }

    /// Where the database's JSON-RPC answers: `<url><database>/rpc/`.
    pub fn rpc_url(&self) -> Result<Url, ConnectorError> {
        check_database(&self.database)?;
        let base = self.base_url()?;
        let mut url = base.clone();
        url.path_segments_mut()
            .map_err(|_| ConnectorError::config("config.url", "must be an absolute http(s) URL"))?
            .pop_if_empty()
            .push(&self.database)
            .push("rpc")
            .push("");
        Ok(url)
    }
}

/// A database name as Tryton takes it in a URL path: letters, digits, `_`, `-` and `.`, not
/// starting with a dot.
fn check_database(database: &str) -> Result<(), ConnectorError> {
    const FIELD: &str = "config.database";
    check_non_empty(FIELD, database)?;
    let valid = database.len() <= 64
        && !database.starts_with('.')
        && database
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return Err(ConnectorError::config(
            FIELD,
            "must be a database name: at most 64 letters, digits, '_', '-' or '.'",
        ));
    }
    Ok(())
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => crate::egress::is_loopback(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => crate::egress::is_loopback(IpAddr::V6(ip)),
        None => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Secret;

    fn config(url: &str, database: &str) -> TrytonConfig {
        TrytonConfig {
            url: url.to_owned(),
            database: database.to_owned(),
            user: "admin".to_owned(),
        }
    }

    fn secrets() -> Secrets {
        let mut secrets = Secrets::new();
        secrets.insert("password", Secret::new("pw".to_owned()));
        secrets
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        for ok in [
            "https://erp.example.com",
            "http://127.0.0.1:8000/",
            "http://localhost:8000",
            "http://[::1]:8000/",
        ] {
            assert!(config(ok, "db").validate(&secrets()).is_ok(), "{ok}");
        }
        for refused in ["http://erp.example.com/", "http://10.0.0.5:8000/"] {
            let err = config(refused, "db").validate(&secrets()).unwrap_err();
            assert!(
                err.to_string().starts_with("config.url: must use https"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_rpc_url_is_below_the_root_and_names_the_database() {
        let url = config("https://erp.example.com/tryton", "prod_1")
            .rpc_url()
            .unwrap();
        assert_eq!(url.as_str(), "https://erp.example.com/tryton/prod_1/rpc/");
        let url = config("http://127.0.0.1:8000/", "db").rpc_url().unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:8000/db/rpc/");
        for bad in ["", "a/b", "..", "a b", "x?y"] {
            assert!(
                config("https://e.example/", bad)
                    .validate(&secrets())
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_password_is_required() {
        let err = config("https://e.example/", "db")
            .validate(&Secrets::new())
            .unwrap_err();
        assert!(err.to_string().starts_with("secrets.password"));
    }
}
