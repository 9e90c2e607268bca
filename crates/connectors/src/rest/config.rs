use crate::config::{check_http_url, check_non_empty};
use crate::{ConnectorError, Secrets};
use serde::{Deserialize, Serialize};

/// `kind: "rest"`: a JSON HTTP API. Secrets by `auth.kind`: `api_key` (api_key), `password`
/// (basic), `client_secret` (both OAuth 2.0 kinds; optional for a public client using the
/// authorization code with PKCE). OAuth tokens are kept as the internal secrets
/// `oauth_access_token` and `oauth_refresh_token`, which no request can set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    /// `https://api.example.com/v2/` — object paths are relative to it.
    pub base_url: String,
    pub objects: Vec<RestObject>,
    #[serde(default)]
    pub auth: RestAuth,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestObject {
    /// How pipelines and samples name it (`customers`).
    pub name: String,
    /// Relative to `base_url` (`customers`, `v1/orders?status=open`).
    pub path: String,
    /// JSON pointer (RFC 6901) to the array of records in each page; `""` when the page is the
    /// array.
    #[serde(default)]
    pub records: String,
    #[serde(default)]
    pub pagination: Pagination,
    /// Fields that identify a record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub primary_key: Vec<String>,
}

/// How to get the next page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// One request answers everything.
    #[default]
    None,
    /// `?page=1&per_page=100`, then `page=2`, … until a page has fewer than `size` records.
    Page {
        #[serde(default = "page_param")]
        page_param: String,
        #[serde(default = "size_param")]
        size_param: String,
        #[serde(default = "page_size")]
        size: u32,
        #[serde(default = "first_page")]
        first_page: u32,
    },
    /// `?offset=0&limit=100`, then `offset=100`, … until a page has fewer than `limit` records.
    Offset {
        #[serde(default = "offset_param")]
        offset_param: String,
        #[serde(default = "limit_param")]
        limit_param: String,
        #[serde(default = "page_size")]
        limit: u32,
    },
    /// The answer holds the next cursor at the JSON pointer `next_cursor`; it is sent back as
    /// `?{cursor_param}=…`; a missing, null or empty cursor ends the listing.
    Cursor {
        #[serde(default = "cursor_param")]
        cursor_param: String,
        next_cursor: String,
    },
    /// RFC 8288 `Link: <…>; rel="next"` headers.
    LinkHeader,
}

fn page_param() -> String {
    "page".to_owned()
}
fn size_param() -> String {
    "per_page".to_owned()
}
fn offset_param() -> String {
    "offset".to_owned()
}
fn limit_param() -> String {
    "limit".to_owned()
}
fn cursor_param() -> String {
    "cursor".to_owned()
}
fn page_size() -> u32 {
    100
}
fn first_page() -> u32 {
    1
}

/// Where an API key goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyLocation {
    Header,
    Query,
}

/// How the hub authenticates to the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RestAuth {
    #[default]
    None,
    /// An API key in a header (`X-Api-Key`, or `Authorization` to send it as is) or a query
    /// parameter. Secret: `api_key`. A header's name must be an HTTP token and not one that
    /// frames, routes or proxies the request ([`REFUSED_API_KEY_HEADERS`]).
    ApiKey {
        #[serde(rename = "in")]
        location: ApiKeyLocation,
        name: String,
    },
    /// HTTP basic. Secret: `password`.
    Basic { username: String },
    /// OAuth 2.0 client credentials (RFC 6749 §4.4). Secret: `client_secret`.
    Oauth2ClientCredentials {
        token_url: String,
        client_id: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        scopes: Vec<String>,
    },
    /// OAuth 2.0 authorization code with PKCE (RFC 6749 §4.1, RFC 7636), with refresh; an
    /// Administrator connects it in the browser. Secret: `client_secret` (optional).
    Oauth2AuthorizationCode {
        authorize_url: String,
        token_url: String,
        /// RFC 7009 revocation endpoint; "disconnect" revokes there when it is set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revocation_url: Option<String>,
        client_id: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        scopes: Vec<String>,
    },
}

impl RestAuth {
    pub fn secret_fields(&self) -> &'static [&'static str] {
        match self {
            RestAuth::None => &[],
            RestAuth::ApiKey { .. } => &["api_key"],
            RestAuth::Basic { .. } => &["password"],
            RestAuth::Oauth2ClientCredentials { .. } | RestAuth::Oauth2AuthorizationCode { .. } => {
                &["client_secret"]
            }
        }
    }
}

/// Header names an API key may not take, compared without regard to case: they frame the request
/// (`Content-Length`, `Transfer-Encoding`), are hop-by-hop (RFC 9110 §7.6.1), or choose where
/// the request goes (`Host`, and what reverse proxies route by: `Forwarded`, `X-Forwarded-*`,
/// `X-Real-IP`, `X-Original-URL`, `X-Rewrite-URL`) or what it does (`X-HTTP-Method-Override`).
/// A key sent as one of them could reach another virtual host behind an allowed address.
/// `Authorization` stays allowed (a key sent as is), and so does `Cookie` (it neither frames nor
/// routes, and the client keeps no cookies of its own).
pub const REFUSED_API_KEY_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "via",
    "max-forwards",
    "forwarded",
    "x-real-ip",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The header an API key is sent in: a valid HTTP header name (RFC 9110 token) that is none of
/// [`REFUSED_API_KEY_HEADERS`] and no `X-Forwarded-*`. The error names `config.auth.name`.
pub fn api_key_header(name: &str) -> Result<http::HeaderName, ConnectorError> {
    const FIELD: &str = "config.auth.name";
    // `HeaderName` accepts exactly the RFC 9110 token characters (and folds case).
    let header = http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| ConnectorError::config(FIELD, "is not a valid HTTP header name"))?;
    let lower = header.as_str();
    if REFUSED_API_KEY_HEADERS.contains(&lower) || lower.starts_with("x-forwarded-") {
        return Err(ConnectorError::config(
            FIELD,
            "names a header that frames, routes or proxies the request; use another \
             (X-Api-Key, or Authorization)",
        ));
    }
    Ok(header)
}

/// Every secret a `rest` connection may be given through the API.
pub const SECRET_FIELDS: &[&str] = &["api_key", "password", "client_secret"];

impl RestConfig {
    pub fn validate(&self, secrets: &Secrets) -> Result<(), ConnectorError> {
        check_http_url("config.base_url", &self.base_url)?;
        if self.objects.is_empty() {
            return Err(ConnectorError::config(
                "config.objects",
                "list at least one object",
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, object) in self.objects.iter().enumerate() {
            check_non_empty(&format!("config.objects[{i}].name"), &object.name)?;
            if !names.insert(object.name.as_str()) {
                return Err(ConnectorError::config(
                    format!("config.objects[{i}].name"),
                    "names must be unique",
                ));
            }
            if object.path.contains("://") || object.path.starts_with("//") {
                return Err(ConnectorError::config(
                    format!("config.objects[{i}].path"),
                    "must be relative to base_url",
                ));
            }
            if !object.records.is_empty() && !object.records.starts_with('/') {
                return Err(ConnectorError::config(
                    format!("config.objects[{i}].records"),
                    "must be a JSON pointer (\"/data\") or empty",
                ));
            }
            match &object.pagination {
                Pagination::Page { size: 0, .. } | Pagination::Offset { limit: 0, .. } => {
                    return Err(ConnectorError::config(
                        format!("config.objects[{i}].pagination"),
                        "the page size must be at least 1",
                    ));
                }
                Pagination::Cursor { next_cursor, .. } if !next_cursor.starts_with('/') => {
                    return Err(ConnectorError::config(
                        format!("config.objects[{i}].pagination.next_cursor"),
                        "must be a JSON pointer (\"/next\")",
                    ));
                }
                _ => {}
            }
        }
        match &self.auth {
            RestAuth::None => {}
            RestAuth::ApiKey { name, location } => {
                check_non_empty("config.auth.name", name)?;
                if *location == ApiKeyLocation::Header {
                    api_key_header(name)?;
                }
                if secrets.get("api_key").is_none() {
                    return Err(ConnectorError::config(
                        "secrets.api_key",
                        "an API key is required",
                    ));
                }
            }
            RestAuth::Basic { username } => check_non_empty("config.auth.username", username)?,
            RestAuth::Oauth2ClientCredentials {
                token_url,
                client_id,
                ..
            } => {
                check_http_url("config.auth.token_url", token_url)?;
                check_non_empty("config.auth.client_id", client_id)?;
                if secrets.get("client_secret").is_none() {
                    return Err(ConnectorError::config(
                        "secrets.client_secret",
                        "client credentials need the client secret",
                    ));
                }
            }
            RestAuth::Oauth2AuthorizationCode {
                authorize_url,
                token_url,
                revocation_url,
                client_id,
                ..
            } => {
                check_http_url("config.auth.authorize_url", authorize_url)?;
                check_http_url("config.auth.token_url", token_url)?;
                if let Some(url) = revocation_url {
                    check_http_url("config.auth.revocation_url", url)?;
                }
                check_non_empty("config.auth.client_id", client_id)?;
            }
        }
        for field in secrets.fields() {
            if !self.auth.secret_fields().contains(&field) && !field.starts_with("oauth_") {
                return Err(ConnectorError::config(
                    format!("secrets.{field}"),
                    "this authentication kind does not use it",
                ));
            }
        }
        Ok(())
    }
}
