//! Records as JSON rows and back: how a data set keeps the records a review plan made, shows
//! them, checks an edit against a field's type, compares them with the destination's, and turns
//! them into batches again to write.
//!
//! A row is the values of a schema's fields in order, each as the connectors' `Record`
//! conventions show it (decimals and big integers as strings, timestamps RFC 3339, binary
//! base64).

use crate::convert::{Cell, ColumnBuilder, ColumnView, cell_to_json};
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{Field, SchemaRef};
use lockstep_connectors::FieldType;
use lockstep_connectors::batch::field_meta;
use std::borrow::Cow;
use std::sync::Arc;

/// One record's values, in the order of its schema's fields.
pub type Row = Vec<serde_json::Value>;

/// The rows of a batch.
pub fn batch_rows(batch: &RecordBatch) -> Vec<Row> {
    let schema = batch.schema();
    let views: Vec<ColumnView<'_>> = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| ColumnView::new(c, field_meta(f).field_type))
        .collect();
    (0..batch.num_rows())
        .map(|row| views.iter().map(|v| cell_to_json(&v.cell(row))).collect())
        .collect()
}

/// Why rows do not make a batch: the first value that does not fit its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row}: '{field}' cannot hold this value as {expected}")]
pub struct ValueError {
    /// The row, counting from 0 in the rows given.
    pub row: usize,
    /// The field's name.
    pub field: String,
    /// The field's type, in words (`integer`, `date`).
    pub expected: String,
}

/// A batch of `schema` from `rows` (each as long as the schema; missing values are null).
pub fn rows_batch(schema: &SchemaRef, rows: &[&Row]) -> Result<RecordBatch, ValueError> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let mut builder = builder(field, rows.len())?;
        for (r, row) in rows.iter().enumerate() {
            let value = row.get(i).unwrap_or(&serde_json::Value::Null);
            append(&mut builder, field, value).map_err(|mut e| {
                e.row = r;
                e
            })?;
        }
        columns.push(builder.finish());
    }
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )
    .map_err(|_| ValueError {
        row: 0,
        field: String::new(),
        expected: "the schema's types".to_owned(),
    })
}

/// `value` as `field` holds it (text parsed: `"42"` for an integer is 42, `"2024-01-31"` for a
/// date), or why it cannot be: the check an edit goes through.
pub fn normalize(
    field: &Field,
    value: &serde_json::Value,
) -> Result<serde_json::Value, ValueError> {
    let mut b = builder(field, 1)?;
    append(&mut b, field, value)?;
    let array = b.finish();
    let view = ColumnView::new(&array, field_meta(field).field_type);
    Ok(cell_to_json(&view.cell(0)))
}

/// A value's text for comparing records of two systems: numbers (and numeric text) by their
/// value, so `1`, `1.0` and `"1.00"` compare equal; everything else by its JSON text.
pub fn comparable(value: &serde_json::Value) -> Cow<'_, str> {
    match value {
        serde_json::Value::Null => Cow::Borrowed("\u{0}null"),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(f) => Cow::Owned(format!("\u{1}{f}")),
            None => Cow::Owned(n.to_string()),
        },
        serde_json::Value::String(s) => match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() && looks_numeric(s) => Cow::Owned(format!("\u{1}{f}")),
            _ => Cow::Borrowed(s.as_str()),
        },
        serde_json::Value::Bool(true) => Cow::Borrowed("\u{2}true"),
        serde_json::Value::Bool(false) => Cow::Borrowed("\u{2}false"),
        other => Cow::Owned(other.to_string()),
    }
}

/// Whether two values of the same field are the same for a comparison ([`comparable`]).
pub fn same_value(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    a == b || comparable(a) == comparable(b)
}

/// Plain decimal numerals only (`12`, `-3.50`): not `inf`, `NaN` or `1e3`, which stay text.
fn looks_numeric(s: &str) -> bool {
    let s = s.trim();
    let s = s.strip_prefix('-').unwrap_or(s);
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.bytes().filter(|b| *b == b'.').count() <= 1
        && s.bytes().any(|b| b.is_ascii_digit())
}

fn builder(field: &Field, capacity: usize) -> Result<ColumnBuilder, ValueError> {
    let field_type = field_meta(field).field_type;
    ColumnBuilder::new(field.data_type(), field_type, capacity).ok_or_else(|| ValueError {
        row: 0,
        field: field.name().clone(),
        expected: type_words(field_type).to_owned(),
    })
}

fn append(
    builder: &mut ColumnBuilder,
    field: &Field,
    value: &serde_json::Value,
) -> Result<(), ValueError> {
    let cell = json_cell(value);
    let error = || ValueError {
        row: 0,
        field: field.name().clone(),
        expected: type_words(field_meta(field).field_type).to_owned(),
    };
    if cell == Cell::Null && !field.is_nullable() {
        return Err(error());
    }
    builder.append(cell).map_err(|_| error())
}

fn json_cell(value: &serde_json::Value) -> Cell<'_> {
    match value {
        serde_json::Value::Null => Cell::Null,
        serde_json::Value::Bool(b) => Cell::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Cell::Int(i)
            } else if let Some(u) = n.as_u64() {
                Cell::UInt(u)
            } else {
                Cell::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Cell::Str(Cow::Borrowed(s)),
        other => Cell::Json(other.clone()),
    }
}

/// A schema as JSON (fields with their Arrow type, nullability and metadata), to keep beside
/// records and read back with [`schema_from_json`].
pub fn schema_to_json(schema: &arrow_schema::Schema) -> serde_json::Value {
    serde_json::Value::Array(
        schema
            .fields()
            .iter()
            .map(|f| {
                serde_json::json!({
                    "name": f.name(),
                    "data_type": f.data_type().to_string(),
                    "nullable": f.is_nullable(),
                    "metadata": f
                        .metadata()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<std::collections::BTreeMap<String, String>>(),
                })
            })
            .collect(),
    )
}

/// The schema [`schema_to_json`] wrote; `None` when it is not one.
pub fn schema_from_json(value: &serde_json::Value) -> Option<SchemaRef> {
    let fields = value
        .as_array()?
        .iter()
        .map(|f| {
            let name = f.get("name")?.as_str()?;
            let data_type: arrow_schema::DataType = f.get("data_type")?.as_str()?.parse().ok()?;
            let nullable = f.get("nullable")?.as_bool()?;
            let metadata: std::collections::HashMap<String, String> =
                serde_json::from_value(f.get("metadata")?.clone()).ok()?;
            Some(Field::new(name, data_type, nullable).with_metadata(metadata))
        })
        .collect::<Option<Vec<Field>>>()?;
    Some(Arc::new(arrow_schema::Schema::new(fields)))
}

/// A field type in words, for messages.
pub fn type_words(field_type: FieldType) -> &'static str {
    lockstep_connectors::batch::field_type_name(field_type)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow_schema::{DataType, Schema};
    use lockstep_connectors::batch::keys;
    use serde_json::json;
    use std::collections::HashMap;

    fn field(name: &str, t: &str, data_type: DataType) -> Field {
        Field::new(name, data_type, true)
            .with_metadata(HashMap::from([(keys::TYPE.to_owned(), t.to_owned())]))
    }

    #[test]
    fn rows_round_trip_through_batches_and_edits_are_checked_by_type() {
        let schema = Arc::new(Schema::new(vec![
            field("id", "integer", DataType::Int64),
            field("name", "string", DataType::Utf8),
            field("day", "date", DataType::Date32),
        ]));
        let rows = vec![
            vec![json!(1), json!("Ada"), json!("2024-01-31")],
            vec![json!(2), json!(null), json!(null)],
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        let batch = rows_batch(&schema, &refs).unwrap();
        assert_eq!(batch_rows(&batch), rows);

        let id = schema.field(0);
        assert_eq!(normalize(id, &json!("42")).unwrap(), json!(42));
        let err = normalize(id, &json!("forty-two")).unwrap_err();
        assert_eq!(err.field, "id");
        assert_eq!(err.expected, "integer");
        assert!(normalize(schema.field(2), &json!("not a day")).is_err());

        let back = schema_from_json(&schema_to_json(&schema)).unwrap();
        assert_eq!(back, schema);

        let bad = vec![json!("x"), json!("a"), json!(null)];
        let err = rows_batch(&schema, &[rows.first().unwrap(), &bad]).unwrap_err();
        assert_eq!((err.row, err.field.as_str()), (1, "id"));
    }

    #[test]
    fn numbers_compare_by_value_and_text_by_text() {
        assert!(same_value(&json!(1), &json!(1.0)));
        assert!(same_value(&json!("12.50"), &json!(12.5)));
        assert!(!same_value(&json!("12.5"), &json!(12.51)));
        assert!(!same_value(&json!(null), &json!("null")));
        assert!(!same_value(&json!("1e3"), &json!(1000)));
        assert!(!same_value(&json!(true), &json!("true")));
    }
}
