//! The connection form: one group of controls per kind, each named after the API's field with
//! the kind in front (`postgres.config.host` is `config.host` of a `postgres` connection), so
//! the form works with every group shown (no script) and an error of the use case (`config.port`,
//! `secrets.password`) lands next to its control. [`build`] reads the chosen kind's controls
//! back into the configuration JSON and the secrets the use cases take.

use lockstep_app::connectors::ConnectionKind;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// How a control is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Widget {
    Text,
    Number,
    Url,
    Textarea,
    Password,
    SecretTextarea,
    Select,
    Checkbox,
}

/// One control of the form.
#[derive(Debug, Clone)]
pub(crate) struct Control {
    /// The input's name: the kind, a dot, the API's field (`postgres.config.port`).
    pub name: String,
    pub id: String,
    pub label: &'static str,
    widget: Widget,
    /// Never a secret's value: secret controls are always empty.
    pub value: String,
    pub hint: Option<String>,
    pub error: Option<String>,
    /// For a secret: whether one is stored (the control then says "leave empty to keep").
    pub secret_set: bool,
    pub options: Vec<(&'static str, &'static str)>,
    /// A select whose value shows the fieldsets of its groups (`data-show-group`).
    pub show_group: bool,
}

impl Control {
    pub fn is_select(&self) -> bool {
        self.widget == Widget::Select
    }

    pub fn is_checkbox(&self) -> bool {
        self.widget == Widget::Checkbox
    }

    pub fn is_textarea(&self) -> bool {
        self.widget == Widget::Textarea
    }

    pub fn is_secret(&self) -> bool {
        matches!(self.widget, Widget::Password | Widget::SecretTextarea)
    }

    pub fn is_secret_textarea(&self) -> bool {
        self.widget == Widget::SecretTextarea
    }

    pub fn input_type(&self) -> &'static str {
        match self.widget {
            Widget::Url => "url",
            Widget::Password => "password",
            _ => "text",
        }
    }

    pub fn is_number(&self) -> bool {
        self.widget == Widget::Number
    }

    pub fn selected(&self, value: &str) -> bool {
        self.value == value
    }

    pub fn checked(&self) -> bool {
        self.value == "on"
    }

    /// The "remove" checkbox of a stored secret.
    pub fn remove_name(&self) -> String {
        format!("{}.remove", self.name)
    }

    pub fn remove_id(&self) -> String {
        format!("{}-remove", self.id)
    }
}

/// A fieldset; with `of` set, it shows only when the select named `of` has a value in `group`.
#[derive(Debug, Clone)]
pub(crate) struct Fieldset {
    pub of: String,
    pub group: String,
    pub legend: String,
    pub hint: Option<String>,
}

/// The form as a flat list: a fieldset opens, controls, a fieldset closes (so one loop draws
/// nested groups).
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub open: Option<Fieldset>,
    pub close: bool,
    pub control: Option<Control>,
}

/// What the form shows: the values by input name (never secrets) and the chosen kind.
#[derive(Debug, Clone, Default)]
pub(crate) struct FormState {
    pub values: BTreeMap<String, String>,
    /// Whether the values are a post's (an absent checkbox is then unchecked) or a fresh form's
    /// (defaults apply).
    pub submitted: bool,
}

impl FormState {
    /// The values of a stored configuration (for the edit form).
    pub fn from_config(kind: ConnectionKind, config: &Value) -> FormState {
        let mut values = BTreeMap::new();
        for (path, value) in flatten(config, "config") {
            let text = match value {
                Value::Bool(true) => "on".to_owned(),
                Value::Bool(false) | Value::Null => continue,
                Value::String(s) => s,
                Value::Array(items) => {
                    let sep = if path.ends_with("scopes") { " " } else { ", " };
                    items.iter().map(scalar_text).collect::<Vec<_>>().join(sep)
                }
                other => other.to_string(),
            };
            values.insert(format!("{}.{path}", kind.as_str()), text);
        }
        FormState {
            values,
            submitted: true,
        }
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The leaves of a configuration: `(path, value)` with `prefix.a.b` and `prefix.list[0].c`
/// paths; arrays of scalars stay one leaf.
pub(crate) fn flatten(value: &Value, prefix: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                out.extend(flatten(v, &format!("{prefix}.{key}")));
            }
        }
        Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => {
            for (i, v) in items.iter().enumerate() {
                out.extend(flatten(v, &format!("{prefix}[{i}]")));
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
    out
}

const TLS: &[(&str, &str)] = &[
    ("disable", "disable — plain TCP"),
    ("prefer", "prefer — TLS when offered"),
    ("require", "require — TLS, certificate not checked"),
    ("verify-full", "verify-full — TLS, certificate and name checked"),
];

const AUTH: &[(&str, &str)] = &[
    ("none", "None"),
    ("api_key", "API key"),
    ("basic", "HTTP basic"),
    ("oauth2_client_credentials", "OAuth 2.0 client credentials"),
    (
        "oauth2_authorization_code",
        "OAuth 2.0 authorization code (connect in the browser)",
    ),
];

const PAGINATION: &[(&str, &str)] = &[
    ("none", "None — one request answers everything"),
    ("page", "Page number (?page=1&per_page=100)"),
    ("offset", "Offset (?offset=0&limit=100)"),
    ("cursor", "Cursor from the answer"),
    ("link_header", "Link header (rel=\"next\")"),
];

const KEY_IN: &[(&str, &str)] = &[("header", "Header"), ("query", "Query parameter")];

/// The id of an input name: every character but letters and digits becomes `-`.
fn id_of(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The form's controls. `grouped`: one fieldset per kind shown by the `kind` select (a new
/// connection); otherwise one plain fieldset (the kind of a connection cannot change).
pub(crate) fn items(
    kinds: &[ConnectionKind],
    grouped: bool,
    state: &FormState,
    secrets_set: &[String],
    redirect_uri: &str,
) -> Vec<Item> {
    let mut b = Builder {
        kind: ConnectionKind::Postgres,
        state,
        secrets_set,
        items: Vec::new(),
    };
    for kind in kinds {
        b.kind = *kind;
        let (of, group) = if grouped {
            ("kind".to_owned(), kind.as_str().to_owned())
        } else {
            (String::new(), String::new())
        };
        b.open(of, group, format!("{} settings", kind_label(*kind)), None);
        b.kind_controls(redirect_uri);
        b.close();
    }
    b.items
}

/// A kind for people.
pub(crate) fn kind_label(kind: ConnectionKind) -> &'static str {
    match kind {
        ConnectionKind::Postgres => "PostgreSQL",
        ConnectionKind::Mysql => "MySQL / MariaDB",
        ConnectionKind::Sqlite => "SQLite",
        ConnectionKind::Files => "Files",
        ConnectionKind::Rest => "REST API",
    }
}

struct Builder<'a> {
    kind: ConnectionKind,
    state: &'a FormState,
    secrets_set: &'a [String],
    items: Vec<Item>,
}

impl Builder<'_> {
    fn open(&mut self, of: String, group: String, legend: String, hint: Option<String>) {
        self.items.push(Item {
            open: Some(Fieldset {
                of,
                group,
                legend,
                hint,
            }),
            close: false,
            control: None,
        });
    }

    fn close(&mut self) {
        self.items.push(Item {
            open: None,
            close: true,
            control: None,
        });
    }

    fn name(&self, api: &str) -> String {
        format!("{}.{api}", self.kind.as_str())
    }

    fn push(
        &mut self,
        api: &str,
        label: &'static str,
        widget: Widget,
        hint: Option<&str>,
        default: &str,
    ) {
        let name = self.name(api);
        let secret = matches!(widget, Widget::Password | Widget::SecretTextarea);
        let value = if secret {
            String::new()
        } else {
            match self.state.values.get(&name) {
                Some(v) => v.clone(),
                None if widget == Widget::Select || !self.state.submitted => default.to_owned(),
                None => String::new(),
            }
        };
        let secret_set = secret
            && api
                .strip_prefix("secrets.")
                .is_some_and(|f| self.secrets_set.iter().any(|s| s == f));
        self.items.push(Item {
            open: None,
            close: false,
            control: Some(Control {
                id: id_of(&name),
                name,
                label,
                widget,
                value,
                hint: hint.map(str::to_owned),
                error: None,
                secret_set,
                options: Vec::new(),
                show_group: false,
            }),
        });
    }

    fn text(&mut self, api: &str, label: &'static str, hint: Option<&str>) {
        self.push(api, label, Widget::Text, hint, "");
    }

    fn select(
        &mut self,
        api: &str,
        label: &'static str,
        options: &[(&'static str, &'static str)],
        show_group: bool,
    ) {
        let default = options.first().map_or("", |(v, _)| *v);
        self.push(api, label, Widget::Select, None, default);
        if let Some(Item {
            control: Some(c), ..
        }) = self.items.last_mut()
        {
            c.options = options.to_vec();
            c.show_group = show_group;
        }
    }

    /// A group shown by the select `api` (of this kind) when it has one of `values`.
    fn open_for(&mut self, api: &str, values: &str, legend: &str) {
        let of = self.name(api);
        self.open(of, values.to_owned(), legend.to_owned(), None);
    }

    fn database(&mut self, default_port: &str) {
        self.text(
            "config.host",
            "Host",
            Some("A host name or an IP address, without port."),
        );
        self.push(
            "config.port",
            "Port",
            Widget::Number,
            Some(&format!("Empty for the default, {default_port}.")),
            "",
        );
        self.text("config.database", "Database", None);
        self.text("config.user", "User", None);
        self.push("secrets.password", "Password", Widget::Password, None, "");
        self.push("config.tls", "TLS", Widget::Select, None, "prefer");
        if let Some(Item {
            control: Some(c), ..
        }) = self.items.last_mut()
        {
            c.options = TLS.to_vec();
        }
        self.push(
            "config.ca_certificate",
            "CA certificate (PEM)",
            Widget::Textarea,
            Some("Trusted instead of the system's roots (with verify-full). Optional."),
            "",
        );
    }

    fn kind_controls(&mut self, redirect_uri: &str) {
        match self.kind {
            ConnectionKind::Postgres => {
                self.database("5432");
                self.push(
                    "config.client_certificate",
                    "Client certificate (PEM)",
                    Widget::Textarea,
                    Some("Optional; its key is the client key below."),
                    "",
                );
                self.push(
                    "secrets.client_key",
                    "Client key (PEM)",
                    Widget::SecretTextarea,
                    None,
                    "",
                );
                self.text(
                    "config.schema",
                    "Schema",
                    Some("Discover only this schema; empty for every schema but the system's."),
                );
            }
            ConnectionKind::Mysql => self.database("3306"),
            ConnectionKind::Sqlite => self.text(
                "config.path",
                "Database file",
                Some("A path relative to the hub's files directory (--files-root)."),
            ),
            ConnectionKind::Files => {
                self.text(
                    "config.directory",
                    "Folder",
                    Some(
                        "Relative to the hub's files directory (--files-root); empty for uploaded \
                         files only. Files are uploaded through the API: PUT \
                         /api/v1/connections/{id}/files/{name}.",
                    ),
                );
                self.push(
                    "config.csv.delimiter",
                    "CSV delimiter",
                    Widget::Text,
                    Some("One character; empty for a comma."),
                    ",",
                );
                self.push(
                    "config.csv.header",
                    "The first line of a CSV file names the fields",
                    Widget::Checkbox,
                    None,
                    "on",
                );
            }
            ConnectionKind::Rest => self.rest(redirect_uri),
        }
    }

    fn rest(&mut self, redirect_uri: &str) {
        self.push(
            "config.base_url",
            "Base URL",
            Widget::Url,
            Some("Object paths are relative to it, e.g. https://api.example.com/v2/"),
            "",
        );
        for row in 0..object_rows(&self.state.values, self.kind) {
            let p = format!("config.objects[{row}]");
            self.open(
                String::new(),
                String::new(),
                format!("Object {}", row + 1),
                Some("Leave name and path empty to leave the object out.".to_owned()),
            );
            self.text(&format!("{p}.name"), "Name", Some("How pipelines name it."));
            self.text(
                &format!("{p}.path"),
                "Path",
                Some("Relative to the base URL, e.g. customers or v1/orders?status=open"),
            );
            self.text(
                &format!("{p}.records"),
                "Records pointer",
                Some("JSON pointer to the array of records in each answer, e.g. /data; empty when the answer is the array."),
            );
            self.text(
                &format!("{p}.primary_key"),
                "Primary key",
                Some("Fields that identify a record, separated by commas. Optional."),
            );
            let style = format!("{p}.pagination.style");
            self.select(&style, "Pagination", PAGINATION, true);
            self.open_for(&style, "page", "Page numbers");
            self.push(
                &format!("{p}.pagination.size"),
                "Page size",
                Widget::Number,
                Some("Empty for 100."),
                "",
            );
            self.push(
                &format!("{p}.pagination.first_page"),
                "First page",
                Widget::Number,
                Some("Empty for 1."),
                "",
            );
            self.text(
                &format!("{p}.pagination.page_param"),
                "Page parameter",
                Some("Empty for page."),
            );
            self.text(
                &format!("{p}.pagination.size_param"),
                "Page size parameter",
                Some("Empty for per_page."),
            );
            self.close();
            self.open_for(&style, "offset", "Offsets");
            self.push(
                &format!("{p}.pagination.limit"),
                "Limit",
                Widget::Number,
                Some("Records per request; empty for 100."),
                "",
            );
            self.text(
                &format!("{p}.pagination.offset_param"),
                "Offset parameter",
                Some("Empty for offset."),
            );
            self.text(
                &format!("{p}.pagination.limit_param"),
                "Limit parameter",
                Some("Empty for limit."),
            );
            self.close();
            self.open_for(&style, "cursor", "Cursor");
            self.text(
                &format!("{p}.pagination.next_cursor"),
                "Next cursor pointer",
                Some("JSON pointer to the next cursor in the answer, e.g. /next"),
            );
            self.text(
                &format!("{p}.pagination.cursor_param"),
                "Cursor parameter",
                Some("Empty for cursor."),
            );
            self.close();
            self.close();
        }
        self.select("config.auth.kind", "Authentication", AUTH, true);
        self.open_for("config.auth.kind", "api_key", "API key");
        self.select("config.auth.in", "Sent in", KEY_IN, false);
        self.text(
            "config.auth.name",
            "Header or parameter name",
            Some("e.g. X-Api-Key, or Authorization to send the key as it is."),
        );
        self.push("secrets.api_key", "API key", Widget::Password, None, "");
        self.close();
        self.open_for("config.auth.kind", "basic", "HTTP basic");
        self.text("config.auth.username", "User name", None);
        self.push("secrets.password", "Password", Widget::Password, None, "");
        self.close();
        self.open_for(
            "config.auth.kind",
            "oauth2_client_credentials oauth2_authorization_code",
            "OAuth 2.0 client",
        );
        self.push("config.auth.token_url", "Token URL", Widget::Url, None, "");
        self.text("config.auth.client_id", "Client id", None);
        self.text(
            "config.auth.scopes",
            "Scopes",
            Some("Separated by spaces. Optional."),
        );
        self.push(
            "secrets.client_secret",
            "Client secret",
            Widget::Password,
            Some("Optional for a public client using the authorization code."),
            "",
        );
        self.close();
        self.open_for(
            "config.auth.kind",
            "oauth2_authorization_code",
            "OAuth 2.0 authorization code",
        );
        self.push(
            "config.auth.authorize_url",
            "Authorization URL",
            Widget::Url,
            Some(&format!(
                "Register {redirect_uri} as the redirect URI with the provider; connect from the \
                 connection's page once it is saved."
            )),
            "",
        );
        self.push(
            "config.auth.revocation_url",
            "Revocation URL",
            Widget::Url,
            Some("Optional; Disconnect revokes the tokens there."),
            "",
        );
        self.close();
    }
}

/// The rows of `rest` objects a form shows: the rows it has, and one empty row to add another.
fn object_rows(values: &BTreeMap<String, String>, kind: ConnectionKind) -> usize {
    let rows = row_indices(values, kind);
    let count = rows.last().map_or(0, |last| last + 1);
    let last_empty = count > 0 && {
        let p = format!("{}.config.objects[{}]", kind.as_str(), count - 1);
        ["name", "path"].iter().all(|f| {
            values
                .get(&format!("{p}.{f}"))
                .is_none_or(|v| v.trim().is_empty())
        })
    };
    if last_empty { count } else { count + 1 }
}

/// The row numbers of `{kind}.config.objects[N].…` names.
fn row_indices(values: &BTreeMap<String, String>, kind: ConnectionKind) -> Vec<usize> {
    let prefix = format!("{}.config.objects[", kind.as_str());
    let rows: BTreeSet<usize> = values
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix))
        .filter_map(|rest| rest.split_once(']'))
        .filter_map(|(n, _)| n.parse().ok())
        .filter(|n| *n < 100)
        .collect();
    rows.into_iter().collect()
}

/// Puts `message` next to the control of `kind` for the API's `field` (or the first control
/// under it: `config.auth` → the auth kind). Answers false when no control shows that field.
pub(crate) fn place_error(
    items: &mut [Item],
    kind: ConnectionKind,
    field: &str,
    message: &str,
) -> bool {
    if field == "config" || field == "secrets" {
        return false;
    }
    let name = format!("{}.{field}", kind.as_str());
    let under = format!("{name}.");
    let has = |item: &Item, test: &dyn Fn(&str) -> bool| {
        item.control.as_ref().is_some_and(|c| test(&c.name))
    };
    let at = items
        .iter()
        .position(|i| has(i, &|n| n == name))
        .or_else(|| items.iter().position(|i| has(i, &|n| n.starts_with(&under))));
    match at
        .and_then(|at| items.get_mut(at))
        .and_then(|i| i.control.as_mut())
    {
        Some(c) => {
            if c.error.is_none() {
                c.error = Some(message.to_owned());
            }
            true
        }
        None => false,
    }
}

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

/// The secret fields a stored configuration uses (a `rest` connection: its auth kind's).
pub(crate) fn secret_fields(kind: ConnectionKind, config: &Value) -> &'static [&'static str] {
    match kind {
        ConnectionKind::Rest => match config
            .get("auth")
            .and_then(|a| a.get("kind"))
            .and_then(Value::as_str)
        {
            Some("api_key") => &["api_key"],
            Some("basic") => &["password"],
            Some("oauth2_client_credentials" | "oauth2_authorization_code") => &["client_secret"],
            _ => &[],
        },
        other => other.secret_fields(),
    }
}

/// A secret field for people.
pub(crate) fn secret_label(field: &str) -> &'static str {
    match field {
        "password" => "Password",
        "client_key" => "Client key",
        "api_key" => "API key",
        "client_secret" => "Client secret",
        _ => "Secret",
    }
}

#[cfg(test)]
mod tests {
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
            ("rest.config.auth.authorize_url", "https://id.example.com/auth"),
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
        assert_eq!(
            built.secrets.keys().collect::<Vec<_>>(),
            ["client_secret"]
        );
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
        let mut items = items(&[ConnectionKind::Rest], false, &state, &[], "https://hub/cb");
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
