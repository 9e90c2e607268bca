//! A post of the connection form read back: the chosen kind's controls (and only those) into
//! the configuration JSON and the secrets the use cases take. Numbers become JSON numbers (a
//! non-number is an error at its field); empty optional fields are left out.

use super::form::{FormState, row_indices};
use lockstep_app::connectors::ConnectionKind;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A post of the form: the name, the kind, and every other field by input name.
pub(crate) struct Submitted {
    pub name: String,
    pub kind: String,
    fields: BTreeMap<String, String>,
}

impl Submitted {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Submitted {
        let mut sub = Submitted {
            name: String::new(),
            kind: String::new(),
            fields: BTreeMap::new(),
        };
        for (key, value) in pairs {
            match key.as_str() {
                "csrf" => {}
                "name" => sub.name = value,
                "kind" => sub.kind = value,
                _ => {
                    sub.fields.entry(key).or_insert(value);
                }
            }
        }
        sub
    }

    /// What the form shows again: every value but the secrets.
    pub fn state(&self) -> FormState {
        FormState {
            values: self
                .fields
                .iter()
                .filter(|(k, _)| {
                    !k.split_once('.')
                        .is_some_and(|(_, api)| api.starts_with("secrets."))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            submitted: true,
        }
    }
}

/// The chosen kind's part of a post, as the use cases take it.
pub(crate) struct Built {
    pub config: Value,
    /// Secrets to set (non-empty inputs of the secrets the configuration uses).
    pub secrets: BTreeMap<String, String>,
    /// Stored secrets whose "remove" box was ticked (and that got no new value).
    pub removed: Vec<String>,
    /// Errors found before asking the use case: `(API field, message)`.
    pub errors: Vec<(String, String)>,
    /// For each object of `config.objects`, the form's row it came from.
    rows: Vec<usize>,
}

impl Built {
    /// The form's field for an error's field: `config.objects[1]…` of the JSON is the row the
    /// object came from (empty rows are left out).
    pub fn form_field(&self, field: &str) -> String {
        if let Some(rest) = field.strip_prefix("config.objects[")
            && let Some((n, tail)) = rest.split_once(']')
            && let Ok(n) = n.parse::<usize>()
            && let Some(row) = self.rows.get(n)
        {
            return format!("config.objects[{row}]{tail}");
        }
        field.to_owned()
    }
}

struct Reader<'a> {
    prefix: &'static str,
    fields: &'a BTreeMap<String, String>,
    errors: Vec<(String, String)>,
}

impl Reader<'_> {
    fn raw(&self, api: &str) -> Option<&str> {
        self.fields
            .get(&format!("{}.{api}", self.prefix))
            .map(String::as_str)
    }

    fn text(&self, api: &str) -> String {
        self.raw(api).unwrap_or("").trim().to_owned()
    }

    /// A required text: sent even when empty, so the use case names the field.
    fn req(&self, map: &mut Map<String, Value>, key: &str, api: &str) {
        map.insert(key.to_owned(), Value::String(self.text(api)));
    }

    /// An optional text: left out when empty (the default applies).
    fn opt(&self, map: &mut Map<String, Value>, key: &str, api: &str) {
        let text = self.text(api);
        if !text.is_empty() {
            map.insert(key.to_owned(), Value::String(text));
        }
    }

    fn choice(&self, api: &str, default: &str) -> String {
        let text = self.text(api);
        if text.is_empty() {
            default.to_owned()
        } else {
            text
        }
    }

    /// A whole number from `min` to `max`, left out when empty.
    fn number(&mut self, map: &mut Map<String, Value>, key: &str, api: &str, min: u64, max: u64) {
        let text = self.text(api);
        if text.is_empty() {
            return;
        }
        match text.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => {
                map.insert(key.to_owned(), Value::from(n));
            }
            _ => self.errors.push((
                api.to_owned(),
                format!("Enter a whole number from {min} to {max}."),
            )),
        }
    }

    /// A JSON object (settings by name); left out when empty.
    fn json_object(&mut self, map: &mut Map<String, Value>, key: &str, api: &str) {
        let text = self.text(api);
        if text.is_empty() {
            return;
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(object)) => {
                map.insert(key.to_owned(), Value::Object(object));
            }
            _ => self.errors.push((
                api.to_owned(),
                "Enter a JSON object, e.g. {\"name.csv\": {\"encoding\": \"windows-1252\", \
                 \"delimiter\": \";\"}}."
                    .to_owned(),
            )),
        }
    }

    /// A list: items separated by commas and/or white space; left out when empty.
    fn list(&self, map: &mut Map<String, Value>, key: &str, api: &str) {
        let items: Vec<Value> = self
            .text(api)
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_owned()))
            .collect();
        if !items.is_empty() {
            map.insert(key.to_owned(), Value::Array(items));
        }
    }

    fn checked(&self, api: &str) -> bool {
        self.raw(api).is_some()
    }
}

/// Reads the chosen kind's controls into the configuration and the secrets.
pub(crate) fn build(kind: ConnectionKind, sub: &Submitted) -> Built {
    let mut r = Reader {
        prefix: kind.as_str(),
        fields: &sub.fields,
        errors: Vec::new(),
    };
    let mut c = Map::new();
    let mut rows = Vec::new();
    let secret_fields: &[&str] = match kind {
        ConnectionKind::Postgres | ConnectionKind::Mysql => {
            r.req(&mut c, "host", "config.host");
            r.number(&mut c, "port", "config.port", 1, u64::from(u16::MAX));
            r.req(&mut c, "database", "config.database");
            r.req(&mut c, "user", "config.user");
            c.insert(
                "tls".to_owned(),
                Value::String(r.choice("config.tls", "prefer")),
            );
            r.opt(&mut c, "ca_certificate", "config.ca_certificate");
            if kind == ConnectionKind::Postgres {
                r.opt(&mut c, "client_certificate", "config.client_certificate");
                r.opt(&mut c, "schema", "config.schema");
            }
            kind.secret_fields()
        }
        ConnectionKind::Sqlite => {
            r.req(&mut c, "path", "config.path");
            &[]
        }
        ConnectionKind::Files => {
            r.opt(&mut c, "directory", "config.directory");
            let mut csv = Map::new();
            let delimiter = r.raw("config.csv.delimiter").unwrap_or("");
            if !delimiter.is_empty() {
                csv.insert("delimiter".to_owned(), Value::String(delimiter.to_owned()));
            }
            csv.insert(
                "header".to_owned(),
                Value::Bool(r.checked("config.csv.header")),
            );
            r.opt(&mut csv, "encoding", "config.csv.encoding");
            r.json_object(&mut csv, "files", "config.csv.files");
            c.insert("csv".to_owned(), Value::Object(csv));
            &[]
        }
        ConnectionKind::Rest => {
            r.req(&mut c, "base_url", "config.base_url");
            let mut objects = Vec::new();
            for row in row_indices(&sub.fields, kind) {
                if let Some(object) = rest_object(&mut r, row) {
                    objects.push(object);
                    rows.push(row);
                }
            }
            c.insert("objects".to_owned(), Value::Array(objects));
            let (auth, secrets) = rest_auth(&r);
            c.insert("auth".to_owned(), Value::Object(auth));
            secrets
        }
        ConnectionKind::Tryton => {
            r.req(&mut c, "url", "config.url");
            r.req(&mut c, "database", "config.database");
            r.req(&mut c, "user", "config.user");
            kind.secret_fields()
        }
    };
    let mut secrets = BTreeMap::new();
    let mut removed = Vec::new();
    for field in secret_fields {
        let api = format!("secrets.{field}");
        match r.raw(&api) {
            Some(value) if !value.is_empty() => {
                secrets.insert((*field).to_owned(), value.to_owned());
            }
            _ => {
                if r.checked(&format!("{api}.remove")) {
                    removed.push((*field).to_owned());
                }
            }
        }
    }
    Built {
        config: Value::Object(c),
        secrets,
        removed,
        errors: r.errors,
        rows,
    }
}

fn rest_object(r: &mut Reader<'_>, row: usize) -> Option<Value> {
    let p = format!("config.objects[{row}]");
    let used = ["name", "path", "records", "primary_key"]
        .iter()
        .any(|f| !r.text(&format!("{p}.{f}")).is_empty());
    if !used {
        return None;
    }
    let mut o = Map::new();
    r.req(&mut o, "name", &format!("{p}.name"));
    r.req(&mut o, "path", &format!("{p}.path"));
    r.opt(&mut o, "records", &format!("{p}.records"));
    r.list(&mut o, "primary_key", &format!("{p}.primary_key"));
    let q = format!("{p}.pagination");
    let style = r.choice(&format!("{q}.style"), "none");
    let mut pg = Map::new();
    let max = u64::from(u32::MAX);
    match style.as_str() {
        "page" => {
            r.number(&mut pg, "size", &format!("{q}.size"), 1, max);
            r.number(&mut pg, "first_page", &format!("{q}.first_page"), 0, max);
            r.opt(&mut pg, "page_param", &format!("{q}.page_param"));
            r.opt(&mut pg, "size_param", &format!("{q}.size_param"));
        }
        "offset" => {
            r.number(&mut pg, "limit", &format!("{q}.limit"), 1, max);
            r.opt(&mut pg, "offset_param", &format!("{q}.offset_param"));
            r.opt(&mut pg, "limit_param", &format!("{q}.limit_param"));
        }
        "cursor" => {
            r.req(&mut pg, "next_cursor", &format!("{q}.next_cursor"));
            r.opt(&mut pg, "cursor_param", &format!("{q}.cursor_param"));
        }
        _ => {}
    }
    pg.insert("style".to_owned(), Value::String(style));
    o.insert("pagination".to_owned(), Value::Object(pg));
    Some(Value::Object(o))
}

fn rest_auth(r: &Reader<'_>) -> (Map<String, Value>, &'static [&'static str]) {
    let kind = r.choice("config.auth.kind", "none");
    let mut a = Map::new();
    let secrets: &'static [&'static str] = match kind.as_str() {
        "api_key" => {
            a.insert(
                "in".to_owned(),
                Value::String(r.choice("config.auth.in", "header")),
            );
            r.req(&mut a, "name", "config.auth.name");
            &["api_key"]
        }
        "basic" => {
            r.req(&mut a, "username", "config.auth.username");
            &["password"]
        }
        "oauth2_client_credentials" | "oauth2_authorization_code" => {
            if kind == "oauth2_authorization_code" {
                r.req(&mut a, "authorize_url", "config.auth.authorize_url");
                r.opt(&mut a, "revocation_url", "config.auth.revocation_url");
            }
            r.req(&mut a, "token_url", "config.auth.token_url");
            r.req(&mut a, "client_id", "config.auth.client_id");
            r.list(&mut a, "scopes", "config.auth.scopes");
            &["client_secret"]
        }
        _ => &[],
    };
    a.insert("kind".to_owned(), Value::String(kind));
    (a, secrets)
}

#[cfg(test)]
mod tests {
    use super::super::form::{items, object_rows, place_error};
    use super::*;

    fn sub(pairs: &[(&str, &str)]) -> Submitted {
        Submitted::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn only_the_chosen_kind_is_read_and_numbers_are_numbers() {
        let s = sub(&[
            ("name", "pg"),
            ("kind", "postgres"),
            ("postgres.config.host", " db "),
            ("postgres.config.port", "5433"),
            ("postgres.config.database", "erp"),
            ("postgres.config.user", "sync"),
            ("postgres.secrets.password", " p w "),
            ("postgres.secrets.client_key", ""),
            ("postgres.config.schema", ""),
            ("mysql.config.host", "other"),
            ("rest.secrets.password", "nope"),
        ]);
        let built = build(ConnectionKind::Postgres, &s);
        assert_eq!(
            built.config,
            serde_json::json!({"host": "db", "port": 5433, "database": "erp", "user": "sync", "tls": "prefer"})
        );
        assert_eq!(built.secrets.len(), 1);
        assert_eq!(
            built.secrets.get("password").map(String::as_str),
            Some(" p w ")
        );
        assert!(built.errors.is_empty());
        assert!(
            !s.state()
                .values
                .values()
                .any(|v| v.contains("p w") || v == "nope")
        );
    }

    #[test]
    fn a_tryton_form_reads_into_a_valid_tryton_connection() {
        let s = sub(&[
            ("name", "erp"),
            ("kind", "tryton"),
            ("tryton.config.url", "https://erp.example.com/"),
            ("tryton.config.database", "prod"),
            ("tryton.config.user", "sync"),
            ("tryton.secrets.password", "pw"),
        ]);
        let built = build(ConnectionKind::Tryton, &s);
        assert!(built.errors.is_empty(), "{:?}", built.errors);
        assert_eq!(
            built.config,
            serde_json::json!({"url": "https://erp.example.com/", "database": "prod", "user": "sync"})
        );
        assert_eq!(
            built.secrets.get("password").map(String::as_str),
            Some("pw")
        );
        let mut secrets = lockstep_app::connectors::Secrets::new();
        secrets.insert(
            "password",
            lockstep_app::connectors::Secret::new("pw".to_owned()),
        );
        let config = lockstep_app::connectors::ConnectionConfig::parse(
            ConnectionKind::Tryton,
            built.config.clone(),
        );
        assert!(
            config.as_ref().is_ok_and(|c| c.validate(&secrets).is_ok()),
            "{config:?}"
        );
        let form = items(&[ConnectionKind::Tryton], true, &s.state(), &[], "");
        assert!(!form.is_empty());
    }

    #[test]
    fn a_bad_number_is_an_error_at_its_field() {
        for port in ["abc", "70000", "0", "-1"] {
            let built = build(
                ConnectionKind::Mysql,
                &sub(&[("kind", "mysql"), ("mysql.config.port", port)]),
            );
            let fields: Vec<&str> = built.errors.iter().map(|(f, _)| f.as_str()).collect();
            assert_eq!(fields, ["config.port"], "{port}");
        }
    }

    #[test]
    fn rest_objects_skip_empty_rows_and_errors_name_the_row() {
        let s = sub(&[
            ("rest.config.base_url", "https://api.example.com/"),
            ("rest.config.objects[0].name", ""),
            ("rest.config.objects[0].path", ""),
            ("rest.config.objects[0].pagination.style", "none"),
            ("rest.config.objects[1].name", "items"),
            ("rest.config.objects[1].path", "items"),
            ("rest.config.objects[1].primary_key", "id, code"),
            ("rest.config.objects[1].pagination.style", "page"),
            ("rest.config.objects[1].pagination.size", "10"),
            ("rest.config.auth.kind", "oauth2_authorization_code"),
            (
                "rest.config.auth.authorize_url",
                "https://id.example.com/auth",
            ),
            ("rest.config.auth.token_url", "https://id.example.com/token"),
            ("rest.config.auth.client_id", "hub"),
            ("rest.config.auth.scopes", "openid items"),
            ("rest.secrets.client_secret", "s3cret"),
            ("rest.secrets.api_key", "ignored"),
        ]);
        let built = build(ConnectionKind::Rest, &s);
        assert_eq!(
            built.config,
            serde_json::json!({
                "base_url": "https://api.example.com/",
                "objects": [{"name": "items", "path": "items", "primary_key": ["id", "code"],
                    "pagination": {"style": "page", "size": 10}}],
                "auth": {"kind": "oauth2_authorization_code", "authorize_url": "https://id.example.com/auth",
                    "token_url": "https://id.example.com/token", "client_id": "hub", "scopes": ["openid", "items"]}
            })
        );
        assert_eq!(built.secrets.keys().collect::<Vec<_>>(), ["client_secret"]);
        assert_eq!(
            built.form_field("config.objects[0].pagination"),
            "config.objects[1].pagination"
        );
        // The edit form shows the stored configuration again, plus an empty row.
        let state = FormState::from_config(ConnectionKind::Rest, &built.config);
        assert_eq!(
            state
                .values
                .get("rest.config.auth.scopes")
                .map(String::as_str),
            Some("openid items")
        );
        assert_eq!(object_rows(&state.values, ConnectionKind::Rest), 2);
        let mut items = items(
            &[ConnectionKind::Rest],
            false,
            &state,
            &[],
            "https://hub/cb",
        );
        assert!(place_error(
            &mut items,
            ConnectionKind::Rest,
            "config.objects[0].pagination",
            "bad"
        ));
        let with_error = items
            .iter()
            .filter_map(|i| i.control.as_ref())
            .find(|c| c.error.is_some())
            .map(|c| c.name.clone());
        assert_eq!(
            with_error.as_deref(),
            Some("rest.config.objects[0].pagination.style")
        );
    }
}
