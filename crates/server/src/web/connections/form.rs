//! The connection form: one group of controls per kind, each named after the API's field with
//! the kind in front (`postgres.config.host` is `config.host` of a `postgres` connection), so
//! the form works with every group shown (no script) and an error of the use case (`config.port`,
//! `secrets.password`) lands next to its control. (`super::input` reads a post back.)

use lockstep_app::connectors::ConnectionKind;
use serde_json::Value;
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
        // Settings of single files are edited as one JSON object.
        let files = config
            .pointer("/csv/files")
            .filter(|_| kind == ConnectionKind::Files);
        if let Some(files) = files {
            values.insert(
                format!("{}.config.csv.files", kind.as_str()),
                serde_json::to_string_pretty(files).unwrap_or_default(),
            );
        }
        for (path, value) in flatten(config, "config") {
            if files.is_some() && path.starts_with("config.csv.files.") {
                continue;
            }
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
    (
        "verify-full",
        "verify-full — TLS, certificate and name checked",
    ),
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
        ConnectionKind::Tryton => "Tryton ERP",
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
                    Some(
                        "One character for every file; empty to detect each file's own (comma, \
                         semicolon, tab or |). Each file's encoding is detected too (UTF-8, \
                         UTF-16 with a byte order mark, else Windows-1252); config.csv.files sets \
                         them per file through the API.",
                    ),
                    "",
                );
                self.push(
                    "config.csv.header",
                    "The first line of a CSV file names the fields",
                    Widget::Checkbox,
                    None,
                    "on",
                );
                self.text(
                    "config.csv.encoding",
                    "Encoding",
                    Some(
                        "For every file, e.g. windows-1252 or utf-8; empty to detect each file's \
                         own.",
                    ),
                );
                self.push(
                    "config.csv.files",
                    "Settings of single files",
                    Widget::Textarea,
                    Some(
                        "Optional, as JSON by file name: {\"Stückliste.csv\": {\"encoding\": \
                         \"windows-1252\", \"delimiter\": \";\", \"header\": true}}.",
                    ),
                    "",
                );
            }
            ConnectionKind::Rest => self.rest(redirect_uri),
            ConnectionKind::Tryton => {
                self.push(
                    "config.url",
                    "Server URL",
                    Widget::Url,
                    Some("The Tryton server's root, e.g. https://erp.example.com/ (plain http only to this machine)."),
                    "",
                );
                self.text("config.database", "Database", None);
                self.text("config.user", "User", None);
                self.push("secrets.password", "Password", Widget::Password, None, "");
            }
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
        let rows = object_rows(&self.state.values, self.kind);
        for row in 0..rows {
            let p = format!("config.objects[{row}]");
            let (legend, hint) = if row > 0 && row + 1 == rows {
                (
                    "Another object".to_owned(),
                    "Fill in a name and a path to add an object.",
                )
            } else {
                (
                    format!("Object {}", row + 1),
                    "Leave name and path empty to leave the object out.",
                )
            };
            self.open(String::new(), String::new(), legend, Some(hint.to_owned()));
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
pub(crate) fn object_rows(values: &BTreeMap<String, String>, kind: ConnectionKind) -> usize {
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
pub(crate) fn row_indices(values: &BTreeMap<String, String>, kind: ConnectionKind) -> Vec<usize> {
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
        .or_else(|| {
            items
                .iter()
                .position(|i| has(i, &|n| n.starts_with(&under)))
        });
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
