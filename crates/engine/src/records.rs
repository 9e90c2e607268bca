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
        serde_json::Value::String(s) => comparable_str(s),
        serde_json::Value::Bool(true) => Cow::Borrowed("\u{2}true"),
        serde_json::Value::Bool(false) => Cow::Borrowed("\u{2}false"),
        other => Cow::Owned(other.to_string()),
    }
}

/// The [`comparable`] text of a string.
fn comparable_str(s: &str) -> Cow<'_, str> {
    match s.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && looks_numeric(s) => Cow::Owned(format!("\u{1}{f}")),
        _ => Cow::Borrowed(s),
    }
}

/// Appends the [`comparable`] text of a cell to `out`, without making its JSON value for the
/// common types: the same text [`comparable`] gives for the cell's JSON value.
pub(crate) fn write_comparable(cell: &Cell<'_>, out: &mut String) {
    use std::fmt::Write;
    match cell {
        Cell::Null => out.push_str("\u{0}null"),
        Cell::Bool(true) => out.push_str("\u{2}true"),
        Cell::Bool(false) => out.push_str("\u{2}false"),
        Cell::Int(i) => {
            let _ = write!(out, "\u{1}{}", *i as f64);
        }
        Cell::UInt(u) => {
            let _ = write!(out, "\u{1}{}", *u as f64);
        }
        Cell::Float(f) if f.is_finite() => {
            let _ = write!(out, "\u{1}{f}");
        }
        Cell::Str(s) => out.push_str(&comparable_str(s)),
        other => out.push_str(&comparable(&cell_to_json(other))),
    }
}

/// The cells of a batch, read in place: their [`comparable`] text for hashing and comparing
/// records, and a record's JSON values, without turning the whole batch into JSON.
#[derive(Debug)]
pub struct Cells<'a> {
    views: Vec<ColumnView<'a>>,
}

impl<'a> Cells<'a> {
    pub fn new(batch: &'a RecordBatch) -> Cells<'a> {
        let schema = batch.schema_ref();
        Cells {
            views: batch
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| ColumnView::new(c, field_meta(f).field_type))
                .collect(),
        }
    }

    /// Appends the comparable text of the cell at (`row`, `column`) to `out` (nothing for a
    /// column the batch does not have).
    pub fn write_comparable(&self, row: usize, column: usize, out: &mut String) {
        if let Some(view) = self.views.get(column) {
            write_comparable(&view.cell(row), out);
        }
    }

    /// The values of the record at `row`.
    pub fn row(&self, row: usize) -> Row {
        self.views
            .iter()
            .map(|v| cell_to_json(&v.cell(row)))
            .collect()
    }

    /// The value at (`row`, `column`); null for a column the batch does not have.
    pub fn value(&self, row: usize, column: usize) -> serde_json::Value {
        self.views
            .get(column)
            .map_or(serde_json::Value::Null, |v| cell_to_json(&v.cell(row)))
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

/// The same schema with every field nullable (a data set keeps records whose values a review
/// could not compute, and rows of nothing beside records only the destination has).
pub fn nullable(schema: &SchemaRef) -> SchemaRef {
    Arc::new(arrow_schema::Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<Field>>(),
        schema.metadata().clone(),
    ))
}

/// Why batches could not be put together, written or read back.
#[derive(Debug, thiserror::Error)]
#[error("records could not be {0}")]
pub struct BatchError(&'static str);

/// `batch`'s columns under `schema` (the same types; `schema` may allow nulls where the
/// batch's did not).
pub fn with_schema(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, BatchError> {
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        batch.columns().to_vec(),
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(|_| BatchError("given the data set's schema"))
}

/// Another system's batch in the order of `fields` (each named as there): the column
/// `columns[i]` of `batch` for field `i`, kept as that system holds it, or nulls where it has
/// none.
pub fn align(
    batch: &RecordBatch,
    columns: &[Option<usize>],
    fields: &SchemaRef,
) -> Result<RecordBatch, BatchError> {
    let rows = batch.num_rows();
    let theirs = batch.schema();
    let mut out_fields = Vec::with_capacity(fields.fields().len());
    let mut arrays = Vec::with_capacity(fields.fields().len());
    for (field, column) in fields.fields().iter().zip(columns) {
        match column.and_then(|c| Some((theirs.fields().get(c)?, batch.columns().get(c)?))) {
            Some((their_field, array)) => {
                out_fields.push(
                    Field::new(field.name(), their_field.data_type().clone(), true)
                        .with_metadata(their_field.metadata().clone()),
                );
                arrays.push(Arc::clone(array));
            }
            None => {
                out_fields.push(Field::new(field.name(), arrow_schema::DataType::Null, true));
                arrays.push(arrow_array::new_null_array(
                    &arrow_schema::DataType::Null,
                    rows,
                ));
            }
        }
    }
    RecordBatch::try_new_with_options(
        Arc::new(arrow_schema::Schema::new(out_fields)),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|_| BatchError("aligned"))
}

/// `rows` records of nothing but nulls.
pub fn null_batch(schema: &SchemaRef, rows: usize) -> Result<RecordBatch, BatchError> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| arrow_array::new_null_array(f.data_type(), rows))
        .collect();
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|_| BatchError("filled with nulls"))
}

/// The batches one after another, under `schema`.
pub fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch, BatchError> {
    let batches = batches
        .iter()
        .map(|b| with_schema(b, schema))
        .collect::<Result<Vec<_>, _>>()?;
    arrow_select::concat::concat_batches(schema, &batches).map_err(|_| BatchError("joined"))
}

/// The records at `positions`, in that order.
pub fn take(batch: &RecordBatch, positions: &[usize]) -> Result<RecordBatch, BatchError> {
    let indices = arrow_array::UInt32Array::from_iter_values(
        positions
            .iter()
            .map(|p| u32::try_from(*p).unwrap_or(u32::MAX)),
    );
    arrow_select::take::take_record_batch(batch, &indices).map_err(|_| BatchError("picked"))
}

/// `batch` with its record at `row` replaced by the one record of `one`.
pub fn replace_row(
    batch: &RecordBatch,
    row: usize,
    one: &RecordBatch,
) -> Result<RecordBatch, BatchError> {
    if row >= batch.num_rows() || one.num_rows() != 1 {
        return Err(BatchError("replaced"));
    }
    let schema = batch.schema();
    concat(
        &schema,
        &[
            batch.slice(0, row),
            one.clone(),
            batch.slice(row + 1, batch.num_rows() - row - 1),
        ],
    )
}

/// Appends `batch` to `out` in the Arrow IPC stream format, which [`read_ipc`] reads back:
/// how a data set keeps its records, with no conversion of their values.
pub fn write_ipc(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), BatchError> {
    let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut *out, &batch.schema())
        .map_err(|_| BatchError("written"))?;
    writer.write(batch).map_err(|_| BatchError("written"))?;
    writer.finish().map_err(|_| BatchError("written"))?;
    Ok(())
}

/// The one batch of an Arrow IPC stream [`write_ipc`] wrote.
pub fn read_ipc(bytes: &[u8]) -> Result<RecordBatch, BatchError> {
    let mut reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .map_err(|_| BatchError("read"))?;
    let schema = reader.schema();
    match reader.next() {
        Some(Ok(batch)) => Ok(batch),
        Some(Err(_)) => Err(BatchError("read")),
        None => Ok(RecordBatch::new_empty(schema)),
    }
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
    fn cells_read_in_place_give_the_text_and_values_their_json_gives() {
        let schema = Arc::new(Schema::new(vec![
            field("i", "integer", DataType::Int64),
            field("f", "float", DataType::Float64),
            field("s", "string", DataType::Utf8),
            field("b", "boolean", DataType::Boolean),
            field("d", "date", DataType::Date32),
            field("n", "decimal", DataType::Utf8),
        ]));
        let rows = [
            vec![
                json!(1),
                json!(1.5),
                json!("12.50"),
                json!(true),
                json!("2024-01-31"),
                json!("3.10"),
            ],
            vec![
                json!(9_007_199_254_740_993_i64),
                json!(-0.25),
                json!("x y"),
                json!(false),
                json!(null),
                json!(null),
            ],
            vec![
                json!(null),
                json!(null),
                json!(" 7 "),
                json!(null),
                json!("1970-01-01"),
                json!("-4"),
            ],
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        let batch = rows_batch(&schema, &refs).unwrap();
        let cells = Cells::new(&batch);
        for (r, row) in batch_rows(&batch).iter().enumerate() {
            assert_eq!(&cells.row(r), row);
            for (c, value) in row.iter().enumerate() {
                let mut text = String::new();
                cells.write_comparable(r, c, &mut text);
                assert_eq!(text, comparable(value), "row {r} column {c}");
                assert_eq!(&cells.value(r, c), value);
            }
        }

        // Through IPC and back, unchanged; rows replaced and picked.
        let mut bytes = Vec::new();
        write_ipc(&batch, &mut bytes).unwrap();
        let back = read_ipc(&bytes).unwrap();
        assert_eq!(back, batch);
        let one = rows_batch(
            &schema,
            &[&vec![
                json!(5),
                json!(null),
                json!("new"),
                json!(null),
                json!(null),
                json!(null),
            ]],
        )
        .unwrap();
        let replaced = replace_row(&batch, 1, &one).unwrap();
        assert_eq!(Cells::new(&replaced).value(1, 2), json!("new"));
        assert_eq!(Cells::new(&replaced).value(2, 2), json!(" 7 "));
        let picked = take(&replaced, &[2, 0]).unwrap();
        assert_eq!(Cells::new(&picked).value(0, 0), json!(null));
        assert_eq!(Cells::new(&picked).value(1, 0), json!(1));
        let nulls = null_batch(&nullable(&schema), 2).unwrap();
        let joined = concat(&nullable(&schema), &[batch, nulls]).unwrap();
        assert_eq!(joined.num_rows(), 5);
        assert_eq!(Cells::new(&joined).row(4), vec![json!(null); 6]);
        assert!(read_ipc(b"not a stream").is_err());
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
