//! The `tryton` connector: products and bills of materials in a Tryton ERP server (8.2, with
//! the `production` module), over Tryton's JSON-RPC.
//!
//! # Protocol (Tryton 8.2, as its source says)
//! - Every call is `POST <url><database>/rpc/` with `{"id", "method", "params"}`; the answer is
//!   `{"id", "result"}` or `{"id", "error": [class, args]}`. Calls without a database
//!   (`common.server.version`) go to `POST <url>rpc/`. (`POST <url><database>/` answers 405
//!   in 8.2.)
//! - `common.db.login` `[login, {"password": …}, language]` → `[user_id, session, bus_url]`;
//!   a refused login is HTTP 401, too many failed ones HTTP 429, an unknown database HTTP 404.
//!   Later calls send `Authorization: Session base64(login:user_id:session)`;
//!   `common.db.logout` `[]` ends the session.
//! - `model.<model>.<method>` takes the method's arguments followed by the context (`{}`):
//!   `search_read [domain, offset, limit, order, fields, context]`,
//!   `create [[values…], context]` → ids, `write [ids, values, context]`,
//!   `delete [ids, context]`, `fields_get [fields, context]`. One2many values are actions:
//!   `[["create", [values…]], ["add", ids], ["delete", ids]]`. Reading `a.b` in `fields`
//!   answers `"a.": {"b": …}`. Decimals, bytes and dates travel as
//!   `{"__class__": "Decimal", "decimal": "1.5"}` and the like ([`rpc::plain`] flattens them).
//! - Answers longer than 1400 bytes carry `Content-Encoding: gzip` even when they are not
//!   compressed (the client does not ask for gzip, and so reads them as they are).
//!
//! # How Tryton 8.2 models products and BOMs
//! - `product.template` {`name`, `type` (`goods`), `default_uom` → `product.uom`,
//!   `producible`, `code`, `products`} has variants `product.product` {`template`,
//!   `suffix_code`, `code` (read-only: the template's `code` followed by `suffix_code`, unique
//!   among active products), `boms`}. A template created without `products` has no variant:
//!   [`TrytonClient::create_products`] creates each with one, whose `suffix_code` is the code.
//! - `product.uom` {`symbol` (`u`, `kg`, `m`, …), `digits`, `rounding`, `category`}. A
//!   quantity with more decimals than its unit's `digits` is refused (`u` has 0).
//! - `production.bom` {`name`, `inputs` → `production.bom.input` {`product`, `quantity`
//!   (float), `unit`}, `outputs` → `production.bom.output` (same fields)}. An input's unit must
//!   be of its product's unit's category.
//! - A product lists its BOMs through `product.product-production.bom` {`product`, `bom`,
//!   `sequence`}; that link is refused unless the product is `producible` and is an output of
//!   the BOM.
//! - Attachments are `ir.attachment` {`name`, `resource` (`"product.product,<id>"`), `type`
//!   (`data`), `data` (bytes)}.
//! - Creating many products in one call fails in Tryton 8.2 ("maximum recursion depth
//!   exceeded", from about 80): the unique-code check nests one SQL condition per product.
//!   The client creates at most [`PRODUCT_BATCH`] per call.
//! - A new database's `admin` is in no product or production group: it may not read products
//!   until it is made a member (the test peer's `tests/peers/tryton/prepare.py` does).
//!
//! [`TrytonClient`] is the typed API the data sets use; [`TrytonConnector`] is the connection
//! kind (test, discover, sample) built on it. Every answer is bounded to
//! [`rpc::MAX_ANSWER_BYTES`] and every call to the context's timeout; nothing is retried.
//! No error message carries the password, the session or Tryton's own error text (which quotes
//! record values).

pub mod client;
mod config;
pub mod rpc;

pub use client::{
    Attachment, BATCH, Bom, BomLine, NewBomLine, NewProduct, PRODUCT_BATCH, Product, TrytonClient,
    Unit,
};
pub use config::{SECRET_FIELDS, TrytonConfig};

use crate::{
    Connector, ConnectorError, Context, FailureKind, FieldMeta, FieldType, ObjectKind, ObjectMeta,
    Record, Secret, Secrets,
};
use serde_json::{Value, json};

/// An object the connector exposes: its name, its Tryton model and its fields (name, path
/// read in Tryton, type).
struct TrytonObject {
    name: &'static str,
    model: &'static str,
    fields: &'static [(&'static str, &'static str, FieldType)],
}

/// What discovery and samples show: products, BOM input lines and units of measure.
const OBJECTS: &[TrytonObject] = &[
    TrytonObject {
        name: "product",
        model: "product.product",
        fields: &[
            ("id", "id", FieldType::Integer),
            ("code", "code", FieldType::String),
            ("name", "name", FieldType::String),
            ("template", "template", FieldType::Integer),
            ("uom", "default_uom.symbol", FieldType::String),
            ("producible", "producible", FieldType::Boolean),
            ("active", "active", FieldType::Boolean),
        ],
    },
    TrytonObject {
        name: "bom",
        model: "production.bom.input",
        fields: &[
            ("id", "id", FieldType::Integer),
            ("bom", "bom", FieldType::Integer),
            ("bom_name", "bom.name", FieldType::String),
            ("product", "product", FieldType::Integer),
            ("product_code", "product.code", FieldType::String),
            ("quantity", "quantity", FieldType::Float),
            ("uom", "unit.symbol", FieldType::String),
        ],
    },
    TrytonObject {
        name: "uom",
        model: "product.uom",
        fields: &[
            ("id", "id", FieldType::Integer),
            ("symbol", "symbol", FieldType::String),
            ("name", "name", FieldType::String),
            ("digits", "digits", FieldType::Integer),
            ("category", "category", FieldType::Integer),
        ],
    },
];

/// One `tryton` connection.
#[derive(Debug)]
pub struct TrytonConnector {
    config: TrytonConfig,
    secrets: Secrets,
    ctx: Context,
}

impl TrytonConnector {
    /// Nothing is requested yet.
    pub fn new(config: TrytonConfig, secrets: Secrets, ctx: Context) -> Self {
        TrytonConnector {
            config,
            secrets,
            ctx,
        }
    }

    /// Logs in with the connection's password.
    pub async fn client(&self) -> Result<TrytonClient, ConnectorError> {
        let password: &Secret = self.secrets.get("password").ok_or_else(|| {
            ConnectorError::config("secrets.password", "the Tryton user's password is required")
        })?;
        TrytonClient::login(&self.ctx, &self.config, password).await
    }
}

impl Connector for TrytonConnector {
    /// Logs in, reads the server's version (it must be 8.2) and logs out.
    async fn test(&self) -> Result<(), ConnectorError> {
        let client = self.client().await?;
        let version = client.server_version().await?;
        client.logout().await?;
        if version != "8.2" {
            return Err(ConnectorError::failed(
                FailureKind::Protocol,
                format!("the server runs Tryton {version}; this connector speaks Tryton 8.2"),
            ));
        }
        Ok(())
    }

    /// `product`, `bom` (BOM input lines) and `uom`, with their fields' Tryton types (a
    /// `fields_get` per model, which also checks the user may read it).
    async fn discover(&self) -> Result<Vec<ObjectMeta>, ConnectorError> {
        let client = self.client().await?;
        let mut objects = Vec::with_capacity(OBJECTS.len());
        for object in OBJECTS {
            let top: Vec<&str> = object
                .fields
                .iter()
                .map(|(_, path, _)| path.split('.').next().unwrap_or(path))
                .collect();
            let method = format!("model.{}.fields_get", object.model);
            let described = client.call(&method, json!([top, {}])).await?;
            let fields = object
                .fields
                .iter()
                .map(|(name, path, field_type)| {
                    let head = path.split('.').next().unwrap_or(path);
                    let native = described
                        .get(head)
                        .and_then(|f| f.get("type"))
                        .and_then(Value::as_str)
                        .unwrap_or("integer");
                    let native = if path.contains('.') {
                        format!("{native} ({path})")
                    } else {
                        native.to_owned()
                    };
                    FieldMeta {
                        name: (*name).to_owned(),
                        field_type: *field_type,
                        native,
                        nullable: *name != "id",
                        primary_key: *name == "id",
                    }
                })
                .collect();
            objects.push(ObjectMeta {
                name: object.name.to_owned(),
                kind: ObjectKind::Table,
                fields,
                layout: None,
                error: None,
            });
        }
        client.logout().await?;
        Ok(objects)
    }

    /// The first `limit` records of `object` in id order.
    async fn sample(&self, object: &str, limit: usize) -> Result<Vec<Record>, ConnectorError> {
        let found = OBJECTS.iter().find(|o| o.name == object).ok_or_else(|| {
            ConnectorError::failed(FailureKind::NotFound, format!("{object}: no such object"))
        })?;
        let client = self.client().await?;
        let paths: Vec<&str> = found.fields.iter().map(|(_, path, _)| *path).collect();
        let rows = client
            .search_read(
                found.model,
                json!([]),
                Some(limit),
                json!([["id", "ASC"]]),
                &paths,
            )
            .await?;
        client.logout().await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                found
                    .fields
                    .iter()
                    .map(|(name, path, field_type)| {
                        ((*name).to_owned(), read_path(&row, path, *field_type))
                    })
                    .collect()
            })
            .collect())
    }
}

/// The value at `path` in a `search_read` row: `a` is `row.a`, `a.b` is `row["a."].b`. A
/// boolean is a JSON boolean (Tryton on SQLite answers some, like `active`, as 0 or 1).
fn read_path(row: &serde_json::Map<String, Value>, path: &str, field_type: FieldType) -> Value {
    let value = match path.split_once('.') {
        None => row.get(path).cloned(),
        Some((head, rest)) => row
            .get(&format!("{head}."))
            .and_then(|related| related.get(rest))
            .cloned(),
    };
    match rpc::plain(value.unwrap_or(Value::Null)) {
        Value::Number(n) if field_type == FieldType::Boolean => {
            Value::Bool(n.as_f64().is_some_and(|n| n != 0.0))
        }
        other => other,
    }
}
