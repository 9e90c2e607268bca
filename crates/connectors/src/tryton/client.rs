//! The typed Tryton client: products, bills of materials and attachments, each operation in
//! one or a few JSON-RPC calls however many records it touches (batches of [`BATCH`]).
//!
//! Quantities are `f64` because Tryton stores them as floats. Tryton refuses a quantity with
//! more decimals than its unit's `digits` (`u`, the unit, has 0: whole pieces only; `kg` has
//! 2), so every quantity sent is first checked against its unit ([`Unit::fits`]): one that
//! does not fit is an error naming the line, never rounded silently; one that fits is sent
//! rounded to the unit's digits, which removes binary noise (`0.1 + 0.2` is sent as `0.3`).
//! Quantities read back are the floats Tryton holds; compare them after [`Unit::round`].

use super::TrytonConfig;
use super::rpc::{self, Rpc};
use crate::{ConnectorError, Context, FailureKind, Secret};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// The most records one call reads or writes.
pub const BATCH: usize = 1000;

/// The most products one call creates. Tryton 8.2 checks the unique product code with an SQL
/// condition nested one level per product written, and from about 80 products in one call
/// building it exceeds Python's recursion limit (the call fails with "maximum recursion depth
/// exceeded").
pub const PRODUCT_BATCH: usize = 50;

/// A unit of measure (`product.uom`).
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub id: i64,
    /// `u`, `kg`, `m`, … — how the client names units.
    pub symbol: String,
    pub name: String,
    /// How many decimals a quantity in this unit may have.
    pub digits: u32,
    /// Units convert only within a category (mass, length, …); a BOM line's unit must be of
    /// its product's unit's category.
    pub category: i64,
}

impl Unit {
    /// `quantity` rounded to this unit's digits (half away from zero).
    pub fn round(&self, quantity: f64) -> f64 {
        let scale = 10f64.powi(self.digits.min(12) as i32);
        (quantity * scale).round() / scale
    }

    /// Whether Tryton takes `quantity` in this unit: finite, not negative, and without more
    /// decimals than the unit's digits (up to float noise).
    pub fn fits(&self, quantity: f64) -> bool {
        quantity.is_finite()
            && quantity >= 0.0
            && (self.round(quantity) - quantity).abs() <= 1e-9 * quantity.abs().max(1.0)
    }
}

/// A product variant (`product.product`) with what the client needs of its template.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub id: i64,
    pub template_id: i64,
    /// The variant's code (Tryton's `code`: the template's code followed by the variant's
    /// `suffix_code`); `None` when it has none.
    pub code: Option<String>,
    pub name: String,
    /// The symbol of its default unit.
    pub uom_symbol: String,
    /// Whether it may be produced, i.e. have bills of materials.
    pub producible: bool,
}

/// A product to create: a template of type `goods` with one variant.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProduct {
    /// Becomes the variant's `suffix_code`, and so its `code` (unique among active products).
    pub code: String,
    pub name: String,
    /// The symbol of an existing unit (`u`, `kg`).
    pub uom_symbol: String,
    pub producible: bool,
}

/// A bill of materials (`production.bom`) as attached to a product.
#[derive(Debug, Clone, PartialEq)]
pub struct Bom {
    pub id: i64,
    pub name: String,
    /// The product it was asked for (`boms_of`) — the one it is attached to.
    pub output_product: i64,
    /// Its input lines, in the order of their ids (creation order).
    pub inputs: Vec<BomLine>,
}

/// One input line of a BOM (`production.bom.input`).
#[derive(Debug, Clone, PartialEq)]
pub struct BomLine {
    pub id: i64,
    pub product_id: i64,
    pub quantity: f64,
    pub uom_symbol: String,
}

/// An input line to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBomLine {
    pub product_id: i64,
    /// At most the unit's digits decimals; see the module docs.
    pub quantity: f64,
    /// Of the same category as the product's unit.
    pub uom_symbol: String,
}

/// A file attached to a record (`ir.attachment`).
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub id: i64,
    pub name: String,
    pub data: Vec<u8>,
}

/// A logged-in session with one Tryton database. Logs out on [`TrytonClient::logout`], or, when
/// dropped inside a Tokio runtime, in the background.
pub struct TrytonClient {
    rpc: Rpc,
    user_id: i64,
    units: Vec<Unit>,
}

impl std::fmt::Debug for TrytonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrytonClient")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl Drop for TrytonClient {
    fn drop(&mut self) {
        self.rpc.logout_in_background();
    }
}

impl TrytonClient {
    /// Logs in as `config.user` with `password` and reads the units of measure. The URL must
    /// pass the egress policy; every call is bounded by `ctx.timeout`.
    pub async fn login(
        ctx: &Context,
        config: &TrytonConfig,
        password: &Secret,
    ) -> Result<TrytonClient, ConnectorError> {
        let mut rpc = Rpc::new(ctx, config)?;
        let user_id = rpc.login(&config.user, password).await?;
        let mut client = TrytonClient {
            rpc,
            user_id,
            units: Vec::new(),
        };
        client.units = client.read_units().await?;
        Ok(client)
    }

    /// Logs out and waits for Tryton to end the session.
    pub async fn logout(mut self) -> Result<(), ConnectorError> {
        self.rpc.logout().await
    }

    /// The logged-in user's id.
    pub fn user_id(&self) -> i64 {
        self.user_id
    }

    /// The server's version series (`8.2`).
    pub async fn server_version(&self) -> Result<String, ConnectorError> {
        self.rpc.server_version().await
    }

    /// The active units of measure, as read at login.
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// The unit with this symbol.
    pub fn unit(&self, symbol: &str) -> Option<&Unit> {
        self.units.iter().find(|u| u.symbol == symbol)
    }

    /// Calls any JSON-RPC method in the session (`model.<name>.<method>`); the answer as
    /// Tryton gives it. For what the typed methods do not cover.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, ConnectorError> {
        self.rpc.call(method, params).await
    }

    /// `model.<model>.search_read` of every record matching `domain`, `fields` read, in `order`
    /// (`[["id", "ASC"]]`), at most `limit`.
    pub async fn search_read(
        &self,
        model: &str,
        domain: Value,
        limit: Option<usize>,
        order: Value,
        fields: &[&str],
    ) -> Result<Vec<serde_json::Map<String, Value>>, ConnectorError> {
        let method = format!("model.{model}.search_read");
        let answer = self
            .rpc
            .call(&method, json!([domain, 0, limit, order, fields, {}]))
            .await?;
        let Value::Array(rows) = answer else {
            return Err(protocol(&method));
        };
        rows.into_iter()
            .map(|row| match row {
                Value::Object(map) => Ok(map),
                _ => Err(protocol(&method)),
            })
            .collect()
    }

    async fn read_units(&self) -> Result<Vec<Unit>, ConnectorError> {
        let rows = self
            .search_read(
                "product.uom",
                json!([]),
                Some(BATCH),
                json!([["id", "ASC"]]),
                &["symbol", "name", "digits", "category"],
            )
            .await?;
        let method = "model.product.uom.search_read";
        rows.iter()
            .map(|row| {
                Ok(Unit {
                    id: id_of(row, "id").ok_or_else(|| protocol(method))?,
                    symbol: text_of(row, "symbol").ok_or_else(|| protocol(method))?,
                    name: text_of(row, "name").unwrap_or_default(),
                    digits: row
                        .get("digits")
                        .and_then(Value::as_u64)
                        .and_then(|d| u32::try_from(d).ok())
                        .unwrap_or(0),
                    category: id_of(row, "category").unwrap_or(0),
                })
            })
            .collect()
    }

    fn unit_or_error(&self, symbol: &str) -> Result<&Unit, ConnectorError> {
        self.unit(symbol).ok_or_else(|| {
            ConnectorError::failed(
                FailureKind::NotFound,
                format!("Tryton has no unit of measure with the symbol '{symbol}'"),
            )
        })
    }

    fn unit_symbol(&self, id: Option<i64>) -> String {
        id.and_then(|id| self.units.iter().find(|u| u.id == id))
            .map(|u| u.symbol.clone())
            .unwrap_or_default()
    }

    /// The active products whose code is one of `codes` (one call per [`BATCH`] codes).
    pub async fn products_by_codes(
        &self,
        codes: &[String],
    ) -> Result<Vec<Product>, ConnectorError> {
        self.products_where("code", codes).await
    }

    /// The active products whose name is one of `names` (exactly; one call per [`BATCH`]).
    pub async fn products_by_names(
        &self,
        names: &[String],
    ) -> Result<Vec<Product>, ConnectorError> {
        self.products_where("name", names).await
    }

    /// The active products with these ids (missing ones are left out).
    pub async fn products_by_ids(&self, ids: &[i64]) -> Result<Vec<Product>, ConnectorError> {
        let mut products = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH) {
            products.extend(self.read_products(json!([["id", "in", chunk]])).await?);
        }
        Ok(products)
    }

    async fn products_where(
        &self,
        field: &str,
        values: &[String],
    ) -> Result<Vec<Product>, ConnectorError> {
        let mut unique: Vec<&String> = values.iter().collect();
        unique.sort();
        unique.dedup();
        let mut products = Vec::with_capacity(unique.len());
        for chunk in unique.chunks(BATCH) {
            products.extend(self.read_products(json!([[field, "in", chunk]])).await?);
        }
        Ok(products)
    }

    async fn read_products(&self, domain: Value) -> Result<Vec<Product>, ConnectorError> {
        let method = "model.product.product.search_read";
        let rows = self
            .search_read(
                "product.product",
                domain,
                None,
                json!([["id", "ASC"]]),
                &["code", "name", "template", "default_uom", "producible"],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Product {
                    id: id_of(row, "id").ok_or_else(|| protocol(method))?,
                    template_id: id_of(row, "template").ok_or_else(|| protocol(method))?,
                    code: text_of(row, "code").filter(|c| !c.is_empty()),
                    name: text_of(row, "name").unwrap_or_default(),
                    uom_symbol: self.unit_symbol(id_of(row, "default_uom")),
                    producible: bool_of(row, "producible"),
                })
            })
            .collect()
    }

    /// Creates the products — per [`PRODUCT_BATCH`], one call for the templates with their
    /// variants and one to read the variants' ids. Answers the new products' ids in the order
    /// given. Each batch is a transaction of its own: when one fails, the batches before it
    /// stay created (find them by code).
    pub async fn create_products(
        &self,
        products: &[NewProduct],
    ) -> Result<Vec<i64>, ConnectorError> {
        let mut ids = Vec::with_capacity(products.len());
        for chunk in products.chunks(PRODUCT_BATCH) {
            let mut templates = Vec::with_capacity(chunk.len());
            for product in chunk {
                let unit = self.unit_or_error(&product.uom_symbol)?;
                templates.push(json!({
                    "name": product.name,
                    "type": "goods",
                    "default_uom": unit.id,
                    "producible": product.producible,
                    "products": [["create", [{"suffix_code": product.code}]]],
                }));
            }
            let method = "model.product.template.create";
            let template_ids =
                ids_of(method, self.rpc.call(method, json!([templates, {}])).await?)?;
            if template_ids.len() != chunk.len() {
                return Err(protocol(method));
            }
            let rows = self
                .search_read(
                    "product.product",
                    json!([["template", "in", template_ids]]),
                    None,
                    json!([["id", "ASC"]]),
                    &["template"],
                )
                .await?;
            let by_template: HashMap<i64, i64> = rows
                .iter()
                .filter_map(|row| Some((id_of(row, "template")?, id_of(row, "id")?)))
                .collect();
            for template in template_ids {
                ids.push(
                    *by_template
                        .get(&template)
                        .ok_or_else(|| protocol("model.product.product.search_read"))?,
                );
            }
        }
        Ok(ids)
    }

    /// The BOMs attached to each product (`product.product-production.bom`, in their sequence),
    /// with their input lines; every product asked for is a key, with no BOM if it has none.
    /// Three calls per [`BATCH`] products.
    pub async fn boms_of(
        &self,
        product_ids: &[i64],
    ) -> Result<BTreeMap<i64, Vec<Bom>>, ConnectorError> {
        let mut result: BTreeMap<i64, Vec<Bom>> =
            product_ids.iter().map(|id| (*id, Vec::new())).collect();
        for chunk in product_ids.chunks(BATCH) {
            let links = self
                .search_read(
                    "product.product-production.bom",
                    json!([["product", "in", chunk]]),
                    None,
                    json!([["sequence", "ASC"], ["id", "ASC"]]),
                    &["product", "bom"],
                )
                .await?;
            let links: Vec<(i64, i64)> = links
                .iter()
                .filter_map(|row| Some((id_of(row, "product")?, id_of(row, "bom")?)))
                .collect();
            let mut bom_ids: Vec<i64> = links.iter().map(|(_, bom)| *bom).collect();
            bom_ids.sort_unstable();
            bom_ids.dedup();
            let (names, lines) = self.read_boms(&bom_ids).await?;
            for (product, bom) in links {
                let Some(name) = names.get(&bom) else {
                    continue; // an inactive BOM
                };
                result.entry(product).or_default().push(Bom {
                    id: bom,
                    name: name.clone(),
                    output_product: product,
                    inputs: lines.get(&bom).cloned().unwrap_or_default(),
                });
            }
        }
        Ok(result)
    }

    /// The names and input lines of these BOMs (a BOM shared by two products is read once and
    /// shown under each).
    async fn read_boms(
        &self,
        bom_ids: &[i64],
    ) -> Result<(HashMap<i64, String>, HashMap<i64, Vec<BomLine>>), ConnectorError> {
        let mut names = HashMap::new();
        let mut lines: HashMap<i64, Vec<BomLine>> = HashMap::new();
        if bom_ids.is_empty() {
            return Ok((names, lines));
        }
        for chunk in bom_ids.chunks(BATCH) {
            for row in self
                .search_read(
                    "production.bom",
                    json!([["id", "in", chunk]]),
                    None,
                    json!([["id", "ASC"]]),
                    &["name"],
                )
                .await?
            {
                if let Some(id) = id_of(&row, "id") {
                    names.insert(id, text_of(&row, "name").unwrap_or_default());
                }
            }
            for line in self.read_lines(json!([["bom", "in", chunk]])).await? {
                lines.entry(line.0).or_default().push(line.1);
            }
        }
        Ok((names, lines))
    }

    /// BOM input lines matching `domain`, each with its BOM's id, in id order.
    async fn read_lines(&self, domain: Value) -> Result<Vec<(i64, BomLine)>, ConnectorError> {
        let method = "model.production.bom.input.search_read";
        let rows = self
            .search_read(
                "production.bom.input",
                domain,
                None,
                json!([["id", "ASC"]]),
                &["bom", "product", "quantity", "unit"],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    id_of(row, "bom").ok_or_else(|| protocol(method))?,
                    BomLine {
                        id: id_of(row, "id").ok_or_else(|| protocol(method))?,
                        // A line may take a phantom BOM instead of a product: 0 then.
                        product_id: id_of(row, "product").unwrap_or(0),
                        quantity: row
                            .get("quantity")
                            .and_then(Value::as_f64)
                            .ok_or_else(|| protocol(method))?,
                        uom_symbol: self.unit_symbol(id_of(row, "unit")),
                    },
                ))
            })
            .collect()
    }

    /// The input lines as Tryton takes them (with `bom` when given): each quantity checked
    /// against its unit and rounded to its digits.
    fn line_values(
        &self,
        inputs: &[NewBomLine],
        bom: Option<i64>,
    ) -> Result<Vec<Value>, ConnectorError> {
        inputs
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let unit = self.unit_or_error(&line.uom_symbol)?;
                let quantity = checked_quantity(unit, line.quantity, &format!("input {}", i + 1))?;
                let mut value = json!({
                    "product": line.product_id,
                    "quantity": quantity,
                    "unit": unit.id,
                });
                if let (Some(bom), Some(map)) = (bom, value.as_object_mut()) {
                    map.insert("bom".to_owned(), json!(bom));
                }
                Ok(value)
            })
            .collect()
    }

    /// Creates a BOM named `name` that makes one of `output_product` (in its default unit)
    /// from `inputs`, and attaches it to the product (which must be producible). Three calls;
    /// if attaching fails the new BOM is deleted again. Answers the BOM's id.
    pub async fn create_bom(
        &self,
        output_product: i64,
        name: &str,
        inputs: &[NewBomLine],
    ) -> Result<i64, ConnectorError> {
        let inputs = self.line_values(inputs, None)?;
        let product = self
            .products_by_ids(&[output_product])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                ConnectorError::failed(
                    FailureKind::NotFound,
                    format!("Tryton has no active product with id {output_product}"),
                )
            })?;
        if !product.producible {
            return Err(ConnectorError::failed(
                FailureKind::Other,
                format!(
                    "product {output_product} is not producible in Tryton, so it can have no \
                     BOM: set `producible` on its template first"
                ),
            ));
        }
        let unit = self.unit_or_error(&product.uom_symbol)?;
        let method = "model.production.bom.create";
        let bom = json!({
            "name": name,
            "inputs": [["create", inputs]],
            "outputs": [["create", [{"product": output_product, "quantity": 1.0, "unit": unit.id}]]],
        });
        let bom_id = single_id(method, self.rpc.call(method, json!([[bom], {}])).await?)?;
        let method = "model.product.product-production.bom.create";
        if let Err(err) = self
            .rpc
            .call(
                method,
                json!([[{"product": output_product, "bom": bom_id}], {}]),
            )
            .await
        {
            // Leave no BOM that no product lists (best effort: the first error is the one
            // that matters).
            let _ = self
                .rpc
                .call("model.production.bom.delete", json!([[bom_id], {}]))
                .await;
            return Err(err);
        }
        Ok(bom_id)
    }

    /// Adds input lines to a BOM (one call per [`BATCH`]); answers their ids in order.
    pub async fn add_lines(
        &self,
        bom_id: i64,
        inputs: &[NewBomLine],
    ) -> Result<Vec<i64>, ConnectorError> {
        let method = "model.production.bom.input.create";
        let mut ids = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(BATCH) {
            let values = self.line_values(chunk, Some(bom_id))?;
            ids.extend(ids_of(
                method,
                self.rpc.call(method, json!([values, {}])).await?,
            )?);
        }
        Ok(ids)
    }

    /// Sets one input line's quantity, in the line's unit (two calls: its unit, then the
    /// write).
    pub async fn set_line_quantity(
        &self,
        line_id: i64,
        quantity: f64,
    ) -> Result<(), ConnectorError> {
        let line = self
            .read_lines(json!([["id", "=", line_id]]))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                ConnectorError::failed(
                    FailureKind::NotFound,
                    format!("Tryton has no BOM input line with id {line_id}"),
                )
            })?;
        let unit = self.unit_or_error(&line.1.uom_symbol)?;
        let quantity = checked_quantity(unit, quantity, &format!("line {line_id}"))?;
        self.rpc
            .call(
                "model.production.bom.input.write",
                json!([[line_id], {"quantity": quantity}, {}]),
            )
            .await
            .map(drop)
    }

    /// Deletes BOM input lines (the `production.bom.input` rows only; their products stay).
    /// Ids that no longer exist are ignored, as Tryton does.
    pub async fn unlink_lines(&self, line_ids: &[i64]) -> Result<(), ConnectorError> {
        for chunk in line_ids.chunks(BATCH) {
            self.rpc
                .call("model.production.bom.input.delete", json!([chunk, {}]))
                .await?;
        }
        Ok(())
    }

    /// Attaches a file to a product (`ir.attachment` on `product.product,<id>`); answers the
    /// attachment's id. Tryton's default request limit for a logged-in user is some MiB: keep
    /// files (thumbnails) small.
    pub async fn attach_file(
        &self,
        product_id: i64,
        name: &str,
        bytes: &[u8],
    ) -> Result<i64, ConnectorError> {
        let method = "model.ir.attachment.create";
        let attachment = json!({
            "name": name,
            "resource": format!("product.product,{product_id}"),
            "type": "data",
            "data": rpc::bytes_value(bytes),
        });
        single_id(
            method,
            self.rpc.call(method, json!([[attachment], {}])).await?,
        )
    }

    /// The files attached to a product, in id order, with their contents.
    pub async fn attachments_of(&self, product_id: i64) -> Result<Vec<Attachment>, ConnectorError> {
        let method = "model.ir.attachment.search_read";
        let rows = self
            .search_read(
                "ir.attachment",
                json!([["resource", "=", format!("product.product,{product_id}")]]),
                Some(BATCH),
                json!([["id", "ASC"]]),
                &["name", "data"],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Attachment {
                    id: id_of(row, "id").ok_or_else(|| protocol(method))?,
                    name: text_of(row, "name").unwrap_or_default(),
                    data: match row.get("data") {
                        None | Some(Value::Null) => Vec::new(),
                        Some(data) => rpc::bytes_of(data).ok_or_else(|| protocol(method))?,
                    },
                })
            })
            .collect()
    }
}

/// `quantity` as Tryton takes it in `unit`, or an error naming `what` (never the value).
fn checked_quantity(unit: &Unit, quantity: f64, what: &str) -> Result<f64, ConnectorError> {
    if !unit.fits(quantity) {
        return Err(ConnectorError::failed(
            FailureKind::Other,
            format!(
                "{what}: the quantity must be a number of at least 0 with at most {} decimals \
                 for the unit '{}'",
                unit.digits, unit.symbol
            ),
        ));
    }
    Ok(unit.round(quantity))
}

/// A many2one or id field: Tryton answers the id (or null).
fn id_of(row: &serde_json::Map<String, Value>, field: &str) -> Option<i64> {
    row.get(field).and_then(Value::as_i64)
}

/// A boolean field: Tryton on SQLite answers some as 0 or 1.
fn bool_of(row: &serde_json::Map<String, Value>, field: &str) -> bool {
    match row.get(field) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
        _ => false,
    }
}

fn text_of(row: &serde_json::Map<String, Value>, field: &str) -> Option<String> {
    row.get(field).and_then(Value::as_str).map(str::to_owned)
}

fn ids_of(method: &str, answer: Value) -> Result<Vec<i64>, ConnectorError> {
    answer
        .as_array()
        .and_then(|ids| ids.iter().map(Value::as_i64).collect::<Option<Vec<_>>>())
        .ok_or_else(|| protocol(method))
}

fn single_id(method: &str, answer: Value) -> Result<i64, ConnectorError> {
    match ids_of(method, answer)?.as_slice() {
        [id] => Ok(*id),
        _ => Err(protocol(method)),
    }
}

fn protocol(method: &str) -> ConnectorError {
    ConnectorError::failed(
        FailureKind::Protocol,
        format!("Tryton's answer to {method} is not what Tryton 8.2 answers"),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn unit(digits: u32) -> Unit {
        Unit {
            id: 1,
            symbol: "x".to_owned(),
            name: "X".to_owned(),
            digits,
            category: 1,
        }
    }

    #[test]
    fn quantities_must_fit_the_units_digits() {
        assert!(unit(0).fits(3.0));
        assert!(!unit(0).fits(2.5));
        assert!(unit(2).fits(0.1 + 0.2));
        assert_eq!(unit(2).round(0.1 + 0.2), 0.3);
        assert!(!unit(2).fits(1.2345));
        assert!(!unit(2).fits(-1.0));
        assert!(!unit(2).fits(f64::NAN));
        assert!(!unit(2).fits(f64::INFINITY));
        let err = checked_quantity(&unit(0), 2.5, "input 2").unwrap_err();
        assert!(err.to_string().starts_with("input 2: "));
        assert!(!err.to_string().contains("2.5"));
    }
}
