//! The `rest` connector: the configured objects of a JSON HTTP API.
//!
//! Each object is a path relative to `base_url` (a missing trailing `/` on the base path is
//! added, so `https://api.example.com/v2` + `customers` is `…/v2/customers`); every URL requested
//! — object paths, `Link` next pages — must stay on `base_url`'s origin and pass the egress
//! policy. Records are the array at the object's JSON pointer in each page; pages follow the
//! object's pagination style, at most [`MAX_PAGES`] of them.
//!
//! Every call (test, discover, sample) makes one HTTP client and, for OAuth 2.0 client
//! credentials, gets one access token it uses for all its requests.
//!
//! No error message carries a URL's query (which may hold an API key), a secret or a record.

mod config;
mod link;

pub use config::{
    ApiKeyLocation, Pagination, REFUSED_API_KEY_HEADERS, RestAuth, RestConfig, RestObject,
    SECRET_FIELDS, api_key_header,
};

use crate::files::infer::{Inference, Source};
use crate::{
    Connector, ConnectorError, Context, FailureKind, ObjectKind, ObjectMeta, Record, Secret,
    Secrets,
};
use reqwest::header::{ACCEPT, HeaderName, HeaderValue, LINK};
use serde_json::Value;
use std::collections::HashSet;
use std::error::Error as StdError;
use url::Url;

/// The most pages one read requests, whatever the API says.
pub const MAX_PAGES: usize = 1000;

/// The most bytes read from one page.
pub const MAX_PAGE_BYTES: usize = 32 * 1024 * 1024;

/// How many records discovery looks at per object.
const DISCOVERY_RECORDS: usize = 100;

/// Reads the configured objects of one `rest` connection.
#[derive(Debug)]
pub struct RestConnector {
    config: RestConfig,
    secrets: Secrets,
    ctx: Context,
}

impl RestConnector {
    /// Nothing is requested yet.
    pub fn new(config: RestConfig, secrets: Secrets, ctx: Context) -> Self {
        RestConnector {
            config,
            secrets,
            ctx,
        }
    }

    fn object(&self, name: &str) -> Result<&RestObject, ConnectorError> {
        self.config
            .objects
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| {
                ConnectorError::failed(FailureKind::NotFound, format!("{name}: no such object"))
            })
    }
}

impl Connector for RestConnector {
    /// Requests the first page of every configured object: each must answer 2xx with JSON that
    /// holds an array at the object's `records` pointer.
    async fn test(&self) -> Result<(), ConnectorError> {
        let session = Session::open(self).await?;
        for object in &self.config.objects {
            session.read(object, 1, 1).await?;
        }
        Ok(())
    }

    /// One read of up to 100 records per object (first pages), fields inferred from their JSON
    /// types.
    async fn discover(&self) -> Result<Vec<ObjectMeta>, ConnectorError> {
        let session = Session::open(self).await?;
        let mut objects = Vec::with_capacity(self.config.objects.len());
        for object in &self.config.objects {
            let records = session.read(object, DISCOVERY_RECORDS, MAX_PAGES).await?;
            let mut inference = Inference::new(Source::Json);
            for record in &records {
                inference.observe_json(record);
            }
            objects.push(ObjectMeta {
                name: object.name.clone(),
                kind: ObjectKind::Endpoint,
                fields: inference.finish(&object.primary_key),
                layout: None,
                error: None,
            });
        }
        Ok(objects)
    }

    async fn sample(&self, object: &str, limit: usize) -> Result<Vec<Record>, ConnectorError> {
        let object = self.object(object)?;
        let session = Session::open(self).await?;
        session.read(object, limit, MAX_PAGES).await
    }
}

/// How requests authenticate, resolved once per call.
enum Auth {
    None,
    Header(HeaderName, HeaderValue),
    Query {
        name: String,
        key: Secret,
    },
    Basic {
        username: String,
        password: Option<Secret>,
    },
    Bearer(Secret),
}

/// What one connector call uses: the client, the base URL and the credentials.
struct Session<'a> {
    connector: &'a RestConnector,
    client: reqwest::Client,
    base: Url,
    auth: Auth,
}

/// One page as the API answered it.
struct Page {
    /// The URL that answered (after redirects): `Link` targets are relative to it.
    url: Url,
    body: Value,
    next_link: Option<String>,
}

impl<'a> Session<'a> {
    async fn open(connector: &'a RestConnector) -> Result<Session<'a>, ConnectorError> {
        let mut base = Url::parse(&connector.config.base_url).map_err(|_| {
            ConnectorError::config("config.base_url", "must be an absolute http(s) URL")
        })?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let client = connector.ctx.egress.http_client(connector.ctx.timeout)?;
        let auth = Self::auth(connector).await?;
        Ok(Session {
            connector,
            client,
            base,
            auth,
        })
    }

    async fn auth(connector: &RestConnector) -> Result<Auth, ConnectorError> {
        let secrets = &connector.secrets;
        Ok(match &connector.config.auth {
            RestAuth::None => Auth::None,
            RestAuth::ApiKey { location, name } => {
                let key = secrets.get("api_key").ok_or_else(|| {
                    ConnectorError::config("secrets.api_key", "an API key is required")
                })?;
                match location {
                    ApiKeyLocation::Header => {
                        // Checked again here: a configuration stored before the check existed
                        // must not send a key as `Host`.
                        let name = config::api_key_header(name)?;
                        let mut value = HeaderValue::from_str(key.expose()).map_err(|_| {
                            ConnectorError::config(
                                "secrets.api_key",
                                "cannot be sent in an HTTP header (line breaks or control characters)",
                            )
                        })?;
                        value.set_sensitive(true);
                        Auth::Header(name, value)
                    }
                    ApiKeyLocation::Query => Auth::Query {
                        name: name.clone(),
                        key: key.clone(),
                    },
                }
            }
            RestAuth::Basic { username } => Auth::Basic {
                username: username.clone(),
                password: secrets.get("password").cloned(),
            },
            RestAuth::Oauth2ClientCredentials {
                token_url,
                client_id,
                scopes,
            } => Auth::Bearer(
                client_credentials_token(connector, token_url, client_id, scopes).await?,
            ),
            RestAuth::Oauth2AuthorizationCode { .. } => {
                Auth::Bearer(secrets.get("oauth_access_token").cloned().ok_or_else(|| {
                    ConnectorError::failed(
                        FailureKind::Authentication,
                        "not connected: an Administrator must connect this connection (OAuth)",
                    )
                })?)
            }
        })
    }

    fn ctx(&self) -> &Context {
        &self.connector.ctx
    }

    /// The object's first URL: its path joined to the base, on the base's origin.
    fn object_url(&self, object: &RestObject) -> Result<Url, ConnectorError> {
        let field = || {
            let i = self
                .connector
                .config
                .objects
                .iter()
                .position(|o| o.name == object.name)
                .unwrap_or(0);
            format!("config.objects[{i}].path")
        };
        let url = self.base.join(&object.path).map_err(|_| {
            ConnectorError::config(field(), "not a valid path relative to base_url")
        })?;
        if url.origin() != self.base.origin() {
            return Err(ConnectorError::config(
                field(),
                "must stay on base_url's scheme, host and port",
            ));
        }
        Ok(url)
    }

    /// Up to `max` records of `object`, from at most `max_pages` pages.
    async fn read(
        &self,
        object: &RestObject,
        max: usize,
        max_pages: usize,
    ) -> Result<Vec<Record>, ConnectorError> {
        let start = self.object_url(object)?;
        let mut next = Some(match &object.pagination {
            Pagination::None | Pagination::Cursor { .. } | Pagination::LinkHeader => start.clone(),
            Pagination::Page {
                page_param,
                size_param,
                size,
                first_page,
            } => with_params(
                &start,
                &[
                    (page_param, first_page.to_string()),
                    (size_param, size.to_string()),
                ],
            ),
            Pagination::Offset {
                offset_param,
                limit_param,
                limit,
            } => with_params(
                &start,
                &[
                    (offset_param, "0".to_owned()),
                    (limit_param, limit.to_string()),
                ],
            ),
        });
        let mut records = Vec::new();
        let mut cursors = HashSet::new();
        let mut pages: u64 = 0;
        while let Some(url) = next.take() {
            if pages >= max_pages as u64 {
                if max_pages == MAX_PAGES {
                    tracing::warn!(object = %object.name, "stopped after the most pages a read requests");
                }
                break;
            }
            let page = self.get(object, url).await?;
            pages += 1;
            let batch = page_records(object, &page.body)?;
            let count = batch.len() as u64;
            records.extend(batch);
            if records.len() >= max {
                records.truncate(max);
                break;
            }
            next = match &object.pagination {
                Pagination::None => None,
                Pagination::Page {
                    page_param,
                    size_param,
                    size,
                    first_page,
                } => (count > 0 && count >= u64::from(*size)).then(|| {
                    with_params(
                        &start,
                        &[
                            (page_param, (u64::from(*first_page) + pages).to_string()),
                            (size_param, size.to_string()),
                        ],
                    )
                }),
                Pagination::Offset {
                    offset_param,
                    limit_param,
                    limit,
                } => (count > 0 && count >= u64::from(*limit)).then(|| {
                    with_params(
                        &start,
                        &[
                            (offset_param, (u64::from(*limit) * pages).to_string()),
                            (limit_param, limit.to_string()),
                        ],
                    )
                }),
                Pagination::Cursor {
                    cursor_param,
                    next_cursor,
                } => cursor(&page.body, next_cursor)
                    .filter(|c| cursors.insert(c.clone()))
                    .map(|c| with_params(&start, &[(cursor_param, c)])),
                Pagination::LinkHeader => match page.next_link {
                    None => None,
                    Some(target) => Some(self.next_page_url(object, &page.url, &target)?),
                },
            };
        }
        Ok(records)
    }

    /// A `Link` next target, resolved against the page's URL; refused off the base's origin.
    fn next_page_url(
        &self,
        object: &RestObject,
        page: &Url,
        target: &str,
    ) -> Result<Url, ConnectorError> {
        next_page_url(&object.name, &self.base, page, target)
    }

    /// One GET, checked against the egress policy, with the credentials.
    async fn get(&self, object: &RestObject, mut url: Url) -> Result<Page, ConnectorError> {
        let name = object.name.as_str();
        if let Auth::Query { name, key } = &self.auth {
            url = with_params(&url, &[(name, key.expose().to_owned())]);
        }
        self.ctx().egress.check_url(&url).map_err(|err| match err {
            ConnectorError::Failed { kind, message } => {
                ConnectorError::failed(kind, format!("{name}: {message}"))
            }
            config => config,
        })?;
        let mut request = self
            .client
            .get(url)
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        request = match &self.auth {
            Auth::None | Auth::Query { .. } => request,
            Auth::Header(header, value) => request.header(header.clone(), value.clone()),
            Auth::Basic { username, password } => {
                request.basic_auth(username, password.as_ref().map(Secret::expose))
            }
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
        };
        let mut response = request
            .send()
            .await
            .map_err(|err| http_failure(name, &err))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(ConnectorError::failed(
                FailureKind::Authentication,
                format!(
                    "{name}: the API refused the credentials (HTTP {})",
                    status.as_u16()
                ),
            ));
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(ConnectorError::failed(
                FailureKind::NotFound,
                format!("{name}: the API answered HTTP 404 (not found)"),
            ));
        }
        if !status.is_success() {
            return Err(ConnectorError::failed(
                FailureKind::Protocol,
                format!("{name}: the API answered HTTP {}", status.as_u16()),
            ));
        }
        let page_url = response.url().clone();
        let links: Vec<String> = response
            .headers()
            .get_all(LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        let next_link = link::next_link(links.iter().map(String::as_str));

        let too_large = || {
            ConnectorError::failed(
                FailureKind::Protocol,
                format!(
                    "{name}: a page is larger than {} MiB",
                    MAX_PAGE_BYTES / 1024 / 1024
                ),
            )
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_PAGE_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| http_failure(name, &err))?
        {
            if bytes.len().saturating_add(chunk.len()) > MAX_PAGE_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = serde_json::from_slice(&bytes).map_err(|err| {
            ConnectorError::failed(
                FailureKind::Protocol,
                format!(
                    "{name}: the API's answer is not JSON (line {}, column {})",
                    err.line(),
                    err.column()
                ),
            )
        })?;
        Ok(Page {
            url: page_url,
            body,
            next_link,
        })
    }
}

/// Gets an access token with the client credentials grant.
async fn client_credentials_token(
    connector: &RestConnector,
    token_url: &str,
    client_id: &str,
    scopes: &[String],
) -> Result<Secret, ConnectorError> {
    let tokens = crate::oauth::client_credentials(
        &connector.ctx,
        token_url,
        client_id,
        connector.secrets.get("client_secret"),
        scopes,
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    Ok(tokens.access_token)
}

/// `url` with the query parameters set (replacing any of the same names).
fn with_params(url: &Url, params: &[(&String, String)]) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !params.iter().any(|(name, _)| *name == k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut url = url.clone();
    url.set_query(None);
    {
        let mut query = url.query_pairs_mut();
        query.extend_pairs(kept);
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    url
}

/// A `Link` next target of `object`, resolved against the page's URL; refused off `base`'s
/// origin.
fn next_page_url(
    object: &str,
    base: &Url,
    page: &Url,
    target: &str,
) -> Result<Url, ConnectorError> {
    let url = page.join(target).map_err(|_| {
        ConnectorError::failed(
            FailureKind::Protocol,
            format!("{object}: the API's next-page link is not a valid URL"),
        )
    })?;
    if url.origin() != base.origin() {
        return Err(ConnectorError::failed(
            FailureKind::Policy,
            format!("{object}: the API's next-page link leaves base_url's scheme, host and port"),
        ));
    }
    Ok(url)
}

/// What the paginated read makes of one page's answer, without HTTP (for the fuzz targets):
/// the `Link` header values and the body as received from `page`, the records at the object's
/// `records` pointer with their inferred fields, the cursor at `next_cursor` and the next
/// page's URL (kept on `page`'s origin). Answers the number of records and fields.
#[cfg(feature = "fuzzing")]
pub fn read_page(
    page: &Url,
    links: &[&str],
    body: &[u8],
    records: &str,
    next_cursor: &str,
) -> Result<(usize, usize), ConnectorError> {
    let object = RestObject {
        name: "fuzz".to_owned(),
        path: String::new(),
        records: records.to_owned(),
        pagination: Pagination::LinkHeader,
        primary_key: Vec::new(),
    };
    if let Some(target) = link::next_link(links.iter().copied()) {
        let _ = next_page_url(&object.name, page, page, &target);
    }
    let body: Value = serde_json::from_slice(body)
        .map_err(|_| ConnectorError::failed(FailureKind::Protocol, "not JSON"))?;
    if let Some(cursor) = cursor(&body, next_cursor) {
        let _ = with_params(page, &[(&"cursor".to_owned(), cursor)]);
    }
    let found = page_records(&object, &body)?;
    let mut inference = Inference::new(Source::Json);
    for record in &found {
        inference.observe_json(record);
    }
    Ok((found.len(), inference.finish(&object.primary_key).len()))
}

/// The records of one page: the array at the object's pointer, each an object.
fn page_records(object: &RestObject, body: &Value) -> Result<Vec<Record>, ConnectorError> {
    let name = &object.name;
    let pointer = object.records.as_str();
    let items = body
        .pointer(pointer)
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ConnectorError::failed(
                FailureKind::Protocol,
                if pointer.is_empty() {
                    format!("{name}: the API's answer is not a JSON array")
                } else {
                    format!("{name}: the API's answer has no array at {pointer}")
                },
            )
        })?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(record) => Ok(record.clone()),
            _ => Err(ConnectorError::failed(
                FailureKind::Protocol,
                format!("{name}: record {} of a page is not a JSON object", i + 1),
            )),
        })
        .collect()
}

/// The next cursor at `pointer`; `None` when missing, null or empty.
fn cursor(body: &Value, pointer: &str) -> Option<String> {
    match body.pointer(pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What a failed request means, from the error's kind and its sources — never its `Display`,
/// which holds the URL (and so, maybe, an API key).
pub(crate) fn http_failure(object: &str, err: &reqwest::Error) -> ConnectorError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(found) = known_failure(object, current) {
            return found;
        }
        if let Some(found) = current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| known_failure(object, inner))
        {
            return found;
        }
        source = current.source();
    }
    let failed = |kind, what: &str| ConnectorError::failed(kind, format!("{object}: {what}"));
    if err.is_timeout() {
        failed(FailureKind::Timeout, "the API did not answer in time")
    } else if is_redirect(err) {
        if mentions(err, "egress policy") {
            failed(
                FailureKind::Policy,
                "the API redirected to an address the egress policy does not allow",
            )
        } else {
            failed(FailureKind::Protocol, "the API redirected too many times")
        }
    } else if err.is_connect() {
        failed(FailureKind::Refused, "cannot connect to the API")
    } else if err.is_body() || err.is_decode() {
        failed(
            FailureKind::Protocol,
            "the API's answer was cut off or malformed",
        )
    } else {
        failed(FailureKind::Other, "the request to the API failed")
    }
}

/// A failure recognised by its type: the policy's own errors (from the resolver), TLS, and I/O.
fn known_failure(object: &str, err: &(dyn StdError + 'static)) -> Option<ConnectorError> {
    if let Some(ConnectorError::Failed { kind, message }) = err.downcast_ref::<ConnectorError>() {
        return Some(ConnectorError::failed(
            *kind,
            format!("{object}: {message}"),
        ));
    }
    if err.downcast_ref::<rustls::Error>().is_some() {
        return Some(ConnectorError::failed(
            FailureKind::Tls,
            format!("{object}: TLS with the API failed (untrusted or mismatched certificate?)"),
        ));
    }
    let io = err.downcast_ref::<std::io::Error>()?;
    let (kind, what) = match io.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            (FailureKind::Refused, "the API refused the connection")
        }
        std::io::ErrorKind::TimedOut => (FailureKind::Timeout, "the API did not answer in time"),
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
            (FailureKind::Refused, "the API closed the connection")
        }
        _ => return None,
    };
    Some(ConnectorError::failed(kind, format!("{object}: {what}")))
}

/// Whether the error, or one of its sources, is reqwest's redirect error.
fn is_redirect(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = source {
        if current
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_redirect)
        {
            return true;
        }
        source = current.source();
    }
    false
}

/// Whether a source below `err` says `words`: only the redirect policy's own messages are
/// matched this way (they carry no URL), and nothing found is copied into a message.
fn mentions(err: &reqwest::Error, words: &str) -> bool {
    let mut source = err.source();
    while let Some(current) = source {
        if current.downcast_ref::<reqwest::Error>().is_none() && current.to_string().contains(words)
        {
            return true;
        }
        source = current.source();
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sets_query_parameters_in_place() {
        let url = Url::parse("https://a.example/v1/items?status=open&page=9").unwrap();
        let page = "page".to_owned();
        let size = "per_page".to_owned();
        let out = with_params(&url, &[(&page, "2".to_owned()), (&size, "50".to_owned())]);
        assert_eq!(
            out.as_str(),
            "https://a.example/v1/items?status=open&page=2&per_page=50"
        );
    }

    #[test]
    fn reads_cursors() {
        let body = json!({"next": "abc", "n": 5, "empty": "", "null": null});
        assert_eq!(cursor(&body, "/next").as_deref(), Some("abc"));
        assert_eq!(cursor(&body, "/n").as_deref(), Some("5"));
        assert_eq!(cursor(&body, "/empty"), None);
        assert_eq!(cursor(&body, "/null"), None);
        assert_eq!(cursor(&body, "/missing"), None);
    }

    #[test]
    fn takes_records_at_the_pointer() {
        let object = RestObject {
            name: "items".to_owned(),
            path: "items".to_owned(),
            records: "/data/items".to_owned(),
            pagination: Pagination::None,
            primary_key: Vec::new(),
        };
        let body = json!({"data": {"items": [{"id": 1}, {"id": 2}]}});
        assert_eq!(page_records(&object, &body).unwrap().len(), 2);
        let err = page_records(&object, &json!({"data": {"items": {"id": 1}}})).unwrap_err();
        assert_eq!(err.kind(), Some(FailureKind::Protocol));
        let err = page_records(&object, &json!({"data": {"items": [1]}})).unwrap_err();
        assert_eq!(err.kind(), Some(FailureKind::Protocol));
    }
}
