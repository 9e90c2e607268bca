//! A run's rejected records as a CSV download: one row per record, in the order they were
//! read, with its rule, kind, reason, key and the offending fields, then every source field.
//! Values are text (null is empty); a cell that a spreadsheet would read as a formula (starting
//! with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use lockstep_app::{RejectionKind, RunErrorView};
use serde_json::Value;

/// A value as text: strings as they are, null as nothing, anything else as JSON.
pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `cell` with a leading `'` when a spreadsheet would evaluate it.
pub(crate) fn neutralised(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

/// The key as `field=value, …` (empty without a key).
pub(crate) fn key_text(key: &Value) -> String {
    match key {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", text(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => String::new(),
        other => text(other),
    }
}

/// The CSV text of `errors`.
pub(crate) fn build(errors: &[RunErrorView]) -> Result<Vec<u8>, csv::Error> {
    // the source fields, in the order the records name them
    let mut columns: Vec<&str> = Vec::new();
    for e in errors {
        for name in e.values.keys() {
            if !columns.contains(&name.as_str()) {
                columns.push(name);
            }
        }
    }
    let mut out = csv::WriterBuilder::new().from_writer(Vec::new());
    let mut header = vec!["rule", "kind", "reason", "key", "fields"];
    header.extend(columns.iter().copied());
    out.write_record(header.iter().map(|h| neutralised(h)))?;
    for e in errors {
        let kind = match e.kind {
            RejectionKind::Rule => "rule",
            RejectionKind::Error => "error",
        };
        let mut row = vec![
            e.rule.clone(),
            kind.to_owned(),
            e.reason.clone(),
            key_text(&e.key),
            e.fields.join(", "),
        ];
        row.extend(
            columns
                .iter()
                .map(|c| e.values.get(*c).map(text).unwrap_or_default()),
        );
        out.write_record(row.iter().map(|cell| neutralised(cell)))?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

/// The download: `text/csv`, as an attachment named after the run.
pub(crate) fn response(run: &str, body: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"rejected-{run}.csv\"");
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_other_text_kept() {
        assert_eq!(neutralised("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralised("+1"), "'+1");
        assert_eq!(neutralised("-5"), "'-5");
        assert_eq!(neutralised("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralised("Zoë"), "Zoë");
        assert_eq!(neutralised(""), "");
    }
}
