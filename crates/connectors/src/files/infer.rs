//! Field inference from sample records, shared by the `files` and `rest` connectors.
//!
//! A field's type is the narrowest one that fits every non-null value seen: integers and floats
//! make a float, anything mixed with a string makes a string, and other mixes make JSON (for JSON
//! sources) or a string (for CSV). A field is nullable when a value is null or missing.

use crate::{FieldMeta, FieldType, Record};
use serde_json::Value;
use std::collections::HashMap;
use time::format_description::well_known::Rfc3339;

/// How many records inference looks at.
pub(crate) const INFER_RECORDS: usize = 1000;

/// The largest integer JSON numbers hold exactly (2^53); larger ones are written as strings.
const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_992;

/// Where the values come from: decides the fallback for mixed types and the `native` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Text cells, typed by their look ([`classify_text`]).
    Csv,
    /// JSON values, which keep their JSON types.
    Json,
}

impl Source {
    fn native(self) -> &'static str {
        match self {
            Source::Csv => "csv",
            Source::Json => "json",
        }
    }

    /// The type for values that share no narrower one.
    fn fallback(self) -> FieldType {
        match self {
            Source::Csv => FieldType::String,
            Source::Json => FieldType::Json,
        }
    }
}

#[derive(Debug)]
struct FieldState {
    name: String,
    /// `None` until a non-null value is seen.
    field_type: Option<FieldType>,
    /// A null was seen.
    null: bool,
    /// In how many records the field appears.
    present: usize,
}

/// Accumulates what the sample records say about their fields, in first-seen order.
#[derive(Debug)]
pub(crate) struct Inference {
    source: Source,
    fields: Vec<FieldState>,
    index: HashMap<String, usize>,
    records: usize,
}

impl Inference {
    pub(crate) fn new(source: Source) -> Self {
        Inference {
            source,
            fields: Vec::new(),
            index: HashMap::new(),
            records: 0,
        }
    }

    /// Declares a field (a CSV header) so that it is listed even when no record has it.
    pub(crate) fn declare(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.fields.len();
        self.fields.push(FieldState {
            name: name.to_owned(),
            field_type: None,
            null: false,
            present: 0,
        });
        self.index.insert(name.to_owned(), i);
        i
    }

    /// Looks at one record of JSON values.
    pub(crate) fn observe_json(&mut self, record: &Record) {
        self.records += 1;
        for (name, value) in record {
            let i = self.declare(name);
            self.observe(i, json_type(value));
        }
    }

    /// Looks at one CSV record; `cells` follow the declared field order.
    pub(crate) fn observe_csv<'a>(
        &mut self,
        names: &[String],
        cells: impl Iterator<Item = &'a str>,
    ) {
        self.records += 1;
        for (name, cell) in names.iter().zip(cells) {
            let i = self.declare(name);
            self.observe(i, classify_text(cell));
        }
    }

    fn observe(&mut self, i: usize, value_type: Option<FieldType>) {
        let source = self.source;
        let Some(field) = self.fields.get_mut(i) else {
            return;
        };
        field.present += 1;
        match value_type {
            None => field.null = true,
            Some(t) => {
                field.field_type = Some(match field.field_type {
                    None => t,
                    Some(current) => merge(current, t, source),
                });
            }
        }
    }

    /// The fields found. `primary_key` names the fields that identify a record.
    pub(crate) fn finish(self, primary_key: &[String]) -> Vec<FieldMeta> {
        let records = self.records;
        let source = self.source;
        self.fields
            .into_iter()
            .map(|f| FieldMeta {
                primary_key: primary_key.contains(&f.name),
                nullable: f.null || f.present < records || f.field_type.is_none(),
                field_type: f.field_type.unwrap_or(source.fallback()),
                native: source.native().to_owned(),
                name: f.name,
            })
            .collect()
    }
}

/// The narrowest type holding values of both types.
fn merge(a: FieldType, b: FieldType, source: Source) -> FieldType {
    use FieldType::{Decimal, Float, Integer, Json, String};
    match (a, b) {
        _ if a == b => a,
        (Integer, Float) | (Float, Integer) | (Decimal, Float) | (Float, Decimal) => Float,
        (Integer, Decimal) | (Decimal, Integer) => Decimal,
        (Json, _) | (_, Json) => Json,
        (String, _) | (_, String) => String,
        _ => source.fallback(),
    }
}

/// A JSON value's type; `None` for null.
fn json_type(value: &Value) -> Option<FieldType> {
    match value {
        Value::Null => None,
        Value::Bool(_) => Some(FieldType::Boolean),
        Value::Number(n) if n.is_i64() => Some(FieldType::Integer),
        // Beyond i64: exact, but not an i64.
        Value::Number(n) if n.is_u64() => Some(FieldType::Decimal),
        Value::Number(_) => Some(FieldType::Float),
        Value::String(_) => Some(FieldType::String),
        Value::Array(_) | Value::Object(_) => Some(FieldType::Json),
    }
}

/// The type a CSV cell looks like; `None` for an empty cell.
pub(crate) fn classify_text(cell: &str) -> Option<FieldType> {
    if cell.is_empty() {
        None
    } else if parse_integer(cell).is_some() {
        Some(FieldType::Integer)
    } else if parse_float(cell).is_some() {
        Some(FieldType::Float)
    } else if parse_bool(cell).is_some() {
        Some(FieldType::Boolean)
    } else if time::OffsetDateTime::parse(cell, &Rfc3339).is_ok() {
        Some(FieldType::TimestampTz)
    } else if parse_date(cell).is_some() {
        Some(FieldType::Date)
    } else {
        Some(FieldType::String)
    }
}

/// A CSV cell as a JSON value of the field's inferred type; a cell that does not fit the type
/// (one past the inferred records) stays a string.
pub(crate) fn typed_value(cell: &str, field_type: FieldType) -> Value {
    if cell.is_empty() {
        return Value::Null;
    }
    let typed = match field_type {
        FieldType::Integer => parse_integer(cell).map(|n| {
            if n.unsigned_abs() > MAX_SAFE_INTEGER.unsigned_abs() {
                Value::String(n.to_string())
            } else {
                Value::from(n)
            }
        }),
        FieldType::Float => parse_float(cell)
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        FieldType::Boolean => parse_bool(cell).map(Value::Bool),
        _ => None,
    };
    typed.unwrap_or_else(|| Value::String(cell.to_owned()))
}

/// Integers as people write them: an optional minus, digits, no leading zero (so that codes like
/// `02134` stay strings).
fn parse_integer(cell: &str) -> Option<i64> {
    let digits = cell.strip_prefix('-').unwrap_or(cell);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    cell.parse().ok()
}

/// Finite decimal numbers (`1.5`, `-0.25`, `6.02e23`); not `inf`, `NaN` or `007.5`.
fn parse_float(cell: &str) -> Option<f64> {
    let unsigned = cell.strip_prefix('-').unwrap_or(cell);
    let mantissa = unsigned.split(['e', 'E']).next().unwrap_or(unsigned);
    let well_formed = unsigned.bytes().any(|b| b.is_ascii_digit())
        && unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && unsigned.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && !(mantissa.len() > 1 && mantissa.starts_with('0') && !mantissa.starts_with("0."));
    if !well_formed {
        return None;
    }
    cell.parse::<f64>().ok().filter(|f| f.is_finite())
}

fn parse_bool(cell: &str) -> Option<bool> {
    if cell.eq_ignore_ascii_case("true") {
        Some(true)
    } else if cell.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn parse_date(cell: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(cell, &format).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_text() {
        for (cell, expected) in [
            ("", None),
            ("42", Some(FieldType::Integer)),
            ("-7", Some(FieldType::Integer)),
            ("0", Some(FieldType::Integer)),
            ("02134", Some(FieldType::String)),
            ("+5", Some(FieldType::String)),
            ("1.5", Some(FieldType::Float)),
            ("0.5", Some(FieldType::Float)),
            ("-6.02e23", Some(FieldType::Float)),
            ("inf", Some(FieldType::String)),
            ("NaN", Some(FieldType::String)),
            (".5", Some(FieldType::String)),
            ("true", Some(FieldType::Boolean)),
            ("FALSE", Some(FieldType::Boolean)),
            ("2024-02-29", Some(FieldType::Date)),
            ("2024-02-30", Some(FieldType::String)),
            ("2024-05-01T10:00:00Z", Some(FieldType::TimestampTz)),
            ("2024-05-01T10:00:00+02:00", Some(FieldType::TimestampTz)),
            ("2024-05-01 10:00", Some(FieldType::String)),
            ("hello", Some(FieldType::String)),
        ] {
            assert_eq!(classify_text(cell), expected, "{cell:?}");
        }
    }

    #[test]
    fn merges_to_the_narrowest_type() {
        let names: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        let mut inference = Inference::new(Source::Csv);
        for name in &names {
            inference.declare(name);
        }
        inference.observe_csv(&names, ["1", "1", "x", "true", ""].into_iter());
        inference.observe_csv(&names, ["2", "2.5", "3", "1", ""].into_iter());
        let fields = inference.finish(&["a".to_owned()]);
        let types: Vec<_> = fields.iter().map(|f| (f.field_type, f.nullable)).collect();
        assert_eq!(
            types,
            [
                (FieldType::Integer, false),
                (FieldType::Float, false),
                (FieldType::String, false),
                (FieldType::String, false),
                (FieldType::String, true),
            ]
        );
        assert!(fields[0].primary_key && !fields[1].primary_key);
        assert_eq!(fields[0].native, "csv");
    }

    #[test]
    fn json_values_keep_their_types() {
        let mut inference = Inference::new(Source::Json);
        let records = [
            json!({"id": 1, "tags": ["x"], "flag": true, "n": 1, "mixed": 1}),
            json!({"id": 2, "tags": null, "flag": false, "n": 2.5, "mixed": "s", "late": {"a": 1}}),
        ];
        for record in &records {
            inference.observe_json(record.as_object().unwrap());
        }
        let fields = inference.finish(&[]);
        let types: Vec<_> = fields
            .iter()
            .map(|f| (f.name.as_str(), f.field_type, f.nullable))
            .collect();
        assert_eq!(
            types,
            [
                // Records are maps sorted by key: the first record's fields in key order, then
                // those seen later.
                ("flag", FieldType::Boolean, false),
                ("id", FieldType::Integer, false),
                ("mixed", FieldType::String, false),
                ("n", FieldType::Float, false),
                ("tags", FieldType::Json, true),
                ("late", FieldType::Json, true),
            ]
        );
    }

    #[test]
    fn types_cells() {
        assert_eq!(typed_value("42", FieldType::Integer), json!(42));
        assert_eq!(
            typed_value("9007199254740993", FieldType::Integer),
            json!("9007199254740993")
        );
        assert_eq!(typed_value("1.5", FieldType::Float), json!(1.5));
        assert_eq!(typed_value("3", FieldType::Float), json!(3.0));
        assert_eq!(typed_value("True", FieldType::Boolean), json!(true));
        assert_eq!(typed_value("", FieldType::String), Value::Null);
        assert_eq!(typed_value("oops", FieldType::Integer), json!("oops"));
        assert_eq!(
            typed_value("2024-01-02", FieldType::Date),
            json!("2024-01-02")
        );
    }
}
